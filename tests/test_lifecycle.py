"""The quarter lifecycle (报送 → 审核 → 公示 → 定稿): transitions, what each status allows, 异议,
the frozen snapshot of a published quarter, the CLI and the pages."""
from __future__ import annotations

import contextlib
import json
import re
from datetime import date, timedelta

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from scoring import accounts, adjustments, audit, batches, engine, lifecycle, objections, snapshots, views
from scoring.cli import CLI_OFFICE
from scoring.engine import Block, Scores
from scoring.errors import InputError, KaopingError, NotFound, PermissionDenied
from scoring.permissions import User
from scoring.schemes import save_scheme
from scoring.store import Store
from scoring.units import save_units
from tests.dashboard_support import app, build_demo_db, copy_db, unescape
from tests.support import GOOD, SPEC_SCHEME, UNITS, WEAK, submit
from tests.test_cli import cli

PW = "correct-horse-battery-9"
FIELDS = ["has_leading_group", "budget_on_time", "broken_links", "proactive_items", "reply_on_time_rate",
          "policy_docs", "interpretations", "commendations", "criticisms", "secret_leaks"]


def csv_of(period: str, rows: dict[str, dict]) -> bytes:
    """A wide upload of the example scheme (codes as headers)."""
    lines = [",".join(["unit_code", "period"] + FIELDS)]
    for unit, values in rows.items():
        lines.append(",".join([unit, period] + ["不适用" if values.get(f) == "NA" else str(values.get(f, ""))
                                                for f in FIELDS]))
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture
def world(store):
    """The example scheme with two quarters of data, a unit account for U1 and U2, and a checker."""
    submit(store, "2025Q2", {"U1": GOOD, "U2": WEAK, "U3": GOOD})
    submit(store, "2025Q3", {"U1": GOOD, "U2": WEAK, "U3": dict(GOOD, broken_links=8)})
    accounts.add_user(store, CLI_OFFICE, "u1", PW, "unit", "U1")
    accounts.add_user(store, CLI_OFFICE, "u2", PW, "unit", "U2")
    accounts.add_user(store, CLI_OFFICE, "jiance", PW, "checker")
    return store


def user(store, name: str) -> User:
    return accounts.get_user(store, name)


def walk_to(store, period: str, status: str, until: date | None = None) -> None:
    """Move a quarter to ``status`` along the lifecycle, as the office."""
    until = until or date.today() + timedelta(days=10)
    steps = {lifecycle.SUBMITTING: [("open", until)],
             lifecycle.REVIEWING: [("open", until), ("close", None)],
             lifecycle.PUBLICITY: [("open", until), ("close", None), ("publicize", until)],
             lifecycle.PUBLISHED: [("open", until), ("close", None), ("publicize", until), ("publish", None)]}
    for name, day in steps[status]:
        lifecycle.transition(store, CLI_OFFICE, name, period, until=day)
    assert lifecycle.status_of(store, period) == status


# -- statuses and transitions -------------------------------------------------------------------
def test_a_quarter_without_records_is_submitting(world):
    st = lifecycle.state(world, "2025年第三季度")
    assert (st.period, st.status, st.recorded) == ("2025Q3", "报送中", False)
    assert [s.record() for s in lifecycle.states(world, CLI_OFFICE)] == [
        {"period": p, "status": "报送中", "deadline": None, "publicity_until": None, "published_at": None}
        for p in ("2025Q2", "2025Q3")]
    for who in (user(world, "u1"), user(world, "jiance"), CLI_OFFICE):
        assert lifecycle.upload_problem(world, who, "2025Q3") is None
    assert lifecycle.unit_scope(world, ["2025Q3"]) == {"2025Q3": lifecycle.SEE_GROUP}


