"""The DuckDB store: schema, connections and transactions.

Nothing is ever overwritten or deleted: uploads become batches, a rollback marks a batch,
an adjustment is a new row that supersedes the previous one. Every write is one transaction,
and bumps ``data_version`` so that readers can cache by it.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path

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
CREATE SEQUENCE IF NOT EXISTS seq_problem START 1;
CREATE TABLE IF NOT EXISTS problems (
    problem_id INTEGER PRIMARY KEY, unit_code VARCHAR NOT NULL, period VARCHAR NOT NULL, item_id VARCHAR,
    description VARCHAR NOT NULL, link VARCHAR, found_on DATE NOT NULL, due_on DATE NOT NULL,
    status VARCHAR NOT NULL, response VARCHAR, response_link VARCHAR, responded_by VARCHAR, responded_on DATE,
    reviewed_by VARCHAR, reviewed_on DATE, review_note VARCHAR, file_name VARCHAR, row_no INTEGER,
    added_by VARCHAR, added_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS problem_events (
    problem_id INTEGER NOT NULL, happened_at TIMESTAMP NOT NULL, actor VARCHAR, status VARCHAR NOT NULL,
    note VARCHAR, link VARCHAR);
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
CREATE SEQUENCE IF NOT EXISTS seq_yearbook START 1;
CREATE TABLE IF NOT EXISTS yearbook_uploads (
    upload_id INTEGER PRIMARY KEY, unit_code VARCHAR NOT NULL, year INTEGER NOT NULL, file_name VARCHAR,
    sha256 VARCHAR, uploaded_by VARCHAR, uploaded_at TIMESTAMP, errors INTEGER NOT NULL,
    warnings INTEGER NOT NULL, as_published BOOLEAN NOT NULL, findings VARCHAR);
CREATE TABLE IF NOT EXISTS yearbook_cells (
    upload_id INTEGER NOT NULL, tbl VARCHAR NOT NULL, row_key VARCHAR NOT NULL, col_key VARCHAR NOT NULL,
    value DOUBLE NOT NULL);
CREATE OR REPLACE VIEW yearbook_current AS SELECT * FROM yearbook_uploads
    QUALIFY row_number() OVER (PARTITION BY unit_code, year ORDER BY upload_id DESC) = 1;
CREATE OR REPLACE VIEW current_submissions AS {current_submissions};
CREATE OR REPLACE VIEW current_values AS {current_values};
""".replace("{current_submissions}", current_submissions_sql()).replace("{current_values}", current_values_sql())

# tables no result is computed from (:meth:`Store.signatures`): values and submissions are
# written with their batch row, an objection changes scores only through its adjustment
UNSCORED = frozenset({"meta", "audit_log", "users", "sessions", "objections", "indicator_values", "submissions",
                       "problem_events"})   # a problem's history: its row in problems carries its status

_LOCK_WAIT_S = 30.0


def default_path() -> str:
    return os.environ.get("KAOPING_DB") or DEFAULT_DB


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


def _is_conflict(exc: Exception) -> bool:
    import duckdb

    return isinstance(exc, duckdb.TransactionException) or "Conflict" in str(exc)


_WATCHERS: dict[str, weakref.WeakSet] = {}     # database path -> objects told of its writes
_WATCHERS_LOCK = threading.Lock()


def watch_writes(path: str, watcher) -> None:
    """Have ``watcher.written()`` called after every committed write that can change scores to the
    database at ``path``, by any :class:`Store` of this process, in the writer's thread, before the
    write returns. A cache uses it to bring itself up to date at once, so that the next reader
    finds it warm (the writer pays, once); a write by another process is not seen. Kept weakly:
    a watcher that is gone is forgotten."""
    with _WATCHERS_LOCK:
        _WATCHERS.setdefault(_file_key(path), weakref.WeakSet()).add(watcher)


def _file_key(path: str) -> str:
    return os.path.realpath(path)


