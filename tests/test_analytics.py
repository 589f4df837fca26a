"""Analytics (issue #14): rank robustness, what-if and where to gain, attribution, anomaly flags,
self-assessment accuracy; by hand on SPEC's example, as properties on random data scored by the
real engine, through the CLI, and the office's 核查清单 page."""
from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import accounts, analytics, engine, periods
from scoring.adjustments import adjust
from scoring.cli import CLI_OFFICE
from scoring.errors import InputError, NotFound, PermissionDenied
from scoring.schemes import parse_scheme, save_scheme
from scoring.store import Store
from scoring.units import save_units
from tests.dashboard_support import app
from tests.support import GOOD, ROOT, SPEC_SCHEME, UNITS, WEAK, run_cli, submit

PW = "Zhengwu-gongkai-7788"
SPEC = parse_scheme(SPEC_SCHEME)
PROPS = settings(max_examples=40, deadline=None)

# A second scheme for 市直部门 in 2024 (SPEC's example covers 2025): a section whose items add up
# to more than its max (the cap applies) and a veto with a cap.
CAP_SCHEME = """
scheme: cap-test
title: 封顶测试表
applies_to: {groups: [市直部门], from: 2024Q1, to: 2024Q4}
total_max: 20
indicators:
  - {code: has_leading_group, name: 成立政务公开领导小组, type: bool}
  - {code: broken_links,     name: 网站错链数, type: count}
  - {code: proactive_items,  name: 主动公开信息条数, type: count}
  - {code: secret_leaks,     name: 泄密事件数, type: count}
sections:
  - id: org
    name: 组织领导
    max: 5
    items:
      - {id: org.group, name: 成立领导小组, max: 4, rule: {type: boolean, indicator: has_leading_group}}
      - {id: org.review, name: 考评组评定, max: 4, rule: {type: manual}}
  - id: site
    name: 平台建设
    max: 15
    items:
      - {id: site.links, name: 错链, max: 10, rule: {type: deduct, indicator: broken_links, per: 1}}
      - {id: site.items, name: 信息发布量, max: 5, rule: {type: ladder, indicator: proactive_items, tiers: [[50, 5], [10, 2]]}}
veto: [{id: veto.leak, name: 发生泄密事件, indicator: secret_leaks, op: ">", value: 0, cap: 10}]
"""


# -- random results scored by the real engine, no database ----------------------------------------------
def random_scores(seed: int, n: int, quarters=("2025Q3",)) -> engine.Scores:
    """``n`` units of SPEC's scheme with random figures (some missing, some 不适用, a veto now and
    then) and random 核定 of the manual item, a normal item, the bonus and the penalty."""
    rng = np.random.default_rng(seed)
    blocks, frames = [], []
    for period in quarters:
        codes = [f"U{k}" for k in range(n)]
        keys = pd.DataFrame({"unit_code": codes, "unit_name": [f"单位{k}" for k in range(n)], "group": "市直部门",
                             "period": period, "scheme": SPEC.id, "self_score": rng.uniform(0, 40, n)})
        cols = {
            "has_leading_group": rng.integers(0, 2, n).astype(float),
            "budget_on_time": rng.integers(0, 2, n).astype(float),
            "broken_links": rng.integers(0, 12, n).astype(float),
            "proactive_items": rng.integers(0, 80, n).astype(float),
            "reply_on_time_rate": rng.uniform(60, 100, n).round(1),
            "policy_docs": rng.integers(0, 6, n).astype(float),
            "interpretations": rng.integers(0, 6, n).astype(float),
            "commendations": rng.integers(0, 5, n).astype(float),
            "criticisms": rng.integers(0, 3, n).astype(float),
            "secret_leaks": (rng.uniform(size=n) < 0.1).astype(float),
        }
        na = {c: np.zeros(n, dtype=bool) for c in cols}
        na["budget_on_time"] = rng.uniform(size=n) < 0.3
        cols["budget_on_time"][na["budget_on_time"]] = np.nan
        for c in ("broken_links", "reply_on_time_rate", "proactive_items"):
            cols[c][rng.uniform(size=n) < 0.1] = np.nan            # 未报送
        adj = []
        for item, top in (("site.review", 5.0), ("site.links", 4.0), ("bonus.commend", 3.0), ("pen.criticism", 6.0)):
            for row in np.flatnonzero(rng.uniform(size=n) < 0.5):
                adj.append((int(row), item, round(float(rng.uniform(0, top)), 1), "评定", "office", datetime(2025, 10, 1)))
        adjs = pd.DataFrame(adj, columns=["row", "item_id", "points", "reason", "actor", "adjusted_at"])
        block, units = engine.score_block(SPEC, keys, cols, na, adjs)
        blocks.append(block)
        frames.append(units)
    return engine.Scores(blocks, pd.concat(frames, ignore_index=True))