def test_the_whole_walk_is_recorded_and_audited(world):
    assert "截止2026年1月10日" in lifecycle.open_period(world, CLI_OFFICE, "2025Q3", "2026-01-10")
    lifecycle.open_period(world, CLI_OFFICE, "2025Q3", date(2026, 1, 12))           # a new deadline
    assert lifecycle.state(world, "2025Q3").deadline == date(2026, 1, 12)
    lifecycle.close_period(world, CLI_OFFICE, "2025Q3")
    lifecycle.publicize(world, CLI_OFFICE, "2025Q3", "2026-01-20")
    lifecycle.publish(world, CLI_OFFICE, "2025Q3")
    st = lifecycle.state(world, "2025Q3")
    assert st.status == "已定稿" and st.publicity_until == date(2026, 1, 20) and st.published_at is not None
    assert st.record()["deadline"] == "2026-01-12" and st.record()["published_at"].startswith(str(date.today().year))
    lifecycle.reopen(world, CLI_OFFICE, "2025Q3", "U3 的错链数据录入有误")
    st = lifecycle.state(world, "2025Q3")
    assert st.status == "审核中" and st.published_at is None
    log = audit.read(world, CLI_OFFICE)
    mine = log[log["action"] == "period"]
    assert len(mine) == 6 and set(mine["action_label"]) == {"考评周期"}
    assert "理由:U3 的错链数据录入有误" in mine["detail"].iloc[0] and "已定稿 → 审核中" in mine["detail"].iloc[0]
    assert world.one("SELECT count(*) FROM period_snapshots")[0] == 1      # the snapshot stays on record


@pytest.mark.parametrize("status, name, words", [
    ("报送中", "publish", "2025Q3 当前状态为报送中,不能定稿(只有审核中或公示中的季度可以)"),
    ("报送中", "publicize", "不能公示"),
    ("报送中", "reopen", "不能重新开放"),
    ("审核中", "close", "不能结束报送"),
    ("公示中", "open", "不能开放报送"),
    ("已定稿", "open", "不能开放报送"),
    ("已定稿", "close", "当前状态为已定稿"),
    ("已定稿", "publicize", "不能公示"),
    ("已定稿", "publish", "不能定稿"),
])
def test_bad_transitions_are_refused_in_chinese(world, status, name, words):
    walk_to(world, "2025Q3", status)
    before = world.one("SELECT count(*) FROM period_events")[0]
    with pytest.raises(InputError, match=re.escape(words)):
        lifecycle.transition(world, CLI_OFFICE, name, "2025Q3", until="2026-02-01", reason="理由")
    assert world.one("SELECT count(*) FROM period_events")[0] == before
    assert lifecycle.status_of(world, "2025Q3") == status


def test_transitions_need_the_office_a_date_and_a_reason(world):
    for who in ("u1", "jiance"):
        with pytest.raises(PermissionDenied, match="管理考评周期"):
            lifecycle.open_period(world, user(world, who), "2025Q3", "2026-01-10")
    with pytest.raises(InputError, match="截止日期「明天」无效"):
        lifecycle.open_period(world, CLI_OFFICE, "2025Q3", "明天")
    with pytest.raises(InputError, match="季度格式不正确"):
        lifecycle.close_period(world, CLI_OFFICE, "2025Q9")
    walk_to(world, "2025Q3", lifecycle.PUBLISHED)
    with pytest.raises(InputError, match="必须填写理由"):
        lifecycle.reopen(world, CLI_OFFICE, "2025Q3", "   ")
    with pytest.raises(NotFound, match="没有考评结果"):
        walk_to(world, "2024Q4", lifecycle.PUBLISHED)


def test_publish_waits_for_every_objection_and_skipping_publicity_is_allowed(world):
    walk_to(world, "2025Q2", lifecycle.REVIEWING)
    assert "已定稿发布" in lifecycle.publish(world, CLI_OFFICE, "2025Q2")       # 审核中 → 已定稿, no 公示
    walk_to(world, "2025Q3", lifecycle.PUBLICITY)
    oid, _ = objections.file(world, user(world, "u1"), "U1", "2025Q3", "site.review", "已报送现场检查材料")
    with pytest.raises(InputError, match="还有1条异议未答复"):
        lifecycle.publish(world, CLI_OFFICE, "2025Q3")
    objections.answer(world, CLI_OFFICE, oid, "材料不全", accept_points=None)
    lifecycle.publish(world, CLI_OFFICE, "2025Q3")


# -- what each status allows ------------------------------------------------------------------------
@pytest.mark.parametrize("status, unit_ok, office_ok", [
    ("报送中", True, True), ("审核中", False, True), ("公示中", False, False), ("已定稿", False, False)])
