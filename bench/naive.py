"""The naive baseline: what one would write first with pandas — one Python call per unit.

It reads the same current values from the store, then ``groupby("unit_code").apply`` walks each
unit's rows one by one (``iterrows``, SPEC's "pandas row by row") and scores the unit item by item
with plain Python scalars, following SPEC's rules and aggregation order.  It
shares nothing with the engine but the parsed scheme object (rule parameters), so agreeing
totals are also an independent check of the engine.
"""
from __future__ import annotations

import math
import operator

import pandas as pd

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
       "==": operator.eq, "!=": operator.ne}


def _rule_points(rule, get, max_, best):
    t = rule.type_name
    if t == "boolean":
        return max_ if get(rule.indicator) > 0 else 0.0
    if t == "deduct":
        raw = max_ - rule.per * get(rule.indicator)
        return raw if rule.floor == "section" else max(raw, 0.0)
    if t == "ladder":
        x = get(rule.indicator)
        for threshold, pts in rule.tiers:
            if x >= threshold:
                return float(pts)
        return 0.0
    if t == "rate":
        frac = (get(rule.indicator) - rule.zero_at) / (rule.full_at - rule.zero_at)
        return max_ * min(max(frac, 0.0), 1.0)
    if t == "ratio":
        num, den = get(rule.numerator), get(rule.denominator)
        if den == 0:
            return max_ if rule.on_zero == "full" else 0.0
        return max_ * min(max(num / den / rule.full_at, 0.0), 1.0)
    if t == "relative":
        b = best.get(rule.indicator, 0.0)
        return max_ * min(max(get(rule.indicator) / b, 0.0), 1.0) if b > 0 else 0.0
    if t == "per":
        raw = rule.per * get(rule.indicator)
        return raw if max_ is None else min(raw, max_)
    raise ValueError(t)


def score_unit(values: dict, scheme, adjusted: dict, best: dict) -> float:
    """One unit's total: values {indicator: (value, is_na)}; adjusted {item_id: points}."""

    def get(code):
        return values[code][0]

    points, status = {}, {}
    for item in scheme.items:
        rule = item.rule
        if item.id in adjusted:
            p = adjusted[item.id]
            points[item.id], status[item.id] = (abs(p) if item.kind == "penalty" else p), "adjusted"
            continue
        if rule.type_name == "manual":
            points[item.id], status[item.id] = 0.0, "pending"
            continue
        reads = rule.reads()
        if any(values.get(c, (math.nan, False))[1] for c in reads):
            points[item.id], status[item.id] = 0.0, "na"
            continue
        if any(c not in values or math.isnan(values[c][0]) for c in reads):
            points[item.id], status[item.id] = 0.0, "missing"
            continue
        if rule.type_name == "ratio" and rule.on_zero == "na" and get(rule.denominator) == 0:
            points[item.id], status[item.id] = 0.0, "na"
            continue
        p = _rule_points(rule, get, item.max, best)
        if item.max is None:
            p = max(p, 0.0)
        elif getattr(rule, "floor", "item") == "section":
            p = min(p, item.max)
        else:
            p = min(max(p, 0.0), item.max)
        points[item.id], status[item.id] = p, "ok"

    raw_base = applicable = 0.0
    for sec in scheme.sections:
        cap = max(sec.max - sum(it.max for it in sec.items if status[it.id] == "na"), 0.0)
        raw_base += min(max(sum(points[it.id] for it in sec.items), 0.0), cap)
        applicable += cap
    if applicable >= scheme.total_max - 1e-9:
        base = raw_base
    else:
        base = raw_base / applicable * scheme.total_max if applicable > 0 else 0.0
    penalty = sum(points[it.id] for it in scheme.penalties)
    bonus = min(sum(points[it.id] for it in scheme.bonus_items), scheme.bonus_max)
    if base < scheme.bonus_min_base - 1e-9:
        bonus = 0.0
    total = math.floor((max(base - penalty, 0.0) + bonus) * 100 + 0.5 + 1e-7) / 100
    for v in scheme.vetoes:
        x = values.get(v.indicator, (math.nan, False))[0]
        if not math.isnan(x) and OPS[v.op](x, v.value):
            total = min(total, v.cap if v.cap is not None else 0.0)
    return total


def naive_totals(store, scheme, period: str) -> pd.Series:
    """unit_code -> total for one period, one pandas ``apply`` call per unit."""
    vals = store.df("""SELECT v.unit_code, u.grp, v.indicator, v.value, v.is_na
                       FROM current_values v JOIN units u USING (unit_code) WHERE v.period = ?""", [period])
    adjs = store.df("SELECT unit_code, item_id, points FROM adjustments WHERE period = ? ORDER BY adj_id", [period])
    adjusted: dict[str, dict] = {}
    for rec in adjs.itertuples(index=False):  # later rows supersede earlier ones
        adjusted.setdefault(rec.unit_code, {})[rec.item_id] = rec.points
    # largest value per group for the relative rules (missing / 不适用 count as 0)
    best = (vals.assign(v=vals["value"].fillna(0.0)).groupby(["grp", "indicator"])["v"].max()
            .clip(lower=0).to_dict())

    def per_unit(df: pd.DataFrame) -> float:
        grp = df["grp"].iloc[0]
        values = {row["indicator"]: (row["value"], row["is_na"]) for _, row in df.iterrows()}
        group_best = {code: best.get((grp, code), 0.0) for code in scheme.indicators}
        return score_unit(values, scheme, adjusted.get(df.name, {}), group_best)

    return vals.groupby("unit_code").apply(per_unit)
