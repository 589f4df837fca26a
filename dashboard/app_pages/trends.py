"""趋势: group statistics over quarters, grade distribution, one quarter in detail; the own unit marked."""
import streamlit as st

from dashboard import charts, state, ui
from scoring import reports, schemes, views

user = state.user()
st.title("趋势")

groups = views.groups(state.store(), user)
if state.ranked().empty or not groups:
    ui.no_data()
group = st.selectbox("分组", groups, key="trends.group", disabled=len(groups) < 2)
in_group = views.group_history(state.store(), user, group, ranked=state.ranked())
if in_group.empty:
    ui.no_data(f"{ui.plain(group)} 暂无考评结果。")

own = user.unit_code if user.unit_code in set(in_group["unit_code"]) else None
own_rows = in_group[in_group["unit_code"] == own].sort_values("period") if own else None
# a quarter of which the library gave only part of the group (a unit's own row during 公示) says
# nothing about the group: its statistics are left out
sizes = in_group.groupby("period").agg(seen=("unit_code", "size"), of=("n_in_group", "max"))
partial = sorted(sizes.index[sizes["seen"] < sizes["of"]])
if partial:
    in_group = in_group[~in_group["period"].isin(partial)]
    if in_group.empty:
        ui.no_data(f"{ui.plain(group)} 暂无已公布的全组考评结果。")

trend = reports.group_trend(in_group)
left, right = st.columns(2)
left.plotly_chart(charts.group_trend(trend, own_rows), width="stretch", key="trends.trend")
right.plotly_chart(charts.grade_distribution(reports.grade_distribution(in_group)), width="stretch",
                   key="trends.grades")
st.plotly_chart(charts.total_distribution(in_group, own), width="stretch", key="trends.box")
if own:
    st.caption("橙色星号和折线为本单位。")
if partial:
    st.caption(f"{'、'.join(partial)}的全组结果尚未公布,图表和统计不含这些季度;本单位的结果见「排名」和「单位详情」。")

with st.expander("各季度统计表", expanded=False):
    st.dataframe(ui.styled(ui.table(trend, {"period": "季度", "units": "单位数", "mean": "平均分", "median": "中位数",
                                            "min": "最低分", "max": "最高分", "pass_rate": "合格率(%)"}),
                           grade_col=None), hide_index=True, width="stretch", placeholder="—")

# -- one quarter: everyone sees the group's figures of that quarter (and the own unit in it) ------
st.subheader("单季度分析")
quarters = sorted(in_group["period"].unique())
period = st.selectbox("季度", quarters[::-1], key="trends.period")
rows = in_group[in_group["period"] == period]
summary = reports.group_summary(rows).iloc[0]
m = st.columns(6 if own else 5)
m[0].metric("参评单位", f"{int(summary['units'])}个")
m[1].metric("平均分", ui.fmt2(summary["mean"]))
m[2].metric("中位数", ui.fmt2(summary["median"]))
m[3].metric("最高分", ui.fmt2(summary["max"]))
m[4].metric("合格率", f"{summary['pass_rate']:.2f}%")
mine = rows[rows["unit_code"] == own] if own else rows.iloc[0:0]
if own:
    if mine.empty:
        m[5].metric("本单位", "未参评")
    else:
        r = mine.iloc[0]
        m[5].metric("本单位", f"{r['total']:.2f}", f"{r['total'] - summary['mean']:+.2f}(较平均)")
st.plotly_chart(charts.quarter_totals(rows, own), width="stretch", key="trends.quarter")

if not views.may(user, "trends.units"):
    st.caption("各单位分项得分热力图和指标数值仅政务公开办可见;本单位的分项得分见「单位详情」。")
    st.stop()
st.plotly_chart(charts.section_heatmap(views.section_matrix(state.store(), user, period, group,
                                                            scores=state.scores())),
                width="stretch", key="trends.heatmap")

scheme = schemes.scheme_for(state.store(), group, period)
if scheme is not None:
    # numbers first: a yes/no indicator across units says little as a bar chart
    codes = sorted(scheme.indicators, key=lambda c: scheme.indicators[c].type == "bool")
    indicator = st.selectbox("指标", codes, format_func=lambda c: scheme.indicators[c].name, key="trends.indicator")
    values = views.indicator_values(state.store(), user, period, group, indicator)
    st.plotly_chart(charts.indicator_bars(values, scheme.indicators[indicator].name), width="stretch",
                    key="trends.indicator_chart")
    n_na = int(values["is_na"].sum())
    n_missing = int((values["value"].isna() & ~values["is_na"]).sum())
    if n_na or n_missing:
        st.caption(f"不适用 {n_na} 个单位,未报送 {n_missing} 个单位(图中未列出)。")
