"""Figures the office reads off a ranking: group summaries, movers, where points were lost.

Each function takes frames from ``ranking.ranked_history`` or ``engine.Scores`` and returns a
plain DataFrame, so the dashboard, the 通报 and the exports say the same numbers.
"""
from __future__ import annotations

import pandas as pd

from . import engine

PASS_GRADES_EXCLUDE = "不合格"


def _is_pass(df: pd.DataFrame) -> pd.Series:
    """Passing: not the lowest grade and not vetoed."""
    return (df["grade"] != PASS_GRADES_EXCLUDE) & df["veto"].isna()


def group_summary(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per (period, group): units, mean, median, min, max, pass rate, 优秀 count and names."""
    if ranked.empty:
        return pd.DataFrame(columns=["period", "group", "units", "mean", "median", "min", "max",
                                     "pass_rate", "excellent", "excellent_units"])
    df = ranked.assign(passed=_is_pass(ranked), excellent=ranked["grade"] == "优秀")
    out = df.groupby(["period", "group"], sort=True).agg(
        units=("unit_code", "size"), mean=("total", "mean"), median=("total", "median"),
        min=("total", "min"), max=("total", "max"), pass_rate=("passed", "mean"),
        excellent=("excellent", "sum")).reset_index()
    names = (df[df["excellent"]].sort_values("rank").groupby(["period", "group"])["unit_name"]
             .agg("、".join).rename("excellent_units"))
    out = out.merge(names, on=["period", "group"], how="left")
    out["excellent_units"] = out["excellent_units"].fillna("")
    for c in ("mean", "median"):
        out[c] = engine.round2(out[c])
    out["pass_rate"] = engine.round2(out["pass_rate"] * 100)
    return out


def movers(ranked_period: pd.DataFrame, n: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The biggest risers and fallers by rank change (units new to the ranking are left out)."""
    known = ranked_period[ranked_period["rank_change"].notna()].copy()
    known["rank_change"] = known["rank_change"].astype(int)
    risers = known[known["rank_change"] > 0].sort_values(["rank_change", "total_change"], ascending=False).head(n)
    fallers = known[known["rank_change"] < 0].sort_values(["rank_change", "total_change"]).head(n)
    return risers.reset_index(drop=True), fallers.reset_index(drop=True)


def failing(ranked_period: pd.DataFrame) -> pd.DataFrame:
    """Units graded 不合格 or vetoed, with the reason in words."""
    df = ranked_period[~_is_pass(ranked_period)].copy()
    df["reason"] = [f"触发单项否决:{v}" if isinstance(v, str) else f"得分{t:.2f},低于合格线"
                    for v, t in zip(df["veto_name"], df["total"])]
    return df.sort_values(["group", "rank"]).reset_index(drop=True)


def item_losses(scores: engine.Scores, period: str, group: str | None = None) -> pd.DataFrame:
    """Per item: mean points, mean points lost and how many units lost any, largest loss first."""
    items = scores.items
    items = items[(items["period"] == period) & (items["kind"] == "item")]
    if group is not None:
        items = items[items["group"] == group]
    items = items.assign(lost=(items["max"] - items["points"]).clip(lower=0), any_lost=items["points"] < items["max"] - 1e-9)
    out = items.groupby(["group", "item_id", "name", "max"], sort=False).agg(
        mean_points=("points", "mean"), mean_lost=("lost", "mean"), units_lost=("any_lost", "sum"),
        units=("unit_code", "size"), missing=("status", lambda s: int((s == "missing").sum()))).reset_index()
    out["mean_points"] = engine.round2(out["mean_points"])
    out["mean_lost"] = engine.round2(out["mean_lost"])
    return out.sort_values("mean_lost", ascending=False, ignore_index=True)


def group_trend(ranked: pd.DataFrame, group: str | None = None) -> pd.DataFrame:
    """Per (period, group): mean, median, min and max of the totals."""
    df = ranked if group is None else ranked[ranked["group"] == group]
    return group_summary(df)[["period", "group", "units", "mean", "median", "min", "max", "pass_rate"]]


def grade_distribution(ranked: pd.DataFrame) -> pd.DataFrame:
    """Counts of each grade per (period, group)."""
    return ranked.groupby(["period", "group", "grade"]).size().rename("units").reset_index()


def section_matrix(scores: engine.Scores, period: str, group: str) -> pd.DataFrame:
    """Units × sections, points as a share of each section's applicable max (percent)."""
    sec = scores.sections
    sec = sec[(sec["period"] == period) & (sec["group"] == group)]
    if sec.empty:
        return pd.DataFrame()
    names = scores.units.set_index(["unit_code", "period"])["unit_name"]
    sec = sec.assign(pct=(sec["points"] / sec["max"].where(sec["max"] > 0) * 100).round(1),
                     unit_name=[names.get((u, period), u) for u in sec["unit_code"]])
    order = sec["name"].drop_duplicates().tolist()
    return sec.pivot_table(index="unit_name", columns="name", values="pct", aggfunc="first")[order]


def section_compare(scores: engine.Scores, unit_code: str, period: str) -> pd.DataFrame:
    """One unit's section points against the group's mean and best."""
    sec = scores.sections
    sec = sec[sec["period"] == period]
    mine = sec[sec["unit_code"] == unit_code]
    if mine.empty:
        return pd.DataFrame(columns=["section_id", "name", "points", "max", "group_mean", "group_best"])
    peers = sec[sec["group"] == mine["group"].iloc[0]]
    stats = peers.groupby("section_id")["points"].agg(group_mean="mean", group_best="max").reset_index()
    out = mine[["section_id", "name", "points", "max"]].merge(stats, on="section_id")
    out["group_mean"] = engine.round2(out["group_mean"])
    out["points"] = engine.round2(out["points"])
    return out
