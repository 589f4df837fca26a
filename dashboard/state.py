"""Cached loading and session helpers for the dashboard.

The Store is one per database path (``st.cache_resource``) and lingers: it closes the file after
a moment without use, so that the office can run the command line beside the app. Scores and the
ranked history are cached per ``store.data_version``, so any write (upload, rollback, 核定) shows
at the next run. Pages never slice them: they pass them to ``scoring.views`` with the user.
The session holds only the logged-in ``User`` (never a password).
"""
from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from scoring import engine, ranking
from scoring.accounts import User, get_user
from scoring.store import DEFAULT_DB, Store

USER_KEY = "user"


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
    """The logged-in user as the database knows it now (a disabled account is logged out)."""
    user = st.session_state.get(USER_KEY)
    if not isinstance(user, User):
        return None
    fresh = get_user(store(), user.username)
    if fresh is None or fresh != user:
        logout()
        return None
    return fresh


def login(user: User) -> None:
    st.session_state[USER_KEY] = user


def logout() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def user() -> User:
    """The logged-in user (pages are only routed to when there is one)."""
    found = st.session_state.get(USER_KEY)
    if not isinstance(found, User):
        st.stop()
    return found
