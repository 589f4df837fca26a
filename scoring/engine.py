"""The scoring engine: current values in, points out, on whole columns.

For every (unit, period) that has a submission or an adjustment, the engine finds the scheme of
the unit's group, scores each item for all units at once with numpy, and aggregates in SPEC's
order: sections (capped), N/A rescaling, penalties, bonus (capped, gated), rounding, veto.
Explanations are built only for the units someone looks at.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from . import snapshots
from .periods import today
from .rules import Context, explain_missing, explain_na, fmt
from .schemes import Item, Scheme, load_schemes
from .store import current_submissions_sql, current_values_sql

OK, MISSING, NA, PENDING, ADJUSTED = range(5)
STATUS = np.array(["ok", "missing", "na", "pending", "adjusted"], dtype=object)


def round2(x):
    """Half-up rounding to 2 decimals (四舍五入), robust to binary noise."""
    return np.floor(np.asarray(x, dtype=float) * 100 + 0.5 + 1e-7) / 100


@dataclass
class Block:
    """Every scored (unit, period) of one scheme, with its item and section results."""

    scheme: Scheme
    keys: pd.DataFrame  # unit_code, unit_name, group, period, self_score (one row per result)
    cols: dict[str, np.ndarray]  # indicator -> values (nan where missing or n/a)
    na: dict[str, np.ndarray]  # indicator -> reported 不适用
    groups: np.ndarray  # (group, period) id for relative rules
    items: list[Item]
    computed: np.ndarray  # rows x items, before adjustments
    points: np.ndarray  # rows x items, final
    status: np.ndarray  # rows x items, int8 codes
    section_points: np.ndarray  # rows x sections
    section_caps: np.ndarray  # rows x sections (shrunk by n/a items)
    adjustments: dict = field(default_factory=dict)  # (row, item index) -> adjustment record
    batches: dict = field(default_factory=dict)  # indicator -> batch id of each row's figure (0: none)
    derived: dict = field(default_factory=dict)  # computed indicator -> how many figures it was made of
    notes: dict = field(default_factory=dict)  # ledger indicator -> each row's problems, as a sentence

    def take(self, rows: np.ndarray) -> "Block":
        """Only the rows at positions ``rows`` (ascending), as a block of their own: a reader that
        caches results per (period, groups) cuts one scoring run's blocks into its parts."""
        n = len(self.keys)
        index = np.arange(n)[rows]
        if len(index) and index[-1] - index[0] + 1 == len(index):
            rows = slice(int(index[0]), int(index[-1]) + 1)     # contiguous (the usual case): views

        def cut(value):
            if isinstance(value, pd.DataFrame):
                return value.iloc[rows].reset_index(drop=True)
            if isinstance(value, np.ndarray) and value.shape[:1] == (n,):
                return value[rows]
            if isinstance(value, _Adjustments):
                return value.take(index, n)
            if isinstance(value, dict) and value and all(isinstance(k, tuple) for k in value):
                at = np.full(n, -1)                     # a snapshot's (row, item index) -> record
                at[index] = np.arange(len(index))
                return {(int(at[r]), j): {**rec, "row": int(at[r])} for (r, j), rec in value.items() if at[r] >= 0}
            if isinstance(value, dict):
                return {k: cut(v) for k, v in value.items()}
            return value

        return Block(**{f.name: cut(getattr(self, f.name)) for f in dataclasses.fields(self)})


