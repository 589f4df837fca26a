"""The dashboard's results cache (dashboard.state.Results): per (period, groups), rescored only
where a write touched, and always equal to scoring everything afresh."""
from __future__ import annotations

import pandas as pd

from dashboard.state import Results, _group_sets
from scoring import engine, ranking
from scoring.adjustments import adjust
from scoring.cli import CLI_OFFICE
from scoring.schemes import load_schemes, save_scheme
from scoring.units import save_units
from tests.support import GOOD, SPEC_SCHEME, WEAK, submit

COUNTY = SPEC_SCHEME.replace("scheme: spec-example", "scheme: county-example").replace(
    "groups: [市直部门]", "groups: [县区]")


def fresh(store) -> pd.DataFrame:
    return ranking.ranked_history(engine.score(store))


def assert_same(cached: pd.DataFrame, store) -> None:
    """The cached ranked history equals a fresh one, row for row and in the same order."""
    expected = fresh(store)
    pd.testing.assert_frame_equal(cached[expected.columns], expected, check_dtype=False)


def test_a_write_rescores_only_the_parts_it_touched(store):
    save_scheme(store, COUNTY, CLI_OFFICE)
    for period in ("2025Q1", "2025Q2"):
        submit(store, period, {"U1": GOOD, "U2": WEAK, "U3": GOOD})
        submit(store, period, {"X1": GOOD})
    results = Results(store).current()
    assert_same(results.ranked(), store)
    before = dict(results._parts)
    assert set(before) == {(p, (g,)) for p in ("2025Q1", "2025Q2") for g in ("县区", "市直部门")}

    submit(store, "2025Q2", {"U2": GOOD})                 # one unit's upload: one (period, group)
    results.current()
    changed = {k for k in before if results._parts[k][1] is not before[k][1]}
    assert changed == {("2025Q2", ("市直部门",))}
    assert_same(results.ranked(), store)

    adjust(store, CLI_OFFICE, "U1", "2025Q1", "site.review", 4, "现场检查")   # a 核定 of an earlier quarter
    results.current()
    assert_same(results.ranked(), store)                  # 2025Q2's rank changes follow 2025Q1's ranks
    assert results.scores(["2025Q1"]).units["period"].unique().tolist() == ["2025Q1"]


def test_a_login_or_nothing_new_keeps_every_part(store):
    submit(store, "2025Q1", {"U1": GOOD, "U2": WEAK})
    results = Results(store).current()
    scores = results.scores()
    assert results.current().scores() is scores


def test_groups_linked_by_a_roll_up_are_scored_together(store):
    assert _group_sets(store, load_schemes(store)) == [("县区",), ("市直部门",)]
    rollup = COUNTY.replace("indicators:\n", "indicators:\n  - {code: kids, name: 下级平均分, type: number, "
                                              "computed: {children: total, agg: mean}}\n", 1)
    save_scheme(store, rollup, CLI_OFFICE)
    units = store.df('SELECT unit_code, unit_name, grp AS "group", parent_code FROM units')
    units.loc[units["unit_code"] == "U1", "parent_code"] = "X1"
    save_units(store, units, CLI_OFFICE)
    assert _group_sets(store, load_schemes(store)) == [("县区", "市直部门")]
    submit(store, "2025Q1", {"U1": GOOD, "U2": WEAK, "X1": GOOD})
    assert_same(Results(store).current().ranked(), store)


def test_a_write_in_this_process_is_scored_before_it_returns(store):
    """The app's cache is brought up to date by the write itself (any Store of this process on the
    same file): the next page reads it as it is, with the touched group's rank intervals and the
    quarter's 核查 flags already computed."""
    from scoring import analytics, memo
    from scoring.store import Store

    save_scheme(store, COUNTY, CLI_OFFICE)
    submit(store, "2025Q1", {"U1": GOOD, "U2": WEAK, "U3": GOOD, "X1": GOOD})
    results = Results(store).current()
    untouched = results._parts[("2025Q1", ("县区",))]
    with Store(store.path) as writer:            # another opening of the file, as an upload's
        submit(writer, "2025Q1", {"U2": GOOD})
    version = results._version
    assert version == (store.data_version, results._version[1])      # current already: no rescoring on read
    assert_same(results.ranked(), store)
    assert results._parts[("2025Q1", ("县区",))] is untouched
    scores = results.scores(["2025Q1"])
    memo_keys = {k[1:] for k in memo._MEMO}
    assert ("robustness", "2025Q1", "市直部门", analytics.DRAWS, analytics.SEED) in memo_keys
    assert ("flags", "2025Q1", "市直部门") in memo_keys
    assert results.current()._version == version
    assert analytics.robustness_of(scores, "2025Q1", "市直部门").equals(
        analytics.robustness_of(engine.score(store, ["2025Q1"]), "2025Q1", "市直部门"))
