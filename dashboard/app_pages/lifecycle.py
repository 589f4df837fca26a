"""考评周期 (office): each quarter's status and dates, its next step, and the 异议 queue."""
from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import state, ui
from scoring import lifecycle, objections, periods, views
from scoring.periods import today as current_date

user = state.user()
st.title("考评周期")
ui.flash("lifecycle.msg")
st.caption("每个季度依次为:报送中(单位上传数据)→ 审核中(单位报送截止,政务公开办和第三方/检查组仍可上传、核定)"
           "→ 公示中(单位查看本单位结果,在公示截止日前可对考评项提出异议)→ 已定稿(结果冻结发布,排名、单位详情和通报"
           "都读定稿结果)。已定稿的季度如需更正,须说明理由重新开放。从未设置过的季度视为报送中。")

today = current_date()
quarters = lifecycle.states_frame(state.store(), user)
if quarters.empty:
    ui.no_data("尚无考评数据:上传季度数据或开放一个季度后,这里列出各季度的状态。")


def _date(value) -> str:
    return "" if value is None or pd.isna(value) else lifecycle.cn_date(value)


shown = quarters.assign(
    label=quarters["period"].map(periods.label),
    deadline_text=quarters["deadline"].map(_date),
    publicity_text=quarters["publicity_until"].map(_date),
    published_text=[("" if v is None or pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M"))
                    for v in quarters["published_at"]],
    note=["" if r else "未设置" for r in quarters["recorded"]])
st.dataframe(ui.table(shown, {"period": "季度", "label": "名称", "status": "状态", "deadline_text": "报送截止",
                              "publicity_text": "公示截止", "published_text": "定稿时间",
                              "pending_objections": "待答复异议", "note": "备注"}),
             hide_index=True, width="stretch", key="lifecycle.table",
             column_config={"定稿时间": st.column_config.TextColumn(width="medium")})

# -- the next step of one quarter ------------------------------------------------------------------
st.subheader("变更季度状态")
known = quarters["period"].tolist()
upcoming = periods.from_index(periods.period_index(known[-1]) + 1)
choices = known + [upcoming]
by_period = {r["period"]: r for r in quarters.to_dict("records")}
open_ones = [p for p in known if by_period[p]["status"] != lifecycle.PUBLISHED]
default = open_ones[-1] if open_ones else known[-1]
c1, c2 = st.columns([1, 2])
period = c1.selectbox("季度", choices, index=choices.index(default), key="lifecycle.period",
                      format_func=lambda p: f"{periods.label(p)}({p})" + ("" if p in by_period else ",新季度"))
current = by_period.get(period)
status = current["status"] if current else lifecycle.DEFAULT_STATUS
recorded = bool(current and current["recorded"])
names = lifecycle.allowed(status)
c2.markdown(f"当前状态:**{status}**" + ("" if recorded else "(未设置,视为报送中)"))
if not names:
    st.caption("该状态下没有可做的变更。")
else:
    name = st.selectbox("操作", names, key="lifecycle.action",
                        format_func=lambda n: lifecycle.action_label(n, status, recorded))
    t = lifecycle.TRANSITIONS[name]
    until = reason = None
    if t.needs_until:
        if t.target == lifecycle.SUBMITTING:
            start = (current and current["deadline"]) or (today + timedelta(days=10)).isoformat()
            label = "报送截止日期(单位在此日期前上传)"
        else:
            start = (current and current["publicity_until"]) or (today + timedelta(days=7)).isoformat()
            label = "公示截止日期(单位在此日期前可提出异议)"
        until = st.date_input(label, value=pd.Timestamp(start).date(), format="YYYY-MM-DD",
                              key=f"lifecycle.until.{period}.{name}")
    if t.needs_reason:
        reason = st.text_area("重新开放的理由(必填,记入审计日志)", key=f"lifecycle.reason.{period}")
    explain = {
        "open": "单位账号可以上传该季度的数据,数据上传页显示截止日期。",
        "close": ("撤回公示后季度回到审核中:单位看不到公示结果,已提出的异议仍可答复。" if status == lifecycle.PUBLICITY
                  else "单位账号不能再上传该季度的数据;政务公开办和第三方/检查组仍可上传、核定。"),
        "publicize": "单位可以查看本单位的结果,并在公示截止日前对考评项提出异议。",
        "publish": "冻结该季度全部单位的得分、排名和说明;此后的上传、核定或考评表变更都不会改变已发布的结果。"
                   "有待答复的异议时不能定稿。",
        "reopen": "季度回到审核中,结果按当前数据重新计算;定稿快照保留备查。",
    }[name]
    st.caption(explain)
    if st.button(lifecycle.action_label(name, status, recorded), type="primary", key="lifecycle.go"):
        msg = ui.action(lifecycle.transition, state.store(), user, name, period, until=until, reason=reason)
        ui.flash_next("lifecycle.msg", msg)

# -- 异议 -------------------------------------------------------------------------------------------
st.subheader("异议")
queue = objections.list_objections(state.store(), user)
if queue.empty:
    st.caption("还没有单位提出异议。")
else:
    table = queue.assign(no=queue["id"].map(lambda i: f"#{i}"),
                         answer=queue["answer"].fillna(""))
    shown, config = ui.nullable_numbers(
        ui.table(table, {"no": "编号", "period": "季度", "unit_name": "单位", "item_name": "考评项",
                         "reason": "异议理由", "status_label": "状态", "answer": "答复", "points": "核定分值"}),
        ["核定分值"])
    config.update({c: st.column_config.TextColumn(width="small") for c in ("编号", "季度", "状态")})
    config["核定分值"] = st.column_config.TextColumn(width="small", alignment="right")
    config.update({c: st.column_config.TextColumn(width="medium") for c in ("异议理由", "答复")})
    st.dataframe(shown, hide_index=True, width="stretch", key="lifecycle.objections", column_config=config)

    pending = queue[queue["status"] == objections.PENDING]
    if views.may(user, "objection.answer") and not pending.empty:
        st.markdown("**答复异议**")
        labels = {int(r.id): f"#{r.id} {r.unit_name} {r.period}「{r.item_name}」" for r in pending.itertuples()}
        oid = st.selectbox("待答复的异议", list(labels), format_func=labels.get, key="lifecycle.objection")
        row = pending[pending["id"] == oid].iloc[0]
        st.caption(ui.plain(f"异议理由:{row['reason']}(提出人 {row['filed_by']})"))
        item = None
        report = ui.action(views.unit_report, state.store(), user, row["unit_code"], row["period"],
                           scores=state.scores(), ranked=state.ranked())
        if report is not None:
            item = next((i for i in report["items"] if i["item_id"] == row["item_id"]), None)
        if item is not None:
            top = "" if item["max"] is None else f"(满分{item['max']:g}分)"
            st.caption(ui.plain(f"该项现计{abs(item['points']):.2f}分{top}:{item['explanation']}"))
        verdict = st.radio("答复", ["采纳并核定", "不予采纳"], horizontal=True, key="lifecycle.verdict")
        points = None
        if verdict == "采纳并核定":
            points = st.number_input("核定分值(扣分项填扣除的分数)", step=0.5, format="%.2f",
                                     value=abs(float(item["points"])) if item else 0.0, key="lifecycle.points")
        answer = st.text_area("答复理由(必填,单位可见)", key="lifecycle.answer")
        if st.button("提交答复", type="primary", key="lifecycle.answer_go"):
            msg = ui.action(objections.answer, state.store(), user, oid, answer, accept_points=points)
            ui.flash_next("lifecycle.msg", msg)
