"""年报: the statistics of a unit's 政府信息公开工作年度报告 in the 国办公开办函〔2021〕30号 format.

The three tables (二 主动公开, 三 收到和处理申请, 四 复议和诉讼) are declared below as rows and
columns; everything else reads the declaration: the XLSX template laid out like the published
tables, the parser of that template and of the long CSV (``单位代码, 年度, 表, 行, 列, 值``), the
勾稽 checks, the store and the Word rendering. A blank cell is 0, as in a published table.

An upload is checked as a whole and written in one transaction, or not at all while a check fails
(the 年度新收 against the four quarters' ``apps_new_received`` is only a warning). The office may
record a report *as published* with its errors (``as_published``): those errors are what the
scheme's ``computed: {yearbook: errors}`` figure counts. Nothing is overwritten: a later upload of
the same unit and year supersedes the earlier one.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import periods, readers
from .accounts import require_active
from .errors import InputError, NotFound, Problems
from .permissions import User, require
from .readers import Problem, header_key

# -- the declared layout --------------------------------------------------------------------------------
T3_APPLICANTS = ("自然人", "商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他")
T3_COLS = T3_APPLICANTS + ("总计",)
T4_COLS = ("结果维持", "结果纠正", "其他结果", "尚未审结", "总计")
COUNT, AMOUNT = "count", "amount"


@dataclass(frozen=True)
class Row:
    table: str                   # 二 | 三 | 四
    code: str                    # short key: 规章, 一, 三(三)1, 行政复议 …
    label: str                   # as the published table prints it
    cols: tuple[str, ...]
    parent: str = ""             # 三: the (三)…(六) heading the numbered row belongs to; 二: 第二十条第(x)项
    kind: str = COUNT
    aliases: tuple[str, ...] = ()


_T2_DOCS = ("本年制发件数", "本年废止件数", "现行有效件数")
_T2_DECISIONS = ("本年处理决定数量",)
ROWS: tuple[Row, ...] = (
    Row("二", "规章", "规章", _T2_DOCS, "第二十条第（一）项"),
    Row("二", "行政规范性文件", "行政规范性文件", _T2_DOCS, "第二十条第（一）项", aliases=("规范性文件",)),
    Row("二", "行政许可", "行政许可", _T2_DECISIONS, "第二十条第（五）项"),
    Row("二", "行政处罚", "行政处罚", _T2_DECISIONS, "第二十条第（六）项"),
    Row("二", "行政强制", "行政强制", _T2_DECISIONS, "第二十条第（六）项"),
    Row("二", "行政事业性收费", "行政事业性收费", ("本年收费金额（单位：万元）",), "第二十条第（八）项", AMOUNT),
    Row("三", "一", "一、本年新收政府信息公开申请数量", T3_COLS, aliases=("本年新收",)),
    Row("三", "二", "二、上年结转政府信息公开申请数量", T3_COLS, aliases=("上年结转",)),
    Row("三", "三(一)", "（一）予以公开", T3_COLS),
    Row("三", "三(二)", "（二）部分公开（区分处理的，只计这一情形，不计其他情形）", T3_COLS, aliases=("（二）部分公开",)),
    *(Row("三", f"三(三){k}", f"{k}.{t}", T3_COLS, "（三）不予公开") for k, t in enumerate((
        "属于国家秘密", "其他法律行政法规禁止公开", "危及“三安全一稳定”", "保护第三方合法权益",
        "属于三类内部事务信息", "属于四类过程性信息", "属于行政执法案卷", "属于行政查询事项"), 1)),
    *(Row("三", f"三(四){k}", f"{k}.{t}", T3_COLS, "（四）无法提供") for k, t in enumerate((
        "本机关不掌握相关政府信息", "没有现成信息需要另行制作", "补正后申请内容仍不明确"), 1)),
    *(Row("三", f"三(五){k}", f"{k}.{t}", T3_COLS, "（五）不予处理") for k, t in enumerate((
        "信访举报投诉类申请", "重复申请", "要求提供公开出版物", "无正当理由大量反复申请",
        "要求行政机关确认或重新出具已获取信息"), 1)),
    *(Row("三", f"三(六){k}", f"{k}.{t}", T3_COLS, "（六）其他处理") for k, t in enumerate((
        "申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请",
        "申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请", "其他"), 1)),
    Row("三", "三(七)", "（七）总计", T3_COLS),
    Row("三", "四", "四、结转下年度继续办理", T3_COLS, aliases=("结转下年度",)),
    Row("四", "行政复议", "行政复议", T4_COLS),
    Row("四", "未经复议直接起诉", "行政诉讼（未经复议直接起诉）", T4_COLS, aliases=("未经复议直接起诉",)),
    Row("四", "复议后起诉", "行政诉讼（复议后起诉）", T4_COLS, aliases=("复议后起诉",)),
)
TABLES = {"二": "二、主动公开政府信息情况", "三": "三、收到和处理政府信息公开申请情况",
          "四": "四、政府信息公开行政复议、行政诉讼情况"}
RESULT_ROWS = [r.code for r in ROWS if r.table == "三" and r.code.startswith("三(") and r.code != "三(七)"]
ROW = {(r.table, r.code): r for r in ROWS}
CELLS = [(r.table, r.code, c) for r in ROWS for c in r.cols]
MAX_COUNT = 10_000_000
MAX_AMOUNT = 1e9
LONG_HEADERS = ("单位代码", "年度", "表", "行", "列", "值")


@functools.lru_cache(maxsize=4096)
def _key(text) -> str:
    return header_key(readers.halfwidth(str(text))).replace("“", "").replace("”", "").replace('"', "")


def _row_names(r: Row) -> set[str]:
    names = {r.code, r.label, *r.aliases}
    if r.parent:
        names |= {r.parent + r.label, r.parent + r.label.split(".", 1)[-1]}
    return {_key(n) for n in names}


_ROW_BY_NAME = {(r.table, n): r for r in ROWS for n in _row_names(r)}
_TABLE_NAMES = {_key(n): t for t in TABLES for n in (t, f"表{t}", TABLES[t], {"二": "2", "三": "3", "四": "4"}[t])}


def cell_name(cell: tuple[str, str, str]) -> str:
    """A cell as a person finds it in the published table: 表三「（七）总计」行「自然人」列."""
    t, code, col = cell
    r = ROW[(t, code)]
    label = f"{r.parent}{r.label}" if t == "三" and r.parent else r.label
    return f"表{t}「{label}」行「{col}」列"


def year_of(value) -> int:
    text = readers.halfwidth(str(value)).strip().removesuffix("年度").removesuffix("年")
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x.is_integer()):
        raise InputError(f"年度「{value}」无效,应为四位年份,如 2025")
    if not 2000 <= x <= 2100:
        raise InputError(f"年度「{value}」超出范围(2000–2100)")
    return int(x)


def _value(text: str, kind: str) -> float:
    """A cell's number; blank is 0. InputError in Chinese otherwise."""
    t = readers.halfwidth(str(text)).strip().replace(",", "").replace(" ", "")
    if t in ("", "-", "—", "/"):
        return 0.0
    try:
        x = float(t)
    except ValueError:
        raise InputError("不是数字") from None
    if not math.isfinite(x) or x < 0:
        raise InputError("应为不小于0的数")
    if kind == COUNT:
        if not x.is_integer():
            raise InputError("件数应为整数")
        if x > MAX_COUNT:
            raise InputError(f"件数超过{MAX_COUNT:,},不是合理的数值")
    elif x > MAX_AMOUNT:
        raise InputError("金额超出合理范围")
    return x


