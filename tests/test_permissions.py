"""One permission table and one read layer: who may do what, and the holes issue #10 found.

Each test named ``test_row_N_…`` guards row N of the attack table of issue #10.
"""
from __future__ import annotations

import ast
import os
import re
import stat
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from scoring import accounts, adjustments, audit, permissions, views
from scoring import problems
from scoring.cli import CLI_OFFICE
from scoring.errors import InputError, PermissionDenied
from scoring.store import Store
from tests.dashboard_support import app
from tests.support import GOOD, WEAK, run_cli, submit

ROOT = Path(__file__).resolve().parent.parent
PW = "Zhengwu-gongkai-7788"
EVIL = "![p](http://127.0.0.1:8999/x.png)[点我](http://evil.example)**粗体**"


def cli(db, *args, stdin: str | None = None):
    return run_cli(*args, db=db, stdin=stdin)


@pytest.fixture
def world(store):
    """SPEC's scheme, five units, 2025Q3 scored, and one account of each role."""
    submit(store, "2025Q3", {"U1": GOOD, "U2": WEAK, "U3": GOOD}, self_scores={"U1": 30, "U2": 34, "U3": 20})
    accounts.add_user(store, CLI_OFFICE, "ban", PW, "office")
    accounts.add_user(store, CLI_OFFICE, "jc", PW, "checker")
    accounts.add_user(store, CLI_OFFICE, "u1", PW, "unit", "U1")
    users = {name: accounts.get_user(store, name) for name in ("ban", "jc", "u1")}
    return store, users


# -- the table and the layer ----------------------------------------------------------------------
def test_every_role_is_in_the_table_and_unknown_actors_get_nothing():
    assert set(permissions.ROLES) == {"office", "checker", "unit"}
    for name in permissions.ACTIONS:
        assert not permissions.can(None, name)
        assert not permissions.can(permissions.User("x", "nobody"), name)
    with pytest.raises(PermissionDenied, match="未指定操作人"):
        permissions.require(None, "ranking.view")


def test_unit_reach_own_and_group():
    u = permissions.User("u1", "unit", "U1", group="市直部门")
    assert permissions.can(u, "unit.view", unit="U1") and not permissions.can(u, "unit.view", unit="U2")
    assert permissions.can(u, "ranking.view", group="市直部门") and not permissions.can(u, "ranking.view", group="县区")
    assert not permissions.can(u, "adjust") and not permissions.can(u, "problems.review")


def test_checker_role(world):
    store, users = world
    jc = users["jc"]
    with pytest.raises(PermissionDenied, match="第三方"):          # no rankings for a checker
        views.ranking(store, jc, "2025Q3")
    with pytest.raises(PermissionDenied):
        adjustments.adjust(store, jc, "U1", "2025Q3", "site.review", 3, "检查")
    with pytest.raises(PermissionDenied):
        accounts.add_user(store, jc, "x1", PW, "unit", "U2")
    pid = problems.add_problem(store, jc, "U2", "2025Q3", "首页错链", due_on="2099-01-01")
    assert len(problems.list_problems(store, jc)) == 1
    problems.respond(store, accounts.get_user(store, "ban"), pid, "已修复")
    assert "已销号" in problems.review(store, jc, pid, True)


def test_checker_account_from_the_cli(tmp_path):
    db = tmp_path / "c.duckdb"
    r = cli(db, "user", "add", "jiance", "--role", "checker", "--password-stdin", stdin=PW + "\n")
    assert r.returncode == 0, r.stderr
    assert "第三方/检查组" in r.stdout


def test_no_library_function_has_a_default_actor():
    offenders = []
    for path in (ROOT / "scoring").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args + node.args.kwonlyargs
                defaults = dict(zip([a.arg for a in node.args.args][::-1], node.args.defaults[::-1]))
                defaults.update({a.arg: d for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d})
                offenders += [f"{path.name}:{node.name}" for a in args if a.arg in ("actor", "user") and a.arg in defaults]
    assert offenders == []


def test_cli_office_lives_in_the_cli_only():
    hits = [p.name for p in (ROOT / "scoring").glob("*.py") if "CLI_OFFICE" in p.read_text(encoding="utf-8")]
    assert hits == ["cli.py"]


def _imports(path: Path, package: str = "scoring") -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    out.add(node.module.split(".")[0])
                else:
                    out.update(a.name for a in node.names)
            elif node.module and node.module.startswith(package + "."):
                out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith(package + "."))
    return out


def test_the_import_graph_of_scoring_has_no_cycle():
    modules = {p.stem: p for p in (ROOT / "scoring").glob("*.py") if p.stem not in ("__init__", "__main__")}
    graph = {m: _imports(p) & set(modules) for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m, trail):
        if state.get(m) == 1:
            raise AssertionError("import cycle: " + " → ".join(trail[trail.index(m):] + [m]))
        if state.get(m) == 2:
            return
        state[m] = 1
        for n in sorted(graph[m]):
            visit(n, trail + [m])
        state[m] = 2

    for m in sorted(graph):
        visit(m, [])


