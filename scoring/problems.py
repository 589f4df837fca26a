"""问题清单 → 整改 → 复核: the problems a 第三方 check or the office finds, and their rectification.

A problem belongs to one unit and to the quarter whose score it counts in, and optionally to one
item of that quarter's scheme. Its life (SPEC "Problem ledger")::

    待整改 ──unit responds (note, optional link)──> 待复核 ──office/checker reviews──> 已销号
                                                     └──────────────────────────────> 退回 ──responds again──> 待复核

A problem not 已销号 once its 整改期限 has passed is 逾期未整改. That is computed against today
(:func:`scoring.periods.today`: ``KAOPING_TODAY`` in tests and the demo), never stored, so it is
right tomorrow too. ``closed_on_time`` counts problems 已销号 with a review date on or before the
整改期限. Every change is one transaction with its history row and its audit row; nothing is deleted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd

from . import periods
from .accounts import require_active
from .audit import record
from .errors import InputError, NotFound, Problems
from .permissions import SYSTEM, User, require
from .readers import Problem, header_key, read_upload

TODO, PENDING, CLOSED, RETURNED, OVERDUE = "待整改", "待复核", "已销号", "退回", "逾期未整改"
STATUSES = (TODO, PENDING, CLOSED, RETURNED, OVERDUE)   # as shown and filtered; OVERDUE is computed
RESPONDABLE = (TODO, RETURNED)

HEADERS = ("单位代码", "季度", "考评项", "问题描述", "链接", "发现日期", "整改期限")
OPTIONAL = ("考评项", "链接")
IGNORED = ("序号", "备注")                              # columns third-party lists often carry
JSON_KEYS = ["id", "unit_code", "period", "item_id", "description", "link", "found_on", "due_on", "status",
             "response", "reviewed_by", "reviewed_on"]
COLUMNS = ["id", "unit_code", "unit_name", "group", "period", "item_id", "item_name", "description", "link",
           "found_on", "due_on", "status", "state", "overdue", "on_time", "days_left", "time_left", "response",
           "response_link", "responded_by", "responded_on", "reviewed_by", "reviewed_on", "review_note"]
MAX_TEXT, MAX_LINK = 2000, 500
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINK = re.compile(r"https?://[^\s<>\"']+", re.I)
_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]0?0:00(?::00)?)?")


# -- checking one problem ------------------------------------------------------------------------
def parse_date(text: str) -> date:
    """``2025-03-31``, ``2025/3/31``, ``2025.3.31``, ``2025年3月31日``, ``20250331`` or an Excel day number."""
    text = str(text).strip()
    m = _DATE.fullmatch(text)
    day = None
    try:
        if m:
            day = date(int(m[1]), int(m[2]), int(m[3]))
        elif re.fullmatch(r"\d{8}", text):
            day = date(int(text[:4]), int(text[4:6]), int(text[6:]))
        elif re.fullmatch(r"\d{5}(\.0+)?", text) and 30000 <= float(text) <= 60000:  # Excel's day count
            day = date(1899, 12, 30) + timedelta(days=int(float(text)))
    except ValueError:
        pass
    if day is None:
        raise ValueError("不是有效日期,应写成 2025-03-31 这样的格式")
    if not 2000 <= day.year <= 2100:
        raise ValueError("日期不合理(应在2000年至2100年之间)")
    return day


def _text(value: str, what: str, limit: int) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{what}含有控制字符,请删除后重新导入")
    if len(value) > limit:
        raise ValueError(f"{what}超过{limit}个字符")
    return value


def check_link(value: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    _text(value, "链接", MAX_LINK)
    if not _LINK.fullmatch(value):
        raise ValueError("链接应以 http:// 或 https:// 开头,且不含空格")
    return value


@dataclass(frozen=True)
class _Context:
    """What a row is checked against: the registry and the schemes."""

    groups: dict[str, str]          # unit_code -> group
    schemes: list

    @classmethod
    def of(cls, store) -> _Context:
        from .schemes import load_schemes

        rows = store.rows("SELECT unit_code, grp FROM units")
        return cls({code: grp for code, grp in rows}, load_schemes(store))

    def item(self, text: str, unit_code: str, period: str) -> str:
        """The item id a 考评项 cell (id or name) names in the unit's scheme for ``period``."""
        scheme = next((s for s in self.schemes if s.covers(self.groups[unit_code], period)), None)
        if scheme is None:
            raise ValueError(f"该单位所在分组「{self.groups[unit_code]}」在{period}没有考评表,无法对应考评项")
        items = [i for i in scheme.items if i.kind != "veto"]
        if any(i.id == text for i in items):
            return text
        key = header_key(text)
        named = [i for i in items if header_key(i.name) == key or header_key(i.name).split("(")[0] == key]
        if len(named) == 1:
            return named[0].id
        if named:
            raise ValueError(f"考评表 {scheme.id} 中有多个考评项叫这个名字,请写考评项编号")
        raise ValueError(f"考评表 {scheme.id} 中没有这个考评项(可写编号如 {items[0].id},或考评项名称)")


