"""Every read a front end needs, for one actor: frames already filtered to what the actor may see.

The app's pages and the CLI call these and never slice a cross-unit table themselves. Each
function asks :mod:`scoring.permissions` first; the heavy inputs (an ``engine.Scores`` and its
``ranking.ranked_history``) may be passed in by a caller that caches them, which changes what is
computed, never what is shown.
"""
from __future__ import annotations

import pandas as pd

from . import accounts, adjustments, engine, lifecycle, periods, ranking as rk, reports
from .errors import NotFound, PermissionDenied
from .labels import ITEM_STATUS
from .permissions import User, can, require

# columns of a ranking row that only the office and the unit itself see
PRIVATE = ["self_score", "self_gap", "self_gap_flag", "veto", "veto_name", "n_missing"]

# the ranking as every front end exports it (CSV/XLSX), in this order
EXPORT_COLUMNS = {"period": "季度", "group": "分组", "rank": "名次", "tied": "并列", "unit_code": "单位代码",
                  "unit_name": "单位名称", "total": "总分", "grade": "等级", "rank_change": "名次变化",
                  "total_change": "分数变化", "self_score": "自评分", "self_gap": "自评差", "veto_name": "否决项"}


def _actor(store, actor: User) -> User:
    """The actor as the database knows it now (disabled or changed accounts are refused)."""
    return accounts.require_active(store, actor)


def _ranked(store, ranked: pd.DataFrame | None, wanted: list[str] | None = None) -> pd.DataFrame:
    if ranked is not None:
        return ranked
    return rk.ranked_history(engine.score(store, wanted))


def _hide_private(df: pd.DataFrame, actor: User) -> pd.DataFrame:
    """Blank the private columns on every row the actor may not see privately."""
    present = [c for c in PRIVATE if c in df.columns]
    if actor.is_office or not present or df.empty:
        return df
    others = df["unit_code"] != actor.unit_code
    if not others.any():
        return df
    df = df.copy()
    for c in present:
        if df[c].dtype == bool:
            df[c] = df[c] & ~others
        else:
            df[c] = df[c].astype(object).where(~others, None)
    return df


# -- groups and units ----------------------------------------------------------------------------
def groups(store, actor: User) -> list[str]:
    """The groups whose ranking the actor may see (a unit account: its own)."""
    actor = _actor(store, actor)
    require(actor, "ranking.view")
    if actor.is_unit:
        return [actor.group] if actor.group else []
    return group_order(store)


def group_order(store) -> list[str]:
    """Groups in the order the registry lists them (as the office's own tables do), not by code point.
    Group names are not private: every role may order by them."""
    return [r[0] for r in store.rows("SELECT grp FROM units GROUP BY grp ORDER BY min(rowid)")]


def group_of(store, actor: User, group: str | None) -> str | None:
    """``group`` if the actor may see it; for a unit account ``None`` means its own group."""
    actor = _actor(store, actor)
    if actor.is_unit and group is None:
        group = actor.group
    require(actor, "ranking.view", group=group)
    return group


def upload_groups(store, actor: User) -> list[str]:
    """The groups the actor may upload (or download a template) for: a unit account its own."""
    actor = _actor(store, actor)
    if not (can(actor, "upload.unit") or can(actor, "upload.office")):
        require(actor, "upload.unit")
    if actor.is_unit:
        return [actor.group] if actor.group else []
    return group_order(store)


def units(store, actor: User) -> pd.DataFrame:
    """The units whose details the actor may open: ``unit_code, unit_name, group``."""
    actor = _actor(store, actor)
    require(actor, "unit.view")
    sql = 'SELECT unit_code, unit_name, grp AS "group" FROM units'
    if actor.is_unit:
        return store.df(sql + " WHERE unit_code = ?", [actor.unit_code])
    order = {g: k for k, g in enumerate(group_order(store))}
    df = store.df(sql)
    return df.assign(_o=df["group"].map(order)).sort_values(["_o", "unit_code"]).drop(columns="_o").reset_index(drop=True)


