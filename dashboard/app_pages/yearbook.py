"""年报: a unit's 政府信息公开工作年度报告 statistics (国办公开办函〔2021〕30号 tables 二、三、四): template,
upload with the 勾稽 checks, the tables as stored and as a Word table; the office sees every unit's."""
import datetime

import streamlit as st

from dashboard import state, ui
from scoring import views, yearbook

user = state.user()
st.title("年报")
ui.flash("yearbook.done")
st.caption("按国办公开办函〔2021〕30号格式报送上一年度政府信息公开工作年度报告的统计数据(表二、表三、表四)。"
           "上传时逐项勾稽:表三各列的(七)总计等于(一)至(六)之和、总计列等于各类申请人之和、"
           "一+二=三(七)+四、上年结转等于上年度年报的结转下年度,表四各总计等于其分项;有错误时整个文件不导入。"
           "年报按时发布和勾稽错误数在下一年第一季度考评中计分。")

units = yearbook.units_for(state.store(), user)
if units.empty:
    ui.no_data("暂无单位。")
this_year = datetime.date.today().year
c1, c2 = st.columns([2, 1])
labels = dict(zip(units["unit_code"], units["unit_name"] + "(" + units["unit_code"] + ")"))
unit = c1.selectbox("单位", list(labels), format_func=labels.get, key="yearbook.unit", disabled=len(labels) < 2)
year = c2.selectbox("年度", list(range(this_year, 2019, -1)), index=1, key="yearbook.year")
report, info = yearbook.current_or_none(state.store(), user, unit, year)

if views.may(user, "yearbook.upload", unit=unit):
    with st.expander("下载模板 / 上传年报统计表", expanded=report is None):
        st.download_button("下载模板(Excel,版式同公开的年报表格)",
                           lambda: yearbook.template_bytes(unit, labels[unit].rsplit("(", 1)[0], year, report),
                           file_name=f"年报统计表_{unit}_{year}.xlsx", key="yearbook.template",
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        st.caption("只填白色单元格,空白按0计。也可上传长表(CSV 或 XLSX),列为:单位代码、年度、表、行、列、值。")
        n = st.session_state.setdefault("yearbook.n", 0)
        uploaded = st.file_uploader("选择年报统计表文件", type=["xlsx", "csv"], key=f"yearbook.file.{n}")
        as_published = False
        if views.may(user, "yearbook.record"):
            as_published = st.checkbox("按已发布的原样登记(勾稽错误照录,计入年报考评项)", key="yearbook.as_published")
        if uploaded is not None and st.button("检查并导入", type="primary", key="yearbook.import"):
            result = ui.action(yearbook.import_reports, state.store(), uploaded.getvalue(), uploaded.name, user,
                               as_published=as_published)
            if result is not None:
                st.session_state["yearbook.n"] = n + 1
                ui.flash_next("yearbook.done", result.message + "".join(f"\n{w}" for w in result.warnings))

if report is None:
    st.info(ui.plain(f"{labels[unit]}尚无{year}年度的年报统计数据。"))
else:
    errors, warnings = int(info["errors"]), int(info["warnings"])
    st.caption(ui.plain(f"上传人:{info['uploaded_by']},{info['uploaded_at']:%Y-%m-%d %H:%M},文件:{info['file_name']}"))
    if errors:
        st.warning(f"勾稽检查:{errors}处错误(按已发布原样登记,计入年报考评项)")
    elif warnings:
        st.warning(f"勾稽检查通过,提示{warnings}条")
    else:
        st.success("勾稽检查通过")
    for f in info["findings"]:
        prefix = "提示" if f["warning"] else "错误"
        st.warning(ui.plain(f"{prefix}:{yearbook.cell_name(tuple(f['cell']))}:{f['message']}"))
    for t in ("二", "三", "四"):
        st.subheader(yearbook.TABLES[t])
        st.dataframe(yearbook.frame_of(report, t), hide_index=True, width="stretch", key=f"yearbook.t{t}")
    st.download_button("下载Word表格(官方版式,可粘贴到年报)",
                       lambda: yearbook.docx_bytes(state.store(), user, unit, year),
                       file_name=f"{unit}_{year}年度年报统计表.docx", key="yearbook.docx",
                       mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document")

if len(units) > 1:   # the office and checkers: every unit's report of the year
    st.subheader(f"{year}年度各单位报送情况")
    listed = yearbook.uploads(state.store(), user, year)
    st.caption(f"已报送{len(listed)}家,共{len(units)}家;勾稽错误的{int((listed['errors'] > 0).sum())}家。")
    st.dataframe(ui.table(listed.assign(published=listed["as_published"].map({True: "是", False: ""})),
                          {"unit_code": "单位代码", "unit_name": "单位名称", "group": "分组", "errors": "勾稽错误",
                           "warnings": "提示", "published": "按已发布登记", "uploaded_by": "上传人"}),
                 hide_index=True, width="stretch", key="yearbook.list")
