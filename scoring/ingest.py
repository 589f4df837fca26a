"""Uploads: reading CSV/XLSX forgivingly, validating strictly, and writing one batch.

Reading (``read_upload``) turns the bytes of a ``.csv`` (UTF-8 with or without BOM, UTF-16 with
BOM, GBK/GB18030; comma or tab) or ``.xlsx`` (first sheet) into a :class:`Table` of cell texts
with their spreadsheet row numbers (the header is row 1). It never raises on bad input: an empty,
binary or unreadable file becomes a file-level problem.

Validation (``check_upload``) collects *every* problem, like pandera's ``failure_cases``, into a
DataFrame ``row, column, value, message``: ``row`` is the row number as a spreadsheet shows it
(``None`` for a problem of the whole file), ``column`` the header as written in the file,
``value`` the raw cell text, ``message`` Chinese. The work is done over whole columns
(pandas/numpy); only the problem rows are formatted one by one.

Writing (``ingest``) stores a valid file as one batch in one transaction, or raises
:class:`UploadRejected` (an ``errors.Problems`` with ``.table``) and writes nothing.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime

import numpy as np
import pandas as pd

from . import periods
from .permissions import User
from .audit import record
from .errors import InputError, PermissionDenied, Problems
from .schemes import Scheme, load_schemes

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
PREVIEW_ROWS = 20

# header aliases (compared after _norm_key)
UNIT_HEADERS = {"unit_code", "单位代码", "单位编码", "unitcode"}
PERIOD_HEADERS = {"period", "季度", "考评季度", "报送季度"}
SELF_HEADERS = {"self_score", "自评分", "自评得分", "selfscore"}
INDICATOR_HEADERS = {"indicator", "指标", "指标代码", "指标名称"}
VALUE_HEADERS = {"value", "数值", "值", "指标值"}
INFO_HEADERS = {"unit_name", "单位名称", "group", "分组", "备注", "note", "remark", "序号", "no"}

NA_TOKENS = {"不适用", "na", "n/a"}
BOOL_TOKENS = {"是": 1.0, "否": 0.0, "y": 1.0, "n": 0.0, "yes": 1.0, "no": 0.0,
               "true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}
TYPE_LABELS = {"count": "非负整数", "number": "数字", "rate": "0–100 的百分比", "bool": "是/否"}

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NUMBER_RE = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_THOUSANDS_RE = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"
_PAREN_RE = re.compile(r"\([^()]*\)$")


# -- decoding ----------------------------------------------------------------------------------
def _decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): BOM first (UTF-8/UTF-16), then strict UTF-8, then strict GB18030."""
    boms = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
            (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
    for bom, enc in boms:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(enc), enc.upper().replace("-LE", "").replace("-BE", "") + " BOM"
            except UnicodeDecodeError as exc:
                raise InputError(f"文件以 {enc.upper()} 的 BOM 开头,但第{exc.start + len(bom) + 1}个字节起"
                                 f"不是有效的 {enc.upper()} 内容,无法读取") from None
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "GB18030"
    except UnicodeDecodeError:
        pass
    raise InputError("无法识别文件编码:既不是 UTF-8(可带 BOM)、UTF-16(带 BOM),也不是 GBK/GB18030。"
                     "请在 Excel 中“另存为”CSV UTF-8(逗号分隔)或 .xlsx 后重新上传")


def decode_bytes(data: bytes) -> str:
    """The text of an uploaded file (see :func:`_decode`); raise InputError in Chinese if none fits."""
    return _decode(data)[0]


def sniff_delimiter(text: str) -> str:
    """``"\\t"`` when the first non-blank line has more tabs than commas, else ``","``."""
    for line in text.splitlines():
        if line.strip():
            return "\t" if line.count("\t") > line.count(",") else ","
    return ","


# -- reading -----------------------------------------------------------------------------------
@dataclass
class Table:
    """The cells of an upload as text (stripped, ``""`` for blank), with spreadsheet row numbers."""

    file_name: str
    kind: str = ""                      # csv | xlsx | ""
    encoding: str = ""
    delimiter: str = ""
    header: list[str] = field(default_factory=list)
    header_row: int = 1
    cells: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=object))  # data rows × columns
    row_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    problems: list[dict] = field(default_factory=list)          # file-level problems

    @property
    def ok(self) -> bool:
        return not self.problems

    def preview(self, n: int = PREVIEW_ROWS) -> pd.DataFrame:
        """The first ``n`` data rows as read, the first column 行 being the spreadsheet row number."""
        names, seen = [], {}
        for j, h in enumerate(self.header):
            name = h or f"(第{j + 1}列)"
            seen[name] = seen.get(name, 0) + 1
            names.append(name if seen[name] == 1 else f"{name}({seen[name]})")
        df = pd.DataFrame(self.cells[:n].reshape(-1, len(names)), columns=names, dtype=object)
        df.insert(0, "行" if "行" not in names else "(行号)", self.row_numbers[:n])
        return df


class Problem(dict):
    """One problem: a dict ``row, column, value, message`` that prints as one Chinese line."""

    def __init__(self, row=None, column="", value="", message=""):
        super().__init__(row=row, column=column, value=value, message=message)

    def __str__(self) -> str:
        place = "文件" if self["row"] is None else f"第{self['row']}行"
        if self["column"]:
            place += f",列「{self['column']}」"
        if self["value"] != "":
            place += f",值「{self['value']}」"
        return f"{place}:{self['message']}"