def test_pages_hold_no_access_decision():
    decisions = re.compile(r"is_office|is_unit|is_checker|\.role\b|require\(|require_|visible_group|"
                           r"unit_code\s*(==|!=)")
    found = []
    for path in (ROOT / "dashboard" / "app_pages").glob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if decisions.search(line):
                found.append(f"{path.name}:{n}: {line.strip()}")
    assert found == []


def test_readme_documents_the_action_table():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, label, office, checker, unit in permissions.action_table():
        assert f"| `{name}` | {label} | {office} | {checker} | {unit} |" in text, name
    assert "checker" in text and "第三方/检查组" in text


# -- row 2: non-finite 核定 ------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308"])
def test_row_2_adjust_refuses_non_finite_points(world, value):
    store, _ = world
    with pytest.raises(InputError):
        adjustments.adjust(store, CLI_OFFICE, "U1", "2025Q3", "pen.criticism", value, "x")
    with pytest.raises(InputError):
        adjustments.adjust(store, CLI_OFFICE, "U1", "2025Q3", "site.review", float(value), "x")
    assert store.one("SELECT count(*) FROM adjustments")[0] == 0


def test_row_2_cli_adjust_nan_exits_1(tmp_path):
    from tests.support import SPEC_SCHEME, UNITS

    db = tmp_path / "a.duckdb"
    with Store(db) as s:
        from scoring.schemes import save_scheme
        from scoring.units import save_units

        save_units(s, UNITS, CLI_OFFICE)
        save_scheme(s, SPEC_SCHEME, CLI_OFFICE)
        submit(s, "2025Q3", {"U1": GOOD})
    for value in ("nan", "inf", "1e308"):
        r = cli(db, "adjust", "U1", "2025Q3", "pen.criticism", value, "--reason", "x")
        assert r.returncode == 1, (value, r.stdout, r.stderr)
        assert "核定分值" in r.stderr
    r = cli(db, "ranking", "--period", "2025Q3", "--format", "json")
    assert r.returncode == 0 and '"total": 0' not in r.stdout


# -- row 9: audit arguments ------------------------------------------------------------------------
def test_row_9_audit_arguments_get_chinese_messages(tmp_path):
    db = tmp_path / "a.duckdb"
    for since in ("garbage", "2025-13-45"):
        r = cli(db, "audit", "--since", since)
        assert r.returncode == 1 and "起始时间" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = cli(db, "audit", "--limit", "-1")
    assert r.returncode == 2 and "正整数" in r.stderr and "Traceback" not in r.stderr
    assert cli(db, "audit", "--since", "2025-10-01").returncode == 0
    with pytest.raises(InputError):
        audit.read(Store(tmp_path / "b.duckdb"), CLI_OFFICE, limit=-1)


# -- row 10: what a unit sees of its peers -----------------------------------------------------------
def test_row_10_unit_sees_private_columns_of_its_own_row_only(world):
    store, users = world
    mine = views.ranking(store, users["u1"], "2025Q3")
    peers = mine[mine["unit_code"] != "U1"]
    own = mine[mine["unit_code"] == "U1"].iloc[0]
    assert own["self_score"] == 30
    for c in ("self_score", "self_gap", "veto_name"):
        assert peers[c].isna().all(), c
    assert not peers["self_gap_flag"].any()
    export = views.ranking_export(mine, users["u1"])
    assert not {"自评分", "自评差", "否决项"} & set(export.columns)
    office = views.ranking(store, users["ban"], "2025Q3")
    assert office["self_score"].notna().all()
    assert {"自评分", "自评差", "否决项"} <= set(views.ranking_export(office, users["ban"]).columns)
    with pytest.raises(PermissionDenied, match="只能查看本单位所在分组"):
        views.ranking(store, users["u1"], "2025Q3", "县区")
    with pytest.raises(PermissionDenied):
        views.unit_report(store, users["u1"], "U2", "2025Q3")


# -- row 12: the database file ---------------------------------------------------------------------------
def test_row_12_database_file_is_private(tmp_path):
    path = tmp_path / "p.duckdb"
    with Store(path) as s:
        accounts.add_user(s, CLI_OFFICE, "ban", PW, "office")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# -- row 13: guessable passwords -------------------------------------------------------------------------
@pytest.mark.parametrize("pw", ["1234567890", "0987654321", "abcdefghijk", "qwertyuiop", "Password123",
                                "1212121212", "abcabcabcab", "1qaz2wsx3edc"])
def test_row_13_guessable_passwords_are_refused(pw):
    with pytest.raises(InputError, match="过于"):
        accounts.validate_password(pw)


def test_row_13_a_good_password_passes():
    accounts.validate_password(PW)
    accounts.validate_password("政务公开考评-第三季度")