# -- one report as read ---------------------------------------------------------------------------------
@dataclass
class Report:
    """One unit's statistics of one year, with where each cell was read (for naming it)."""

    unit_code: str
    year: int
    values: dict = field(default_factory=lambda: dict.fromkeys(CELLS, 0.0))
    where: dict = field(default_factory=dict)      # cell -> (row number, column label)

    def get(self, t: str, code: str, col: str) -> float:
        return self.values[(t, code, col)]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([(t, r, c, v) for (t, r, c), v in self.values.items()], columns=["tbl", "row_key", "col_key", "value"])


@dataclass
class Finding:
    cell: tuple[str, str, str]
    message: str
    warning: bool = False


def _fmt(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.4f}".rstrip("0").rstrip(".")


def check(report: Report, previous: Report | None = None, quarterly: dict[str, float] | None = None) -> list[Finding]:
    """The 勾稽 checks of one report; ``previous``: the same unit's report of the year before, if any;
    ``quarterly``: its ``apps_new_received`` by quarter of the year (only the quarters reported)."""
    v = report.get
    out: list[Finding] = []
    for col in T3_COLS:
        parts = sum(v("三", r, col) for r in RESULT_ROWS)
        if not math.isclose(v("三", "三(七)", col), parts):
            out.append(Finding(("三", "三(七)", col), f"为{_fmt(v('三', '三(七)', col))},"
                                                     f"应等于（一）至（六）各项之和{_fmt(parts)}"))
    for r in (r for r in ROWS if r.table == "三"):
        parts = sum(v("三", r.code, c) for c in T3_APPLICANTS)
        if not math.isclose(v("三", r.code, "总计"), parts):
            out.append(Finding(("三", r.code, "总计"), f"为{_fmt(v('三', r.code, '总计'))},"
                                                       f"应等于各类申请人之和{_fmt(parts)}"))
    for col in T3_COLS:
        a, b = v("三", "一", col) + v("三", "二", col), v("三", "三(七)", col) + v("三", "四", col)
        if not math.isclose(a, b):
            out.append(Finding(("三", "四", col), f"为{_fmt(v('三', '四', col))}:本年新收加上年结转为{_fmt(a)}({_fmt(v('三', '一', col))}+"
                                                  f"{_fmt(v('三', '二', col))}),办理结果总计加结转下年度为{_fmt(b)}"
                                                  f"({_fmt(v('三', '三(七)', col))}+{_fmt(v('三', '四', col))}),两者应相等"))
    if previous is not None:
        for col in T3_COLS:
            now, before = v("三", "二", col), previous.get("三", "四", col)
            if not math.isclose(now, before):
                out.append(Finding(("三", "二", col), f"为{_fmt(now)},与本单位{previous.year}年度年报"
                                                      f"「结转下年度继续办理」{_fmt(before)}不一致"))
    for r in (r for r in ROWS if r.table == "四"):
        parts = sum(v("四", r.code, c) for c in T4_COLS[:-1])
        if not math.isclose(v("四", r.code, "总计"), parts):
            out.append(Finding(("四", r.code, "总计"), f"为{_fmt(v('四', r.code, '总计'))},应等于结果维持、"
                                                       f"结果纠正、其他结果、尚未审结之和{_fmt(parts)}"))
    if quarterly:
        total = sum(quarterly.values())
        new = v("三", "一", "总计")
        if not math.isclose(new, total):
            parts = "、".join(f"{p} {_fmt(x)}件" for p, x in sorted(quarterly.items()))
            missing = [p for p in periods.year_quarters(report.year) if p not in quarterly]
            gap = f";{'、'.join(missing)} 未报送" if missing else ""
            out.append(Finding(("三", "一", "总计"), f"为{_fmt(new)}件,四个季度报送的「本期新收申请数」合计"
                                                     f"{_fmt(total)}件({parts}{gap}),请核实", warning=True))
    return out