def caps_of(block) -> np.ndarray:
    cap = np.full(len(block.keys), np.inf)
    for v in block.scheme.vetoes:
        cap = np.where(v.fires(block.cols[v.indicator]), np.minimum(cap, v.cap if v.cap is not None else 0.0), cap)
    return cap


@PROPS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30))
def test_aggregation_equals_the_engines(seed, n):
    scores = random_scores(seed, n)
    [block] = scores.blocks
    assert np.array_equal(analytics.totals(SPEC, block.points, block.status, caps_of(block)),
                          scores.units["total"].to_numpy())


@PROPS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 25))
def test_robustness_intervals_hold_the_published_rank(seed, n):
    scores = random_scores(seed, n)
    df = analytics.robustness_of(scores, "2025Q3", "市直部门", draws=200, seed=seed % 1000)
    published = scores.units.assign(r=scores.units["total"].rank(method="min", ascending=False).astype(int))
    assert dict(zip(df["unit_code"], df["rank"])) == dict(zip(published["unit_code"], published["r"]))
    assert ((df["rank_low"] <= df["rank"]) & (df["rank"] <= df["rank_high"])).all()
    assert df["rank_low"].min() >= 1 and df["rank_high"].max() <= n
    # bands: numbered 1, 2, … and units of different bands have disjoint intervals
    assert sorted(df["band"].unique()) == list(range(1, df["band"].max() + 1))
    for a in df.itertuples():
        for b in df.itertuples():
            if a.band != b.band:
                assert a.rank_high < b.rank_low or b.rank_high < a.rank_low


@PROPS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 20), pick=st.integers(0, 2**16), data=st.data())
def test_whatif_never_lowers_and_nothing_fixed_is_the_result(seed, n, pick, data):
    scores = random_scores(seed, n)
    unit = scores.units.iloc[pick % n]
    same = analytics.whatif_of(scores, unit["unit_code"], "2025Q3", [])
    ranked = scores.units["total"].rank(method="min", ascending=False).astype(int)
    assert (same["total"], same["grade"], same["gain"], same["rank"]) == \
        (unit["total"], unit["grade"], 0.0, ranked.iloc[pick % n])
    ids = [it.id for it in SPEC.items]
    fix = data.draw(st.lists(st.sampled_from(ids), max_size=len(ids), unique=True))
    result = analytics.whatif_of(scores, unit["unit_code"], "2025Q3", fix)
    assert result["total"] >= unit["total"] and result["gain"] >= 0 and result["rank"] <= same["rank"]
    assert result["gain"] == float(engine.round2(result["total"] - unit["total"]))
    assert list(result)[:7] == analytics.WHATIF_KEYS and result["fixed"] == fix
    # fixing more never gives less
    more = analytics.whatif_of(scores, unit["unit_code"], "2025Q3", ids)
    assert more["total"] >= result["total"]


@PROPS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 15), pick=st.integers(0, 2**16))
def test_where_to_gain_is_the_whatif_of_each_item(seed, n, pick):
    scores = random_scores(seed, n)
    unit = scores.units.iloc[pick % n]["unit_code"]
    gains = analytics.gains_of(scores, unit, "2025Q3")
    assert list(gains["gain"]) == sorted(gains["gain"], reverse=True)
    for r in gains[gains["kind"] != "veto"].itertuples():
        assert r.gain == analytics.whatif_of(scores, unit, "2025Q3", [r.item_id])["gain"], r.item_id
        assert r.lost > 0 and r.gain >= 0