def test_upload_problem_per_role_and_status(world, status, unit_ok, office_ok):
    walk_to(world, "2025Q3", status)
    unit_says = lifecycle.upload_problem(world, user(world, "u1"), "2025Q3")
    assert (unit_says is None) == unit_ok
    if not unit_ok:
        assert unit_says == f"2025Q3 不在报送期(当前状态:{status})"
    for who in (CLI_OFFICE, user(world, "jiance")):
        said = lifecycle.upload_problem(world, who, "2025Q3")
        assert (said is None) == office_ok
        if not office_ok:
            assert said.startswith(f"2025Q3 不在报送期(当前状态:{status})")
    assert lifecycle.upload_problem(world, user(world, "u1"), "2025Q2") is None   # another quarter: no record
    assert lifecycle.upload_problems(world, user(world, "u1"), ["2025Q2", "2025Q3", "2025Q3"]) == (
        {} if unit_ok else {"2025Q3": unit_says})


def test_spec_message_for_a_published_quarter(world):
    submit(world, "2025Q1", {"U1": GOOD})
    walk_to(world, "2025Q1", lifecycle.PUBLISHED)
    assert lifecycle.upload_problem(world, user(world, "u1"), "2025Q1") == "2025Q1 不在报送期(当前状态:已定稿)"


def test_ingest_refuses_a_unit_upload_outside_submission(world):
    """Through scoring.ingest.ingest: the lead wires lifecycle.upload_problem into ingest."""
    from scoring.ingest import ingest

    walk_to(world, "2025Q3", lifecycle.REVIEWING)
    u1 = user(world, "u1")
    with pytest.raises(KaopingError) as refused:
        ingest(world, csv_of("2025Q3", {"U1": GOOD}), "late.csv", u1)
    assert "2025Q3 不在报送期(当前状态:审核中)" in str(refused.value)
    assert ingest(world, csv_of("2025Q3", {"U1": dict(GOOD, broken_links=0)}), "office.csv", CLI_OFFICE).batch_id
    walk_to(world, "2025Q2", lifecycle.PUBLISHED)
    with pytest.raises(KaopingError):
        ingest(world, csv_of("2025Q2", {"U1": WEAK}), "after.csv", CLI_OFFICE)


@pytest.mark.parametrize("status, ok", [("报送中", True), ("审核中", True), ("公示中", True), ("已定稿", False)])
def test_adjust_allowed_until_published(world, status, ok):
    walk_to(world, "2025Q3", status)
    if ok:
        assert "已核定" in adjustments.adjust(world, CLI_OFFICE, "U1", "2025Q3", "site.review", 4, "现场检查")
    else:
        with pytest.raises(InputError, match="2025Q3 已定稿,不能核定"):
            adjustments.adjust(world, CLI_OFFICE, "U1", "2025Q3", "site.review", 4, "现场检查")
        assert world.one("SELECT count(*) FROM adjustments")[0] == 0


@pytest.mark.parametrize("status, ok", [("报送中", True), ("审核中", True), ("公示中", False), ("已定稿", False)])
def test_rollback_of_a_batch_of_a_frozen_quarter_is_refused(world, status, ok):
    late = submit(world, "2025Q3", {"U1": dict(GOOD, broken_links=0)})
    walk_to(world, "2025Q3", status)
    if ok:
        assert "已回滚" in batches.rollback(world, late, CLI_OFFICE)
    else:
        with pytest.raises(InputError, match=f"批次 #{late} 含{status}的季度 2025Q3 的数据,不能回滚"):
            batches.rollback(world, late, CLI_OFFICE)
        assert world.one("SELECT rolled_back_at FROM batches WHERE batch_id = ?", [late])[0] is None


# -- the frozen snapshot ----------------------------------------------------------------------------
def _picture(store, actor=CLI_OFFICE, period="2025Q3"):
    ranking = views.ranking_records(views.ranking(store, actor, period))
    report = views.unit_report(store, actor, "U3", period)
    explained = {k: report[k] for k in ("items", "sections", "total", "grade", "scheme", "bonus", "veto")}
    return ranking, explained