def problem_of(report: Report, f: Finding) -> Problem:
    """The finding as an upload problem: the row and column where the cell was read (the template's
    address such as D48, or the long layout's 值 column), and the cell's name in the message."""
    row, column = report.where.get(f.cell, (None, ""))
    prefix = "提示(不影响导入):" if f.warning else ""
    return Problem(row=row, column=column or cell_name(f.cell), value=_fmt(report.values[f.cell]),
                   message=f"{prefix}{report.unit_code} {report.year}年度 {cell_name(f.cell)}{f.message}")


# -- reading an upload ---------------------------------------------------------------------------------
def _read_long(table: readers.Table, problems: list) -> list[Report]:
    keys = [header_key(h) for h in table.header]
    pos = {h: keys.index(header_key(h)) for h in LONG_HEADERS if header_key(h) in keys}
    for h in LONG_HEADERS:
        if h not in pos:
            problems.append(Problem(row=table.header_row, column=h, message=f"缺少列「{h}」(长表格式的列为:{'、'.join(LONG_HEADERS)})"))
    if problems:
        return []
    reports: dict[tuple[str, int], Report] = {}
    seen: dict = {}
    for n, cells in zip(table.row_numbers.tolist(), table.cells):
        unit, year, tbl, row, col, val = (str(cells[pos[h]]).strip() for h in LONG_HEADERS)
        if not any((unit, year, tbl, row, col, val)):
            continue
        try:
            y = year_of(year)
        except InputError as exc:
            problems.append(Problem(row=n, column="年度", value=year, message=str(exc)))
            continue
        if not unit:
            problems.append(Problem(row=n, column="单位代码", message="单位代码不能为空"))
            continue
        t = _TABLE_NAMES.get(_key(tbl))
        if t is None:
            problems.append(Problem(row=n, column="表", value=tbl, message="应为 二、三 或 四(年报统计表的表号)"))
            continue
        r = _ROW_BY_NAME.get((t, _key(row)))
        if r is None:
            problems.append(Problem(row=n, column="行", value=row, message=f"表{t}没有这一行"))
            continue
        c = _column(r, col)
        if c is None:
            problems.append(Problem(row=n, column="列", value=col, message=f"表{t}「{r.label}」行没有这一列,可用:{'、'.join(r.cols)}"))
            continue
        cell = (t, r.code, c)
        rep = reports.get((unit, y)) or reports.setdefault((unit, y), Report(unit, y))
        if (unit, y, cell) in seen:
            problems.append(Problem(row=n, column="值", value=val, message=f"{cell_name(cell)}在第{seen[(unit, y, cell)]}行已填写过"))
            continue
        seen[(unit, y, cell)] = n
        try:
            rep.values[cell] = _value(val, r.kind)
        except InputError as exc:
            problems.append(Problem(row=n, column="值", value=val, message=f"{cell_name(cell)}:{exc}"))
        rep.where[cell] = (n, "值")
    return list(reports.values())


@functools.lru_cache(maxsize=1024)
def _column(r: Row, text: str) -> str | None:
    """The row's column that ``text`` names (exactly, or its start: 本年收费金额 for 本年收费金额(单位:万元))."""
    key = _key(text)
    return next((c for c in r.cols if _key(c) == key), None) or next(
        (c for c in r.cols if key and _key(c).startswith(key)), None)


def _letters(j: int) -> str:
    return readers._column_letters(j + 1)


def _read_template(data: bytes, problems: list) -> list[Report]:
    """The template (one unit, one year) as :func:`template_bytes` lays it out, rows found by label."""
    try:
        records = readers._xlsx_rows(data)
    except readers._Unreadable as stop:
        problems.append(stop.problem)
        return []
    rows = [(n, readers._dense(c)) for n, c in records]
    unit = year = None
    for n, r in rows[:6]:
        for j, text in enumerate(r[:-1]):
            if _key(text) == _key("单位代码") and r[j + 1].strip():
                unit = r[j + 1].strip()
            if _key(text) == _key("年度"):
                try:
                    year = year_of(r[j + 1])
                except InputError as exc:
                    problems.append(Problem(row=n, column=_letters(j + 1), value=r[j + 1], message=str(exc)))
                    year = False
    if not unit:
        problems.append(Problem(row=2, column="B", message="模板第2行「单位代码」后应填写本单位代码"))
    if year is None:
        problems.append(Problem(row=2, column="F", message="模板第2行「年度」后应填写年份,如 2025"))
    rep = Report(unit or "", year or 0)
    table = None
    found: set = set()
    t4_header_seen = False
    for n, r in rows:
        first = _key(r[0]) if r else ""
        for t, title in TABLES.items():
            if first and first == _key(title):
                table, t4_header_seen = t, False
        if table in ("二", "三"):
            labels = [x for x in r[:3 if table == "三" else 1] if x.strip()]
            if not labels:
                continue
            row = _ROW_BY_NAME.get((table, _key(labels[-1])))
            if row is None or row.code in found:
                continue
            found.add(row.code)
            start = 1 if table == "二" else 3
            for k, col in enumerate(row.cols):
                _template_cell(rep, (table, row.code, col), r, start + k, n, row.kind, problems)
        elif table == "四":
            if len(r) > 5 and _key(r[5]) == _key(T4_COLS[0]):
                t4_header_seen = True
                continue
            if t4_header_seen and "表四" not in found:
                found.add("表四")
                for k, cell in enumerate((("四", x.code, c) for x in ROWS if x.table == "四" for c in x.cols)):
                    _template_cell(rep, cell, r, k, n, COUNT, problems)
    missing = [r.label for r in ROWS if r.table in "二三" and r.code not in found]
    if missing:
        problems.append(Problem(message=f"模板缺少以下行(表格结构被改动,请重新下载模板):{'、'.join(missing[:5])}"
                                        + ("等" if len(missing) > 5 else "")))
    return [rep] if unit and year else []