@PROPS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 20), pick=st.integers(0, 2**16))
def test_attribution_parts_add_up(seed, n, pick):
    scores = random_scores(seed, n, quarters=("2025Q2", "2025Q3"))
    unit = f"U{pick % n}"
    a = analytics.attribution_of(scores, unit, "2025Q3")
    assert a["change"] == float(engine.round2(a["total"] - a["previous_total"]))
    assert abs(sum(p["change"] for p in a["parts"]) - a["change"]) < 1e-9
    assert abs(next(p for p in a["parts"] if p["part"] == "rounding")["change"]) <= 0.05
    assert a["rank_own"] + a["rank_peers"] == a["rank_change"] == a["previous_rank"] - a["rank"]
    assert not a["scheme_changed"] and a["items_added"] == [] and a["items_removed"] == []
    for p in a["parts"]:
        assert abs(p["current"] - p["previous"] - p["change"]) <= 0.011 or p["part"] == "rounding"


def test_competition_ranks_and_bands():
    rng = np.random.default_rng(7)
    cents = rng.integers(0, 20, (50, 30))
    expected = pd.DataFrame(cents).T.rank(method="min", ascending=False).T.to_numpy(dtype=int)
    assert np.array_equal(analytics._competition_ranks(cents), expected)
    lo, hi = np.array([1, 1, 3, 5, 6]), np.array([2, 3, 4, 5, 7])
    assert analytics._bands(lo, hi, np.array([1, 2, 3, 5, 6])).tolist() == [1, 1, 1, 2, 3]


# -- by hand, through the store ---------------------------------------------------------------------
@pytest.fixture
def spec(store):
    """2025Q3 of SPEC's example: U1 and U4 report GOOD, U2 WEAK (hand-checked in test_engine)."""
    submit(store, "2025Q3", {"U1": GOOD, "U2": WEAK, "U4": GOOD}, self_scores={"U1": 40, "U2": 15, "U4": 27})
    return store


def test_whatif_by_hand(spec):
    # U2: base 11 of an applicable 27 (org.budget 不适用) → 14.259, −3 penalty, +3 bonus = 14.26
    r = analytics.whatif(spec, CLI_OFFICE, "U2", "2025Q3", ["org.group"])
    assert r["total"] == 16.85 and r["gain"] == 2.59 and r["rank"] == 3   # 13 / 27 × 35 = 16.85
    r = analytics.whatif(spec, CLI_OFFICE, "U2", "2025Q3", ["pen.criticism"])
    assert r["total"] == 17.26 and r["gain"] == 3.0                       # no deduction
    r = analytics.whatif(spec, CLI_OFFICE, "U2", "2025Q3", ["org.budget"])
    assert r["gain"] == 0 and "不适用" in r["note"]
    r = analytics.whatif(spec, CLI_OFFICE, "U1", "2025Q3", ["site.review", "bonus.commend"])
    # 10 + 19 (site.review 0 → 5) + bonus 3 (was 2) = 32; U4 stays at 26: U1 alone first
    assert (r["total"], r["gain"], r["rank"], r["grade"]) == (32.0, 6.0, 1, "不合格")
    assert r["fixed"] == ["site.review", "bonus.commend"]
    with pytest.raises(InputError, match="单项否决项"):
        analytics.whatif(spec, CLI_OFFICE, "U1", "2025Q3", ["veto.leak"])
    with pytest.raises(InputError, match="没有条目「nope」"):
        analytics.whatif(spec, CLI_OFFICE, "U1", "2025Q3", ["nope"])
    with pytest.raises(NotFound):
        analytics.whatif(spec, CLI_OFFICE, "U3", "2025Q3", ["org.group"])


