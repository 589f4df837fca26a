"""Every rule type against hand-computed cases, boundaries included; scheme load-time checks."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import engine
from scoring.errors import Problems
from scoring.schemes import parse_scheme
from tests.support import SPEC_SCHEME

SCHEME = parse_scheme(SPEC_SCHEME)


def one_item(rule_yaml: str, max_: float = 4, extra: str = "", kind: str = "section") -> "object":
    """A minimal scheme around one item, so the engine scores it as in production."""
    text = f"""
scheme: t
applies_to: {{groups: [g], from: 2025Q1, to: 2025Q4}}
total_max: 10
indicators:
  - {{code: a, name: 甲, type: number, na_allowed: true}}
  - {{code: b, name: 乙, type: number}}
sections:
  - {{id: s, name: 节, max: 10, items: [{{id: s.x, name: 条目, max: {max_}, rule: {rule_yaml}}}, {{id: s.y, name: 其他, max: 6, rule: {{type: manual}}}}]}}
grades: [{{name: 合格, min: 0}}]
{extra}"""
    return parse_scheme(text)


def run(scheme, a, b=None, groups=None, adjust=None):
    n = len(a)
    keys = pd.DataFrame({"unit_code": [f"u{i}" for i in range(n)], "unit_name": "x",
                         "group": groups or ["g"] * n, "period": "2025Q1", "scheme": scheme.id, "self_score": np.nan})
    a = np.array(a, dtype=object)
    na = {"a": np.array([v == "NA" for v in a]), "b": np.zeros(n, bool)}
    cols = {"a": np.array([np.nan if v in ("NA", None) else v for v in a], dtype=float),
            "b": np.array(b if b is not None else [np.nan] * n, dtype=float)}
    adjs = pd.DataFrame(adjust or [], columns=["row", "item_id", "points", "reason", "actor", "adjusted_at"])
    block, units = engine.score_block(scheme, keys, cols, na, adjs)
    return block.points[:, 0], engine.STATUS[block.status[:, 0]], units


@pytest.mark.parametrize("rule,a,b,expected", [
    ("{type: boolean, indicator: a}", [1, 0], None, [4, 0]),
    ("{type: deduct, indicator: a, per: 0.5}", [0, 3, 8, 9], None, [4, 2.5, 0, 0]),
    ("{type: ladder, indicator: a, tiers: [[50, 4], [30, 3], [1, 1]]}", [50, 49.9, 30, 1, 0.5, 0], None, [4, 3, 3, 1, 0, 0]),
    ("{type: rate, indicator: a, full_at: 100, zero_at: 80}", [100, 80, 90, 79, 101], None, [4, 0, 2, 0, 4]),
    ("{type: rate, indicator: a, full_at: 0, zero_at: 5}", [0, 5, 2.5], None, [4, 0, 2]),  # lower is better
    ("{type: ratio, numerator: a, denominator: b, full_at: 0.8}", [4, 8, 2, 5], [10, 10, 10, 0], [2, 4, 1, 4]),
    ("{type: ratio, numerator: a, denominator: b, on_zero: zero}", [0], [0], [0]),
    ("{type: per, indicator: a, per: 1.5}", [0, 2, 3], None, [0, 3, 4]),
    ("{type: relative, indicator: a}", [10, 5, 0], None, [4, 2, 0]),
    ("{type: relative, indicator: a}", [0, 0], None, [0, 0]),  # an all-zero group scores 0
])
def test_rule_points(rule, a, b, expected):
    points, status, _ = run(one_item(rule), a, b)
    assert points.tolist() == pytest.approx(expected)
    assert set(status) == {"ok"}


def test_ratio_zero_denominator_na_shrinks_applicable_max():
    points, status, units = run(one_item("{type: ratio, numerator: a, denominator: b, on_zero: na}"), [0, 1], [0, 2])
    assert status.tolist() == ["na", "ok"]
    assert units["applicable_max"].tolist() == [6, 10]


def test_relative_is_per_group():
    points, _, _ = run(one_item("{type: relative, indicator: a}"), [10, 5, 5], groups=["g", "g", "h"])
    assert points.tolist() == [4, 2, 4]


def test_section_floor_lets_item_go_negative_but_not_the_section():
    s = one_item("{type: deduct, indicator: a, per: 1, floor: section}")
    points, _, units = run(s, [6, 20], adjust=[{"row": 0, "item_id": "s.y", "points": 6, "reason": "r",
                                                 "actor": "o", "adjusted_at": pd.Timestamp("2025-01-01")}])
    assert points.tolist() == [-2, -16]
    assert units["total"].tolist() == [4, 0]  # (−2 + 6) and the section floor at 0


def test_na_rescales_base():
    # item a (max 4) not applicable; manual item adjusted to 6 of 6 -> 6 / 6 × 10 = 10
    s = one_item("{type: boolean, indicator: a}")
    _, status, units = run(s, ["NA"], adjust=[{"row": 0, "item_id": "s.y", "points": 4.5, "reason": "r",
                                               "actor": "o", "adjusted_at": pd.Timestamp("2025-01-01")}])
    assert status.tolist() == ["na"]
    assert units["total"].tolist() == [7.5]  # 4.5 / 6 × 10


def test_missing_scores_zero_and_is_flagged():
    points, status, units = run(one_item("{type: deduct, indicator: a, per: 1}"), [None])
    assert points.tolist() == [0] and status.tolist() == ["missing"] and units["n_missing"].tolist() == [1]


PENALTY_BONUS = """
bonus: {max: 2, min_base: 5, items: [{id: b.1, name: 加分, max: 3, rule: {type: per, indicator: b, per: 1}}]}
penalties: [{id: p.1, name: 通报批评, rule: {type: per, indicator: b, per: 3}}]
"""


def test_penalty_is_uncapped_and_total_never_below_zero():
    s = one_item("{type: boolean, indicator: a}", extra=PENALTY_BONUS)
    # base 4; b = 2 -> penalty 6 (total floored at 0), bonus 2 is gated out (base 4 < min_base 5)
    _, _, units = run(s, [1], [2])
    assert units["penalty"].tolist() == [6] and units["bonus"].tolist() == [0] and units["total"].tolist() == [0]


def test_bonus_is_capped_and_added_after_penalties():
    s = one_item("{type: boolean, indicator: a}", max_=4, extra=PENALTY_BONUS.replace("min_base: 5", "min_base: 4"))
    # base 4 ≥ min_base 4; b = 1 -> bonus min(1, 2) = 1, penalty 3 -> 4 − 3 + 1 = 2
    _, _, units = run(s, [1], [1])
    assert units["total"].tolist() == [2]


def test_veto_cap():
    extra = "veto: [{id: v.1, name: 网站单项否决, indicator: b, op: '>=', value: 1, cap: 3}]"
    s = one_item("{type: boolean, indicator: a}", extra=extra)
    _, _, units = run(s, [1, 1], [1, 0])
    assert units["total"].tolist() == [3, 4] and units["veto"].tolist()[0] == "v.1"


def test_rounding_half_up_only_at_the_end():
    assert engine.round2(np.array([2.345, 2.3449, 81.335]).tolist()).tolist() == [2.35, 2.34, 81.34]


@pytest.mark.parametrize("mutation,fragment", [
    (("max: 25", "max: 24"), "sections:各部分 max 之和为34"),
    (("tiers: [[50, 6], [30, 4], [1, 2]]", "tiers: [[30, 6], [50, 4], [1, 2]]"), "sections[1](site).items[1](site.items).rule.tiers:阈值必须从高到低"),
    (("indicator: broken_links, per: 0.5", "indicator: dead_links, per: 0.5"), "site.links).rule.indicator:指标「dead_links」未在 indicators 中声明"),
    (("{id: site.reply,", "{id: site.links,"), "条目编号「site.links」重复"),
    (("type: rate,", "type: percent,"), "未知的规则类型「percent」"),
    (("per: 0.5}", "per: 0.5, cap: 2}"), "deduct 规则没有参数「cap」"),
    (("from: 2025Q1", "from: 2025Q5"), "applies_to.from:季度格式不正确"),
])
def test_load_time_errors_name_place_and_field(mutation, fragment):
    with pytest.raises(Problems) as exc:
        parse_scheme(SPEC_SCHEME.replace(*mutation))
    assert any(fragment in p for p in exc.value.problems), exc.value.problems


def test_overlapping_schemes_are_refused(store):
    from scoring.cli import CLI_OFFICE
    from scoring.schemes import save_scheme
    with pytest.raises(Problems, match="同一分组同一季度只能适用一个考评表"):
        save_scheme(store, SPEC_SCHEME.replace("scheme: spec-example", "scheme: other"), CLI_OFFICE)
    later = SPEC_SCHEME.replace("scheme: spec-example", "scheme: y2026").replace("2025Q1", "2026Q1").replace("2025Q4", "2026Q4")
    assert save_scheme(store, later, CLI_OFFICE)[1] == "new"


# -- properties ----------------------------------------------------------------------------------
unit_values = st.fixed_dictionaries({
    "has_leading_group": st.sampled_from([0, 1, None]),
    "budget_on_time": st.sampled_from([0, 1, "NA", None]),
    "broken_links": st.integers(0, 20) | st.none(),
    "proactive_items": st.integers(0, 80),
    "reply_on_time_rate": st.floats(0, 100),
    "policy_docs": st.integers(0, 6),
    "interpretations": st.integers(0, 8),
    "commendations": st.integers(0, 6),
    "criticisms": st.integers(0, 3),
    "secret_leaks": st.sampled_from([0, 0, 0, 1]),
})


def score_frame(rows, order):
    keys = pd.DataFrame({"unit_code": [f"u{i}" for i in order], "unit_name": "x", "group": "市直部门",
                         "period": "2025Q3", "scheme": SCHEME.id, "self_score": np.nan})
    cols, na = {}, {}
    for code in SCHEME.indicators:
        vals = [rows[i].get(code) for i in order]
        na[code] = np.array([v == "NA" for v in vals])
        cols[code] = np.array([np.nan if v in ("NA", None) else v for v in vals], dtype=float)
    adjs = pd.DataFrame(columns=["row", "item_id", "points", "reason", "actor", "adjusted_at"])
    return engine.score_block(SCHEME, keys, cols, na, adjs)


@settings(max_examples=60, deadline=None)
@given(st.lists(unit_values, min_size=1, max_size=8), st.randoms())
def test_properties(rows, rnd):
    block, units = score_frame(rows, list(range(len(rows))))
    maxes = np.array([np.inf if i.max is None else i.max for i in block.items])
    assert (block.points >= 0).all() and (block.points <= maxes + 1e-9).all()
    assert (block.section_points >= 0).all() and (block.section_points <= block.section_caps + 1e-9).all()
    # the documented aggregation, recomputed from the item points
    for r in range(len(rows)):
        secs, caps, j = [], [], 0
        for s in SCHEME.sections:
            pts = block.points[r, j:j + len(s.items)]
            na_max = sum(it.max for k, it in enumerate(s.items) if block.status[r, j + k] == engine.NA)
            cap = max(s.max - na_max, 0)
            secs.append(min(max(pts.sum(), 0), cap))
            caps.append(cap)
            j += len(s.items)
        base = sum(secs) / sum(caps) * SCHEME.total_max if sum(caps) else 0
        bonus = min(block.points[r, j], SCHEME.bonus_max)
        total = max(base - block.points[r, j + 1], 0) + bonus
        if rows[r]["secret_leaks"]:
            total = 0
        assert units["total"].iloc[r] == pytest.approx(round(total + 1e-9, 2), abs=0.005)
    # ranks form a competition ranking
    from scoring.ranking import rank_units
    ranked = rank_units(units)
    totals = ranked["total"].tolist()
    for rank, total in zip(ranked["rank"], totals):
        assert rank == 1 + sum(t > total for t in totals)
    # shuffling input rows changes nothing
    order = list(range(len(rows)))
    rnd.shuffle(order)
    _, shuffled = score_frame(rows, order)
    again = dict(zip(shuffled["unit_code"], shuffled["total"]))
    assert all(again[u] == t for u, t in zip(units["unit_code"], units["total"]))


def test_forgiving_where_the_meaning_is_clear():
    """No grades: the usual 90/80/60 bands; one group without brackets is a list of one."""
    text = SPEC_SCHEME.replace("grades: [{name: 优秀, min: 90}, {name: 良好, min: 80}, {name: 合格, min: 60}, {name: 不合格, min: 0}]\n", "")
    text = text.replace("groups: [市直部门]", "groups: 市直部门")
    assert "grades" not in text and "groups: 市直部门," in text
    s = parse_scheme(text)
    assert [g.name for g in s.grades] == ["优秀", "良好", "合格", "不合格"] and s.groups == ("市直部门",)
    assert s.grade_of(np.array([90, 89.99, 60, 0])).tolist() == ["优秀", "良好", "合格", "不合格"]


def test_passing_means_above_the_schemes_own_lowest_grade():
    from scoring.reports import group_summary
    from scoring.ranking import rank_units
    text = SPEC_SCHEME.replace(
        "grades: [{name: 优秀, min: 90}, {name: 良好, min: 80}, {name: 合格, min: 60}, {name: 不合格, min: 0}]",
        "grades: [{name: 好, min: 15}, {name: 差, min: 0}]")  # a: 17 points, b: 3
    scheme = parse_scheme(text)
    keys = pd.DataFrame({"unit_code": ["a", "b"], "unit_name": "x", "group": "市直部门", "period": "2025Q3",
                         "scheme": scheme.id, "self_score": np.nan})
    vals = {"has_leading_group": [1, 0], "budget_on_time": [1, 0], "broken_links": [0, 8]}
    cols = {c: np.array(vals.get(c, [0, 0]), dtype=float) for c in scheme.indicators}
    na = {c: np.zeros(2, bool) for c in scheme.indicators}
    adjs = pd.DataFrame(columns=["row", "item_id", "points", "reason", "actor", "adjusted_at"])
    _, units = engine.score_block(scheme, keys, cols, na, adjs)
    assert units["grade"].tolist() == ["好", "差"] and units["passed"].tolist() == [True, False]
    assert group_summary(rank_units(units))["pass_rate"].tolist() == [50.0]


# -- the rule classes: one place per rule type -------------------------------------------------------
@pytest.mark.parametrize("rule,max_,text", [
    ("{type: boolean, indicator: a}", 4, "「甲」为是得4分,否则0分"),
    ("{type: deduct, indicator: a, per: 0.5}", 4, "「甲」每处扣0.5分,扣完为止"),
    ("{type: deduct, indicator: a, per: 1, floor: section}", 4, "「甲」每处扣1分,可超扣,但所在部分不低于0分"),
    ("{type: ladder, indicator: a, tiers: [[50, 4], [1, 1]]}", 4, "按「甲」分档:≥50得4分、≥1得1分,否则0分"),
    ("{type: rate, indicator: a, full_at: 100, zero_at: 80}", 4, "「甲」≥100得满分,≤80得0分,其间按比例计分"),
    ("{type: rate, indicator: a, full_at: 0, zero_at: 5}", 4, "「甲」≤0得满分,≥5得0分,其间按比例计分"),
    ("{type: ratio, numerator: a, denominator: b, on_zero: na}", 4, "「甲」÷「乙」达到1得满分,不足按比例计分;「乙」为0时本项不适用"),
    ("{type: relative, indicator: a}", 4, "按「甲」与本组本季度最高值之比计分"),
    ("{type: per, indicator: a, per: 1.5}", 4, "「甲」每次得1.5分,最多4分"),
    ("{type: manual}", 4, "由考评组评定(核定录入),未评定前计0分"),
])
def test_each_rule_describes_itself(rule, max_, text):
    item = one_item(rule, max_=max_).item("s.x")
    assert item.rule.describe({"a": "甲", "b": "乙"}, item.max) == text


def test_scheme_table_says_each_rule_in_words():
    from scoring.reports import scheme_table
    table = scheme_table(SCHEME).set_index("item_id")
    assert table.loc["site.links", "rule"] == "「网站错链数」每处扣0.5分,扣完为止"
    assert table.loc["pen.criticism", "rule"] == "「上级通报批评次数」每次扣3分,不设上限"
    assert table.loc["site.review", "rule_type_label"] == "评定" and table.loc["veto.leak", "rule_type_label"] == "否决"


def test_what_the_engine_asks_of_a_rule_is_declared_on_its_class():
    from scoring.rules import RULES
    assert [t for t, cls in RULES.items() if cls.pending_when_unadjusted] == ["manual"]
    assert sorted(t for t, cls in RULES.items() if cls.penalty_ok) == ["manual", "per"]
    assert one_item("{type: deduct, indicator: a, per: 1, floor: section}").item("s.x").rule.floor == "section"
    assert one_item("{type: ladder, indicator: a, tiers: [[1, 1]]}").item("s.x").rule.floor == "item"
    assert one_item("{type: ratio, numerator: a, denominator: b}").item("s.x").rule.reads() == ["a", "b"]
    with pytest.raises(Problems, match=r"penalties\[0\]\(pen.criticism\).rule.type:重大扣分项只能使用 per、manual 规则"):
        parse_scheme(SPEC_SCHEME.replace("{type: per, indicator: criticisms", "{type: deduct, indicator: criticisms"))


def test_a_new_rule_type_is_one_class():
    """Registering a class is all it takes: the scheme checks its parameters, the engine scores
    it, the 考评表 page describes it."""
    from scoring import rules
    from scoring.reports import scheme_table

    @rules.rule("at_least")
    class AtLeast(rules.Rule):
        indicator: str = rules.indicator()
        target: float = rules.number_param(above=0.0)

        def score(self, cols, max_, groups):
            return np.where(cols[self.indicator] >= self.target, max_, 0.0)

        def describe(self, names, max_):
            return f"「{names[self.indicator]}」达到{rules.fmt(self.target)}得{rules.fmt(max_)}分"

        def explain(self, v, points, max_, ctx):
            return f"得{rules.fmt(points)}分"

    try:
        s = one_item("{type: at_least, indicator: a, target: 3}")
        points, status, _ = run(s, [3, 2, None])
        assert points.tolist() == [4, 0, 0] and status.tolist() == ["ok", "ok", "missing"]
        assert scheme_table(s).set_index("item_id").loc["s.x", "rule"] == "「甲」达到3得4分"
        with pytest.raises(Problems) as exc:
            one_item("{type: at_least, indicator: a, target: .nan, extra: 1}")
        assert {p.split(":")[0] for p in exc.value.problems} == {"sections[0](s).items[0](s.x).rule.target",
                                                                 "sections[0](s).items[0](s.x).rule.extra"}
    finally:
        del rules.RULES["at_least"]


@pytest.mark.parametrize("rule,fragment", [
    ("{type: nope}", "rule.type:未知的规则类型「nope」,可用:boolean、deduct、ladder、rate、ratio、relative、per、manual"),
    ("{type: deduct, indicator: a}", "rule.per:deduct 规则缺少参数 per"),
    ("{type: deduct, indicator: a, per: 1, floor: part}", "rule.floor:取值「part」无效,可用:item、section"),
    ("{type: rate, indicator: a, full_at: 50, zero_at: 50}", "rule.zero_at:满分线 full_at 与零分线 zero_at 不能相同"),
    ("{type: ladder, indicator: a, tiers: [[1, 1], [5, 2]]}", "rule.tiers:阈值必须从高到低"),
    ("{type: ladder, indicator: a, tiers: [[5, 2], [1, -1]]}", "rule.tiers[1][1]:"),
    ("{type: ladder, indicator: a, tiers: [[5, 2], 1]}", "rule.tiers[1]:每档应为 [阈值, 分值]"),
    ("{type: per, indicator: a, per: -1}", "rule.per:"),
])
def test_rule_parameters_are_checked_by_the_rule_class(rule, fragment):
    with pytest.raises(Problems) as exc:
        one_item(rule)
    assert any(fragment in p for p in exc.value.problems), exc.value.problems
