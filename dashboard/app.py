"""Kaoping dashboard entry point: routes only.

The navigation is built from the logged-in user's role (Streamlit's "dynamic navigation"):
nobody logged in sees only 登录; a unit user sees its pages; the office sees all of them.

``streamlit run dashboard/app.py`` finds the ``st.App`` at the bottom and serves this same script
through it, with the two routes that set and clear the HttpOnly login cookie (``state.cookie_routes``).
Everything the browser loads comes from this server: the favicon is a local PNG, the icons come
from the Material Symbols font that Streamlit ships (an intranet without internet access works).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import nav, state, ui  # noqa: E402
from scoring import accounts  # noqa: E402

HERE = Path(__file__).resolve().parent
PAGES = HERE / "app_pages"
# a file, served by this server: a ":material/…:" page icon makes the browser fetch the favicon
# from fonts.gstatic.com, which an intranet cannot reach
FAVICON = HERE / "favicon.png"


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
            ui.change_password_form(user)
            if st.button("退出登录", key="app.logout"):
                state.logout()
                st.rerun()
        ui.browser_scripts(state.cookie_script())


def main() -> None:
    st.set_page_config(page_title="政务公开考评", page_icon=str(FAVICON), layout="wide")
    with ui.guarded(), accounts.checked_once():      # the page's many reads check the account once
        user = state.current_user()
        pg = st.navigation(navigation(user), position="sidebar" if user is not None else "hidden")
        sidebar(user)
        ui.demo_banner()
        pg.run()


if __name__ == "__main__":      # a run of the script (every rerun of every browser session, AppTest)
    main()
else:                           # imported by `streamlit run` / uvicorn to serve the script
    app = st.App(__file__, routes=state.cookie_routes())
