"""年度排名 (office): the four quarters side by side, the annual score as the scheme weighs them,
missing quarters flagged, downloads and the 年度通报."""
import pandas as pd
import streamlit as st

from dashboard import state, ui
from scoring import annual, annual_bulletin, exports, periods, views

user = state.user()
st.title("年度排名")
years = views.annual_years(state.store(), user)
if not years:
    ui.no_data()
c1, c2 = st.columns(2)
year = c1.selectbox("年度", years, key="annual.year")
table = views.annual_ranking(state.store(), user, year, scores=state.scores())
groups = ui.ordered_groups(state.store(), user, table["group"])
group = c2.selectbox("分组", groups, key="annual.group")
rows = table[table["group"] == group].reset_index(drop=True)
quarters = periods.year_quarters(year)

m1, m2, m3, m4 = st.columns(4)
m1.metric("参评单位", f"{len(rows)}家")
m2.metric("年度平均得分", f"{rows['total'].mean():.2f}")
m3.metric("缺报季度的单位", f"{int((rows['n_missing'] > 0).sum())}家")
m4.metric("不合格", f"{int((~rows['passed'].astype(bool)).sum())}家")

shown = rows.assign(rank_label=[f"{r}(并列)" if t else str(r) for r, t in zip(rows["rank"], rows["tied"])],
                    **{f"q{k}": ["缺报(计0分)" if pd.isna(x) else f"{x:.2f}" for x in rows[q]]
                       for k, q in enumerate(quarters, 1)},
                    points_text=["" if pd.isna(x) else f"{x:.2f}" for x in rows["points"]])
columns = {"rank_label": "名次", "unit_code": "单位代码", "unit_name": "单位名称",
           **{f"q{k}": label for k, label in enumerate(annual.QUARTER_LABELS, 1)},
           "total": "年度得分", "grade": "等级"}
if rows["points"].notna().any():
    columns["points_text"] = "目标管理考核折算分"
st.dataframe(ui.styled(ui.table(shown, columns), highlight=rows["n_missing"] > 0), hide_index=True,
             width="stretch", key="annual.table")
caption = f"年度得分为{rows['weights'].iloc[0]};没有考评结果的季度按0分计,整行标黄。" if len(rows) else ""
if rows["points"].notna().any():
    caption += f"折算分 = 年度得分 × {rows['points_max'].iloc[0]:g} ÷ 100,计入目标管理考核。"
st.caption(caption)
flagged = rows[rows["n_missing"] > 0]
if len(flagged):
    st.warning(ui.plain("缺报季度:" + ";".join(f"{r.unit_name}({r.missing_quarters})" for r in flagged.itertuples())))

export = annual.export_frame(table)
d1, d2, _ = st.columns([1, 1, 4])
d1.download_button("下载 CSV", lambda: exports.to_csv_bytes(export), file_name=f"年度排名_{year}.csv",
                   mime="text/csv", key="annual.csv")
d2.download_button("下载 Excel", lambda: exports.to_xlsx_bytes({f"{year}年度": export}),
                   file_name=f"年度排名_{year}.xlsx", key="annual.xlsx",
                   mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

if views.may(user, "bulletin"):
    st.subheader("年度通报")
    st.caption(f"{year}年度全市政务公开考评结果通报(Word):各组年度得分和四个季度得分、存在问题(含年报勾稽错误)、工作要求。")
    st.download_button("生成年度通报(Word)", lambda: annual_bulletin.bulletin_bytes(state.store(), year, user),
                       file_name=f"{year}年度政务公开考评通报.docx", key="annual.bulletin",
                       mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document")
