"""Kaoping dashboard entry point: routes only.

The navigation is built from the logged-in user's role (Streamlit's "dynamic navigation"):
nobody logged in sees only 登录; a unit user sees its pages; the office sees all of them.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import nav, state, ui  # noqa: E402

st.set_page_config(page_title="政务公开考评", page_icon=":material/leaderboard:", layout="wide")

PAGES = Path(__file__).resolve().parent / "app_pages"


def page(name: str, title: str, icon: str, *, default: bool = False) -> st.Page:
    return st.Page(str(PAGES / f"{name}.py"), title=title, icon=icon, url_path=name, default=default)


def navigation(user) -> dict:
    sections = nav.sections_for(user)
    return {title: [page(name, label, icon, default=(i == 0 and k == 0))
                    for i, (name, label, icon) in enumerate(pages)]
            for k, (title, pages) in enumerate(sections.items())}


def sidebar(user) -> None:
    with st.sidebar:
        st.caption("政务公开季度考评")
        if user is not None:
            st.text(f"当前用户:{user.username}")
            st.caption(ui.plain(user.role_label + (f"({user.unit_code})" if user.unit_code else "")))
            if st.button("退出登录", key="app.logout"):
                state.logout()
                st.rerun()


def main() -> None:
    with ui.guarded():
        user = state.current_user()
        pg = st.navigation(navigation(user), position="sidebar" if user is not None else "hidden")
        sidebar(user)
        ui.demo_banner()
        pg.run()


main()
