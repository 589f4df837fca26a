"""Login sessions that survive a reload: a random token per login, kept by the browser, stored hashed here.

A login gets a fresh token (``secrets.token_urlsafe``, 256 bits). The database keeps only its
SHA-256, with the account, the role and unit it was issued for, when it was issued, when it
expires (8 hours later, however much it is used) and whether it was revoked. A stolen database
therefore holds no usable token; a token is good only while

- it is not revoked (logout; the office resetting the password, disabling the account or ending
  its sessions; the user changing the own password ends every other session),
- it has not expired, and
- the account is still enabled with the role and unit the token was issued for (a role change
  ends every session issued before it, whoever changed the role and how).

The dashboard keeps the token in an HttpOnly cookie (``dashboard/state.py``); the command line
needs none. Nothing here ever logs or returns a stored hash.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from .audit import record as _audit
from .errors import InputError, PermissionDenied
from .permissions import User

COOKIE = "kaoping_session"
SESSION_HOURS = 8
TOKEN_BYTES = 32
MAX_TOKEN_LEN = 200            # a cookie longer than this is not ours: refused before hashing

# why a session ended (the audit log and the sessions table say it in these words)
LOGOUT = "退出登录"
PASSWORD_RESET = "密码已被重置"
PASSWORD_CHANGED = "本人修改了密码"
DISABLED = "账号已停用"
ROLE_CHANGED = "账号权限已变更"
ENDED_BY_OFFICE = "政务公开办结束了该账号的登录"


def token_hash(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _plausible(token) -> bool:
    return isinstance(token, str) and 20 <= len(token) <= MAX_TOKEN_LEN and token.isascii()


def create(store, user: User, *, now: datetime | None = None, hours: float = SESSION_HOURS) -> str:
    """A new session for ``user`` (an enabled stored account, just authenticated); returns the token.

    The token is returned once and never stored: keep it in the browser.
    """
    if user.system:
        raise InputError("系统身份不能登录网页")
    now = now or datetime.now()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires = now + timedelta(hours=hours)

    def write(cur):
        row = cur.execute("SELECT role, unit_code, disabled FROM users WHERE username = ?", [user.username]).fetchone()
        if row is None or row[2] or (row[0], row[1]) != (user.role, user.unit_code):
            raise PermissionDenied(f"无法登录:账号 {user.username} 不存在、已停用或权限已变更")
        cur.execute("INSERT INTO sessions (token_hash, username, role, unit_code, created_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [token_hash(token), user.username, user.role, user.unit_code,
                                                  now, expires])
        _audit(cur, user, "session", user.username, f"签发登录凭证,有效至{expires:%Y-%m-%d %H:%M}", at=now)

    store.write(write, scores_change=False)
    return token


def verify(store, token, *, now: datetime | None = None) -> User | None:
    """The account a token logs in, as the database knows it now; None if the token is unknown,
    revoked or expired, the account disabled, or its role or unit changed since the token was issued.
    One read, no write."""
    if not _plausible(token):
        return None
    row = store.one(
        """SELECT s.username, s.role, s.unit_code, u.role, u.unit_code, u.disabled, n.grp
           FROM sessions s JOIN users u ON u.username = s.username
           LEFT JOIN units n ON n.unit_code = u.unit_code
           WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?""",
        [token_hash(token), now or datetime.now()])
    if row is None or row[5]:
        return None
    if (row[1], row[2]) != (row[3], row[4]):
        return None                                # ROLE_CHANGED: issued for another role or unit
    return User(row[0], row[3], row[4], group=row[6])


def end(store, token, *, reason: str = LOGOUT, now: datetime | None = None) -> bool:
    """Revoke one session (logout). False if the token was unknown or had already ended."""
    if not _plausible(token):
        return False
    now = now or datetime.now()

    def write(cur):
        row = cur.execute("SELECT username FROM sessions WHERE token_hash = ? AND revoked_at IS NULL",
                          [token_hash(token)]).fetchone()
        if row is None:
            return False
        cur.execute("UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE token_hash = ?",
                    [now, reason, token_hash(token)])
        _audit(cur, row[0], "logout", row[0], reason, at=now)
        return True

    return store.write(write, scores_change=False)


def revoke_all(cur, username: str, reason: str, *, keep: str | None = None,
               now: datetime | None = None) -> int:
    """Inside the caller's transaction: end every live session of ``username`` (but ``keep``, a
    token); returns how many ended. The caller audits its own action and may name the count."""
    where, params = "username = ? AND revoked_at IS NULL", [username]
    if keep and _plausible(keep):
        where += " AND token_hash <> ?"
        params.append(token_hash(keep))
    live = cur.execute(f"SELECT count(*) FROM sessions WHERE {where}", params).fetchone()[0]
    if live:
        cur.execute(f"UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE {where}",
                    [now or datetime.now(), reason, *params])
    return int(live)


def live_sessions(store, username: str, *, now: datetime | None = None) -> int:
    """How many unexpired, unrevoked sessions ``username`` has (for the office's account list)."""
    return int(store.one("SELECT count(*) FROM sessions WHERE username = ? AND revoked_at IS NULL "
                         "AND expires_at > ?", [username, now or datetime.now()])[0])
