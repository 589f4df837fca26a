"""问题整改: problems found by third-party checks (第三方检测) and their rectification.

A problem belongs to one unit (and the quarter it was found in). The office records it; the unit
sees its own problems and marks one 已整改 with a note; the office then 复核: accepts it
(已复核) or sends it back (待整改, with the reason). Every change is written with an audit row in
the same transaction. Nothing is deleted.
"""
from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import pandas as pd

from . import periods
from .audit import record
from .errors import InputError, NotFound
from .labels import PROBLEM_STATUS
from .permissions import User, require

OPEN, RECTIFIED, VERIFIED = "open", "rectified", "verified"
STATUS_LABELS = PROBLEM_STATUS
SOURCES = ("第三方检测", "上级通报", "网站普查", "群众反映", "日常检查")
MAX_TEXT = 2000

COLUMNS = ["rect_id", "unit_code", "unit_name", "group", "period", "source", "description", "found_at",
           "deadline", "status", "status_label", "overdue", "rectified_at", "note", "updated_by", "updated_at"]


def current_date() -> date:
    """The system date, or ``KAOPING_TODAY=YYYY-MM-DD`` (tests and demos)."""
    fixed = os.environ.get("KAOPING_TODAY", "").strip()
    if fixed:
        try:
            return date.fromisoformat(fixed)
        except ValueError:
            raise InputError(f"环境变量 KAOPING_TODAY「{fixed}」不是日期(应为 2026-01-10 这样的格式)") from None
    return date.today()


def ledger_counts(con, period_list: list[str] | None) -> pd.DataFrame:
    """One row per problem with 0/1 columns ``assigned, open, overdue, closed_on_time`` (for
    ``computed: {ledger: …}`` indicators), against :func:`current_date`."""
    where = f"WHERE period IN ({', '.join('?' * len(period_list))})" if period_list is not None else ""
    df = con.execute(f"SELECT unit_code, period, item_id, status, deadline, rectified_at FROM rectifications {where}",
                     period_list or []).df()
    now = pd.Timestamp(current_date())
    deadline = pd.to_datetime(df["deadline"])
    done = df["status"] == VERIFIED
    return df.assign(assigned=1, open=(~done).astype(int),
                     overdue=(~done & deadline.notna() & (deadline < now)).astype(int),
                     closed_on_time=(done & (deadline.isna() | (pd.to_datetime(df["rectified_at"]) <= deadline)))
                     .astype(int))


def _text(value, what: str, *, required: bool = True) -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value).strip()
    if required and not text:
        raise InputError(f"{what}不能为空")
    if len(text) > MAX_TEXT:
        raise InputError(f"{what}不能超过{MAX_TEXT}个字符")
    return text


def _date(value, what: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"{what}「{value}」不是日期(应为 2025-03-31 这样的格式)") from None


def list_rectifications(store, actor: User, *, unit_code: str | None = None, period: str | None = None,
                        status: str | None = None, today: date | None = None) -> pd.DataFrame:
    """Problems, newest first. The office and checkers see all (or one unit's); a unit only its own."""
    require(actor, "problems.view", unit=unit_code)
    if actor.is_unit:
        unit_code = actor.unit_code
    sql = """SELECT r.rect_id, r.unit_code, u.unit_name, u.grp AS "group", r.period, r.source, r.description,
                    r.found_at, r.deadline, r.status, r.rectified_at, r.note, r.updated_by, r.updated_at
             FROM rectifications r LEFT JOIN units u USING (unit_code) WHERE true"""
    params: list = []
    if unit_code is not None:
        sql += " AND r.unit_code = ?"
        params.append(unit_code)
    if period:
        sql += " AND r.period = ?"
        params.append(periods.parse_period(period))
    if status:
        if status not in STATUS_LABELS:
            raise InputError(f"整改状态只能是 {'、'.join(STATUS_LABELS.values())}")
        sql += " AND r.status = ?"
        params.append(status)
    df = store.df(sql + " ORDER BY r.rect_id DESC", params)
    today = today or current_date()
    df["status_label"] = df["status"].map(STATUS_LABELS).fillna(df["status"])
    deadline = pd.to_datetime(df["deadline"])
    df["overdue"] = (df["status"] == OPEN) & deadline.notna() & (deadline < pd.Timestamp(today))
    return df[COLUMNS].reset_index(drop=True)


def summary(df: pd.DataFrame) -> dict:
    """Counts for the summary cards of a list from :func:`list_rectifications`."""
    return {"total": len(df), "open": int((df["status"] == OPEN).sum()),
            "rectified": int((df["status"] == RECTIFIED).sum()),
            "verified": int((df["status"] == VERIFIED).sum()), "overdue": int(df["overdue"].sum())}


def add_rectification(store, actor: User, unit_code: str, period: str, source: str, description: str,
                      *, found_at=None, deadline=None) -> int:
    """Record a problem (office or checker); returns its id."""
    require(actor, "problems.add")
    period = periods.parse_period(period)
    source = _text(source, "问题来源")
    description = _text(description, "问题描述")
    found = _date(found_at, "发现日期") or current_date()
    due = _date(deadline, "整改期限")
    if due is not None and due < found:
        raise InputError("整改期限不能早于发现日期")

    def write(cur):
        if not cur.execute("SELECT 1 FROM units WHERE unit_code = ?", [unit_code]).fetchone():
            raise NotFound(f"单位代码「{unit_code}」不存在")
        rect_id = cur.execute("SELECT nextval('seq_rectification')").fetchone()[0]
        cur.execute("INSERT INTO rectifications (rect_id, unit_code, period, source, description, found_at, "
                    "deadline, status, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [rect_id, unit_code, period, source, description, found, due, OPEN, actor.username,
                     datetime.now()])
        record(cur, actor, "rectification", f"{unit_code} #{rect_id}", f"登记问题({source}):{description[:60]}")
        return int(rect_id)

    return store.write(write)


