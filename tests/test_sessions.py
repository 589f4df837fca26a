"""Login sessions (scoring/sessions.py): random tokens stored hashed, expiring, revoked on logout,
password reset or change, disabling, role change, and by the office; unlocking an account."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from scoring import accounts, audit, sessions
from scoring.accounts import User
from scoring.cli import CLI_OFFICE
from scoring.errors import InputError, PermissionDenied

PW = "会话测试-Secret-0001"
PW2 = "另一个密码-Secret-0002"
T0 = datetime(2025, 10, 9, 9, 0, 0)


@pytest.fixture
def users(store):
    office = accounts.add_user(store, CLI_OFFICE, "boss", PW, "office")
    accounts.add_user(store, CLI_OFFICE, "clerk", PW, "unit", "U1")
    clerk = accounts.get_user(store, "clerk")
    return office, clerk


def test_a_token_logs_in_the_account_and_is_stored_only_hashed(store, users):
    _, clerk = users
    token = sessions.create(store, clerk)
    assert len(token) >= 40
    assert sessions.verify(store, token) == clerk
    assert sessions.verify(store, token).group == clerk.group            # the unit's group, as at login
    stored = store.rows("SELECT * FROM sessions")
    assert len(stored) == 1 and token not in repr(stored)
    assert stored[0][0] == sessions.token_hash(token)
    assert sessions.create(store, clerk) != token                        # a new token every login


@pytest.mark.parametrize("bad", [None, "", "x" * 500, "short", "不是令牌不是令牌不是令牌不是令牌不是令牌", 12345])
def test_garbage_is_no_token(store, users, bad):
    assert sessions.verify(store, bad) is None
    assert sessions.end(store, bad) is False


def test_a_token_expires_after_eight_hours(store, users):
    _, clerk = users
    token = sessions.create(store, clerk, now=T0)
    assert sessions.verify(store, token, now=T0 + timedelta(hours=7, minutes=59)) == clerk
    assert sessions.verify(store, token, now=T0 + timedelta(hours=8)) is None


def test_logout_revokes_the_token_and_is_audited(store, users):
    office, clerk = users
    token = sessions.create(store, clerk)
    other = sessions.create(store, clerk)
    assert sessions.end(store, token) is True
    assert sessions.verify(store, token) is None
    assert sessions.end(store, token) is False                         # already ended
    assert sessions.verify(store, other) == clerk                      # another browser stays logged in
    log = audit.read(store, office)
    assert {"session", "logout"} <= set(log["action"])
    assert not any(token in str(v) for v in log.to_numpy().ravel())


def test_a_password_reset_or_disabling_ends_every_session(store, users):
    office, clerk = users
    a, b = sessions.create(store, clerk), sessions.create(store, clerk)
    accounts.reset_password(store, office, "clerk", PW2)
    assert sessions.verify(store, a) is None and sessions.verify(store, b) is None
    assert "结束其2个登录" in audit.read(store, office)["detail"].iloc[0]
    c = sessions.create(store, clerk)
    accounts.disable_user(store, office, "clerk")
    assert sessions.verify(store, c) is None
    accounts.enable_user(store, office, "clerk")
    assert sessions.verify(store, c) is None                           # enabling again revives nothing
    reasons = {r[0] for r in store.rows("SELECT revoked_reason FROM sessions")}
    assert reasons == {sessions.PASSWORD_RESET, sessions.DISABLED}


def test_changing_the_own_password_ends_the_other_sessions_only(store, users):
    _, clerk = users
    mine, elsewhere = sessions.create(store, clerk), sessions.create(store, clerk)
    accounts.change_password(store, clerk, PW, PW2, keep=mine)
    assert sessions.verify(store, mine) == clerk
    assert sessions.verify(store, elsewhere) is None


def test_a_role_or_unit_change_ends_the_sessions_issued_before(store, users):
    _, clerk = users
    token = sessions.create(store, clerk)
    # however the role changes (no page does this yet), the token no longer logs anyone in
    store.write(lambda cur: cur.execute("UPDATE users SET unit_code = 'U2' WHERE username = 'clerk'"))
    assert sessions.verify(store, token) is None
    store.write(lambda cur: cur.execute("UPDATE users SET unit_code = 'U1' WHERE username = 'clerk'"))
    assert sessions.verify(store, token) == clerk
    store.write(lambda cur: cur.execute("UPDATE users SET role = 'checker', unit_code = NULL WHERE username = 'clerk'"))
    assert sessions.verify(store, token) is None


def test_only_stored_enabled_accounts_get_a_token(store, users):
    office, _ = users
    with pytest.raises(InputError):
        sessions.create(store, CLI_OFFICE)
    with pytest.raises(PermissionDenied):
        sessions.create(store, User("ghost", "office"))
    with pytest.raises(PermissionDenied):                               # a stale role
        sessions.create(store, User("clerk", "office"))


def test_the_office_ends_an_accounts_sessions(store, users):
    office, clerk = users
    token = sessions.create(store, clerk)
    assert sessions.live_sessions(store, "clerk") == 1
    with pytest.raises(PermissionDenied):
        accounts.end_sessions(store, clerk, "clerk")
    assert accounts.end_sessions(store, office, "clerk") == 1
    assert sessions.verify(store, token) is None
    assert accounts.end_sessions(store, office, "clerk") == 0
    assert sessions.live_sessions(store, "clerk") == 0


# -- unlock ---------------------------------------------------------------------------------
def test_the_office_unlocks_a_locked_account(store, users):
    office, clerk = users
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(accounts.AuthError):
            accounts.authenticate(store, "clerk", "wrong-password-123", now=T0)
    with pytest.raises(accounts.AuthError, match="锁定"):
        accounts.authenticate(store, "clerk", PW, now=T0 + timedelta(minutes=1))
    with pytest.raises(PermissionDenied):
        accounts.unlock_user(store, clerk, "clerk", now=T0 + timedelta(minutes=2))
    assert accounts.unlock_user(store, office, "clerk", now=T0 + timedelta(minutes=2)) is True
    assert accounts.authenticate(store, "clerk", PW, now=T0 + timedelta(minutes=3)) == clerk
    assert accounts.unlock_user(store, office, "clerk", now=T0 + timedelta(minutes=4)) is False
    log = audit.read(store, office)
    assert "解除锁定" in log["detail"].tolist()


def test_unlock_clears_failures_short_of_a_lock(store, users):
    office, _ = users
    with pytest.raises(accounts.AuthError):
        accounts.authenticate(store, "clerk", "wrong-password-123")
    assert accounts.unlock_user(store, office, "clerk") is True
    assert store.one("SELECT failed_count FROM users WHERE username = 'clerk'")[0] == 0
    with pytest.raises(accounts.NotFound):
        accounts.unlock_user(store, office, "nobody")
