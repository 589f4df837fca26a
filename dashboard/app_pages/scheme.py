"""考评表: the scheme as a readable nested table, each rule in words; what changed between two schemes."""
import streamlit as st

from dashboard import state, ui
from scoring import reports, schemes, views

user = state.user()
st.title("考评表")

ui.flash("scheme.msg")

if views.may(user, "scheme.load"):
    with st.expander("加载或更新考评表(YAML)", expanded=not schemes.load_schemes(state.store())):
        st.caption("格式见 README「考评表」一节;同一分组同一季度只能适用一个考评表。有错误时逐条列出位置和字段,不做任何更改。")
        upload = st.file_uploader("考评表文件", type=["yaml", "yml"], key="scheme.upload")
        if upload is not None and st.button("校验并加载", key="scheme.load"):
            from scoring.readers import decode_bytes

            loaded_now = ui.action(lambda: schemes.save_scheme(state.store(), decode_bytes(upload.getvalue()), user))
            if loaded_now:
                new, outcome = loaded_now
                verb = {"new": "已加载", "updated": "已更新", "unchanged": "内容未变化,无需重新加载"}[outcome]
                ui.flash_next("scheme.msg", f"考评表 {new.id}({new.title}){verb}")

loaded = schemes.load_schemes(state.store())
if not loaded:
    ui.no_data("尚未加载考评表。")
loaded = ui.schemes_in_group_order(state.store(), user, loaded)
by_id = {s.id: s for s in loaded}
labels = {s.id: f"{s.title}({'、'.join(s.groups)},{s.period_from}–{s.period_to})" for s in loaded}
ids = list(by_id)
# a unit account opens on its own group's table (the newest one that applies to its group)
own = [s.id for s in loaded if user.group and user.group in s.groups]
start = ids.index(max(own, key=lambda i: (by_id[i].period_to, by_id[i].period_from))) if own else 0

scheme = by_id[st.selectbox("考评表", ids, index=start, format_func=labels.get, key="scheme.pick")]
st.markdown(f"适用分组:**{ui.plain('、'.join(scheme.groups))}**  ·  适用季度:**{scheme.period_from}–{scheme.period_to}**  ·  "
            f"总分:**{scheme.total_max:g}分**  ·  加分上限:**{scheme.bonus_max:g}分**")
st.caption(ui.plain("等级:" + ";".join(f"{g.name} ≥{g.min:g}分" for g in scheme.grades))
           + "。得分 = 各部分得分之和(不适用项按「得分÷适用总分×总分」折算)− 重大扣分 + 加分;触发否决项时另行处理。")

table = reports.scheme_table(scheme)
columns = {"name": "考评项目", "max": "满分", "rule_type_label": "计分方式", "rule": "计分办法"}
for part, rows in table.groupby("part", sort=False):
    part_max = rows["part_max"].iloc[0]
    has_max = part_max is not None and part_max == part_max and not part.startswith("加分项")
    head = f"{part}" + (f"(满分{part_max:g}分,{len(rows)}项)" if has_max else f"({len(rows)}项)")
    with st.expander(ui.plain(head), expanded=False):
        st.dataframe(ui.styled(ui.table(rows, columns), grade_col=None), hide_index=True, width="stretch",
                     column_config={"计分办法": st.column_config.TextColumn(width="large")})

st.subheader("比较两个考评表")
if len(loaded) < 2:
    st.caption("只有一个考评表,无可比较。")
else:
    c1, c2 = st.columns(2)
    old = c1.selectbox("原考评表", ids, format_func=labels.get, key="scheme.old")
    new = c2.selectbox("新考评表", ids, index=1, format_func=labels.get, key="scheme.new")
    diff = reports.scheme_diff(by_id[old], by_id[new])
    if old == new:
        st.caption("请选择两个不同的考评表。")
    elif diff.empty:
        st.success("两个考评表的条目完全相同。")
    else:
        counts = diff["change"].value_counts()
        st.caption(";".join(f"{k}{v}项" for k, v in counts.items()))
        st.table(ui.plain_cells(ui.table(diff, {"change": "变化", "name": "考评项目", "old": "原", "new": "新"}))
                 .style.hide(axis="index"))
