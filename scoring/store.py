"""The DuckDB store: schema, connections and transactions.

Nothing is ever overwritten or deleted: uploads become batches, a rollback marks a batch,
an adjustment is a new row that supersedes the previous one. Every write is one transaction,
and bumps ``data_version`` so that readers can cache by it.
"""
from __future__ import annotations

import atexit
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb

from .errors import KaopingError

DEFAULT_DB = "data/kaoping.duckdb"
CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

def current_submissions_sql(period_filter: str = "") -> str:
    """Each (unit, period) some live batch reported: its newest such batch and newest self score.

    ``period_filter`` (e.g. ``AND s.period IN (?, ?)``) narrows the submissions read first.
    """
    return f"""
    SELECT s.unit_code, s.period, max(s.batch_id) AS batch_id,
           arg_max(s.self_score, s.batch_id) FILTER (WHERE s.self_score IS NOT NULL) AS self_score
    FROM submissions s JOIN batches b USING (batch_id)
    WHERE b.rolled_back_at IS NULL {period_filter}
    GROUP BY s.unit_code, s.period"""


def current_values_sql(period_filter: str = "") -> str:
    """The current value of each (unit, period, indicator): the one in the newest live batch that
    has a cell for it. Blank cells are never stored, so a blank never erases an earlier value, and
    rolling a batch back brings back exactly the cells it had superseded (SPEC round 2).

    ``period_filter`` (e.g. ``AND v.period IN (?, ?)``) narrows the values read first.
    """
    return f"""
    SELECT v.unit_code, v.period, v.indicator, arg_max(v.value, v.batch_id) AS value,
           arg_max(v.is_na, v.batch_id) AS is_na, max(v.batch_id) AS batch_id
    FROM indicator_values v JOIN batches b USING (batch_id)
    WHERE b.rolled_back_at IS NULL {period_filter}
    GROUP BY v.unit_code, v.period, v.indicator"""


SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS seq_batch START 1;
CREATE SEQUENCE IF NOT EXISTS seq_adjustment START 1;
CREATE SEQUENCE IF NOT EXISTS seq_audit START 1;
CREATE SEQUENCE IF NOT EXISTS seq_rectification START 1;
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS units (
    unit_code VARCHAR PRIMARY KEY, unit_name VARCHAR NOT NULL, grp VARCHAR NOT NULL,
    parent_code VARCHAR);
CREATE TABLE IF NOT EXISTS schemes (
    scheme_id VARCHAR PRIMARY KEY, title VARCHAR, yaml_text VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL, groups VARCHAR[], period_from VARCHAR, period_to VARCHAR,
    loaded_at TIMESTAMP, loaded_by VARCHAR);
CREATE TABLE IF NOT EXISTS batches (
    batch_id INTEGER PRIMARY KEY, uploaded_by VARCHAR, uploaded_at TIMESTAMP,
    file_name VARCHAR, sha256 VARCHAR, n_rows INTEGER, periods VARCHAR[], units VARCHAR[],
    rolled_back_at TIMESTAMP, rolled_back_by VARCHAR);
CREATE TABLE IF NOT EXISTS submissions (
    batch_id INTEGER, unit_code VARCHAR, period VARCHAR, self_score DOUBLE, row_no INTEGER);
CREATE TABLE IF NOT EXISTS indicator_values (
    batch_id INTEGER, unit_code VARCHAR, period VARCHAR, indicator VARCHAR,
    value DOUBLE, is_na BOOLEAN);
CREATE TABLE IF NOT EXISTS adjustments (
    adj_id INTEGER PRIMARY KEY, unit_code VARCHAR, period VARCHAR, item_id VARCHAR,
    points DOUBLE, reason VARCHAR NOT NULL, actor VARCHAR, adjusted_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS audit_log (
    id BIGINT PRIMARY KEY, happened_at TIMESTAMP, actor VARCHAR, action VARCHAR, target VARCHAR,
    detail VARCHAR);
CREATE TABLE IF NOT EXISTS users (
    username VARCHAR PRIMARY KEY, pw_hash VARCHAR NOT NULL, role VARCHAR NOT NULL,
    unit_code VARCHAR, disabled BOOLEAN DEFAULT false, created_at TIMESTAMP,
    last_login TIMESTAMP, failed_count INTEGER DEFAULT 0, locked_until TIMESTAMP);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, role VARCHAR NOT NULL, unit_code VARCHAR,
    created_at TIMESTAMP NOT NULL, expires_at TIMESTAMP NOT NULL, revoked_at TIMESTAMP, revoked_reason VARCHAR);
CREATE TABLE IF NOT EXISTS rectifications (
    rect_id INTEGER PRIMARY KEY, unit_code VARCHAR, period VARCHAR, source VARCHAR,
    description VARCHAR, found_at DATE, deadline DATE, status VARCHAR, rectified_at DATE,
    note VARCHAR, updated_by VARCHAR, updated_at TIMESTAMP);
