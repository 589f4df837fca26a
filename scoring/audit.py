"""The audit log: append-only, written inside the transaction of the action it records.

There is deliberately no function here (or anywhere in the library) that updates or deletes
audit rows; ``tests/test_accounts.py`` checks the source for such statements.
"""
from __future__ import annotations

from datetime import datetime

from .accounts import User, require_office

ACTIONS = {
    "login": "登录成功",
    "login_failed": "登录失败",
    "locked": "账号锁定",
    "upload": "上传数据",
    "rollback": "回滚批次",
    "adjust": "核定得分",
    "scheme": "加载考评表",
    "units": "更新单位名录",
    "user": "账号变更",
    "init": "初始化数据库",
    "rectification": "问题整改",
}


def record(cur, actor: User | str, action: str, target: str = "", detail: str = "", *,
           at: datetime | None = None) -> None:
    """Append one row; ``at`` (default: now) lets a caller with its own clock keep it."""
    name = actor.username if isinstance(actor, User) else actor
    cur.execute(
        "INSERT INTO audit_log VALUES (nextval('seq_audit'), ?, ?, ?, ?, ?)",
        [at or datetime.now(), name, action, target, detail],
    )


def read(store, actor: User, *, since=None, who: str | None = None, limit: int | None = None):
    """The log, newest first, for the office only."""
    require_office(actor, "查看审计日志")
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
        sql += f" LIMIT {int(limit)}"
    df = store.df(sql, params)
    df["action_label"] = df["action"].map(ACTIONS).fillna(df["action"])
    return df
