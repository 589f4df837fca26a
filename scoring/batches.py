"""Upload batches: the history of what entered the system, and rolling a batch back.

Nothing is deleted: a rollback marks the batch (``rolled_back_at``/``rolled_back_by``), and the
views ``current_submissions``/``current_values`` then take, for each unit and period, the newest
batch that is not rolled back: the previous values become current again.
"""
from __future__ import annotations

import pandas as pd

from . import lifecycle
from .audit import record
from .errors import InputError, NotFound
from .labels import BATCH_CURRENT as STATUS_CURRENT
from .labels import BATCH_ROLLED_BACK as STATUS_ROLLED_BACK
from .labels import BATCH_SUPERSEDED as STATUS_SUPERSEDED
from .permissions import User, require

COLUMNS = ["batch_id", "uploaded_by", "uploaded_at", "file_name", "sha256", "n_rows", "periods", "units",
           "status", "current_rows", "rolled_back_at", "rolled_back_by"]

_LIST_SQL = """
    WITH cur AS (SELECT batch_id, count(DISTINCT (unit_code, period)) AS n FROM current_values GROUP BY batch_id)
    SELECT b.batch_id, b.uploaded_by, b.uploaded_at, b.file_name, b.sha256, b.n_rows, b.periods, b.units,
           CASE WHEN b.rolled_back_at IS NOT NULL THEN '{rolled_back}'
                WHEN coalesce(cur.n, 0) = 0 THEN '{superseded}'
                ELSE '{current}' END AS status,
           coalesce(cur.n, 0) AS current_rows, b.rolled_back_at, b.rolled_back_by
    FROM batches b LEFT JOIN cur USING (batch_id)
    {where}
    ORDER BY b.batch_id DESC"""


def _list_sql(where: str) -> str:
    return _LIST_SQL.format(where=where, current=STATUS_CURRENT, superseded=STATUS_SUPERSEDED,
                            rolled_back=STATUS_ROLLED_BACK)


def list_batches(store, actor: User) -> pd.DataFrame:
    """Every batch, newest first, with its status (当前 / 已被替代 / 已回滚).

    ``current_rows`` counts the batch's unit-periods that still have a current figure from it (a
    batch stays 当前 while any of its figures is current). The office sees every
    batch; a checker its own uploads; a unit account the batches that touch its own unit, with
    ``units`` reduced to it.
    """
    require(actor, "batches.view")
    if actor.is_office:
        df = store.df(_list_sql(""))
    elif actor.is_checker:
        df = store.df(_list_sql("WHERE b.uploaded_by = ?"), [actor.username])
    else:
        df = store.df(_list_sql("WHERE list_contains(b.units, ?)"), [actor.unit_code or ""])
        df["units"] = [[actor.unit_code] for _ in range(len(df))]
    for c in ("periods", "units"):
        df[c] = [list(v) if v is not None else [] for v in df[c]]
    df["current_rows"] = df["current_rows"].astype("int64")
    return df[COLUMNS].reset_index(drop=True)


def _batch_id(value) -> int:
    try:
        text = str(value).strip().lstrip("#")
        batch_id = int(text)
    except (TypeError, ValueError):
        raise InputError(f"批次号「{value}」无效,应为整数,如 3") from None
    return batch_id


def rollback(store, batch_id, actor: User) -> str:
    """Roll a batch back (office only), in one transaction with its audit row; returns a Chinese summary.

    Refused when the batch holds figures of a quarter that is 已定稿 or 公示中 (``lifecycle``).
    """
    require(actor, "batches.rollback")
    bid = _batch_id(batch_id)

    def write(cur):
        row = cur.execute("SELECT file_name, rolled_back_at, rolled_back_by, periods FROM batches WHERE batch_id = ?",
                          [bid]).fetchone()
        if row is None:
            raise NotFound(f"批次 #{bid} 不存在")
        file_name, at, by, batch_periods = row
        if at is not None:
            raise InputError(f"批次 #{bid}「{file_name}」已于 {at:%Y-%m-%d %H:%M} 由 {by} 回滚,不能重复回滚")
        touched = {r[0] for r in cur.execute("SELECT DISTINCT period FROM indicator_values WHERE batch_id = ? "
                                             "UNION SELECT period FROM submissions WHERE batch_id = ?",
                                             [bid, bid]).fetchall()}
        problem = lifecycle.rollback_problem_cur(cur, bid, sorted(touched | set(batch_periods or [])))
        if problem:   # a published (or 公示中) quarter's figures do not change under it
            raise InputError(problem)
        # the figures this batch supplies now, and how many an older live batch also has (they come back)
        supplied, restored = cur.execute("""
            SELECT count(*), count(*) FILTER (WHERE EXISTS (
                SELECT 1 FROM indicator_values v JOIN batches b USING (batch_id)
                WHERE v.unit_code = c.unit_code AND v.period = c.period AND v.indicator = c.indicator
                  AND v.batch_id <> c.batch_id AND b.rolled_back_at IS NULL))
            FROM current_values c WHERE c.batch_id = ?""", [bid]).fetchall()[0]
        cur.execute("UPDATE batches SET rolled_back_at = now(), rolled_back_by = ? WHERE batch_id = ?",
                    [actor.username, bid])
        emptied = supplied - restored
        if not supplied:
            effect = "该批次的数据此前已全部被后来的批次替代,当前数据不变"
        else:
            parts = []
            if restored:
                parts.append(f"{restored}个数值恢复为此前批次的数据")
            if emptied:
                parts.append(f"{emptied}个数值不再有上报数据")
            effect = ",".join(parts)
        record(cur, actor, "rollback", f"批次 #{bid}", f"{file_name}:{effect}")
        return f"已回滚批次 #{bid}「{file_name}」:{effect}"

    return store.write(write)
