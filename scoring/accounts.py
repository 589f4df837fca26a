"""Accounts: users in DuckDB, argon2id hashes, login with lockout, demo accounts.

Who may do what is :mod:`scoring.permissions`; this module only knows who someone is."""
from __future__ import annotations

import re
import unicodedata
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from . import permissions, sessions
from .audit import record as _audit
from .errors import InputError, KaopingError, NotFound, PermissionDenied
from .labels import ROLE_LABELS as ROLES
from .permissions import SYSTEM, User


# Nothing here ever returns, prints, logs or stores a password or a hash (list_users leaves
# pw_hash out; audit details name the action, never the secret).


class AuthError(KaopingError):
    """Login refused; the message is safe to show as it is."""


MIN_PASSWORD_LEN = 10
MAX_PASSWORD_LEN = 1024          # argon2 has no 72-byte limit; this only bounds the work per try
MAX_FAILURES = 5
LOCK_MINUTES = 15
BAD_LOGIN = "用户名或密码错误"
DISABLED = "账号已停用"
RESERVED_NAMES = {"命令行", SYSTEM.username}
_NAME_RE = re.compile(r"[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]{1,31}")

_hasher = PasswordHasher()        # argon2id, library defaults (RFC 9106 low-memory profile)


def _norm_pw(pw: str) -> str:
    # The same password typed through different input methods must give the same bytes.
    return unicodedata.normalize("NFC", pw)


def _norm_name(username) -> str:
    if not isinstance(username, str):
        return ""
    return unicodedata.normalize("NFKC", username).strip()


def validate_password(pw, *, username: str | None = None) -> None:
    """Raise InputError (in Chinese) unless ``pw`` is acceptable as a new password."""
    if not isinstance(pw, str) or not pw:
        raise InputError("密码不能为空")
    pw = _norm_pw(pw)
    if len(pw) < MIN_PASSWORD_LEN:
        raise InputError(f"密码至少需要{MIN_PASSWORD_LEN}个字符(当前{len(pw)}个)")
    if len(pw) > MAX_PASSWORD_LEN:
        raise InputError(f"密码不能超过{MAX_PASSWORD_LEN}个字符")
    if any(unicodedata.category(c) == "Cc" for c in pw):
        raise InputError("密码不能包含控制字符(如换行、制表符)")
    if not pw.strip():
        raise InputError("密码不能全是空格")
    if len(set(pw)) < 4:
        raise InputError("密码过于简单:至少需要4个不同的字符")
    if username and _norm_name(username).lower() in pw.lower():
        raise InputError("密码不能包含用户名")
    if _guessable(pw):
        raise InputError("密码过于常见或有规律(如 1234567890、qwertyuiop、password、重复的片段),请换一个")


