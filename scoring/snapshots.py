"""The frozen results of a published (已定稿) quarter: written at publication, read by the engine.

A snapshot holds everything :class:`engine.Scores` needs to rank, explain and report one quarter:
per scheme block the scheme's YAML as it was, the unit keys, every figure, the computed and final
points, statuses, section sums, the 核定 then in force and where each figure came from; and the
unit results. Later uploads, 核定, scheme reloads or registry changes do not touch it; only
re-opening the quarter (``lifecycle.reopen``) makes the engine score it live again.

The format is a ZIP archive of ``meta.json`` (text, dtypes, scheme YAML) and ``.npy`` arrays read
with ``allow_pickle=False``: nothing in it can run code, and it does not depend on the engine's
classes, so this module does not import the engine (the engine imports it).
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from functools import lru_cache

import duckdb
import numpy as np
import pandas as pd

from .errors import KaopingError
from .labels import PERIOD_STATUSES
from .schemes import parse_scheme

PUBLISHED = PERIOD_STATUSES[4]     # 已定稿
FORMAT = 1


# -- encoding -------------------------------------------------------------------------------
class _Writer:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, value) -> str:
        name = f"a{len(self.arrays)}.npy"
        self.arrays[name] = np.ascontiguousarray(value)
        return name

    def columns(self, named: dict) -> dict:
        """A dict of equal-length 1-D arrays (indicator code -> values) as one matrix and its codes."""
        codes = list(named)
        if not codes:
            return {"codes": [], "matrix": None}
        return {"codes": codes, "matrix": self.array(np.column_stack([np.asarray(named[c]) for c in codes]))}

    def frame(self, df: pd.DataFrame) -> list[dict]:
        """Each column: numbers and booleans as arrays, dates as int64 microseconds, text as JSON."""
        out = []
        for c in df.columns:
            s = df[c]
            kind = s.dtype.kind
            if kind in "fiub":
                out.append({"name": c, "dtype": str(s.dtype), "array": self.array(s.to_numpy())})
            elif kind == "M":
                us = s.astype("datetime64[us]").to_numpy().astype("int64")
                out.append({"name": c, "dtype": "datetime64[us]", "array": self.array(us)})
            else:
                values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in s]
                out.append({"name": c, "dtype": str(s.dtype), "text": values})
        return out


def encode(scores) -> bytes:
    """An ``engine.Scores`` (duck-typed: ``blocks`` and ``units``) as snapshot bytes."""
    w = _Writer()
    blocks = []
    for b in scores.blocks:
        index = [it.id for it in b.items]
        blocks.append({
            "scheme": b.scheme.yaml_text, "items": index, "keys": w.frame(b.keys),
            "cols": w.columns(b.cols), "na": w.columns(b.na), "batches": w.columns(b.batches),
            "derived": w.columns(b.derived), "groups": w.array(b.groups), "computed": w.array(b.computed),
            "points": w.array(b.points), "status": w.array(b.status),
            "section_points": w.array(b.section_points), "section_caps": w.array(b.section_caps),
            "adjustments": w.frame(_adjustment_frame(b))})
    meta = {"format": FORMAT, "blocks": blocks, "units": w.frame(scores.units)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(_entry("meta.json"), json.dumps(meta, ensure_ascii=False))
        for name, arr in w.arrays.items():
            raw = io.BytesIO()
            np.save(raw, arr, allow_pickle=False)
            z.writestr(_entry(name), raw.getvalue())
    return buf.getvalue()


def _entry(name: str) -> zipfile.ZipInfo:
    """A ZIP entry with a fixed date, so that the same results always encode to the same bytes
    (and the same sha256), whatever the clock says."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


_ADJ_COLUMNS = ["row", "col", "item_id", "points", "reason", "actor", "adjusted_at"]


def _adjustment_frame(block) -> pd.DataFrame:
    """The 核定 in force in a block: one row per (row, item index), as the engine looks them up."""
    adj = block.adjustments
    if isinstance(adj, dict):           # a block that was itself read from a snapshot
        frame = pd.DataFrame([{**rec, "row": r, "col": j} for (r, j), rec in adj.items()], columns=_ADJ_COLUMNS)
    else:                               # the engine's lookup: its frame and the item index of each row
        frame = adj._frame.assign(row=np.asarray(adj._rows), col=np.asarray(adj._cols))
    frame = frame.reindex(columns=_ADJ_COLUMNS)
    frame["adjusted_at"] = pd.to_datetime(frame["adjusted_at"])
    return frame.astype({"row": "int64", "col": "int64", "points": "float64"})