def test_where_to_gain_by_hand(spec):
    g = analytics.where_to_gain(spec, CLI_OFFICE, "U2", "2025Q3").set_index("item_id")
    # every point of the org and site sections is worth 35/27 of a point (N/A rescaling)
    assert g.loc["site.reply", "gain"] == 6.48 and g.loc["site.review", "gain"] == 6.48
    assert g.loc["site.links", "gain"] == 5.18 and g.loc["org.group", "gain"] == 2.59
    assert g.loc["pen.criticism", "gain"] == 3.0 and g.loc["pen.criticism", "kind"] == "penalty"
    assert "org.budget" not in g.index and "bonus.commend" not in g.index   # 不适用; bonus already full
    assert list(g.index[:2]) == ["site.reply", "site.review"]


@pytest.fixture
def capped(store):
    """2024Q4 under cap-test, 2025Q1 under SPEC's example (a scheme change between them)."""
    save_scheme(store, CAP_SCHEME, CLI_OFFICE)
    submit(store, "2024Q4", {"U1": {"has_leading_group": 1, "broken_links": 4, "proactive_items": 60, "secret_leaks": 0},
                             "U2": {"has_leading_group": 1, "broken_links": 0, "proactive_items": 60, "secret_leaks": 1},
                             "U4": {"has_leading_group": 0, "broken_links": 2, "proactive_items": 20, "secret_leaks": 0}})
    adjust(store, CLI_OFFICE, "U1", "2024Q4", "org.review", 3, "评定")
    submit(store, "2025Q1", {"U1": GOOD, "U2": WEAK, "U4": GOOD})
    return store


def test_section_caps_and_capped_vetoes_in_what_if(capped):
    # U1: org 4 + 3 = 7, capped at 5; site 6 + 5 = 11 → 16
    assert analytics.whatif(capped, CLI_OFFICE, "U1", "2024Q4", [])["total"] == 16
    assert analytics.whatif(capped, CLI_OFFICE, "U1", "2024Q4", ["org.review"])["gain"] == 0   # the cap
    assert analytics.whatif(capped, CLI_OFFICE, "U1", "2024Q4", ["site.links"])["gain"] == 4
    g = analytics.where_to_gain(capped, CLI_OFFICE, "U1", "2024Q4").set_index("item_id")
    assert g.loc["org.review", "lost"] == 1 and g.loc["org.review", "gain"] == 0
    # U2: 20 points, capped at 10 by the veto; fixing items cannot lift it
    r = analytics.whatif(capped, CLI_OFFICE, "U2", "2024Q4", ["org.review"])
    assert r["total"] == 10 and r["gain"] == 0 and "单项否决" in r["note"] and r["grade"] == "不合格"
    g = analytics.where_to_gain(capped, CLI_OFFICE, "U2", "2024Q4")
    veto = g[g["kind"] == "veto"].iloc[0]
    assert veto["item_id"] == "veto.leak" and veto["gain"] == 9.0 and veto["total"] == 19   # org 4 + site 15


def test_attribution_across_a_scheme_change(capped):
    a = analytics.attribution(capped, CLI_OFFICE, "U1", "2025Q1")
    assert (a["previous_total"], a["total"], a["change"]) == (16.0, 26.0, 10.0)
    parts = {p["part"]: p for p in a["parts"]}
    assert parts["org"]["previous"] == 5 and parts["org"]["current"] == 10
    assert parts["site"]["previous"] == 11 and parts["site"]["current"] == 14
    assert parts["bonus"]["change"] == 2 and parts["veto"]["change"] == 0
    assert abs(sum(p["change"] for p in a["parts"]) - a["change"]) < 1e-9
    assert a["scheme_changed"] and a["previous_scheme"] == "cap-test" and a["scheme"] == "spec-example"
    assert {x["item_id"] for x in a["items_removed"]} == {"org.review"} and a["removed_points"] == 3
    assert {x["item_id"] for x in a["items_added"]} >= {"site.reply", "org.budget", "pen.criticism"}
    assert a["added_points"] == 8 + 3.75 + 2.25 + 1.5 + 0 + 2 + 0   # budget, reply, interp, rel, review, bonus, pen
    assert "考评表不同" in a["text"]
    # ranks: 2024Q4 U2 20→10 (veto), U1 16, U4 0+8+2=10 → U1 1st; 2025Q1 U1 and U4 share 1st
    assert (a["previous_rank"], a["rank"], a["rank_own"], a["rank_peers"]) == (1, 1, 0, 0)
    b = analytics.attribution(capped, CLI_OFFICE, "U2", "2025Q1")
    assert {p["part"]: p["change"] for p in b["parts"]}["veto"] == 9.0     # the veto took 19 − 10 = 9
    assert b["previous_rank"] == 2 and b["rank"] == 3 and b["rank_own"] + b["rank_peers"] == -1
    with pytest.raises(NotFound, match="上季度"):
        analytics.attribution(capped, CLI_OFFICE, "U1", "2024Q4")


