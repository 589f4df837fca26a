"""The engine against the SPEC example, hand-computed."""
import pytest

from scoring import engine
from scoring.cli import CLI_OFFICE
from scoring.adjustments import adjust
from tests.support import office_ranking as ranking
from tests.support import GOOD, WEAK, submit


def items_of(result):
    return {it["item_id"]: it for it in result["items"]}


def test_spec_example_by_hand(store):
    submit(store, "2025Q3", {"U1": GOOD, "U2": WEAK, "U3": {"secret_leaks": 1}})
    scores = engine.score(store, ["2025Q3"])
    u1 = scores.explain("U1", "2025Q3")
    it = items_of(u1)
    assert it["site.links"]["points"] == 2.5
    assert it["site.links"]["explanation"] == "网站错链数3处,每处扣0.5分,扣1.5分,得2.5分(满分4分)"
    assert it["site.items"]["points"] == 4
    assert it["site.reply"]["points"] == 3.75
    assert it["site.interp"]["points"] == 2.25
    assert it["site.rel"]["points"] == 1.5  # 45 / 60 (U2 is the group's best) × 2
    assert "本组本季度最高60" in it["site.rel"]["explanation"]
    assert it["site.review"]["status"] == "pending" and it["site.review"]["points"] == 0
    assert it["bonus.commend"]["points"] == 2
    assert it["pen.criticism"]["points"] == 0 and it["pen.criticism"]["max"] is None
    assert [s["points"] for s in u1["sections"]] == [10, 14]
    assert u1["total"] == 26.0 and u1["veto"] is None

    u2 = scores.explain("U2", "2025Q3")
    it = items_of(u2)
    assert it["org.budget"]["status"] == "na"
    assert it["site.links"]["points"] == 0 and "扣完为止" in it["site.links"]["explanation"]
    assert it["site.interp"]["points"] == 3  # zero denominator: full marks by default
    assert it["pen.criticism"]["points"] == -3
    assert u2["sections"][0]["max"] == 2  # org's cap shrinks by the n/a item's 8
    # base 11 / applicable 27 × 35 = 14.259…, minus penalty 3, plus bonus 3 (capped item)
    assert u2["total"] == 14.26

    u3 = scores.explain("U3", "2025Q3")
    assert u3["total"] == 0 and u3["veto"] == "veto.leak" and u3["grade"] == "不合格"
    assert items_of(u3)["site.links"]["status"] == "missing"
    assert "未报送「网站错链数」" in items_of(u3)["site.links"]["explanation"]


def test_adjustment_replaces_points_and_is_explained(store):
    submit(store, "2025Q3", {"U1": GOOD, "U4": GOOD})
    adjust(store, CLI_OFFICE, "U4", "2025Q3", "site.review", 4, "现场检查资料齐全")
    adjust(store, CLI_OFFICE, "U4", "2025Q3", "site.review", 4.5, "复核后上调")
    scores = engine.score(store, ["2025Q3"])
    it = items_of(scores.explain("U4", "2025Q3"))["site.review"]
    assert it["status"] == "adjusted" and it["points"] == 4.5
    assert "复核后上调" in it["explanation"] and "已核定为4.5分" in it["explanation"]
    # 26 + 0.5 (site.rel: U4 and U1 share the group best, 45) + 4.5 adjusted
    assert scores.explain("U4", "2025Q3")["total"] == 31.0


def test_ties_share_rank_and_change_against_previous_quarter(store):
    submit(store, "2025Q2", {"U1": GOOD, "U2": WEAK})
    submit(store, "2025Q3", {"U1": GOOD, "U2": WEAK, "U4": GOOD})
    df = ranking(store, "2025Q3")
    rows = {r.unit_code: r for r in df.itertuples()}
    assert rows["U1"].rank == rows["U4"].rank == 1 and rows["U1"].tied
    assert rows["U2"].rank == 3
    assert rows["U1"].rank_change == 0 and rows["U2"].rank_change == -1
    assert rows["U4"].rank_change is None or str(rows["U4"].rank_change) == "<NA>"


def test_rollback_style_supersede_keeps_latest_batch(store):
    submit(store, "2025Q3", {"U1": GOOD})
    submit(store, "2025Q3", {"U1": {**GOOD, "broken_links": 0}})
    # alone in its group U1 is the best for site.rel (2), and no broken links now (4)
    assert engine.score(store, ["2025Q3"]).explain("U1", "2025Q3")["total"] == 28.0


@pytest.mark.parametrize("points", [-1, 5.5])
def test_adjustment_out_of_range_is_refused(store, points):
    from scoring.errors import InputError
    submit(store, "2025Q3", {"U1": GOOD})
    with pytest.raises(InputError, match="超出范围"):
        adjust(store, CLI_OFFICE, "U1", "2025Q3", "site.review", points, "x")


def test_where_to_gain_puts_real_losses_first_and_na_loses_nothing(store):
    from scoring.reports import where_to_gain
    submit(store, "2025Q3", {"U2": WEAK})
    items = where_to_gain(engine.score(store, ["2025Q3"]).explain("U2", "2025Q3"))
    lost = dict(zip(items["item_id"], items["lost"]))
    assert lost["org.budget"] == 0  # 不适用: nothing lost, the max left the applicable total
    assert items["lost"].iloc[0] == 5 and set(items["item_id"][:2]) == {"site.reply", "site.review"}
    assert lost["site.links"] == 4 and lost["site.reply"] == 5
    assert items["lost"][items["kind"] != "item"].isna().all()


def test_long_tables_agree_with_the_explanation(store):
    submit(store, "2025Q3", {"U1": GOOD, "U2": WEAK})
    scores = engine.score(store, ["2025Q3"])
    for unit in ("U1", "U2"):
        detail = scores.explain(unit, "2025Q3")
        items = scores.items[scores.items["unit_code"] == unit]
        signed = [-p if k == "penalty" else p for p, k in zip(items["points"], items["kind"])]
        assert signed == pytest.approx([it["points"] for it in detail["items"]])
        assert items["status"].tolist() == [it["status"] for it in detail["items"]]
        sections = scores.sections[scores.sections["unit_code"] == unit]
        assert sections["max"].tolist() == [s["max"] for s in detail["sections"]]
