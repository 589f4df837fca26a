"""核定 (office): set an item's points for a unit and period with a reason; every adjustment listed."""
import streamlit as st

from dashboard import state, ui
from scoring import adjustments, schemes, views
from scoring.labels import ITEM_STATUS

user = state.user()
st.title("核定")
ui.flash("adjust.msg")
st.caption("核定结果替代计算得分并写明理由;可再次核定修订,记录全部保留。扣分项填写扣除的分数。")

choices = views.units(state.store(), user)
if choices.empty or state.ranked().empty:
    ui.no_data()
names = dict(zip(choices["unit_code"], choices["unit_name"] + "(" + choices["unit_code"] + "," + choices["group"] + ")"))

c1, c2 = st.columns([2, 1])
default = st.session_state.get("detail.unit")
codes = list(names)
code = c1.selectbox("单位", codes, index=codes.index(default) if default in codes else 0,
                    format_func=names.get, key="adjust.unit")
history = views.unit_history(state.store(), user, code, ranked=state.ranked())
if history.empty:
    ui.no_data("该单位暂无考评结果。")
period = c2.selectbox("季度", history["period"].tolist()[::-1], key="adjust.period")

report = views.unit_report(state.store(), user, code, period, scores=state.scores([period]), ranked=state.ranked())
scheme = schemes.scheme_for(state.store(), report["group"], period)
items = {i["item_id"]: i for i in report["items"]}
pending_first = sorted(items, key=lambda k: (items[k]["status"] != "pending", list(items).index(k)))


def item_label(k: str) -> str:
    it = items[k]
    top = f"/满分{it['max']:g}" if it["max"] is not None else ""
    return f"{it['name']}({ITEM_STATUS[it['status']]},现{abs(it['points']):.2f}分{top})"


item_id = st.selectbox("考评项目", pending_first, key="adjust.item", format_func=item_label)
current = items[item_id]
st.caption(ui.plain(f"现计分说明:{current['explanation']}"))

item = scheme.item(item_id)
penalty = item.max is None
top = float(scheme.total_max) if penalty else float(item.max)
# the form starts at the item's current points (a penalty: the points it takes away)
with st.form(f"adjust.form.{code}.{period}.{item_id}"):
    # no widget bounds: an out-of-range value gets the library's Chinese message, not a browser tooltip
    points = st.number_input("扣除分数" if penalty else f"核定分值(0–{top:g}分)",
                             value=abs(float(current["points"])), step=0.5, format="%.2f",
                             key=f"adjust.points.{code}.{period}.{item_id}")
    reason = st.text_area("核定理由(必填)", key=f"adjust.reason.{code}.{period}.{item_id}")
    if st.form_submit_button("保存核定", type="primary"):
        msg = ui.action(adjustments.adjust, state.store(), user, code, period, item_id, points, reason)
        ui.flash_next("adjust.msg", msg)

st.subheader("核定记录")
adj = views.adjustment_log(state.store(), user)
if adj.empty:
    st.caption("还没有核定记录。")
else:
    adj = adj.assign(at=adj["adjusted_at"].dt.strftime("%Y-%m-%d %H:%M"))
    st.dataframe(ui.styled(ui.table(adj, {"unit_name": "单位", "period": "季度", "item_name": "考评项目", "points": "核定分值",
                                          "reason": "理由", "actor": "核定人", "at": "时间",
                                          "current_label": "状态"}), grade_col=None),
                 hide_index=True, width="stretch", key="adjust.table")
