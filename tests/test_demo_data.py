"""The shipped scoring tables (data/tables/*.yaml), the demo unit registry and scoring/demo.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from scoring import demo
from scoring.schemes import parse_scheme

ROOT = Path(__file__).resolve().parents[1]
TABLES = sorted((ROOT / "data" / "tables").glob("2025-*.yaml"))
RULE_TYPES = {"boolean", "deduct", "ladder", "rate", "ratio", "relative", "per", "manual"}
GROUPS = {"市直部门", "县区", "乡镇街道", "公共企事业单位"}
# What the office, its inspection team or 第三方检测 find or record (kaoping-practice.md): units do not
# report these about themselves.
OFFICE = {"website_check_score", "website_veto_flag", "broken_links_count", "sensitive_errors_count",
          "blank_columns_count", "stale_columns_count", "newmedia_stale_accounts", "channel_test_passed",
          "reply_defect_count", "satisfaction_rate", "late_submissions",
          "commendations_provincial", "commendations_municipal", "criticisms_count",
          "website_spot_check_failed", "secret_leak_incident"}
CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _load(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def schemes() -> dict[str, dict]:
    return {p.stem: _load(p) for p in TABLES}


@pytest.fixture(scope="module")
def parsed() -> dict:
    """The same tables as the library reads them."""
    return {p.stem: parse_scheme(p.read_text(encoding="utf-8")) for p in TABLES}


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    return pd.read_csv(ROOT / "data" / "units.csv", dtype=str, keep_default_na=False, encoding="utf-8")


@pytest.fixture(scope="module")
def uploads(units, schemes):
    return demo.demo_uploads(units, schemes)


@pytest.fixture(scope="module")
def source(parsed) -> dict[str, str]:
    """indicator code -> unit | office | computed (the same in every scheme)."""
    return {c: ind.source for s in parsed.values() for c, ind in s.indicators.items()}


def _rule_indicators(rule: dict) -> list[str]:
    return [rule[k] for k in ("indicator", "numerator", "denominator") if k in rule]


def _all_items(s: dict) -> list[dict]:
    items = [it for sec in s["sections"] for it in sec["items"]]
    return items + list((s.get("bonus") or {}).get("items", [])) + list(s.get("penalties") or [])


def _check_terms(expr: str) -> list[str]:
    m = re.fullmatch(r"\s*(.+?)\s*(<=|>=|==|<|>)\s*(.+?)\s*", expr)
    assert m, expr
    terms = [t.strip() for side in (m.group(1), m.group(3)) for t in side.split("+")]
    assert all(CODE_RE.match(t) for t in terms), expr
    return terms


# --------------------------------------------------------------------------------- schemes

def test_four_schemes_one_per_group(schemes):
    assert sorted(p.stem for p in TABLES) == ["2025-qishiye", "2025-shizhi", "2025-xiangzhen", "2025-xianqu"]
    groups = [g for s in schemes.values() for g in s["applies_to"]["groups"]]
    assert sorted(groups) == sorted(GROUPS)
    for sid, s in schemes.items():
        assert s["scheme"] == sid
        assert s["title"].startswith("2025年度") and s["title"].endswith("考评表")
        assert str(s["applies_to"]["from"]) == "2024Q1" and str(s["applies_to"]["to"]) == "2025Q4"
        assert s["missing"] == "zero"
        assert [(g["name"], g["min"]) for g in s["grades"]] == [("优秀", 90), ("良好", 80), ("合格", 60), ("不合格", 0)]


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.stem)
def test_scheme_structure(path):
    s = _load(path)
    assert s.get("total_max", 100) == 100
    assert sum(sec["max"] for sec in s["sections"]) == pytest.approx(100)
    n_items = sum(len(sec["items"]) for sec in s["sections"])
    assert 25 <= n_items <= 40, n_items

    ids = [sec["id"] for sec in s["sections"]] + [it["id"] for it in _all_items(s)] + [v["id"] for v in s["veto"]]
    ids += [c["id"] for c in s.get("checks", [])]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    for it in _all_items(s):
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", it["id"]), it["id"]
        assert re.search(r"[\u4e00-\u9fff]", it["name"]), it["id"]

    declared = {ind["code"]: ind for ind in s["indicators"]}
    assert len(declared) == len(s["indicators"])
    assert 40 <= len(declared) <= 65
    names = [ind["name"] for ind in s["indicators"]]
    assert len(names) == len(set(names))
    for ind in s["indicators"]:
        assert CODE_RE.match(ind["code"]) and ind["type"] in {"count", "number", "rate", "bool"}
        if "min" in ind and "max" in ind:
            assert ind["min"] <= ind["max"]

    used = set()
    for it in _all_items(s):
        rule = it["rule"]
        assert rule["type"] in RULE_TYPES, it["id"]
        used |= set(_rule_indicators(rule))
        if rule["type"] == "ladder":
            thr = [t[0] for t in rule["tiers"]]
            pts = [t[1] for t in rule["tiers"]]
            assert thr == sorted(thr, reverse=True) and len(set(thr)) == len(thr), it["id"]
            assert pts == sorted(pts, reverse=True) and max(pts) <= it["max"], it["id"]
        if rule["type"] == "rate":
            assert rule["full_at"] > rule["zero_at"]
        if rule["type"] == "ratio":
            assert rule.get("on_zero", "full") in {"full", "na", "zero"}
        if rule["type"] == "deduct":
            assert rule.get("floor", "item") in {"item", "section"} and rule["per"] > 0
    for pen in s["penalties"]:
        assert pen["rule"]["type"] == "per" and "max" not in pen
    for v in s["veto"]:
        assert v["op"] in {">", ">=", "<", "<=", "==", "!="}
        used.add(v["indicator"])
    for c in s["checks"]:
        used |= set(_check_terms(c["expr"]))
    assert used <= set(declared), used - set(declared)

    types = {it["rule"]["type"] for sec in s["sections"] for it in sec["items"]}
    assert {"relative", "manual"} <= types
    b = s["bonus"]
    assert b["max"] == 5 and b["min_base"] == 60
    assert any(v["indicator"] == "secret_leak_incident" and "cap" not in v for v in s["veto"])
    assert any(ind.get("na_allowed") for ind in s["indicators"])


def test_rule_types_and_styles_covered(schemes):
    items = [it for s in schemes.values() for it in _all_items(s)]
    assert {it["rule"]["type"] for it in items} == RULE_TYPES
    assert any(it["rule"].get("floor") == "section" for it in items)
    assert any(it["rule"].get("on_zero") == "na" for it in items)
    assert any(v.get("cap") == 59 for s in schemes.values() for v in s["veto"])
    # at least one section whose items add up to more than its max
    assert any(sum(it["max"] for it in sec["items"]) > sec["max"]
               for s in schemes.values() for sec in s["sections"])


def test_shared_indicator_codes_mean_the_same(schemes):
    seen: dict[str, tuple] = {}
    for s in schemes.values():
        for ind in s["indicators"]:
            key = (ind["name"], ind["type"], bool(ind.get("na_allowed")), ind.get("source", "unit"))
            assert seen.setdefault(ind["code"], key) == key, ind["code"]


def test_who_supplies_each_figure(parsed):
    for sid, s in parsed.items():
        assert {c for c, ind in s.indicators.items() if ind.source == "office"} == OFFICE & set(s.indicators), sid
        from_children = {c: ind.computed for c, ind in s.indicators.items()
                         if ind.source == "computed" and ind.computed[0] == "children"}
        assert from_children == ({"town_avg_score": ("children", "total", "mean")} if sid == "2025-xianqu" else {})
        # the 年报's 勾稽 errors are counted from its statistics (scoring/yearbook.py), not reported
        assert all(s.indicators[c].computed == ("yearbook", "errors", None)
                   for c in ("annual_report_errors",) if c in s.indicators), sid
        # a veto never rests on the unit's own word
        assert all(s.indicators[v.indicator].source == "office" for v in s.vetoes), sid


# --------------------------------------------------------------------------------- registry

def test_units_registry(units):
    assert list(units.columns) == ["unit_code", "unit_name", "group", "parent_code"]
    assert 140 <= len(units) <= 160
    assert units["unit_code"].is_unique and units["unit_name"].is_unique
    assert set(units["group"]) == GROUPS
    counts = units["group"].value_counts()
    assert counts["市直部门"] >= 50 and counts["县区"] >= 10 and counts["乡镇街道"] >= 55 and counts["公共企事业单位"] >= 20
    county = set(units.loc[units["group"] == "县区", "unit_code"])
    towns = units[units["group"] == "乡镇街道"]
    assert towns["parent_code"].isin(county).all()
    assert (units.loc[units["group"] != "乡镇街道", "parent_code"] == "").all()


# --------------------------------------------------------------------------------- demo data

def test_demo_is_deterministic(units, parsed, uploads):
    again = demo.demo_uploads(units, parsed)      # Scheme objects or their YAML: the same data
    assert list(again) == list(uploads)
    for key, frame in uploads.items():
        pd.testing.assert_frame_equal(frame, again[key])


def test_demo_shape(units, schemes, uploads):
    assert set(uploads) == {(p, sid) for p in demo.PERIODS for sid in schemes}
    group_of = dict(zip(units["unit_code"], units["group"]))
    n_rows = 0
    for (period, sid), frame in uploads.items():
        codes = [ind["code"] for ind in schemes[sid]["indicators"] if ind.get("source") != "computed"]
        assert list(frame.columns) == ["unit_code", "period", "self_score"] + codes
        assert (frame["period"] == period).all()
        assert frame["unit_code"].is_unique
        assert {group_of[u] for u in frame["unit_code"]} == set(schemes[sid]["applies_to"]["groups"])
        n_rows += len(frame)
    # exactly one unit misses one whole quarter
    assert n_rows == len(units) * len(demo.PERIODS) - 1


def test_demo_files_split_the_uploads_by_source(uploads, parsed, source):
    files = demo.demo_files(uploads, parsed)
    checker = {name: frame for name, who, frame in files if who == "checker"}
    assert list(checker) == [f"{p}-第三方检测.csv" for p in demo.PERIODS]
    assert [name for name, who, _ in files if who == "unit"] == [f"{p}-{sid}.csv" for p, sid in uploads]
    for name, who, frame in files:
        codes = [c for c in frame.columns if c not in ("unit_code", "period", "self_score")]
        assert {source[c] for c in codes} == {who.replace("checker", "office")}, name
        assert ("self_score" in frame) == (who == "unit") and frame["unit_code"].is_unique
    # together they carry every figure of the uploads exactly once
    unit_files = iter(frame for _, who, frame in files if who == "unit")
    for (period, sid), frame in uploads.items():
        own = next(unit_files)
        office = checker[f"{period}-第三方检测.csv"].set_index("unit_code").loc[frame["unit_code"]]
        for c in frame.columns:
            got = own[c] if c in own else office[c]
            pd.testing.assert_series_equal(got.reset_index(drop=True), frame[c].reset_index(drop=True),
                                           check_dtype=False, obj=f"{period} {sid} {c}")
    assert sum(len(f) for f in checker.values()) == sum(len(f) for f in uploads.values())


def _numeric(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col.where(col.astype(object) != demo.NA_TEXT), errors="coerce").to_numpy(float)


def test_demo_values_respect_declarations(schemes, parsed, uploads):
    na_units: dict[tuple[str, str], dict[str, set]] = {}
    for (period, sid), frame in uploads.items():
        for ind in (i for i in schemes[sid]["indicators"] if i.get("source") != "computed"):
            col = frame[ind["code"]].astype(object)
            is_na = (col == demo.NA_TEXT).to_numpy()
            if is_na.any():
                assert ind.get("na_allowed"), ind["code"]
            if ind.get("na_allowed"):
                na_units.setdefault((sid, ind["code"]), {})[period] = (set(frame["unit_code"]),
                                                                       set(frame.loc[is_na, "unit_code"]))
            vals = pd.to_numeric(col[~is_na], errors="coerce").dropna().to_numpy(float)
            lo = ind.get("min", 0 if ind["type"] in ("count", "rate", "bool") else None)
            hi = ind.get("max", {"rate": 100, "bool": 1}.get(ind["type"]))
            if lo is not None:
                assert (vals >= lo).all(), (period, ind["code"])
            if hi is not None:
                assert (vals <= hi).all(), (period, ind["code"])
            if ind["type"] in ("count", "bool"):
                assert (vals == np.round(vals)).all(), ind["code"]
            else:
                assert np.allclose(vals, np.round(vals, 1)), ind["code"]
        for check in parsed[sid].checks:
            holds = check.holds({c: _numeric(frame[c]) for c in check.reads()})
            assert holds.all(), (period, sid, check.id, list(frame.loc[~holds, "unit_code"]))
        ss = frame["self_score"].dropna().to_numpy(float)
        assert ((ss >= 0) & (ss <= 100)).all() and np.allclose(ss, np.round(ss, 1))
    assert any(na for by_period in na_units.values() for _, na in by_period.values()), \
        "some na_allowed indicators must be reported as 不适用"
    # the same units report 不适用 every quarter (among the units present that quarter)
    for key, by_period in na_units.items():
        everyone = set().union(*(na for _, na in by_period.values()))
        for present, na in by_period.values():
            assert na == everyone & present, key


def test_demo_gaps_vetoes_and_carry_over(schemes, uploads, source):
    blank = pd.concat([f.drop(columns=["self_score"]).isna().sum() for f in uploads.values()])
    assert 1 <= blank.sum() <= 10
    assert {source[c] for c in blank[blank > 0].index} == {"unit"}     # the inspection leaves no gaps
    assert sum(int(f["self_score"].isna().sum()) for f in uploads.values()) >= 3
    leaks = [(k, u) for k, f in uploads.items() if "secret_leak_incident" in f
             for u in f.loc[f["secret_leak_incident"] == 1, "unit_code"]]
    website = [(k, u) for k, f in uploads.items() if "website_veto_flag" in f
               for u in f.loc[f["website_veto_flag"] == 1, "unit_code"]]
    assert len(leaks) == 1 and len(website) == 1
    # applications carried forward reappear as next quarter's carry-over
    a = uploads[("2024Q1", "2025-shizhi")].set_index("unit_code")["apps_carried_forward"]
    b = uploads[("2024Q2", "2025-shizhi")].set_index("unit_code")["apps_carried_over"]
    common = a.index.intersection(b.index)
    assert (a[common] == b[common]).all()


# --------------------------------------------------------------------------------- init --demo

def _init_demo(db: Path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "scoring", "--db", str(db), "init", "--demo"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=180)


def test_init_demo_refuses_a_database_with_an_account(tmp_path):
    """Security review row 7: demo data, demo mode and the public demo password never reach a real
    database."""
    from scoring import accounts
    from scoring.permissions import SYSTEM
    from scoring.store import Store

    db = tmp_path / "real.duckdb"
    with Store(db) as store:
        accounts.add_user(store, SYSTEM, "zhangming", "Jiangzhou-Office-7431", "office")
    r = _init_demo(db)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "不能载入演示数据" in r.stderr and "新的数据库文件" in r.stderr
    with Store(db) as store:
        assert store.rows("SELECT username FROM users") == [("zhangming",)]
        assert not accounts.is_demo(store) and store.meta("demo_mode") is None
        assert store.one("SELECT count(*) FROM units")[0] == 0
        assert store.one("SELECT count(*) FROM batches")[0] == 0


def test_init_demo_refuses_a_database_with_a_registry(tmp_path):
    from scoring.permissions import SYSTEM
    from scoring.store import Store
    from scoring.units import save_units

    db = tmp_path / "real.duckdb"
    with Store(db) as store:
        save_units(store, pd.DataFrame([("A1", "市审计局", "市直部门", None)],
                                       columns=["unit_code", "unit_name", "group", "parent_code"]), SYSTEM)
    r = _init_demo(db)
    assert r.returncode == 1 and "不能载入演示数据" in r.stderr
    with Store(db) as store:
        assert store.one("SELECT count(*) FROM users")[0] == 0 and store.meta("demo_mode") is None
        assert store.rows("SELECT unit_code FROM units") == [("A1",)]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    from scoring.store import Store

    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with Store(db) as store:
        message = demo.seed_demo(store, ROOT / "data")
    return db, message


def test_demo_database_scores_as_documented(demo_db):
    """What the README and the module docstring promise of the demo, through the real engine."""
    from scoring import accounts, engine
    from scoring.store import Store

    db, message = demo_db
    assert "152个单位" in message and "最新季度 2025Q4" in message and "checker" in message
    with Store(db, read_only=True) as store:
        assert accounts.is_demo(store)
        u = engine.score(store).units
    assert sorted(u["period"].unique()) == list(demo.PERIODS)
    per = u.groupby("period")
    assert per["total"].mean().between(81, 85).all(), per["total"].mean()
    excellent = per["grade"].apply(lambda g: (g == "优秀").mean())
    assert excellent.between(0.1, 0.35).all() and 0.2 <= excellent[-4:].mean() <= 0.32, excellent
    failed = per["passed"].apply(lambda p: int((~p.astype(bool)).sum()))
    assert failed.max() <= 6 and 5 <= failed.sum() <= 20, failed
    vetoed = u[u["veto"].notna()]
    assert sorted(zip(vetoed["period"], vetoed["group"])) == [("2024Q3", "市直部门"), ("2025Q2", "公共企事业单位")]
    # self-assessments follow the verified totals, some a few points off (the app flags gaps ≥ 5); a few are blank
    own = u[u["veto"].isna() & u["self_score"].notna()]
    gap = (own["self_score"] - own["total"]).abs()
    assert own["self_score"].corr(own["total"]) > 0.8 and gap.median() < 3 and 0.02 < (gap >= 5).mean() < 0.2
    assert u["self_score"].isna().sum() >= 3


def test_demo_office_figures_come_from_the_checker(demo_db, source):
    from scoring.store import Store

    db, _ = demo_db
    with Store(db, read_only=True) as store:
        assert store.rows("SELECT role, unit_code FROM users WHERE username = 'checker'") == [("checker", None)]
        cells = store.df("SELECT b.uploaded_by, b.file_name, v.indicator FROM indicator_values v "
                         "JOIN batches b USING (batch_id)")
        self_scores = store.df("SELECT b.uploaded_by, count(s.self_score) AS n FROM submissions s "
                               "JOIN batches b USING (batch_id) GROUP BY ALL")
    by_checker = cells["uploaded_by"] == "checker"
    assert set(cells.loc[by_checker, "indicator"].map(source)) == {"office"}
    assert set(cells.loc[~by_checker, "indicator"].map(source)) == {"unit"}          # nothing computed is stored
    assert sorted(cells.loc[by_checker, "file_name"].unique()) == [f"{p}-第三方检测.csv" for p in demo.PERIODS]
    assert dict(zip(self_scores["uploaded_by"], self_scores["n"]))["checker"] == 0


def test_demo_county_town_average_is_its_towns_mean(demo_db):
    """A 县区's town_avg_score is the mean of its 乡镇街道's totals of the quarter; in 2024Q3 one town
    sent nothing and the mean is over those that did."""
    from scoring import engine
    from scoring.store import Store

    db, _ = demo_db
    with Store(db, read_only=True) as store:
        scores = engine.score(store)
        parent = dict(store.rows("SELECT unit_code, parent_code FROM units WHERE parent_code IS NOT NULL"))
    u = scores.units
    for period, n_towns in (("2024Q3", 59), ("2025Q4", 60)):
        towns = u[(u["period"] == period) & (u["group"] == "乡镇街道")]
        assert len(towns) == n_towns
        expected = towns.groupby(towns["unit_code"].map(parent))["total"].mean()
        assert len(expected) == 12
        for county, mean in expected.items():
            item = next(i for i in scores.explain(county, period)["items"] if i["item_id"] == "base.towns")
            assert item["sources"] == [{"indicator": "town_avg_score", "value": pytest.approx(mean),
                                        "source": "computed", "batch": None}], (county, period)
    counties = u[u["group"] == "县区"].groupby("period")["total"]
    assert counties.mean().between(80, 90).all() and counties.min().min() > 60, counties.describe()


def test_explain_says_where_a_county_figures_come_from(demo_db):
    import json
    import subprocess
    import sys

    db, _ = demo_db
    cmd = [sys.executable, "-m", "scoring", "--db", str(db), "explain", "XQ01", "--period", "2025Q4"]
    table = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert table.returncode == 0, table.stderr
    assert all(word in table.stdout for word in ("单位填报", "第三方", "系统计算")), table.stdout
    out = subprocess.run(cmd + ["--format", "json"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    items = {i["item_id"]: i for i in json.loads(out.stdout)["items"]}
    assert [s["source"] for s in items["base.towns"]["sources"]] == ["computed"]
    assert [s["source"] for s in items["site.check"]["sources"]] == ["office"]
    assert [s["source"] for s in items["org.plan"]["sources"]] == ["unit"]


def test_init_demo_refuses_a_demo_database(demo_db):
    from scoring.store import Store

    db, _ = demo_db
    with Store(db, read_only=True) as store:
        before = store.one("SELECT count(*) FROM batches")[0]
    r = _init_demo(db)
    assert r.returncode == 1 and "不能载入演示数据" in r.stderr and "上传批次" in r.stderr
    with Store(db, read_only=True) as store:
        assert store.one("SELECT count(*) FROM batches")[0] == before
