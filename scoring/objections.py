"""异议: during 公示 a unit objects to an item of its provisional result; the office answers each.

An answer either accepts the 异议 with a 核定 (whose reason names it: ``采纳异议#3:…``), written in
the same transaction, or rejects it with a reason. A quarter is published only once every 异议
has its answer (``lifecycle.publish``). Everything is audited.

This module sits above :mod:`scoring.lifecycle` and :mod:`scoring.adjustments` (the lifecycle's
guards are read by adjustments, so the 异议, which make adjustments, cannot live in lifecycle).
"""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from . import adjustments, lifecycle, periods
from .accounts import require_active
from .audit import record
from .errors import InputError, NotFound
from .labels import OBJECTION_STATUS
from .permissions import User, require
from .rules import fmt
from .schemes import scheme_for
from .units import unit

PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"
MAX_REASON = 2000
COLUMNS = ["id", "unit_code", "unit_name", "period", "item_id", "item_name", "reason", "filed_by", "filed_at",
           "status", "answer", "points", "answered_by", "answered_at"]


def _text(value, what: str) -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value).strip()
    if not text:
        raise InputError(f"{what}不能为空")
    if len(text) > MAX_REASON:
        raise InputError(f"{what}不能超过{MAX_REASON}个字符")
    return text


def _objection_id(value) -> int:
    try:
        return int(str(value).strip().lstrip("#"))
    except (TypeError, ValueError):
        raise InputError(f"异议编号「{value}」无效,应为整数,如 3") from None


def _item(store, u: dict, period: str, item: str):
    """The scheme item of ``item`` (its id, or its exact name) for the unit's group in ``period``."""
    scheme = scheme_for(store, u["group"], period)
    if scheme is None:
        raise NotFound(f"{u['group']} 在 {period} 没有适用的考评表")
    key = (item or "").strip()
    found = scheme.item(key) or next((i for i in scheme.items if i.name == key), None)
    if found is None:
        raise NotFound(f"考评表 {scheme.id} 中没有考评项「{key}」(可填条目编号或名称)")
    return found