def _template_cell(rep: Report, cell, r: list[str], j: int, n: int, kind: str, problems: list) -> None:
    text = r[j] if j < len(r) else ""
    column = f"{_letters(j)}{n}"
    rep.where[cell] = (n, column)
    try:
        rep.values[cell] = _value(text, kind)
    except InputError as exc:
        problems.append(Problem(row=n, column=column, value=text, message=f"{cell_name(cell)}:{exc}"))


def read_reports(data: bytes, file_name: str) -> tuple[list[Report], list[Problem]]:
    """The reports in a file (the XLSX template, or the long layout as CSV or XLSX) and its problems."""
    problems: list[Problem] = []
    table = readers.read_upload(data, file_name, frozenset(header_key(h) for h in LONG_HEADERS))
    if not table.ok:
        return [], table.problems
    if {header_key(h) for h in ("表", "行", "列", "值")} <= {header_key(h) for h in table.header}:
        return _read_long(table, problems), problems
    if table.kind != "xlsx":
        return [], [Problem(row=table.header_row, message=f"CSV 应为长表格式,表头为:{'、'.join(LONG_HEADERS)}")]
    return _read_template(data, problems), problems


# -- the store ----------------------------------------------------------------------------------------
def _stored(con, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Report]:
    """The current reports of these (unit, year)s, as far as the store has them."""
    if not keys:
        return {}
    con.register("yb_keys", pd.DataFrame(keys, columns=["unit_code", "year"]))
    rows = con.execute("""SELECT u.unit_code, u.year, c.tbl, c.row_key, c.col_key, c.value FROM yearbook_current u
                          JOIN yb_keys k USING (unit_code, year) JOIN yearbook_cells c USING (upload_id)""").fetchall()
    con.unregister("yb_keys")
    out: dict[tuple[str, int], Report] = {}
    for unit, year, t, r, c, v in rows:
        rep = out.get((unit, year)) or out.setdefault((unit, year), Report(unit, year))
        if (t, r, c) in rep.values:
            rep.values[(t, r, c)] = v
    return out


def _quarterly_new(con, units: list[str]) -> dict[tuple[str, int], dict[str, float]]:
    """Each unit's ``apps_new_received`` by quarter, grouped by (unit, year)."""
    con.register("yb_units", pd.DataFrame({"unit_code": units}))
    rows = con.execute("""SELECT unit_code, period, value FROM current_values JOIN yb_units USING (unit_code)
                          WHERE indicator = 'apps_new_received' AND NOT is_na AND value IS NOT NULL""").fetchall()
    con.unregister("yb_units")
    out: dict[tuple[str, int], dict[str, float]] = {}
    for unit, period, value in rows:
        out.setdefault((unit, int(period[:4])), {})[period] = float(value)
    return out


def error_counts(con) -> pd.DataFrame:
    """``unit_code, year, errors``: the 勾稽 errors of each unit's current report of each year."""
    return con.execute("SELECT unit_code, year, errors FROM yearbook_current").df()


@dataclass
class ImportResult:
    reports: list[Report]
    warnings: list[Problem]
    errors: int
    message: str