def test_snapshot_round_trip_gives_the_same_scores(world):
    adjustments.adjust(world, CLI_OFFICE, "U2", "2025Q3", "site.review", 3.5, "现场检查")
    live = engine.score(world, ["2025Q3"])
    doc = snapshots.decode(snapshots.encode(live))
    thawed = Scores([Block(**b) for b in doc["blocks"]], doc["units"])
    for unit in ("U1", "U2", "U3"):
        assert thawed.explain(unit, "2025Q3") == live.explain(unit, "2025Q3")
    pd.testing.assert_frame_equal(thawed.units, live.units)
    pd.testing.assert_frame_equal(thawed.items, live.items)
    pd.testing.assert_frame_equal(thawed.sections, live.sections)
    assert snapshots.encode(thawed) == snapshots.encode(live)


def test_published_quarter_does_not_move_until_reopened(world, tmp_path):
    from scoring.ingest import ingest

    walk_to(world, "2025Q3", lifecycle.PUBLICITY)
    adjustments.adjust(world, CLI_OFFICE, "U3", "2025Q3", "site.review", 2, "公示前评定")
    lifecycle.publish(world, CLI_OFFICE, "2025Q3")
    before = _picture(world)
    before_q2 = _picture(world, period="2025Q2")

    # a later upload by the office (refused once ingest asks the lifecycle; frozen either way) …
    with contextlib.suppress(KaopingError):
        ingest(world, csv_of("2025Q3", {"U3": dict(GOOD, broken_links=0, commendations=0)}), "late.csv", CLI_OFFICE)
    # … figures and a 核定 that reach the tables some other way, a new version of the 考评表 …
    submit(world, "2025Q3", {"U1": WEAK, "U2": GOOD})
    world.write(lambda cur: cur.execute(
        "INSERT INTO adjustments VALUES (nextval('seq_adjustment'), 'U3', '2025Q3', 'site.review', 5, 'x', 'x', now())"))
    with pytest.raises(InputError, match="已定稿"):
        adjustments.adjust(world, CLI_OFFICE, "U3", "2025Q3", "site.review", 5, "定稿后核定")
    save_scheme(world, SPEC_SCHEME.replace("{name: 优秀, min: 90}", "{name: 优秀, min: 20}")
                .replace("per: 0.5}", "per: 1}"), CLI_OFFICE)
    # … and a renamed unit
    save_units(world, UNITS.assign(unit_name=UNITS["unit_name"].replace("市民政局", "市民政局(新)")), CLI_OFFICE)

    assert _picture(world) == before
    assert _picture(world, period="2025Q2") != before_q2          # the live quarter does move
    assert views.unit_report(world, CLI_OFFICE, "U3", "2025Q3")["unit_name"] == "市民政局"
    db = world.path
    world.close()
    for args in (["ranking", "--period", "2025Q3", "--format", "json"],
                 ["explain", "U3", "--period", "2025Q3", "--format", "json"]):
        r = cli(*args, db=db)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        if args[0] == "ranking":
            assert out == before[0]
        else:
            assert out["total"] == before[1]["total"] and out["items"] == [
                {k: it[k] for k in ("item_id", "name", "points", "max", "status", "explanation", "sources")}
                for it in before[1]["items"]]
    r = cli("period", "reopen", "2025Q3", "--reason", "U3 错链数据更正", db=db)
    assert r.returncode == 0, r.stderr
    with Store(db) as s:
        after = _picture(s)
        assert after != before
        assert views.unit_report(s, CLI_OFFICE, "U3", "2025Q3")["unit_name"] == "市民政局(新)"
        log = audit.read(s, CLI_OFFICE)
        assert "理由:U3 错链数据更正" in log[log["action"] == "period"]["detail"].iloc[0]


def test_engine_scores_every_period_with_some_frozen(world):
    live_all = engine.score(world)
    walk_to(world, "2025Q2", lifecycle.PUBLISHED)
    mixed = engine.score(world)
    key = ["period", "unit_code"]
    pd.testing.assert_frame_equal(mixed.units.sort_values(key, ignore_index=True),
                                  live_all.units.sort_values(key, ignore_index=True))
    assert sorted(engine.score(world, ["2025Q2"]).units["unit_code"]) == ["U1", "U2", "U3"]
    assert engine.score(world, []).units.empty