def file(store, actor: User, unit_code: str, period: str, item: str, reason: str) -> tuple[int, str]:
    """A unit's 异议 on one item of its own provisional result, during 公示 (until its end date)."""
    require(actor, "objection.file", unit=unit_code)
    actor = require_active(store, actor, "提出异议")
    period = periods.parse_period(period)
    reason = _text(reason, "异议理由")
    u = unit(store, unit_code)
    if u is None:
        raise NotFound(f"单位代码「{unit_code}」不存在")
    it = _item(store, u, period, item)

    def write(cur):
        problem = lifecycle.objection_window(lifecycle.state_cur(cur, period))
        if problem:
            raise InputError(problem)
        open_one = cur.execute("SELECT objection_id FROM objections WHERE unit_code = ? AND period = ? AND item_id = ? "
                               "AND status = ?", [unit_code, period, it.id, PENDING]).fetchone()
        if open_one:
            raise InputError(f"「{it.name}」已有待答复的异议#{open_one[0]},请等待政务公开办答复")
        oid = cur.execute("SELECT nextval('seq_objection')").fetchone()[0]
        cur.execute("INSERT INTO objections (objection_id, unit_code, period, item_id, reason, filed_by, filed_at, "
                    "status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [oid, unit_code, period, it.id, reason, actor.username, datetime.now(), PENDING])
        record(cur, actor, "objection", f"异议#{oid} {unit_code} {period} {it.id}", f"提出异议:{reason}")
        return oid

    oid = store.write(write)
    return oid, f"已提交异议#{oid}:{u['unit_name']} {period}「{it.name}」,等待政务公开办答复"


def answer(store, actor: User, objection_id, reason: str, *, accept_points: float | None = None) -> str:
    """The office's answer: 采纳 with a 核定 of ``accept_points`` (same transaction), or 不予采纳."""
    require(actor, "objection.answer")
    actor = require_active(store, actor, "答复异议")
    oid = _objection_id(objection_id)
    reason = _text(reason, "答复理由")
    row = store.one("SELECT unit_code, period, item_id, status FROM objections WHERE objection_id = ?", [oid])
    if row is None:
        raise NotFound(f"异议#{oid} 不存在")
    unit_code, period, item_id, status = row
    if status != PENDING:
        raise InputError(f"异议#{oid} 已答复({OBJECTION_STATUS[status]}),不能重复答复")
    prepared = None
    if accept_points is not None:
        prepared = adjustments.prepare(store, actor, unit_code, period, item_id, accept_points,
                                       f"采纳异议#{oid}:{reason}")

    def write(cur):
        now = cur.execute("SELECT status FROM objections WHERE objection_id = ?", [oid]).fetchone()[0]
        if now != PENDING:
            raise InputError(f"异议#{oid} 已答复({OBJECTION_STATUS[now]}),不能重复答复")
        st = lifecycle.state_cur(cur, period)
        if st.status not in (lifecycle.PUBLICITY, lifecycle.REVIEWING):
            raise InputError(f"{period} 当前状态为{st.status},不能答复异议")
        adj_id = prepared.write(cur) if prepared else None
        cur.execute("UPDATE objections SET status = ?, answer = ?, points = ?, adj_id = ?, answered_by = ?, "
                    "answered_at = ? WHERE objection_id = ?",
                    [ACCEPTED if prepared else REJECTED, reason, prepared.points if prepared else None, adj_id,
                     actor.username, datetime.now(), oid])
        verdict = f"采纳,核定为{fmt(prepared.points)}分" if prepared else "不予采纳"
        record(cur, actor, "objection", f"异议#{oid} {unit_code} {period} {item_id}", f"答复:{verdict},理由:{reason}")

    store.write(write)
    if prepared:
        return f"异议#{oid} 已采纳:{prepared.unit['unit_name']} {period}「{prepared.item.name}」核定为{fmt(prepared.points)}分"
    return f"异议#{oid} 不予采纳,已答复"


def list_objections(store, actor: User, period: str | None = None, unit_code: str | None = None) -> pd.DataFrame:
    """异议 with their answers, newest first (pending first for the office); a unit sees its own."""
    require(actor, "objection.view", unit=unit_code)
    actor = require_active(store, actor, "查看异议")
    if actor.is_unit:
        unit_code = actor.unit_code
    sql = """SELECT o.objection_id AS id, o.unit_code, u.unit_name, o.period, o.item_id, o.reason, o.filed_by,
                    o.filed_at, o.status, o.answer, o.points, o.answered_by, o.answered_at, u.grp
             FROM objections o LEFT JOIN units u USING (unit_code) WHERE true"""
    params: list = []
    if unit_code:
        sql += " AND o.unit_code = ?"
        params.append(unit_code)
    if period:
        sql += " AND o.period = ?"
        params.append(periods.parse_period(period))
    df = store.df(sql + " ORDER BY o.status <> 'pending', o.objection_id DESC", params)
    names = {}
    for (grp, p), _ in df.groupby(["grp", "period"]):
        scheme = scheme_for(store, grp, p)
        if scheme is not None:
            names.update({(grp, p, i.id): i.name for i in scheme.items})
    df["item_name"] = [names.get((g, p, i), i) for g, p, i in zip(df["grp"], df["period"], df["item_id"])]
    df["status_label"] = df["status"].map(OBJECTION_STATUS)
    return df[COLUMNS + ["status_label"]].reset_index(drop=True)


def records(df: pd.DataFrame) -> list[dict]:
    """``objection list --format json``: ``id, unit_code, unit_name, period, item_id, item_name, reason,
    filed_by, filed_at, status`` (待答复/已采纳/不予采纳), ``answer, points, answered_by, answered_at``."""
    out = []
    for r in df.itertuples():
        out.append({"id": int(r.id), "unit_code": r.unit_code, "unit_name": r.unit_name, "period": r.period,
                    "item_id": r.item_id, "item_name": r.item_name, "reason": r.reason, "filed_by": r.filed_by,
                    "filed_at": _iso(r.filed_at), "status": r.status_label,
                    "answer": None if pd.isna(r.answer) else r.answer,
                    "points": None if pd.isna(r.points) else float(r.points),
                    "answered_by": None if pd.isna(r.answered_by) else r.answered_by,
                    "answered_at": _iso(r.answered_at)})
    return out


def _iso(value):
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat(timespec="seconds")