@dataclass
class Scores:
    """The results of one scoring run over some periods."""

    blocks: list[Block]
    units: pd.DataFrame  # one row per (unit, period)

    @classmethod
    def combine(cls, parts: list["Scores"]) -> "Scores":
        """The results of several runs over different periods as one (e.g. live and published)."""
        parts = [p for p in parts if p.blocks]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls([], _empty_units())
        return cls([b for p in parts for b in p.blocks], pd.concat([p.units for p in parts], ignore_index=True))

    @cached_property
    def _where(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(unit, period) -> (block index, row): built once, so that explaining every unit is linear."""
        out = {}
        for k, block in enumerate(self.blocks):
            for row, key in enumerate(zip(block.keys["unit_code"].tolist(), block.keys["period"].tolist())):
                out.setdefault(key, (k, row))
        return out

    @cached_property
    def _unit_rows(self) -> dict[tuple[str, str], int]:
        return {key: i for i, key in enumerate(zip(self.units["unit_code"].tolist(), self.units["period"].tolist()))}

    def block_of(self, unit_code: str, period: str) -> tuple[Block, int] | None:
        found = self._where.get((unit_code, period))
        return None if found is None else (self.blocks[found[0]], found[1])

    def _long(self, width, labels, values) -> list[pd.DataFrame]:
        """One row per (unit, period, thing): key columns repeated, per-thing labels tiled."""
        frames = []
        for b in self.blocks:
            n, k = len(b.keys), width(b)
            if n == 0:
                continue
            frame = {c: np.repeat(b.keys[c].to_numpy(), k) for c in ("unit_code", "period", "group")}
            frame.update({c: np.tile(v, n) for c, v in labels(b).items()})
            frame.update(values(b))
            frames.append(pd.DataFrame(frame))
        return frames

    @cached_property
    def items(self) -> pd.DataFrame:
        """Long table of item results: unit_code, period, item_id, kind, section_id, points, max, status."""
        frames = self._long(lambda b: len(b.items), lambda b: {
            "scheme": [b.scheme.id] * len(b.items), "item_id": [i.id for i in b.items],
            "name": [i.name for i in b.items], "kind": [i.kind for i in b.items],
            "section_id": [i.section_id for i in b.items],
            "max": [np.nan if i.max is None else i.max for i in b.items],
        }, lambda b: {"points": b.points.ravel(), "status": STATUS[b.status.ravel()]})
        columns = ["unit_code", "period", "group", "scheme", "item_id", "name", "kind", "section_id",
                   "max", "points", "status"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    @cached_property
    def sections(self) -> pd.DataFrame:
        """Long table of section results: unit_code, period, section_id, name, points, max (its cap)."""
        frames = self._long(lambda b: len(b.scheme.sections), lambda b: {
            "section_id": [x.id for x in b.scheme.sections], "name": [x.name for x in b.scheme.sections],
        }, lambda b: {"points": b.section_points.ravel(), "max": b.section_caps.ravel()})
        columns = ["unit_code", "period", "group", "section_id", "name", "points", "max"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def explain(self, unit_code: str, period: str) -> dict | None:
        """Item by item, with a Chinese sentence each; None when the unit has no result."""
        found = self.block_of(unit_code, period)
        if found is None:
            return None
        b, row = found
        s = b.scheme
        same_group = b.groups == b.groups[row]

        def group_max(code: str) -> float:
            vals = b.cols[code][same_group]
            return float(np.nanmax(vals)) if np.isfinite(vals).any() else 0.0

        ctx = Context(s.names(), frozenset(c for c, i in s.indicators.items() if i.type == "rate"), group_max)
        values = {c: float(v[row]) for c, v in b.cols.items()}
        nas = {c: bool(m[row]) for c, m in b.na.items()}
        items = []
        for j, item in enumerate(b.items):
            status = STATUS[b.status[row, j]]
            text = _explain_item(item, values, nas, float(b.computed[row, j]), ctx)
            if item.once_in and int(period[-1]) != item.once_in:
                text = once_in_text(item)
            points = float(b.points[row, j])
            if status == "adjusted":
                adj = b.adjustments[(row, j)]
                text = (f"已核定为{fmt(adj['points'])}分(原计{fmt(b.computed[row, j])}分:{text}),"
                        f"理由:{adj['reason']}(核定人:{adj['actor']},{adj['adjusted_at']:%Y-%m-%d %H:%M})")
            if item.kind == "penalty":
                points = -points
            sources = [_source(s, b, row, code) for code in dict.fromkeys(item.rule.reads())]
            problems = next((b.notes[c][row] for c in item.rule.reads() if c in b.notes and b.notes[c][row]), None)
            if problems:
                text += f";问题清单:{problems}"
            items.append({"item_id": item.id, "name": item.name, "points": float(round2(points)),
                          "max": item.max, "status": status, "explanation": text,
                          "kind": item.kind, "section_id": item.section_id,
                          "sources": [{k: x[k] for k in ("indicator", "value", "source", "batch")} for x in sources],
                          "source_text": ";".join(x["text"] for x in sources)})
        unit = self.units.iloc[self._unit_rows[(unit_code, period)]]
        sections = [{"id": sec.id, "name": sec.name, "points": float(round2(b.section_points[row, k])),
                     "max": float(b.section_caps[row, k])} for k, sec in enumerate(s.sections)]
        return {"unit_code": unit_code, "unit_name": unit["unit_name"], "group": unit["group"],
                "period": period, "scheme": s.id, "items": items, "sections": sections,
                "base": float(round2(unit["base"])), "applicable_max": float(unit["applicable_max"]),
                "penalty": float(round2(unit["penalty"])), "bonus": float(round2(unit["bonus"])),
                "veto": unit["veto"] if isinstance(unit["veto"], str) else None,
                "veto_name": unit["veto_name"] if isinstance(unit["veto_name"], str) else None,
                "total": float(unit["total"]), "grade": unit["grade"]}


SOURCE_LABELS = {"unit": "单位填报", "office": "政务公开办/第三方", "computed": "系统计算"}
_AGG_LABELS = {"mean": "平均", "min": "最低", "max": "最高", "sum": "合计", "count": "个数"}
_LEDGER_LABELS = {"assigned": "下发问题数", "closed_on_time": "按期销号数", "overdue": "逾期未整改数",
                  "open": "未销号数"}


def _source(s: Scheme, b: Block, row: int, code: str) -> dict:
    """Where one figure of one row came from: ``indicator, value, source, batch`` and a sentence."""
    ind = s.indicators[code]
    raw = float(b.cols[code][row])
    na = bool(b.na[code][row])
    value = "不适用" if na else (None if np.isnan(raw) else raw)
    if ind.source == "computed":
        how = ind.computed
        n = int(b.derived[code][row]) if code in b.derived else 0
        if how[0] == "yearbook":
            year = int(b.keys["period"].iat[row][:4]) - 1
            told = (f"{year}年度年报统计表勾稽检查发现{int(raw)}处错误" if np.isfinite(raw)
                    else f"本单位{year}年度年报统计表未报送")
        elif how[0] == "children":
            what = "总分" if how[1] == "total" else f"「{s.indicators[how[1]].name if how[1] in s.indicators else how[1]}」"
            told = (f"{n}个下级单位的{what}{_AGG_LABELS[how[2]]}" if n else "下级单位均无考评结果")
        else:
            told = (f"问题清单{'中本项' if how[2] else ''}{_LEDGER_LABELS[how[1]]}"
                    f"{int(raw) if np.isfinite(raw) else 0}个,截至{today():%Y-%m-%d}")
        return {"indicator": code, "value": value, "source": "computed", "batch": None,
                "text": f"{ind.name} 由系统计算:{told}"}
    batch = int(b.batches[code][row]) if code in b.batches and b.batches[code][row] else None
    where = f"{SOURCE_LABELS[ind.source]},批次{batch}" if batch else "未报送"
    return {"indicator": code, "value": value, "source": ind.source, "batch": batch, "text": f"{ind.name}:{where}"}


def once_in_text(item: Item) -> str:
    return f"本项每年第{'一二三四'[item.once_in - 1]}季度考评,本季度不考评(按不适用处理,所在部分按适用分折算)"


def _explain_item(item: Item, values, na, computed, ctx) -> str:
    rule = item.rule
    reads = rule.reads()
    na_codes = [c for c in reads if na.get(c)]
    if na_codes:
        return explain_na(na_codes, item.max, ctx)
    missing = [c for c in reads if np.isnan(values[c])]
    if missing:
        return explain_missing(missing, item.max, ctx)
    return rule.explain(values, computed, item.max, ctx)


# -- scoring --------------------------------------------------------------------------------
def score(store, periods: list[str] | None = None, groups: list[str] | None = None) -> Scores:
    """Score every unit with data in ``periods`` (all periods when None), of ``groups`` (all when None).

    ``groups`` narrows the live periods only, and must hold every group whose results a unit of
    them is computed from (children's totals): ``dashboard.state`` scores one such set at a time.

    A published (已定稿) period is not scored again: its results come from the snapshot frozen
    when it was published (:mod:`scoring.snapshots`), so later uploads, 核定 or scheme reloads do
    not change it until the office re-opens the quarter.
    """
    schemes = load_schemes(store)
    with store.cursor() as con:
        frozen = snapshots.frozen(con, periods)
        if not frozen:
            return _score(con, schemes, periods, groups)
        wanted = periods if periods is not None else snapshots.periods_with_data(con)
        live = _score(con, schemes, [p for p in dict.fromkeys(wanted) if p not in frozen], groups)
    thawed = [snapshots.decode(data) for data in frozen.values()]
    return Scores.combine([live] + [Scores([Block(**b) for b in doc["blocks"]], doc["units"]) for doc in thawed])


def _score(con, schemes: list[Scheme], periods: list[str] | None, groups: list[str] | None = None) -> Scores:
    if periods is not None and not periods:
        return Scores([], _empty_units())
    params = list(periods or []) + list(groups or [])

    def only(period: str, unit: str) -> str:
        """The period filter on column ``period`` and the group filter on ``unit`` (nothing: all)."""
        sql = f"AND {period} IN ({', '.join('?' * len(periods))})" if periods is not None else ""
        if groups is not None:
            sql += f" AND {unit} IN (SELECT unit_code FROM units WHERE grp IN ({', '.join('?' * len(groups))}))"
        return sql

    applies = pd.DataFrame([(s.id, g, s.period_from, s.period_to) for s in schemes for g in s.groups],
                           columns=["scheme", "grp", "p_from", "p_to"])
    con.register("score_applies", applies)
    # One row per scored (unit, period), ordered so that each scheme's rows are contiguous.
    keys = con.execute(f"""
        SELECT c.unit_code, u.unit_name, u.grp AS "group", c.period, a.scheme, c.self_score
        FROM ({current_submissions_sql(only("s.period", "s.unit_code"))}) c JOIN units u USING (unit_code)
        JOIN score_applies a ON a.grp = u.grp AND c.period BETWEEN a.p_from AND a.p_to
        UNION ALL  -- units with an adjustment but no submission
        SELECT j.unit_code, u.unit_name, u.grp, j.period, a.scheme, NULL
        FROM (SELECT DISTINCT unit_code, period FROM adjustments WHERE true {only("period", "unit_code")}) j
        ANTI JOIN current_submissions c USING (unit_code, period)
        JOIN units u USING (unit_code)
        JOIN score_applies a ON a.grp = u.grp AND j.period BETWEEN a.p_from AND a.p_to
        ORDER BY scheme, period, "group", unit_code""", params + params).df()
    con.unregister("score_applies")
    if keys.empty:
        return Scores([], _empty_units())
    by_id = {s.id: s for s in schemes}
    registry = con.execute("SELECT unit_code, parent_code FROM units").df()
    # a unit whose figures are computed from its children's totals is scored after them
    keys["depth"] = _depths(registry, keys, by_id)
    keys = keys.sort_values(["depth", "scheme", "period", "group", "unit_code"], kind="stable", ignore_index=True)

    # The values go to a dense (row × indicator) matrix. The join to row and column numbers is
    # done in DuckDB so that only numbers cross into Python, never 7 million strings.
    codes = sorted({c for s in schemes for c in s.indicators})
    col_of = {c: j for j, c in enumerate(codes)}
    keys["row"] = np.arange(len(keys), dtype=np.int32)
    con.register("score_keys", keys[["unit_code", "period", "row"]])
    con.register("score_codes", pd.DataFrame({"indicator": codes, "col": np.arange(len(codes), dtype=np.int16)}))
    vals = con.execute(f"""
        SELECT k.row, c.col, v.value, v.is_na, v.batch_id FROM ({current_values_sql(only("v.period", "v.unit_code"))}) v
        JOIN score_keys k USING (unit_code, period) JOIN score_codes c USING (indicator)""",
                       params).fetchnumpy()
    adjs = con.execute("""
        SELECT k.row, a.item_id, a.points, a.reason, a.actor, a.adjusted_at FROM adjustments a
        JOIN score_keys k USING (unit_code, period)
        QUALIFY row_number() OVER (PARTITION BY a.unit_code, a.period, a.item_id ORDER BY a.adj_id DESC) = 1
        """).df()
    con.unregister("score_keys")
    con.unregister("score_codes")

    # column-major, so that each indicator's values are one contiguous array
    matrix = np.full((len(keys), len(codes)), np.nan, order="F")
    na_matrix = np.zeros((len(keys), len(codes)), dtype=bool, order="F")
    batch_matrix = np.zeros((len(keys), len(codes)), dtype=np.int64, order="F")
    rows, cols_, is_na = vals["row"], vals["col"], np.asarray(vals["is_na"], dtype=bool)
    matrix[rows, cols_] = np.where(is_na, np.nan, np.asarray(vals["value"], dtype=float))
    na_matrix[rows, cols_] = is_na
    batch_matrix[rows, cols_] = vals["batch_id"]

    blocks, frames = [], []
    derive = _Derivations(con, keys, registry, matrix, col_of, list(periods) if periods is not None else None)
    adj_rows = adjs["row"].to_numpy(dtype=np.int64)
    block_ids = (keys["depth"].astype(str) + "\0" + keys["scheme"]).to_numpy()
    bounds = np.flatnonzero(np.r_[True, block_ids[1:] != block_ids[:-1], True])
    for start, stop in zip(bounds[:-1], bounds[1:]):
        s = by_id[keys["scheme"].iat[start]]
        block_keys = keys.iloc[start:stop].reset_index(drop=True)
        cols = {code: matrix[start:stop, col_of[code]] for code in s.indicators}
        na = {code: na_matrix[start:stop, col_of[code]] for code in s.indicators}
        derived, notes = {}, {}
        for code, ind in s.indicators.items():
            if ind.computed is not None:
                cols[code], derived[code] = derive(ind.computed, block_keys, frames)
                if ind.computed[0] == "ledger":
                    notes[code] = derive.problems(ind.computed, block_keys)
                na[code] = np.zeros(stop - start, dtype=bool)
        mine = (adj_rows >= start) & (adj_rows < stop)
        block_adjs = adjs[mine].assign(row=adj_rows[mine] - start)
        block, units = score_block(s, block_keys, cols, na, block_adjs)
        block.batches = {code: batch_matrix[start:stop, col_of[code]] for code in s.indicators}
        block.derived, block.notes = derived, notes
        blocks.append(block)
        frames.append(units)
    return Scores(blocks, pd.concat(frames, ignore_index=True))


def _depths(registry: pd.DataFrame, keys: pd.DataFrame, schemes: dict) -> np.ndarray:
    """How many levels of children a unit has (0: none), where some scheme scores children's totals."""
    if not any(i.computed and i.computed[0] == "children" and i.computed[1] == "total"
               for s in schemes.values() for i in s.indicators.values()):
        return np.zeros(len(keys), dtype=np.int64)
    parent = dict(zip(registry["unit_code"], registry["parent_code"]))
    depth = dict.fromkeys(parent, 0)
    for _ in range(len(parent)):             # the registry refuses cycles; this bounds the walk anyway
        changed = False
        for child, par in parent.items():
            if isinstance(par, str) and par in depth and depth[par] < depth[child] + 1:
                depth[par] = depth[child] + 1
                changed = True
        if not changed:
            break
    return keys["unit_code"].map(depth).fillna(0).to_numpy(dtype=np.int64)


class _Derivations:
    """The figures of ``computed`` indicators: children's totals or figures, ledger counts, 年报 errors.
    What one scoring run reads from the ledger and the 年报 is read once, whatever the blocks."""

    def __init__(self, con, keys, registry, matrix, col_of, periods):
        self.con, self.keys, self.matrix, self.col_of, self.periods = con, keys, matrix, col_of, periods
        self.parent = registry.set_index("unit_code")["parent_code"]
        self._lists: dict[str | None, pd.Series] = {}      # item filter -> _problem_list

    def __call__(self, how: tuple, block_keys: pd.DataFrame, done: list) -> tuple[np.ndarray, np.ndarray]:
        """(values, counts) for the rows of one block; NaN where there is nothing to compute from."""
        if how[0] == "yearbook":    # the 年报 of the year before the period's (published in its Q1)
            errors = self.yearbook_errors
            index = pd.MultiIndex.from_arrays([block_keys["unit_code"], block_keys["period"].str[:4].astype(int) - 1])
            values = errors.reindex(index).to_numpy(dtype=float)
            return values, np.isfinite(values).astype(np.int64)
        if how[0] == "children":
            _, what, agg = how
            if what == "total":
                frame = pd.concat(done, ignore_index=True)[["unit_code", "period", "total"]] if done else \
                    pd.DataFrame(columns=["unit_code", "period", "total"])
                frame = frame.rename(columns={"total": "value"})
            elif what in self.col_of:
                frame = self.keys[["unit_code", "period"]].assign(value=self.matrix[:, self.col_of[what]])
            else:
                frame = pd.DataFrame(columns=["unit_code", "period", "value"])
            frame = frame.assign(parent=frame["unit_code"].map(self.parent))
            frame = frame[frame["parent"].notna() & frame["value"].notna()]
            grouped = frame.groupby(["parent", "period"])["value"]
            values = grouped.size().astype(float) if agg == "count" else grouped.agg(agg)
            counts = grouped.size()
        else:
            _, what, item = how
            ledger = self.ledger
            if item:
                ledger = ledger[ledger["item_id"] == item]
            grouped = ledger.groupby(["unit_code", "period"])
            values = grouped[what].sum().astype(float)
            counts = grouped.size()
            index = pd.MultiIndex.from_frame(block_keys[["unit_code", "period"]])
            # no problem recorded means none to count: zero, not missing
            return values.reindex(index).fillna(0.0).to_numpy(), counts.reindex(index).fillna(0).to_numpy(dtype=np.int64)
        index = pd.MultiIndex.from_frame(block_keys[["unit_code", "period"]])
        return (values.reindex(index).to_numpy(dtype=float),
                counts.reindex(index).fillna(0).to_numpy(dtype=np.int64))

    def problems(self, how: tuple, block_keys: pd.DataFrame) -> np.ndarray:
        """Each row's problems a ledger count is taken from, e.g. ``#3 首页错链(已销号,按期)、#4 …``."""
        if how[2] not in self._lists:
            self._lists[how[2]] = self._problem_list(how[2])
        joined = self._lists[how[2]]
        index = pd.MultiIndex.from_frame(block_keys[["unit_code", "period"]])
        return joined.reindex(index).fillna("").to_numpy(dtype=object)

    def _problem_list(self, item: str | None) -> pd.Series:
        """(unit_code, period) -> its problems (those of ``item`` only, when given) as one phrase."""
        ledger = self.ledger
        if item:
            ledger = ledger[ledger["item_id"] == item]
        label = ledger["label"] + "(" + ledger["status"] + ledger["closed_on_time"].map({1: ",按期", 0: ""}) + ")"
        return label.groupby([ledger["unit_code"], ledger["period"]]).agg("、".join)

    @cached_property
    def ledger(self) -> pd.DataFrame:
        from .problems import ledger_counts

        return ledger_counts(self.con, self.periods)

    @cached_property
    def yearbook_errors(self) -> pd.Series:
        """(unit_code, year) -> the 勾稽 errors of the unit's current 年报 of that year."""
        from .yearbook import error_counts

        return error_counts(self.con).set_index(["unit_code", "year"])["errors"].astype(float)


def score_block(s: Scheme, keys: pd.DataFrame, cols, na, adjs: pd.DataFrame) -> tuple[Block, pd.DataFrame]:
    """Score the rows of one scheme; ``adjs`` has row (0-based), item_id, points, reason, actor, at."""
    n = len(keys)
    group_ids, period_ids = pd.factorize(keys["group"])[0], pd.factorize(keys["period"])[0]
    groups = group_ids * (period_ids.max(initial=0) + 1) + period_ids  # one id per (group, period)
    items = s.items
    computed = np.zeros((n, len(items)), order="F")  # column j is item j, written contiguously
    status = np.zeros((n, len(items)), dtype=np.int8, order="F")
    filled = {code: np.nan_to_num(x, nan=0.0) for code, x in cols.items()}
    missing = {code: np.isnan(x) & ~na[code] for code, x in cols.items()}
    quarter = keys["period"].str[-1].astype(int).to_numpy()
    for j, item in enumerate(items):
        computed[:, j], status[:, j] = _score_item(item, filled, missing, na, groups)
        if item.once_in:  # an annual item: 不适用 outside its quarter, so its section is rescaled
            off = quarter != item.once_in
            computed[off, j], status[off, j] = 0.0, NA

    points = computed.copy(order="K")
    item_index = {it.id: j for j, it in enumerate(items)}
    js = adjs["item_id"].map(item_index)
    known = js.notna().to_numpy()
    adjs = adjs[known].reset_index(drop=True)
    a_rows = adjs["row"].to_numpy(dtype=np.int64)
    a_cols = js[known].to_numpy(dtype=np.int64)
    a_points = adjs["points"].to_numpy(dtype=float)
    is_penalty = np.array([it.kind == "penalty" for it in items], dtype=bool)
    points[a_rows, a_cols] = np.where(is_penalty[a_cols], np.abs(a_points), a_points)
    status[a_rows, a_cols] = ADJUSTED
    adjustments = _Adjustments(adjs, a_rows, a_cols)

    # 1. sections, capped; 2. n/a items shrink their section's cap, the base is rescaled
    sums, sec_caps = section_sums(s, points, status)
    sec_points = np.clip(sums, 0.0, sec_caps)
    applicable = sec_caps.sum(axis=1)
    base = rescaled_base(s, sec_points.sum(axis=1), applicable)
    # 3. penalties, uncapped, never below 0; 4. bonus, capped, gated by min_base; 5. rounding at the end
    n_sec, n_bonus = item_layout(s)
    penalty = points[:, n_sec + n_bonus:].sum(axis=1)
    bonus = capped_bonus(s, base, points[:, n_sec:n_sec + n_bonus].sum(axis=1))
    total = final_total(base, penalty, bonus)
    # 6. veto
    fired = np.full(n, -1)  # index of the first veto that fired, -1 for none
    for k, v in enumerate(s.vetoes):
        fires = v.fires(cols[v.indicator])
        fired[fires & (fired < 0)] = k
        total = np.where(fires, np.minimum(total, v.cap if v.cap is not None else 0.0), total)
    veto = np.array([None] + [v.id for v in s.vetoes], dtype=object)[fired + 1]
    veto_name = np.array([None] + [v.name for v in s.vetoes], dtype=object)[fired + 1]
    grade = np.where(fired >= 0, s.lowest_grade, s.grade_of(total))

    units = keys[["unit_code", "unit_name", "group", "period", "scheme", "self_score"]].copy()
    units["base"] = base
    units["applicable_max"] = applicable
    units["penalty"] = penalty
    units["bonus"] = bonus
    units["veto"] = veto
    units["veto_name"] = veto_name
    units["total"] = total
    units["grade"] = grade
    units["passed"] = grade != s.lowest_grade  # a veto always gives the lowest grade
    units["n_missing"] = (status == MISSING).sum(axis=1)
    units["n_pending"] = (status == PENDING).sum(axis=1)
    units["n_na"] = (status == NA).sum(axis=1)
    block = Block(s, keys, cols, na, groups, items, computed, points, status, sec_points, sec_caps, adjustments)
    return block, units


# -- SPEC's aggregation, step by step (the engine and the analytics' perturbations share it) ----------
def item_layout(s: Scheme) -> tuple[int, int]:
    """(number of section items, number of bonus items): the column blocks of ``Scheme.items``."""
    return sum(len(x.items) for x in s.sections), len(s.bonus_items)


def section_sums(s: Scheme, points: np.ndarray, status: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows × sections: the items' points summed (not yet capped) and each section's cap, shrunk
    by the max of its 不适用 items (steps 1–2, before capping)."""
    n = points.shape[0]
    sums = np.zeros((n, len(s.sections)))
    caps = np.zeros((n, len(s.sections)))
    j0 = 0
    for k, sec in enumerate(s.sections):
        j1 = j0 + len(sec.items)
        item_max = np.array([it.max for it in sec.items])
        shrink = ((status[:, j0:j1] == NA) * item_max).sum(axis=1)
        caps[:, k] = np.maximum(sec.max - shrink, 0.0)
        sums[:, k] = points[:, j0:j1].sum(axis=1)
        j0 = j1
    return sums, caps


def rescaled_base(s: Scheme, raw: np.ndarray, applicable: np.ndarray) -> np.ndarray:
    """Step 2: the sections' points, rescaled to total_max where 不适用 items shrank the caps."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(applicable >= s.total_max - 1e-9, raw,
                        np.where(applicable > 0, raw / applicable * s.total_max, 0.0))


def capped_bonus(s: Scheme, base: np.ndarray, bonus_sum: np.ndarray) -> np.ndarray:
    """Step 4: the bonus items' sum, capped at bonus.max, only where the base reaches min_base."""
    return np.where(base >= s.bonus_min_base - 1e-9, np.minimum(bonus_sum, s.bonus_max), 0.0)


def final_total(base: np.ndarray, penalty: np.ndarray, bonus: np.ndarray) -> np.ndarray:
    """Steps 3 and 5: penalties taken (never below 0), the bonus added, rounded once at the end."""
    return round2(np.maximum(base - penalty, 0.0) + bonus)


class _Adjustments:
    """(row, item index) -> the adjustment record (a dict), looked up only when someone reads one."""

    def __init__(self, frame: pd.DataFrame, rows: np.ndarray, cols: np.ndarray):
        self._frame, self._rows, self._cols = frame, rows, cols
        self._at = None

    def take(self, rows: np.ndarray, n: int) -> "_Adjustments":
        """The adjustments of the block's rows ``rows`` (of ``n``), renumbered as :meth:`Block.take` does."""
        at = np.full(n, -1)
        at[rows] = np.arange(len(rows))
        new_rows = at[self._rows]
        keep = new_rows >= 0
        frame = self._frame[keep].reset_index(drop=True)
        return _Adjustments(frame.assign(row=new_rows[keep]) if "row" in frame else frame, new_rows[keep], self._cols[keep])

    def __getitem__(self, key):
        if self._at is None:    # first lookup: one pass over the block's adjustments
            records = self._frame.to_dict("records")
            self._at = {}
            for r, c, rec in zip(self._rows.tolist(), self._cols.tolist(), records):
                self._at.setdefault((r, c), rec)
        return self._at[(int(key[0]), int(key[1]))]


def _score_item(item: Item, filled, missing, na, groups) -> tuple[np.ndarray, np.ndarray]:
    """Points and status of one item for every row; ``filled`` has 0 where a value is absent."""
    n = len(groups)
    rule = item.rule
    reads = rule.reads()
    is_na = np.zeros(n, dtype=bool)
    is_missing = np.zeros(n, dtype=bool)
    for code in reads:
        is_na |= na[code]
        is_missing |= missing[code]
    rule_na = rule.na_mask(filled)
    if rule_na is not None:
        is_na |= rule_na & ~is_missing
    pts = rule.score(filled, item.max, groups)
    if item.max is not None:
        upper = np.minimum(pts, item.max)
        pts = upper if rule.floor == "section" else np.clip(upper, 0.0, item.max)
    else:
        pts = np.maximum(pts, 0.0)
    scored = np.int8(PENDING if rule.pending_when_unadjusted else OK)
    status = np.where(is_na, np.int8(NA), np.where(is_missing, np.int8(MISSING), scored))
    return np.where(is_na | is_missing, 0.0, pts), status


def _empty_units() -> pd.DataFrame:
    return pd.DataFrame(columns=["unit_code", "unit_name", "group", "period", "scheme", "self_score",
                                 "base", "applicable_max", "penalty", "bonus", "veto", "veto_name",
                                 "total", "grade", "passed", "n_missing", "n_pending", "n_na"])


def latest_period(store) -> str | None:
    row = store.one("SELECT max(period) FROM current_submissions")
    return row[0] if row else None