def test_a_round_one_database_opened_read_only_still_scores(world, tmp_path):
    world.write(lambda cur: [cur.execute(f"DROP TABLE {t}") for t in ("period_events", "period_snapshots", "objections")])
    path = world.path
    world.close()
    with Store(path, read_only=True) as ro:
        assert len(engine.score(ro).units) == 6
        assert lifecycle.status_of(ro, "2025Q3") == "报送中"


def test_a_tampered_snapshot_is_refused(world):
    walk_to(world, "2025Q3", lifecycle.PUBLISHED)
    world.write(lambda cur: cur.execute("UPDATE period_snapshots SET data = ?", [b"PK garbage"]))
    with pytest.raises(KaopingError, match="定稿快照校验失败"):
        engine.score(world, ["2025Q3"])


# -- 异议 ---------------------------------------------------------------------------------------------
def test_objection_rules(world, monkeypatch):
    u1, u2 = user(world, "u1"), user(world, "u2")
    with pytest.raises(InputError, match=re.escape("2025Q3 不在公示期(当前状态:报送中),不能提出异议")):
        objections.file(world, u1, "U1", "2025Q3", "site.review", "理由")
    walk_to(world, "2025Q3", lifecycle.PUBLICITY, until=date(2026, 1, 20))
    monkeypatch.setenv("KAOPING_TODAY", "2026-01-20")
    with pytest.raises(PermissionDenied):
        objections.file(world, u1, "U2", "2025Q3", "site.review", "替别人提")
    with pytest.raises(PermissionDenied):
        objections.file(world, CLI_OFFICE, "U1", "2025Q3", "site.review", "办公室代提")
    with pytest.raises(InputError, match="异议理由不能为空"):
        objections.file(world, u1, "U1", "2025Q3", "site.review", " ")
    with pytest.raises(NotFound, match="没有考评项「site.nope」"):
        objections.file(world, u1, "U1", "2025Q3", "site.nope", "理由")
    oid, msg = objections.file(world, u1, "U1", "2025Q3", "错链", "错链已于季度内整改")   # by name
    assert msg.startswith(f"已提交异议#{oid}")
    with pytest.raises(InputError, match=f"已有待答复的异议#{oid}"):
        objections.file(world, u1, "U1", "2025Q3", "site.links", "再提一次")
    other, _ = objections.file(world, u2, "U2", "2025Q3", "site.review", "<b>粗体</b> =1+1")
    monkeypatch.setenv("KAOPING_TODAY", "2026-01-21")
    with pytest.raises(InputError, match="公示期已于2026年1月20日结束"):
        objections.file(world, u1, "U1", "2025Q3", "site.review", "晚了")

    mine = objections.list_objections(world, u1)
    assert mine["id"].tolist() == [oid] and mine["item_name"].iloc[0] == "错链" and mine["status_label"].iloc[0] == "待答复"
    with pytest.raises(PermissionDenied):
        objections.list_objections(world, u1, unit_code="U2")
    with pytest.raises(PermissionDenied):
        objections.answer(world, u1, oid, "自己采纳", accept_points=4)
    assert len(objections.list_objections(world, CLI_OFFICE, period="2025Q3")) == 2

    assert "已采纳" in objections.answer(world, CLI_OFFICE, oid, "整改材料属实", accept_points=4)
    adj = adjustments.list_adjustments(world, CLI_OFFICE, "U1", "2025Q3").iloc[0]
    assert (adj["item_id"], adj["points"], adj["reason"]) == ("site.links", 4.0, f"采纳异议#{oid}:整改材料属实")
    assert views.unit_report(world, CLI_OFFICE, "U1", "2025Q3")["items"][2]["status"] == "adjusted"
    with pytest.raises(InputError, match=re.escape("已答复(已采纳)")):
        objections.answer(world, CLI_OFFICE, oid, "再答一次")
    with pytest.raises(InputError, match="超出范围"):
        objections.answer(world, CLI_OFFICE, other, "分值过大", accept_points=50)
    assert objections.list_objections(world, CLI_OFFICE).set_index("id").loc[other, "status"] == "pending"
    objections.answer(world, CLI_OFFICE, other, "评定依据充分")
    rows = objections.records(objections.list_objections(world, CLI_OFFICE))
    by = {r["id"]: r for r in rows}
    assert by[oid]["status"] == "已采纳" and by[oid]["points"] == 4.0 and by[other]["status"] == "不予采纳"
    assert by[other]["reason"] == "<b>粗体</b> =1+1" and by[other]["points"] is None
    log = audit.read(world, CLI_OFFICE)
    assert (log["action"] == "objection").sum() == 4 and "采纳异议" in " ".join(log["detail"])
    lifecycle.publish(world, CLI_OFFICE, "2025Q3")
    with pytest.raises(InputError, match="不在公示期"):
        objections.file(world, u1, "U1", "2025Q3", "site.review", "定稿后")


