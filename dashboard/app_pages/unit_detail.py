"""单位详情: score card, where points were lost, sections against the group, trend, annual result."""
import pandas as pd
import streamlit as st

from dashboard import charts, state, ui
from scoring import analytics, lifecycle, objections, periods, problems, ranking, views

user = state.user()
st.title("单位详情")

choices = views.units(state.store(), user)
if choices.empty or state.ranked().empty:
    ui.no_data()
names = dict(zip(choices["unit_code"], choices["unit_name"] + "(" + choices["unit_code"] + ")"))

c1, c2 = st.columns([2, 1])
codes = list(names)
wanted = st.session_state.get("detail.unit")
code = c1.selectbox("单位", codes, index=codes.index(wanted) if wanted in codes else 0,
                    format_func=lambda c: names[c], key="detail.pick", disabled=len(codes) < 2)
st.session_state["detail.unit"] = code

history = views.unit_history(state.store(), user, code, ranked=state.ranked())
if history.empty:
    ui.no_data("该单位暂无考评结果。")
unit_periods = history["period"].tolist()
wanted = st.session_state.get("detail.period")
period = c2.selectbox("季度", unit_periods[::-1],
                      index=unit_periods[::-1].index(wanted) if wanted in unit_periods else 0, key="detail.period_pick")
st.session_state["detail.period"] = period

scores = state.scores([periods.previous(period), period])     # the quarter and the one before it
report = views.unit_report(state.store(), user, code, period, scores=scores, ranked=state.ranked())
row = report["rank_row"]

# -- score card ------------------------------------------------------------------------------
st.subheader(ui.plain(f"{row['unit_name']} · {periods.label(period)}"))
m = st.columns(6)
m[0].metric("总分", ui.fmt2(row["total"]),
            delta=None if pd.isna(row["total_change"]) else f"{row['total_change']:+.2f}分(较上季度)")
m[1].metric("等级", row["grade"])
rank_change = row["rank_change"]
m[2].metric("组内名次", f"{int(row['rank'])}/{int(row['n_in_group'])}" + ("(并列)" if row["tied"] else ""),
            delta=None if pd.isna(rank_change) or int(rank_change) == 0 else f"{int(rank_change):+d}名(较上季度)")
hist_row = history[history["period"] == period].iloc[0]
m[3].metric("组内平均", f"{hist_row['group_mean']:.2f}")
m[4].metric("组内最高", f"{hist_row['group_best']:.2f}")
m[5].metric("自评分", ui.fmt2(row["self_score"]))
notes = [f"基础分 {report['base']:.2f}(适用总分 {report['applicable_max']:.2f})",
         f"加分 {report['bonus']:.2f}", f"扣分 {report['penalty']:.2f}",
         "名次变化:" + ("新进入排名" if pd.isna(rank_change) else ranking.change_label(rank_change))]
if not pd.isna(row["self_gap"]):
    notes.append(f"自评分与核定得分相差 {row['self_gap']:+.2f}")
st.caption(";".join(notes))
quarter = lifecycle.state(state.store(), period)
notice = lifecycle.status_notice(quarter)
if notice:
    st.info(notice, icon=":material/campaign:" if quarter.status == lifecycle.PUBLICITY else ":material/event:")
if report["veto_name"]:
    st.error(ui.plain(f"触发单项否决:{report['veto_name']}"))
accuracy = ui.action(analytics.self_accuracy, state.store(), user, report["group"], ranked=state.ranked())
mine_acc = accuracy[accuracy["unit_code"] == code] if accuracy is not None else None
if mine_acc is not None and not mine_acc.empty:
    a = mine_acc.iloc[0]
    st.caption(f"自评准确度:{int(a['quarters'])}个季度中,自评分平均{'高出' if a['mean_overclaim'] >= 0 else '低于'}"
               f"核定总分{abs(a['mean_overclaim']):.2f}分,{int(a['overclaimed'])}个季度高出5分以上"
               f"({a['overclaim_share']:.0%})。")
