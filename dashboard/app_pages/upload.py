"""数据上传: choose a file, see the preview and either every problem or a confirm button; batch history."""
import streamlit as st

from dashboard import state, ui
from scoring import batches, exports, ingest, lifecycle, views

user = state.user()
st.title("数据上传")
ui.flash("upload.done")
st.caption("支持 CSV(UTF-8 或 Excel 保存的 GBK)和 XLSX(第一个工作表)。每行一个单位一个季度:单位代码、季度、自评分,"
           "然后每个指标一列(表头可用指标代码或中文名称)。有任何问题时整个文件不导入。"
           + (f"单位账号只能上传本单位({user.unit_code})的数据。" if user.unit_code else ""))
for level, line in lifecycle.upload_notices(state.store(), user):   # 报送截止 / 报送已截止
    (st.warning if level == "warning" else st.info)(line, icon=":material/event:")

with st.expander("下载填报模板"):
    groups = views.upload_groups(state.store(), user)
    kinds = [k for k, action in (("unit", "upload.unit"), ("office", "upload.office")) if views.may(user, action)]
    t1, t2, t3, t4 = st.columns([1.2, 1, 1.2, 1])
    t_group = t1.selectbox("分组", groups, key="upload.template_group", disabled=len(groups) < 2)
    t_period = t2.text_input("季度", value=ingest.template_period(state.store(), t_group),
                             key=f"upload.template_period.{t_group}")
    t_kind = t3.selectbox("填报内容", kinds, format_func=ingest.KINDS.get, key="upload.template_kind",
                          disabled=len(kinds) < 2)
    blank = ui.action(ingest.template, state.store(), user, t_group, t_period, t_kind)
    if blank is not None:
        t4.download_button("下载模板(CSV)", exports.to_csv_bytes(blank), key="upload.template",
                           file_name=f"填报模板_{t_group}_{t_period}_{ingest.KINDS[t_kind]}.csv", mime="text/csv")
        n_fixed = 3 if t_kind == "unit" else 2
        st.caption(f"{len(blank)}行(每个单位一行),{len(blank.columns) - n_fixed}个指标列;用 Excel 打开填写后另存为 CSV 或 XLSX 上传。"
                   "是/否类填 是 或 否,比率可写 95%,不适用的填 不适用。空白单元格不会覆盖已报送的数值。")

n_upload = st.session_state.setdefault("upload.n", 0)  # a new key empties the file chooser after an import
uploaded = st.file_uploader("选择文件", type=["csv", "xlsx"], key=f"upload.file.{n_upload}")
if uploaded is not None:
    data = uploaded.getvalue()
    checked = ingest.check_upload(state.store(), data, uploaded.name, user)
    st.markdown("**预览**(前几行)")
    st.dataframe(checked.preview, hide_index=True, width="stretch")
    if not checked.ok:
        st.error(ui.plain(checked.title))
        problems = ui.table(checked.problems, {"row": "行号", "column": "列", "value": "值", "message": "问题"})
        st.dataframe(problems, hide_index=True, width="stretch",
                     column_config={"问题": st.column_config.TextColumn(width="large")})
        st.caption("行号与表格软件中一致(表头为第1行)。请修改后重新上传。")
    else:
        st.success(f"检查通过:{checked.rows}行,{len(checked.values)}个数值,{len(checked.units)}个单位,"
                   f"季度 {'、'.join(checked.periods)}。确认后导入。")
        changed = ingest.changes(state.store(), checked)
        st.markdown(f"**导入后将变化的数值**(共{len(changed)}个;空白单元格不覆盖已有数值)")
        if not changed.empty:
            st.dataframe(ui.table(changed, {"unit_code": "单位代码", "unit_name": "单位名称", "period": "季度",
                                            "name": "指标", "old": "原值", "new": "新值"}),
                         hide_index=True, width="stretch", key="upload.changes")
        if st.button("确认导入", type="primary", key="upload.confirm"):
            result = ui.action(ingest.ingest, state.store(), data, uploaded.name, user)
            if result is not None:
                st.session_state["upload.n"] = n_upload + 1      # a new key empties the file chooser
                ui.flash_next("upload.done", result.message)


st.subheader("上传批次记录")
history = batches.list_batches(state.store(), user)
if history.empty:
    st.caption("还没有上传过数据。")
else:
    shown = history.assign(periods_text=history["periods"].map("、".join),
                           units_text=[f"{len(u)}个" if len(u) > 3 else "、".join(u) for u in history["units"]],
                           rolled_back_by=history["rolled_back_by"].fillna(""))
    st.dataframe(ui.table(shown, {"batch_id": "批次号", "file_name": "文件名", "uploaded_by": "上传人",
                                  "uploaded_at": "上传时间", "n_rows": "行数", "periods_text": "季度",
                                  "units_text": "单位", "status": "状态", "rolled_back_by": "回滚人"}),
                 hide_index=True, width="stretch", key="upload.batches",
                 column_config={"上传时间": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})

    if views.may(user, "batches.rollback"):
        st.subheader("回滚批次")
        live = history[history["status"] != batches.STATUS_ROLLED_BACK]
        if live.empty:
            st.caption("没有可回滚的批次。")
        else:
            labels = {int(b): f"#{b} {f}({s})" for b, f, s in zip(live["batch_id"], live["file_name"], live["status"])}
            # nothing is preselected: a rollback names the batch it undoes
            batch_id = st.selectbox("批次", list(labels), index=None, format_func=labels.get, key="upload.rollback_id",
                                    placeholder="选择要回滚的批次")
            if batch_id is not None:
                b = live[live["batch_id"] == batch_id].iloc[0]
                units_text = "、".join(b["units"][:5]) + (f"等{len(b['units'])}个单位" if len(b["units"]) > 5 else "")
                st.caption(ui.plain(f"批次 #{batch_id}「{b['file_name']}」:{b['uploaded_by']} 上传,{int(b['n_rows'])}行,"
                                    f"季度 {'、'.join(b['periods'])},单位 {units_text}。"))
            with st.form("upload.rollback_form"):
                sure = st.checkbox("我确认回滚该批次(数据不会删除,该批次之前的数据重新生效)", key="upload.rollback_sure")
                go = st.form_submit_button("回滚")
            if go:
                if batch_id is None:
                    st.warning("请先选择要回滚的批次。")
                elif not sure:
                    st.warning("请先勾选确认。")
                else:
                    msg = ui.action(batches.rollback, state.store(), batch_id, user)
                    ui.flash_next("upload.done", msg)
