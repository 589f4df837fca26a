"""排名: one group's ranking for one quarter, with summary cards, filters and downloads."""
import streamlit as st

from dashboard import charts, state, ui
from scoring import analytics, bulletin, exports, periods, ranking, reports, views

user = state.user()
st.title("排名")

all_periods = state.periods()
if not all_periods:
    ui.no_data()
groups = views.groups(state.store(), user)

c1, c2, c3, c4 = st.columns([1, 1, 1.4, 1.6])
period = c1.selectbox("季度", all_periods[::-1], key="ranking.period")
group = c2.selectbox("分组", groups, key="ranking.group", disabled=len(groups) < 2)
grades = c3.multiselect("等级", ["优秀", "良好", "合格", "不合格"], key="ranking.grades", placeholder="全部等级")
search = c4.text_input("搜索单位", key="ranking.search", placeholder="单位名称或代码")

rows = views.ranking(state.store(), user, period, group, ranked=state.ranked())
if rows.empty:
    ui.no_data(f"{ui.plain(group)} 在 {period} 暂无考评结果。")
private = views.may(user, "ranking.private")          # the office: every row; a unit: its own

# -- summary cards (of the whole group: not when the library gave only part of it) -------------
whole = len(rows) >= int(rows["n_in_group"].max())
if whole:
    summary = reports.group_summary(rows).iloc[0]
    m = st.columns(6)
    m[0].metric("参评单位", f"{int(summary['units'])}个")
    m[1].metric("平均分", ui.fmt2(summary["mean"]))
    m[2].metric("合格率", f"{summary['pass_rate']:.2f}%")
    m[3].metric("优秀单位", f"{int(summary['excellent'])}个")
    m[4].metric("最高分", f"{summary['max']:.2f}")
    m[5].metric("最低分", f"{summary['min']:.2f}")
else:
    st.caption(f"本季度全组排名尚未公布,这里只显示本单位的结果(全组{int(rows['n_in_group'].max())}个单位)。")
risers, fallers = reports.movers(rows) if whole else (rows.iloc[0:0], rows.iloc[0:0])
if not risers.empty or not fallers.empty:
    up = "、".join(f"{n}(↑{c})" for n, c in zip(risers["unit_name"], risers["rank_change"]))
    down = "、".join(f"{n}(↓{-c})" for n, c in zip(fallers["unit_name"], fallers["rank_change"]))
    st.caption(ui.plain(f"名次上升最多:{up or '无'};名次下降最多:{down or '无'}"))

# -- the table -------------------------------------------------------------------------------
view = rows.assign(
    rank_label=[ranking.rank_label(r, t) for r, t in zip(rows["rank"], rows["tied"])],
    change=[ranking.change_label(c) for c in rows["rank_change"]],
    self_flag=["⚠ 需核对" if f else "" for f in rows["self_gap_flag"]],
)
if grades:
    view = view[view["grade"].isin(grades)]
if search.strip():
    text = search.strip()
    view = view[view["unit_name"].str.contains(text, regex=False) | view["unit_code"].str.contains(text, regex=False)]
view = view.reset_index(drop=True)

# how sure each rank is (judged items and section weights perturbed), and, for the office, what to verify
robust = ui.action(analytics.robustness, state.store(), user, period, group, scores=state.scores([period]))
if robust is not None and not robust.empty:
    interval = {u: (f"{lo}" if lo == hi else f"{lo}–{hi}")
                for u, lo, hi in zip(robust["unit_code"], robust["rank_low"], robust["rank_high"])}
    view = view.assign(interval=view["unit_code"].map(interval).fillna(""))
else:
    view = view.assign(interval="")
flagged = set()
if views.may(user, "anomalies.view"):
    flags = ui.action(analytics.anomalies, state.store(), user, period, scores=state.scores([period]))
    flagged = set(flags["unit_code"]) if flags is not None else set()
view = view.assign(check=["待核查" if u in flagged else "" for u in view["unit_code"]])

columns = {"rank_label": "名次", "interval": "名次区间(90%)", "unit_name": "单位名称", "unit_code": "单位代码",
           "total": "总分", "grade": "等级", "change": "名次变化", "total_change": "分数变化"}
if flagged:
    columns["check"] = "核查"
if views.may(user, "trends.units"):       # every unit's self score and veto: the office's columns
    columns.update(self_score="自评分", self_gap="自评差", self_flag="自评核对", veto_name="否决项")
shown = ui.table(view, columns)
if "否决项" in shown:
    shown["否决项"] = shown["否决项"].fillna("")