def test_robustness_by_hand(spec):
    df = analytics.robustness(spec, CLI_OFFICE, "2025Q3", "市直部门")
    by = df.set_index("unit_code")
    # U1 and U4 are identical: tied first under every perturbation; U2 far behind
    assert by.loc["U1", ["rank", "rank_low", "rank_high"]].tolist() == [1, 1, 1]
    assert by.loc["U4", ["rank", "rank_low", "rank_high"]].tolist() == [1, 1, 1]
    assert by.loc["U2", ["rank", "rank_low", "rank_high"]].tolist() == [3, 3, 3]
    assert by.loc["U1", "band"] == by.loc["U4", "band"] == 1 and by.loc["U2", "band"] == 2
    assert analytics.robustness_records(df)[0] == {"unit_code": "U1", "rank": 1, "rank_low": 1, "rank_high": 1, "band": 1}
    assert "排名稳健" in analytics.robustness_sentence(df)
    assert analytics.unit_sentence(df, "U1") == "第1名,与以下单位无显著差异:市财政局"
    again = analytics.robustness(spec, CLI_OFFICE, "2025Q3")
    assert again.equals(df)                                     # seeded: the same every time
    with pytest.raises(InputError, match="扰动次数"):
        analytics.robustness(spec, CLI_OFFICE, "2025Q3", draws=0)


def test_sentences():
    df = pd.DataFrame({"unit_code": list("ABCD"), "unit_name": ["甲", "乙", "丙", "丁"], "group": "县区",
                       "rank": [1, 2, 3, 4], "rank_low": [1, 1, 3, 3], "rank_high": [3, 4, 7, 6], "band": 1})
    assert analytics.unit_sentence(df, "C") == "第3–7名之间,与以下单位无显著差异:甲、乙、丁"
    assert "名次相差在3以内的单位得分差异主要来自评定项" in analytics.robustness_sentence(df)
    assert analytics.unit_sentence(df, "Z") == ""


# -- anomalies and self-assessment accuracy -------------------------------------------------------------------
@pytest.fixture
def history(store):
    """Four quarters of 2024 (raw figures only: no scheme covers them) and 2025Q1 scored."""
    for k, p in enumerate(["2024Q1", "2024Q2", "2024Q3", "2024Q4"]):
        submit(store, p, {"U1": {**GOOD, "proactive_items": 40 + k, "reply_on_time_rate": 95 - k % 2}})
    full = {**GOOD, "broken_links": 0, "proactive_items": 200, "reply_on_time_rate": 100, "policy_docs": 2,
            "interpretations": 2}
    # U1 28.5 (GOOD, and the group's largest 发布量: site.rel 2); U2 12.44 (WEAK, site.rel 60/200 × 2)
    submit(store, "2025Q1", {"U1": {**GOOD, "proactive_items": 200}, "U2": WEAK, "U3": full, "U4": full},
           self_scores={"U1": 40, "U2": 16, "U3": 33})
    adjust(store, CLI_OFFICE, "U3", "2025Q1", "site.review", 5, "评定")
    return store