def _file_problem(message: str, value: str = "") -> Problem:
    return Problem(row=None, column="", value=value, message=message)


_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"


def _read_csv(data: bytes, table: Table) -> list[list[str]] | None:
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        table.problems.append(_file_problem("文件含有二进制内容,不是文本表格:请上传 .csv 或 .xlsx 文件"))
        return None
    try:
        text, table.encoding = _decode(data)
    except InputError as exc:
        table.problems.append(_file_problem(str(exc)))
        return None
    text = text.rstrip("\x1a")  # DOS end-of-file marker of old exports
    if _CONTROL_RE.search(text):
        table.problems.append(_file_problem("文件含有二进制内容,不是文本表格:请上传 .csv 或 .xlsx 文件"))
        return None
    if any(ch in text for ch in _INVISIBLE):
        text = text.translate({ord(ch): None for ch in _INVISIBLE})
    table.delimiter = sniff_delimiter(text)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=table.delimiter))
    except csv.Error as exc:
        table.problems.append(_file_problem(f"CSV 格式错误,无法读取:{exc}"))
        return None
    # most exports have no padding at all: one scan of the text spares stripping every cell
    padded = (_PADDING_TAB if table.delimiter == "\t" else _PADDING).search(text)
    return [[c.strip() for c in r] for r in rows] if padded else rows


_PADDING = re.compile(r"[^\S\r\n]")        # whitespace other than line breaks
_PADDING_TAB = re.compile(r"[^\S\r\n\t]")  # ... and other than the tab delimiter


def _xlsx_text(value, number_format) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        v = float(value)
        if not np.isfinite(v):
            return str(value)
        if number_format and "%" in str(number_format):
            return f"{v * 100:.12g}%"
        if isinstance(value, int):
            return str(value)
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.15g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dtime(0) else value.isoformat(sep=" ")
    if isinstance(value, (date, dtime)):
        return value.isoformat()
    return str(value).strip().strip(_INVISIBLE).strip()


def _read_xlsx(data: bytes, table: Table) -> list[list[str]] | None:
    import warnings

    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on a broken file
        table.problems.append(_file_problem(f"无法读取 Excel 文件(文件可能已损坏或不是 .xlsx):{type(exc).__name__}"))
        return None
    try:
        if not wb.worksheets:
            table.problems.append(_file_problem("Excel 文件中没有工作表"))
            return None
        ws = wb.worksheets[0]
        rows: list[list[str]] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for r in ws.iter_rows(min_row=1, min_col=1):
                rows.append([_xlsx_text(c.value, getattr(c, "number_format", None)) for c in r])
                if len(rows) > MAX_ROWS + 1:
                    table.problems.append(_file_problem(f"工作表超过 {MAX_ROWS} 行,请拆分后上传"))
                    return None
        return rows
    except Exception as exc:  # noqa: BLE001
        table.problems.append(_file_problem(f"无法读取 Excel 文件的第一个工作表(文件可能已损坏):{type(exc).__name__}"))
        return None
    finally:
        wb.close()


def read_upload(data: bytes, file_name: str) -> Table:
    """Read an upload into a :class:`Table`; every failure is a problem in ``table.problems``."""
    table = Table(file_name=file_name)
    ext = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if len(data) > MAX_BYTES:
        table.problems.append(_file_problem(f"文件过大({len(data) / 1024 / 1024:.1f} MB),上限为 20 MB"))
        return table
    if not data.strip():
        table.problems.append(_file_problem("文件为空"))
        return table
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        table.problems.append(_file_problem("不支持旧版 Excel(.xls)文件:请在 Excel 中另存为 .xlsx 或 CSV 后上传"))
        return table
    if data.startswith(b"PK\x03\x04") or ext in ("xlsx", "xlsm"):
        if not zipfile.is_zipfile(io.BytesIO(data)):
            table.problems.append(_file_problem("文件扩展名为 .xlsx,但内容不是有效的 Excel 文件"))
            return table
        table.kind = "xlsx"
        rows = _read_xlsx(data, table)
    else:
        table.kind = "csv"
        rows = _read_csv(data, table)
    if rows is None:
        return table
    if len(rows) > MAX_ROWS + 1:
        table.problems.append(_file_problem(f"文件超过 {MAX_ROWS} 行,请拆分后上传"))
        return table

    # the header: the first row naming the unit column among the first ten non-blank rows,
    # else the first non-blank row (a title line above the header is tolerated)
    nonblank = [i for i, r in enumerate(rows) if any(r)]
    if not nonblank:
        table.problems.append(_file_problem("文件中没有任何内容"))
        return table
    head = next((i for i in nonblank[:10] if any(_norm_key(c) in UNIT_HEADERS for c in rows[i])), nonblank[0])
    width = max(len(r) for r in rows[head:])
    header = rows[head] + [""] * (width - len(rows[head]))
    # drop trailing columns that are blank in the header and in every row
    while width and not header[width - 1] and not any(len(r) >= width and r[width - 1] for r in rows[head + 1:]):
        width -= 1
    table.header = header[:width]
    table.header_row = head + 1
    body = [(i + 1, r) for i, r in enumerate(rows[head + 1:], start=head + 1) if any(r)]
    table.row_numbers = np.array([n for n, _ in body], dtype=np.int64)
    cells = np.empty((len(body), width), dtype=object)
    cells[:] = ""
    for k, (_, r) in enumerate(body):
        m = min(len(r), width)
        cells[k, :m] = r[:m]
    table.cells = cells
    return table


