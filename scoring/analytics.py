"""Analytics over the scored results: how firm a rank is, what fixing items would bring, why a
total and a rank moved, which figures look odd, and how honest the self-assessments are.

- :func:`robustness`: the rank of each unit under 1,000 seeded perturbations of what is judgement,
  not data (every 核定/评定 item within ±25 % of its max, each section's weight within ±20 %),
  as a 5th–95th percentile rank interval and numbered bands of overlapping intervals.
- :func:`whatif` and :func:`where_to_gain`: a unit's total, rank and grade with some items at
  full points (peers unchanged), recomputed with the scheme's aggregation exactly.
- :func:`attribution`: a total's change split by section, bonus, penalty and veto, and a rank's
  change split into the unit's own score and its peers'.
- :func:`anomalies`: flags for the office to check (not rejections): jumps against a unit's own
  history, near-identical rows of two units, every item at full marks, self scores far above
  the verified total.
- :func:`self_accuracy`: per unit over the quarters, the mean over-claim of the self score.

Every public function takes the acting user and asks :mod:`scoring.permissions` first; the
``*_of`` functions are the pure computations over an :class:`engine.Scores` (tests, benchmark).
Everything is whole-column numpy: no Python loop per unit.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import accounts, engine, periods, views
from .store import current_values_sql
from . import ranking as rk
from .errors import InputError, NotFound
from .memo import memoised
from .permissions import User, require
from .rules import fmt
from .schemes import Scheme

DRAWS = 1000                 # perturbations per robustness run
SEED = 2025                  # the default seed: the same data give the same intervals
JUDGEMENT_SPREAD = 0.25      # a judged item moves uniformly within ±25 % of its max
WEIGHT_SPREAD = 0.20         # a section's weight moves uniformly within ±20 %
PERCENTILES = (5, 95)        # the rank interval
MAX_DRAWS = 100_000

JUMP_DEVIATIONS = 3.0        # robust deviations (1.4826 × MAD) from the unit's own median
JUMP_HISTORY = 4             # past quarters needed before a jump is judged
JUMP_FLOOR = 0.05            # the robust deviation is at least 5 % of the median (and 1 for counts, rates)
COPY_SHARE = 0.90            # share of shared reported indicators with identical values
COPY_MIN_SHARED = 5          # fewer shared indicators than this say nothing
SELF_GAP = rk.SELF_GAP_FLAG  # 自评分 above the verified total by at least this

ANOMALY_COLUMNS = ["unit_code", "indicator", "kind", "detail"]    # SPEC's keys, in this order
ANOMALY_KINDS = {"self_gap": "自评偏高", "all_max": "全项满分", "copy": "疑似雷同", "jump": "数值突变"}
WHATIF_KEYS = ["unit_code", "period", "fixed", "total", "rank", "grade", "gain"]
ROBUSTNESS_KEYS = ["unit_code", "rank", "rank_low", "rank_high", "band"]

_EPS = 1e-9


# -- one (period, group) as matrices ------------------------------------------------------------------
@dataclass
class _Rows:
    """Every scored unit of one (period, group), as the engine left them (one scheme)."""

    scheme: Scheme
    keys: pd.DataFrame          # unit_code, unit_name, group, period, self_score
    points: np.ndarray          # rows × items, final (after 核定)
    status: np.ndarray          # rows × items, engine status codes
    cols: dict                  # indicator -> values
    na: dict                    # indicator -> reported 不适用
    cap: np.ndarray             # rows: the lowest cap of the vetoes that fired (inf: none fired)
    total: np.ndarray           # rows: the engine's total

    def index(self, unit_code: str) -> int:
        hit = np.flatnonzero(self.keys["unit_code"].to_numpy() == unit_code)
        if not len(hit):
            raise NotFound(f"单位「{unit_code}」在 {self.keys['period'].iat[0]} 没有考评结果")
        return int(hit[0])


def _blocks_of(scores: engine.Scores, period: str, group: str) -> list[tuple[engine.Block, np.ndarray]]:
    """The blocks holding rows of (period, group), and those rows (a group may span blocks)."""
    parts = []
    for b in scores.blocks:
        mask = (b.keys["period"].to_numpy() == period) & (b.keys["group"].to_numpy() == group)
        if mask.any():
            parts.append((b, np.flatnonzero(mask)))
    return parts


def _gather(scores: engine.Scores, period: str, group: str) -> _Rows | None:
    """The rows of (period, group) from every block that holds some (a group may span blocks).
    Memoised on the blocks: callers read the arrays and copy what they change."""
    parts = _blocks_of(scores, period, group)
    if not parts:
        return None
    return memoised([b for b, _ in parts], ("rows", period, group), lambda: _gathered(scores, parts, period, group))


def _gathered(scores: engine.Scores, parts: list, period: str, group: str) -> _Rows:
    scheme = parts[0][0].scheme
    if any(b.scheme.id != scheme.id for b, _ in parts):   # SPEC: one scheme per (group, period)
        raise InputError(f"{group} 在 {period} 有多个考评表的结果,无法比较")
    keys = pd.concat([b.keys.iloc[rows] for b, rows in parts], ignore_index=True)
    cols = {c: np.concatenate([b.cols[c][rows] for b, rows in parts]) for c in parts[0][0].cols}
    na = {c: np.concatenate([b.na[c][rows] for b, rows in parts]) for c in parts[0][0].na}
    cap = np.full(len(keys), np.inf)
    for v in scheme.vetoes:
        fires = v.fires(cols[v.indicator])
        cap = np.where(fires, np.minimum(cap, v.cap if v.cap is not None else 0.0), cap)
    units = scores.units
    totals = units[(units["period"] == period) & (units["group"] == group)].set_index("unit_code")["total"]
    return _Rows(scheme, keys[["unit_code", "unit_name", "group", "period", "self_score"]],
                 np.concatenate([b.points[rows] for b, rows in parts]),
                 np.concatenate([b.status[rows] for b, rows in parts]), cols, na, cap,
                 totals.reindex(keys["unit_code"]).to_numpy(dtype=float))


def _rows_of(scores: engine.Scores, unit_code: str, period: str) -> tuple[_Rows, int]:
    units = scores.units
    hit = units[(units["unit_code"] == unit_code) & (units["period"] == period)]
    if hit.empty:
        raise NotFound(f"单位「{unit_code}」在 {period} 没有考评结果(未报送数据,或单位代码不存在)")
    rows = _gather(scores, period, hit["group"].iat[0])
    return rows, rows.index(unit_code)


# -- the scheme's aggregation (SPEC "Aggregation"), on whole columns ----------------------------------
def _finish(s: Scheme, base, bonus_sum, penalty, cap) -> np.ndarray:
    """Steps 3–6: penalties (never below 0), bonus (capped, gated), rounding, veto caps."""
    return np.minimum(engine.final_total(base, penalty, engine.capped_bonus(s, base, bonus_sum)), cap)


def totals(s: Scheme, points: np.ndarray, status: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """The totals of rows × items ``points`` with the scheme's aggregation, exactly as the engine
    aggregates (a test checks it against the engine on random data)."""
    sums, caps = engine.section_sums(s, points, status)
    base = engine.rescaled_base(s, np.clip(sums, 0.0, caps).sum(axis=1), caps.sum(axis=1))
    n_sec, n_bonus = engine.item_layout(s)
    return _finish(s, base, points[:, n_sec:n_sec + n_bonus].sum(axis=1), points[:, n_sec + n_bonus:].sum(axis=1), cap)


def _grade(s: Scheme, total: float, vetoed: bool) -> str:
    return s.lowest_grade if vetoed else str(s.grade_of(np.array([total]))[0])


def _cents(x) -> np.ndarray:
    return np.rint(np.asarray(x, dtype=float) * 100).astype(np.int64)


def _rank_among(total: float, peers: np.ndarray) -> int:
    """The competition rank of ``total`` among ``peers`` (1 + how many are higher, to the cent)."""
    return 1 + int((_cents(peers) > _cents(total)).sum())


# -- 1. rank robustness ---------------------------------------------------------------------------------
def _perturbed_ranks(rows: _Rows, draws: int, seed: int) -> np.ndarray:
    """Draws × units: each unit's competition rank under each perturbation.

    Judged cells (status 已核定: 考评组评定 and every 核定, of items with a max) move to
    clip(points + U(−25 %, +25 %) × max, 0, max); section weights w ~ U(0.8, 1.2), rescaled so that
    Σ w·section max = total_max, multiply the sections' (capped) points and caps. The rest of the
    aggregation is the scheme's (N/A rescaling, penalties, bonus, rounding, vetoes).
    """
    s, n = rows.scheme, len(rows.keys)
    rng = np.random.default_rng(seed)
    sec_max = np.array([x.max for x in s.sections])
    w = rng.uniform(1 - WEIGHT_SPREAD, 1 + WEIGHT_SPREAD, size=(draws, len(sec_max)))
    w *= s.total_max / (w @ sec_max)[:, None]

    sums, caps = engine.section_sums(s, rows.points, rows.status)
    n_sec, n_bonus = engine.item_layout(s)
    bonus_sum = rows.points[:, n_sec:n_sec + n_bonus].sum(axis=1)
    penalty = rows.points[:, n_sec + n_bonus:].sum(axis=1)
    where = [k for k, sec in enumerate(s.sections) for _ in sec.items] + [-1] * n_bonus
    moved_sums: dict[int, np.ndarray] = {}         # section (-1: bonus) -> draws × units, items summed
    for j, item in enumerate(s.items[:n_sec + n_bonus]):          # penalties have no max: not judged
        judged = np.flatnonzero(rows.status[:, j] == engine.ADJUSTED)
        if not len(judged) or not item.max:
            continue
        p = rows.points[judged, j]
        moved = rng.uniform(-JUDGEMENT_SPREAD * item.max, JUDGEMENT_SPREAD * item.max, (draws, len(judged)))
        moved += p
        np.clip(moved, 0.0, item.max, out=moved)
        moved -= p
        k = where[j]
        if k not in moved_sums:
            moved_sums[k] = np.empty((draws, n))
            moved_sums[k][:] = bonus_sum if k < 0 else sums[:, k]
        if len(judged) == n:
            moved_sums[k] += moved
        else:
            moved_sums[k][:, judged] += moved

    fixed = [k for k in range(len(sec_max)) if k not in moved_sums]
    capped = np.clip(sums, 0.0, caps)
    raw = w[:, fixed] @ capped[:, fixed].T                      # draws × units
    for k, moved in moved_sums.items():
        if k >= 0:
            np.clip(moved, 0.0, caps[:, k], out=moved)
            moved *= w[:, [k]]
            raw += moved
    # N/A rescaling only where a unit has 不适用 items (elsewhere Σ w·cap = total_max exactly)
    shrunk = np.flatnonzero(caps.sum(axis=1) < s.total_max - _EPS)
    base = raw
    if len(shrunk):
        base[:, shrunk] = engine.rescaled_base(s, raw[:, shrunk], w @ caps[shrunk].T)
    total = _finish(s, base, moved_sums.get(-1, bonus_sum), penalty, rows.cap)
    return _competition_ranks(_cents(total))


def _competition_ranks(cents: np.ndarray) -> np.ndarray:
    """Rank 1, 2, 2, 4 of each row of a draws × units matrix of integer cents (higher is better):
    one sort per row; a unit's rank is 1 + the units above its group of equal values."""
    d, n = cents.shape
    order = np.argsort(cents, axis=1)
    ordered = np.take_along_axis(cents, order, axis=1)
    last = np.ones((d, n), dtype=bool)              # the last of a run of equal values
    last[:, :-1] = ordered[:, :-1] != ordered[:, 1:]
    end = np.where(last, np.arange(n, dtype=np.int32), np.int32(n))
    end = np.minimum.accumulate(end[:, ::-1], axis=1)[:, ::-1]   # the end of each value's run
    ranks = np.empty((d, n), dtype=np.int32)
    np.put_along_axis(ranks, order, (n - end).astype(np.int32), axis=1)
    return ranks