ALTER TABLE rectifications ADD COLUMN IF NOT EXISTS item_id VARCHAR;
CREATE SEQUENCE IF NOT EXISTS seq_period_event START 1;
CREATE SEQUENCE IF NOT EXISTS seq_snapshot START 1;
CREATE SEQUENCE IF NOT EXISTS seq_objection START 1;
CREATE TABLE IF NOT EXISTS period_events (
    event_id INTEGER PRIMARY KEY, period VARCHAR NOT NULL, status VARCHAR NOT NULL, until DATE,
    reason VARCHAR, actor VARCHAR, happened_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS period_snapshots (
    snapshot_id INTEGER PRIMARY KEY, period VARCHAR NOT NULL, event_id INTEGER, data BLOB NOT NULL,
    sha256 VARCHAR, n_units INTEGER, published_by VARCHAR, published_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS objections (
    objection_id INTEGER PRIMARY KEY, unit_code VARCHAR NOT NULL, period VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL, reason VARCHAR NOT NULL, filed_by VARCHAR, filed_at TIMESTAMP,
    status VARCHAR NOT NULL, answer VARCHAR, points DOUBLE, adj_id INTEGER, answered_by VARCHAR,
    answered_at TIMESTAMP);
CREATE OR REPLACE VIEW current_submissions AS {current_submissions};
CREATE OR REPLACE VIEW current_values AS {current_values};
""".replace("{current_submissions}", current_submissions_sql()).replace("{current_values}", current_values_sql())

_LOCK_WAIT_S = 30.0


def default_path() -> str:
    return os.environ.get("KAOPING_DB") or DEFAULT_DB


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


def _is_conflict(exc: Exception) -> bool:
    return isinstance(exc, duckdb.TransactionException) or "Conflict" in str(exc)


class Store:
    """One DuckDB database file (or ``:memory:``).

    DuckDB lets one process at a time open a file for writing. A long-running reader such as the
    app passes ``linger`` (seconds): it then opens the file on demand and closes it once it has
    been idle that long, so that the office can run the command line beside the app; one page's
    many reads still share one opening. Without ``linger`` the file stays open until
    :meth:`close` (the command line, tests, the benchmark).
    """

    def __init__(self, path: str | os.PathLike | None = None, *, read_only: bool = False,
                 linger: float | None = None):
        self.path = str(path or default_path())
        self.read_only = read_only
        self.linger = linger if self.path != ":memory:" else None
        self._lock = threading.RLock()
        self._users = 0
        self._last_use = time.monotonic()
        self._con: duckdb.DuckDBPyConnection | None = None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._opened() as con:
            if not read_only:
                con.execute(SCHEMA)
        self._protect()
        self._closed = False
        if self.linger is not None:
            atexit.register(self.close)       # before the interpreter tears down the closer thread
            threading.Thread(target=self._closer, name="kaoping-store-closer", daemon=True).start()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + _LOCK_WAIT_S
        delay = 0.02
        while True:
            try:
                return duckdb.connect(self.path, read_only=self.read_only, config=CONFIG)
            except duckdb.IOException as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    raise KaopingError(f"无法打开数据库 {self.path}:{exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _protect(self) -> None:
        """The file holds password hashes: readable by its owner only (0600)."""
        if self.path == ":memory:":
            return
        for f in (self.path, self.path + ".wal"):
            try:
                if os.stat(f).st_mode & 0o077:
                    os.chmod(f, 0o600)
            except OSError:
                pass

    @contextmanager
    def _opened(self):
        """The open connection, opening the file if a lingering store had closed it."""
        with self._lock:
            if self._con is None:
                self._con = self._connect()
            self._users += 1
            con = self._con
        try:
            yield con
        finally:
            with self._lock:
                self._users -= 1
                self._last_use = time.monotonic()

    def _closer(self) -> None:
        while True:
            time.sleep(min(self.linger, 0.25))
            with self._lock:
                if self._closed:
                    return
                if (self._con is not None and self._users == 0
                        and time.monotonic() - self._last_use >= self.linger):
                    self._con.close()
                    self._con = None
                    self._protect()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- reading ---------------------------------------------------------------------------
    @contextmanager
    def cursor(self):
        """A cursor of its own (usable from another thread) for the length of a ``with`` block."""
        with self._opened() as con:
            cur = con.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def df(self, sql: str, params=None):
        with self.cursor() as cur:
            return cur.execute(sql, params or []).df()

    def rows(self, sql: str, params=None) -> list[tuple]:
        with self.cursor() as cur:
            return cur.execute(sql, params or []).fetchall()

    def one(self, sql: str, params=None):
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", [key])
        return row[0] if row else default

    @property
    def data_version(self) -> int:
        return int(self.meta("data_version", "0"))

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, scores_change: bool = True):
        """One transaction on a fresh cursor; commits on success, rolls back on any error.

        ``scores_change=False`` (logins, sessions, accounts) leaves ``data_version`` alone, so that
        a login does not make every reader rescore. Use through :meth:`write`: it retries.
        """
        with self.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
                if scores_change:
                    cur.execute(
                        "INSERT INTO meta VALUES ('data_version', '1') ON CONFLICT (key) DO UPDATE "
                        "SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS VARCHAR)"
                    )
                cur.execute("COMMIT")
            except BaseException:
                try:
                    cur.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                raise
        self._protect()

    def write(self, fn, *, attempts: int = 50, scores_change: bool = True):
        """Run ``fn(cursor)`` in one transaction, retrying when another writer conflicts."""
        delay = 0.005
        for attempt in range(attempts):
            try:
                with self.transaction(scores_change=scores_change) as cur:
                    return fn(cur)
            except duckdb.Error as exc:
                if not _is_conflict(exc) or attempt == attempts - 1:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def set_meta(self, cur, key: str, value: str) -> None:
        cur.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def is_empty(self) -> bool:
        """No units, accounts, schemes or batches yet (a new database)."""
        return not self.one("""SELECT (SELECT count(*) FROM units) + (SELECT count(*) FROM users)
                                    + (SELECT count(*) FROM schemes) + (SELECT count(*) FROM batches)""")[0]