own_unit = user.unit_code
own = view["unit_code"] == own_unit if own_unit else None
if own_unit:
    mine = rows[rows["unit_code"] == own_unit]
    if mine.empty:
        st.info("本单位在本季度暂无考评结果。")
    else:
        r = mine.iloc[0]
        self_note = "" if r["self_score"] is None or r["self_score"] != r["self_score"] else \
            f",自评分 {float(r['self_score']):.2f}(相差 {float(r['self_gap']):+.2f})"
        st.info(ui.plain(f"本单位 {r['unit_name']}:组内第{ranking.rank_label(r['rank'], r['tied'])}名"
                         f"(共{int(r['n_in_group'])}个),总分 {r['total']:.2f},{r['grade']},"
                         f"名次变化 {ranking.change_label(r['rank_change'])}{self_note}。表中黄色底为本单位。"))

opens_any = views.may(user, "trends.units")
st.caption(ui.plain(f"{group} · {period} · 共{len(rows)}个单位,显示{len(view)}个。")
           + ("点击一行查看单位详情。" if opens_any else "黄色底为本单位,点击本单位一行查看详情。")
           + (ui.plain(analytics.robustness_sentence(robust)) if robust is not None and not robust.empty else "")
           + (f"标「待核查」的{len(flagged)}个单位有待核实的上报数据,见「核查清单」。" if flagged else ""))
shown, config = ui.nullable_numbers(shown, [c for c in ["分数变化", "自评分", "自评差"] if c in shown])
shown, badges = ui.grade_badges(shown, "等级")
config.update(badges, 总分=st.column_config.NumberColumn("总分", format="%.2f"))
# a unit user sees the whole group at once, so its highlighted row is never hidden below the fold
if view.empty:      # an empty grid says "empty" in English on its canvas
    st.info("没有符合筛选条件的单位。")
    event = None
else:
    event = st.dataframe(ui.highlighted(shown, own) if own is not None else shown, hide_index=True, width="stretch",
                         height=min(35 * (len(shown) + 1) + 3, 720 if opens_any else 3600), on_select="rerun",
                         selection_mode="single-row", key="ranking.table", column_config=config, placeholder="—")

picked = event.selection.rows if event is not None and hasattr(event, "selection") else []
if picked and picked[0] < len(view):     # a selection made before the filter changed may point past the end
    code = view["unit_code"].iloc[picked[0]]
    if views.may(user, "unit.view", unit=code):
        st.session_state["detail.unit"] = code
        st.session_state["detail.period"] = period
        del st.session_state["ranking.table"]  # coming back must not jump again
        st.switch_page("app_pages/unit_detail.py")
    else:
        st.info("单位账号只能查看本单位的详情。")

# the chart of 870 bars is built only when asked for (an expander would build it at every run)
if robust is not None and not robust.empty and st.toggle("显示名次区间图(名次稳健性)", key="ranking.show_intervals"):
    st.plotly_chart(charts.rank_intervals(robust, user.unit_code), width="stretch", key="ranking.intervals")
    st.caption(analytics.method_text())

export = views.ranking_export(view, user)
d1, d2, _ = st.columns([1, 1, 4])
# the files are made only when someone clicks (a callable runs on the click, not on every rerun)
d1.download_button("下载 CSV", lambda: exports.to_csv_bytes(export), file_name=f"排名_{group}_{period}.csv",
                   mime="text/csv", key="ranking.csv")
d2.download_button("下载 Excel", lambda: exports.to_xlsx_bytes({f"{group}{period}": export}),
                   file_name=f"排名_{group}_{period}.xlsx", key="ranking.xlsx",
                   mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

if views.may(user, "bulletin"):  # the quarter's 通报 and score table, for every group, made on the click
    st.subheader("季度通报")
    st.caption(f"{periods.label(period)}全市考评通报(Word,含图表与附件)和各组逐项得分表(Excel)。生成通报约需10秒。")
    b1, b2, _ = st.columns([1.4, 1.4, 3.2])
    b1.download_button("生成通报(Word)", lambda: bulletin.bulletin_bytes(state.store(), period, user),
                       file_name=f"{periods.label(period)}政务公开考评通报.docx", key="ranking.bulletin",
                       mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    b2.download_button("逐项得分表(Excel)", lambda: bulletin.score_table_xlsx(state.store(), period, user),
                       file_name=f"{periods.label(period)}考评得分表.xlsx", key="ranking.score_table",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