# -- row 14: the lock, computed now ----------------------------------------------------------------------
def test_row_14_lock_state_is_computed_against_the_clock(world):
    store, users = world
    t0 = datetime.now()
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(accounts.AuthError):
            accounts.authenticate(store, "u1", "wrong-password-x", now=t0)
    listed = views.users(store, users["ban"]).set_index("username")
    assert listed.loc["u1", "locked"] and "锁定中" in listed.loc["u1", "state_label"]
    later = accounts.list_users(store, users["ban"], now=t0 + timedelta(minutes=accounts.LOCK_MINUTES + 1))
    row = later.set_index("username").loc["u1"]
    assert not row["locked"] and row["state_label"] == "正常"


# -- row 16: the CLI beside the app -----------------------------------------------------------------------
def test_row_16_cli_writes_while_the_app_holds_the_store(tmp_path):
    db = tmp_path / "app.duckdb"
    app_store = Store(db, linger=0.3)          # what the app holds for its whole life
    try:
        assert app_store.data_version == 0
        start = time.monotonic()
        r = cli(db, "user", "add", "ban", "--role", "office", "--password-stdin", stdin=PW + "\n")
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - start < 20
        assert app_store.one("SELECT count(*) FROM users")[0] == 1        # and the app reads it at once
    finally:
        app_store.close()


# -- row 5: users' text is text on every page -----------------------------------------------------------------
_UNESCAPED = re.compile(r"(?<!\\)!(?<!\\)\[|(?<!\\)\]\(|(?<!\\)\*\*粗")


def _rendered(at: AppTest) -> list[str]:
    parts = []
    for kind in ("markdown", "caption", "subheader", "title", "header", "info", "success", "warning", "error", "text"):
        parts += [str(e.value) for e in getattr(at, kind)]
    for t in at.table:
        df = t.value
        parts += [str(c) for c in df.columns] + [str(v) for v in df.to_numpy().ravel()]
    return parts


def _assert_text_only(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    bad = [p for p in _rendered(at) if _UNESCAPED.search(p)]
    assert bad == []


@pytest.fixture
def evil_db(tmp_path, monkeypatch):
    import pandas as pd

    from scoring.schemes import save_scheme
    from scoring.units import save_units
    from tests.support import SPEC_SCHEME

    path = tmp_path / "evil.duckdb"
    with Store(path) as s:
        save_units(s, pd.DataFrame([("U1", EVIL, "市直部门", None), ("U2", "市公安局", "市直部门", None),
                                    ("U3", "市民政局", "市直部门", None)],
                                   columns=["unit_code", "unit_name", "group", "parent_code"]), CLI_OFFICE)
        save_scheme(s, SPEC_SCHEME, CLI_OFFICE)
        submit(s, "2025Q2", {"U1": WEAK, "U2": GOOD, "U3": GOOD})
        submit(s, "2025Q3", {"U1": GOOD, "U2": WEAK, "U3": WEAK})
        accounts.create_demo_accounts(s)                # demo mode: the login page lists unit names
        adjustments.adjust(s, CLI_OFFICE, "U1", "2025Q3", "site.review", 4, EVIL)
    monkeypatch.setenv("KAOPING_DB", str(path))
    return path


def test_row_5_login_page_shows_unit_names_as_text(evil_db):
    at = app(None)
    _assert_text_only(at)
    assert any("粗体" in p for p in _rendered(at))       # it is there, as text


@pytest.mark.parametrize("page", ["ranking", "unit_detail", "adjust", "trends", "rectify", "upload"])
def test_row_5_office_pages_show_user_text_as_text(evil_db, page):
    office = permissions.User("office", "office")
    at = app(office, page, **{"detail.unit": "U1", "detail.period": "2025Q3",
                               "upload.done": f"已回滚批次 #1「{EVIL}.csv」", "adjust.msg": EVIL})
    _assert_text_only(at)


def test_row_5_unit_head_pages_show_user_text_as_text(evil_db):
    with Store(evil_db) as s:
        head = accounts.get_user(s, "unit-shizhi")
    assert head.unit_code == "U1"
    for page in ("ranking", "unit_detail", "trends"):
        _assert_text_only(app(head, page))


def test_a_login_does_not_make_readers_rescore(world):
    """Scores are cached by data_version: logins, failed logins and account changes leave it alone."""
    store, _ = world
    version = store.data_version
    accounts.authenticate(store, "u1", PW)
    with pytest.raises(accounts.AuthError):
        accounts.authenticate(store, "u1", "wrong-password-x")
    accounts.add_user(store, CLI_OFFICE, "u3", PW, "unit", "U3")
    assert store.data_version == version
    adjustments.adjust(store, CLI_OFFICE, "U1", "2025Q3", "site.review", 3, "现场检查")
    assert store.data_version == version + 1
