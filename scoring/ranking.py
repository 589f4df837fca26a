"""Ranking inside (period, group): shared ranks, change against the previous quarter, annual mean.

Pure computation over :class:`engine.Scores`; who may see which rows is :mod:`scoring.views`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import engine, periods
from .memo import memoised

COLUMNS = ["period", "group", "rank", "unit_code", "unit_name", "total", "grade", "rank_change"]
SELF_GAP_FLAG = 5.0


def competition_rank(df: pd.DataFrame, by: list[str], value: str = "total") -> pd.Series:
    """1, 2, 2, 4: equal values (to 2 decimals) share a rank and the next rank skips."""
    rounded = df.assign(_v=engine.round2(df[value].to_numpy(dtype=float)))
    return rounded.groupby(by)["_v"].rank(method="min", ascending=False).astype(int)


def rank_units(units: pd.DataFrame) -> pd.DataFrame:
    """Add rank, tied and group size to a frame of unit results (any number of periods)."""
    df = units.copy()
    if df.empty:
        return df.assign(rank=pd.Series(dtype=int), tied=pd.Series(dtype=bool), n_in_group=pd.Series(dtype=int))
    keys = ["period", "group"]
    df["rank"] = competition_rank(df, keys)
    df["tied"] = df.groupby(keys + ["rank"])["unit_code"].transform("size") > 1
    df["n_in_group"] = df.groupby(keys)["unit_code"].transform("size")
    return df


def with_changes(ranked: pd.DataFrame) -> pd.DataFrame:
    """Add rank_change (previous rank − rank, null when unranked before) and total_change."""
    prev = ranked[["unit_code", "group", "period", "rank", "total"]].rename(
        columns={"rank": "prev_rank", "total": "prev_total"})
    prev = prev.assign(period=prev["period"].map(lambda p: periods.from_index(periods.period_index(p) + 1)))
    df = ranked.merge(prev, on=["unit_code", "group", "period"], how="left")
    df["rank_change"] = (df["prev_rank"] - df["rank"]).astype("Int64")
    df["total_change"] = engine.round2(df["total"] - df["prev_total"])
    gap = df["self_score"].astype(float) - df["total"]
    df["self_gap"] = engine.round2(gap)
    df["self_gap_flag"] = gap.abs() >= SELF_GAP_FLAG - 1e-9
    return df


def change_label(rank_change) -> str:
    if rank_change is None or pd.isna(rank_change):
        return "新"
    n = int(rank_change)
    return f"↑{n}" if n > 0 else f"↓{-n}" if n < 0 else "—"


def rank_label(rank: int, tied: bool) -> str:
    return f"{int(rank)}(并列)" if tied else str(int(rank))


def ranked_history(scores: engine.Scores) -> pd.DataFrame:
    """Every scored (unit, period) with rank and changes: the table pages and reports read."""
    return with_changes(rank_units(scores.units)).sort_values(["period", "group", "rank", "unit_code"],
                                                             ignore_index=True)


def annual_table(scores: engine.Scores, year: int, group: str | None = None) -> pd.DataFrame:
    """Mean of the year's quarterly totals; a quarter with no data counts 0 and is flagged."""
    quarters = periods.year_quarters(year)
    units = scores.units[scores.units["period"].isin(quarters)]
    if group is not None:
        units = units[units["group"] == group]
    if units.empty:
        return pd.DataFrame(columns=["year", "group", "rank", "unit_code", "unit_name", "total",
                                     *quarters, "missing_quarters", "tied"])
    wide = units.pivot_table(index=["group", "unit_code", "unit_name"], columns="period",
                             values="total", aggfunc="first").reindex(columns=quarters)
    missing = wide.isna()
    out = wide.fillna(0.0).reset_index()
    out.columns.name = None
    out["total"] = engine.round2(out[quarters].mean(axis=1))
    out["missing_quarters"] = ["、".join(q for q, m in zip(quarters, row) if m) for row in missing.to_numpy()]
    out["year"] = year
    out["rank"] = competition_rank(out, ["group"])
    out["tied"] = out.groupby(["group", "rank"])["unit_code"].transform("size") > 1
    return out.sort_values(["group", "rank", "unit_code"], ignore_index=True)


def history_index(ranked: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """What :func:`history_of` looks up in ``ranked``: each unit's row positions, and the mean and
    best total of every (period, group). Kept while ``ranked`` lives (:mod:`scoring.memo`)."""
    def compute():
        stats = ranked.groupby(["period", "group"])["total"].agg(group_mean="mean", group_best="max")
        return ranked.groupby("unit_code", sort=False).indices, stats.reset_index()

    return memoised([ranked], ("history index",), compute)


def unit_rows(ranked: pd.DataFrame, unit_code: str) -> pd.DataFrame:
    """The rows of one unit in ``ranked``, in its order (without scanning all of it)."""
    return ranked.iloc[history_index(ranked)[0].get(unit_code, np.empty(0, dtype=np.intp))]


def history_of(ranked: pd.DataFrame, unit_code: str) -> pd.DataFrame:
    """One unit over all quarters of ``ranked``: total, rank of n, grade, group mean and best."""
    mine = unit_rows(ranked, unit_code).merge(history_index(ranked)[1], on=["period", "group"], how="left")
    mine["group_mean"] = engine.round2(mine["group_mean"])
    return mine.sort_values("period", ignore_index=True)