def test_anomalies(history):
    df = analytics.anomalies(history, CLI_OFFICE, "2025Q1")
    assert list(df.columns[:4]) == analytics.ANOMALY_COLUMNS
    got = {(r.unit_code, r.kind, r.indicator) for r in df.itertuples()}
    assert ("U1", "jump", "proactive_items") in got              # 200 against 40–43
    assert not any(k == "jump" and i == "reply_on_time_rate" for _, k, i in got)   # 94–95 → 95
    assert ("U1", "self_gap", "") in got                          # 40 against 28.5
    assert not any(u in ("U2", "U3") and k == "self_gap" for u, k, _ in got)  # 16 − 12.44, 33 − 37 < 5
    assert ("U3", "all_max", "*") in got and ("U4", "all_max", "*") not in got   # U4's review is 待评定
    assert ("U3", "copy", "*") in got and ("U4", "copy", "*") in got               # identical rows
    jump = df[(df["kind"] == "jump")].iloc[0]
    assert jump["detail"].startswith("「主动公开信息条数」本季度为200,此前4个季度的中位数为41.5")
    copy = df[(df["kind"] == "copy") & (df["unit_code"] == "U3")].iloc[0]
    assert "市财政局(U4)" in copy["detail"] and "100%" in copy["detail"]
    assert df[df["kind"] == "self_gap"].iloc[0]["detail"] == "自评分40分,核定后总分28.5分,自评高出11.5分"
    assert analytics.anomaly_records(df)[0].keys() == set(analytics.ANOMALY_COLUMNS)


def test_self_accuracy(history):
    submit(history, "2025Q2", {"U1": GOOD, "U2": WEAK}, self_scores={"U1": 27, "U2": 30})
    df = analytics.self_accuracy(history, CLI_OFFICE).set_index("unit_code")
    # U1: 40 − 28.5 = 11.5 and 27 − 26 = 1; U2: 16 − 12.44 = 3.56 and 30 − 14.26 = 15.74; U3: 33 − 37
    assert df.loc["U1", "mean_overclaim"] == 6.25 and df.loc["U1", "overclaimed"] == 1
    assert df.loc["U1", "overclaim_share"] == 0.5 and df.loc["U1", "quarters"] == 2
    assert df.loc["U2", "mean_overclaim"] == 9.65 and df.loc["U2", "max_overclaim"] == 15.74
    assert df.loc["U3", "mean_overclaim"] == -4 and df.loc["U3", "overclaimed"] == 0
    assert df.index.tolist() == ["U2", "U1", "U3"]              # U4 gave no self score: not listed
    assert analytics.self_accuracy(history, CLI_OFFICE, "县区").empty


def test_access(history):
    store = history
    accounts.add_user(store, CLI_OFFICE, "u1", PW, "unit", "U1")
    accounts.add_user(store, CLI_OFFICE, "jc", PW, "checker")
    u1, jc = accounts.get_user(store, "u1"), accounts.get_user(store, "jc")
    assert analytics.whatif(store, u1, "U1", "2025Q1", ["site.review"])["gain"] == 5
    assert not analytics.where_to_gain(store, u1, "U1", "2025Q1").empty
    for fn in (lambda a: analytics.whatif(store, a, "U2", "2025Q1", ["site.review"]),
               lambda a: analytics.where_to_gain(store, a, "U2", "2025Q1"),
               lambda a: analytics.attribution(store, a, "U2", "2025Q1"),
               lambda a: analytics.anomalies(store, a, "2025Q1")):
        with pytest.raises(PermissionDenied):
            fn(u1)
        with pytest.raises(PermissionDenied):
            fn(jc)
    with pytest.raises(PermissionDenied):
        analytics.self_accuracy(store, jc)
    assert analytics.self_accuracy(store, u1)["unit_code"].tolist() == ["U1"]
    mine = analytics.robustness(store, u1, "2025Q1")
    assert set(mine["group"]) == {"市直部门"} and "U2" in set(mine["unit_code"])
    with pytest.raises(PermissionDenied):
        analytics.robustness(store, u1, "2025Q1", "县区")
    with pytest.raises(PermissionDenied):
        analytics.robustness(store, jc, "2025Q1")
    with pytest.raises(PermissionDenied):
        analytics.whatif(store, None, "U1", "2025Q1", ["site.review"])
    accounts.disable_user(store, CLI_OFFICE, "u1")
    with pytest.raises(PermissionDenied):
        analytics.whatif(store, u1, "U1", "2025Q1", ["site.review"])