# -- header and value normalisation -----------------------------------------------------------------
def _norm_key(text: str) -> str:
    """Header / indicator-name matching key: NFKC, no whitespace, lower case."""
    s = unicodedata.normalize("NFKC", str(text))
    return re.sub(r"\s+", "", s).lower()


def _key_variants(text: str) -> list[str]:
    k = _norm_key(text)
    out = [k]
    stripped = _PAREN_RE.sub("", k)  # 依申请按期答复率(%) -> 依申请按期答复率
    if stripped and stripped != k:
        out.append(stripped)
    return out


_NUMBER_FULL = re.compile(_NUMBER_RE)
_THOUSANDS_FULL = re.compile(_THOUSANDS_RE)


def _parse_token(text: str) -> tuple[float, bool, bool, float, bool]:
    """One distinct cell text -> (number, is_number, has_percent, bool value, is NA token)."""
    t = unicodedata.normalize("NFKC", text).strip() if not text.isascii() else text
    low = t.lower()
    na = low in NA_TOKENS
    b = BOOL_TOKENS.get(low, np.nan)
    pct = t.endswith("%")
    body = t[:-1].strip() if pct else t
    if _THOUSANDS_FULL.fullmatch(body):
        body = body.replace(",", "")
    if _NUMBER_FULL.fullmatch(body):
        try:
            return float(body), True, pct, b, na
        except (ValueError, OverflowError):
            pass
    return np.nan, False, pct, b, na


def _tokens(cells: np.ndarray):
    """Parse distinct texts once (pd.factorize), then spread to every cell: arrays per cell."""
    codes, uniques = pd.factorize(cells)
    texts = pd.Series(uniques, dtype=object)
    # plain decimals (most cells) in one vectorised pass; everything else through _parse_token
    plain = texts.str.fullmatch(r"[+-]?[0-9]+(?:\.[0-9]+)?").fillna(False).to_numpy(dtype=bool)
    num = np.full(len(texts), np.nan)
    num[plain] = pd.to_numeric(texts[plain]).to_numpy(dtype=float)
    is_num = plain & np.isfinite(num)
    pct = np.zeros(len(texts), dtype=bool)
    na = np.zeros(len(texts), dtype=bool)
    boolv = texts.map(BOOL_TOKENS).to_numpy(dtype=float, copy=True)
    for k in np.flatnonzero(~is_num):
        num[k], is_num[k], pct[k], boolv[k], na[k] = _parse_token(uniques[k])
    return num[codes], is_num[codes], pct[codes], boolv[codes], na[codes]


@dataclass
class Parsed:
    value: np.ndarray    # float, NaN where not a value
    is_na: np.ndarray    # bool
    reason: np.ndarray   # object: None when fine, else the Chinese message


def parse_values(raw: np.ndarray, itype: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 na_allowed: np.ndarray, names: np.ndarray) -> Parsed:
    """Parse non-blank cells, vectorised; each cell carries its own indicator's properties."""
    n = len(raw)
    num, is_num, pct, boolv, na_tok = _tokens(np.asarray(raw, dtype=object))
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(num)
    is_bool = itype == "bool"
    is_rate = itype == "rate"
    is_count = itype == "count"
    reason = np.full(n, None, dtype=object)

    def flag(mask, make):
        mask = mask & np.equal(reason, None)
        if mask.any():
            idx = np.flatnonzero(mask)
            reason[idx] = [make(i) for i in idx]

    na_cell = na_tok & ~(is_bool & ~np.isnan(boolv))   # "N" is a bool, "NA" is not
    flag(na_cell & ~na_allowed, lambda i: f"指标「{names[i]}」不允许填写「不适用」,应为{TYPE_LABELS[itype[i]]}")
    is_na = na_cell & na_allowed
    flag(is_bool & np.isnan(boolv) & ~na_cell,
         lambda i: f"指标「{names[i]}」应填 是/否(也可写 Y/N、true/false、1/0)")
    numeric = ~is_bool & ~na_cell
    flag(numeric & is_num & pct & ~is_rate, lambda i: f"指标「{names[i]}」不是比率,不能写百分号,应为{TYPE_LABELS[itype[i]]}")
    flag(numeric & ~is_num, lambda i: f"指标「{names[i]}」应为{TYPE_LABELS[itype[i]]}")
    flag(numeric & is_num & ~finite, lambda i: f"指标「{names[i]}」数值过大")
    ok = numeric & is_num & finite
    value = np.where(is_bool, boolv, np.where(ok, num, np.nan))
    with np.errstate(invalid="ignore"):
        flag(ok & is_count & (num < 0), lambda i: f"指标「{names[i]}」是计数,不能为负数")
        flag(ok & is_count & (num != np.round(num)), lambda i: f"指标「{names[i]}」是计数,应为整数")
        flag(ok & is_rate & ((num < 0) | (num > 100)), lambda i: f"指标「{names[i]}」是比率,应在 0–100 之间")
        flag(ok & (value < lo), lambda i: f"指标「{names[i]}」不能小于{lo[i]:g}")
        flag(ok & (value > hi), lambda i: f"指标「{names[i]}」不能大于{hi[i]:g}")
    bad = ~np.equal(reason, None)
    value = np.where(bad | is_na, np.nan, value)
    return Parsed(value.astype(float), is_na & ~bad, reason)


