"""The audit log: append-only, written inside the transaction of the action it records.

There is deliberately no function here (or anywhere in the library) that updates or deletes
audit rows; ``tests/test_accounts.py`` checks the source for such statements.
"""
from __future__ import annotations

from datetime import date, datetime

from .errors import InputError
from .labels import AUDIT_ACTIONS
from .permissions import User, require

MAX_LIMIT = 100_000


def record(cur, actor: User | str, action: str, target: str = "", detail: str = "", *,
           at: datetime | None = None) -> None:
    """Append one row; ``at`` (default: now) lets a caller with its own clock keep it."""
    name = actor.username if isinstance(actor, User) else actor
    cur.execute(
        "INSERT INTO audit_log VALUES (nextval('seq_audit'), ?, ?, ?, ?, ?)",
        [at or datetime.now(), name, action, target, detail],
    )


def parse_since(text) -> datetime | None:
    """``2025-10-01`` or ``2025-10-01 08:30`` as a datetime; a Chinese error naming the value otherwise."""
    if text is None or isinstance(text, datetime):
        return text
    if isinstance(text, date):
        return datetime(text.year, text.month, text.day)
    try:
        return datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise InputError(f"起始时间「{text}」无效:应为 2025-10-01 或 2025-10-01 08:30 这样的日期时间") from None


def read(store, actor: User, *, since=None, who: str | None = None, limit: int | None = None):
    """The log, newest first, for the office only."""
    require(actor, "audit.view")
    since = parse_since(since)
    if limit is not None and not (isinstance(limit, int) and 1 <= limit <= MAX_LIMIT):
        raise InputError(f"显示条数「{limit}」无效:应为 1 到 {MAX_LIMIT} 之间的整数")
    sql = "SELECT id, happened_at, actor, action, target, detail FROM audit_log WHERE true"
    params: list = []
    if since is not None:
        sql += " AND happened_at >= ?"
        params.append(since)
    if who:
        sql += " AND actor = ?"
        params.append(who)
    sql += " ORDER BY id DESC"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    df = store.df(sql, params)
    df["action_label"] = df["action"].map(AUDIT_ACTIONS).fillna(df["action"])
    return df