def _bands(lo: np.ndarray, hi: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Units whose [lo, hi] intervals overlap, directly or through a chain, share a band: 1, 2, …"""
    order = np.lexsort((rank, lo))
    reach = np.maximum.accumulate(hi[order])
    new = np.r_[True, lo[order][1:] > reach[:-1]]
    band = np.empty(len(lo), dtype=np.int64)
    band[order] = np.cumsum(new)
    return band


def robustness_of(scores: engine.Scores, period: str, group: str, draws: int = DRAWS,
                  seed: int = SEED) -> pd.DataFrame:
    """Every unit of (period, group): ``unit_code, unit_name, group, rank, rank_low, rank_high, band``.

    ``rank`` is the published rank; [rank_low, rank_high] the 5th–95th percentile rank over the
    draws, widened where needed to hold the published rank (the unperturbed result is always a
    possible outcome). Sorted by rank. Memoised on the blocks (:func:`memoised`).
    """
    blocks = [b for b, _ in _blocks_of(scores, period, group)]
    return memoised(blocks, ("robustness", period, group, draws, seed),
                    lambda: _robustness(scores, period, group, draws, seed))


def _robustness(scores: engine.Scores, period: str, group: str, draws: int, seed: int) -> pd.DataFrame:
    rows = _gather(scores, period, group)
    columns = ["unit_code", "unit_name", "group", "rank", "rank_low", "rank_high", "band"]
    if rows is None:
        return pd.DataFrame(columns=columns)
    cents = _cents(rows.total)
    rank = _competition_ranks(cents[None, :])[0]
    if len(cents) < 2:
        lo = hi = rank.astype(np.int64)
    else:
        ranks = _perturbed_ranks(rows, draws, seed)
        k = [max(int(np.ceil(q / 100 * draws)) - 1, 0) for q in PERCENTILES]   # inverted CDF
        part = np.partition(ranks, k, axis=0)
        lo = np.minimum(part[k[0]], rank)
        hi = np.maximum(part[k[1]], rank)
    out = rows.keys[["unit_code", "unit_name", "group"]].assign(
        rank=rank.astype(int), rank_low=lo.astype(int), rank_high=hi.astype(int),
        band=_bands(lo, hi, rank).astype(int))
    out = out.sort_values(["rank", "unit_code"], ignore_index=True)
    out.attrs.update(draws=draws, seed=seed, period=period)
    return out


def robustness(store, actor: User, period: str, group: str | None = None, draws: int = DRAWS,
               seed: int = SEED, *, scores: engine.Scores | None = None) -> pd.DataFrame:
    """The rank intervals of the ranking the actor may see (a unit account: its group's).

    The perturbation runs over every unit of the group; the rows returned are those of
    ``views.ranking`` for the actor (what it may see of that quarter).
    """
    period = periods.parse_period(period)
    actor = accounts.require_active(store, require(actor, "ranking.view", group=group))
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or not 1 <= draws <= MAX_DRAWS:
        raise InputError(f"扰动次数应为 1–{MAX_DRAWS:,} 的整数,收到「{draws}」")
    scores = scores if scores is not None else engine.score(store, [period])
    visible = views.ranking(store, actor, period, group, ranked=ranked_period(scores, period))
    frames = [robustness_of(scores, period, g, draws, int(seed)) for g in dict.fromkeys(visible["group"])]
    if not frames:
        return pd.DataFrame(columns=["unit_code", "unit_name", "group", "rank", "rank_low", "rank_high", "band"])
    out = pd.concat(frames, ignore_index=True)
    shown = set(zip(visible["group"], visible["unit_code"]))
    out = out[[(g, u) in shown for g, u in zip(out["group"], out["unit_code"])]].reset_index(drop=True)
    out.attrs.update(draws=draws, seed=int(seed), period=period)
    return out


def robustness_records(df: pd.DataFrame) -> list[dict]:
    """SPEC's rows: ``unit_code, rank, rank_low, rank_high, band`` (integers)."""
    return [{"unit_code": r.unit_code, "rank": int(r.rank), "rank_low": int(r.rank_low),
             "rank_high": int(r.rank_high), "band": int(r.band)} for r in df.itertuples()]


def method_text(draws: int = DRAWS) -> str:
    return (f"评定项(考评组评定和核定的得分)在其满分的±{JUDGEMENT_SPREAD:.0%}范围内、各部分权重在"
            f"±{WEIGHT_SPREAD:.0%}范围内随机变动{draws:,}次")


def robustness_sentence(df: pd.DataFrame) -> str:
    """One sentence for the 通报: how far apart ranks must be before they say something."""
    if df.empty:
        return ""
    width = int(np.ceil(np.median(df["rank_high"] - df["rank_low"])))
    draws = int(df.attrs.get("draws", DRAWS))
    if width == 0:
        return f"稳健性检验({method_text(draws)}):名次基本不变,排名稳健。"
    return (f"稳健性检验({method_text(draws)}):名次相差在{width}以内的单位得分差异主要来自评定项,"
            f"不宜据此区分高下。")


def unit_sentence(df: pd.DataFrame, unit_code: str, limit: int = 10) -> str:
    """One unit's interval in words: ``第3–7名之间,与以下单位无显著差异:…``."""
    mine = df[df["unit_code"] == unit_code]
    if mine.empty:
        return ""
    r = mine.iloc[0]
    others = df[(df["group"] == r["group"]) & (df["unit_code"] != unit_code)
                & (df["rank_low"] <= r["rank_high"]) & (df["rank_high"] >= r["rank_low"])]
    where = f"第{int(r['rank_low'])}名" if r["rank_low"] == r["rank_high"] else \
        f"第{int(r['rank_low'])}–{int(r['rank_high'])}名之间"
    if others.empty:
        return f"{where},与其他单位差异显著"
    names = others.sort_values("rank")["unit_name"].tolist()
    more = f"等{len(names)}个单位" if len(names) > limit else ""
    return f"{where},与以下单位无显著差异:{'、'.join(names[:limit])}{more}"


def ranked_period(scores: engine.Scores, period: str) -> pd.DataFrame:
    """``ranking.ranked_history`` of one period only (what ``views.ranking`` filters), memoised on
    that period's blocks (the same whichever other quarters ``scores`` holds)."""
    def compute():
        return rk.with_changes(rk.rank_units(scores.units[scores.units["period"] == period]))

    blocks = [b for b in scores.blocks if (b.keys["period"].to_numpy() == period).any()]
    return memoised(blocks, ("ranked", period), compute)


# -- 2. what-if and where to gain -------------------------------------------------------------------------
def _fixed(s: Scheme, points: np.ndarray, status: np.ndarray, j: int) -> None:
    """Put item ``j`` at full points in place (a penalty at no deduction; a 不适用 item stays out)."""
    item = s.items[j]
    applies = status[:, j] != engine.NA
    points[applies, j] = 0.0 if item.kind == "penalty" else item.max


def _item_columns(s: Scheme, fix: list[str]) -> list[int]:
    ids = {it.id: j for j, it in enumerate(s.items)}
    by_name = {it.name: j for j, it in enumerate(s.items)}
    vetoes = {v.id: v for v in s.vetoes} | {v.name: v for v in s.vetoes}
    out, problems = [], []
    for x in fix:
        if x in ids or x in by_name:
            out.append(ids.get(x, by_name.get(x)))
        elif x in vetoes:
            v = vetoes[x]
            problems.append(f"「{x}」是单项否决项({v.name}),不是考评条目:否决由指标「"
                            f"{s.indicators[v.indicator].name if v.indicator in s.indicators else v.indicator}」"
                            "触发,补分不能改变它,需更正该指标")
        else:
            problems.append(f"考评表 {s.id} 中没有条目「{x}」")
    if problems:
        raise InputError(";".join(problems))
    return list(dict.fromkeys(out))


def whatif_of(scores: engine.Scores, unit_code: str, period: str, fix: list[str]) -> dict:
    """``{unit_code, period, fixed, total, rank, grade, gain}`` (+ ``note``): those items at full
    points, every peer unchanged, aggregated with the scheme's rules."""
    rows, i = _rows_of(scores, unit_code, period)
    s = rows.scheme
    js = _item_columns(s, list(fix))
    points, status = rows.points[[i]].copy(), rows.status[[i]].copy()
    for j in js:
        _fixed(s, points, status, j)
    total = float(totals(s, points, status, rows.cap[[i]])[0])
    vetoed = bool(np.isfinite(rows.cap[i]))
    peers = np.delete(rows.total, i)
    notes = [f"「{s.items[j].name}」不适用,不计分" for j in js if status[0, j] == engine.NA]
    if vetoed:
        notes.append(f"单项否决已触发,总分不超过{fmt(rows.cap[i])}分,补分不能改变")
    return {"unit_code": unit_code, "period": period, "fixed": [s.items[j].id for j in js],
            "total": total, "rank": _rank_among(total, peers), "grade": _grade(s, total, vetoed),
            "gain": float(engine.round2(total - rows.total[i])), "note": ";".join(notes) or None}


def gains_of(scores: engine.Scores, unit_code: str, period: str) -> pd.DataFrame:
    """Every item where the unit lost points, with the real gain in total of fixing it alone
    (section caps, N/A rescaling, the bonus cap and vetoes taken into account); penalties and a
    fired veto as what they cost. Largest gain first.

    Columns: ``item_id, name, kind (item|bonus|penalty|veto), section, status, points, max, lost,
    gain, total`` (``total``: the total with that item fixed).
    """
    rows, i = _rows_of(scores, unit_code, period)
    s = rows.scheme
    n_sec, _ = engine.item_layout(s)
    sec_of = {it.id: sec.name for sec in s.sections for it in sec.items}
    p, st = rows.points[i], rows.status[i]
    maxes = np.array([np.nan if it.max is None else it.max for it in s.items])
    kinds = np.array([it.kind for it in s.items])
    lost = np.where(kinds == "penalty", p, maxes - p)
    candidates = np.flatnonzero((lost > _EPS) & (st != engine.NA))
    trial = np.repeat(rows.points[[i]], len(candidates), axis=0)
    trial_status = np.repeat(rows.status[[i]], len(candidates), axis=0)
    for r, j in enumerate(candidates):
        _fixed(s, trial[r:r + 1], trial_status[r:r + 1], j)
    fixed_totals = totals(s, trial, trial_status, np.repeat(rows.cap[[i]], len(candidates)))
    frame = pd.DataFrame({
        "item_id": [s.items[j].id for j in candidates], "name": [s.items[j].name for j in candidates],
        "kind": kinds[candidates], "section": [sec_of.get(s.items[j].id, "加分项" if kinds[j] == "bonus" else "重大扣分项")
                                               for j in candidates],
        "status": engine.STATUS[st[candidates]], "points": np.where(kinds[candidates] == "penalty", -p[candidates], p[candidates]),
        "max": maxes[candidates], "lost": lost[candidates], "total": fixed_totals})
    if np.isfinite(rows.cap[i]):
        free = float(totals(s, rows.points[[i]], rows.status[[i]], np.array([np.inf]))[0])
        fired = [v for v in s.vetoes if bool(v.fires(rows.cols[v.indicator][[i]])[0])]
        frame = pd.concat([frame, pd.DataFrame([{
            "item_id": fired[0].id if fired else "veto", "name": "、".join(v.name for v in fired) or "单项否决",
            "kind": "veto", "section": "单项否决", "status": None, "points": np.nan, "max": np.nan,
            "lost": free - rows.total[i], "total": free}])], ignore_index=True)
    frame["gain"] = engine.round2(frame["total"].to_numpy(dtype=float) - rows.total[i])
    frame["lost"] = engine.round2(frame["lost"].to_numpy(dtype=float))
    return frame.sort_values(["gain", "lost"], ascending=False, kind="stable", ignore_index=True)[
        ["item_id", "name", "kind", "section", "status", "points", "max", "lost", "gain", "total"]]


def _unit_scores(store, actor: User, unit_code: str, period: str, scores, extra=()) -> engine.Scores:
    """The scores of ``period`` (and ``extra`` periods) after checking the actor may see the unit's
    result of that quarter (a unit account: its own unit, as far as the read layer shows it)."""
    actor = accounts.require_active(store, require(actor, "unit.view", unit=unit_code))
    scores = scores if scores is not None else engine.score(store, [*extra, period])
    if not actor.is_office:
        wanted = {period, *extra}
        ranked = rk.with_changes(rk.rank_units(scores.units[scores.units["period"].isin(wanted)]))
        seen = views.unit_history(store, actor, unit_code, ranked=ranked)
        if period not in set(seen["period"]):
            raise NotFound(f"单位「{unit_code}」在 {period} 没有可查看的考评结果")
    return scores


def whatif(store, actor: User, unit_code: str, period: str, fix: list[str], *,
           scores: engine.Scores | None = None) -> dict:
    """What the unit's total, rank and grade would be with ``fix`` (item ids or names) at full
    points, peers unchanged. Keys ``unit_code, period, fixed, total, rank, grade, gain`` and
    ``note`` (不适用 items named, a fired veto that caps the total, or None)."""
    period = periods.parse_period(period)
    fix = [x.strip() for x in fix if x and x.strip()]       # none: the result as it is
    return whatif_of(_unit_scores(store, actor, unit_code, period, scores), unit_code, period, fix)


def where_to_gain(store, actor: User, unit_code: str, period: str, *,
                  scores: engine.Scores | None = None) -> pd.DataFrame:
    """:func:`gains_of` for a unit the actor may see."""
    period = periods.parse_period(period)
    return gains_of(_unit_scores(store, actor, unit_code, period, scores), unit_code, period)


# -- 3. attribution of a change ----------------------------------------------------------------------------
def _parts(scores: engine.Scores, unit_code: str, period: str) -> dict:
    """A result as additive parts: each section's points on the 100-point scale (after N/A
    rescaling), bonus, the penalty actually taken (not below 0), the rounding and the veto."""
    rows, i = _rows_of(scores, unit_code, period)
    s = rows.scheme
    unit = scores.units[(scores.units["unit_code"] == unit_code) & (scores.units["period"] == period)].iloc[0]
    sums, caps = engine.section_sums(s, rows.points[[i]], rows.status[[i]])
    sec = np.clip(sums, 0.0, caps)[0]
    applicable = float(caps.sum())
    scale = 1.0 if applicable >= s.total_max - _EPS else (s.total_max / applicable if applicable > 0 else 0.0)
    base, penalty, bonus = float(unit["base"]), float(unit["penalty"]), float(unit["bonus"])
    kept = max(base - penalty, 0.0)
    rounded = float(engine.round2(kept + bonus))
    total = float(rows.total[i])
    items = {it.id: (it.name, (-1.0 if it.kind == "penalty" else 1.0) * float(rows.points[i, j]))
             for j, it in enumerate(s.items)}
    return {"scheme": s, "group": unit["group"], "unit_name": unit["unit_name"], "total": total,
            "sections": {x.id: (x.name, float(sec[k] * scale)) for k, x in enumerate(s.sections)},
            "bonus": bonus, "penalty": base - kept, "rounding": rounded - (kept + bonus),
            "veto": total - rounded, "veto_name": unit["veto_name"] if isinstance(unit["veto_name"], str) else None,
            "items": items, "rows": rows}


def attribution_of(scores: engine.Scores, unit_code: str, period: str) -> dict:
    """The change of a unit's total and rank against the previous quarter, in parts that add up.

    ``parts``: ``[{part, name, previous, current, change}]`` for every section (by id; a section
    only one quarter has counts 0 in the other), ``bonus``, ``penalty`` (the points it took,
    negative), ``veto`` and ``rounding`` (四舍五入; it also takes the cents of showing every part to
    2 decimals), so the changes add up to ``change`` exactly. The rank's change is split into
    ``rank_own`` (the new total ranked among the previous quarter's peers, against the previous
    rank) and ``rank_peers`` (the rest). When the scheme changed between the quarters,
    ``scheme_changed`` is true and ``items_added`` / ``items_removed`` say which items and the
    unit's points on them.
    """
    prev = periods.previous(period)
    now = _parts(scores, unit_code, period)
    units = scores.units
    if units[(units["unit_code"] == unit_code) & (units["period"] == prev)].empty:
        raise NotFound(f"单位「{unit_code}」在 {prev} 没有考评结果,无法与上季度比较")
    was = _parts(scores, unit_code, prev)

    parts = []
    for sec_id in dict.fromkeys([*now["sections"], *was["sections"]]):
        name = (now["sections"].get(sec_id) or was["sections"][sec_id])[0]
        parts.append((sec_id, name, was["sections"].get(sec_id, ("", 0.0))[1], now["sections"].get(sec_id, ("", 0.0))[1]))
    parts += [("bonus", "加分", was["bonus"], now["bonus"]),
              ("penalty", "重大扣分", -was["penalty"], -now["penalty"]),
              ("veto", "单项否决", was["veto"], now["veto"])]
    change = float(engine.round2(now["total"] - was["total"]))
    out_parts = [{"part": p, "name": n, "previous": float(engine.round2(a)), "current": float(engine.round2(b)),
                  "change": float(engine.round2(b - a))} for p, n, a, b in parts]
    shown = sum(p["change"] for p in out_parts)
    out_parts.append({"part": "rounding", "name": "四舍五入", "previous": float(engine.round2(was["rounding"])),
                      "current": float(engine.round2(now["rounding"])), "change": float(engine.round2(change - shown))})

    # the rank: the new total among last quarter's peers, then the peers' own moves
    old_peers = was["rows"].total[was["rows"].keys["unit_code"].to_numpy() != unit_code]
    new_peers = now["rows"].total[now["rows"].keys["unit_code"].to_numpy() != unit_code]
    old_rank = _rank_among(was["total"], old_peers)
    new_rank = _rank_among(now["total"], new_peers)
    own_rank = _rank_among(now["total"], old_peers)
    rank_change = old_rank - new_rank

    s_new, s_old = now["scheme"], was["scheme"]
    added = [i for i in now["items"] if i not in was["items"]]
    removed = [i for i in was["items"] if i not in now["items"]]
    changed = s_new.id != s_old.id or bool(added or removed) or s_new.sha256 != s_old.sha256
    result = {
        "unit_code": unit_code, "unit_name": now["unit_name"], "period": period, "previous_period": prev,
        "total": now["total"], "previous_total": was["total"], "change": change, "parts": out_parts,
        "rank": new_rank, "previous_rank": old_rank, "rank_change": rank_change,
        "rank_own": old_rank - own_rank, "rank_peers": rank_change - (old_rank - own_rank),
        "group": now["group"], "previous_group": was["group"],
        "scheme": s_new.id, "previous_scheme": s_old.id, "scheme_changed": changed,
        "items_added": [{"item_id": i, "name": now["items"][i][0], "points": float(engine.round2(now["items"][i][1]))}
                        for i in added],
        "items_removed": [{"item_id": i, "name": was["items"][i][0], "points": float(engine.round2(was["items"][i][1]))}
                          for i in removed],
    }
    result["added_points"] = float(engine.round2(sum(x["points"] for x in result["items_added"])))
    result["removed_points"] = float(engine.round2(sum(x["points"] for x in result["items_removed"])))
    result["text"] = _attribution_text(result)
    return result


def _signed(x: float, unit: str = "分") -> str:
    return f"+{fmt(x)}{unit}" if x > 0 else f"{fmt(x)}{unit}" if x < 0 else f"0{unit}"


def _attribution_text(r: dict) -> str:
    moved = sorted((p for p in r["parts"] if abs(p["change"]) >= 0.005 and p["part"] != "rounding"),
                   key=lambda p: -abs(p["change"]))
    why = "、".join(f"{p['name']}{_signed(p['change'])}" for p in moved[:4]) or "各部分均无变化"
    text = f"总分由{fmt(r['previous_total'])}分变为{fmt(r['total'])}分({_signed(r['change'])}),主要来自{why}。"
    if r["rank_change"] == 0 and r["rank_own"] == 0:
        text += f"名次保持第{r['rank']}名。"
    else:
        verb = f"上升{r['rank_change']}位" if r["rank_change"] > 0 else f"下降{-r['rank_change']}位" \
            if r["rank_change"] < 0 else "不变"
        text += (f"名次由第{r['previous_rank']}名变为第{r['rank']}名({verb}):本单位得分变化带来"
                 f"{_signed(r['rank_own'], '位')},其他单位得分变化带来{_signed(r['rank_peers'], '位')}。")
    if r["scheme_changed"]:
        text += (f"两季度适用的考评表不同({r['previous_scheme']} → {r['scheme']}):新增{len(r['items_added'])}个条目,"
                 f"本单位在其上得{fmt(r['added_points'])}分;删去{len(r['items_removed'])}个条目,"
                 f"本单位上季度在其上得{fmt(r['removed_points'])}分。")
    return text


def attribution(store, actor: User, unit_code: str, period: str, *,
                scores: engine.Scores | None = None) -> dict:
    """:func:`attribution_of` for a unit the actor may see (both quarters)."""
    period = periods.parse_period(period)
    prev = periods.previous(period)
    scores = _unit_scores(store, actor, unit_code, period, scores, extra=(prev,))
    return attribution_of(scores, unit_code, period)


# -- 4. anomaly flags -----------------------------------------------------------------------------------------
# each unit's history of each figure before a quarter: its median, the number of quarters and the
# deviations from the median (the expensive part: every earlier quarter's values)
_HISTORY_SQL = f"""
WITH v AS (SELECT unit_code, indicator, value FROM ({current_values_sql("AND v.period < ?")}) c
           WHERE NOT is_na AND value IS NOT NULL),
past AS (SELECT unit_code, indicator, median(value) AS med, count(*) AS n FROM v
         GROUP BY unit_code, indicator HAVING count(*) >= ?)
SELECT p.unit_code, p.indicator, p.med, p.n, median(abs(v.value - p.med)) AS mad,
       avg(abs(v.value - p.med)) AS mean_ad
FROM v JOIN past p USING (unit_code, indicator) GROUP BY p.unit_code, p.indicator, p.med, p.n"""
# one group's figures of the quarter against that history: only those beyond JUMP_DEVIATIONS come
# back (the scale is :func:`_jumps`'s, computed in the same double arithmetic as numpy would)
_CURRENT_SQL = f"""
SELECT c.unit_code, c.indicator, c.value, s.med, s.n, s.mad, s.mean_ad
FROM ({current_values_sql("AND v.period = ? AND v.unit_code IN (SELECT unit_code FROM units WHERE grp = ?)")}) c
JOIN {{history}} s USING (unit_code, indicator)
JOIN {{steps}} k USING (indicator)
WHERE NOT c.is_na AND c.value IS NOT NULL AND CASE
    WHEN greatest(CASE WHEN s.mad > 0 THEN 1.4826 * s.mad ELSE 1.2533 * s.mean_ad END, k.step, ? * abs(s.med)) > 0
    THEN abs(c.value - s.med) / greatest(CASE WHEN s.mad > 0 THEN 1.4826 * s.mad ELSE 1.2533 * s.mean_ad END,
                                         k.step, ? * abs(s.med)) > ?
    ELSE abs(c.value - s.med) > ? END"""
_HISTORIES: OrderedDict = OrderedDict()     # (database, period) -> (what it was computed from, frame)
_HISTORIES_KEPT = 32
_HISTORIES_LOCK = threading.Lock()


def _from_data(store, key: tuple, reads, compute):
    """``compute()``, kept while the stored data it ``reads`` (a test of a signature's key
    ``(period, group)``, :meth:`Store.signatures`) is unchanged: the last few results."""
    version = hash(tuple(sorted(((p or "", g or ""), h) for (p, g), h in store.signatures().items() if reads(p, g))))
    key = (store.path, *key)
    with _HISTORIES_LOCK:
        found = _HISTORIES.get(key)
        if found is not None and found[0] == version:
            _HISTORIES.move_to_end(key)
            return found[1]
    value = compute()
    with _HISTORIES_LOCK:
        _HISTORIES[key] = (version, value)
        _HISTORIES.move_to_end(key)
        while len(_HISTORIES) > _HISTORIES_KEPT:
            _HISTORIES.popitem(last=False)
    return value


def _history(store, period: str):
    """:data:`_HISTORY_SQL` of ``period``, kept while no earlier quarter changes."""
    def compute():
        with store.cursor() as cur:
            return cur.sql(_HISTORY_SQL, params=[period, JUMP_HISTORY]).to_arrow_table()

    return _from_data(store, ("history", period), lambda p, g: p is None or p < period, compute)


def _jumps(store, period: str, group: str, units: pd.DataFrame, names: dict, kinds: dict) -> pd.DataFrame:
    """A figure more than 3 robust deviations from the unit's own median of ≥ 4 earlier quarters.

    The robust deviation is 1.4826 × MAD (1.2533 × the mean absolute deviation where the MAD is
    0), but never below the figure's resolution: 1 for counts and rates, and 5 % of the median
    (so a count going from 0 to 1, or a score from 75 to 80, is not a jump). Yes/no indicators
    are left out. One group's units at a time, each kept while its data and the history are.
    """
    def compute():
        df = _group_jumps(store, period, group, names, kinds)
        scored = set(units.loc[units["group"] == group, "unit_code"].tolist())
        df = df[[u in scored for u in df["unit_code"].tolist()]]
        return df.reset_index(drop=True) if not df.empty else pd.DataFrame(columns=ANOMALY_COLUMNS)

    return _from_data(store, ("jumps", period, group, tuple(names.items()), tuple(kinds.items())),
                      lambda p, g: p is None or p < period or (p == period and g in (None, group)), compute).copy()


def _group_jumps(store, period: str, group: str, names: dict, kinds: dict) -> pd.DataFrame:
    history = _history(store, period)
    steps = pd.DataFrame({"indicator": [c for c in names if kinds[c] != "bool"]})
    steps["step"] = steps["indicator"].map(kinds).isin(["count", "rate"]).astype(float)
    with store.cursor() as cur:
        tags = {"history": f"jump_history_{id(cur)}", "steps": f"jump_steps_{id(cur)}"}
        cur.register(tags["history"], history)
        cur.register(tags["steps"], steps)
        try:
            df = cur.execute(_CURRENT_SQL.format(**tags),
                             [period, group, JUMP_FLOOR, JUMP_FLOOR, JUMP_DEVIATIONS, _EPS]).df()
        finally:
            for tag in tags.values():
                cur.unregister(tag)
    if df.empty:
        return pd.DataFrame(columns=ANOMALY_COLUMNS)
    value, med = df["value"].to_numpy(dtype=float), df["med"].to_numpy(dtype=float)
    mad = df["mad"].to_numpy(dtype=float)
    unit_step = df["indicator"].map(kinds).isin(["count", "rate"]).to_numpy(dtype=float)
    scale = np.maximum.reduce([np.where(mad > 0, 1.4826 * mad, 1.2533 * df["mean_ad"].to_numpy(dtype=float)),
                               unit_step, JUMP_FLOOR * np.abs(med)])
    dev = np.abs(value - med)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, dev / scale, np.where(dev > _EPS, np.inf, 0.0))
    df = df.assign(z=z)[z > JUMP_DEVIATIONS]
    detail = [(f"「{names[c]}」本季度为{fmt(v)},此前{int(n)}个季度均为{fmt(m)}" if not np.isfinite(zz) else
               f"「{names[c]}」本季度为{fmt(v)},此前{int(n)}个季度的中位数为{fmt(m)},"
               f"{'高出' if v > m else '低于'}{zz:.1f}个稳健标准差")
              for c, v, m, n, zz in zip(df["indicator"], df["value"], df["med"], df["n"], df["z"])]
    return pd.DataFrame({"unit_code": df["unit_code"].to_numpy(), "indicator": df["indicator"].to_numpy(),
                         "kind": "jump", "detail": detail})


def _copies(rows: _Rows) -> pd.DataFrame:
    """Pairs of units of one group whose own reported figures are identical on ≥ 90 % of the
    indicators both reported (at least 5; 不适用 equals 不适用). One row per unit of a pair."""
    s = rows.scheme
    codes = [c for c, ind in s.indicators.items() if ind.source == "unit" and c in rows.cols]
    n = len(rows.keys)
    if n < 2 or len(codes) < COPY_MIN_SHARED:
        return pd.DataFrame(columns=ANOMALY_COLUMNS)
    same = np.zeros((n, n), dtype=np.int32)
    shared = np.zeros((n, n), dtype=np.int32)
    for c in codes:
        x = np.where(rows.na[c], np.inf, rows.cols[c])       # 不适用 is a value; NaN (missing) equals nothing
        has = ~np.isnan(x)
        shared += has[:, None] & has[None, :]
        same += x[:, None] == x[None, :]
    iu, ju = np.triu_indices(n, k=1)
    hit = (shared[iu, ju] >= COPY_MIN_SHARED) & (same[iu, ju] >= COPY_SHARE * shared[iu, ju] - _EPS)
    a, b = iu[hit], ju[hit]
    if not len(a):
        return pd.DataFrame(columns=ANOMALY_COLUMNS)
    code, name = rows.keys["unit_code"].to_numpy(), rows.keys["unit_name"].to_numpy()
    eq, sh = same[a, b], shared[a, b]
    left = np.r_[a, b]
    right = np.r_[b, a]
    eq2, sh2 = np.r_[eq, eq], np.r_[sh, sh]
    detail = [f"与{name[o]}({code[o]})的填报数据在{t}项共同填报指标中有{e}项完全相同({e / t:.0%})"
              for o, e, t in zip(right, eq2, sh2)]
    return pd.DataFrame({"unit_code": code[left], "indicator": "*", "kind": "copy", "detail": detail})


def _all_max(rows: _Rows) -> pd.DataFrame:
    s = rows.scheme
    n_sec, _ = engine.item_layout(s)
    maxes = np.array([it.max for it in s.items[:n_sec]])
    applies = rows.status[:, :n_sec] != engine.NA
    full = (rows.points[:, :n_sec] >= maxes - _EPS) | ~applies
    k = applies.sum(axis=1)
    hit = full.all(axis=1) & (k > 0)
    return pd.DataFrame({"unit_code": rows.keys["unit_code"].to_numpy()[hit], "indicator": "*", "kind": "all_max",
                         "detail": [f"全部{int(x)}个适用的考评条目均为满分" for x in k[hit]]})


def _self_gaps(units: pd.DataFrame) -> pd.DataFrame:
    gap = units["self_score"].astype(float) - units["total"].astype(float)
    hit = units[(gap >= SELF_GAP - _EPS).to_numpy()]
    g = gap[(gap >= SELF_GAP - _EPS).to_numpy()]
    return pd.DataFrame({"unit_code": hit["unit_code"].to_numpy(), "indicator": "", "kind": "self_gap",
                         "detail": [f"自评分{fmt(a)}分,核定后总分{fmt(b)}分,自评高出{fmt(c)}分"
                                    for a, b, c in zip(hit["self_score"], hit["total"], g)]})


def _group_flags(scores: engine.Scores, period: str, group: str, units: pd.DataFrame) -> list[pd.DataFrame]:
    """The flags of one group that its own results decide: self scores, full marks, copies."""
    rows = _gather(scores, period, group)
    return [_self_gaps(units[units["group"] == group]), _all_max(rows), _copies(rows)]


def anomalies_of(store, scores: engine.Scores, period: str) -> pd.DataFrame:
    """Every flag of ``period``: ``unit_code, indicator, kind, detail`` (SPEC's keys) and
    ``unit_name, group, indicator_name, kind_label`` for people. Flags are for checking, not
    rejections."""
    units = scores.units[scores.units["period"] == period]
    frames = []
    names, kinds = {}, {}
    for g in dict.fromkeys(units["group"]):
        blocks = [b for b, _ in _blocks_of(scores, period, g)]
        frames += memoised(blocks, ("flags", period, g), lambda: _group_flags(scores, period, g, units))
        scheme = blocks[0].scheme
        own = {c: ind.name for c, ind in scheme.indicators.items()}
        own_kinds = {c: ind.type for c, ind in scheme.indicators.items()}
        for c in own:
            names.setdefault(c, own[c])
            kinds.setdefault(c, own_kinds[c])
        frames.append(_jumps(store, period, g, units, own, own_kinds))
    frames = [f for f in frames if not f.empty]
    if not frames:
        out = pd.DataFrame(columns=ANOMALY_COLUMNS)
    else:
        out = pd.concat(frames, ignore_index=True)
    info = units.set_index("unit_code")
    out["unit_name"] = out["unit_code"].map(info["unit_name"])
    out["group"] = out["unit_code"].map(info["group"])
    out["indicator_name"] = out["indicator"].map(names).fillna(out["indicator"].map({"*": "(整行)", "": ""}))
    out["kind_label"] = out["kind"].map(ANOMALY_KINDS)
    order = {k: n for n, k in enumerate(ANOMALY_KINDS)}
    out = out.assign(_k=out["kind"].map(order)).sort_values(["unit_code", "_k", "indicator"], kind="stable")
    return out.drop(columns="_k").reset_index(drop=True)


def anomalies(store, actor: User, period: str, *, scores: engine.Scores | None = None) -> pd.DataFrame:
    """:func:`anomalies_of` for the office (``anomalies.view``)."""
    period = periods.parse_period(period)
    accounts.require_active(store, require(actor, "anomalies.view"))
    return anomalies_of(store, scores if scores is not None else engine.score(store, [period]), period)


def anomaly_records(df: pd.DataFrame) -> list[dict]:
    """SPEC's rows: ``unit_code, indicator, kind, detail``."""
    return [{k: getattr(r, k) for k in ANOMALY_COLUMNS} for r in df.itertuples()]


# -- 5. self-assessment accuracy ---------------------------------------------------------------------------------
def self_accuracy_of(ranked: pd.DataFrame) -> pd.DataFrame:
    """Per unit over the quarters with a self score: ``unit_code, unit_name, group, quarters,
    mean_overclaim`` (mean of 自评 − 核定后总分), ``max_overclaim``, ``overclaimed`` (quarters
    over-claimed by ≥ 5) and ``overclaim_share`` (0–1). Largest mean over-claim first."""
    columns = ["unit_code", "unit_name", "group", "quarters", "mean_overclaim", "max_overclaim",
               "overclaimed", "overclaim_share", "last_period"]
    df = ranked[ranked["self_score"].notna()] if "self_score" in ranked else ranked.iloc[0:0]
    if df.empty:
        return pd.DataFrame(columns=columns)
    df = df.assign(gap=df["self_score"].astype(float) - df["total"].astype(float)).sort_values("period")
    df = df.assign(over=df["gap"] >= SELF_GAP - _EPS)
    out = df.groupby("unit_code", sort=False).agg(
        unit_name=("unit_name", "last"), group=("group", "last"), quarters=("gap", "size"),
        mean_overclaim=("gap", "mean"), max_overclaim=("gap", "max"), overclaimed=("over", "sum"),
        last_period=("period", "last")).reset_index()
    out["mean_overclaim"] = engine.round2(out["mean_overclaim"])
    out["max_overclaim"] = engine.round2(out["max_overclaim"])
    out["overclaimed"] = out["overclaimed"].astype(int)
    out["overclaim_share"] = out["overclaimed"] / out["quarters"]
    return out.sort_values(["mean_overclaim", "unit_code"], ascending=[False, True], ignore_index=True)[columns]


def self_accuracy_of_all(ranked: pd.DataFrame) -> pd.DataFrame:
    """:func:`self_accuracy_of` every unit of ``ranked``, kept while ``ranked`` lives."""
    return memoised([ranked], ("self accuracy",), lambda: self_accuracy_of(ranked))


def self_accuracy(store, actor: User, group: str | None = None, *,
                  ranked: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`self_accuracy_of` over what the actor may see: the office every unit (of ``group``),
    a unit account its own unit (self scores are private: ``ranking.private``)."""
    actor = accounts.require_active(store, require(actor, "ranking.private"))
    if ranked is None:
        ranked = rk.ranked_history(engine.score(store))
    if actor.is_office:      # a unit's group is the registry's in every quarter: filter after
        every = self_accuracy_of_all(ranked)
        return every if group is None else every[every["group"] == group].reset_index(drop=True)
    return self_accuracy_of(views.unit_history(store, actor, actor.unit_code, ranked=ranked))