# -- what a unit sees -----------------------------------------------------------------------------
def test_unit_scope_and_visible_rows(world):
    submit(world, "2025Q1", {"U1": GOOD, "U2": WEAK})
    walk_to(world, "2025Q1", lifecycle.PUBLISHED)
    walk_to(world, "2025Q2", lifecycle.PUBLICITY)
    walk_to(world, "2025Q3", lifecycle.REVIEWING)
    submit(world, "2025Q4", {"U1": GOOD})
    assert lifecycle.unit_scope(world, ["2025Q1", "2025Q2", "2025Q3", "2025Q4"]) == {
        "2025Q1": "group", "2025Q2": "own", "2025Q3": "none", "2025Q4": "group"}
    ranked = views.group_history(world, CLI_OFFICE, "市直部门")
    u1 = user(world, "u1")
    seen = lifecycle.visible_rows(world, u1, ranked)
    assert sorted(zip(seen["period"], seen["unit_code"])) == [
        ("2025Q1", "U1"), ("2025Q1", "U2"), ("2025Q2", "U1"), ("2025Q4", "U1")]
    assert len(lifecycle.visible_rows(world, CLI_OFFICE, ranked)) == len(ranked)


def test_seed_demo_publishes_the_past_and_puts_the_latest_on_publicity(world):
    msg = lifecycle.seed_demo(world, today=date(2026, 1, 13))
    assert msg == "考评周期:2025Q2–2025Q2 已定稿,2025Q3 公示中,异议截止2026年1月20日"
    q2, q3 = lifecycle.state(world, "2025Q2"), lifecycle.state(world, "2025Q3")
    assert q2.status == "已定稿" and q2.deadline == date(2025, 7, 10) and q2.published_at is not None
    assert q3.status == "公示中" and q3.publicity_until == date(2026, 1, 20)
    with world.cursor() as cur:
        assert snapshots.frozen(cur, None).keys() == {"2025Q2"}


# -- the command line ------------------------------------------------------------------------------
@pytest.fixture
def db(tmp_path):
    path = tmp_path / "lifecycle.duckdb"
    with Store(path) as s:
        save_units(s, UNITS, CLI_OFFICE)
        save_scheme(s, SPEC_SCHEME, CLI_OFFICE)
        submit(s, "2025Q2", {"U1": GOOD, "U2": WEAK})
        submit(s, "2025Q3", {"U1": GOOD, "U2": WEAK, "U3": GOOD})
        accounts.add_user(s, CLI_OFFICE, "u1", PW, "unit", "U1")
    return path


