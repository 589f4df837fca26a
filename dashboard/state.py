"""Cached loading and session helpers for the dashboard.

The Store is one per database path (``st.cache_resource``) and lingers: it closes the file after
a moment without use, so that the office can run the command line beside the app. Scores and the
ranked history are cached per ``store.data_version``, so any write (upload, rollback, 核定) shows
at the next run. Pages never slice them: they pass them to ``scoring.views`` with the user.
The session holds only the logged-in ``User`` and its session token (never a password).

A login survives a reload (F5) and a link opened in a new tab: :func:`login` issues a session token
(``scoring.sessions``: random, stored hashed, 8 hours, revoked on logout, password reset or change,
disabling and role change) and the browser keeps it in an **HttpOnly** cookie, which page scripts
cannot read. Streamlit cannot set a cookie from a script, so ``dashboard/app.py`` serves the app
as an ``st.App`` with two small routes (:func:`cookie_routes`): after a login the page posts a
one-time code (valid for a minute, never the token) to ``/kaoping/session``, which answers with
the ``Set-Cookie``; logging out posts to ``/kaoping/logout``, which clears it. A new browser
session reads the cookie (``st.context.cookies``, sent with the page's websocket) and is logged
in again if the token is still good.
"""
from __future__ import annotations

import os
import secrets
import threading
import time

import pandas as pd
import streamlit as st

from scoring import engine, ranking, sessions
from scoring.accounts import User, get_user
from scoring.store import DEFAULT_DB, Store

USER_KEY = "user"
TOKEN_KEY = "session.token"          # this session's login token (server side only)
COOKIE_KEY = "session.cookie"        # what the browser must do with the cookie at the next run


def db_path() -> str:
    return os.environ.get("KAOPING_DB") or DEFAULT_DB


LINGER_S = 2.0


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return Store(path, linger=LINGER_S)


def store() -> Store:
    return _store(db_path())


@st.cache_resource(max_entries=2, show_spinner=False)
def _scored(path: str, version: int) -> tuple[engine.Scores, pd.DataFrame]:
    scores = engine.score(_store(path))
    return scores, ranking.ranked_history(scores)


def scores() -> engine.Scores:
    """Scores of every period, as of the current data version."""
    return _scored(db_path(), store().data_version)[0]


def ranked() -> pd.DataFrame:
    """``ranking.ranked_history`` of every period (do not modify: it is shared)."""
    return _scored(db_path(), store().data_version)[1]


def periods() -> list[str]:
    """The quarters that have results (newest last)."""
    return sorted(ranked()["period"].unique().tolist())


# -- session -------------------------------------------------------------------------------
def current_user() -> User | None:
    """The logged-in user as the database knows it now, or None.

    A session that has a user checks it on every run (a disabled account, a revoked or expired
    token, a changed role: logged out). A new session (a reload, a new tab) is logged in from the
    login cookie when its token is still good.
    """
    user = st.session_state.get(USER_KEY)
    if isinstance(user, User):
        token = st.session_state.get(TOKEN_KEY)
        fresh = sessions.verify(store(), token) if token else get_user(store(), user.username)
        if fresh is None or fresh != user:
            logout()
            return None
        st.session_state[USER_KEY] = fresh      # with what the database adds (the unit's group)
        return fresh
    token = cookie_token()
    if token:
        fresh = sessions.verify(store(), token)
        if fresh is not None:
            st.session_state[USER_KEY] = fresh
            st.session_state[TOKEN_KEY] = token
            return fresh
    return None


def cookie_token() -> str | None:
    """The login token the browser sent with this session's websocket (None outside a browser)."""
    try:
        return st.context.cookies.get(sessions.COOKIE)
    except Exception:  # noqa: BLE001 - no browser context (AppTest, bare mode)
        return None


def login(user: User) -> None:
    """Log ``user`` in (after authenticating): a new session token, handed to the browser as a cookie."""
    token = sessions.create(store(), user)
    st.session_state[USER_KEY] = user
    st.session_state[TOKEN_KEY] = token
    st.session_state[COOKIE_KEY] = ("set", _offer(token))


def token() -> str | None:
    """This session's login token (to keep it when the user changes the own password)."""
    return st.session_state.get(TOKEN_KEY)


def logout() -> None:
    """End this login: revoke its token, forget everything, and clear the browser's cookie."""
    token = st.session_state.get(TOKEN_KEY)
    if token:
        sessions.end(store(), token)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[COOKIE_KEY] = ("clear", "")


def user() -> User:
    """The logged-in user (pages are only routed to when there is one)."""
    found = st.session_state.get(USER_KEY)
    if not isinstance(found, User):
        st.stop()
    return found


# -- the cookie ------------------------------------------------------------------------------
HANDOFF_SECONDS = 60
_handoff: dict[str, tuple[str, float]] = {}      # one-time code -> (token, deadline)
_handoff_lock = threading.Lock()


def _offer(token: str) -> str:
    """A one-time code that the browser trades for the cookie within a minute."""
    code = secrets.token_urlsafe(24)
    now = time.monotonic()
    with _handoff_lock:
        for k in [k for k, (_, deadline) in _handoff.items() if deadline < now]:
            del _handoff[k]
        _handoff[code] = (token, now + HANDOFF_SECONDS)
    return code


def _take(code: str) -> str | None:
    with _handoff_lock:
        found = _handoff.pop(code, None)
    if found is None or found[1] < time.monotonic():
        return None
    return found[0]


def _base_path() -> str:
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/" if base else "/"


def cookie_script() -> str | None:
    """The script that sets or clears the cookie, once, at the run after a login or logout."""
    pending = st.session_state.pop(COOKIE_KEY, None)
    if not pending:
        return None
    what, code = pending
    url = _base_path() + ("kaoping/session" if what == "set" else "kaoping/logout")
    # the code is URL-safe base64, so it needs no quoting inside the JavaScript string
    return (f"<script>fetch({url!r}, {{method: 'POST', body: {code!r}, credentials: 'same-origin', "
            "headers: {'X-Kaoping': '1', 'Content-Type': 'text/plain'}});</script>")


def cookie_routes() -> list:
    """The two routes that set and clear the HttpOnly login cookie (mounted by ``app.py``)."""
    from starlette.responses import Response
    from starlette.routing import Route

    base = _base_path()

    def refused() -> Response:
        return Response(status_code=403)

    async def set_cookie(request):
        if request.headers.get("x-kaoping") != "1":      # a cross-site form cannot send this header
            return refused()
        body = (await request.body())[:200].decode("ascii", "replace")
        token = _take(body.strip())
        if token is None:
            return refused()
        resp = Response(status_code=204)
        resp.set_cookie(sessions.COOKIE, token, max_age=int(sessions.SESSION_HOURS * 3600), path=base,
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return resp

    async def clear_cookie(request):
        if request.headers.get("x-kaoping") != "1":
            return refused()
        resp = Response(status_code=204)
        resp.delete_cookie(sessions.COOKIE, path=base, httponly=True, samesite="strict")
        return resp

    return [Route(base + "kaoping/session", set_cookie, methods=["POST"]),
            Route(base + "kaoping/logout", clear_cookie, methods=["POST"])]
