"""问题整改: third-party problems and their rectification status (the rules live in scoring.rectifications)."""
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboard import state, ui
from scoring import rectifications as rect
from scoring import views

user = state.user()
st.title("问题整改")
ui.flash("rectify.msg")

status_names = {"": "全部状态", **rect.STATUS_LABELS}
c1, c2 = st.columns([1, 2])
status = c1.selectbox("状态", list(status_names), format_func=status_names.get, key="rectify.status")
problems = rect.list_rectifications(state.store(), user, status=status or None)
s = rect.summary(rect.list_rectifications(state.store(), user))
m = st.columns(4)
m[0].metric("问题总数", s["total"])
m[1].metric("待整改", s["open"])
m[2].metric("待复核", s["rectified"])
m[3].metric("逾期未整改", s["overdue"])

if problems.empty:
    st.info("没有符合条件的问题。")
else:
    shown = problems.assign(overdue_label=problems["overdue"].map({True: "逾期", False: ""}),
                            **{c: pd.to_datetime(problems[c]).dt.strftime("%Y-%m-%d").fillna("")
                               for c in ("found_at", "deadline", "rectified_at")})
    cols = {"rect_id": "编号", "unit_name": "单位", "period": "季度", "source": "来源", "description": "问题描述",
            "found_at": "发现日期", "deadline": "整改期限", "status_label": "状态", "overdue_label": "逾期",
            "rectified_at": "整改日期", "note": "整改说明"}
    if user.unit_code:
        cols.pop("unit_name")
    st.dataframe(ui.table(shown, cols), hide_index=True, width="stretch", key="rectify.table",
                 column_config={"问题描述": st.column_config.TextColumn(width="large")})

all_rows = rect.list_rectifications(state.store(), user)
labels = {int(r): f"#{r} {u}:{d[:30]}" for r, u, d in zip(all_rows["rect_id"], all_rows["unit_name"], all_rows["description"])}

open_ids = [int(r) for r in all_rows.loc[all_rows["status"] == rect.OPEN, "rect_id"]]
st.subheader("报告整改情况")
if not views.may(user, "problems.respond"):
    st.caption("整改情况由单位填报。")
elif not open_ids:
    st.caption("没有待整改的问题。")
else:
    with st.form("rectify.done_form", clear_on_submit=True):
        rid = st.selectbox("问题", open_ids, format_func=labels.get, key="rectify.done_id")
        note = st.text_area("整改说明", key="rectify.done_note", placeholder="说明整改了什么、在哪里可以核实")
        if st.form_submit_button("标记为已整改"):
            msg = ui.action(rect.mark_rectified, state.store(), user, rid, note)
            ui.flash_next("rectify.msg", msg)

if views.may(user, "problems.review"):
    done_ids = [int(r) for r in all_rows.loc[all_rows["status"] == rect.RECTIFIED, "rect_id"]]
    st.subheader("复核")
    if not done_ids:
        st.caption("没有待复核的问题。")
    else:
        with st.form("rectify.review_form", clear_on_submit=True):
            rid = st.selectbox("问题", done_ids, format_func=labels.get, key="rectify.review_id")
            verdict = st.radio("复核结论", ["通过", "退回重新整改"], horizontal=True, key="rectify.verdict")
            note = st.text_input("意见(退回时必填)", key="rectify.review_note")
            if st.form_submit_button("提交复核"):
                msg = ui.action(rect.review, state.store(), user, rid, verdict == "通过", note)
                ui.flash_next("rectify.msg", msg)

if views.may(user, "problems.add"):
    st.subheader("登记新问题")
    units = views.problem_units(state.store(), user)
    unit_names = dict(zip(units["unit_code"], units["unit_name"] + "(" + units["unit_code"] + ")"))
    with st.form("rectify.add_form", clear_on_submit=True):
        a1, a2, a3 = st.columns(3)
        unit_code = a1.selectbox("单位", list(unit_names), format_func=unit_names.get, key="rectify.add_unit")
        periods = state.periods()
        period = a2.selectbox("季度", periods[::-1], key="rectify.add_period")
        source = a3.selectbox("来源", rect.SOURCES, key="rectify.add_source")
        description = st.text_area("问题描述", key="rectify.add_desc")
        b1, b2 = st.columns(2)
        found = b1.date_input("发现日期", value=date.today(), key="rectify.add_found")
        deadline = b2.date_input("整改期限", value=date.today() + timedelta(days=30), key="rectify.add_deadline")
        if st.form_submit_button("登记"):
            new_id = ui.action(rect.add_rectification, state.store(), user, unit_code, period, source, description,
                               found_at=found, deadline=deadline)
            if new_id:
                ui.flash_next("rectify.msg", f"已登记问题 #{new_id}")