def test_cli_period_and_objection_commands(db, monkeypatch):
    monkeypatch.setenv("KAOPING_TODAY", "2026-01-07")
    r = cli("period", "status", "--format", "json", db=db)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"period": p, "status": "报送中", "deadline": None, "publicity_until": None,
                                     "published_at": None} for p in ("2025Q2", "2025Q3")]
    assert cli("period", "open", "2025Q3", "--until", "2026-01-10", db=db).returncode == 0
    bad = cli("period", "publish", "2025Q3", db=db)
    assert bad.returncode == 1 and "不能定稿" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("period", "open", "2025Q3", "--until", "下周", db=db).returncode == 1
    assert cli("period", "open", "2025Q3", db=db).returncode == 2                      # --until is required
    assert cli("period", "close", "2025Q3", db=db).returncode == 0
    assert cli("period", "publicize", "2025Q3", "--until", "2026-01-20", db=db).returncode == 0
    # --as after the command's arguments, or before the command
    r = cli("objection", "add", "U1", "2025Q3", "site.review", "--reason", "已报送材料", "--as", "u1", db=db)
    assert r.returncode == 0, r.stderr
    assert "已提交异议#1" in r.stdout
    r = cli("--as", "u1", "objection", "add", "U2", "2025Q3", "site.review", "--reason", "x", db=db)
    assert r.returncode == 1 and "只能访问本单位" in r.stderr
    r = cli("objection", "add", "U1", "2025Q3", "site.links", "--reason", "x", db=db)       # the office
    assert r.returncode == 1 and "对公示结果提出异议" in r.stderr
    assert cli("objection", "answer", "1", "--accept", "4", "--reject", "--reason", "x", db=db).returncode == 2
    assert cli("objection", "answer", "1", "--reason", "x", db=db).returncode == 2
    r = cli("objection", "answer", "1", "--accept", "nan", "--reason", "x", db=db)
    assert r.returncode == 1
    r = cli("objection", "answer", "#1", "--accept", "4", "--reason", "材料齐全", db=db)
    assert r.returncode == 0 and "核定为4分" in r.stdout
    r = cli("objection", "list", "--period", "2025年第三季度", "--format", "json", db=db)
    [row] = json.loads(r.stdout)
    assert list(row) == ["id", "unit_code", "unit_name", "period", "item_id", "item_name", "reason", "filed_by",
                         "filed_at", "status", "answer", "points", "answered_by", "answered_at"]
    assert (row["id"], row["status"], row["points"], row["answer"]) == (1, "已采纳", 4.0, "材料齐全")
    assert "采纳异议#1:材料齐全" in cli("explain", "U1", "--period", "2025Q3", db=db).stdout
    assert "已采纳" in cli("--as", "u1", "objection", "list", db=db).stdout
    assert cli("period", "publish", "2025Q3", db=db).returncode == 0
    r = cli("period", "status", db=db)
    assert "已定稿" in r.stdout and "2026年1月10日" in r.stdout and "2026年1月20日" in r.stdout
    [q2, q3] = json.loads(cli("period", "status", "--format", "json", db=db).stdout)
    assert q3["status"] == "已定稿" and q3["deadline"] == "2026-01-10" and q3["publicity_until"] == "2026-01-20"
    assert q3["published_at"] is not None and q2["status"] == "报送中"
    r = cli("adjust", "U1", "2025Q3", "site.review", "5", "--reason", "x", db=db)
    assert r.returncode == 1 and "已定稿,不能核定" in r.stderr
    assert cli("period", "reopen", "2025Q3", db=db).returncode == 2
    r = cli("period", "reopen", "2025Q3", "--reason", "数据更正", db=db)
    assert r.returncode == 0 and "重新开放" in r.stdout
    log = cli("audit", db=db).stdout
    assert "考评周期" in log and "异议" in log and "理由:数据更正" in log


# -- pages (AppTest) ------------------------------------------------------------------------------
OFFICE = User("office", "office")


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory):
    return build_demo_db(tmp_path_factory.mktemp("lifecycle_demo") / "demo.duckdb")


@pytest.fixture
def demo(demo_template, tmp_path, monkeypatch):
    path = copy_db(demo_template, tmp_path / "demo.duckdb")
    monkeypatch.setenv("KAOPING_DB", str(path))
    monkeypatch.setenv("KAOPING_TODAY", "2026-01-07")
    return path


def _unit_head(path) -> User:
    with Store(path) as s:
        return accounts.get_user(s, "unit-shizhi")


def _reset_latest(path) -> str:
    """2025Q4 back to 报送中 whatever the demo seeded (so the tests walk it themselves)."""
    with Store(path) as s:
        st = lifecycle.state(s, "2025Q4")
        if st.status == lifecycle.PUBLISHED:
            lifecycle.reopen(s, CLI_OFFICE, "2025Q4", "测试")
        if lifecycle.status_of(s, "2025Q4") == lifecycle.PUBLICITY:
            lifecycle.close_period(s, CLI_OFFICE, "2025Q4")
        lifecycle.open_period(s, CLI_OFFICE, "2025Q4", "2026-01-10")
    return "2025Q4"


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
    parts += [w.value for w in at.warning] + [i.value for i in at.info] + [s.value for s in at.success]
    parts += [e.value for e in at.error]
    return "\n".join(unescape(p) for p in parts)


