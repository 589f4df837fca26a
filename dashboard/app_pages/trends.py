"""趋势: group statistics over quarters, grade distribution, units × sections heatmap, one indicator."""
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

trend = reports.group_trend(in_group)
left, right = st.columns(2)
left.plotly_chart(charts.group_trend(trend), width="stretch", key="trends.trend")
right.plotly_chart(charts.grade_distribution(reports.grade_distribution(in_group)), width="stretch",
                   key="trends.grades")
st.plotly_chart(charts.total_distribution(in_group), width="stretch", key="trends.box")

with st.expander("各季度统计表", expanded=False):
    st.dataframe(ui.styled(ui.table(trend, {"period": "季度", "units": "单位数", "mean": "平均分", "median": "中位数",
                                            "min": "最低分", "max": "最高分", "pass_rate": "合格率(%)"}),
                           grade_col=None), hide_index=True, width="stretch")

st.subheader("单季度分析")
quarters = sorted(in_group["period"].unique())
period = st.selectbox("季度", quarters[::-1], key="trends.period")
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
