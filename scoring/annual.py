"""The annual result: the year's four quarterly totals side by side, weighted as the scheme says.

``annual: {quarters: [w1, w2, w3, w4]}`` or ``annual: {year_end: s}`` in a group's scheme weighs the
quarters (default: the mean, SPEC); a quarter without a result counts 0 and is flagged. With
``annual: {points: 5}`` the annual total is also converted into 目标管理考核 points (total × 5 ÷ 100).
The scheme of a group's year is the one covering its fourth quarter (else the latest quarter it covers).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import engine, periods
from .memo import memoised
from .ranking import competition_rank
from .schemes import DEFAULT_GRADES, Grade, Scheme

COLUMNS = ["year", "group", "rank", "unit_code", "unit_name", "total", "grade", "quarters"]
QUARTER_LABELS = ("一季度", "二季度", "三季度", "四季度")


def scheme_of_year(schemes: list[Scheme], group: str, year: int) -> Scheme | None:
    for p in reversed(periods.year_quarters(year)):
        found = next((s for s in schemes if s.covers(group, p)), None)
        if found is not None:
            return found
    return None


def weights_text(weights) -> str:
    """How the quarters are weighed, in Chinese (for captions and the 通报)."""
    if np.allclose(weights, 0.25):
        return "四个季度得分的平均值"
    return "各季度得分加权:" + "、".join(f"{q}{w * 100:g}%" for q, w in zip(QUARTER_LABELS, weights))


def _grade(scheme: Scheme | None, totals: np.ndarray) -> np.ndarray:
    if scheme is not None:
        return scheme.grade_of(totals)
    grades = sorted((Grade(g["name"], g["min"]) for g in DEFAULT_GRADES), key=lambda g: -g.min)
    return np.array([next((g.name for g in grades if t >= g.min - 1e-9), grades[-1].name) for t in totals], dtype=object)


def annual_table(scores: engine.Scores, year: int, group: str | None = None,
                 schemes: list[Scheme] | None = None, *, units: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per unit with a result in the year: the quarters (``2025Q1`` … columns, NaN where
    missing), ``total``, ``grade``, ``points`` (目标管理考核折算分, NaN when the scheme has none),
    ``missing_quarters`` (e.g. ``2025Q3``), ``n_missing``, ``weights``, ``rank`` and ``tied`` in the group.
    ``units``: the unit results to use instead of ``scores.units`` (those an actor may see)."""
    if units is None:       # every result: the same while the year's results are
        return memoised([scores], ("annual", year, group, tuple(s.id for s in schemes or ())),
                        lambda: _annual_table(scores, year, group, schemes, scores.units))
    return _annual_table(scores, year, group, schemes, units)


def _annual_table(scores, year, group, schemes, units) -> pd.DataFrame:
    quarters = periods.year_quarters(year)
    units = units[units["period"].isin(quarters)]
    if group is not None:
        units = units[units["group"] == group]
    if units.empty:
        return pd.DataFrame(columns=["year", "group", "rank", "tied", "unit_code", "unit_name", *quarters, "total",
                                     "grade", "passed", "excellent", "points", "points_max", "missing_quarters",
                                     "n_missing", "weights"])
    wide = units.pivot_table(index=["group", "unit_code", "unit_name"], columns="period", values="total",
                             aggfunc="first").reindex(columns=quarters)
    out = wide.reset_index()
    out.columns.name = None
    missing = wide.isna().to_numpy()
    frames = []
    for g, part in out.groupby("group", sort=False):
        scheme = scheme_of_year(schemes if schemes is not None else [b.scheme for b in scores.blocks], g, year)
        w = np.array(scheme.annual_weights if scheme else (0.25,) * 4)
        values = part[quarters].to_numpy(dtype=float)
        part = part.assign(total=engine.round2(np.nan_to_num(values, nan=0.0) @ w), weights=weights_text(w))
        part["grade"] = _grade(scheme, part["total"].to_numpy())
        grades = [g.name for g in scheme.grades] if scheme else [g["name"] for g in DEFAULT_GRADES]
        part["passed"] = part["grade"] != grades[-1]
        part["excellent"] = part["grade"] == grades[0]
        points = scheme.annual_points if scheme else None
        part["points_max"] = points if points else np.nan
        part["points"] = engine.round2(part["total"] * points / 100) if points else np.nan
        frames.append(part)
    out = pd.concat(frames).loc[out.index]
    out["missing_quarters"] = ["、".join(q for q, m in zip(quarters, row) if m) for row in missing]
    out["n_missing"] = missing.sum(axis=1)
    out["year"] = year
    out["rank"] = competition_rank(out, ["group"])
    out["tied"] = out.groupby(["group", "rank"])["unit_code"].transform("size") > 1
    return out.sort_values(["group", "rank", "unit_code"], ignore_index=True)


def records(df: pd.DataFrame) -> list[dict]:
    """SPEC's rows: ``year, group, rank, unit_code, unit_name, total, grade, quarters`` (null where missing)."""
    quarters = [c for c in df.columns if isinstance(c, str) and len(c) == 6 and c[4] == "Q"]
    return [{"year": int(r["year"]), "group": r["group"], "rank": int(r["rank"]), "unit_code": r["unit_code"],
             "unit_name": r["unit_name"], "total": float(r["total"]), "grade": r["grade"],
             "quarters": [None if pd.isna(r[q]) else float(r[q]) for q in quarters]}
            for r in df.to_dict("records")]


def export_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The annual table with Chinese headers, as the page's download and the CLI's CSV have it."""
    quarters = [c for c in df.columns if isinstance(c, str) and len(c) == 6 and c[4] == "Q"]
    columns = {"year": "年度", "group": "分组", "rank": "名次", "unit_code": "单位代码", "unit_name": "单位名称",
               **{q: f"{label}得分" for q, label in zip(quarters, QUARTER_LABELS)},
               "total": "年度得分", "grade": "等次", "points": "目标管理考核折算分", "missing_quarters": "缺报季度(按0分计)"}
    out = df.reindex(columns=list(columns)).rename(columns=columns)
    out.insert(3, "并列", df["tied"].map({True: "是", False: ""}).to_numpy() if "tied" in df else "")
    return out.reset_index(drop=True)
