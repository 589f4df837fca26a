"""Accounts, login lockout, permissions, demo accounts and the audit trail."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from scoring import accounts, audit
from scoring.cli import CLI_OFFICE
from scoring.accounts import (AuthError, User, add_user, authenticate, change_password,
                              create_demo_accounts, demo_accounts, disable_user, enable_user, get_user,
                              hash_password, is_demo, list_users, require_active, reset_password,
                              validate_password, verify)
from scoring import views
from scoring.errors import InputError, NotFound, PermissionDenied
from scoring.store import Store
from scoring.units import save_units

PW_OFFICE = "办公室密码-Secret-0001"
PW_UNIT = "unit-pass-word-2025"
PW_NEW = "全新的密码Zz-987654"
ALL_PASSWORDS = [PW_OFFICE, PW_UNIT, PW_NEW]
T0 = datetime(2025, 3, 3, 9, 0, 0)

UNITS = pd.DataFrame(
    [("SZ002", "市发展和改革委员会", "市直部门", None), ("SZ001", "市人民政府办公室", "市直部门", None),
     ("XQ01", "东湖区", "县区", None), ("XZ0101", "东湖街道", "乡镇街道", "XQ01"),
     ("QY001", "国网江州供电公司", "公共企事业单位", None),
     ("SZ999", "<script>alert('x')</script>局", "市直部门", None)],
    columns=["unit_code", "unit_name", "group", "parent_code"])


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "acc.duckdb")
    save_units(s, UNITS, CLI_OFFICE)
    yield s
    s.close()


@pytest.fixture
def office(store):
    return add_user(store, CLI_OFFICE, "zhang", PW_OFFICE, "office")


@pytest.fixture
def unit(store):
    return add_user(store, CLI_OFFICE, "li", PW_UNIT, "unit", "SZ001")


def audit_rows(store, action=None, target=None):
    sql, params = "SELECT actor, action, target, detail, happened_at FROM audit_log WHERE true", []
    if action:
        sql, params = sql + " AND action = ?", params + [action]
    if target:
        sql, params = sql + " AND target = ?", params + [target]
    return store.rows(sql + " ORDER BY id", params)


def varchar_cells(store):
    """Every VARCHAR (and VARCHAR[]) value of every table."""
    for (table,) in store.rows("SELECT table_name FROM information_schema.tables "
                               "WHERE table_type = 'BASE TABLE'"):
        for col, typ in store.rows("SELECT column_name, data_type FROM information_schema.columns "
                                   "WHERE table_name = ?", [table]):
            if "VARCHAR" in typ:
                for (value,) in store.rows(f'SELECT CAST("{col}" AS VARCHAR) FROM "{table}"'):
                    if value is not None:
                        yield table, col, value


# -- passwords and hashes --------------------------------------------------------------------
def test_hash_is_argon2id_salted_and_verifies():
    h1, h2 = hash_password(PW_NEW), hash_password(PW_NEW)
    assert h1.startswith("$argon2id$") and h1 != h2
    assert PW_NEW not in h1
    assert verify(h1, PW_NEW) and verify(h2, PW_NEW)
    assert not verify(h1, PW_NEW + "x")
    assert not verify("not-a-hash", PW_NEW)
    assert not verify(h1, None)


def test_long_and_chinese_passwords_are_exact():
    long_pw = "长" * 100  # 300 UTF-8 bytes: no 72-byte truncation as with bcrypt
    h = hash_password(long_pw)
    assert verify(h, long_pw) and not verify(h, "长" * 99 + "短")
    validate_password("政务公开考评系统的密码")  # ten Chinese characters are enough


def test_unicode_forms_of_one_password_match():
    composed, decomposed = "caf\u00e9-password-1", "cafe\u0301-password-1"
    assert verify(hash_password(composed), decomposed)


@pytest.mark.parametrize("pw, message", [
    ("short-pw1", "至少需要10个字符"), ("", "不能为空"), (None, "不能为空"), ("          ", "全是空格"),
    ("aaaaaaaaaaaa", "过于简单"), ("abcdefghij\n", "控制字符"), ("x" * 1025, "不能超过"),
])
def test_password_rules(pw, message):
    with pytest.raises(InputError, match=message):
        validate_password(pw)


def test_password_may_not_contain_username(store):
    with pytest.raises(InputError, match="用户名"):
        add_user(store, CLI_OFFICE, "wangwu", "wangwu-2025-abc", "office")


def test_stored_hash_verifies_and_is_not_the_password(store, office, unit):
    for name, pw in [("zhang", PW_OFFICE), ("li", PW_UNIT)]:
        (h,) = store.one("SELECT pw_hash FROM users WHERE username = ?", [name])
        assert h != pw and pw not in h and h.startswith("$argon2id$")
        assert verify(h, pw)


# -- user management permissions ---------------------------------------------------------------
def test_add_user_rules(store, office):
    u = add_user(store, office, "li", PW_UNIT, "unit", "SZ001")
    assert u == User("li", "unit", "SZ001")
    with pytest.raises(InputError, match="已存在"):
        add_user(store, office, "LI", PW_UNIT, "unit", "SZ001")       # case-insensitive
    with pytest.raises(InputError, match="已存在"):
        add_user(store, office, "ｌｉ", PW_UNIT, "unit", "SZ001")      # full-width look-alike
    with pytest.raises(InputError, match="必须指定"):
        add_user(store, office, "wang", PW_UNIT, "unit")
    with pytest.raises(NotFound, match="不存在"):
        add_user(store, office, "wang", PW_UNIT, "unit", "NOPE")
    with pytest.raises(InputError, match="不能绑定单位"):
        add_user(store, office, "wang", PW_UNIT, "office", "SZ001")
    with pytest.raises(InputError, match="角色"):
        add_user(store, office, "wang", PW_UNIT, "admin")
    with pytest.raises(InputError, match="保留"):
        add_user(store, office, "命令行", PW_UNIT, "office")
    for bad in ["a", "=cmd|' /C calc'!A0", "<b>x</b>", "has space", "x" * 40, ""]:
        with pytest.raises(InputError, match="用户名"):
            add_user(store, office, bad, PW_UNIT, "office")
    assert add_user(store, office, "王主任", PW_NEW, "office").username == "王主任"


@pytest.mark.parametrize("action", ["add", "disable", "enable", "reset", "list"])
def test_unit_user_cannot_manage_users(store, office, unit, action):
    calls = {
        "add": lambda: add_user(store, unit, "new-one", PW_NEW, "unit", "SZ001"),
        "disable": lambda: disable_user(store, unit, "zhang"),
        "enable": lambda: enable_user(store, unit, "zhang"),
        "reset": lambda: reset_password(store, unit, "zhang", PW_NEW),
        "list": lambda: list_users(store, unit),
    }
    before = store.rows("SELECT * FROM users ORDER BY username")
    with pytest.raises(PermissionDenied, match="仅政务公开办"):
        calls[action]()
    assert store.rows("SELECT * FROM users ORDER BY username") == before


def test_forged_or_stale_office_sessions_are_refused(store, office, unit):
    forged = User("li", "office")           # a unit account claiming the office role
    with pytest.raises(PermissionDenied, match="权限已变更"):
        add_user(store, forged, "mallory", PW_NEW, "office")
    ghost = User("nobody", "office")         # not an account at all
    with pytest.raises(PermissionDenied, match="不存在或已停用"):
        list_users(store, ghost)
    second = add_user(store, office, "zhao", PW_NEW, "office")
    disable_user(store, office, "zhao")     # zhao's open session must stop working
    with pytest.raises(PermissionDenied, match="不存在或已停用"):
        reset_password(store, second, "zhang", PW_NEW)
    assert require_active(store, CLI_OFFICE) is CLI_OFFICE
    assert require_active(store, unit) == unit


def test_one_page_run_checks_an_account_once_and_a_disable_inside_it_counts(store, office, unit, monkeypatch):
    reads = []
    real = accounts._row
    monkeypatch.setattr(accounts, "_row", lambda s, name: reads.append(name) or real(s, name))
    with accounts.checked_once():
        for _ in range(3):
            assert require_active(store, unit) == unit
        assert reads == ["li"]
        disable_user(store, office, "li")          # an account write inside the run forgets the checks
        with pytest.raises(PermissionDenied, match="不存在或已停用"):
            require_active(store, unit)
    enable_user(store, office, "li")
    reads.clear()
    require_active(store, unit)
    require_active(store, unit)                    # outside a run every check reads the account
    assert reads == ["li", "li"]


def test_disable_enable_and_get_user(store, office, unit):
    assert get_user(store, "li") == unit
    assert disable_user(store, office, "li") is True
    assert disable_user(store, office, "li") is False
    assert get_user(store, "li") is None
    assert get_user(store, "nobody") is None and get_user(store, "") is None
    assert enable_user(store, office, "li") is True
    assert get_user(store, "li") == unit
    with pytest.raises(NotFound):
        disable_user(store, office, "nobody")


def test_office_cannot_lock_itself_out(store, office):
    with pytest.raises(InputError, match="自己"):
        disable_user(store, office, "zhang")
    with pytest.raises(InputError, match="最后一个"):
        disable_user(store, CLI_OFFICE, "zhang")


def test_list_users_never_shows_hashes(store, office, unit):
    df = list_users(store, office)
    assert "pw_hash" not in df.columns
    assert set(df["username"]) == {"zhang", "li"}
    text = df.to_csv()
    assert "$argon2" not in text and PW_OFFICE not in text and PW_UNIT not in text
    assert df.set_index("username").loc["li", "unit_name"] == "市人民政府办公室"


def test_reset_password(store, office, unit):
    for _ in range(3):
        with pytest.raises(AuthError):
            authenticate(store, "li", "wrong-password-x", now=T0)
    reset_password(store, office, "li", PW_NEW)
    assert store.one("SELECT failed_count FROM users WHERE username = 'li'")[0] == 0
    with pytest.raises(AuthError, match="用户名或密码错误"):
        authenticate(store, "li", PW_UNIT, now=T0)
    assert authenticate(store, "li", PW_NEW, now=T0) == unit
    with pytest.raises(NotFound):
        reset_password(store, office, "nobody", PW_NEW)
    with pytest.raises(InputError, match="至少"):
        reset_password(store, office, "li", "short")


def test_change_own_password(store, unit):
    with pytest.raises(AuthError, match="原密码错误"):
        change_password(store, unit, "not-the-old-one", PW_NEW, now=T0)
    assert store.one("SELECT failed_count FROM users WHERE username = 'li'")[0] == 1
    with pytest.raises(InputError, match="相同"):
        change_password(store, unit, PW_UNIT, PW_UNIT, now=T0)
    with pytest.raises(InputError, match="至少"):
        change_password(store, unit, PW_UNIT, "short", now=T0)
    change_password(store, unit, PW_UNIT, PW_NEW, now=T0)
    assert authenticate(store, "li", PW_NEW, now=T0) == unit
    with pytest.raises(PermissionDenied):   # someone else's account cannot be changed this way
        change_password(store, User("li", "office"), PW_NEW, PW_OFFICE, now=T0)


def test_change_password_guesses_count_towards_lockout(store, unit):
    for i in range(5):
        with pytest.raises(AuthError):
            change_password(store, unit, f"guess-number-{i}", PW_NEW, now=T0)
    with pytest.raises(AuthError, match="账号已锁定"):
        change_password(store, unit, PW_UNIT, PW_NEW, now=T0)
    with pytest.raises(AuthError, match="账号已锁定"):
        authenticate(store, "li", PW_UNIT, now=T0)


# -- login -------------------------------------------------------------------------------------
def test_login_success_sets_last_login_and_resets_failures(store, unit):
    with pytest.raises(AuthError):
        authenticate(store, "li", "wrong-password-1", now=T0)
    assert authenticate(store, "li", PW_UNIT, now=T0) == unit
    assert authenticate(store, "  LI ", PW_UNIT, now=T0) == unit      # name is case-insensitive
    last_login, failed = store.one("SELECT last_login, failed_count FROM users WHERE username = 'li'")
    assert last_login == T0 and failed == 0


def test_same_message_for_unknown_user_and_wrong_password(store, unit):
    with pytest.raises(AuthError) as unknown:
        authenticate(store, "ghost", PW_UNIT, now=T0)
    with pytest.raises(AuthError) as wrong:
        authenticate(store, "li", "wrong-password-1", now=T0)
    assert str(unknown.value) == str(wrong.value) == "用户名或密码错误"
    for bad in [None, 12345, ""]:
        with pytest.raises(AuthError, match="用户名或密码错误"):
            authenticate(store, "li", bad, now=T0)


def test_disabled_account_only_reported_after_right_password(store, office, unit):
    disable_user(store, office, "li")
    with pytest.raises(AuthError, match="用户名或密码错误"):
        authenticate(store, "li", "wrong-password-1", now=T0)
    with pytest.raises(AuthError, match="账号已停用"):
        authenticate(store, "li", PW_UNIT, now=T0)


def test_lockout_after_five_failures_and_expiry(store, unit):
    for i in range(4):
        with pytest.raises(AuthError, match="用户名或密码错误"):
            authenticate(store, "li", f"wrong-password-{i}", now=T0 + timedelta(seconds=i))
    with pytest.raises(AuthError, match=r"账号已锁定,请于09:16后再试"):
        authenticate(store, "li", "wrong-password-4", now=T0 + timedelta(seconds=4))
    locked_until = store.one("SELECT locked_until FROM users WHERE username = 'li'")[0]
    assert locked_until == T0 + timedelta(seconds=4, minutes=15)
    # Even the right password is refused while locked.
    with pytest.raises(AuthError, match="账号已锁定"):
        authenticate(store, "li", PW_UNIT, now=T0 + timedelta(minutes=14))
    # After fifteen minutes it works again.
    assert authenticate(store, "li", PW_UNIT, now=T0 + timedelta(minutes=15, seconds=5)) == unit
    assert store.one("SELECT failed_count, locked_until FROM users WHERE username = 'li'") == (0, None)
    assert len(audit_rows(store, "locked", "li")) == 1


def test_lock_expiry_gives_five_fresh_attempts(store, unit):
    for i in range(5):
        with pytest.raises(AuthError):
            authenticate(store, "li", f"wrong-password-{i}", now=T0)
    later = T0 + timedelta(minutes=16)
    with pytest.raises(AuthError, match="用户名或密码错误"):
        authenticate(store, "li", "wrong-password-5", now=later)
    assert store.one("SELECT failed_count FROM users WHERE username = 'li'")[0] == 1


def test_lock_message_rounds_up():
    assert accounts._lock_message(datetime(2025, 1, 1, 9, 15, 0)) == "账号已锁定,请于09:15后再试"
    assert accounts._lock_message(datetime(2025, 1, 1, 9, 15, 1)) == "账号已锁定,请于09:16后再试"


def test_unknown_users_are_never_locked_and_name_is_masked(store):
    typed = "probably-a-password-typed-in-the-name-box"
    for _ in range(7):
        with pytest.raises(AuthError, match="用户名或密码错误"):
            authenticate(store, typed, "whatever-1234", now=T0)
    rows = audit_rows(store, "login_failed")
    assert len(rows) == 7
    assert all(typed not in " ".join(str(c) for c in r) for r in rows)


# -- visibility ------------------------------------------------------------------------------
def test_visible_group(store, office, unit):
    assert views.group_of(store, office, "县区") == "县区"
    assert views.group_of(store, CLI_OFFICE, "乡镇街道") == "乡镇街道"
    assert views.group_of(store, unit, "市直部门") == "市直部门"
    assert views.group_of(store, unit, None) == "市直部门"          # a unit's own group
    with pytest.raises(PermissionDenied, match="只能查看本单位所在分组"):
        views.group_of(store, unit, "县区")
    with pytest.raises(PermissionDenied):
        views.group_of(store, User("x", "unit", "NOPE"), "市直部门")   # not an account


# -- demo mode -------------------------------------------------------------------------------
def test_no_default_account_without_demo(store):
    assert store.rows("SELECT * FROM users") == []
    assert not is_demo(store)
    with pytest.raises(AuthError):
        authenticate(store, "office", accounts.DEMO_PASSWORD, now=T0)
    with pytest.raises(InputError, match="演示密码"):
        add_user(store, CLI_OFFICE, "zhang", accounts.DEMO_PASSWORD, "office")


def test_demo_accounts(store):
    created = create_demo_accounts(store)
    assert is_demo(store)
    names = [c[0] for c in created]
    assert names == ["office", "checker", "unit-shizhi", "unit-xianqu", "unit-xiangzhen", "unit-qiye"]
    assert [c[0] for c in demo_accounts()] == names
    users = dict((r[0], (r[1], r[2])) for r in store.rows("SELECT username, role, unit_code FROM users"))
    assert users == {"office": ("office", None), "checker": ("checker", None), "unit-shizhi": ("unit", "SZ001"),
                     "unit-xianqu": ("unit", "XQ01"), "unit-xiangzhen": ("unit", "XZ0101"),
                     "unit-qiye": ("unit", "QY001")}
    for name, pw, description in created:
        assert authenticate(store, name, pw, now=T0).username == name
        assert description
    assert "市人民政府办公室" in dict((n, d) for n, _, d in demo_accounts(store))["unit-shizhi"]
    assert create_demo_accounts(store) == created          # idempotent
    assert store.one("SELECT count(*) FROM users")[0] == 6
    assert len(audit_rows(store, "user")) == 6


def test_demo_accounts_inside_callers_transaction(store):
    store.write(lambda cur: create_demo_accounts(store, cur))
    assert is_demo(store) and get_user(store, "unit-qiye") == User("unit-qiye", "unit", "QY001")


# -- audit -----------------------------------------------------------------------------------
def test_audit_rows_for_each_action(store, office):
    add_user(store, office, "li", PW_UNIT, "unit", "SZ001")
    authenticate(store, "li", PW_UNIT, now=T0)
    with pytest.raises(AuthError):
        authenticate(store, "li", "wrong-password-0", now=T0)
    for i in range(4):
        with pytest.raises(AuthError):
            authenticate(store, "li", f"wrong-password-{i + 1}", now=T0)
    reset_password(store, office, "li", PW_NEW)
    disable_user(store, office, "li")
    enable_user(store, office, "li")
    rows = audit_rows(store)
    actions = [(a, act, t) for a, act, t, _, _ in rows]
    assert ("zhang", "user", "li") in actions
    assert ("li", "login", "li") in actions
    assert sum(1 for r in actions if r == ("li", "login_failed", "li")) == 5
    assert ("li", "locked", "li") in actions
    details = [d for _, act, t, d, _ in rows if act == "user" and t == "li"]
    assert details[0].startswith("新增账号") and "重置密码" in details and "停用账号" in details
    assert "启用账号" in details
    login_at = [at for _, act, _, _, at in rows if act == "login"]
    assert login_at == [T0]                                  # the audit keeps the given clock


def test_audit_read_filters(store, office):
    add_user(store, office, "li", PW_UNIT, "unit", "SZ001")
    authenticate(store, "li", PW_UNIT, now=T0)
    authenticate(store, "zhang", PW_OFFICE, now=T0 + timedelta(days=1))
    full = audit.read(store, office)
    assert list(full["id"]) == sorted(full["id"], reverse=True)
    assert set(full["actor"]) >= {"zhang", "li", CLI_OFFICE.username}
    assert set(audit.read(store, office, who="li")["actor"]) == {"li"}
    since = audit.read(store, office, since=T0 + timedelta(hours=1))
    logins = set(since.loc[since["action"] == "login", "actor"])
    assert logins == {"zhang"}                               # li's login at T0 is before `since`
    recent = audit.read(store, office, since=datetime.now() - timedelta(minutes=5))
    assert len(recent) < len(full)
    assert len(audit.read(store, office, limit=2)) == 2
    assert "登录成功" in set(full["action_label"])
    with pytest.raises(PermissionDenied):
        audit.read(store, User("li", "unit", "SZ001"))


def test_no_library_code_edits_or_deletes_audit_rows():
    src = Path(audit.__file__).parent
    pattern = re.compile(r"(UPDATE\s+audit_log|DELETE\s+FROM\s+audit_log|DROP\s+TABLE\s+(IF\s+EXISTS\s+)?audit_log"
                         r"|TRUNCATE\s+audit_log)", re.I)
    offenders = [p.name for p in src.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
    public = [n for n in dir(audit) if not n.startswith("_") and callable(getattr(audit, n))]
    assert not [n for n in public if re.search(r"delete|remove|update|edit|purge|clear", n, re.I)]


# -- no password in clear anywhere -------------------------------------------------------------
def test_no_clear_password_in_any_table(store, office, unit):
    """Exercise every path that sees a password, then scan every VARCHAR cell of every table."""
    authenticate(store, "zhang", PW_OFFICE, now=T0)
    for pw in ALL_PASSWORDS:                       # wrong passwords are not logged either
        with pytest.raises(AuthError):
            authenticate(store, "li", pw if pw != PW_UNIT else "x" + pw, now=T0)
    with pytest.raises(AuthError):
        authenticate(store, "ghost", PW_OFFICE, now=T0)
    with pytest.raises(AuthError):                 # a password typed into the name field
        authenticate(store, PW_NEW, PW_NEW, now=T0)
    change_password(store, unit, PW_UNIT, PW_NEW, now=T0)
    reset_password(store, office, "li", PW_UNIT)
    with pytest.raises(InputError):
        add_user(store, office, PW_NEW, PW_NEW, "office")
    cells = list(varchar_cells(store))
    assert any(t == "users" and c == "pw_hash" for t, c, _ in cells)
    leaks = [(t, c) for t, c, v in cells for pw in ALL_PASSWORDS if pw in v]
    assert leaks == []
