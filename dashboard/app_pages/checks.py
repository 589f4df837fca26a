"""核查清单 (office): a quarter's anomaly flags (to check, not rejections) and how far each unit's
self-assessments run above its verified totals over the quarters."""
import streamlit as st

from dashboard import state, ui
from scoring import analytics, periods, views

user = state.user()
st.title("核查清单")
st.caption("以下提示供核查,不是退回:数值突变(与本单位此前至少4个季度相比偏离3个稳健标准差以上)、"
           "疑似雷同(两个单位共同填报的指标九成以上完全相同)、全项满分、自评偏高(自评分高出核定后总分5分及以上)。")

quarters = state.periods()
if not quarters:
    ui.no_data()
period = st.selectbox("季度", quarters[::-1], format_func=periods.label, key="checks.period")
flags = analytics.anomalies(state.store(), user, period, scores=state.scores([period]))

kinds = list(analytics.ANOMALY_KINDS)
counts = flags["kind"].value_counts()
cols = st.columns(len(kinds))
for col, kind in zip(cols, kinds):
    col.metric(analytics.ANOMALY_KINDS[kind], f"{int(counts.get(kind, 0))}条")

if flags.empty:
    st.success(f"{periods.label(period)}没有需要核查的数据。")
else:
    chosen = st.multiselect("类型", kinds, default=kinds, format_func=analytics.ANOMALY_KINDS.get, key="checks.kinds")
    shown = flags[flags["kind"].isin(chosen)]
    st.dataframe(ui.table(shown, {"unit_code": "单位代码", "unit_name": "单位名称", "group": "分组",
                                  "kind_label": "类型", "indicator_name": "指标", "detail": "说明"}),
                 hide_index=True, width="stretch", key="checks.flags")
    st.caption(f"共{len(shown)}条;点击表头可排序。")

st.subheader("自评准确度")
st.caption("各单位历季度自评分与核定后总分之差(自评 − 核定):平均高估分数、最大高估分数,以及高估5分及以上的季度数和占比。")
groups = views.groups(state.store(), user)
group = st.selectbox("分组", ["全部", *groups], key="checks.group")
accuracy = analytics.self_accuracy(state.store(), user, None if group == "全部" else group, ranked=state.ranked())
if accuracy.empty:
    st.info("暂无单位填报自评分。")
else:
    table = ui.table(accuracy.assign(share=(accuracy["overclaim_share"] * 100).round(1)),
                     {"unit_code": "单位代码", "unit_name": "单位名称", "group": "分组", "quarters": "季度数",
                      "mean_overclaim": "平均自评差", "max_overclaim": "最大自评差",
                      "overclaimed": "高估≥5分季度数", "share": "高估季度占比(%)"})
    st.dataframe(table, hide_index=True, width="stretch", key="checks.accuracy",
                 column_config={"平均自评差": st.column_config.NumberColumn(format="%.2f"),
                                "最大自评差": st.column_config.NumberColumn(format="%.2f"),
                                "高估季度占比(%)": st.column_config.NumberColumn(format="%.1f")})
    worst = accuracy.iloc[0]
    if worst["overclaimed"]:
        st.caption(ui.plain(f"平均高估最多:{worst['unit_name']}({worst['unit_code']}),"
                            f"平均自评差{worst['mean_overclaim']:.2f}分,"
                            f"{int(worst['overclaimed'])}/{int(worst['quarters'])}个季度高估5分及以上。"))