# -- the command line ------------------------------------------------------------------------------------------------
def cli(db, *args):
    return run_cli(*args, db=db)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "cli.duckdb"
    with Store(path) as s:
        save_units(s, UNITS, CLI_OFFICE)
        save_scheme(s, SPEC_SCHEME, CLI_OFFICE)
        submit(s, "2025Q3", {"U1": GOOD, "U2": WEAK, "U4": GOOD}, self_scores={"U1": 40})
        accounts.add_user(s, CLI_OFFICE, "u2", PW, "unit", "U2")
    return path


def test_cli_robustness(db):
    r = cli(db, "robustness", "--period", "2025年第三季度", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert all(list(row) == analytics.ROBUSTNESS_KEYS for row in rows) and len(rows) == 3
    assert rows[0] == {"unit_code": "U1", "rank": 1, "rank_low": 1, "rank_high": 1, "band": 1}
    table = cli(db, "robustness", "--period", "2025Q3", "--group", "市直部门")
    assert table.returncode == 0 and "名次区间" in table.stdout and "市财政局" in table.stdout
    assert cli(db, "robustness", "--period", "2025Q9").returncode == 1
    assert cli(db, "robustness").returncode == 2
    assert cli(db, "robustness", "--period", "2025Q3", "--format", "xml").returncode == 2


def test_cli_whatif(db):
    r = cli(db, "whatif", "U2", "--period", "2025Q3", "--fix", "org.group,pen.criticism", "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == analytics.WHATIF_KEYS
    assert doc == {"unit_code": "U2", "period": "2025Q3", "fixed": ["org.group", "pen.criticism"],
                   "total": 19.85, "rank": 3, "grade": "不合格", "gain": 5.59}
    table = cli(db, "whatif", "U2", "--period", "2025Q3", "--fix", "org.group")
    assert table.returncode == 0 and "16.85" in table.stdout
    bad = cli(db, "whatif", "U2", "--period", "2025Q3", "--fix", "veto.leak")
    assert bad.returncode == 1 and "单项否决项" in bad.stderr
    assert cli(db, "whatif", "U2", "--period", "2025Q3", "--fix", "nope").returncode == 1
    assert cli(db, "whatif", "U2", "--period", "2025Q3").returncode == 2                     # --fix missing
    assert cli(db, "--as", "u2", "whatif", "U1", "--period", "2025Q3", "--fix", "org.group").returncode == 1
    assert cli(db, "--as", "u2", "whatif", "U2", "--period", "2025Q3", "--fix", "org.group").returncode == 0


def test_cli_anomalies(db):
    r = cli(db, "anomalies", "--period", "2025Q3", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and all(list(row) == analytics.ANOMALY_COLUMNS for row in rows)
    assert {(x["unit_code"], x["kind"]) for x in rows} >= {("U1", "self_gap"), ("U1", "copy"), ("U4", "copy")}
    assert all(x["kind"] in analytics.ANOMALY_KINDS for x in rows)
    assert "自评高出14分" in r.stdout                                # UTF-8, not escaped
    assert cli(db, "anomalies", "--period", "2025Q3").returncode == 0
    denied = cli(db, "--as", "u2", "anomalies", "--period", "2025Q3")
    assert denied.returncode == 1 and "无权" in denied.stderr
    assert cli(db, "anomalies").returncode == 2


# -- the office's 核查清单 page ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    from tests.dashboard_support import build_demo_db

    return build_demo_db(tmp_path_factory.mktemp("checks") / "demo.duckdb")


def test_checks_page(demo_db, monkeypatch):
    from dashboard import nav

    monkeypatch.setenv("KAOPING_DB", str(demo_db))
    assert "checks" in nav.pages_for(accounts.User("office", "office"))
    with Store(demo_db) as s:
        latest = max(periods_of(s))
        expected = analytics.anomalies(s, CLI_OFFICE, latest)
    at = app(accounts.User("office", "office"), "checks")
    assert not at.exception and not at.error, [e.value for e in at.exception]
    assert at.title[0].value == "核查清单"
    flags, accuracy = at.dataframe[0].value, at.dataframe[1].value
    assert list(flags.columns) == ["单位代码", "单位名称", "分组", "类型", "指标", "说明"] and not flags.empty
    assert "平均自评差" in accuracy.columns and accuracy["平均自评差"].is_monotonic_decreasing
    assert len(flags) == len(expected)
    at.multiselect(key="checks.kinds").set_value(["self_gap"]).run()
    assert set(at.dataframe[0].value["类型"]) <= {"自评偏高"}
    at.selectbox(key="checks.group").set_value("县区").run()
    assert set(at.dataframe[1].value["分组"]) == {"县区"} and not at.exception


def periods_of(store) -> list[str]:
    return [r[0] for r in store.rows("SELECT DISTINCT period FROM current_submissions")]


def test_method_is_documented():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "名次稳健性" in text and "±25%" in text and "±20%" in text
    assert periods.parse_period("2025Q3") == "2025Q3"


def test_unit_detail_explains_the_rank_and_simulates_fixes(demo_db, monkeypatch):
    """单位详情: why the rank moved, the rank's interval, where to gain, and the what-if simulator."""
    monkeypatch.setenv("KAOPING_DB", str(demo_db))
    with Store(demo_db) as s:
        gains = analytics.where_to_gain(s, CLI_OFFICE, "XQ01", "2025Q3")
        best = gains[gains["kind"] != "veto"].iloc[0]
    at = app(accounts.User("office", "office"), "unit_detail", **{"detail.unit": "XQ01", "detail.period": "2025Q3"})
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = "\n".join(str(c.value) for c in at.caption) + "\n".join(str(m.value) for m in at.markdown)
    assert "提分空间" in shown and "名次" in shown and "自评准确度" in shown
    picker = next(m for m in at.multiselect if m.key.startswith("detail.whatif"))
    picker.set_value([best["item_id"]]).run()
    assert not at.exception and not at.error
    said = [x.value for x in at.success]
    assert any(f"总分 {best['total']:.2f}(+{best['gain']:.2f})" in v for v in said), said


def test_ranking_page_shows_rank_intervals_and_what_to_verify(demo_db, monkeypatch):
    monkeypatch.setenv("KAOPING_DB", str(demo_db))
    with Store(demo_db) as s:
        rob = analytics.robustness(s, CLI_OFFICE, "2025Q3", "县区")
        flagged = set(analytics.anomalies(s, CLI_OFFICE, "2025Q3")["unit_code"])
    at = app(accounts.User("office", "office"))
    at.selectbox(key="ranking.period").set_value("2025Q3").run()
    at.selectbox(key="ranking.group").set_value("县区").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    first = rob.sort_values("rank").iloc[0]
    row = table[table["单位代码"] == first["unit_code"]].iloc[0]
    lo, hi = int(first["rank_low"]), int(first["rank_high"])
    assert row["名次区间(90%)"] == (str(lo) if lo == hi else f"{lo}–{hi}")
    marked = set(table.loc[table.get("核查", "") == "待核查", "单位代码"]) if "核查" in table else set()
    assert marked == flagged & set(table["单位代码"])
    assert any("稳健性检验" in str(c.value) for c in at.caption)
    assert not at.get("plotly_chart")                    # the chart is built when asked for
    at.toggle(key="ranking.show_intervals").set_value(True).run()
    assert [c.key for c in at.get("plotly_chart")] == ["ranking.intervals"]
    assert any(analytics.method_text() == c.value for c in at.caption)