def import_reports(store, data: bytes, file_name: str, actor: User, *, as_published: bool = False) -> ImportResult:
    """Check and store every report in the file, all or nothing (see the module docstring)."""
    actor = require_active(store, require(actor, "yearbook.upload"), "上传年报统计表")
    if as_published:
        require(actor, "yearbook.record")
    reports, problems = read_reports(data, file_name)
    known = {r[0]: r[1] for r in store.rows("SELECT unit_code, unit_name FROM units")}
    seen = set()
    for rep in reports:
        row = next(iter(rep.where.values()), (None, ""))[0]
        if rep.unit_code not in known:
            problems.append(Problem(row=row, column="单位代码", value=rep.unit_code, message="单位代码不在单位名录中"))
        elif actor.is_unit and rep.unit_code != actor.unit_code:
            problems.append(Problem(row=row, column="单位代码", value=rep.unit_code,
                                    message=f"单位账号只能上传本单位({actor.unit_code})的年报"))
        if (rep.unit_code, rep.year) in seen:
            problems.append(Problem(row=row, column="单位代码", value=rep.unit_code, message=f"{rep.year}年度年报在文件中出现两次"))
        seen.add((rep.unit_code, rep.year))
    if not reports and not problems:
        problems.append(Problem(message="文件中没有年报数据"))
    if problems:
        raise _problems(f"年报文件 {file_name} 未导入:有{len(problems)}处问题", problems)

    findings: dict[int, list[Finding]] = {}
    in_file = {(r.unit_code, r.year): r for r in reports}
    with store.cursor() as con:
        stored = _stored(con, [(r.unit_code, r.year - 1) for r in reports if (r.unit_code, r.year - 1) not in in_file])
        quarterly = _quarterly_new(con, sorted({r.unit_code for r in reports}))
    for rep in reports:
        key = (rep.unit_code, rep.year - 1)
        findings[id(rep)] = check(rep, in_file.get(key) or stored.get(key), quarterly.get((rep.unit_code, rep.year)))
    errors = [problem_of(rep, f) for rep in reports for f in findings[id(rep)] if not f.warning]
    warnings = [problem_of(rep, f) for rep in reports for f in findings[id(rep)] if f.warning]
    if errors and not as_published:
        raise _problems(f"年报文件 {file_name} 未导入:勾稽检查发现{len(errors)}处错误", errors + warnings)
    digest = hashlib.sha256(data).hexdigest()

    def write(cur):
        from .audit import record

        first = cur.execute("SELECT nextval('seq_yearbook')").fetchone()[0]
        cur.execute(f"SELECT setval('seq_yearbook', {first + len(reports) - 1})")
        heads, cells = [], []
        for k, rep in enumerate(reports):
            mine = findings[id(rep)]
            n_err = sum(not f.warning for f in mine)
            heads.append((first + k, rep.unit_code, rep.year, file_name, digest, actor.username, n_err,
                          len(mine) - n_err, as_published,
                          json.dumps([{"cell": list(f.cell), "message": f.message, "warning": f.warning} for f in mine],
                                     ensure_ascii=False)))
            cells.append(rep.frame().assign(upload_id=first + k))
            record(cur, actor, "yearbook", f"{rep.unit_code}/{rep.year}",
                   f"导入年报统计表 {file_name}" + (f",按已发布原样登记,勾稽错误{n_err}处" if as_published else ""))
        cur.executemany("INSERT INTO yearbook_uploads VALUES (?, ?, ?, ?, ?, ?, now(), ?, ?, ?, ?)", heads)
        cur.register("yb_cells", pd.concat(cells, ignore_index=True))
        cur.execute("INSERT INTO yearbook_cells SELECT upload_id, tbl, row_key, col_key, value FROM yb_cells")
        cur.unregister("yb_cells")

    store.write(write)
    n_err = len(errors)
    units = "、".join(f"{r.unit_code}({r.year}年度)" for r in reports[:5]) + ("等" if len(reports) > 5 else "")
    text = f"已导入{len(reports)}份年报统计表:{units}"
    if n_err:
        text += f";按已发布原样登记,勾稽错误{n_err}处(计入年报考评项)"
    if warnings:
        text += f";提示{len(warnings)}条"
    return ImportResult(reports, warnings, n_err, text)


def _problems(title: str, problems: list[Problem]) -> Problems:
    exc = Problems(title, problems)
    exc.table = pd.DataFrame([dict(p) for p in problems], columns=["row", "column", "value", "message"])
    return exc


def report_of(store, actor: User, unit_code: str, year: int) -> tuple[Report, dict]:
    """A unit's current report of a year and its upload record (``errors``, ``findings`` …)."""
    require_active(store, require(actor, "yearbook.view", unit=unit_code), "查看年报统计表")
    with store.cursor() as con:
        rep = _stored(con, [(unit_code, year)]).get((unit_code, year))
        meta = con.execute("""SELECT y.*, u.unit_name FROM yearbook_current y LEFT JOIN units u USING (unit_code)
                              WHERE y.unit_code = ? AND y.year = ?""", [unit_code, year]).df()
    if rep is None:
        raise NotFound(f"单位「{unit_code}」没有{year}年度的年报统计数据")
    info = meta.iloc[0].to_dict()
    info["findings"] = json.loads(info["findings"] or "[]")
    return rep, info


def uploads(store, actor: User, year: int | None = None) -> pd.DataFrame:
    """The current report of every unit the actor may see: unit, year, errors, warnings, who/when."""
    actor = require_active(store, require(actor, "yearbook.view"), "查看年报统计表")
    sql = """SELECT y.unit_code, u.unit_name, u.grp AS "group", y.year, y.errors, y.warnings, y.as_published,
                    y.file_name, y.uploaded_by, y.uploaded_at FROM yearbook_current y JOIN units u USING (unit_code)
             WHERE (? IS NULL OR y.year = ?)"""
    params = [year, year]
    if actor.is_unit:
        sql += " AND y.unit_code = ?"
        params.append(actor.unit_code)
    return store.df(sql + " ORDER BY y.year DESC, y.unit_code", params)


def units_for(store, actor: User) -> pd.DataFrame:
    """The units whose 年报 the actor may see: ``unit_code, unit_name, group`` (a unit account: its own)."""
    actor = require_active(store, require(actor, "yearbook.view"), "查看年报统计表")
    sql = 'SELECT unit_code, unit_name, grp AS "group" FROM units'
    if actor.is_unit:
        return store.df(sql + " WHERE unit_code = ?", [actor.unit_code])
    return store.df(sql + " ORDER BY unit_code")


def current_or_none(store, actor: User, unit_code: str, year: int) -> tuple[Report | None, dict | None]:
    """:func:`report_of`, or (None, None) when the unit has no report of that year."""
    try:
        return report_of(store, actor, unit_code, year)
    except NotFound:
        return None, None