if row["self_gap_flag"]:
    st.warning(f"自评分与核定得分相差 {abs(row['self_gap']):.2f} 分(≥5分),请核对。")
if row["n_missing"]:
    st.warning(f"有 {int(row['n_missing'])} 项指标未报送,按0分计。")

# -- where to gain ---------------------------------------------------------------------------
st.subheader("失分明细(按失分从多到少)")
items = report["items_table"]
only_lost = st.toggle("只看失分项", value=True, key="detail.only_lost")
shown = items[(items["lost"] > 1e-9) | (items["kind"] != "item") | (items["status"] != "ok")] if only_lost else items
table = ui.table(shown, {"section": "部分", "name": "考评项目", "points": "得分", "max": "满分", "lost": "失分",
                         "status_label": "状态", "explanation": "说明", "source_text": "数据来源"})
st.table(ui.styled(ui.plain_cells(table), grade_col=None).hide(axis="index"))  # a table wraps long explanations

if views.may(user, "problems.view"):
    open_problems = problems.outstanding(state.store(), user, code)
    st.subheader(f"待整改问题({len(open_problems)})")
    if open_problems.empty:
        st.caption("没有未销号的问题。")
    else:
        late = int(open_problems["overdue"].sum())
        st.caption(("其中" + str(late) + "个已逾期,按考评表扣分;" if late else "")
                   + "在「问题整改」页反馈整改情况,经复核后销号。")
        st.dataframe(ui.table(open_problems.fillna({"item_name": "—"}),
                              {"id": "编号", "period": "季度", "item_name": "考评项", "description": "问题描述",
                               "due_on": "整改期限", "time_left": "期限情况", "status": "状态"}),
                     hide_index=True, width="stretch", key="detail.problems")

# -- why the rank moved, how sure it is, where to gain ----------------------------------------------
st.subheader("名次分析")
moved = ui.action(analytics.attribution, state.store(), user, code, period, scores=scores) \
    if not pd.isna(rank_change) else None
if moved is not None:
    st.caption(ui.plain(moved["text"]))
    parts = pd.DataFrame(moved["parts"])
    st.dataframe(ui.table(parts[parts["change"].abs() > 1e-9],
                          {"name": "部分", "previous": "上季度", "current": "本季度", "change": "变化"}),
                 hide_index=True, width="stretch", key="detail.attribution")
robust = ui.action(analytics.robustness, state.store(), user, period, report["group"], scores=scores)
if robust is not None and not robust.empty and code in set(robust["unit_code"]):
    st.caption(ui.plain(analytics.unit_sentence(robust, code)))

gains = ui.action(analytics.where_to_gain, state.store(), user, code, period, scores=scores)
if gains is not None and not gains.empty:
    st.markdown("**提分空间**(各项补足满分后总分能提高多少,已计入部分上限和不适用折算;扣分项和否决项按其代价列出)")
    shown_gains, config = ui.nullable_numbers(ui.table(gains, {"name": "考评项目", "section": "部分", "points": "得分",
                                                               "max": "满分", "gain": "可提高", "total": "补足后总分"}),
                                              ["得分", "满分"])
    st.dataframe(shown_gains, hide_index=True, width="stretch", key="detail.gains", column_config=config)
    options = gains.loc[gains["kind"] != "veto", "item_id"].tolist()
    names_of = dict(zip(gains["item_id"], gains["name"]))
    picked = st.multiselect("模拟:补足以下项目", options, format_func=names_of.get, key=f"detail.whatif.{code}.{period}",
                            placeholder="选择要补足的项目")
    if picked:
        sim = ui.action(analytics.whatif, state.store(), user, code, period, picked, scores=scores)
        if sim is not None:
            st.success(f"补足{len(picked)}项后:总分 {sim['total']:.2f}(+{sim['gain']:.2f}),"
                       f"组内第{sim['rank']}名,{sim['grade']}(其他单位得分不变)")