def table_with(at, column: str) -> pd.DataFrame:
    """The first grid that has ``column`` (grids carry no key in AppTest)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_page_in_the_office_navigation_only():
    from dashboard import nav

    assert "lifecycle" in nav.pages_for(OFFICE)
    for who in (User("u", "unit", "X"), User("c", "checker")):
        assert "lifecycle" not in nav.pages_for(who)


def test_lifecycle_page_walks_a_quarter(demo):
    period = _reset_latest(demo)
    at = app(OFFICE, "lifecycle")
    clean(at)
    assert at.title[0].value == "考评周期"
    table = table_with(at, "报送截止")
    assert {"季度", "状态", "报送截止", "公示截止", "定稿时间"} <= set(table.columns)
    assert period in table["季度"].tolist()

    def do(action: str, **fields):
        at.selectbox(key="lifecycle.period").set_value(period).run()
        at.selectbox(key="lifecycle.action").set_value(action).run()
        if "until" in fields:
            at.date_input(key=f"lifecycle.until.{period}.{action}").set_value(fields["until"])
        if "reason" in fields:
            at.text_area(key=f"lifecycle.reason.{period}").set_value(fields["reason"])
        at.button(key="lifecycle.go").click().run()
        clean(at)

    do("close")
    do("publicize", until=date(2026, 1, 20))
    assert "异议截止2026年1月20日" in texts(at)
    with Store(demo) as s:
        assert lifecycle.status_of(s, period) == "公示中"
    do("publish")
    assert "已定稿发布" in texts(at)
    at.selectbox(key="lifecycle.period").set_value(period).run()
    at.selectbox(key="lifecycle.action").set_value("reopen").run()
    at.button(key="lifecycle.go").click().run()
    assert [e.value for e in at.error] == ["重新开放已定稿的季度必须填写理由"]
    with Store(demo) as s:
        assert lifecycle.status_of(s, period) == "已定稿"
    do("reopen", reason="数据更正")
    with Store(demo) as s:
        assert lifecycle.status_of(s, period) == "审核中"


def test_unit_files_an_objection_and_the_office_answers_it(demo):
    period = _reset_latest(demo)
    with Store(demo) as s:
        lifecycle.close_period(s, CLI_OFFICE, period)
        lifecycle.publicize(s, CLI_OFFICE, period, "2026-01-20")
    head = _unit_head(demo)
    at = app(head, "unit_detail", **{"detail.period": period})
    clean(at)
    assert "公示中,异议截止:2026年1月20日" in texts(at)
    item = at.selectbox(key="detail.objection_item").options[0]
    at.text_area(key="detail.objection_reason").set_value("<b>已整改</b>,见附件")
    at.button(key="detail.objection_go").click().run()
    clean(at)
    assert "已提交异议#1" in texts(at)
    mine = table_with(at, "异议理由")
    assert mine["状态"].tolist() == ["待答复"] and mine["异议理由"].tolist() == ["<b>已整改</b>,见附件"]

    office = app(OFFICE, "lifecycle")
    clean(office)
    queue = table_with(office, "异议理由")
    assert queue["状态"].tolist() == ["待答复"]
    office.selectbox(key="lifecycle.objection").set_value(1).run()
    office.radio(key="lifecycle.verdict").set_value("采纳并核定").run()
    office.number_input(key="lifecycle.points").set_value(1.0)
    office.text_area(key="lifecycle.answer").set_value("材料属实")
    office.button(key="lifecycle.answer_go").click().run()
    clean(office)
    assert "异议#1 已采纳" in texts(office)

    at = app(head, "unit_detail", **{"detail.period": period})
    clean(at)
    mine = table_with(at, "异议理由")
    assert mine["状态"].tolist() == ["已采纳"] and mine["答复"].tolist() == ["材料属实"]
    assert item


def test_upload_page_tells_the_clerk_the_deadline(demo):
    period = _reset_latest(demo)
    head = _unit_head(demo)
    at = app(head, "upload")
    clean(at)
    assert "2025年第四季度(2025Q4)报送截止:2026年1月10日,还剩3天" in texts(at)
    with Store(demo) as s:
        lifecycle.close_period(s, CLI_OFFICE, period)
    at = app(head, "upload")
    clean(at)
    assert "报送已截止(当前状态:审核中)" in texts(at)

