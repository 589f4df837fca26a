"""核定: the office sets an item's points for a unit and period, with a reason."""
from __future__ import annotations

import pandas as pd

from . import lifecycle, periods
from .accounts import require_active
from .audit import record
from .errors import InputError, NotFound
from .limits import finite
from .permissions import User, require
from .rules import fmt
from .schemes import scheme_for
from .units import unit


MAX_REASON = 2000


def adjust(store, actor: User, unit_code: str, period: str, item_id: str, points: float, reason: str) -> str:
    """Record an adjustment (a revision is a new row that supersedes the previous one).

    Allowed while the quarter is 报送中, 审核中 or 公示中; a 已定稿 quarter must be re-opened first.
    """
    prepared = prepare(store, actor, unit_code, period, item_id, points, reason)
    store.write(prepared.write)
    return prepared.message


class Prepared:
    """A checked 核定, written by :meth:`write` inside the caller's transaction (e.g. with an 异议's answer)."""

    def __init__(self, actor: User, u: dict, period: str, item, points: float, reason: str):
        self.actor, self.unit, self.period, self.item, self.points, self.reason = actor, u, period, item, points, reason
        self.message = f"已核定:{u['unit_name']} {period}「{item.name}」{fmt(points)}分"

    def write(self, cur) -> int:
        """Insert the adjustment and its audit row; returns its id. Refused once the quarter is 已定稿."""
        problem = lifecycle.adjust_problem_cur(cur, self.period)
        if problem:
            raise InputError(problem)
        adj_id = cur.execute("SELECT nextval('seq_adjustment')").fetchone()[0]
        cur.execute("INSERT INTO adjustments VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                    [adj_id, self.unit["unit_code"], self.period, self.item.id, self.points, self.reason,
                     self.actor.username])
        record(cur, self.actor, "adjust", f"{self.unit['unit_code']} {self.period} {self.item.id}",
               f"核定为{fmt(self.points)}分,理由:{self.reason}")
        return adj_id


def prepare(store, actor: User, unit_code: str, period: str, item_id: str, points: float, reason: str) -> Prepared:
    """Check a 核定 (who, reason, unit, scheme, item, points) without writing it."""
    require(actor, "adjust")
    actor = require_active(store, actor, "核定得分")
    period = periods.parse_period(period)
    reason = (reason or "").strip()
    if not reason:
        raise InputError("核定必须填写理由")
    if len(reason) > MAX_REASON:
        raise InputError(f"核定理由不能超过{MAX_REASON}个字符")
    u = unit(store, unit_code)
    if u is None:
        raise NotFound(f"单位代码「{unit_code}」不存在")
    scheme = scheme_for(store, u["group"], period)
    if scheme is None:
        raise NotFound(f"{u['group']} 在 {period} 没有适用的考评表")
    item = scheme.item(item_id)
    if item is None:
        raise NotFound(f"考评表 {scheme.id} 中没有条目「{item_id}」")
    points = finite(points, "核定分值")  # NaN, inf and 1e308 would break every ranking of the group
    if item.kind == "penalty":
        points = abs(points)
        if points > scheme.total_max:
            raise InputError(f"分值{fmt(points)}超出范围:重大扣分项「{item.name}」扣除的分数不能超过总分"
                             f"{fmt(scheme.total_max)}分")
    elif not 0 <= points <= item.max:
        raise InputError(f"分值{fmt(points)}超出范围:条目「{item.name}」应在0到{fmt(item.max)}分之间")
    with store.cursor() as cur:                 # refuse early; write() checks again in its transaction
        problem = lifecycle.adjust_problem_cur(cur, period)
    if problem:
        raise InputError(problem)
    return Prepared(actor, u, period, item, points, reason)


def list_adjustments(store, actor: User, unit_code: str | None = None, period: str | None = None) -> pd.DataFrame:
    """Every adjustment, newest first, with whether it is the current one for its item."""
    require(actor, "adjustments.view", unit=unit_code)
    if unit_code is None and not actor.is_office:
        unit_code = actor.unit_code     # a unit account's list is its own
    sql = """SELECT a.adj_id, a.unit_code, u.unit_name, a.period, a.item_id, a.points, a.reason, a.actor, a.adjusted_at,
                    row_number() OVER (PARTITION BY a.unit_code, a.period, a.item_id ORDER BY a.adj_id DESC) = 1 AS current
             FROM adjustments a LEFT JOIN units u USING (unit_code) WHERE true"""
    params = []
    if unit_code:
        sql += " AND a.unit_code = ?"
        params.append(unit_code)
    if period:
        sql += " AND a.period = ?"
        params.append(periods.parse_period(period))
    return store.df(sql + " ORDER BY a.adj_id DESC", params)
