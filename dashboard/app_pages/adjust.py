"""核定 (office): set an item's points for a unit and period with a reason; every adjustment listed."""
import streamlit as st

from dashboard import state, ui
from scoring import adjustments, schemes
from scoring.accounts import require_office
from scoring.engine import STATUS_LABELS

user = state.user()
require_office(user, "核定得分")
st.title("核定")
ui.flash("adjust.msg")
st.caption("核定结果替代计算得分并写明理由;可再次核定修订,记录全部保留。扣分项填写扣除的分数。")

ranked = state.ranked()
if ranked.empty:
    ui.no_data()
units = ranked.drop_duplicates("unit_code").sort_values(["group", "unit_code"])
names = dict(zip(units["unit_code"], units["unit_name"] + "(" + units["unit_code"] + "," + units["group"] + ")"))

c1, c2 = st.columns([2, 1])
default = st.session_state.get("detail.unit")
codes = list(names)
code = c1.selectbox("单位", codes, index=codes.index(default) if default in codes else 0,
                    format_func=names.get, key="adjust.unit")
unit_periods = sorted(ranked.loc[ranked["unit_code"] == code, "period"].unique())[::-1]
period = c2.selectbox("季度", unit_periods, key="adjust.period")

group = units.loc[units["unit_code"] == code, "group"].iloc[0]
scheme = schemes.scheme_for(state.store(), group, period)
detail = state.scores().explain(code, period)
if scheme is None or detail is None:
    ui.no_data("该单位在该季度没有适用的考评表或考评结果。")
items = {i["item_id"]: i for i in detail["items"]}
pending_first = sorted(items, key=lambda k: (items[k]["status"] != "pending", list(items).index(k)))
item_id = st.selectbox("考评项目", pending_first, key="adjust.item",
                       format_func=lambda k: f"{items[k]['name']}({STATUS_LABELS[items[k]['status']]},"
                                             f"现{items[k]['points']:.2f}分" + (f"/满分{items[k]['max']:g}" if items[k]["max"] is not None else "") + ")")
st.caption(f"现计分说明:{items[item_id]['explanation']}")

with st.form("adjust.form", clear_on_submit=True):
    item = scheme.item(item_id)
    top = float(item.max) if item.max is not None else 100.0
    points = st.number_input("核定分值", min_value=0.0, max_value=top, step=0.5, format="%.2f", key="adjust.points")
    reason = st.text_area("核定理由(必填)", key="adjust.reason")
    if st.form_submit_button("保存核定", type="primary"):
        msg = ui.action(adjustments.adjust, state.store(), user, code, period, item_id, points, reason)
        if msg:
            st.session_state["adjust.msg"] = msg
            st.rerun()

st.subheader("核定记录")
adj = adjustments.list_adjustments(state.store(), user)
if adj.empty:
    st.caption("还没有核定记录。")
else:
    item_names = {i.id: i.name for s in schemes.load_schemes(state.store()) for i in s.items}
    adj = adj.assign(current_label=adj["current"].map({True: "现行", False: "已被修订"}),
                     item_name=adj["item_id"].map(item_names).fillna(adj["item_id"]),
                     at=adj["adjusted_at"].dt.strftime("%Y-%m-%d %H:%M"))
    st.dataframe(ui.styled(ui.table(adj, {"unit_name": "单位", "period": "季度", "item_name": "考评项目", "points": "核定分值",
                                          "reason": "理由", "actor": "核定人", "at": "时间",
                                          "current_label": "状态"}), grade_col=None),
                 hide_index=True, width="stretch", key="adjust.table")