def _check(cells: dict[str, str], ctx: _Context) -> tuple[dict | None, list[tuple[str, str, str]]]:
    """One problem's fields, or the list of (column, value, message) wrong with them."""
    wrong, out = [], {}

    def field(column, convert):
        value = (cells.get(column) or "").strip()
        if not value and column not in OPTIONAL:
            wrong.append((column, "", "不能为空"))
            return None
        try:
            return convert(value) if value else None
        except (ValueError, InputError) as exc:
            wrong.append((column, value, str(exc)))
            return None

    out["unit_code"] = field("单位代码", lambda v: v if v in ctx.groups else _raise("单位代码不在单位名录中"))
    out["period"] = field("季度", periods.parse_period)
    out["description"] = field("问题描述", lambda v: _text(v, "问题描述", MAX_TEXT))
    out["link"] = field("链接", check_link)
    out["found_on"] = field("发现日期", parse_date)
    out["due_on"] = field("整改期限", parse_date)
    out["item_id"] = None
    item_text = (cells.get("考评项") or "").strip()
    if item_text and out["unit_code"] and out["period"]:
        out["item_id"] = field("考评项", lambda v: ctx.item(v, out["unit_code"], out["period"]))
    if out["found_on"] and out["due_on"] and out["due_on"] < out["found_on"]:
        wrong.append(("整改期限", cells["整改期限"].strip(), f"整改期限早于发现日期({out['found_on']})"))
    return (None if wrong else out), wrong


def _raise(message: str):
    raise ValueError(message)


# -- importing a list ------------------------------------------------------------------------------
def import_problems(store, actor: User, data: bytes, file_name: str) -> str:
    """Import a 问题清单 (CSV or XLSX, headers :data:`HEADERS`): every row, or none.

    A problem already in the ledger (same unit, quarter, 考评项 and description) is not added twice,
    so importing the same list again changes nothing. ``Problems`` lists every row that is wrong.
    """
    actor = require_active(store, require(actor, "problems.add"), "导入问题清单")
    table = read_upload(data, file_name, header_keys={header_key(h) for h in HEADERS})
    if not table.ok:
        raise Problems(f"问题清单「{file_name}」无法读取", table.problems)
    keys = [header_key(h) for h in table.header]
    problems, at = [], {}
    for j, key in enumerate(keys):
        name = next((h for h in HEADERS if header_key(h) == key), None)
        if name is None:
            if key and key not in {header_key(h) for h in IGNORED}:
                problems.append(Problem(table.header_row, table.header[j], "",
                                        f"未知的列;问题清单的列为 {'、'.join(HEADERS)}"))
        elif name in at:
            problems.append(Problem(table.header_row, table.header[j], "", "列重复"))
        else:
            at[name] = j
    for name in HEADERS:
        if name not in at and name not in OPTIONAL:
            problems.append(Problem(table.header_row, name, "", f"缺少列「{name}」"))
    if problems:
        raise Problems(f"问题清单「{file_name}」的表头有误", problems)
    if not len(table.cells):
        raise Problems(f"问题清单「{file_name}」没有数据行", [Problem(None, "", "", "表头下没有任何问题")])

    ctx = _Context.of(store)
    rows, seen = [], {}
    for k, row_no in enumerate(table.row_numbers.tolist()):
        cells = {name: table.cells[k, j] for name, j in at.items()}
        fields, wrong = _check(cells, ctx)
        problems += [Problem(row_no, column, value, message) for column, value, message in wrong]
        if fields is None:
            continue
        key = (fields["unit_code"], fields["period"], fields["item_id"], fields["description"])
        if key in seen:
            problems.append(Problem(row_no, "问题描述", fields["description"][:40], f"与第{seen[key]}行重复"))
            continue
        seen[key] = row_no
        rows.append({**fields, "row_no": row_no})
    if problems:
        raise Problems(f"问题清单「{file_name}」有{len(problems)}处错误,整个文件未导入", problems)

    def write(cur):
        existing = {tuple(r) for r in cur.execute(
            "SELECT unit_code, period, item_id, description FROM problems").fetchall()}
        new = [r for r in rows if (r["unit_code"], r["period"], r["item_id"], r["description"]) not in existing]
        now = datetime.now()
        for r in new:
            _insert(cur, actor, r, file_name, now)
        units = len({r["unit_code"] for r in new})
        detail = f"导入问题清单「{file_name}」:新增{len(new)}个问题,涉及{units}家单位"
        record(cur, actor, "rectification", file_name, detail)
        skipped = len(rows) - len(new)
        return detail + (f";{skipped}个问题已在清单中,未重复导入" if skipped else "")

    return store.write(write)


