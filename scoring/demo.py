"""Deterministic demo data: eight quarters of uploads for the demo registry, and ``init --demo``.

``demo_uploads`` returns ``{(period, scheme_id): frame}`` in SPEC's wide upload layout
(``unit_code, period, self_score``, then the scheme's uploadable indicators: computed ones are the
engine's), valid against the scheme's ranges and checks, with realistic gaps (a missing quarter,
blank cells, 不适用). ``demo_files`` splits them as they are uploaded: each scheme's unit figures,
and one file per quarter of the office figures for the checker. Scored by the engine, quarters
average 82–84 with 20–30% 优秀 and a few 不合格; a 泄密 veto (市直部门, 2024Q3) and a 网站单项否决
(公共企事业单位, 2025Q2) fire. One seeded generator: the same inputs, the same data.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from . import engine, lifecycle, periods, yearbook
from .errors import InputError
from .permissions import SYSTEM
from .schemes import Indicator, Scheme, parse_scheme

__all__ = ["PERIODS", "NA_TEXT", "SEED", "demo_files", "demo_uploads", "seed_demo"]

SEED = 20250101
DEMO_TODAY = date(2026, 1, 20)   # 2025Q4 on 公示, its problems due around now
PERIODS: tuple[str, ...] = tuple(periods.quarters_between("2024Q1", "2025Q4"))
NA_TEXT = "不适用"

# Per-group scale of the raw figures (per quarter, for a unit of average size).
_GROUP_PROFILE: dict[str, dict[str, float]] = {
    "市直部门": dict(vol=120, apps=5.0, cols=40, msgs=15, keyreq=30, docs=90, std=0, service=12,
                 consult=20, decisions=1.2, interp=3.0, issues=3.0),
    "县区": dict(vol=420, apps=14.0, cols=60, msgs=60, keyreq=60, docs=220, std=26, service=40,
               consult=60, decisions=2.5, interp=6.0, issues=6.0),
    "乡镇街道": dict(vol=118, apps=0.5, cols=30, msgs=5, keyreq=20, docs=40, std=18, service=15,
                 consult=10, decisions=0.5, interp=1.5, issues=2.0),
    "公共企事业单位": dict(vol=55, apps=1.0, cols=25, msgs=10, keyreq=20, docs=30, std=0, service=20,
                    consult=60, decisions=0.3, interp=0.8, issues=2.5),
}
_DEFAULT_PROFILE = "市直部门"

# Planted events: (indicator, preferred group, period).
_PLANTED = (
    ("secret_leak_incident", "市直部门", "2024Q3"),
    ("website_veto_flag", "公共企事业单位", "2025Q2"),
)
# The unit that misses a whole quarter: (preferred group, period).
_MISSING_QUARTER = ("乡镇街道", "2024Q3")
# Number of single missing cells over all frames.
_MISSING_CELLS = 3


# ---------------------------------------------------------------------------------------------
# raw figures
# ---------------------------------------------------------------------------------------------

class _Gen:
    """Draws every known raw indicator for all units, one quarter at a time."""

    def __init__(self, units: pd.DataFrame, rng: np.random.Generator, n_periods: int):
        self.rng = rng
        self.units = units
        n = self.n = len(units)
        groups = units["group"].astype(str).to_numpy()
        prof = [_GROUP_PROFILE.get(g, _GROUP_PROFILE[_DEFAULT_PROFILE]) for g in groups]
        self.p = {k: np.array([d[k] for d in prof], float) for k in prof[0]} if n else {}

        # latent quality: level, trend (some improve, some decline), quarterly noise
        base = 0.06 + 0.84 * rng.beta(2.6, 2.0, n)
        slope = rng.normal(0.025, 0.06, n)   # slight overall improvement
        movers = rng.random(n) < 0.25
        slope[movers] += rng.choice([-0.16, 0.16], movers.sum())
        tt = (np.arange(n_periods) - (n_periods - 1) / 2) / max((n_periods - 1) / 2, 1)
        q = base[:, None] + slope[:, None] * tt[None, :] + rng.normal(0, 0.035, (n, n_periods))
        self.base = base
        self.q = np.clip(q, 0.08, 0.995)
        self.size = rng.lognormal(0.0, 0.4, n)

        # stable per-unit figures
        s = self.size
        self.const = {
            "systems_required_count": rng.integers(6, 11, n),
            "columns_required_count": np.maximum(8, rng.poisson(self.p["cols"] * np.sqrt(s))) if n else np.zeros(0, int),
            "key_area_items_required": np.maximum(5, rng.poisson(self.p["keyreq"] * np.sqrt(s))) if n else np.zeros(0, int),
            "std_areas_required": np.where(self.p["std"] > 0, np.clip(rng.poisson(self.p["std"]), 10, 30), 0) if n else np.zeros(0, int),
            "service_items_total": np.maximum(3, rng.poisson(self.p["service"] * s)) if n else np.zeros(0, int),
            "newmedia_accounts": 1 + rng.poisson(1.3 * s),
            "docs_base": rng.poisson(self.p["docs"] * s) if n else np.zeros(0, int),
        }
        codes = units["unit_code"].astype(str).to_numpy()
        parents = units["parent_code"].fillna("").astype(str).to_numpy() if "parent_code" in units else np.array([""] * n)
        kids = pd.Series(parents[parents != ""]).value_counts()
        self.const["towns_total"] = np.array([int(kids.get(c, 0)) for c in codes], int)
        self.carry = rng.poisson(0.3 * self.p["apps"] * s) if n else np.zeros(0, int)
        self.yearly: dict[str, np.ndarray] = {}

    # draw helpers ------------------------------------------------------------------------
    def _bern(self, p):
        return (self.rng.random(self.n) < np.clip(p, 0, 1)).astype(int)

    def _binom(self, n, p):
        return self.rng.binomial(np.asarray(n, int), np.clip(p, 0, 1))

    def _pois(self, lam):
        return self.rng.poisson(np.clip(lam, 0, None))

    def quarter(self, t: int) -> dict[str, np.ndarray]:
        rng, n, s, p = self.rng, self.n, self.size, self.p
        q = self.q[:, t]
        bad = (1 - q) ** 1.5        # problem intensity
        c = self.const
        out: dict[str, np.ndarray] = {}

        # yearly facts (decided in Q1, unchanged for the rest of the year)
        if t % 4 == 0 or not self.yearly:
            self.yearly = {
                "org_leading_group_set": self._bern(0.90 + 0.12 * q),
                "annual_plan_on_time": self._bern(0.70 + 0.35 * q),
                "annual_report_on_time": self._bern(0.72 + 0.32 * q),
                "guide_updated": self._bern(0.65 + 0.40 * q),
                "decision_catalog_published": self._bern(0.65 + 0.40 * q),
                "budget_on_time": self._bern(0.75 + 0.30 * q),
                "fee_standards_published": self._bern(0.80 + 0.25 * q),
                "service_commitment_published": self._bern(0.70 + 0.35 * q),
                "annual_report_errors": self._pois(5.0 * bad),
            }
        out.update(self.yearly)

        # organisation
        out["systems_required_count"] = c["systems_required_count"]
        out["systems_missing_count"] = self._binom(c["systems_required_count"], 0.25 * bad)
        out["review_record_missing_cases"] = self._pois(3.0 * bad)

        # proactive disclosure
        vol = self._pois(p["vol"] * s * (0.55 + 0.6 * q))
        out["info_published_count"] = vol
        cols = c["columns_required_count"]
        out["columns_required_count"] = cols
        blank = self._binom(cols, 0.06 * bad)
        out["blank_columns_count"] = blank
        out["stale_columns_count"] = self._binom(cols - blank, 0.12 * bad)
        out["late_publication_count"] = self._binom(vol, 0.03 * bad)
        out["blank_months_count"] = np.minimum(3, self._pois(1.2 * (1 - q) ** 3))
        out["normative_doc_issue_count"] = self._pois(2.0 * bad)
        dec = self._pois(p["decisions"] * s)
        out["major_decisions_total"] = dec
        out["major_decisions_prepublished"] = self._binom(dec, 0.55 + 0.5 * q)
        kreq = c["key_area_items_required"]
        out["key_area_items_required"] = kreq
        out["key_area_items_published"] = self._binom(kreq, 0.80 + 0.22 * q)
        out["village_affairs_open_rate"] = np.round(np.clip(78 + 24 * q + rng.normal(0, 2.5, n), 0, 100), 1)

        # interpretation and response
        need = self._pois(p["interp"] * s)
        out["policy_docs_requiring_interp"] = need
        out["policy_docs_interp_sync"] = self._binom(need, 0.55 + 0.5 * q)
        out["interp_forms_used"] = np.clip(np.rint(4.2 * q + rng.normal(0, 0.8, n)), 0, 5).astype(int)
        out["press_events_count"] = self._pois(0.5 + 2.2 * q)
        msgs = self._pois(p["msgs"] * s)
        out["messages_received"] = msgs
        out["messages_overdue"] = self._binom(msgs, 0.15 * bad)
        out["open_day_events"] = self._pois(0.2 + 1.3 * q)
        out["public_participation_events"] = self._pois(0.6 + 2.2 * q)

        # applications (年报表三 identity, carry-over chained between quarters)
        new = self._pois(p["apps"] * s)
        total = new + self.carry
        closed = self._binom(total, 0.88)
        out["apps_new_received"] = new
        out["apps_carried_over"] = self.carry
        out["apps_closed"] = closed
        out["apps_carried_forward"] = total - closed
        self.carry = total - closed
        out["apps_closed_on_time"] = self._binom(closed, 0.80 + 0.22 * q)
        res = rng.multinomial(closed, [0.52, 0.12, 0.08, 0.17, 0.07, 0.04]) if n else np.zeros((0, 6), int)
        for k, name in enumerate(("granted", "partial", "denied", "unable", "not_processed", "other")):
            out[f"apps_result_{name}"] = res[:, k]
        out["reply_defect_count"] = self._binom(closed, 0.20 * bad)
        out["channel_test_passed"] = self._bern(0.78 + 0.25 * q)
        rev = self._pois(0.25 * p["apps"] / 5 * s)
        out["review_cases_total"] = rev
        out["review_corrected"] = self._binom(rev, 0.5 * bad)
        lit = self._pois(0.15 * p["apps"] / 5 * s)
        out["litigation_cases_total"] = lit
        out["litigation_corrected"] = self._binom(lit, 0.5 * bad)

        # information management
        docs = c["docs_base"] + self._pois(0.08 * p["docs"] * s * (t + 1))
        out["docs_total"] = docs
        out["docs_with_validity"] = self._binom(docs, 0.78 + 0.24 * q)

        # platforms
        out["website_check_score"] = np.round(np.clip(58 + 40 * q + rng.normal(0, 2.5, n), 0, 100), 1)
        out["website_veto_flag"] = np.zeros(n, int)
        out["broken_links_count"] = self._pois(9.0 * bad)
        out["sensitive_errors_count"] = self._pois(2.0 * bad)
        acc = c["newmedia_accounts"]
        out["newmedia_accounts"] = acc
        out["newmedia_stale_accounts"] = self._binom(acc, 0.35 * bad)
        out["onsite_zone_operational"] = self._bern(0.80 + 0.25 * q)
        out["notice_board_updates"] = self._binom(np.full(n, 3), 0.55 + 0.5 * q)

        # 基层标准化 (县区 / 乡镇)
        sreq = c["std_areas_required"]
        out["std_areas_required"] = sreq
        out["std_areas_completed"] = self._binom(sreq, np.minimum(1, 0.55 + 0.15 * t / 7 + 0.4 * q))
        towns = c["towns_total"]
        out["towns_total"] = towns
        out["towns_zone_built"] = self._binom(towns, np.minimum(1, 0.45 + 0.2 * t / 7 + 0.45 * q))

        # public enterprises
        items = c["service_items_total"]
        out["service_items_total"] = items
        out["service_guides_published"] = self._binom(items, 0.72 + 0.3 * q)
        nreq = self._pois(1.5 * s)
        out["service_change_notices_required"] = nreq
        out["service_change_notices_on_time"] = self._binom(nreq, 0.65 + 0.4 * q)
        cons = self._pois(p["consult"] * s)
        out["consult_received"] = cons
        out["consult_replied_on_time"] = self._binom(cons, 0.80 + 0.21 * q)
        out["satisfaction_rate"] = np.round(np.clip(80 + 19 * q + rng.normal(0, 1.5, n), 0, 100), 1)

        # supervision
        # problems are counted from the ledger now (problems.seed_demo); the draws stay so that
        # the generator's stream, and every figure drawn after them, is unchanged
        self._binom(self._pois(p["issues"] * s), 0.60 + 0.45 * q)
        out["late_submissions"] = self._pois(2.5 * bad)
        out["trainings_attended"] = self._pois(0.4 + 1.8 * q)

        # bonus, penalties, veto
        out["commendations_provincial"] = self._pois(0.02 + 0.15 * q ** 3)
        out["commendations_municipal"] = self._pois(0.05 + 0.45 * q ** 3)
        out["criticisms_count"] = self._pois(0.25 * (1 - q) ** 3)
        out["website_spot_check_failed"] = self._pois(0.04 * (1 - q) ** 3)
        out["secret_leak_incident"] = np.zeros(n, int)
        return out

    def fallback(self, ind: Indicator, t: int) -> np.ndarray:
        """Generic values for an indicator this module does not know."""
        q, n = self.q[:, t], self.n
        if ind.type == "bool":
            return self._bern(0.5 + 0.5 * q)
        if ind.type == "count":
            return self._pois(3.0 * self.size * (0.5 + q))
        lo = 0.0 if ind.min is None else ind.min
        hi = (100.0 if ind.type == "rate" else lo + 100.0) if ind.max is None else ind.max
        return np.round(lo + (hi - lo) * np.clip(0.55 + 0.45 * q + self.rng.normal(0, 0.03, n), 0, 1), 1)


# ---------------------------------------------------------------------------------------------
# uploads
# ---------------------------------------------------------------------------------------------

def _clean(values: np.ndarray, ind: Indicator) -> np.ndarray:
    """Clip to the declared (and type-implied) range; integers for count/bool, 1 decimal otherwise."""
    v = np.asarray(values, float)
    lo, hi = ind.min, ind.max
    if ind.type == "rate":
        lo = 0 if lo is None else max(lo, 0)
        hi = 100 if hi is None else min(hi, 100)
    elif ind.type == "bool":
        lo, hi = 0, 1
    elif ind.type == "count":
        lo = 0 if lo is None else max(lo, 0)
    v = np.clip(v, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    return np.rint(v) if ind.type in ("count", "bool") else np.round(v, 1)


def _column(v: np.ndarray, ind: Indicator, na_mask: np.ndarray):
    """Upload column: Int64 for count/bool, float for rate/number; object when it holds 不适用."""
    integer = ind.type in ("count", "bool")
    blank = np.isnan(v)
    if not na_mask.any():
        if integer:
            return pd.arrays.IntegerArray(np.where(blank, 0, v).astype("int64"), blank)
        return v
    out = np.empty(len(v), dtype=object)
    for k, x in enumerate(v):
        out[k] = NA_TEXT if na_mask[k] else (None if blank[k] else (int(x) if integer else float(x)))
    return out


def _keep_checks(data: dict[str, np.ndarray], scheme: Scheme) -> None:
    """Make the single-term checks (``a <= b``) hold whatever the draws were."""
    for chk in scheme.checks:
        if len(chk.left) != 1 or len(chk.right) != 1 or chk.op not in ("<=", "<", ">=", ">"):
            continue
        (sl, left), (sr, right) = chk.left[0], chk.right[0]
        if sl != 1 or sr != 1 or left not in data or right not in data:
            continue
        small, big = (left, right) if chk.op in ("<=", "<") else (right, left)
        data[small] = np.minimum(data[small], data[big] - (1 if chk.op in ("<", ">") else 0))


def _as_schemes(schemes) -> list[Scheme]:
    """Scheme objects by id; parsed YAML (as the tests read data/tables) goes through the real parser."""
    import yaml

    out = [s if isinstance(s, Scheme) else parse_scheme(yaml.safe_dump(s, allow_unicode=True, sort_keys=False))
           for s in schemes.values()]
    return sorted(out, key=lambda s: s.id)


def demo_uploads(units: pd.DataFrame, schemes, quarters=None,
                 seed: int = SEED) -> dict[tuple[str, str], pd.DataFrame]:
    """Demo uploads: ``{(period, scheme_id): wide DataFrame}`` (see the module docstring).

    ``units``: registry with columns unit_code, unit_name, group, parent_code.
    ``schemes``: scheme id -> :class:`Scheme` (or its parsed YAML).
    ``quarters``: the quarters to generate (default :data:`PERIODS`).
    """
    quarters = [periods.parse_period(p) for p in (PERIODS if quarters is None else quarters)]
    schemes = _as_schemes(schemes)
    rng = np.random.default_rng(seed)
    reg = units.copy()
    reg["unit_code"] = reg["unit_code"].astype(str)
    reg = reg.sort_values("unit_code", kind="stable").reset_index(drop=True)
    if "parent_code" not in reg:
        reg["parent_code"] = ""
    gen = _Gen(reg, rng, len(quarters))
    groups = reg["group"].astype(str).to_numpy()
    codes = reg["unit_code"].to_numpy()
    n = len(reg)

    # units reporting 不适用 for an na_allowed indicator: same units every quarter
    name = reg["unit_name"].astype(str)
    is_company = name.str.contains("公司|集团").to_numpy()
    is_street = name.str.endswith("街道").to_numpy()
    pick = rng.random(n)
    na_units = {
        # no own budget: companies, some streets, a few 市直 second-level bodies
        "budget_on_time": is_company | (is_street & (pick < 0.4)) | ((groups == "市直部门") & (pick < 0.06)),
        # not sampled by the simulated-application test this year
        "channel_test_passed": np.isin(np.arange(n), rng.choice(n, min(5, n), replace=False)),
        # no external service functions / no service hall
        "onsite_zone_operational": ((groups == "市直部门") & (pick > 0.90)) | (is_street & (pick > 0.85)),
    }
    fallback_na = rng.random(n) < 0.04

    # planted events and the missing quarter (chosen among the weakest units of a group)
    def weakest(group: str, k: int = 1) -> list[int]:
        idx = np.flatnonzero(groups == group)
        if len(idx) == 0:
            idx = np.arange(n)
        return list(idx[np.argsort(gen.base[idx], kind="stable")][:k])

    planted = {}
    for code, grp, per in _PLANTED:
        if per in quarters and n:
            planted[(code, quarters.index(per))] = weakest(grp, 2)[-1]
    miss_row = None
    if _MISSING_QUARTER[1] in quarters and n:
        idx = np.flatnonzero(groups == _MISSING_QUARTER[0])
        if len(idx):
            miss_row = (quarters.index(_MISSING_QUARTER[1]), int(idx[rng.integers(len(idx))]))

    # scheme of every unit in every quarter
    scheme_of = {(g, t): next((s.id for s in schemes if s.covers(g, p)), None)
                 for g in set(groups) for t, p in enumerate(quarters)}
    member = [{s.id: np.array([scheme_of[(g, t)] == s.id for g in groups], bool) for s in schemes}
              for t in range(len(quarters))]

    # single missing cells: (t, scheme, unit position, indicator), a unit's own figure that no check
    # reads (units leave cells blank; the inspection's figures are complete)
    miss_cells = []
    for _ in range(_MISSING_CELLS if n else 0):
        t = int(rng.integers(len(quarters)))
        s = schemes[int(rng.integers(len(schemes)))]
        checked = {c for chk in s.checks for c in chk.reads()}
        cand = [c for c, ind in s.indicators.items() if c not in checked and not ind.na_allowed and ind.source == "unit"]
        members = np.flatnonzero(member[t][s.id])
        if cand and len(members):
            miss_cells.append((t, s.id, int(members[rng.integers(len(members))]), cand[int(rng.integers(len(cand)))]))

    result: dict[tuple[str, str], pd.DataFrame] = {}
    optimism: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for t, per in enumerate(quarters):
        raw = gen.quarter(t)
        for (code, tp), row in planted.items():
            if tp == t and code in raw:
                raw[code] = raw[code].copy()
                raw[code][row] = 1
                if code == "website_veto_flag":
                    raw["website_check_score"] = raw["website_check_score"].copy()
                    raw["website_check_score"][row] = 51.5
        present = np.ones(n, bool)
        if miss_row is not None and miss_row[0] == t:
            present[miss_row[1]] = False
        for s in schemes:
            rows = np.flatnonzero(member[t][s.id] & present)
            if len(rows) == 0:
                continue
            cols = {"unit_code": codes[rows], "period": np.full(len(rows), per, dtype=object)}
            uploaded = {c: ind for c, ind in s.indicators.items() if ind.source != "computed"}
            data = {c: np.asarray(raw[c] if c in raw else gen.fallback(ind, t), float)[rows]
                    for c, ind in uploaded.items()}
            _keep_checks(data, s)
            for c, ind in uploaded.items():
                v = _clean(data[c], ind)
                for (tm, sm, r, cm) in miss_cells:
                    if tm == t and sm == s.id and cm == c and r in rows:
                        v[np.flatnonzero(rows == r)] = np.nan
                na = na_units.get(c, fallback_na)[rows] if ind.na_allowed else np.zeros(len(rows), bool)
                cols[c] = _column(v, ind, na)
            # the self-assessment's optimism (0–8 points, mostly small) and the few left blank
            optimism[(per, s.id)] = (8.0 * rng.random(len(rows)) ** 2, rng.random(len(rows)) < 0.04)
            result[(per, s.id)] = pd.DataFrame(cols)

    estimate = _engine_estimate(reg, schemes, result)
    total_max = {s.id: s.total_max for s in schemes}
    for key, frame in result.items():
        extra, blank = optimism[key]
        own = estimate.reindex(pd.MultiIndex.from_arrays([frame["period"], frame["unit_code"]])).to_numpy()
        self_score = np.round(np.minimum(own + extra, total_max[key[1]]), 1)
        self_score[blank] = np.nan
        frame.insert(2, "self_score", self_score)
    return result


def demo_files(frames: dict[tuple[str, str], pd.DataFrame], schemes) -> list[tuple[str, str, pd.DataFrame]]:
    """``demo_uploads`` as uploaded, in order: ``(file name, "unit" | "checker", frame)``. Per
    quarter, each scheme's file of the units' own figures (with the self-assessment), then one file
    of the office figures of every unit for the checker (blank where a scheme lacks the indicator).
    """
    source = {s.id: {c: ind.source for c, ind in s.indicators.items()} for s in _as_schemes(schemes)}
    by_period: dict[str, list] = {}
    for (period, scheme_id), frame in frames.items():
        by_period.setdefault(period, []).append((scheme_id, frame))
    files = []
    for period, parts in by_period.items():
        office = []
        for scheme_id, frame in parts:
            src = source[scheme_id]
            files.append((f"{period}-{scheme_id}.csv", "unit",
                          frame[[c for c in frame.columns if src.get(c, "unit") == "unit"]]))
            office.append(frame[["unit_code", "period"] + [c for c in frame.columns if src.get(c) == "office"]])
        files.append((f"{period}-第三方检测.csv", "checker", pd.concat(office, ignore_index=True)))
    return files


def _engine_estimate(units: pd.DataFrame, schemes: list[Scheme], frames: dict) -> pd.Series:
    """What the engine makes of each row before the panel's manual points and any veto, by
    (period, unit_code): the figure a unit's own assessment starts from. The rows go through the
    real upload path into a throwaway in-memory database, one file per scheme (a batch costs more
    than its rows)."""
    from .ingest import ingest
    from .schemes import save_scheme
    from .store import Store
    from .units import save_units

    with Store(":memory:") as mem:
        save_units(mem, units.assign(parent_code=units["parent_code"].replace("", None)), SYSTEM)
        for s in schemes:
            save_scheme(mem, s.yaml_text, SYSTEM)
            mine = [f for (_, scheme_id), f in frames.items() if scheme_id == s.id]
            if mine:
                ingest(mem, pd.concat(mine).to_csv(index=False).encode("utf-8"), f"{s.id}.csv", SYSTEM)
        u = engine.score(mem).units
    before_veto = np.maximum(u["base"] - u["penalty"], 0.0) + u["bonus"]
    return pd.Series(before_veto.to_numpy(float), index=pd.MultiIndex.from_frame(u[["period", "unit_code"]]))


# ---------------------------------------------------------------------------------------------
# seeding a demo database
# ---------------------------------------------------------------------------------------------

MANUAL_REASON = "考评组季度集中评定(演示数据)"
DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # the shipped tables and registry

# What makes a database someone's real one: demo data, demo mode and five accounts with a public
# password must never be added to it.
_IN_USE = (("units", "单位名录"), ("users", "账号"), ("batches", "上传批次"), ("schemes", "考评表"),
           ("adjustments", "核定记录"), ("problems", "问题清单"))


def _require_empty(store) -> None:
    found = [label for table, label in _IN_USE if store.one(f"SELECT count(*) FROM {table}")[0]]
    if found:
        raise InputError(f"数据库 {store.path} 已有数据({'、'.join(found)}),不能载入演示数据;"
                         "请指定一个新的数据库文件(--db 或 KAOPING_DB)")


def seed_demo(store, data_dir=DATA_DIR) -> str:
    """Load the demo into an empty database: the four 2025 schemes, the registry, demo accounts,
    eight quarters through the real upload path (units' figures as the system, the office figures
    as the demo checker), the panel's manual points and third-party problems.

    InputError if the database holds anything already.
    """
    from . import accounts, audit
    from .ingest import ingest
    from .problems import seed_demo as seed_demo_problems
    from .schemes import save_scheme
    from .units import read_registry, save_units

    _require_empty(store)
    data_dir = Path(data_dir)
    schemes = {}
    for path in sorted((data_dir / "tables").glob("*.yaml")):
        scheme, _ = save_scheme(store, path.read_text(encoding="utf-8"), SYSTEM)
        schemes[scheme.id] = scheme
    units = read_registry(data_dir / "units.csv")
    save_units(store, units, SYSTEM)
    accounts_made = accounts.create_demo_accounts(store)   # before the uploads: the checker makes some
    uploader = {"unit": SYSTEM, "checker": accounts.get_user(store, accounts.DEMO_CHECKER)}
    n_rows = {"unit": 0, "checker": 0}
    for name, who, frame in demo_files(demo_uploads(units, schemes), schemes):
        data = frame.to_csv(index=False).encode("utf-8-sig")
        n_rows[who] += ingest(store, data, name, uploader[who]).rows
    _seed_manual_points(store, list(schemes.values()))
    yearbook_note = yearbook.seed_demo(store, SYSTEM)   # before publication: 2025Q1 deducts 2024's errors
    today = _record_demo_day(store)
    with periods.today_as(today):
        problems_note = seed_demo_problems(store, uploader["checker"], today, SEED + 2)
        lifecycle_note = lifecycle.seed_demo(store, today=today)  # the past published, the latest on 公示
    store.write(lambda cur: audit.record(cur, SYSTEM, "init", store.path, "载入演示数据"))
    latest = engine.latest_period(store)
    names = "、".join(a[0] for a in accounts_made)
    return (f"演示数据已载入 {store.path}:{len(schemes)}个考评表,{len(units)}个单位,"
            f"{n_rows['unit']}行单位填报数据、{n_rows['checker']}行第三方检测数据、{yearbook_note}、{problems_note}"
            f"(最新季度 {latest});{lifecycle_note};演示账号:{names}")


def _record_demo_day(store) -> date:
    """Record the day the demo lives on in the database (:data:`DEMO_TODAY`: its latest quarter on
    公示, problems due around it; :func:`periods.live_on_recorded_day` reads it back) and return it.
    ``KAOPING_TODAY`` still wins, also when the demo is seeded."""
    import os

    day = periods.today() if os.environ.get("KAOPING_TODAY") else DEMO_TODAY
    store.write(lambda cur: store.set_meta(cur, "demo_today", day.isoformat()), scores_change=False)
    return day


def _seed_manual_points(store, schemes: list[Scheme]) -> None:
    """The 考评组's manual items, entered for every unit and quarter but a few of the latest."""
    keys = store.df('SELECT c.unit_code, c.period, u.grp AS "group" FROM current_submissions c '
                    "JOIN units u USING (unit_code) ORDER BY c.period, c.unit_code")
    latest = keys["period"].max()
    rng = np.random.default_rng(SEED + 1)
    frames = []
    for s in schemes:
        mine = keys[keys["group"].isin(s.groups) & keys["period"].between(s.period_from, s.period_to)]
        for item in s.items:
            if item.rule.type_name != "manual" or item.max is None or mine.empty:
                continue
            share = rng.uniform(0.4, 0.95, len(mine)) if item.kind == "item" else rng.uniform(0, 0.5, len(mine))
            points = np.round(item.max * share * 2) / 2  # in half points, as panels score
            keep = ~((mine["period"] == latest).to_numpy() & (rng.random(len(mine)) < 0.15))
            frames.append(pd.DataFrame({"unit_code": mine["unit_code"].to_numpy()[keep],
                                        "period": mine["period"].to_numpy()[keep], "item_id": item.id,
                                        "points": points[keep]}))
    if not frames:
        return
    adj = pd.concat(frames, ignore_index=True)

    def write(cur):
        cur.register("demo_adj", adj)
        cur.execute("""INSERT INTO adjustments SELECT nextval('seq_adjustment'), unit_code, period, item_id,
                       points, ?, '考评组', now() FROM demo_adj""", [MANUAL_REASON])
        cur.unregister("demo_adj")

    store.write(write)
