"""The quarter lifecycle: 未开放 → 报送中 → 审核中 → 公示中 → 已定稿, and what each status allows.

Every change of status is one row of ``period_events`` (nothing is overwritten) and one row of the
audit log, in one transaction. A quarter with no event is ``报送中`` (a database of round 1, or
the hold-out files, keeps working as before). The office moves a quarter on:

| command | allowed from | to |
| --- | --- | --- |
| ``open P --until D`` | 未开放, 报送中 (a new deadline), 审核中 (submissions re-opened) | 报送中 |
| ``close P`` | 报送中; 公示中 (公示 withdrawn, back to review) | 审核中 |
| ``publicize P --until D`` | 审核中, 公示中 (a new end date) | 公示中 |
| ``publish P`` | 审核中 (no 公示), 公示中 (every 异议 answered) | 已定稿 |
| ``reopen P --reason R`` | 已定稿 | 审核中 |

What each status allows (the guards other modules ask):
- uploads (:func:`upload_problem`): a unit account only into 报送中; the office and checkers
  into 报送中 and 审核中; nobody into 公示中 or 已定稿 (close the 公示, or re-open, first);
- 核定 (:func:`adjust_problem_cur`): 报送中, 审核中, 公示中; never 已定稿 (or 未开放);
- rollback (:func:`rollback_problem_cur`): not of a batch that touches a 公示中 or 已定稿 quarter;
- what a unit sees (:func:`unit_scope`): its group's ranking of 已定稿 quarters (and of quarters
  the office never put under the lifecycle), its own provisional result during 公示中.

Publishing freezes the quarter's results (:mod:`scoring.snapshots`); the engine reads them from
there until the quarter is re-opened.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

from . import engine, periods, snapshots
from .accounts import require_active
from .audit import record
from .errors import InputError, KaopingError, NotFound
from .labels import PERIOD_STATUSES
from .permissions import SYSTEM, User, require
from .periods import today as current_date

NOT_OPEN, SUBMITTING, REVIEWING, PUBLICITY, PUBLISHED = PERIOD_STATUSES
DEFAULT_STATUS = SUBMITTING          # a quarter without any lifecycle record
MAX_REASON = 2000

# what a unit account may see of a quarter
SEE_GROUP, SEE_OWN, SEE_NONE = "group", "own", "none"


@dataclass(frozen=True)
class Transition:
    name: str
    label: str                 # what the office does, as a button says it
    sources: tuple[str, ...]
    target: str
    needs_until: bool = False
    needs_reason: bool = False


TRANSITIONS: dict[str, Transition] = {t.name: t for t in (
    Transition("open", "开放报送", (NOT_OPEN, SUBMITTING, REVIEWING), SUBMITTING, needs_until=True),
    Transition("close", "结束报送,进入审核", (SUBMITTING, PUBLICITY), REVIEWING),
    Transition("publicize", "公示结果", (REVIEWING, PUBLICITY), PUBLICITY, needs_until=True),
    Transition("publish", "定稿发布", (REVIEWING, PUBLICITY), PUBLISHED),
    Transition("reopen", "重新开放", (PUBLISHED,), REVIEWING, needs_reason=True),
)}


def action_label(name: str, status: str, recorded: bool = True) -> str:
    """The button's words for transition ``name`` from ``status`` (e.g. 修改报送截止日期)."""
    special = {("open", SUBMITTING): "修改报送截止日期", ("open", REVIEWING): "重新开放报送",
               ("close", PUBLICITY): "撤回公示,退回审核", ("publicize", PUBLICITY): "修改公示截止日期"}
    if not recorded:        # a quarter never put under the lifecycle: its first deadline
        return TRANSITIONS[name].label
    return special.get((name, status), TRANSITIONS[name].label)


def allowed(status: str) -> list[str]:
    """The transitions the office may make from ``status``, in the lifecycle's order."""
    return [name for name, t in TRANSITIONS.items() if status in t.sources]