def _current(cur, rect_id: int):
    row = cur.execute("SELECT rect_id, unit_code, status FROM rectifications WHERE rect_id = ?",
                      [int(rect_id)]).fetchone()
    if row is None:
        raise NotFound(f"整改问题 #{rect_id} 不存在")
    return row


def mark_rectified(store, actor: User, rect_id: int, note: str, *, on=None) -> str:
    """The unit (or the office for it) reports a problem as rectified, with a note of what was done."""
    note = _text(note, "整改说明")
    when = _date(on, "整改日期") or current_date()

    require(actor, "problems.respond")

    def write(cur):
        _, unit_code, status = _current(cur, rect_id)
        require(actor, "problems.respond", unit=unit_code)
        if status == VERIFIED:
            raise InputError(f"整改问题 #{rect_id} 已复核通过,无需再次提交")
        cur.execute("UPDATE rectifications SET status = ?, rectified_at = ?, note = ?, updated_by = ?, "
                    "updated_at = ? WHERE rect_id = ?",
                    [RECTIFIED, when, note, actor.username, datetime.now(), int(rect_id)])
        record(cur, actor, "rectification", f"{unit_code} #{rect_id}", f"标记已整改:{note[:60]}")
        return f"问题 #{rect_id} 已标记为已整改,等待政务公开办复核"

    return store.write(write)


def review(store, actor: User, rect_id: int, accept: bool, note: str = "") -> str:
    """The office or a checker 复核: accept (已复核) or send back (待整改; a reason is required)."""
    require(actor, "problems.review")
    note = _text(note, "退回理由", required=not accept)

    def write(cur):
        _, unit_code, status = _current(cur, rect_id)
        if status != RECTIFIED:
            raise InputError(f"整改问题 #{rect_id} 当前为「{STATUS_LABELS.get(status, status)}」,"
                             "只有已整改的问题可以复核")
        if accept:
            cur.execute("UPDATE rectifications SET status = ?, updated_by = ?, updated_at = ? WHERE rect_id = ?",
                        [VERIFIED, actor.username, datetime.now(), int(rect_id)])
            record(cur, actor, "rectification", f"{unit_code} #{rect_id}",
                   "复核通过" + (f":{note[:60]}" if note else ""))
            return f"问题 #{rect_id} 复核通过"
        cur.execute("UPDATE rectifications SET status = ?, note = ?, updated_by = ?, updated_at = ? "
                    "WHERE rect_id = ?", [OPEN, f"复核退回:{note}", actor.username, datetime.now(), int(rect_id)])
        record(cur, actor, "rectification", f"{unit_code} #{rect_id}", f"复核退回:{note[:60]}")
        return f"问题 #{rect_id} 已退回重新整改"

    return store.write(write)


_DEMO_PROBLEMS = (
    ("第三方检测", "网站首页存在错链、断链,部分栏目链接无法打开"),
    ("第三方检测", "政策解读与政策文件未关联发布"),
    ("网站普查", "信息公开指南未按新条例更新"),
    ("第三方检测", "依申请公开答复书未告知救济途径"),
    ("上级通报", "政务公开年度报告未按时发布"),
    ("第三方检测", "重点领域信息栏目长期未更新(超过6个月)"),
    ("群众反映", "政务服务事项办事指南与实际办理要求不一致"),
    ("网站普查", "网站未提供无障碍浏览功能"),
)


def seed_demo_rectifications(store, cur=None, *, today: date | None = None) -> int:
    """Demo problems for a few units of every group, in every state (inside the caller's transaction).

    Called as ``seed_demo_rectifications(store, cur)`` or directly as ``store.write``'s function
    (``seed_demo_rectifications(cur)``).
    """
    if cur is None:
        cur = store
    today = today or current_date()
    units = cur.execute("""SELECT unit_code, grp FROM units
                           QUALIFY row_number() OVER (PARTITION BY grp ORDER BY unit_code) <= 6
                           ORDER BY grp, unit_code""").fetchall()
    latest = cur.execute("SELECT max(period) FROM current_submissions").fetchone()[0] or "2025Q4"
    n = 0
    for k, (unit_code, _grp) in enumerate(units):
        source, text = _DEMO_PROBLEMS[k % len(_DEMO_PROBLEMS)]
        found = today - timedelta(days=50 - 3 * (k % 10))
        due = found + timedelta(days=30 + 15 * (k % 3))
        status = (OPEN, RECTIFIED, VERIFIED)[k % 3]
        rectified_at = found + timedelta(days=12) if status != OPEN else None
        note = "已完成整改并在网站公示" if status != OPEN else None
        rect_id = cur.execute("SELECT nextval('seq_rectification')").fetchone()[0]
        cur.execute("INSERT INTO rectifications (rect_id, unit_code, period, source, description, found_at, "
                    "deadline, status, rectified_at, note, updated_by, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [rect_id, unit_code, latest, source, text, found, due, status, rectified_at, note, "系统",
                     datetime.now()])
        n += 1
    if n:
        record(cur, "系统", "rectification", "", f"载入{n}条演示整改问题")
    return n