# -- decoding -------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _scheme(text: str):
    return parse_scheme(text)


class _Reader:
    def __init__(self, z: zipfile.ZipFile):
        self.z = z

    def array(self, name: str) -> np.ndarray:
        with self.z.open(name) as f:
            return np.load(io.BytesIO(f.read()), allow_pickle=False)

    def columns(self, named: dict) -> dict:
        if not named["codes"]:
            return {}
        matrix = self.array(named["matrix"])
        return {code: np.ascontiguousarray(matrix[:, j]) for j, code in enumerate(named["codes"])}

    def frame(self, cols: list[dict]) -> pd.DataFrame:
        data = {}
        for c in cols:
            if "array" in c:
                arr = self.array(c["array"])
                if c["dtype"].startswith("datetime64"):
                    arr = arr.astype("datetime64[us]")
                data[c["name"]] = pd.Series(arr, dtype=arr.dtype)
            else:
                s = pd.Series(c["text"], dtype=object)
                if c["dtype"] != "object":
                    try:
                        s = s.astype(c["dtype"])
                    except (TypeError, ValueError):
                        pass
                data[c["name"]] = s
        return pd.DataFrame(data)


def decode(data: bytes) -> dict:
    """Snapshot bytes as ``{"blocks": [Block keyword arguments], "units": DataFrame}``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            meta = json.loads(z.read("meta.json").decode("utf-8"))
            if meta.get("format") != FORMAT:
                raise KaopingError(f"定稿快照的格式版本 {meta.get('format')} 无法读取")
            r = _Reader(z)
            blocks = []
            for b in meta["blocks"]:
                scheme = _scheme(b["scheme"])
                items = scheme.items
                if [it.id for it in items] != b["items"]:
                    raise KaopingError(f"定稿快照中考评表 {scheme.id} 的条目与快照不一致")
                adj = r.frame(b["adjustments"])
                adjustments = {(int(a["row"]), int(a["col"])): a
                               for a in adj.drop(columns="col").assign(col=adj["col"]).to_dict("records")}
                blocks.append({
                    "scheme": scheme, "keys": r.frame(b["keys"]), "cols": r.columns(b["cols"]),
                    "na": r.columns(b["na"]), "groups": r.array(b["groups"]), "items": items,
                    "computed": r.array(b["computed"]), "points": r.array(b["points"]),
                    "status": r.array(b["status"]), "section_points": r.array(b["section_points"]),
                    "section_caps": r.array(b["section_caps"]), "adjustments": adjustments,
                    "batches": r.columns(b["batches"]), "derived": r.columns(b["derived"])})
            return {"blocks": blocks, "units": r.frame(meta["units"])}
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise KaopingError(f"定稿快照已损坏,无法读取:{exc}") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the store ------------------------------------------------------------------------------
_FROZEN_SQL = """
    WITH st AS (SELECT period, arg_max(status, event_id) AS status FROM period_events GROUP BY period)
    SELECT s.period, s.data, s.sha256 FROM period_snapshots s JOIN st USING (period)
    WHERE st.status = ? {where}
    QUALIFY row_number() OVER (PARTITION BY s.period ORDER BY s.snapshot_id DESC) = 1"""


def frozen(con, periods: list[str] | None) -> dict[str, bytes]:
    """The snapshot of each published period among ``periods`` (every published period when None)."""
    if periods is not None and not periods:
        return {}
    params: list = [PUBLISHED]
    where = ""
    if periods is not None:
        where = f"AND s.period IN ({', '.join('?' * len(periods))})"
        params += list(periods)
    try:
        rows = con.execute(_FROZEN_SQL.format(where=where), params).fetchall()
    except duckdb.CatalogException:     # a database of round 1 opened read-only: no lifecycle tables
        return {}
    out = {}
    for period, data, digest in rows:
        data = bytes(data)
        if digest and sha256(data) != digest:
            raise KaopingError(f"{period} 的定稿快照校验失败(数据被改动),请联系管理员")
        out[period] = data
    return out


def periods_with_data(con) -> list[str]:
    """Every period with a current submission or an adjustment (what the engine scores)."""
    return [r[0] for r in con.execute(
        "SELECT period FROM current_submissions UNION SELECT period FROM adjustments ORDER BY 1").fetchall()]
