"""管理 (office): units, accounts, audit log."""
import streamlit as st

import pandas as pd

from dashboard import state, ui
from scoring import accounts, audit, permissions, units, views

user = state.user()
st.title("管理")
ui.flash("admin.msg")

tab_units, tab_users, tab_audit, tab_rights = st.tabs(["单位", "账号", "审计日志", "权限"])

with tab_units:
    registry = units.all_units(state.store())
    g = st.selectbox("分组", ["全部", *ui.ordered_groups(state.store(), user, registry["group"])], key="admin.unit_group")
    order = {name: i for i, name in enumerate(ui.ordered_groups(state.store(), user, registry["group"]))}
    shown = registry if g == "全部" else registry[registry["group"] == g]
    shown = shown.assign(order=shown["group"].map(order)).sort_values(["order", "unit_code"])
    st.caption(f"共{len(shown)}个单位")
    st.dataframe(ui.table(shown, {"unit_code": "单位代码", "unit_name": "单位名称", "group": "分组",
                                  "parent_code": "上级单位代码"}), hide_index=True, width="stretch", key="admin.units",
                 placeholder="—")
    with st.form("admin.registry_form", clear_on_submit=True):
        st.markdown("**导入单位名录**(CSV:单位代码, 单位名称, 分组, 上级单位代码;新单位新增,已有单位更新,不删除)")
        registry_file = st.file_uploader("单位名录文件", type=["csv", "txt"], key="admin.registry")
        if st.form_submit_button("导入") and registry_file is not None:
            result = ui.action(lambda: units.save_units(state.store(), units.parse_registry(registry_file.getvalue()), user))
            if result:
                ui.flash_next("admin.msg", f"单位名录已更新:新增{result['new']}个,更新{result['changed']}个")

with tab_users:
    users = views.users(state.store(), user)
    st.dataframe(ui.table(users, {"username": "用户名", "role_label": "角色", "unit_name": "所属单位",
                                 "state_label": "状态", "last_login": "最近登录", "created_at": "创建时间"}),
                 hide_index=True, width="stretch", key="admin.users", placeholder="—",
                 column_config={"最近登录": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                                "创建时间": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    st.caption("单位账号由本单位负责人和填报员共用(一个单位可开多个账号);账号锁定15分钟后自动解除,也可在右侧立即解除。")

    left, right = st.columns(2)
    with left.form("admin.add_user", clear_on_submit=True):
        st.markdown("**新增账号**")
        name = st.text_input("用户名", key="admin.new_name")
        role = st.selectbox("角色", list(accounts.ROLES), format_func=accounts.ROLES.get, key="admin.new_role")
        registry = units.all_units(state.store())
        unit_names = {"": "(政务公开办、第三方账号不选)", **dict(zip(registry["unit_code"],
                                                               registry["unit_name"] + "(" + registry["unit_code"] + ")"))}
        unit_code = st.selectbox("所属单位", list(unit_names), format_func=unit_names.get, key="admin.new_unit")
        pw = st.text_input("初始密码(至少10个字符)", type="password")
        if st.form_submit_button("新增"):
            created = ui.action(accounts.add_user, state.store(), user, name, pw, role, unit_code or None)
            if created:
                ui.flash_next("admin.msg", f"已新增账号 {created.username}")
    with right:
        names = [u for u in users["username"] if u != user.username]
        with st.form("admin.manage_user", clear_on_submit=True):
            st.markdown("**停用 / 启用 / 解除锁定 / 重置密码 / 强制退出**")
            target = st.selectbox("账号", names, key="admin.target")
            what = st.radio("操作", ["停用", "启用", "解除锁定", "重置密码", "强制退出"], horizontal=True,
                            key="admin.what", help="重置密码、停用和强制退出都会让该账号在所有设备上退出登录。")
            new_pw = st.text_input("新密码(重置密码时填写)", type="password")
            if st.form_submit_button("执行"):
                if what == "停用":
                    ok = ui.action(accounts.disable_user, state.store(), user, target)
                    msg = None if ok is None else (f"已停用 {target}" if ok else f"{target} 原已停用")
                elif what == "启用":
                    ok = ui.action(accounts.enable_user, state.store(), user, target)
                    msg = None if ok is None else (f"已启用 {target}" if ok else f"{target} 未被停用")
                elif what == "解除锁定":
                    ok = ui.action(accounts.unlock_user, state.store(), user, target)
                    msg = None if ok is None else (f"已解除 {target} 的锁定" if ok else f"{target} 未被锁定")
                elif what == "强制退出":
                    n = ui.action(accounts.end_sessions, state.store(), user, target)
                    msg = None if n is None else (f"{target} 已在{n}处退出登录" if n else f"{target} 当前没有登录")
                else:
                    done = ui.action(lambda: accounts.reset_password(state.store(), user, target, new_pw) or True)
                    msg = f"已重置 {target} 的密码" if done else None
                ui.flash_next("admin.msg", msg)

with tab_audit:
    a1, a2 = st.columns([1, 1])
    who = a1.text_input("操作人(留空为全部)", key="admin.audit_who")
    limit = a2.selectbox("显示条数", [100, 500, 2000], key="admin.audit_limit")
    log = audit.read(state.store(), user, who=who.strip() or None, limit=limit)
    if log.empty:
        st.info("没有符合条件的审计记录。")
    else:
        st.dataframe(ui.table(log, {"happened_at": "时间", "actor": "操作人", "action_label": "操作", "target": "对象",
                                    "detail": "详情"}), hide_index=True, width="stretch", key="admin.audit",
                     column_config={"时间": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                                    "详情": st.column_config.TextColumn(width="large")}, placeholder="—")

with tab_rights:
    st.caption("谁可以做什么(由系统的权限表生成;单位账号只能访问本单位或本分组)。")
    st.dataframe(pd.DataFrame(permissions.action_table(), columns=["操作代码", "操作", "政务公开办", "第三方/检查组", "单位"]),
                 hide_index=True, width="stretch", key="admin.rights", placeholder="—")