def problem_units(store, actor: User) -> pd.DataFrame:
    """The units the actor may record problems for (the office and checkers: every unit)."""
    require(_actor(store, actor), "problems.add")
    return store.df('SELECT unit_code, unit_name, grp AS "group" FROM units ORDER BY unit_code')


# -- rankings ---------------------------------------------------------------------------------------
def ranking(store, actor: User, period: str, group: str | None = None, *,
            ranked: pd.DataFrame | None = None) -> pd.DataFrame:
    """One period's ranking (one group, or every group the actor may see), with changes.

    A unit account sees its own group only, and the self score, self-score gap and veto columns
    of its own row only.
    """
    period = periods.parse_period(period)
    actor = _actor(store, actor)
    group = group_of(store, actor, group)
    df = _ranked(store, ranked, [periods.previous(period), period])
    df = df[df["period"] == period]
    if group is not None:
        df = df[df["group"] == group]
    return _hide_private(lifecycle.visible_rows(store, actor, df.reset_index(drop=True)), actor)


def ranking_records(df: pd.DataFrame) -> list[dict]:
    """SPEC's ranking rows (``period, group, rank, unit_code, unit_name, total, grade, rank_change``)."""
    return [{"period": r.period, "group": r.group, "rank": int(r.rank), "unit_code": r.unit_code,
             "unit_name": r.unit_name, "total": float(r.total), "grade": r.grade,
             "rank_change": None if pd.isna(r.rank_change) else int(r.rank_change)}
            for r in df.itertuples()]


def ranking_export(df: pd.DataFrame, actor: User) -> pd.DataFrame:
    """The ranking as every download has it: Chinese headers; the office's columns for the office."""
    columns = dict(EXPORT_COLUMNS)
    if not actor.is_office:
        for c in ("self_score", "self_gap", "veto_name"):
            columns.pop(c)
    out = df.reindex(columns=list(columns)).rename(columns=columns)
    out["并列"] = out["并列"].map({True: "是", False: ""})
    out["名次变化"] = out["名次变化"].astype("Int64")
    return out.reset_index(drop=True)


def annual(store, actor: User, year: int, group: str | None = None, *,
           scores: engine.Scores | None = None) -> pd.DataFrame:
    """The year's result (the quarters weighed as the scheme says, by default their mean; a missing
    quarter counts 0 and is flagged): see :func:`scoring.annual.annual_table`. A unit account's
    result counts only the quarters whose group ranking it may see (已定稿): the others are missing."""
    from .annual import annual_table
    from .schemes import load_schemes

    actor = _actor(store, actor)
    group = group_of(store, actor, group)
    if scores is None:
        scores = engine.score(store, periods.year_quarters(year))
    units = None
    if actor.is_unit:
        scope = lifecycle.unit_scope(store, periods.year_quarters(year))
        units = scores.units[scores.units["period"].map(scope).eq(lifecycle.SEE_GROUP)]
    return annual_table(scores, year, group, load_schemes(store), units=units)


def annual_ranking(store, actor: User, year: int, group: str | None = None, *,
                   scores: engine.Scores | None = None) -> pd.DataFrame:
    """The office's 年度排名: every group's annual table (or one group's)."""
    require(_actor(store, actor), "annual.view")
    return annual(store, actor, year, group, scores=scores)


def annual_years(store, actor: User) -> list[int]:
    """The years that have a scored quarter, newest first."""
    require(_actor(store, actor), "annual.view")
    return sorted({int(r[0][:4]) for r in store.rows("SELECT DISTINCT period FROM current_submissions")}, reverse=True)


# -- one unit -----------------------------------------------------------------------------------------
def unit_history(store, actor: User, unit_code: str, *, ranked: pd.DataFrame | None = None) -> pd.DataFrame:
    """One unit over every quarter: total, rank of n, grade, group mean and best."""
    actor = _actor(store, actor)
    require(actor, "unit.view", unit=unit_code)
    history = lifecycle.visible_rows(store, actor, rk.history_of(_ranked(store, ranked), unit_code))
    return _hide_private(history, actor)