# -- the template -------------------------------------------------------------------------------------
def _layout() -> list[tuple[int, int, int, int, str, str]]:
    """The published tables as merged cells: (row, col, last row, last col, text, style) 0-based;
    style ``title`` | ``head`` | ``label`` | ``input``."""
    cells, r = [], 0

    def put(r0, c0, r1, c1, text, style="head"):
        cells.append((r0, c0, r1, c1, text, style))

    put(0, 0, 0, 15, "政府信息公开工作年度报告统计表(国办公开办函〔2021〕30号格式)", "title")
    put(1, 0, 1, 0, "单位代码"), put(1, 1, 1, 1, "", "input"), put(1, 2, 1, 2, "单位名称")
    put(1, 3, 1, 3, "", "input"), put(1, 4, 1, 4, "年度"), put(1, 5, 1, 5, "", "input")
    put(2, 0, 2, 15, "填写说明:只填白色单元格,空白按0计;件数为整数;表三、表四的总计须等于各项之和,"
                     "一+二=三(七)+四;上年结转须等于上年度年报的结转下年度。", "note")
    r = 4
    put(r, 0, r, 9, TABLES["二"], "section")
    r += 1
    for parent in dict.fromkeys(x.parent for x in ROWS if x.table == "二"):
        rows = [x for x in ROWS if x.table == "二" and x.parent == parent]
        put(r, 0, r, 3, parent)
        r += 1
        put(r, 0, r, 0, "信息内容")
        wide = len(rows[0].cols) == 1          # one figure: its column spans the table's width
        for k, c in enumerate(rows[0].cols):
            put(r, 1 + k, r, 3 if wide else 1 + k, c)
        r += 1
        for x in rows:
            put(r, 0, r, 0, x.label, "label")
            for k in range(len(x.cols)):
                put(r, 1 + k, r, 3 if wide else 1 + k, "", "input")
            r += 1
    r += 1
    put(r, 0, r, 9, TABLES["三"], "section")
    r += 1
    put(r, 0, r + 2, 2, "(本列数据的勾稽关系为:第一项加第二项之和,等于第三项加第四项之和)")
    put(r, 3, r, 9, "申请人情况")
    put(r + 1, 3, r + 2, 3, "自然人"), put(r + 1, 4, r + 1, 8, "法人或其他组织"), put(r + 1, 9, r + 2, 9, "总计")
    for k, c in enumerate(T3_APPLICANTS[1:]):
        put(r + 2, 4 + k, r + 2, 4 + k, c)
    r += 3
    t3 = [x for x in ROWS if x.table == "三"]
    results = [x for x in t3 if x.code.startswith("三(")]
    for x in t3:
        if x.code.startswith("三("):
            if x is results[0]:
                put(r, 0, r + len(results) - 1, 0, "三、本年度办理结果", "label")
            if x.parent:
                group = [y for y in t3 if y.parent == x.parent]
                if x is group[0]:
                    put(r, 1, r + len(group) - 1, 1, x.parent, "label")
                put(r, 2, r, 2, x.label, "label")
            else:
                put(r, 1, r, 2, x.label, "label")
        else:
            put(r, 0, r, 2, x.label, "label")
        for k in range(len(T3_COLS)):
            put(r, 3 + k, r, 3 + k, "", "input")
        r += 1
    r += 1
    put(r, 0, r, 9, TABLES["四"], "section")
    r += 1
    put(r, 0, r, 4, "行政复议"), put(r, 5, r, 14, "行政诉讼")
    for k, c in enumerate(T4_COLS):
        put(r + 1, k, r + 2, k, c)
    put(r + 1, 5, r + 1, 9, "未经复议直接起诉"), put(r + 1, 10, r + 1, 14, "复议后起诉")
    for k, c in enumerate(T4_COLS * 2):
        put(r + 2, 5 + k, r + 2, 5 + k, c)
    for k in range(15):
        put(r + 3, k, r + 3, k, "", "input")
    return cells


def template_bytes(unit_code: str = "", unit_name: str = "", year: int | None = None,
                   report: Report | None = None) -> bytes:
    """The XLSX template (optionally filled with a unit, a year and a report's figures)."""
    import xlsxwriter

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    sheet = book.add_worksheet("年报统计表")
    base = {"font_name": "宋体", "font_size": 10, "border": 1, "valign": "vcenter", "text_wrap": True}
    styles = {"title": book.add_format({**base, "border": 0, "bold": True, "font_size": 14, "align": "center"}),
              "note": book.add_format({**base, "border": 0, "font_size": 9, "font_color": "#555555"}),
              "section": book.add_format({**base, "border": 0, "bold": True, "font_size": 12}),
              "head": book.add_format({**base, "bold": True, "align": "center", "bg_color": "#E7E6E6"}),
              "label": book.add_format({**base, "align": "left"}),
              "input": book.add_format({**base, "align": "right", "locked": False, "num_format": "0"}),
              "amount": book.add_format({**base, "align": "right", "locked": False, "num_format": "0.00"})}
    values = iter([])
    if report is not None:
        values = iter([report.values[c] for c in _template_order()])
    fill = {(1, 1): unit_code, (1, 3): unit_name, (1, 5): year or ""}
    for r0, c0, r1, c1, text, style in _layout():
        fmt = styles[style]
        if style == "input" and r0 > 2:
            x = next(values, None)
            text = "" if x is None else (x if not float(x).is_integer() else int(x))
            if (r0, c0) == _amount_cell():
                fmt = styles["amount"]
        elif style == "input":
            text = fill.get((r0, c0), "")
        if (r0, c0) == (r1, c1):
            sheet.write(r0, c0, text, fmt)
        else:
            sheet.merge_range(r0, c0, r1, c1, text, fmt)
    sheet.set_column(0, 0, 24)
    sheet.set_column(1, 1, 16)
    sheet.set_column(2, 2, 30)
    sheet.set_column(3, 15, 10)
    book.close()
    return buf.getvalue()


