"""Deterministic synthetic data for the benchmark: a scheme, a unit registry, quarterly values.

One scheme (60 indicators, 40 items using every rule type, penalties, vetoes, checks) applies to
all four groups.  The values of a quarter depend only on (scale, period), so the upload CSV and
the bulk-loaded rows of the same quarter hold exactly the same numbers: every generated value is
already quantised (counts are integers, rates have 1 decimal, numbers 2), so formatting it and
parsing it back gives the same double.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring import periods as P

GROUPS = ["市直部门", "县区", "乡镇街道", "公共企事业单位"]
GROUP_SHARE = [0.30, 0.10, 0.45, 0.15]


@dataclass(frozen=True)
class Scale:
    name: str
    units: int
    quarters: int
    first: str


SCALES = {
    "C": Scale("C", 150, 8, "2024Q1"),       # city
    "P": Scale("P", 3_000, 40, "2016Q1"),    # province
    "N": Scale("N", 45_000, 4, "2025Q1"),    # nation
}


def quarters(scale: Scale) -> list[str]:
    start = P.period_index(scale.first)
    return [P.from_index(start + k) for k in range(scale.quarters)]


# -- the scheme ------------------------------------------------------------------------------------
# (code, type, extra) — 60 indicators: 10 bool, 30 count, 12 rate, 8 number
INDICATORS: list[tuple[str, str, str]] = (
    [(f"b{k:02d}", "bool", ", na_allowed: true" if k in (9, 10) else "") for k in range(1, 11)]
    + [(f"c{k:02d}", "count", "") for k in range(1, 31)]
    + [(f"r{k:02d}", "rate", ", na_allowed: true" if k == 12 else "") for k in range(1, 13)]
    + [(f"n{k:02d}", "number", ", min: 0" if k == 1 else "") for k in range(1, 9)]
)
CN_TYPE = {"bool": "是否落实事项", "count": "计数事项", "rate": "比率事项", "number": "数值事项"}
CODES = [c for c, _, _ in INDICATORS]
TYPES = {c: t for c, t, _ in INDICATORS}


def indicator_name(code: str) -> str:
    return f"{CN_TYPE[TYPES[code]]}{code[1:]}"


SECTIONS = [
    ("org", "组织领导", 20, [
        ("org.b01", 3, "{type: boolean, indicator: b01}"),
        ("org.b02", 3, "{type: boolean, indicator: b02}"),
        ("org.b09", 3, "{type: boolean, indicator: b09}"),
        ("org.c01", 3, "{type: ladder, indicator: c01, tiers: [[10, 3], [5, 2], [1, 1]]}"),
        ("org.r01", 3, "{type: rate, indicator: r01, full_at: 100, zero_at: 60}"),
        ("org.review", 3, "{type: manual}"),
        ("org.c02", 2, "{type: deduct, indicator: c02, per: 0.5}"),
    ]),
    ("site", "平台建设", 20, [
        ("site.c03", 4, "{type: deduct, indicator: c03, per: 0.5}"),
        ("site.c04", 3, "{type: deduct, indicator: c04, per: 1, floor: section}"),
        ("site.c05", 3, "{type: ladder, indicator: c05, tiers: [[50, 3], [30, 2], [1, 1]]}"),
        ("site.c06", 2, "{type: relative, indicator: c06}"),
        ("site.r02", 3, "{type: rate, indicator: r02, full_at: 100, zero_at: 50}"),
        ("site.c07", 3, "{type: ratio, numerator: c07, denominator: c08, full_at: 1.0}"),
        ("site.b03", 2, "{type: boolean, indicator: b03}"),
    ]),
    ("apply", "依申请公开", 20, [
        ("apply.r03", 4, "{type: rate, indicator: r03, full_at: 100, zero_at: 80}"),
        ("apply.r04", 3, "{type: rate, indicator: r04, full_at: 98, zero_at: 60}"),
        ("apply.c09", 3, "{type: ratio, numerator: c09, denominator: c10, full_at: 0.9, on_zero: na}"),
        ("apply.c11", 3, "{type: ratio, numerator: c11, denominator: c12, full_at: 1.0, on_zero: zero}"),
        ("apply.c13", 3, "{type: deduct, indicator: c13, per: 1}"),
        ("apply.b10", 2, "{type: boolean, indicator: b10}"),
        ("apply.n01", 2, "{type: ladder, indicator: n01, tiers: [[90, 2], [60, 1]]}"),
    ]),
    ("policy", "政策解读", 20, [
        ("policy.c14", 4, "{type: ratio, numerator: c14, denominator: c15, full_at: 0.8}"),
        ("policy.c16", 3, "{type: relative, indicator: c16}"),
        ("policy.r05", 3, "{type: rate, indicator: r05, full_at: 100, zero_at: 70}"),
        ("policy.r06", 3, "{type: rate, indicator: r06, full_at: 95, zero_at: 50}"),
        ("policy.c17", 3, "{type: ladder, indicator: c17, tiers: [[20, 3], [10, 2], [3, 1]]}"),
        ("policy.b04", 2, "{type: boolean, indicator: b04}"),
        ("policy.review", 2, "{type: manual}"),
    ]),
    ("super", "监督保障", 20, [
        ("super.c18", 4, "{type: deduct, indicator: c18, per: 0.5, floor: section}"),
        ("super.r07", 3, "{type: rate, indicator: r07, full_at: 100, zero_at: 60}"),
        ("super.r12", 3, "{type: rate, indicator: r12, full_at: 100, zero_at: 0}"),
        ("super.n02", 3, "{type: ladder, indicator: n02, tiers: [[80, 3], [50, 2], [20, 1]]}"),
        ("super.b05", 3, "{type: boolean, indicator: b05}"),
        ("super.c19", 2, "{type: relative, indicator: c19}"),
        ("super.c20", 2, "{type: deduct, indicator: c20, per: 2}"),
    ]),
]
BONUS = [("bonus.c21", 3, "{type: per, indicator: c21, per: 1}"),
         ("bonus.c22", 2, "{type: per, indicator: c22, per: 0.5}"),
         ("bonus.n03", 2, "{type: per, indicator: n03, per: 0.1}")]
PENALTIES = [("pen.c23", "{type: per, indicator: c23, per: 3}"),
             ("pen.c24", "{type: per, indicator: c24, per: 1}")]
BONUS_MAX, BONUS_MIN_BASE = 5, 60
VETOES = [("veto.c25", "发生泄密事件", "c25", ">", 0, None),
          ("veto.n04", "数值事项04超标", "n04", ">", 100, 59)]
CHECKS = [("chk.c07", "c07 <= c08"), ("chk.c11", "c11 <= c12"), ("chk.c14", "c14 <= c15")]
GRADES = [("优秀", 90), ("良好", 80), ("合格", 60), ("不合格", 0)]
MANUAL_ITEMS = [it for _, _, _, items in SECTIONS for it, _, r in items if "manual" in r]


def scheme_yaml(scale: Scale) -> str:
    qs = quarters(scale)
    out = [f"scheme: bench-{scale.name.lower()}",
           f"title: 基准测试考评表({scale.name})",
           f"applies_to: {{groups: [{', '.join(GROUPS)}], from: {qs[0]}, to: {qs[-1]}}}",
           "total_max: 100", "indicators:"]
    for code, typ, extra in INDICATORS:
        out.append(f"  - {{code: {code}, name: {indicator_name(code)}, type: {typ}{extra}}}")
    out.append("sections:")
    for sid, name, smax, items in SECTIONS:
        out += [f"  - id: {sid}", f"    name: {name}", f"    max: {smax}", "    items:"]
        for iid, imax, rule in items:
            out.append(f"      - {{id: {iid}, name: 条目{iid}, max: {imax}, rule: {rule}}}")
    out.append(f"bonus: {{max: {BONUS_MAX}, min_base: {BONUS_MIN_BASE}, items: [")
    out.append(",\n".join(f"    {{id: {iid}, name: 加分{iid}, max: {imax}, rule: {rule}}}" for iid, imax, rule in BONUS))
    out.append("  ]}")
    out.append("penalties:")
    for iid, rule in PENALTIES:
        out.append(f"  - {{id: {iid}, name: 扣分{iid}, rule: {rule}}}")
    out.append("veto:")
    for vid, name, ind, op, value, cap in VETOES:
        out.append(f"  - {{id: {vid}, name: {name}, indicator: {ind}, op: \"{op}\", value: {value}"
                   + (f", cap: {cap}" if cap is not None else "") + "}")
    out.append("checks:")
    for cid, expr in CHECKS:
        out.append(f"  - {{id: {cid}, name: 校验{cid}, expr: \"{expr}\"}}")
    out.append("grades: [" + ", ".join(f"{{name: {n}, min: {m}}}" for n, m in GRADES) + "]")
    out.append("missing: zero")
    return "\n".join(out) + "\n"


# -- the registry ------------------------------------------------------------------------------------
def registry(scale: Scale) -> pd.DataFrame:
    rng = np.random.default_rng(7 + scale.units)
    group = rng.choice(len(GROUPS), size=scale.units, p=GROUP_SHARE)
    codes = [f"U{i:06d}" for i in range(1, scale.units + 1)]
    return pd.DataFrame({"unit_code": codes, "unit_name": [f"单位{i:06d}" for i in range(1, scale.units + 1)],
                         "group": np.array(GROUPS, dtype=object)[group], "parent_code": None})


# -- the values of one quarter ---------------------------------------------------------------------------
@dataclass
class Quarter:
    period: str
    units: np.ndarray        # unit codes (object)
    value: np.ndarray        # units × 60, NaN where blank or 不适用
    na: np.ndarray           # units × 60, reported 不适用
    blank: np.ndarray        # units × 60, cell left empty
    self_score: np.ndarray   # units

    @property
    def n_values(self) -> int:
        return int((~self.blank).sum())


POISSON = {"c08": 12, "c10": 2, "c12": 6, "c15": 8, "c01": 6, "c05": 35, "c06": 40, "c16": 25,
           "c17": 12, "c19": 60, "c21": 1, "c22": 2}
RARE = {"c23": 0.02, "c24": 0.05, "c25": 0.002}  # probability of 1


def quarter(scale: Scale, period: str, unit_codes: np.ndarray) -> Quarter:
    n = len(unit_codes)
    rng = np.random.default_rng([11, P.period_index(period), scale.units])
    cols, na = {}, {}
    for code, typ, _ in INDICATORS:
        if typ == "bool":
            cols[code] = (rng.random(n) < (0.97 if code == "b06" else 0.85)).astype(float)
        elif typ == "count":
            if code in RARE:
                cols[code] = (rng.random(n) < RARE[code]).astype(float)
            else:
                cols[code] = rng.poisson(POISSON.get(code, 3), n).astype(float)
        elif typ == "rate":
            cols[code] = np.clip(np.round((100 - rng.exponential(8, n)) * 10), 0, 1000) / 10
        else:
            cols[code] = np.round(rng.random(n) * 10000) / 100
    # numerators never above their denominators (the scheme's checks)
    for num, den in (("c07", "c08"), ("c09", "c10"), ("c11", "c12"), ("c14", "c15")):
        cols[num] = rng.binomial(cols[den].astype(np.int64), 0.85).astype(float)
    cols["n04"] = np.where(rng.random(n) < 0.005, 120.0, cols["n04"])  # rare veto with a cap
    value = np.column_stack([cols[c] for c in CODES])
    na = np.zeros_like(value, dtype=bool)
    for code in ("b09", "b10", "r12"):
        na[:, CODES.index(code)] = rng.random(n) < 0.05
    blank = (rng.random(value.shape) < 0.004) & ~na
    value[na | blank] = np.nan
    self_score = np.round(rng.uniform(60, 100, n) * 10) / 10
    return Quarter(period, np.asarray(unit_codes, dtype=object), value, na, blank, self_score)


def _column_text(code: str, v: np.ndarray, na: np.ndarray, blank: np.ndarray) -> np.ndarray:
    typ = TYPES[code]
    if typ == "bool":
        text = np.where(v > 0, "是", "否").astype(object)
    elif typ == "count":
        text = np.array([str(int(x)) if x == x else "" for x in v], dtype=object)
    elif typ == "rate":
        text = np.array([f"{x:.1f}" if x == x else "" for x in v], dtype=object)
    else:
        text = np.array([f"{x:.2f}" if x == x else "" for x in v], dtype=object)
    text[na] = "不适用"
    text[blank] = ""
    return text


def quarter_csv(q: Quarter) -> bytes:
    """The quarter as a wide upload (UTF-8 with BOM, Chinese headers), as Excel would save it."""
    header = ["单位代码", "季度", "自评分"] + [indicator_name(c) for c in CODES]
    columns = [q.units, np.full(len(q.units), q.period, dtype=object),
               np.array([f"{x:.1f}" for x in q.self_score], dtype=object)]
    columns += [_column_text(c, q.value[:, j], q.na[:, j], q.blank[:, j]) for j, c in enumerate(CODES)]
    lines = [",".join(header)]
    lines += [",".join(row) for row in zip(*columns)]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def quarter_long(q: Quarter) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(submissions, values) of the quarter as the upload path would store them."""
    n = len(q.units)
    keep = ~q.blank.ravel()
    values = pd.DataFrame({
        "unit_code": np.repeat(q.units, len(CODES))[keep],
        "period": q.period,
        "indicator": np.tile(np.array(CODES, dtype=object), n)[keep],
        "value": q.value.ravel()[keep],
        "is_na": q.na.ravel()[keep],
    })
    subs = pd.DataFrame({"unit_code": q.units, "period": q.period, "self_score": q.self_score,
                         "row_no": np.arange(2, n + 2)})
    return subs, values


def adjustments(scale: Scale, period: str, unit_codes: np.ndarray) -> pd.DataFrame:
    """The office's 考评组评定 points for about 10% of the units (manual items), some revised."""
    rng = np.random.default_rng([13, P.period_index(period), scale.units])
    rows = []
    for item, imax in (("org.review", 3.0), ("policy.review", 2.0)):
        pick = np.flatnonzero(rng.random(len(unit_codes)) < 0.10)
        pts = np.round(rng.uniform(0, imax, len(pick)) * 2) / 2
        rows.append(pd.DataFrame({"unit_code": unit_codes[pick], "period": period, "item_id": item,
                                  "points": pts, "rev": 0}))
        again = pick[rng.random(len(pick)) < 0.1]  # a revision supersedes the first entry
        rows.append(pd.DataFrame({"unit_code": unit_codes[again], "period": period, "item_id": item,
                                  "points": np.full(len(again), imax), "rev": 1}))
    return pd.concat(rows, ignore_index=True).sort_values(["rev", "unit_code"], kind="stable", ignore_index=True)
