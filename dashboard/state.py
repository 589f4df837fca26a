"""Cached loading and session helpers for the dashboard.

The Store is one per database path (``st.cache_resource``) and lingers: it closes the file after
a moment without use, so that the office can run the command line beside the app. Scores and the
ranked history are kept per (period, set of groups) by :class:`Results`: a write (upload, rollback,
核定) shows at the next run, and only the quarters and groups it touched are scored again.
Pages never slice them: they pass them to ``scoring.views`` with the user.
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

import numpy as np
import pandas as pd
import streamlit as st

from scoring import analytics, engine, ranking, sessions
from scoring.accounts import User, get_user
from scoring.periods import live_on_recorded_day
from scoring.store import DEFAULT_DB, Store, watch_writes

USER_KEY = "user"
TOKEN_KEY = "session.token"          # this session's login token (server side only)
COOKIE_KEY = "session.cookie"        # what the browser must do with the cookie at the next run


def db_path() -> str:
    return os.environ.get("KAOPING_DB") or DEFAULT_DB


LINGER_S = 2.0


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    opened = Store(path, linger=LINGER_S)
    live_on_recorded_day(opened)      # the demo lives on its own day
    return opened


def store() -> Store:
    return _store(db_path())


class Results:
    """Every period's scores and ranked rows of one database, kept in parts, one per (period, set
    of groups), and scored again only where the stored data changed.

    A set of groups is one group, or the groups linked by computed roll-ups (a unit whose figure is
    computed from its children is scored with them). After a write (``data_version`` moved) the
    store's :meth:`~scoring.store.Store.signatures` tell which parts changed: those are scored again,
    in one engine run for the quarters touched in every group (a whole quarter's upload) and one
    per part for the others (a unit's own upload), and re-ranked with the parts of the next quarter
    (whose rank changes they feed). A new part keeps its blocks, so that what the analytics
    memoise on them (``scoring.memo``) survives writes to other parts.

    A write in this process (an upload, a 核定, a rollback made in the app) brings the results up
    to date before it returns (:meth:`written`): the writer pays for rescoring what it touched and
    for the rank intervals and 核查 flags of those quarters, once, and the next page, whoever
    opens it, finds them ready. A write by another process (the command line) is scored at the
    next page's run.
    """

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._parts: dict[tuple, tuple[int, engine.Scores]] = {}     # (period, groups) -> (hash, scores)
        self._ranked: dict[tuple, tuple[tuple, pd.DataFrame]] = {}   # (period, groups) -> (hashes, rows)
        self._periods: dict[tuple, engine.Scores] = {}              # periods -> their parts combined
        self._all: tuple[engine.Scores, pd.DataFrame] | None = None
        self._unwarmed: set[tuple] = set()        # parts scored again since the last warm-up
        watch_writes(store.path, self)

    def current(self) -> "Results":
        """Bring the parts up to the stored data (a no-op while ``data_version`` and the day are
        unchanged: a new day can make a problem 逾期未整改, which ledger indicators count)."""
        from scoring.periods import today

        version = (self.store.data_version, today())
        with self._lock:
            if version != self._version:
                self._refresh()
                self._version = version
        return self

    WARMED_QUARTERS = 2         # a write touching more (a new scheme) warms the newest: pages show one at a time
    WARMED_GROUP_UNITS = 5_000  # rank intervals of a larger group (units × 1,000 draws) wait for a page to ask

    def written(self) -> None:
        """After a committed write in this process (:func:`scoring.store.watch_writes`): score what
        it touched, and compute what the pages show of it: the rank intervals of every touched
        group, the quarter's 核查 flags, the ranked history and its per-unit index."""
        self.current()
        with self._lock:
            parts, self._unwarmed = self._unwarmed, set()
        for period in sorted({p for p, _ in parts})[-self.WARMED_QUARTERS:]:
            self._warm(period, sorted({g for p, groups in parts if p == period for g in groups}))
        ranked = self.ranked()
        ranking.history_index(ranked)
        analytics.self_accuracy_of_all(ranked)

    def _warm(self, period: str, groups: list[str]) -> None:
        """What 排名 and 单位详情 compute of a quarter's touched groups (each memoised on the blocks)."""
        from scoring.annual import annual_table
        from scoring.periods import year_quarters
        from scoring.schemes import load_schemes

        scores = self.scores([period])
        sizes = scores.units["group"].value_counts()
        for group in groups:
            if sizes.get(group, 0) <= self.WARMED_GROUP_UNITS:
                analytics.robustness_of(scores, period, group)
        analytics.ranked_period(scores, period)
        analytics.anomalies_of(self.store, scores, period)
        scores.sections         # (a cached property) the section chart's table
        year, schemes = int(period[:4]), load_schemes(self.store)
        for group in groups:
            annual_table(self.scores(year_quarters(year)), year, group, schemes)

    # -- what the pages read ----------------------------------------------------------------------
    def scores(self, periods: list[str] | None = None) -> engine.Scores:
        """The scores of ``periods`` (every period when None), the same object while unchanged."""
        if periods is None:
            return self._whole()[0]
        key = tuple(sorted(set(periods)))
        with self._lock:
            found = self._periods.get(key)
            if found is None:
                found = engine.Scores.combine([sc for (p, _), (_, sc) in sorted(self._parts.items()) if p in key])
                self._periods[key] = found
        return found

    def ranked(self) -> pd.DataFrame:
        return self._whole()[1]

    def _whole(self) -> tuple[engine.Scores, pd.DataFrame]:
        with self._lock:
            if self._all is None:
                keys = sorted(self._parts)
                scores = engine.Scores.combine([self._parts[k][1] for k in keys])
                frames = [self._ranked[k][1] for k in keys if k in self._ranked]
                if not frames:
                    rows = ranking.ranked_history(scores)
                elif all(len(k[1]) == 1 for k in keys):     # parts in (period, group) order, each sorted
                    rows = pd.concat(frames, ignore_index=True)
                else:
                    rows = pd.concat(frames).sort_values(["period", "group", "rank", "unit_code"], ignore_index=True)
                self._all = scores, rows
            return self._all

    # -- refreshing ---------------------------------------------------------------------------------
    def _refresh(self) -> None:
        from scoring.periods import previous, today
        from scoring.schemes import load_schemes

        signature = self.store.signatures()
        sets = _group_sets(self.store, load_schemes(self.store))
        everywhere = hash((signature.get((None, None)), today()))      # "today" moves 逾期 counts
        wanted = {(period, groups): hash((everywhere, signature.get((period, None)),
                                          tuple(signature.get((period, g)) for g in groups)))
                  for period in sorted({p for p, _ in signature if p is not None}) for groups in sets}
        stale = [k for k, h in wanted.items() if self._parts.get(k, (None,))[0] != h]
        by_period: dict[str, list[tuple]] = {}
        for period, groups in stale:
            by_period.setdefault(period, []).append(groups)
        # a quarter touched in every group is scored whole (with the others so touched, in one run)
        whole = [p for p, touched in by_period.items() if len(touched) == len(sets)]
        runs = [(whole, None)] if whole else []
        runs += [([p], groups) for p, touched in by_period.items() if p not in whole for groups in touched]
        all_periods = len(whole) == len({p for p, _ in wanted})
        for periods_, groups in runs:
            scored = engine.score(self.store, None if all_periods and groups is None else periods_,
                                  None if groups is None else list(groups))
            parts = _split(scored, sets)
            for key in [(p, g) for p in periods_ for g in ([groups] if groups else sets)]:
                self._parts[key] = (wanted[key], parts.get(key) or engine.Scores.combine([]))
        self._unwarmed.update(stale)
        gone = {k[0] for k in self._parts if k not in wanted}
        self._parts = {k: v for k, v in self._parts.items() if k in wanted}

        # ranks: again for a part that changed, and for the next quarter's (its rank change)
        hashes = {k: (h, wanted.get((previous(k[0]), k[1]))) for k, h in wanted.items()}
        rerank = [k for k in wanted if self._ranked.get(k, (None,))[0] != hashes[k]]
        if rerank:
            needed = sorted(set(rerank) | {(previous(p), g) for p, g in rerank if (previous(p), g) in self._parts})
            rows = ranking.with_changes(ranking.rank_units(
                pd.concat([self._parts[k][1].units for k in needed], ignore_index=True)))
            split = _by_part(rows, sets)
            for k in rerank:      # sorted as ranking.ranked_history sorts
                part = split.get(k, rows.iloc[0:0]).sort_values(["group", "rank", "unit_code"], ignore_index=True)
                self._ranked[k] = (hashes[k], part)
        self._ranked = {k: v for k, v in self._ranked.items() if k in wanted}
        touched = {p for p, _ in stale} | gone
        self._periods = {k: v for k, v in self._periods.items() if touched.isdisjoint(k)}
        if stale or rerank or gone:
            self._all = None


def _group_sets(store: Store, schemes) -> list[tuple[str, ...]]:
    """The groups, each alone, except that groups linked by a computed roll-up (a unit with a
    ``children`` indicator and its children in another group) are one set."""
    units = store.rows("SELECT unit_code, grp, parent_code FROM units")
    rollups = any(i.computed and i.computed[0] == "children" for s in schemes for i in s.indicators.values())
    root = {g: g for _, g, _ in units}

    def find(g):
        while root[g] != g:
            g = root[g]
        return g

    if rollups:
        group_of = {u: g for u, g, _ in units}
        for _, g, parent in units:
            if parent in group_of:
                a, b = find(g), find(group_of[parent])
                if a != b:
                    root[max(a, b)] = min(a, b)
    sets: dict[str, list[str]] = {}
    for g in sorted(root):
        sets.setdefault(find(g), []).append(g)
    return sorted(tuple(v) for v in sets.values())


def _split(scores: engine.Scores, sets: list[tuple[str, ...]]) -> dict[tuple, engine.Scores]:
    """One scoring run cut into its parts: ``{(period, groups): scores}``."""
    blocks: dict[tuple, list[engine.Block]] = {}
    for b in scores.blocks:
        for key, rows in _part_rows(b.keys, sets).items():
            blocks.setdefault(key, []).append(b.take(rows))
    return {key: engine.Scores(blocks.get(key, []), units) for key, units in _by_part(scores.units, sets).items()}


def _part_rows(frame: pd.DataFrame, sets: list[tuple[str, ...]]) -> dict[tuple, np.ndarray]:
    """The positions of each part's rows in ``frame`` (columns period and group)."""
    number = {g: n for n, groups in enumerate(sets) for g in groups}
    codes, uniques = pd.factorize(frame["group"])     # a map over 100k strings is slow: map the few
    which = np.array([number[g] for g in uniques] + [-1], dtype=np.int64)[codes]
    parts = pd.DataFrame({"period": frame["period"].to_numpy(), "set": which}).groupby(["period", "set"], sort=False)
    return {(p, sets[n]): rows for (p, n), rows in parts.indices.items()}


def _by_part(frame: pd.DataFrame, sets: list[tuple[str, ...]]) -> dict[tuple, pd.DataFrame]:
    """``frame`` cut into its parts' rows: one reordering, then slices (a take per part is slow)."""
    at = _part_rows(frame, sets)
    if not at:
        return {}
    frame = frame.iloc[np.concatenate(list(at.values()))]
    out, start = {}, 0
    for key, rows in at.items():
        out[key] = frame.iloc[start:start + len(rows)].reset_index(drop=True)
        start += len(rows)
    return out


@st.cache_resource(show_spinner=False)
def _results(path: str) -> Results:
    return Results(_store(path))


def results() -> Results:
    """This database's results, brought up to the stored data."""
    return _results(db_path()).current()


def scores(periods: list[str] | None = None) -> engine.Scores:
    """Scores of ``periods`` (every period when None), as of the stored data now. Pages that show
    one or two quarters pass them: a result of a few quarters is cheap to explain and to look into."""
    return results().scores(periods)


def ranked() -> pd.DataFrame:
    """``ranking.ranked_history`` of every period (do not modify: it is shared)."""
    return results().ranked()


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