def _template_order() -> list[tuple[str, str, str]]:
    """The cells in the order the template's input cells appear (row by row)."""
    return [(r.table, r.code, c) for t in ("二", "三", "四") for r in ROWS if r.table == t for c in r.cols]


def _amount_cell() -> tuple[int, int]:
    inputs = [(r0, c0) for r0, c0, _, _, _, s in _layout() if s == "input" and r0 > 2]
    return inputs[_template_order().index(("二", "行政事业性收费", ROW[("二", "行政事业性收费")].cols[0]))]


def long_csv(reports: list[Report]) -> bytes:
    """Reports in the long layout (``单位代码, 年度, 表, 行, 列, 值``), UTF-8 with BOM for Excel."""
    rows = [(rep.unit_code, rep.year, f"表{t}", r, c, _fmt(rep.values[(t, r, c)]))
            for rep in reports for (t, r, c) in CELLS]
    return pd.DataFrame(rows, columns=list(LONG_HEADERS)).to_csv(index=False).encode("utf-8-sig")


# -- the report as published: Word tables and plain text ------------------------------------------------
def table_rows(rep: Report, table: str) -> list[list[str]]:
    """A table as text rows (label columns, then the figures), for the command line and the app."""
    out = []
    for r in (x for x in ROWS if x.table == table):
        label = (r.parent + r.label) if table == "三" and r.parent else r.label
        out.append([label] + [_fmt(rep.values[(table, r.code, c)]) for c in r.cols])
    return out


def frame_of(rep: Report, table: str) -> pd.DataFrame:
    """Table 三 or 四 as a frame (rows × columns), table 二 as 信息内容 / 项目 / 数值."""
    if table == "二":
        return pd.DataFrame([(r.label, c, rep.values[("二", r.code, c)]) for r in ROWS if r.table == "二" for c in r.cols],
                            columns=["信息内容", "项目", "数值"])
    rows = [x for x in ROWS if x.table == table]
    return pd.DataFrame([[row[0], *map(float, row[1:])] for row in table_rows(rep, table)],
                        columns=["项目", *rows[0].cols])


def docx_bytes(store, actor: User, unit_code: str, year: int) -> bytes:
    """The unit's three tables in the published layout (merged headers), to paste into its 年报."""
    from .docx_writer import Doc

    rep, info = report_of(store, actor, unit_code, year)
    doc = Doc()
    doc.para(f"{info.get('unit_name') or unit_code}{year}年政府信息公开工作年度报告", size=22, font="title",
             bold=True, align="center", indent=False, after=12, line=34)
    doc.para("(统计表部分,按国办公开办函〔2021〕30号格式)", size=14, align="center", indent=False, after=12)
    for t in ("二", "三", "四"):
        doc.heading(TABLES[t])
        _word_table(doc, rep, t)
        doc.para("", line=14)
    if info["errors"]:
        doc.para(f"注:本统计表经勾稽检查有{int(info['errors'])}处错误(按已发布原样登记)。", size=12, line=20)
    return doc.bytes()


def _word_table(doc, rep: Report, t: str) -> None:
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.shared import Cm, Pt

    layout = _layout()
    rows = [x for x in _table_region(layout, t)]
    r_min = min(r0 for r0, *_ in rows)
    n_rows = max(r1 for _, _, r1, *_ in rows) - r_min + 1
    n_cols = max(c1 for _, _, _, c1, *_ in rows) + 1
    table = doc.doc.add_table(rows=n_rows, cols=n_cols)
    table.style = doc.doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    width = 15.6 / n_cols if t == "四" else None
    widths = {"二": [4.6, 3.6, 3.6, 3.6], "三": [2.0, 2.0, 3.4] + [1.17] * 7}.get(t, [width] * n_cols)
    values = iter(rep.values[c] for c in _template_order() if c[0] == t)
    grid = [list(row.cells) for row in table.rows]     # before merging: table.cell() is slow after
    for row in grid:
        for j, w in enumerate(widths[:n_cols]):
            row[j].width = Cm(w)
    for r0, c0, r1, c1, text, style in rows:
        cell = grid[r0 - r_min][c0]
        if (r0, c0) != (r1, c1):
            cell = cell.merge(grid[r1 - r_min][c1])
        if style == "input":
            text = _fmt(next(values))
        p = cell.paragraphs[0]
        p.paragraph_format.first_line_indent = Pt(0)
        p.paragraph_format.line_spacing = 1.0
        p.alignment = 0 if style == "label" else 1
        doc.run(p, text, size=9, font="heading" if style == "head" else "body", bold=style == "head")


def _table_region(layout, t: str):
    """The merged cells of one table in the template layout (without its section title)."""
    starts = {text: r0 for r0, _, _, _, text, style in layout if style == "section"}
    order = sorted(starts.values())
    first = starts[TABLES[t]]
    nxt = next((x for x in order if x > first), 10**6)
    return [c for c in layout if first < c[0] < nxt and c[5] in ("head", "label", "input")]