# -- 异议 during 公示 ----------------------------------------------------------------------------
if views.may(user, "objection.view", unit=code):
    filed = objections.list_objections(state.store(), user, period=period, unit_code=code)
    can_file = (views.may(user, "objection.file", unit=code) and quarter.status == lifecycle.PUBLICITY)
    if can_file or not filed.empty:
        st.subheader("异议")
        ui.flash("detail.objection_msg")
    if can_file:
        closed = lifecycle.objection_window(quarter)
        if closed:
            st.caption(ui.plain(closed))
        else:
            st.caption("对本单位公示结果的某一考评项有异议的,请选择该项、写明理由(如已提交的材料、整改情况),"
                       "政务公开办会逐条答复;采纳的异议以核定更正得分。")
            choices_items = {i["item_id"]: i for i in report["items"]}

            def item_label(k: str) -> str:
                it = choices_items[k]
                top = "" if it["max"] is None else f"/满分{it['max']:g}"
                return f"{it['name']}(现{abs(it['points']):.2f}分{top})"

            lost_first = [i for i in items["item_id"] if i in choices_items]
            with st.form(f"detail.objection_form.{code}.{period}", clear_on_submit=True):
                item_id = st.selectbox("考评项", lost_first, format_func=item_label, key="detail.objection_item")
                reason = st.text_area("异议理由(必填)", key="detail.objection_reason")
                if st.form_submit_button("提交异议", type="primary", key="detail.objection_go"):
                    done = ui.action(objections.file, state.store(), user, code, period, item_id, reason)
                    if done:
                        ui.flash_next("detail.objection_msg", done[1])
    if not filed.empty:
        filed = filed.assign(no=filed["id"].map(lambda i: f"#{i}"),
                             filed_text=filed["filed_at"].dt.strftime("%Y-%m-%d %H:%M"),
                             answer=filed["answer"].fillna(""),
                             answered=[("" if pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M"))
                                       for v in filed["answered_at"]])
        shown, config = ui.nullable_numbers(
            ui.table(filed, {"no": "编号", "item_name": "考评项", "reason": "异议理由", "filed_text": "提出时间",
                             "status_label": "状态", "answer": "答复", "points": "核定分值", "answered": "答复时间"}),
            ["核定分值"])
        st.dataframe(shown, hide_index=True, width="stretch", key="detail.objections", column_config=config)

# -- sections and trend ----------------------------------------------------------------------
left, right = st.columns(2)
left.plotly_chart(charts.section_compare(views.section_compare(state.store(), user, code, period,
                                                               scores=state.scores([period]))),
                  width="stretch", key="detail.sections")
right.plotly_chart(charts.score_trend(history, row["unit_name"]), width="stretch", key="detail.trend")
left2, right2 = st.columns(2)
left2.plotly_chart(charts.rank_trend(history), width="stretch", key="detail.rank")

with right2:
    year = int(period[:4])
    st.markdown(f"**{year}年度结果**(各季度按考评表规定的权重合计,未规定时取平均;无数据的季度计0分)")
    annual = views.annual(state.store(), user, year, row["group"], scores=state.scores(periods.year_quarters(year)))
    mine = annual[annual["unit_code"] == code]
    if mine.empty:
        st.info("暂无年度结果。")
    else:
        a = mine.iloc[0]
        y1, y2 = st.columns(2)
        y1.metric("年度得分", f"{a['total']:.2f}")
        y2.metric("年度组内名次", f"{int(a['rank'])}/{len(annual)}" + ("(并列)" if a["tied"] else ""))
        if a["missing_quarters"]:
            st.caption(f"无数据、按0分计的季度:{a['missing_quarters']}")

# -- adjustments -----------------------------------------------------------------------------
st.subheader("核定记录")
adj = report["adjustments"]
if adj.empty:
    st.caption("该单位没有核定记录。")
else:
    adj = adj.assign(at=adj["adjusted_at"].dt.strftime("%Y-%m-%d %H:%M"))
    st.dataframe(ui.styled(ui.table(adj, {"period": "季度", "item_name": "考评项目", "points": "核定分值",
                                          "reason": "理由", "actor": "核定人", "at": "时间",
                                          "current_label": "状态"}), grade_col=None),
                 hide_index=True, width="stretch")
