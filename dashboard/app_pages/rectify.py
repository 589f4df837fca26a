"""问题整改: the problem list, the unit's answers, the review queue and the import (rules: scoring.problems)."""
import pandas as pd
import streamlit as st

from dashboard import state, ui
from scoring import periods, problems, views
from scoring.labels import PROBLEM_COLORS

user = state.user()
store = state.store()
st.title("问题整改")
ui.flash("rectify.msg")
today = periods.today()
st.caption(f"第三方检测和检查组下发的问题:单位在整改期限内反馈整改情况,政务公开办或检查组复核后销号;"
           f"超过整改期限未销号的为逾期未整改,按考评表计入问题按期整改率。今天:{today:%Y年%m月%d日}")

manages = views.may(user, "problems.add")      # the office and checkers: every unit's problems
everything = problems.list_problems(store, user)
counts = problems.summary(everything)
m = st.columns(6)
m[0].metric("问题总数", counts["合计"])
for k, status in enumerate(problems.STATUSES):
    m[k + 1].metric(status, counts[status])

c1, c2, c3 = st.columns(3)
quarters = sorted(everything["period"].unique(), reverse=True)
period = c1.selectbox("季度", [""] + quarters, format_func=lambda p: periods.label(p) if p else "全部季度",
                      key="rectify.period")
status = c2.selectbox("状态", [""] + list(problems.STATUSES), format_func=lambda s: s or "全部状态", key="rectify.status")
unit_code = None
if manages:
    units = views.problem_units(store, user)
    names = dict(zip(units["unit_code"], units["unit_name"] + "(" + units["unit_code"] + ")"))
    unit_code = c3.selectbox("单位", [""] + list(names), format_func=lambda u: names.get(u, "全部单位"),
                             key="rectify.unit") or None
shown = problems.list_problems(store, user, unit_code=unit_code, period=period or None, status=status or None,
                               today=today)

LIST_COLUMNS = {"id": "编号", "unit_name": "单位", "period": "季度", "item_name": "考评项", "description": "问题描述",
                "due_on": "整改期限", "time_left": "期限情况", "status": "状态", "response": "整改说明",
                "review_note": "复核意见", "link": "问题链接"}
if not manages:
    LIST_COLUMNS.pop("unit_name")


def status_style(value) -> str:
    color = PROBLEM_COLORS.get(value)
    return f"color: {color}; font-weight: 600" if color else ""


if shown.empty:
    st.info("没有符合条件的问题。")
else:
    frame = ui.table(shown.fillna({"item_name": "—", "response": "", "review_note": "", "link": ""}), LIST_COLUMNS)
    st.dataframe(frame.style.map(status_style, subset=["状态"]), hide_index=True, width="stretch",
                 key="rectify.table", column_config={"问题描述": st.column_config.TextColumn(width="large")})
    who = unit_code if manages else user.unit_code
    if who:
        book = ui.action(problems.unit_workbook, store, user, who, today)
        if book is not None:
            st.download_button("下载本单位问题整改清单(Excel)", book, key="rectify.export",
                               file_name=f"问题整改清单_{who}_{today:%Y%m%d}.xlsx",
                               mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def label(row) -> str:
    unit = f"{row.unit_name} " if manages else ""
    return f"#{row.id} {unit}{row.description[:30]}(期限{row.due_on:%m月%d日},{row.status})"


labels = {int(r.id): label(r) for r in everything.itertuples()}

if views.may(user, "problems.respond") and not manages:      # the office answers for a unit from the CLI
    st.subheader("反馈整改情况")
    todo = everything[everything["state"].isin(problems.RESPONDABLE)]
    if todo.empty:
        st.caption("没有需要反馈的问题。")
    else:
        with st.form("rectify.respond_form", clear_on_submit=True):
            pid = st.selectbox("问题", todo["id"].tolist(), format_func=labels.get, key="rectify.respond_id")
            note = st.text_area("整改说明", key="rectify.respond_note", placeholder="说明整改了什么、在哪里可以核实")
            link = st.text_input("整改后的网页链接(选填)", key="rectify.respond_link", placeholder="https://")
            if st.form_submit_button("提交整改情况", type="primary"):
                ui.flash_next("rectify.msg", ui.action(problems.respond, store, user, pid, note, link))

if views.may(user, "problems.review"):
    queue = everything[everything["state"] == problems.PENDING].sort_values("due_on")
    st.subheader(f"复核队列({len(queue)})")
    if queue.empty:
        st.caption("没有待复核的问题。")
    else:
        st.dataframe(ui.table(queue.fillna({"response_link": ""}), {"id": "编号", "unit_name": "单位", "description": "问题描述", "due_on": "整改期限",
                                      "response": "整改说明", "response_link": "整改链接", "responded_on": "反馈日期"}),
                     hide_index=True, width="stretch", key="rectify.queue")
        with st.form("rectify.review_form", clear_on_submit=True):
            pid = st.selectbox("问题", queue["id"].tolist(), format_func=labels.get, key="rectify.review_id")
            verdict = st.radio("复核结论", ["销号", "退回"], horizontal=True, key="rectify.verdict")
            note = st.text_input("复核意见(退回时必填)", key="rectify.review_note")
            if st.form_submit_button("提交复核", type="primary"):
                ui.flash_next("rectify.msg", ui.action(problems.review, store, user, pid, verdict == "销号", note))

if labels:
    with st.expander("问题的处理经过"):
        pid = st.selectbox("问题", list(labels), format_func=labels.get, key="rectify.history_id")
        steps = ui.action(problems.history, store, user, pid)
        if steps is not None:
            steps = steps.assign(happened_at=pd.to_datetime(steps["happened_at"]).dt.strftime("%Y-%m-%d %H:%M"))
            st.dataframe(ui.table(steps, {"happened_at": "时间", "actor": "操作人", "status": "状态", "note": "说明",
                                          "link": "链接"}), hide_index=True, width="stretch", key="rectify.history")

if views.may(user, "problems.add"):
    st.subheader("导入问题清单")
    st.caption("CSV 或 XLSX,表头:" + "、".join(problems.HEADERS) + "。考评项写编号或名称,可空;链接可空;"
               "整份清单检查无误才导入,有错误时列出每一处(行号与表格软件一致)。同一问题重复导入不会重复登记。")
    st.download_button("下载问题清单模板(XLSX)", problems.template(), file_name="问题清单模板.xlsx",
                       key="rectify.template", mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    n = st.session_state.setdefault("rectify.n", 0)
    uploaded = st.file_uploader("选择问题清单", type=["csv", "xlsx"], key=f"rectify.file.{n}")
    if uploaded is not None and st.button("导入", type="primary", key="rectify.import"):
        message = ui.action(problems.import_problems, store, user, uploaded.getvalue(), uploaded.name)
        if message:
            st.session_state["rectify.n"] = n + 1
            ui.flash_next("rectify.msg", message)