def _tell_watchers(path: str) -> None:
    if path == ":memory:":      # each in-memory store is a database of its own
        return
    with _WATCHERS_LOCK:
        watchers = list(_WATCHERS.get(_file_key(path), ()))
    for watcher in watchers:
        try:
            watcher.written()
        except Exception:  # noqa: BLE001 - the write is committed; a cache that failed recomputes when read
            logging.getLogger(__name__).exception("refreshing after a write failed")


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
        self._signature_sql: str | None = None
        self._signatures: tuple[int, dict] | None = None   # (data_version, signatures) last read
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
        import duckdb  # here, not at the top: `python -m scoring --help` must not load it (67 ms)

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
        import duckdb

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
        if scores_change:
            _tell_watchers(self.path)

    def write(self, fn, *, attempts: int = 50, scores_change: bool = True):
        """Run ``fn(cursor)`` in one transaction, retrying when another writer conflicts."""
        import duckdb

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

    def signatures(self) -> dict[tuple[str | None, str | None], int]:
        """What every stored result was computed from, as hashes: ``{(period, group): hash}``.

        A key ``(period, group)`` covers the rows of the tables with a unit and a period (batches by
        the quarters and units they name, adjustments, the problem ledger, …), ``(period, None)``
        the rows of the tables with a period only (the lifecycle, snapshots), and ``(None, None)``
        everything else (registry, schemes, …): a result of (period, group) is current while those
        three hashes are. Tables the engine never reads are left out (:data:`UNSCORED`); BLOB
        columns are represented by the other columns of their row (a snapshot's sha256). A reader
        caches per (period, group) and rescores only what a write touched (``dashboard.state``).
        """
        version = self.data_version         # read first: a write after it makes the next call read again
        if self._signatures is not None and self._signatures[0] == version:
            return dict(self._signatures[1])
        with self.cursor() as cur:
            if self._signature_sql is None:     # the tables are those of this code's SCHEMA: read once
                self._signature_sql = self._signatures_query(cur)
            rows = cur.execute(self._signature_sql).fetchall()
        found = {(p, g): int(h) for p, g, h in rows}
        self._signatures = (version, found)
        return dict(found)

    @staticmethod
    def _signatures_query(cur) -> str:
        tables = cur.execute("""
                SELECT table_name, list(column_name ORDER BY column_index) FILTER (WHERE data_type <> 'BLOB')
                FROM duckdb_columns() WHERE schema_name = 'main' AND table_name IN
                    (SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main')
                GROUP BY table_name ORDER BY table_name""").fetchall()
        parts = []
        for table, columns in tables:
            if table in UNSCORED:
                continue
            row = f"hash({', '.join(f't.{c}' for c in columns)})"
            if table == "batches":          # a batch names its quarters and units in two lists
                parts.append(f"""SELECT q.period, u.grp, q.h FROM
                                 (SELECT batch_id, unnest(periods) AS period, {row} AS h FROM batches t) q
                                 JOIN (SELECT batch_id, unnest(units) AS unit_code FROM batches) x USING (batch_id)
                                 JOIN units u USING (unit_code)""")
            elif "unit_code" in columns and "period" in columns:
                parts.append(f"SELECT t.period, u.grp, {row} FROM {table} t JOIN units u USING (unit_code)")
            elif "period" in columns:
                parts.append(f"SELECT t.period, NULL, {row} FROM {table} t")
            else:
                parts.append(f"SELECT NULL, NULL, {row} FROM {table} t")
        return f"""SELECT period, grp, CAST(sum(h) % 18446744073709551557 AS UBIGINT)
                   FROM ({" UNION ALL ".join(parts)}) AS all_rows(period, grp, h) GROUP BY period, grp"""

    def is_empty(self) -> bool:
        """No units, accounts, schemes or batches yet (a new database)."""
        return not self.one("""SELECT (SELECT count(*) FROM units) + (SELECT count(*) FROM users)
                                    + (SELECT count(*) FROM schemes) + (SELECT count(*) FROM batches)""")[0]
