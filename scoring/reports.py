"""Figures the office reads off a ranking: group summaries, movers, where points were lost.

Each function takes frames from ``ranking.ranked_history`` or ``engine.Scores`` and returns a
plain DataFrame, so the dashboard, the 通报 and the exports say the same numbers.
"""
from __future__ import annotations

import pandas as pd

from . import engine
from .labels import ITEM_STATUS, RULE_TYPES


def _is_pass(df: pd.DataFrame) -> pd.Series:
    """Passing: above the scheme's lowest grade (the engine's ``passed``; a veto never passes)."""
    return df["passed"].astype(bool)


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
    items = items[(items["period"] == period) & (items["kind"] == "item") & (items["status"] != "na")]
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


CITY = "全市"


def city_summary(ranked: pd.DataFrame) -> pd.DataFrame:
    """``group_summary`` over all groups together: one row per period, group ``全市``."""
    return group_summary(ranked.assign(group=CITY))


def never_assessed_items(scores: engine.Scores, period: str) -> pd.DataFrame:
    """(group, item_id, name) of manual items still 待评定 for every unit: not a loss of the units."""
    items = scores.items
    items = items[items["period"] == period]
    if items.empty:
        return pd.DataFrame(columns=["group", "item_id", "name"])
    flags = items.assign(pending=items["status"] == "pending").groupby(
        ["group", "item_id", "name"], sort=False)["pending"].all()
    return flags[flags].reset_index()[["group", "item_id", "name"]]


# -- for the dashboard's 趋势 and 考评表 pages -------------------------------------------------
def indicator_values(store, period: str, group: str, indicator: str) -> pd.DataFrame:
    """One indicator's current value for every unit of a group in a period (unit_code, unit_name, value, is_na)."""
    return store.df("""SELECT u.unit_code, u.unit_name, v.value, coalesce(v.is_na, false) AS is_na
                       FROM units u LEFT JOIN current_values v
                         ON v.unit_code = u.unit_code AND v.period = ? AND v.indicator = ?
                       WHERE u.grp = ? AND EXISTS (SELECT 1 FROM current_submissions c
                                                   WHERE c.unit_code = u.unit_code AND c.period = ?)
                       ORDER BY u.unit_code""", [period, indicator, group, period])


def scheme_table(scheme) -> pd.DataFrame:
    """Every item of a scheme as a row: part, part max, item, max, rule type and rule in words."""
    names = scheme.names()
    rows = []
    for sec in scheme.sections:
        for it in sec.items:
            rows.append((f"{sec.name}", sec.max, it.id, it.name, it.max, it.rule.type_name, it.rule.describe(names, it.max)))
    for it in scheme.bonus_items:
        rows.append((f"加分项(最多{scheme.bonus_max:g}分)", scheme.bonus_max, it.id, it.name, it.max,
                     it.rule.type_name, it.rule.describe(names, it.max)))
    for it in scheme.penalties:
        rows.append(("重大扣分项", None, it.id, it.name, None, it.rule.type_name, it.rule.describe(names, it.max)))
    for v in scheme.vetoes:
        cap = f"总分不超过{v.cap:g}分" if v.cap is not None else "总分计0分,等级为最低等级"
        rows.append(("单项否决", None, v.id, v.name, None, "veto",
                     f"「{names.get(v.indicator, v.indicator)}」{v.op}{v.value:g} 时{cap}"))
    df = pd.DataFrame(rows, columns=["part", "part_max", "item_id", "name", "max", "rule_type", "rule"])
    df["rule_type_label"] = df["rule_type"].map(RULE_TYPES).fillna(df["rule_type"])
    return df


def scheme_diff(old, new) -> pd.DataFrame:
    """What changed from scheme ``old`` to ``new``, item by item (change: 新增 / 删除 / 修改)."""
    a, b = scheme_table(old).set_index("item_id"), scheme_table(new).set_index("item_id")
    rows = []
    for item_id in list(a.index) + [i for i in b.index if i not in a.index]:
        if item_id not in b.index:
            r = a.loc[item_id]
            rows.append((item_id, r["name"], "删除", f"{r['part']}:{r['name']}({_pts(r['max'])}){r['rule']}", ""))
        elif item_id not in a.index:
            r = b.loc[item_id]
            rows.append((item_id, r["name"], "新增", "", f"{r['part']}:{r['name']}({_pts(r['max'])}){r['rule']}"))
        else:
            x, y = a.loc[item_id], b.loc[item_id]
            changes_old, changes_new = [], []
            for col, label in (("part", "所属部分"), ("name", "名称"), ("max", "满分"), ("rule", "计分办法")):
                if not _same(x[col], y[col]):
                    changes_old.append(f"{label}:{_pts(x[col]) if col == 'max' else x[col]}")
                    changes_new.append(f"{label}:{_pts(y[col]) if col == 'max' else y[col]}")
            if changes_old:
                rows.append((item_id, y["name"], "修改", ";".join(changes_old), ";".join(changes_new)))
    return pd.DataFrame(rows, columns=["item_id", "name", "change", "old", "new"])


def _pts(x) -> str:
    return "不设满分" if x is None or pd.isna(x) else f"{float(x):g}分"


def _same(x, y) -> bool:
    if (x is None or (isinstance(x, float) and pd.isna(x))) and (y is None or (isinstance(y, float) and pd.isna(y))):
        return True
    return x == y


def where_to_gain(detail: dict) -> pd.DataFrame:
    """A unit's items from ``Scores.explain``, largest loss first: the "where to gain" list.

    Points lost count only for scored items that apply: a 不适用 item loses nothing (its max left
    the applicable total), and bonus and penalty items have no loss (``lost`` is NaN).
    """
    items = pd.DataFrame(detail["items"])
    sections = {s["id"]: s["name"] for s in detail["sections"]}
    items["section"] = items["section_id"].map(sections).fillna(
        items["kind"].map({"bonus": "加分项", "penalty": "扣分项"}))
    lost = (items["max"].astype(float) - items["points"]).clip(lower=0)
    items["lost"] = lost.where(items["kind"] == "item").where(items["status"] != "na", 0.0)
    items["status_label"] = items["status"].map(ITEM_STATUS)
    return items.sort_values(["lost", "section"], ascending=[False, True], na_position="last", ignore_index=True)