@dataclass(frozen=True)
class PeriodState:
    """One quarter's place in the lifecycle. ``recorded``: the office has put it under the lifecycle."""

    period: str
    status: str
    deadline: date | None = None
    publicity_until: date | None = None
    published_at: datetime | None = None
    recorded: bool = False

    def record(self) -> dict:
        """SPEC's JSON keys: ``period, status, deadline, publicity_until, published_at``."""
        return {"period": self.period, "status": self.status,
                "deadline": self.deadline.isoformat() if self.deadline else None,
                "publicity_until": self.publicity_until.isoformat() if self.publicity_until else None,
                "published_at": self.published_at.isoformat(timespec="seconds") if self.published_at else None}


def cn_date(d) -> str:
    """``2026-01-10`` -> ``2026年1月10日`` (as people write dates)."""
    if d is None or (not isinstance(d, (date, datetime)) and pd.isna(d)):
        return "—"
    d = pd.Timestamp(d)
    return f"{d.year}年{d.month}月{d.day}日"


def parse_date(value, what: str = "日期") -> date:
    """A date from ``2026-01-10`` (or a date); a Chinese error naming the value otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = "" if value is None else str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what}「{text}」无效:应为 2026-01-10 这样的日期") from None


# -- reading ----------------------------------------------------------------------------------
_STATES_SQL = f"""
    SELECT period, arg_max(status, event_id) AS status,
           arg_max(until, event_id) FILTER (WHERE status = '{SUBMITTING}') AS deadline,
           arg_max(until, event_id) FILTER (WHERE status = '{PUBLICITY}') AS publicity_until,
           arg_max(happened_at, event_id) FILTER (WHERE status = '{PUBLISHED}') AS published_at
    FROM period_events {{where}} GROUP BY period"""


def _recorded(cur, period_list: list[str] | None = None) -> dict[str, PeriodState]:
    """The states of the quarters that have lifecycle records (all, or those of ``period_list``)."""
    where, params = "", []
    if period_list is not None:
        if not period_list:
            return {}
        where = f"WHERE period IN ({', '.join('?' * len(period_list))})"
        params = list(period_list)
    try:
        rows = cur.execute(_STATES_SQL.format(where=where), params).fetchall()
    except duckdb.CatalogException:      # a round-1 database opened read-only
        return {}
    out = {}
    for period, status, deadline, until, published_at in rows:
        out[period] = PeriodState(period, status, deadline, until,
                                  published_at if status == PUBLISHED else None, recorded=True)
    return out


def state_cur(cur, period: str) -> PeriodState:
    return _recorded(cur, [period]).get(period) or PeriodState(period, DEFAULT_STATUS)


def state(store, period: str) -> PeriodState:
    """The state of one quarter (``报送中`` when it has no lifecycle record)."""
    period = periods.parse_period(period)
    with store.cursor() as cur:
        return state_cur(cur, period)


def status_of(store, period: str) -> str:
    return state(store, period).status


def states(store, actor: User) -> list[PeriodState]:
    """Every quarter that has a lifecycle record or data (submissions or 核定), oldest first."""
    require(actor, "period.view")
    with store.cursor() as cur:
        recorded = _recorded(cur)
        with_data = [r[0] for r in cur.execute(
            "SELECT period FROM current_submissions UNION SELECT period FROM adjustments").fetchall()]
    every = sorted(set(recorded) | set(with_data), key=periods.period_index)
    return [recorded.get(p) or PeriodState(p, DEFAULT_STATUS) for p in every]


def states_frame(store, actor: User) -> pd.DataFrame:
    """:func:`states` as a table, with the number of 异议 waiting for an answer (for the office's page)."""
    rows = [s.record() | {"recorded": s.recorded} for s in states(store, actor)]
    df = pd.DataFrame(rows, columns=["period", "status", "deadline", "publicity_until", "published_at", "recorded"])
    pending = dict(store.rows("SELECT period, count(*) FROM objections WHERE status = 'pending' GROUP BY period"))
    df["pending_objections"] = [int(pending.get(p, 0)) for p in df["period"]]
    df["allowed"] = [[action_label(n, s, r) for n in allowed(s)] for s, r in zip(df["status"], df["recorded"])]
    return df


# -- what other modules ask -----------------------------------------------------------------------
def _upload_message(actor: User, st: PeriodState) -> str | None:
    if st.status == SUBMITTING:
        return None
    if actor.is_unit:
        return f"{st.period} 不在报送期(当前状态:{st.status})"
    if st.status == REVIEWING:
        return None
    hint = {NOT_OPEN: "请先开放报送",
            PUBLICITY: "公示期间如需更正数据,请先撤回公示、退回审核;或以核定更正得分",
            PUBLISHED: "如需更正,请先重新开放该季度并说明理由"}.get(st.status, "")
    return f"{st.period} 不在报送期(当前状态:{st.status}),不能上传数据:{hint}"


def upload_problems(store, actor: User, period_list: list[str]) -> dict[str, str]:
    """For each quarter of a file the actor may not upload into: the Chinese reason."""
    wanted = list(dict.fromkeys(period_list))
    with store.cursor() as cur:
        recorded = _recorded(cur, wanted)
    out = {}
    for p in wanted:
        message = _upload_message(actor, recorded.get(p) or PeriodState(p, DEFAULT_STATUS))
        if message:
            out[p] = message
    return out


def upload_problem(store, actor: User, period: str) -> str | None:
    """Why ``actor`` may not upload figures of ``period`` now, or None.

    A unit account uploads only into a quarter that is 报送中 (``2024Q1 不在报送期(当前状态:已定稿)``);
    the office and checkers also into 审核中; nobody into 公示中 or 已定稿.
    """
    return upload_problems(store, actor, [period]).get(period)


def adjust_problem_cur(cur, period: str) -> str | None:
    """Why no 核定 of ``period`` may be recorded now (inside a transaction), or None."""
    st = state_cur(cur, period)
    if st.status == PUBLISHED:
        return f"{period} 已定稿,不能核定;如需更正,请先重新开放该季度并说明理由"
    if st.status == NOT_OPEN:
        return f"{period} 尚未开放,不能核定"
    return None


def rollback_problem_cur(cur, batch_id: int, period_list: list[str]) -> str | None:
    """Why a batch touching ``period_list`` may not be rolled back now (inside a transaction), or None."""
    recorded = _recorded(cur, list(period_list))
    for p in sorted(recorded, key=periods.period_index):
        st = recorded[p]
        if st.status == PUBLISHED:
            return (f"批次 #{batch_id} 含已定稿的季度 {p} 的数据,不能回滚:已发布的结果不能改动;"
                    "如需更正,请先重新开放该季度并说明理由")
        if st.status == PUBLICITY:
            return (f"批次 #{batch_id} 含公示中的季度 {p} 的数据,不能回滚:公示期间如需更正数据,"
                    "请先撤回公示、退回审核")
    return None


def unit_scope(store, period_list: list[str]) -> dict[str, str]:
    """What a unit account sees of each quarter: ``group`` (its group's ranking: 已定稿, or a quarter
    never put under the lifecycle), ``own`` (only its own provisional result: 公示中) or ``none``
    (报送中, 审核中, 未开放 under the lifecycle: results are not out yet)."""
    wanted = list(dict.fromkeys(period_list))
    with store.cursor() as cur:
        recorded = _recorded(cur, wanted)
    scope = {PUBLISHED: SEE_GROUP, PUBLICITY: SEE_OWN}
    return {p: scope.get(recorded[p].status, SEE_NONE) if p in recorded else SEE_GROUP for p in wanted}


def visible_rows(store, actor: User, df: pd.DataFrame) -> pd.DataFrame:
    """The rows of a frame with ``period`` and ``unit_code`` that ``actor`` may see under the lifecycle.

    The office (and anyone who is not a unit account) sees every row; a unit account sees its
    group's rows of ``group`` quarters and its own row of ``own`` quarters (see :func:`unit_scope`).
    """
    if not actor.is_unit or df.empty:
        return df
    scope = unit_scope(store, df["period"].unique().tolist())
    mode = df["period"].map(scope)
    keep = (mode == SEE_GROUP) | ((mode == SEE_OWN) & (df["unit_code"] == actor.unit_code))
    return df[keep.to_numpy()].reset_index(drop=True)


# -- notices people read --------------------------------------------------------------------------
def days_left_text(until: date, today: date) -> str:
    days = (until - today).days
    if days > 0:
        return f"还剩{days}天"
    if days == 0:
        return "今天截止"
    return f"已过截止日期{-days}天"


def upload_notices(store, actor: User) -> list[tuple[str, str]]:
    """What 数据上传 tells a clerk, as (``info`` | ``warning``, text): each open quarter's deadline
    (``2025年第四季度(2025Q4)报送截止:2026年1月10日,还剩3天``), or that the latest quarter is closed."""
    today = current_date()
    recorded = [s for s in states(store, actor) if s.recorded]
    lines = []
    for s in recorded:
        if s.status != SUBMITTING:
            continue
        name = f"{periods.label(s.period)}({s.period})"
        if s.deadline is None:
            lines.append(("info", f"{name}正在报送,未设截止日期"))
        elif s.deadline < today:
            lines.append(("warning", f"{name}报送截止:{cn_date(s.deadline)},{days_left_text(s.deadline, today)},"
                                     "请尽快报送或联系政务公开办"))
        else:
            lines.append(("info", f"{name}报送截止:{cn_date(s.deadline)},{days_left_text(s.deadline, today)}"))
    if not lines and recorded:
        last = recorded[-1]
        name = f"{periods.label(last.period)}({last.period})"
        if last.status == REVIEWING and not actor.is_unit:
            lines.append(("info", f"{name}审核中:单位报送已截止,政务公开办和第三方/检查组仍可上传"))
        else:
            lines.append(("warning", f"{name}报送已截止(当前状态:{last.status}),单位不能再上传该季度的数据"))
    return lines


def status_notice(st: PeriodState, today: date | None = None) -> str:
    """One line on a quarter's status for 单位详情 (e.g. ``公示中,异议截止:2026年1月20日``)."""
    today = today or current_date()
    if st.status == PUBLICITY:
        if st.publicity_until is None:
            return "公示中:对结果有异议的,可在定稿前提出"
        if today > st.publicity_until:
            return f"公示中,异议截止:{cn_date(st.publicity_until)}(已截止,等待定稿)"
        return f"公示中,异议截止:{cn_date(st.publicity_until)}({days_left_text(st.publicity_until, today)})"
    if st.status == PUBLISHED:
        return f"已定稿(发布于{cn_date(st.published_at)}),以下为定稿结果"
    if st.status == REVIEWING and st.recorded:
        return "审核中:结果尚未公示,可能还会调整"
    if st.status == SUBMITTING and st.recorded:
        return "报送中:结果尚未公示,可能还会调整"
    return ""


def objection_window(st: PeriodState, today: date | None = None) -> str | None:
    """Why no 异议 may be filed on this quarter now, or None (公示中 and not past its end date)."""
    today = today or current_date()
    if st.status != PUBLICITY:
        return f"{st.period} 不在公示期(当前状态:{st.status}),不能提出异议"
    if st.publicity_until is not None and today > st.publicity_until:
        return f"{st.period} 的公示期已于{cn_date(st.publicity_until)}结束,不能再提出异议"
    return None


# -- transitions ----------------------------------------------------------------------------------
_VERBS = {"open": "开放报送", "close": "结束报送或撤回公示", "publicize": "公示", "publish": "定稿",
          "reopen": "重新开放"}


def _check(st: PeriodState, t: Transition) -> None:
    if st.status not in t.sources:
        raise InputError(f"{st.period} 当前状态为{st.status},不能{_VERBS[t.name]}"
                         f"(只有{'或'.join(t.sources)}的季度可以)")


def _event(cur, actor: User, period: str, status: str, until: date | None = None, reason: str | None = None,
           at: datetime | None = None) -> int:
    event_id = cur.execute("SELECT nextval('seq_period_event')").fetchone()[0]
    cur.execute("INSERT INTO period_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                [event_id, period, status, until, reason, actor.username, at or datetime.now()])
    return event_id


def _reason(text) -> str:
    reason = (text or "").strip() if isinstance(text, str) or text is None else str(text).strip()
    if not reason:
        raise InputError("重新开放已定稿的季度必须填写理由")
    if len(reason) > MAX_REASON:
        raise InputError(f"理由不能超过{MAX_REASON}个字符")
    return reason


def _transition(store, actor: User, name: str, period: str, *, until=None, reason=None) -> str:
    """Check and record one simple transition (every one but publish) with its audit row."""
    t = TRANSITIONS[name]
    require(actor, "period.manage")
    actor = require_active(store, actor, "管理考评周期")
    period = periods.parse_period(period)
    if t.needs_until:
        until = parse_date(until, "截止日期")
    if t.needs_reason:
        reason = _reason(reason)

    def write(cur):
        st = state_cur(cur, period)
        _check(st, t)
        _event(cur, actor, period, t.target, until, reason)
        what = action_label(name, st.status, st.recorded)
        detail = f"{st.status} → {t.target}"
        if until:
            detail += f",{'报送' if t.target == SUBMITTING else '公示'}截止{cn_date(until)}"
        if reason:
            detail += f",理由:{reason}"
        record(cur, actor, "period", period, f"{what}:{detail}")
        return st

    before = store.write(write)
    label = periods.label(period)
    if name == "open":
        return f"{label}({period})开放报送,截止{cn_date(until)}" + ("(截止日期已修改)" if before.status == SUBMITTING and before.recorded else "")
    if name == "close":
        return (f"{label}({period})已撤回公示,退回审核中" if before.status == PUBLICITY
                else f"{label}({period})报送已截止,进入审核")
    if name == "publicize":
        return f"{label}({period})结果公示中,异议截止{cn_date(until)}"
    return f"{label}({period})已重新开放(审核中),理由:{reason};定稿快照保留备查,结果按当前数据重新计算"


def open_period(store, actor: User, period: str, until) -> str:
    """``period open P --until D``: units may upload until the deadline."""
    return _transition(store, actor, "open", period, until=until)


def close_period(store, actor: User, period: str) -> str:
    """``period close P``: submissions end (or a 公示 is withdrawn); the office reviews."""
    return _transition(store, actor, "close", period)


def publicize(store, actor: User, period: str, until) -> str:
    """``period publicize P --until D``: units see their provisional result and may file 异议."""
    return _transition(store, actor, "publicize", period, until=until)


def reopen(store, actor: User, period: str, reason: str) -> str:
    """``period reopen P --reason R``: a published quarter goes back to review; its snapshot is kept."""
    return _transition(store, actor, "reopen", period, reason=reason)


class _Stale(Exception):
    """The data changed between scoring a quarter and writing its snapshot."""


def _pending_objections(cur, period: str) -> int:
    try:
        return cur.execute("SELECT count(*) FROM objections WHERE period = ? AND status = 'pending'",
                           [period]).fetchone()[0]
    except duckdb.CatalogException:
        return 0


def publish(store, actor: User, period: str) -> str:
    """``period publish P``: freeze every result of the quarter (the snapshot) and mark it 已定稿."""
    t = TRANSITIONS["publish"]
    require(actor, "period.manage")
    actor = require_active(store, actor, "管理考评周期")
    period = periods.parse_period(period)
    for _ in range(5):
        st = state(store, period)
        _check(st, t)
        version = store.data_version
        scores = engine.score(store, [period])
        n = len(scores.units)
        if not n:
            raise NotFound(f"{period} 没有考评结果,不能定稿")
        data = snapshots.encode(scores)

        def write(cur):
            row = cur.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
            if int(row[0] if row else 0) != version:
                raise _Stale()
            now_st = state_cur(cur, period)
            _check(now_st, t)
            pending = _pending_objections(cur, period)
            if pending:
                raise InputError(f"{period} 还有{pending}条异议未答复,请先答复全部异议再定稿")
            event_id = _event(cur, actor, period, PUBLISHED)
            _write_snapshot(cur, actor, period, event_id, data, n)
            record(cur, actor, "period", period, f"定稿发布:{now_st.status} → {PUBLISHED},冻结{n}个单位的结果")

        try:
            store.write(write)
        except _Stale:
            continue
        return (f"{periods.label(period)}({period})已定稿发布:{n}个单位的结果已冻结;"
                "此后的上传、核定或考评表变更都不会改变已发布的结果,如需更正请重新开放该季度")
    raise KaopingError(f"{period} 定稿时数据一直在变化,请稍后重试")


def _write_snapshot(cur, actor: User, period: str, event_id: int, data: bytes, n: int, at=None) -> None:
    cur.execute("INSERT INTO period_snapshots VALUES (nextval('seq_snapshot'), ?, ?, ?, ?, ?, ?, ?)",
                [period, event_id, data, snapshots.sha256(data), n, actor.username, at or datetime.now()])


def transition(store, actor: User, name: str, period: str, *, until=None, reason=None) -> str:
    """Any transition by name (for the office's page)."""
    if name == "publish":
        return publish(store, actor, period)
    if name not in TRANSITIONS:
        raise InputError(f"未知的操作「{name}」")
    return _transition(store, actor, name, period, until=until, reason=reason)


# -- the demo ---------------------------------------------------------------------------------------
def seed_demo(store, publicity: str | None = None, *, today: date | None = None) -> str:
    """The demo's lifecycle: every quarter with data before ``publicity`` 已定稿 (with its snapshot),
    ``publicity`` (default: the latest quarter with data) 公示中 until a week from today.

    Dates are those an office keeps: submissions until the 10th day after the quarter, review,
    a 公示 of a week, publication. Written as the system, with one audit row.
    """
    today = today or current_date()
    with store.cursor() as cur:
        have = snapshots.periods_with_data(cur)
    if not have:
        return "没有考评数据,未设置考评周期"
    publicity = periods.parse_period(publicity) if publicity else max(have, key=periods.period_index)
    published = [p for p in have if periods.period_index(p) < periods.period_index(publicity)]
    frozen = []
    for p in published:
        scores = engine.score(store, [p])
        if len(scores.units):
            frozen.append((p, snapshots.encode(scores), len(scores.units)))

    def quarter_end(p: str) -> date:
        year, q = periods.split(p)
        return date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1) - timedelta(days=1)

    def stamp(d: date) -> datetime:
        return datetime.combine(d, datetime.min.time()) + timedelta(hours=9)

    def write(cur):
        for p, data, n in frozen:
            end = quarter_end(p)
            deadline = end + timedelta(days=10)
            _event(cur, SYSTEM, p, SUBMITTING, deadline, at=stamp(end - timedelta(days=14)))
            _event(cur, SYSTEM, p, REVIEWING, at=stamp(deadline + timedelta(days=1)))
            _event(cur, SYSTEM, p, PUBLICITY, deadline + timedelta(days=12), at=stamp(deadline + timedelta(days=5)))
            published_at = stamp(deadline + timedelta(days=15))
            event_id = _event(cur, SYSTEM, p, PUBLISHED, at=published_at)
            _write_snapshot(cur, SYSTEM, p, event_id, data, n, at=published_at)
        end = quarter_end(publicity)
        deadline = min(end + timedelta(days=10), today - timedelta(days=7))
        _event(cur, SYSTEM, publicity, SUBMITTING, deadline, at=stamp(end - timedelta(days=14)))
        _event(cur, SYSTEM, publicity, REVIEWING, at=stamp(deadline + timedelta(days=1)))
        _event(cur, SYSTEM, publicity, PUBLICITY, today + timedelta(days=7))
        done = f"{published[0]}–{published[-1]} 已定稿," if published else ""
        record(cur, SYSTEM, "period", "演示数据", f"{done}{publicity} 公示中(异议截止{cn_date(today + timedelta(days=7))})")
        return f"考评周期:{done}{publicity} 公示中,异议截止{cn_date(today + timedelta(days=7))}"

    return store.write(write)