# The passwords every guessing list starts with (compared without case, digits and
# punctuation kept), and the keyboard rows people walk along.
COMMON_PASSWORDS = frozenset("""
password passw0rd password1 password12 password123 password1234 p@ssw0rd p@ssword admin123456
administrator adminadmin qwerty123 qwerty1234 qwertyuiop qwertyuiop123 1q2w3e4r5t 1qaz2wsx3edc
zaq12wsxcde abc123456 abcd123456 a123456789 iloveyou1 welcome123 letmein123 changeme123
woaini1314 woaini520 5201314520 zhang123456 wang123456 li123456789 aa123456789 qq123456789
1234qwer 123qweasd 123qweasdzxc qweasdzxc asdfghjkl zxcvbnm123 kaoping2025 zhengwugongkai
""".split())
_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _guessable(pw: str) -> bool:
    """A common password, a run along the alphabet or a keyboard row, or a repeated short piece."""
    low = pw.lower()
    if low in COMMON_PASSWORDS:
        return True
    steps = {ord(b) - ord(a) for a, b in zip(low, low[1:])}
    if len(steps) == 1 and steps <= {1, -1}:
        return True                                 # 0123456789, abcdefghij, 9876543210
    for row in _KEYBOARD_ROWS:
        if low in row or low in row[::-1]:
            return True
    # 1212121212, abcabcabca: a short piece repeated
    return any((low[:k] * len(low))[:len(low)] == low for k in range(1, len(low) // 2 + 1))


def hash_password(pw: str) -> str:
    """An argon2id hash of ``pw`` (salted; a new hash every call)."""
    if not isinstance(pw, str):
        raise InputError("密码必须是文本")
    return _hasher.hash(_norm_pw(pw))


def verify(pw_hash: str, pw: str) -> bool:
    """True if ``pw`` matches ``pw_hash`` (argon2's argument order: hash first)."""
    if not isinstance(pw, str) or not isinstance(pw_hash, str) or len(pw) > MAX_PASSWORD_LEN:
        return False
    try:
        return _hasher.verify(pw_hash, _norm_pw(pw))
    except (VerificationError, InvalidHashError):
        return False


verify_password = verify


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("kaoping-dummy-password-never-used")


def _mask(name: str) -> str:
    """An unknown login name for the audit log: people type passwords into the name field."""
    name = "".join(c for c in str(name) if unicodedata.category(c)[0] != "C")
    return f"{name[:2]}***({len(name)}字符)" if name else "(空)"


def _row(cur_or_store, username: str):
    sql = ("SELECT u.username, u.pw_hash, u.role, u.unit_code, u.disabled, u.failed_count, u.locked_until, n.grp "
           "FROM users u LEFT JOIN units n USING (unit_code) WHERE lower(u.username) = lower(?)")
    if hasattr(cur_or_store, "one"):
        return cur_or_store.one(sql, [username])
    return cur_or_store.execute(sql, [username]).fetchone()


def _user(row) -> User:
    return User(row[0], row[2], row[3], group=row[7])


def _is_demo_password(store, pw: str) -> bool:
    return _norm_pw(pw) in {p for _, p, _ in demo_accounts()} and not is_demo(store)


def _new_password_ok(store, pw, username) -> None:
    validate_password(pw, username=username)
    if _is_demo_password(store, pw):
        raise InputError("不能使用公开的演示密码(只在演示模式下可用)")


_CHECKED: ContextVar[dict | None] = ContextVar("kaoping_checked_accounts", default=None)


@contextmanager
def checked_once():
    """Within the block (one run of a page), an account found active is not read again: a page
    calls the read layer a dozen times, and each call checks its actor. An account write made
    inside the block forgets what was found (:func:`_write`); one made elsewhere counts from the
    next block (the next run of the page)."""
    token = _CHECKED.set({})
    try:
        yield
    finally:
        _CHECKED.reset(token)


def _write(store, fn):
    """An account write (never a change to scores): forgets the checks of :func:`checked_once`."""
    try:
        return store.write(fn, scores_change=False)
    finally:
        checked = _CHECKED.get()
        if checked is not None:
            checked.clear()


def require_active(store, actor: User, what: str = "操作") -> User:
    """The acting user as the database knows it now; refuses disabled or deleted accounts.

    The command line's and the system's own identities (``User.system``) are not stored accounts and pass.
    A session that outlived its account (disabled, or its role changed) is refused.
    """
    if actor.system:
        return actor
    checked = _CHECKED.get()
    key = (store.path, actor)
    if checked is not None and key in checked:
        return checked[key]
    row = _row(store, actor.username)
    if row is None or row[4]:
        raise PermissionDenied(f"无权{what}:账号 {actor.username} 不存在或已停用")
    current = _user(row)
    if (current.role, current.unit_code) != (actor.role, actor.unit_code):
        raise PermissionDenied(f"无权{what}:账号 {actor.username} 的权限已变更,请重新登录")
    if checked is not None:
        checked[key] = current
    return current


def _require_manager(store, actor: User, what: str) -> User:
    permissions.require(actor, "users.manage")
    return require_active(store, actor, what)


# -- user management (office only) ---------------------------------------------------------
def add_user(store, actor: User, username: str, password: str, role: str,
             unit_code: str | None = None) -> User:
    _require_manager(store, actor, "管理账号")
    username = _norm_name(username)
    if not _NAME_RE.fullmatch(username):
        raise InputError("用户名需为2–32个字符,只能包含字母、数字、汉字和 _ . -,且以字母、数字或汉字开头")
    if username in RESERVED_NAMES:
        raise InputError(f"用户名「{username}」为系统保留,不能使用")
    if role not in ROLES:
        raise InputError("角色只能是 " + "、".join(f"{k}({v})" for k, v in ROLES.items()) + f",不能是「{role}」")
    unit_code = (unit_code or "").strip() or None
    if role == "unit" and not unit_code:
        raise InputError("单位账号必须指定所属单位代码(--unit)")
    if role != "unit" and unit_code:
        raise InputError(f"{ROLES[role]}账号不能绑定单位")
    _new_password_ok(store, password, username)
    pw_hash = hash_password(password)

    def write(cur):
        if unit_code and not cur.execute("SELECT 1 FROM units WHERE unit_code = ?", [unit_code]).fetchone():
            raise NotFound(f"单位代码 {unit_code} 不存在,请先导入单位名录")
        if _row(cur, username):
            raise InputError(f"用户名「{username}」已存在")
        cur.execute("INSERT INTO users (username, pw_hash, role, unit_code, disabled, created_at, failed_count) "
                    "VALUES (?, ?, ?, ?, false, ?, 0)", [username, pw_hash, role, unit_code, datetime.now()])
        _audit(cur, actor, "user", username,
               f"新增账号,角色:{ROLES[role]}" + (f",单位:{unit_code}" if unit_code else ""))
        return User(username, role, unit_code)

    return _write(store, write)


def _existing(cur, username: str):
    row = _row(cur, _norm_name(username))
    if row is None:
        raise NotFound(f"账号「{username}」不存在")
    return row


def disable_user(store, actor: User, username: str) -> bool:
    """Disable an account (its sessions end at their next page). False if it already was."""
    me = _require_manager(store, actor, "管理账号")

    def write(cur):
        row = _existing(cur, username)
        if row[0] == me.username:
            raise InputError("不能停用自己的账号")
        if row[4]:
            return False
        if row[2] == "office":
            others = cur.execute("SELECT count(*) FROM users WHERE role = 'office' AND NOT disabled "
                                 "AND username <> ?", [row[0]]).fetchone()[0]
            if others == 0:
                raise InputError("不能停用最后一个可用的政务公开办账号")
        cur.execute("UPDATE users SET disabled = true WHERE username = ?", [row[0]])
        ended = sessions.revoke_all(cur, row[0], sessions.DISABLED)
        _audit(cur, actor, "user", row[0], "停用账号" + (f",结束其{ended}个登录" if ended else ""))
        return True

    return _write(store, write)


def enable_user(store, actor: User, username: str) -> bool:
    """Enable an account again (and clear any lock). False if it was not disabled."""
    _require_manager(store, actor, "管理账号")

    def write(cur):
        row = _existing(cur, username)
        if not row[4]:
            return False
        cur.execute("UPDATE users SET disabled = false, failed_count = 0, locked_until = NULL "
                    "WHERE username = ?", [row[0]])
        _audit(cur, actor, "user", row[0], "启用账号")
        return True

    return _write(store, write)


def unlock_user(store, actor: User, username: str, *, now: datetime | None = None) -> bool:
    """Lift a lock (five wrong passwords) before its fifteen minutes are up, and clear the failure
    count (office only). False if the account was not locked and had no failures to clear."""
    _require_manager(store, actor, "解除锁定")
    now = now or datetime.now()

    def write(cur):
        row = _existing(cur, username)
        locked = row[6] is not None and row[6] > now
        if not locked and not (row[5] or 0):
            return False
        cur.execute("UPDATE users SET failed_count = 0, locked_until = NULL WHERE username = ?", [row[0]])
        _audit(cur, actor, "user", row[0], "解除锁定" if locked else f"清除{row[5]}次密码错误记录", at=now)
        return True

    return _write(store, write)


def end_sessions(store, actor: User, username: str) -> int:
    """End every login of an account now (office only; e.g. a lost or shared computer).
    Returns how many ended; the account itself stays usable."""
    _require_manager(store, actor, "结束登录")

    def write(cur):
        row = _existing(cur, username)
        ended = sessions.revoke_all(cur, row[0], sessions.ENDED_BY_OFFICE)
        if ended:
            _audit(cur, actor, "user", row[0], f"结束其{ended}个登录")
        return ended

    return _write(store, write)


def reset_password(store, actor: User, username: str, new_password: str) -> None:
    """Set a new password for someone (office only); clears the lock and failure count and ends
    every session of the account (whoever knew the old password is logged out)."""
    _require_manager(store, actor, "重置密码")
    row = _row(store, _norm_name(username))
    if row is None:
        raise NotFound(f"账号「{username}」不存在")
    _new_password_ok(store, new_password, row[0])
    pw_hash = hash_password(new_password)

    def write(cur):
        target = _existing(cur, row[0])
        cur.execute("UPDATE users SET pw_hash = ?, failed_count = 0, locked_until = NULL WHERE username = ?",
                    [pw_hash, target[0]])
        ended = sessions.revoke_all(cur, target[0], sessions.PASSWORD_RESET)
        _audit(cur, actor, "user", target[0], "重置密码" + (f",结束其{ended}个登录" if ended else ""))

    _write(store, write)


def change_password(store, user: User, old: str, new: str, *, now: datetime | None = None,
                    keep: str | None = None) -> None:
    """Change one's own password; the old one is checked like a login (failures count).

    Every other session of the account ends (``keep``: the token of the session asking, which stays).
    """
    require_active(store, user, "修改密码")
    _check(store, user.username, old, now, purpose="change")
    if _norm_pw(new) == _norm_pw(old):
        raise InputError("新密码不能与原密码相同")
    _new_password_ok(store, new, user.username)
    pw_hash = hash_password(new)

    def write(cur):
        cur.execute("UPDATE users SET pw_hash = ? WHERE username = ?", [pw_hash, user.username])
        ended = sessions.revoke_all(cur, user.username, sessions.PASSWORD_CHANGED, keep=keep, now=now)
        _audit(cur, user, "user", user.username,
               "修改本人密码" + (f",结束其他{ended}个登录" if ended else ""), at=now)

    _write(store, write)


def list_users(store, actor: User, *, now: datetime | None = None):
    """All accounts, without hashes (office only); ``locked`` is computed against ``now``."""
    _require_manager(store, actor, "查看账号列表")
    df = store.df("""SELECT u.username, u.role, u.unit_code, n.unit_name, u.disabled, u.created_at,
                            u.last_login, u.failed_count, u.locked_until,
                            coalesce(u.locked_until > ?, false) AS locked
                     FROM users u LEFT JOIN units n USING (unit_code) ORDER BY u.role, u.username""",
                  [now or datetime.now()])
    df.insert(2, "role_label", df["role"].map(ROLES))
    df["state_label"] = [("已停用" if d else "正常") + ("(锁定中)" if k else "")
                         for d, k in zip(df["disabled"], df["locked"])]
    return df


def get_user(store, username: str) -> User | None:
    """The account as it is now, or None if unknown or disabled (call it on every page)."""
    row = _row(store, _norm_name(username)) if _norm_name(username) else None
    if row is None or row[4]:
        return None
    return _user(row)


# -- login ---------------------------------------------------------------------------------
def _lock_message(until: datetime) -> str:
    shown = until if until.second == 0 and until.microsecond == 0 else (
        until.replace(second=0, microsecond=0) + timedelta(minutes=1))
    return f"账号已锁定,请于{shown:%H:%M}后再试"


def _check(store, username, password, now, *, purpose: str) -> User:
    """Check a password, counting failures and locking; audit every outcome."""
    now = now or datetime.now()
    name = _norm_name(username)
    row = _row(store, name) if name else None
    if row is None:
        verify(_dummy_hash(), password if isinstance(password, str) else "")  # same work as a real try
        store.write(lambda cur: _audit(cur, _mask(name), "login_failed", "", "未知用户名", at=now),
                    scores_change=False)
        raise AuthError(BAD_LOGIN)
    if row[6] is not None and row[6] > now:
        verify(_dummy_hash(), password if isinstance(password, str) else "")
        store.write(lambda cur: _audit(cur, row[0], "login_failed", row[0], "账号锁定期间尝试登录", at=now),
                    scores_change=False)
        raise AuthError(_lock_message(row[6]))
    ok = verify(row[1], password)

    def write(cur):
        # Re-read inside the transaction: a concurrent attempt may have locked or disabled it.
        fresh = _existing(cur, row[0])
        locked_until = fresh[6] if fresh[6] is not None and fresh[6] > now else None
        what = "修改密码时" if purpose == "change" else ""
        if locked_until is not None:
            _audit(cur, row[0], "login_failed", row[0], f"{what}账号锁定期间尝试登录", at=now)
            return AuthError(_lock_message(locked_until))
        if not ok:
            failures = (fresh[5] or 0) + 1
            if failures >= MAX_FAILURES:
                until = now + timedelta(minutes=LOCK_MINUTES)
                cur.execute("UPDATE users SET failed_count = 0, locked_until = ? WHERE username = ?",
                            [until, row[0]])
                _audit(cur, row[0], "login_failed", row[0], f"{what}密码错误(连续第{failures}次)", at=now)
                _audit(cur, row[0], "locked", row[0],
                       f"连续{failures}次密码错误,锁定{LOCK_MINUTES}分钟至{until:%Y-%m-%d %H:%M:%S}", at=now)
                return AuthError(_lock_message(until))
            cur.execute("UPDATE users SET failed_count = ? WHERE username = ?", [failures, row[0]])
            _audit(cur, row[0], "login_failed", row[0], f"{what}密码错误(连续第{failures}次)", at=now)
            return AuthError("原密码错误" if purpose == "change" else BAD_LOGIN)
        if fresh[4]:
            _audit(cur, row[0], "login_failed", row[0], f"{what}账号已停用", at=now)
            return AuthError(DISABLED)
        if purpose == "login":
            new_hash = hash_password(password) if _hasher.check_needs_rehash(fresh[1]) else fresh[1]
            cur.execute("UPDATE users SET failed_count = 0, locked_until = NULL, last_login = ?, pw_hash = ? "
                        "WHERE username = ?", [now, new_hash, row[0]])
            _audit(cur, row[0], "login", row[0], "登录成功", at=now)
        else:
            cur.execute("UPDATE users SET failed_count = 0, locked_until = NULL WHERE username = ?", [row[0]])
        return _user(fresh)

    result = _write(store, write)
    if isinstance(result, AuthError):
        raise result            # raised after the commit, so the failure stays counted and audited
    return result


def authenticate(store, username: str, password: str, now: datetime | None = None) -> User:
    """Log in; raises AuthError with a message that may be shown as it is.

    An unknown name and a wrong password give the same message (and about the same work);
    a disabled account is only reported once the password was right. Five consecutive
    failures lock the account for fifteen minutes. ``now`` stands in for the clock.
    """
    return _check(store, username, password, now, purpose="login")


# -- demo mode -----------------------------------------------------------------------------
DEMO_PASSWORD = "kaoping-demo-2025"
DEMO_OFFICE = "office"
DEMO_CHECKER = "checker"
# the accounts bound to no unit: (username, role, description)
_DEMO_STAFF = ((DEMO_OFFICE, "office", "政务公开办(全部权限)"),
               (DEMO_CHECKER, "checker", "第三方检测机构(上传检查数据、登记和复核问题)"))
DEMO_GROUPS = [("市直部门", "unit-shizhi"), ("县区", "unit-xianqu"),
               ("乡镇街道", "unit-xiangzhen"), ("公共企事业单位", "unit-qiye")]


def demo_accounts(store=None) -> list[tuple[str, str, str]]:
    """The fixed demo accounts (username, password, description) for the 演示模式 banner.

    Show them only when :func:`is_demo`. With a store, unit accounts name their unit.
    """
    bound = {}
    if store is not None:
        bound = {r[0]: f"{r[1]}({r[2]})" for r in store.rows(
            "SELECT u.username, n.unit_name, n.unit_code FROM users u JOIN units n USING (unit_code)")}
    out = [(name, DEMO_PASSWORD, description) for name, _, description in _DEMO_STAFF]
    for grp, name in DEMO_GROUPS:
        where = f":{bound[name]}" if name in bound else ""
        out.append((name, DEMO_PASSWORD, f"单位账号({grp},负责人和填报员共用){where}"))
    return out


def create_demo_accounts(store, cur=None) -> list[tuple[str, str, str]]:
    """Create the demo accounts (existing ones are left alone) and switch demo mode on.

    With ``cur``, works inside the caller's transaction (e.g. ``init --demo``).
    """
    if cur is None:
        return store.write(lambda c: create_demo_accounts(store, c))
    created = []
    now = datetime.now()

    def add(username, role, unit_code, description):
        if not _row(cur, username):
            cur.execute("INSERT INTO users (username, pw_hash, role, unit_code, disabled, created_at, failed_count) "
                        "VALUES (?, ?, ?, ?, false, ?, 0)",
                        [username, hash_password(DEMO_PASSWORD), role, unit_code, now])
            _audit(cur, "系统", "user", username, f"创建演示账号,角色:{ROLES[role]}"
                   + (f",单位:{unit_code}" if unit_code else ""))
        created.append((username, DEMO_PASSWORD, description))

    for name, role, description in _DEMO_STAFF:
        add(name, role, None, description)
    for grp, name in DEMO_GROUPS:
        first = cur.execute("SELECT unit_code, unit_name FROM units WHERE grp = ? ORDER BY unit_code LIMIT 1",
                            [grp]).fetchone()
        if first:
            add(name, "unit", first[0], f"单位账号({grp},负责人和填报员共用):{first[1]}({first[0]})")
    store.set_meta(cur, "demo_mode", "1")
    return created


def is_demo(store) -> bool:
    return store.meta("demo_mode") == "1"