def _insert(cur, actor: User | str, r: dict, file_name: str | None, now: datetime) -> int:
    who = actor.username if isinstance(actor, User) else actor
    pid = cur.execute("SELECT nextval('seq_problem')").fetchone()[0]
    cur.execute("""INSERT INTO problems (problem_id, unit_code, period, item_id, description, link, found_on, due_on,
                   status, file_name, row_no, added_by, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [pid, r["unit_code"], r["period"], r["item_id"], r["description"], r["link"], r["found_on"],
                 r["due_on"], TODO, file_name, r.get("row_no"), who, now])
    source = f"导入自「{file_name}」第{r['row_no']}行" if file_name else "登记"
    cur.execute("INSERT INTO problem_events VALUES (?, ?, ?, ?, ?, NULL)", [pid, now, who, TODO, source])
    return int(pid)


def add_problem(store, actor: User, unit_code: str, period: str, description: str, *, item: str = "",
                link: str = "", found_on=None, due_on=None) -> int:
    """Record one problem by hand (the same checks as a row of an imported list); returns its id."""
    actor = require_active(store, require(actor, "problems.add"), "登记问题")
    found_on = found_on if found_on is not None else periods.today()
    cells = {"单位代码": unit_code, "季度": str(period), "考评项": item or "", "问题描述": description,
             "链接": link or "", "发现日期": str(found_on), "整改期限": "" if due_on is None else str(due_on)}
    fields, wrong = _check(cells, _Context.of(store))
    if wrong:
        raise InputError(";".join(f"{c}{f'「{v}」' if v else ''}{m}" for c, v, m in wrong))

    def write(cur):
        pid = _insert(cur, actor, fields, None, datetime.now())
        record(cur, actor, "rectification", f"{fields['unit_code']} #{pid}", f"登记问题:{fields['description'][:60]}")
        return pid

    return store.write(write)


# -- the unit's answer and the review ----------------------------------------------------------------
def _problem(cur, pid) -> tuple[str, str]:
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        raise InputError(f"问题编号「{pid}」应为整数") from None
    row = cur.execute("SELECT unit_code, status FROM problems WHERE problem_id = ?", [pid]).fetchone()
    if row is None:
        raise NotFound(f"问题 #{pid} 不存在")
    return row


def respond(store, actor: User, pid: int, note: str, link: str = "") -> str:
    """The unit (or the office for it) reports what it did: the problem goes to 待复核."""
    actor = require_active(store, require(actor, "problems.respond"), "反馈整改情况")
    note = _required(note, "整改说明")
    try:
        link = check_link(link)
    except ValueError as exc:
        raise InputError(f"链接「{link}」{exc}") from None
    return store.write(lambda cur: _respond(cur, actor, pid, note, link, periods.today()))


def _respond(cur, actor: User, pid, note: str, link: str | None, on: date) -> str:
    unit_code, status = _problem(cur, pid)
    require(actor, "problems.respond", unit=unit_code)
    if status not in RESPONDABLE:
        raise InputError(f"问题 #{pid} 当前为「{status}」,只有待整改或被退回的问题可以反馈整改情况")
    cur.execute("""UPDATE problems SET status = ?, response = ?, response_link = ?, responded_by = ?,
                   responded_on = ? WHERE problem_id = ?""", [PENDING, note, link, actor.username, on, int(pid)])
    _event(cur, pid, actor, PENDING, note, link, on)
    record(cur, actor, "rectification", f"{unit_code} #{pid}", f"反馈整改情况:{note[:60]}")
    return f"问题 #{pid} 已提交整改情况,等待复核"


def review(store, actor: User, pid: int, passed: bool, note: str = "") -> str:
    """The office or a checker reviews a 待复核 problem: 已销号, or 退回 with the reason."""
    actor = require_active(store, require(actor, "problems.review"), "复核整改")
    note = _required(note, "复核意见") if not passed else _checked_text((note or "").strip(), "复核意见")
    return store.write(lambda cur: _review(cur, actor, pid, passed, note, periods.today()))


def _review(cur, actor: User, pid, passed: bool, note: str, on: date) -> str:
    unit_code, status = _problem(cur, pid)
    if status != PENDING:
        raise InputError(f"问题 #{pid} 当前为「{status}」,只有待复核的问题可以复核")
    status_to = CLOSED if passed else RETURNED
    cur.execute("UPDATE problems SET status = ?, reviewed_by = ?, reviewed_on = ?, review_note = ? WHERE problem_id = ?",
                [status_to, actor.username, on, note or None, int(pid)])
    _event(cur, pid, actor, status_to, note, None, on)
    record(cur, actor, "rectification", f"{unit_code} #{pid}", f"复核{status_to}" + (f":{note[:60]}" if note else ""))
    return f"问题 #{pid} 已销号" if passed else f"问题 #{pid} 已退回,单位需重新整改"


def _event(cur, pid, actor: User, status: str, note: str | None, link: str | None, on: date) -> None:
    # a back-dated action (the demo) keeps its date; otherwise the moment it happened
    at = datetime.now() if on == periods.today() else datetime.combine(on, datetime.min.time()) + timedelta(hours=10)
    cur.execute("INSERT INTO problem_events VALUES (?, ?, ?, ?, ?, ?)",
                [int(pid), at, actor.username, status, note or None, link or None])


def _checked_text(value: str, what: str) -> str:
    try:
        return _text(value, what, MAX_TEXT)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _required(value, what: str) -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value).strip()
    if not text:
        raise InputError(f"{what}不能为空")
    return _checked_text(text, what)


# -- reading ---------------------------------------------------------------------------------------
def _flags(df: pd.DataFrame, today: date) -> pd.DataFrame:
    """``overdue``, the effective ``status`` (逾期未整改 over the stored ``state``), ``on_time`` (已销号
    on or before the 整改期限), ``days_left`` and ``time_left`` (剩12天, 逾期3天; blank once 已销号)."""
    due = pd.to_datetime(df["due_on"])
    now = pd.Timestamp(today)
    closed = df["state"] == CLOSED
    overdue = ~closed & (due < now)
    on_time = closed & (pd.to_datetime(df["reviewed_on"]) <= due)
    days = (due - now).dt.days
    left = [("" if c else f"逾期{-d}天" if d < 0 else "今天到期" if d == 0 else f"剩{d}天")
            for c, d in zip(closed, days.fillna(0).astype(int))]
    return df.assign(overdue=overdue, on_time=on_time, status=df["state"].where(~overdue, OVERDUE),
                     days_left=days.where(~closed),
                     time_left=pd.Series(left, index=df.index, dtype=object))


def list_problems(store, actor: User, *, unit_code: str | None = None, period: str | None = None,
                  status: str | None = None, today: date | None = None) -> pd.DataFrame:
    """The ledger, newest first (:data:`COLUMNS`). The office and checkers see every unit's problems
    (or ``unit_code``'s); a unit only its own. ``status`` filters on the shown status."""
    actor = require_active(store, require(actor, "problems.view", unit=unit_code), "查看问题清单")
    if actor.is_unit:
        unit_code = actor.unit_code
    if status and status not in STATUSES:
        raise InputError(f"状态「{status}」无效,可用:{'、'.join(STATUSES)}")
    sql = """SELECT p.problem_id AS id, p.unit_code, u.unit_name, u.grp AS "group", p.period, p.item_id,
                    p.description, p.link, p.found_on, p.due_on, p.status AS state, p.response, p.response_link,
                    p.responded_by, p.responded_on, p.reviewed_by, p.reviewed_on, p.review_note
             FROM problems p LEFT JOIN units u USING (unit_code) WHERE true"""
    params: list = []
    if unit_code is not None:
        sql += " AND p.unit_code = ?"
        params.append(unit_code)
    if period:
        sql += " AND p.period = ?"
        params.append(periods.parse_period(period))
    df = store.df(sql + " ORDER BY p.problem_id DESC", params)
    for column in ("found_on", "due_on", "responded_on", "reviewed_on"):
        df[column] = pd.to_datetime(df[column]).dt.date.astype(object).where(df[column].notna(), None)
    df = _flags(df, today or periods.today())
    if status:
        df = df[df["status"] == status]
    df["item_name"] = _item_names(store, df)
    return df[COLUMNS].reset_index(drop=True)


def outstanding(store, actor: User, unit_code: str, today: date | None = None) -> pd.DataFrame:
    """A unit's problems not yet 已销号, the nearest deadline first (逾期 ones lead)."""
    df = list_problems(store, actor, unit_code=unit_code, today=today)
    return df[df["state"] != CLOSED].sort_values(["due_on", "id"]).reset_index(drop=True)


def _item_names(store, df: pd.DataFrame) -> list:
    from .schemes import load_schemes

    schemes = load_schemes(store)
    names = {}
    for group, period, item in df[["group", "period", "item_id"]].drop_duplicates().itertuples(index=False):
        if isinstance(item, str):
            s = next((s for s in schemes if s.covers(group, period)), None)
            found = s.item(item) if s else None
            names[(group, period, item)] = found.name if found else item
    return [names.get(k) for k in zip(df["group"], df["period"], df["item_id"])]


def records(df: pd.DataFrame) -> list[dict]:
    """The JSON form of a :func:`list_problems` frame: exactly :data:`JSON_KEYS`, dates as ISO text,
    missing text as null."""
    def value(key, v):
        if key == "id":
            return int(v)
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        return pd.Timestamp(v).date().isoformat() if key in ("found_on", "due_on", "reviewed_on") else str(v)

    return [{k: value(k, v) for k, v in zip(JSON_KEYS, row)} for row in df[JSON_KEYS].itertuples(index=False)]


def history(store, actor: User, pid: int) -> pd.DataFrame:
    """Every step of one problem: ``happened_at, actor, status, note, link``."""
    with store.cursor() as cur:
        unit_code, _ = _problem(cur, pid)
    require(actor, "problems.view", unit=unit_code)
    return store.df("SELECT happened_at, actor, status, note, link FROM problem_events WHERE problem_id = ? "
                    "ORDER BY happened_at, status", [int(pid)])


def summary(df: pd.DataFrame) -> dict[str, int]:
    """How many problems of a :func:`list_problems` frame are in each shown status, and in all."""
    out = {s: int((df["status"] == s).sum()) for s in STATUSES}
    out["合计"] = len(df)
    return out


def ledger_counts(con, period_list: list[str] | None, today: date | None = None) -> pd.DataFrame:
    """One row per problem with 0/1 columns ``assigned, open, overdue, closed_on_time`` (for the
    ``computed: {ledger: …}`` indicators) and ``label`` (``#12 网站首页存在错链``) for explanations."""
    where = f"WHERE period IN ({', '.join('?' * len(period_list))})" if period_list is not None else ""
    df = con.execute(f"""SELECT problem_id, unit_code, period, item_id, description, status AS state, due_on,
                         reviewed_on FROM problems {where} ORDER BY problem_id""", period_list or []).df()
    df = _flags(df, today or periods.today())
    return df.assign(assigned=1, open=(df["state"] != CLOSED).astype(int), overdue=df["overdue"].astype(int),
                     closed_on_time=df["on_time"].astype(int),
                     label="#" + df["problem_id"].astype(str) + " " + df["description"].str.slice(0, 40))


# -- files -------------------------------------------------------------------------------------------
def template() -> bytes:
    """An empty 问题清单 to fill in (XLSX, the import's headers, one example row to overwrite)."""
    from .exports import to_xlsx_bytes

    example = pd.DataFrame([["XQ01", "2025Q4", "pub.stale", "政策文件栏目超6个月未更新", "https://www.example.gov.cn/zcwj/",
                             "2025-12-05", "2026-01-10"]], columns=list(HEADERS))
    return to_xlsx_bytes({"问题清单": example})


def unit_workbook(store, actor: User, unit_code: str, today: date | None = None) -> bytes:
    """One unit's problems as an Excel list: what it must fix, by when, and where each one stands."""
    from .exports import to_xlsx_bytes

    today = today or periods.today()
    df = list_problems(store, actor, unit_code=unit_code, today=today)
    df = df.sort_values(["overdue", "due_on"], ascending=[False, True])
    shown = pd.DataFrame({
        "编号": df["id"], "季度": df["period"].map(periods.label), "考评项": df["item_name"].fillna("—"),
        "问题描述": df["description"], "链接": df["link"].fillna(""),
        "发现日期": pd.to_datetime(df["found_on"]).dt.date, "整改期限": pd.to_datetime(df["due_on"]).dt.date,
        "状态": df["status"], "期限情况": df["time_left"],
        "整改说明": df["response"].fillna(""), "复核意见": df["review_note"].fillna(""),
    })
    return to_xlsx_bytes({f"问题清单(截至{today:%Y-%m-%d})": shown})


# -- the demo ------------------------------------------------------------------------------------------
# (考评项 keyword, problem) as a 第三方 check words them; a unit gets those whose item its scheme has
DEMO_CATALOGUE = (
    ("栏目更新及时", "政策文件栏目超6个月未更新"),
    ("栏目无空白", "法定主动公开目录存在空白栏目"),
    ("错链", "网站首页存在错链、断链"),
    ("错敏", "网站存在错别字和不规范表述"),
    ("政务新媒体", "政务新媒体账号超两周未更新"),
    ("同步解读", "政策文件未同步发布解读材料"),
    ("答复书规范", "依申请公开答复书未告知救济途径"),
    ("重点", "重点领域信息公开要素不全"),
    ("专区", "政务公开专区资料未及时更新"),
)
_DEMO_NOTES = ("已完成整改并在网站公示", "已更新栏目内容,附整改截图", "已逐条核对并修改", "已补充公开相关信息")


def seed_demo(store, checker: User, today: date, seed: int) -> str:
    """Demo problems for every demo quarter up to ``today``: the checker imports one list per quarter
    (the real import path), then units answer and the checker reviews, back-dated, so that each
    quarter has problems 已销号 on time, late, 退回 and 逾期未整改, and the latest quarter some still open."""
    import numpy as np

    from .schemes import load_schemes

    rng = np.random.default_rng(seed)
    units = store.df("SELECT unit_code, grp FROM units ORDER BY unit_code")
    schemes = load_schemes(store)
    quarters = store.df("SELECT DISTINCT period FROM current_submissions ORDER BY period")["period"].tolist()
    made = 0
    for period in quarters:
        year, q = periods.split(period)
        start = date(year, 3 * q - 2, 1)
        rows = []
        for code, group in units.itertuples(index=False):
            scheme = next((s for s in schemes if s.covers(group, period)), None)
            if scheme is None or rng.random() > 0.35:
                continue
            fits = [(i.id, text) for key, text in DEMO_CATALOGUE for i in scheme.items if key in i.name][:6]
            for k in rng.choice(len(fits), size=min(len(fits), 1 + int(rng.random() < 0.4)), replace=False):
                found = start + timedelta(days=int(rng.integers(20, 89)))
                if found >= today:
                    continue
                due = found + timedelta(days=int(rng.choice([30, 45])))
                rows.append([code, period, fits[k][0], fits[k][1], "", found.isoformat(), due.isoformat()])
        if rows:
            data = pd.DataFrame(rows, columns=list(HEADERS)).to_csv(index=False).encode("utf-8-sig")
            import_problems(store, checker, data, f"{period}第三方检测问题清单.csv")
            made += len(rows)

    ledger = store.df("SELECT problem_id, unit_code, found_on, due_on FROM problems ORDER BY problem_id")

    def answer(cur):
        for pid, _unit, found, due in ledger.itertuples(index=False):
            found, due = pd.Timestamp(found).date(), pd.Timestamp(due).date()
            fate = rng.random()
            if fate < 0.08:
                continue                                   # never answered: 逾期未整改 once due
            responded = found + timedelta(days=int(rng.integers(25, 50) if fate < 0.25 else rng.integers(5, 30)))
            if responded >= today:
                continue
            _respond(cur, SYSTEM, pid, _DEMO_NOTES[pid % len(_DEMO_NOTES)], None, responded)
            reviewed = responded + timedelta(days=int(rng.integers(1, 10)))
            if reviewed >= today:
                continue                                   # 待复核
            returned = rng.random() < 0.1
            _review(cur, checker, pid, not returned, "截图未体现整改内容,请补充" if returned else "", reviewed)
            again = reviewed + timedelta(days=int(rng.integers(3, 10)))
            if returned and again < today:
                _respond(cur, SYSTEM, pid, "已补充整改材料", None, again)
                if again + timedelta(days=2) < today:
                    _review(cur, checker, pid, True, "", again + timedelta(days=2))

    store.write(answer)
    return f"{made}个第三方检测问题"