# -- demo -------------------------------------------------------------------------------------------------
def demo_report(unit_code: str, year: int, carried_in: dict[str, float], new_total: int,
                rng: np.random.Generator) -> Report:
    """A consistent report: ``new_total`` applications spread over applicants and results."""
    rep = Report(unit_code, year)
    v = rep.values
    weights = np.array([0.62, 0.2, 0.03, 0.05, 0.04, 0.06])
    new = rng.multinomial(new_total, weights) if new_total else np.zeros(6, int)
    carried = np.array([carried_in.get(c, 0.0) for c in T3_APPLICANTS])
    for k, c in enumerate(T3_APPLICANTS):
        v[("三", "一", c)] = float(new[k])
        v[("三", "二", c)] = float(carried[k])
        handled = new[k] + carried[k]
        forward = int(rng.binomial(int(handled), 0.08)) if handled else 0
        v[("三", "四", c)] = float(forward)
        share = np.r_[[0.55, 0.12], np.full(8, 0.01), np.full(3, 0.06), np.full(5, 0.008), np.full(3, 0.01)]
        results = rng.multinomial(int(handled - forward), share / share.sum())
        for code, x in zip(RESULT_ROWS, results):
            v[("三", code, c)] = float(x)
        v[("三", "三(七)", c)] = float(results.sum())
    for r in (x for x in ROWS if x.table == "三"):
        v[("三", r.code, "总计")] = sum(v[("三", r.code, c)] for c in T3_APPLICANTS)
    docs = int(rng.integers(2, 30))
    v.update({("二", "行政规范性文件", "本年制发件数"): float(rng.integers(0, 6)),
              ("二", "行政规范性文件", "本年废止件数"): float(rng.integers(0, 3)),
              ("二", "行政规范性文件", "现行有效件数"): float(docs),
              ("二", "行政许可", "本年处理决定数量"): float(rng.integers(0, 800)),
              ("二", "行政处罚", "本年处理决定数量"): float(rng.integers(0, 300)),
              ("二", "行政强制", "本年处理决定数量"): float(rng.integers(0, 20)),
              ("二", "行政事业性收费", ROW[("二", "行政事业性收费")].cols[0]): float(round(rng.uniform(0, 50), 2))})
    for r in (x for x in ROWS if x.table == "四"):
        parts = rng.poisson([0.6, 0.1, 0.1, 0.1]) if new_total > 5 else np.zeros(4, int)
        for c, x in zip(T4_COLS, parts):
            v[("四", r.code, c)] = float(x)
        v[("四", r.code, "总计")] = float(parts.sum())
    return rep


DEMO_YEARS = (2023, 2024, 2025)
DEMO_SEED = 20250313
_DEMO_FAULTS = 4          # reports of 2024 published with 勾稽 errors (scored in 2025Q1)


def seed_demo(store, actor: User) -> str:
    """年报 of 2023–2025 for every unit; 新收 = the sum of the year's quarterly ``apps_new_received``
    where the demo has them; a few 2024 reports recorded as published with 勾稽 errors."""
    rng = np.random.default_rng(DEMO_SEED)
    from .schemes import load_schemes

    registry = store.df('SELECT unit_code, grp FROM units ORDER BY unit_code')
    units = registry["unit_code"].tolist()
    scored = {g for sc in load_schemes(store) for g in sc.groups
              if any(i.computed and i.computed[0] == "yearbook" for i in sc.indicators.values())}
    new = store.df("""SELECT unit_code, substr(period, 1, 4)::INTEGER AS year, sum(value) AS n FROM current_values
                      WHERE indicator = 'apps_new_received' AND NOT is_na GROUP BY ALL""")
    new = {(r.unit_code, int(r.year)): int(r.n) for r in new.itertuples()}
    candidates = np.flatnonzero(registry["grp"].isin(scored).to_numpy())    # where a scheme deducts them
    faulty = set(rng.choice(candidates, min(_DEMO_FAULTS, len(candidates)), replace=False).tolist())
    files = {}
    for year in DEMO_YEARS:
        clean, broken = [], []
        for k, code in enumerate(units):
            before = files.get((code, year - 1))
            carried = {c: before.values[("三", "四", c)] for c in T3_APPLICANTS} if before else {}
            rep = demo_report(code, year, carried, new.get((code, year), int(rng.poisson(6))), rng)
            files[(code, year)] = rep
            if year == 2024 and k in faulty:
                broken.append(_with_errors(rep, k % 3 + 1))
            else:
                clean.append(rep)
        import_reports(store, long_csv(clean), f"{year}年度年报统计表(演示).csv", actor)
        if broken:
            import_reports(store, long_csv(broken), f"{year}年度年报统计表(已发布原样).csv", actor, as_published=True)
    return f"{len(units)}个单位{DEMO_YEARS[0]}–{DEMO_YEARS[-1]}年度年报,其中{len(faulty)}份按已发布原样登记有勾稽错误"


def _with_errors(rep: Report, kind: int) -> Report:
    """A copy with the mistakes published reports make: a 总计 not summed, a 复议 total off."""
    bad = Report(rep.unit_code, rep.year, dict(rep.values))
    if kind >= 1:
        bad.values[("三", "三(七)", "自然人")] += 1            # (七)总计 ≠ (一)…(六); 一+二 ≠ 三(七)+四
    if kind >= 2:
        bad.values[("四", "行政复议", "总计")] += 1
    if kind >= 3:
        bad.values[("三", "一", "总计")] += 2                  # 总计 ≠ the applicants
    return bad
