"""登录: username and password; the lockout message comes from the library as it is."""
import streamlit as st

from dashboard import state, ui
from scoring import accounts

st.title("政务公开季度考评")
st.subheader("登录")

left, right = st.columns([1, 1], gap="large")
with left:
    with st.form("login.form", clear_on_submit=True):
        username = st.text_input("用户名", key="login.username")
        password = st.text_input("密码", type="password")  # no key: never kept in session state
        submitted = st.form_submit_button("登录", type="primary")
    if submitted:
        try:
            user = accounts.authenticate(state.store(), username, password)
        except accounts.AuthError as exc:
            st.error(str(exc))
        else:
            state.logout()  # a fresh session: nothing of the form is kept
            state.login(user)
            st.rerun()
    st.caption(f"连续{accounts.MAX_FAILURES}次密码错误,账号将锁定{accounts.LOCK_MINUTES}分钟。")

with right:
    if accounts.is_demo(state.store()):
        st.markdown("**演示账号**(仅演示模式可用)")
        ui.demo_accounts_table()