def unit_report(store, actor: User, unit_code: str, period: str, *,
                scores: engine.Scores | None = None, ranked: pd.DataFrame | None = None) -> dict:
    """Everything 单位详情 and ``explain`` show of one unit in one quarter.

    The engine's explanation (items, sections, totals) plus ``rank_row`` (its ranking row),
    ``items_table`` (where points were lost, largest first) and ``adjustments`` (its 核定 of every
    quarter, newest first, with item names).
    """
    period = periods.parse_period(period)
    actor = _actor(store, actor)
    require(actor, "unit.view", unit=unit_code)
    if actor.is_unit and lifecycle.unit_scope(store, [period])[period] == lifecycle.SEE_NONE:
        raise PermissionDenied(f"{period} 的考评结果尚未公示({lifecycle.status_of(store, period)}),公示后可查看")
    if scores is None:
        scores = engine.score(store, [periods.previous(period), period])
        ranked = None
    result = scores.explain(unit_code, period)
    if result is None:
        raise NotFound(f"单位「{unit_code}」在 {period} 没有考评结果(未报送数据,或单位代码不存在)")
    if ranked is None:
        ranked = rk.ranked_history(scores)
    mine = rk.unit_rows(ranked, unit_code)
    row = mine[mine["period"] == period].iloc[0]
    names = {i["item_id"]: i["name"] for i in result["items"]}
    adj = adjustments.list_adjustments(store, actor, unit_code=unit_code)
    adj = adj.assign(item_name=adj["item_id"].map(names).fillna(adj["item_id"]),
                     current_label=adj["current"].map({True: "现行", False: "已被修订"}))
    return {**result, "rank_row": row, "items_table": reports.where_to_gain(result), "adjustments": adj}


def adjustment_log(store, actor: User) -> pd.DataFrame:
    """Every 核定 the actor may see, newest first, with item names and 现行/已被修订."""
    from .schemes import load_schemes

    actor = _actor(store, actor)
    adj = adjustments.list_adjustments(store, actor)
    names = {i.id: i.name for s in load_schemes(store) for i in s.items}
    return adj.assign(item_name=adj["item_id"].map(names).fillna(adj["item_id"]),
                      current_label=adj["current"].map({True: "现行", False: "已被修订"}))


# -- trends ----------------------------------------------------------------------------------------------
def group_history(store, actor: User, group: str | None = None, *,
                  ranked: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every quarter's ranking of one group (private columns of others blanked)."""
    actor = _actor(store, actor)
    group = group_of(store, actor, group)
    require(actor, "trends.view", group=group)
    df = _ranked(store, ranked)
    df = lifecycle.visible_rows(store, actor, df[df["group"] == group].reset_index(drop=True))
    return _hide_private(df, actor)


def section_matrix(store, actor: User, period: str, group: str, *,
                   scores: engine.Scores | None = None) -> pd.DataFrame:
    """Units × sections of a group in a period (office only: it shows every unit's details)."""
    require(_actor(store, actor), "trends.units")
    return reports.section_matrix(scores if scores is not None else engine.score(store, [period]), period, group)


def indicator_values(store, actor: User, period: str, group: str, indicator: str) -> pd.DataFrame:
    """One indicator's value for every unit of a group (office only)."""
    require(_actor(store, actor), "trends.units")
    return reports.indicator_values(store, period, group, indicator)


def section_compare(store, actor: User, unit_code: str, period: str, *,
                    scores: engine.Scores | None = None) -> pd.DataFrame:
    """One unit's section points against its group's mean and best."""
    require(_actor(store, actor), "unit.view", unit=unit_code)
    return reports.section_compare(scores if scores is not None else engine.score(store, [period]),
                                   unit_code, period)


# -- accounts --------------------------------------------------------------------------------------------
def users(store, actor: User) -> pd.DataFrame:
    """Every account (office only), ``locked`` computed against the clock now."""
    return accounts.list_users(store, actor)


def item_status_label(status: str) -> str:
    return ITEM_STATUS.get(status, status)


def may(actor: User, action: str, unit: str | None = None, group: str | None = None) -> bool:
    """For front ends deciding what to offer (the library still checks when it is used)."""
    return can(actor, action, unit, group)