def _parse_scores(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Self scores: (value, bad) for non-blank texts; a score is a number in 0–200."""
    num, is_num, pct, _, _ = _tokens(raw)
    with np.errstate(invalid="ignore"):
        bad = ~is_num | pct | ~np.isfinite(num) | (num < 0) | (num > 200)
    return np.where(bad, np.nan, num), bad


# -- checking ----------------------------------------------------------------------------------------
@dataclass
class Checked:
    """The outcome of :func:`check_upload`."""

    file_name: str
    sha256: str
    rows: int
    layout: str                       # wide | long | ""
    values: pd.DataFrame              # unit_code, period, indicator, value, is_na
    submissions: pd.DataFrame         # unit_code, period, self_score, row_no
    problems: pd.DataFrame            # row, column, value, message
    preview: pd.DataFrame
    encoding: str = ""

    @property
    def ok(self) -> bool:
        return self.problems.empty

    @property
    def periods(self) -> list[str]:
        return sorted(self.submissions["period"].unique().tolist())

    @property
    def units(self) -> list[str]:
        return sorted(self.submissions["unit_code"].unique().tolist())

    @property
    def title(self) -> str:
        return f"文件「{self.file_name}」有{len(self.problems)}处问题,整个文件未导入"


def _problems_frame(items: list[tuple]) -> pd.DataFrame:
    """items: (row, order, column, value, message) -> the problem table, sorted by row then column."""
    items = sorted(items, key=lambda p: (-1 if p[0] is None else int(p[0]), int(p[1])))
    return pd.DataFrame({
        "row": pd.Series([None if p[0] is None else int(p[0]) for p in items], dtype=object),
        "column": pd.Series([str(p[2]) for p in items], dtype=object),
        "value": pd.Series([str(p[3]) for p in items], dtype=object),
        "message": pd.Series([str(p[4]) for p in items], dtype=object),
    })


def _text_column(values) -> pd.Categorical:
    """Repetitive text (unit codes, periods, indicator codes) as a categorical: building a pandas 3
    string column from 180k Python strings costs more than all the validation."""
    if isinstance(values, pd.Categorical):
        return values
    return pd.Categorical(np.asarray(values, dtype=object))


def _indexed_text(labels, index: np.ndarray) -> pd.Categorical:
    """``labels[index]`` as a categorical, factorizing the few labels rather than the many values."""
    codes, categories = pd.factorize(np.asarray(labels, dtype=object))
    return pd.Categorical.from_codes(codes[index], categories=categories)


def _values_frame(unit=(), period=(), indicator=(), value=(), is_na=()) -> pd.DataFrame:
    return pd.DataFrame({"unit_code": _text_column(unit), "period": _text_column(period),
                         "indicator": _text_column(indicator),
                         "value": np.asarray(value, dtype=float), "is_na": np.asarray(is_na, dtype=bool)})


def _subs_frame(unit=(), period=(), self_score=(), row_no=()) -> pd.DataFrame:
    return pd.DataFrame({"unit_code": np.asarray(unit, dtype=object), "period": np.asarray(period, dtype=object),
                         "self_score": np.asarray(self_score, dtype=float),
                         "row_no": np.asarray(row_no, dtype=np.int64)})


def _rejected(file_name, sha, table, problems, layout="") -> Checked:
    preview = table.preview() if table.header else pd.DataFrame()
    return Checked(file_name, sha, len(table.row_numbers), layout, _values_frame(), _subs_frame(),
                   _problems_frame(problems), preview, table.encoding)


class _Catalogue:
    """Every indicator of every loaded scheme, addressable by (matching key, scheme index)."""

    def __init__(self, schemes: list[Scheme]):
        self.schemes = schemes
        S = len(schemes)
        self.code, self.itype, self.lo, self.hi, self.na, self.name, self.scheme = [], [], [], [], [], [], []
        self.key_id: dict[str, int] = {}
        cells: dict[tuple[int, int], int] = {}
        self.prop_of: list[dict[str, int]] = []
        for si, s in enumerate(schemes):
            mine = {}
            for code, ind in s.indicators.items():
                p = len(self.code)
                mine[code] = p
                self.code.append(code)
                self.itype.append(ind.type)
                self.lo.append(np.nan if ind.min is None else ind.min)
                self.hi.append(np.nan if ind.max is None else ind.max)
                self.na.append(ind.na_allowed)
                self.name.append(ind.name)
                self.scheme.append(si)
                for text in (code, ind.name):
                    for k in _key_variants(text):
                        kid = self.key_id.setdefault(k, len(self.key_id))
                        cells.setdefault((kid, si), p)
                        cells.setdefault((kid, S), p)  # column S: no scheme known, first declaration
            self.prop_of.append(mine)
        # matrix[key id, scheme index or S] -> property row, -1 when that scheme lacks the indicator
        self.matrix = np.full((max(len(self.key_id), 1), S + 1), -1, dtype=np.int64)
        for (kid, si), p in cells.items():
            self.matrix[kid, si] = p
        self.code = np.array(self.code, dtype=object)
        self.itype = np.array(self.itype, dtype=object)
        self.lo = np.array(self.lo, dtype=float)
        self.hi = np.array(self.hi, dtype=float)
        self.na = np.array(self.na, dtype=bool)
        self.name = np.array(self.name, dtype=object)

    def key_of(self, text: str) -> int:
        return next((self.key_id[v] for v in _key_variants(text) if v in self.key_id), -1)


def check_upload(store, data: bytes, file_name: str, actor: User) -> Checked:
    """Validate an upload completely; every problem ends up in ``Checked.problems``."""
    sha = hashlib.sha256(data).hexdigest()
    table = read_upload(data, file_name)
    if table.problems:
        return _rejected(file_name, sha, table, [(p["row"], 0, p["column"], p["value"], p["message"])
                                                 for p in table.problems])
    return _Checker(store, table, sha, actor).run()


class _Checker:
    def __init__(self, store, table: Table, sha: str, actor: User):
        self.store, self.t, self.sha, self.actor = store, table, sha, actor
        self.P: list[tuple] = []  # (row, column index for ordering, column, value, message)

    def add(self, row, j, value, message, column=None):
        self.P.append((row, j, self.t.header[j] if column is None and j >= 0 else (column or ""), value, message))

    # the header ------------------------------------------------------------------------------------
    def header(self) -> bool:
        t, hr, cat = self.t, self.t.header_row, self.cat
        self.role: dict[str, int] = {}
        self.ind_cols: dict[int, int] = {}  # column -> key id
        seen: dict[str, int] = {}
        for j, h in enumerate(t.header):
            k = _norm_key(h)
            if not k:
                if len(t.cells) and (t.cells[:, j] != "").any():
                    self.add(hr, j, "", "该列有数据但没有表头,无法识别", column=f"(第{j + 1}列)")
                continue
            kind = ("unit" if k in UNIT_HEADERS else "period" if k in PERIOD_HEADERS else
                    "self" if k in SELF_HEADERS else "ind_name" if k in INDICATOR_HEADERS else
                    "value" if k in VALUE_HEADERS else "info" if k in INFO_HEADERS else None)
            ident = kind
            if kind is None:
                kid = cat.key_of(h)
                if kid < 0:
                    self.add(hr, j, h, f"未知的指标列「{h}」:不是任何已加载考评表中的指标代码或指标名称")
                    continue
                kind = "ind"
                ident = "ind:" + ",".join(map(str, cat.matrix[kid]))
            if kind == "info":
                continue
            if ident in seen:
                self.add(hr, j, h, f"列「{h}」与第{seen[ident] + 1}列「{t.header[seen[ident]]}」重复,"
                                   "同一项只能有一列")
                continue
            seen[ident] = j
            if kind == "ind":
                self.ind_cols[j] = kid
            else:
                self.role[kind] = j
        self.long = "ind_name" in self.role and "value" in self.role and not self.ind_cols
        self.layout = "long" if self.long else "wide"
        structural = []
        for kind, label in (("unit", "unit_code(单位代码)"), ("period", "period(季度)")):
            if kind not in self.role:
                structural.append(f"缺少必需的列 {label}")
        if not self.long and ("ind_name" in self.role) != ("value" in self.role):
            structural.append("长表格式需要同时有 indicator(指标)和 value(数值)两列")
        elif not self.long and not self.ind_cols and not structural and not any(p[0] == hr for p in self.P):
            structural.append("没有任何指标列:宽表每个指标一列(表头为指标代码或指标名称),"
                              "或使用长表 unit_code, period, indicator, value")
        for message in structural:
            self.P.append((hr, -1, "", "", message))
        return not structural

    # one entry per data row: unit, period, scheme, access, self score ---------------------------------
    def rows(self):
        cells, rn = self.t.cells, self.t.row_numbers
        n = len(rn)
        ju, jp = self.role["unit"], self.role["period"]
        self.unit_raw, self.period_raw = cells[:, ju], cells[:, jp]
        registry = self.store.df("SELECT unit_code, grp FROM units")
        group_of = dict(zip(registry["unit_code"].tolist(), registry["grp"].tolist()))
        upper: dict[str, str | None] = {}
        for code in group_of:
            upper[code.upper()] = None if code.upper() in upper else code
        codes, uniq = pd.factorize(self.unit_raw)
        resolved = []
        for u in uniq:
            v = unicodedata.normalize("NFKC", u)
            resolved.append(v if v in group_of else upper.get(v.upper()))
        unit = np.array(resolved + [None], dtype=object)[codes]
        unit_ok = ~pd.isna(unit)
        blank = self.unit_raw == ""
        for i in np.flatnonzero(blank):
            self.add(rn[i], ju, "", "单位代码不能为空")
        for i in np.flatnonzero(~blank & ~unit_ok):
            self.add(rn[i], ju, self.unit_raw[i], f"单位代码「{self.unit_raw[i]}」不在单位名录中")

        codes, uniq = pd.factorize(self.period_raw)
        parsed, msgs = [], []
        for v in uniq:
            try:
                parsed.append(periods.parse_period(v))
                msgs.append("")
            except InputError as exc:
                parsed.append(None)
                msgs.append("季度不能为空" if v == "" else str(exc))
        period = np.array(parsed + [None], dtype=object)[codes]
        period_ok = ~pd.isna(period)
        for i in np.flatnonzero(~period_ok):
            self.add(rn[i], jp, self.period_raw[i], msgs[codes[i]])

        group = np.array([group_of.get(u) for u in unit], dtype=object)
        S = len(self.cat.schemes)
        si = np.full(n, -1, dtype=np.int64)
        both = unit_ok & period_ok
        if both.any():
            pairs = {}
            for k in np.flatnonzero(both):
                key = (group[k], period[k])
                if key not in pairs:
                    pairs[key] = next((x for x, s in enumerate(self.cat.schemes) if s.covers(*key)), -1)
                si[k] = pairs[key]
            for i in np.flatnonzero(both & (si < 0)):
                self.add(rn[i], jp, self.period_raw[i], f"单位 {unit[i]} 属于分组「{group[i]}」,"
                                                        f"没有适用于该分组 {period[i]} 的考评表")
        if not self.actor.is_office:
            own = self.actor.unit_code
            forbidden = ~blank & (unit != own) & (self.unit_raw != (own or "\0"))
            for i in np.flatnonzero(forbidden):
                self.add(rn[i], ju, self.unit_raw[i],
                         f"无权上传:账号 {self.actor.username} 只能上传本单位({own or '未绑定单位'})的数据,"
                         f"不能上传单位 {self.unit_raw[i]}")
        self.unit, self.period, self.si, self.both = unit, period, si, both
        self.si_eff = np.where(si >= 0, si, S)
        self.self_score = np.full(n, np.nan)
        if "self" in self.role and not self.long:
            j = self.role["self"]
            idx = np.flatnonzero(cells[:, j] != "")
            if len(idx):
                vals, bad = _parse_scores(cells[idx, j])
                self.self_score[idx] = vals
                for k in np.flatnonzero(bad):
                    self.add(rn[idx[k]], j, cells[idx[k], j], "自评分应为 0–200 之间的数字")

    # every non-blank indicator cell, as flat arrays ---------------------------------------------------------
    def cells(self):
        t, cells, rn, cat = self.t, self.t.cells, self.t.row_numbers, self.cat
        if self.long:
            jk, jv = self.role["ind_name"], self.role["value"]
            ind_raw = cells[:, jk]
            codes, uniq = pd.factorize(ind_raw)
            kid_u = np.array([cat.key_of(u) if u else -1 for u in uniq] + [-1], dtype=np.int64)
            self_u = np.array([_norm_key(u) in SELF_HEADERS for u in uniq] + [False], dtype=bool)
            kid, is_self = kid_u[codes], self_u[codes]
            for i in np.flatnonzero((ind_raw == "") & (cells[:, jv] != "")):
                self.add(rn[i], jk, "", "指标不能为空")
            for i in np.flatnonzero((ind_raw != "") & (kid < 0) & ~is_self):
                self.add(rn[i], jk, ind_raw[i], f"未知指标「{ind_raw[i]}」:不是任何已加载考评表中的指标代码或指标名称")
            idx = np.flatnonzero(is_self & (cells[:, jv] != ""))
            if len(idx):
                vals, bad = _parse_scores(cells[idx, jv])
                self.self_score[idx] = vals
                for k in np.flatnonzero(bad):
                    self.add(rn[idx[k]], jv, cells[idx[k], jv], "自评分应为 0–200 之间的数字")
            keep = np.flatnonzero((kid >= 0) & (cells[:, jv] != ""))
            self.ci, self.cc, self.ck = keep, np.full(len(keep), jv), kid[keep]
            self.craw = cells[keep, jv]
            self.cname = ind_raw[keep]                    # how the file names the indicator
        else:
            jcols = np.array(list(self.ind_cols), dtype=np.int64)
            block = cells[:, jcols] if len(jcols) else np.zeros((len(rn), 0), dtype=object)
            ii, cc = np.nonzero(block != "")
            kids = np.array([self.ind_cols[j] for j in jcols], dtype=np.int64)
            self.ci, self.cc, self.ck = ii, jcols[cc], kids[cc]
            self.craw = block[ii, cc]
            self.cname = np.array(t.header, dtype=object)[self.cc] if len(cc) else np.zeros(0, dtype=object)
        p = cat.matrix[self.ck, self.si_eff[self.ci]] if len(self.ci) else np.zeros(0, dtype=np.int64)
        missing = np.flatnonzero(p < 0)
        for k in missing:
            i = self.ci[k]
            s = cat.schemes[self.si[i]]
            self.add(rn[i], self.cc[k], self.craw[k],
                     f"单位 {self.unit[i]} 适用的考评表「{s.title}」({s.id})中没有指标「{self.cname[k]}」")
        keep = p >= 0
        self.ci, self.cc, self.craw, self.cname, p = self.ci[keep], self.cc[keep], self.craw[keep], self.cname[keep], p[keep]
        parsed = parse_values(self.craw, cat.itype[p], cat.lo[p], cat.hi[p], cat.na[p], cat.name[p])
        for k in np.flatnonzero(~np.equal(parsed.reason, None)):
            self.add(rn[self.ci[k]], self.cc[k], self.craw[k], parsed.reason[k])
        self.cp, self.cvalue, self.cna = p, parsed.value, parsed.is_na
        self.cok = np.equal(parsed.reason, None)

    # the same unit and period twice --------------------------------------------------------------
    def duplicates(self):
        rn = self.t.row_numbers
        if self.long:
            sel = np.flatnonzero(self.both[self.ci])
            frame = pd.DataFrame({"u": self.unit[self.ci[sel]], "p": self.period[self.ci[sel]],
                                  "ind": self.cat.code[self.cp[sel]], "row": rn[self.ci[sel]]})
            keys = ["u", "p", "ind"]
        else:
            sel = np.flatnonzero(self.both)
            frame = pd.DataFrame({"u": self.unit[sel], "p": self.period[sel], "row": rn[sel]})
            keys = ["u", "p"]
        dup = frame.duplicated(keys, keep="first").to_numpy()
        if not dup.any():
            return
        first = frame.groupby(keys, sort=False)["row"].transform("first").to_numpy()
        for k in np.flatnonzero(dup):
            u, per, row = frame["u"].iat[k], frame["p"].iat[k], int(frame["row"].iat[k])
            if self.long:
                j = self.role["ind_name"]
                i = self.ci[sel[k]]
                self.add(row, j, self.t.cells[i, j],
                         f"同一单位同一季度的指标重复:单位 {u} {per} 的「{frame['ind'].iat[k]}」"
                         f"出现在第{first[k]}行和第{row}行")
            else:
                j = self.role["unit"]
                self.add(row, j, self.unit_raw[sel[k]],
                         f"同一单位同一季度重复:单位 {u} {per} 出现在第{first[k]}行和第{row}行")

    # cross-field rules of the schemes --------------------------------------------------------------
    def checks(self):
        rn, cat = self.t.row_numbers, self.cat
        n = len(rn)
        if self.long:  # one submission spans several rows: group the rows by (unit, period)
            key = np.where(self.both, self.unit.astype(str) + "\0" + self.period.astype(str), "")
            sub_of_row = pd.factorize(key)[0]
        else:
            sub_of_row = np.arange(n)
        for x, s in enumerate(cat.schemes):
            subs = np.unique(sub_of_row[self.si == x])
            if not s.checks or not len(subs):
                continue
            pos = np.full(n, -1)
            pos[subs] = np.arange(len(subs))
            first_row = np.zeros(len(subs), dtype=np.int64)
            in_s = np.flatnonzero(self.si == x)[::-1]
            first_row[pos[sub_of_row[in_s]]] = in_s  # reversed: the first row of each submission wins
            codes = sorted({c for ch in s.checks for c in ch.reads()})
            cols, raws, where, rows_at = {}, {}, {}, {}
            for c in codes:
                m = np.flatnonzero((self.cp == cat.prop_of[x][c]) & self.cok)
                at = pos[sub_of_row[self.ci[m]]]
                cols[c] = np.full(len(subs), np.nan)
                cols[c][at] = self.cvalue[m]
                raws[c] = np.full(len(subs), "", dtype=object)
                raws[c][at] = self.craw[m]
                where[c] = np.full(len(subs), -1)
                where[c][at] = self.cc[m]
                rows_at[c] = np.zeros(len(subs), dtype=np.int64)
                rows_at[c][at] = rn[self.ci[m]]
            for ch in s.checks:
                reads = list(dict.fromkeys(ch.reads()))
                fails = np.flatnonzero(~ch.holds({c: cols[c] for c in reads}))
                for k in fails:
                    shown = ",".join(f"{s.indicators[c].name}={cols[c][k]:g}" for c in reads)
                    message = f"不满足校验规则「{ch.name}」({ch.expr}):{shown}"
                    value = "、".join(str(raws[c][k]) for c in reads)
                    if self.long:  # reported on the last of the rows involved
                        j = self.role["value"]
                        self.P.append((max(int(rows_at[c][k]) for c in reads), j, self.t.header[j], value,
                                       f"单位 {self.unit[first_row[k]]} {self.period[first_row[k]]}:{message}"))
                    else:
                        js = [int(where[c][k]) for c in reads]
                        self.P.append((rn[first_row[k]], min(js), "、".join(self.t.header[j] for j in js),
                                       value, message))

    def run(self) -> Checked:
        t = self.t
        self.cat = _Catalogue(load_schemes(self.store))
        if not self.header():
            return _rejected(t.file_name, self.sha, t, self.P, self.layout)
        self.rows()
        self.cells()
        self.duplicates()
        self.checks()
        if self.P:
            return _rejected(t.file_name, self.sha, t, self.P, self.layout)
        ci = self.ci
        values = _values_frame(_indexed_text(self.unit, ci), _indexed_text(self.period, ci),
                               _indexed_text(self.cat.code, self.cp), self.cvalue, self.cna)
        subs = _subs_frame(self.unit, self.period, self.self_score, t.row_numbers)
        if self.long:
            subs = subs.groupby(["unit_code", "period"], sort=False, as_index=False).agg(
                self_score=("self_score", "max"), row_no=("row_no", "min"))
            subs = _subs_frame(subs["unit_code"], subs["period"], subs["self_score"], subs["row_no"])
        return Checked(t.file_name, self.sha, len(t.row_numbers), self.layout, values, subs,
                       _problems_frame([]), t.preview(), t.encoding)


# -- writing -------------------------------------------------------------------------------------------
class UploadRejected(Problems):
    """The upload has problems: ``.table`` holds them (row, column, value, message); nothing was written."""

    def __init__(self, title: str, table: pd.DataFrame, checked: Checked | None = None):
        self.table = table
        self.checked = checked
        super().__init__(title, [Problem(**r) for r in table.to_dict("records")])


@dataclass
class IngestResult:
    batch_id: int
    rows: int
    values: int
    units: int
    periods: list[str]
    noop: bool
    message: str


class _Noop(Exception):
    def __init__(self, batch_id: int):
        self.batch_id = batch_id


_NOOP_SQL = """
    SELECT b.batch_id FROM batches b
    WHERE b.sha256 = ? AND b.rolled_back_at IS NULL
      AND NOT EXISTS (
          SELECT 1 FROM submissions s
          WHERE s.batch_id = b.batch_id AND NOT EXISTS (
              SELECT 1 FROM current_submissions c
              WHERE c.batch_id = s.batch_id AND c.unit_code = s.unit_code AND c.period = s.period))
    ORDER BY b.batch_id DESC LIMIT 1"""


def _noop_result(checked: Checked, batch_id: int) -> IngestResult:
    return IngestResult(int(batch_id), checked.rows, len(checked.values), len(checked.units), checked.periods, True,
                        f"文件「{checked.file_name}」与批次 #{batch_id} 内容相同,未重复导入")


def ingest(store, data: bytes, file_name: str, actor: User) -> IngestResult:
    """Validate and store an upload as one batch; raise :class:`UploadRejected` if it has problems."""
    return write_batch(store, check_upload(store, data, file_name, actor), actor)


def write_batch(store, checked: Checked, actor: User) -> IngestResult:
    """Write a checked, problem-free upload as one batch in one transaction (no-op if identical).

    A check with problems is refused here too, so that no caller can write half a file.
    """
    if not checked.ok:
        raise UploadRejected(checked.title, checked.problems, checked)
    periods_ = checked.periods
    units_ = checked.units
    summary = (f"{checked.rows}行,{len(checked.values)}个数值,{len(units_)}个单位,"
               f"季度 {'、'.join(periods_)}")
    uploader = actor.username if isinstance(actor, User) else str(actor)

    def write(cur):
        known = cur.execute("SELECT count(*) FROM batches WHERE sha256 = ? AND rolled_back_at IS NULL",
                            [checked.sha256]).fetchone()[0]
        same = cur.execute(_NOOP_SQL, [checked.sha256]).fetchone() if known else None
        if same:
            raise _Noop(same[0])
        batch_id = cur.execute("SELECT nextval('seq_batch')").fetchone()[0]
        cur.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                    [batch_id, uploader, datetime.now(), checked.file_name, checked.sha256, checked.rows,
                     periods_, units_])
        subs = checked.submissions
        vals = checked.values
        tag = f"{batch_id}_{id(cur)}"
        cur.register(f"up_subs_{tag}", subs)
        cur.register(f"up_vals_{tag}", vals)
        try:
            cur.execute(f"""INSERT INTO submissions SELECT {batch_id}, unit_code, period,
                            CAST(self_score AS DOUBLE), CAST(row_no AS INTEGER) FROM up_subs_{tag}""")
            cur.execute(f"""INSERT INTO indicator_values SELECT {batch_id}, unit_code, period, indicator,
                            CAST(value AS DOUBLE), CAST(is_na AS BOOLEAN) FROM up_vals_{tag}""")
        finally:
            cur.unregister(f"up_subs_{tag}")
            cur.unregister(f"up_vals_{tag}")
        record(cur, actor, "upload", checked.file_name, f"批次 #{batch_id}:{summary},sha256 {checked.sha256[:12]}")
        return batch_id

    try:
        batch_id = store.write(write)
    except _Noop as same:
        return _noop_result(checked, same.batch_id)
    return IngestResult(int(batch_id), checked.rows, len(checked.values), len(units_), periods_, False,
                        f"已导入批次 #{batch_id}:{summary}")


# -- the fill-in template ------------------------------------------------------------------------
def template_period(store, group: str, today=None) -> str:
    """The quarter a clerk most likely reports now: the last one ended, or the group's scheme's last."""
    ended = periods.previous(periods.current_quarter(today))
    ends = [s.period_to for s in load_schemes(store) if group in s.groups and s.period_from <= ended]
    return min(ended, max(ends)) if ends else ended


def template(store, actor: User, group: str, period: str) -> pd.DataFrame:
    """An empty upload for ``group`` and ``period`` in the wide layout, headers in Chinese.

    One row per unit the actor may upload for (a unit account: its own unit only), with 单位代码
    and 季度 filled in; then 自评分 and one column per indicator of the scheme, by its Chinese name.
    """
    period = periods.parse_period(period)
    scheme = next((s for s in load_schemes(store) if s.covers(group, period)), None)
    if scheme is None:
        raise InputError(f"分组「{group}」在 {period} 没有适用的考评表")
    if actor.is_office:
        codes = [r[0] for r in store.rows("SELECT unit_code FROM units WHERE grp = ? ORDER BY unit_code", [group])]
    else:
        own = store.one("SELECT grp FROM units WHERE unit_code = ?", [actor.unit_code])
        if own is None or own[0] != group:
            raise PermissionDenied(f"无权下载分组「{group}」的模板:账号 {actor.username} 只能填报本单位的数据")
        codes = [actor.unit_code]
    columns = ["单位代码", "季度", "自评分"] + [ind.name for ind in scheme.indicators.values()]
    frame = pd.DataFrame("", index=range(len(codes)), columns=columns)
    frame["单位代码"] = codes
    frame["季度"] = period
    return frame
