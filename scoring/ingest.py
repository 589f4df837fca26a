"""Uploads: checking a file strictly and storing it as one batch.

:func:`check_upload` reads the file (:mod:`scoring.readers`) and checks it in phases over whole
columns (Arrow/numpy; each distinct text of a column is parsed once), each phase a function that
returns what the next one needs. Every problem of every phase ends up in one table ``row, column,
value, message``: ``row`` as a spreadsheet shows it (``None`` for the whole file), ``column`` the
header as written, ``value`` the cell text, ``message`` Chinese. :func:`write_batch` stores a
clean check in one transaction; :func:`ingest` does both or raises :class:`UploadRejected` having
written nothing.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import lifecycle, periods, permissions
from .audit import record
from .errors import InputError, PermissionDenied, Problems
from .labels import INDICATOR_TYPES
from .limits import MAX_ABS, MAX_COUNT
from .permissions import User
from .readers import Problem, Table, halfwidth, header_key, read_upload
from .schemes import Scheme, load_schemes

# header aliases (compared as readers.header_key)
UNIT_HEADERS = {"unit_code", "单位代码", "单位编码", "unitcode"}
PERIOD_HEADERS = {"period", "季度", "考评季度", "报送季度"}
SELF_HEADERS = {"self_score", "自评分", "自评得分", "selfscore"}
INDICATOR_HEADERS = {"indicator", "指标", "指标代码", "指标名称"}
VALUE_HEADERS = {"value", "数值", "值", "指标值"}
INFO_HEADERS = {"unit_name", "单位名称", "group", "分组", "备注", "note", "remark", "序号", "no"}

NA_TOKENS = {"不适用", "na", "n/a"}
BOOL_TOKENS = {"是": 1.0, "否": 0.0, "y": 1.0, "n": 0.0, "yes": 1.0, "no": 0.0,
               "true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}

# ASCII digits only (after full-width forms are folded): \d and float() would also take ١٢ or ²
_NUMBER_FULL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_THOUSANDS_FULL = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
# The common case, converted by Arrow's kernels (RE2 syntax): a subset of what _parse_token takes,
# and the same double (Arrow's parser rounds correctly, as float() does); short enough to never
# overflow. tests/test_ingest_fast.py holds both to that.
_PLAIN = r"^[+-]?[0-9]{1,15}(?:\.[0-9]{1,15})?$"
_PLAIN_BOOLS = pa.array([t for t in BOOL_TOKENS if _NUMBER_FULL.fullmatch(t)])   # 1 0 1.0 0.0: their value
_PAREN_RE = re.compile(r"\([^()]*\)$")


# -- values ----------------------------------------------------------------------------------------
def _key_variants(text: str) -> list[str]:
    k = header_key(text)
    stripped = _PAREN_RE.sub("", k)  # 依申请按期答复率(%) -> 依申请按期答复率
    return [k, stripped] if stripped and stripped != k else [k]


def _parse_token(text: str) -> tuple[float, bool, bool, float, bool]:
    """One distinct cell text -> (number, is_number, has_percent, bool value, is NA token)."""
    t = text if text.isascii() else halfwidth(text).strip()
    low = t.lower()
    na = low in NA_TOKENS
    b = BOOL_TOKENS.get(low, np.nan)
    pct = t.endswith("%")
    body = t[:-1].strip() if pct else t
    if _THOUSANDS_FULL.fullmatch(body):
        body = body.replace(",", "")
    if _NUMBER_FULL.fullmatch(body):
        return float(body), True, pct, b, na   # float() of a string never overflows: 1e400 is inf
    return np.nan, False, pct, b, na


@dataclass(frozen=True)
class _Tokens:
    """What texts say, an entry per text: the number (NaN when none), whether it is one, a trailing
    %, the bool it spells (NaN when none), whether it is a 不适用 token."""

    num: np.ndarray
    is_num: np.ndarray
    pct: np.ndarray
    boolv: np.ndarray
    na: np.ndarray

    def __getitem__(self, index) -> _Tokens:
        return _Tokens(self.num[index], self.is_num[index], self.pct[index], self.boolv[index], self.na[index])


def _tokens(texts: pa.Array) -> _Tokens:
    """The tokens of ``texts`` (distinct ones: a column's dictionary). Plain numbers go through
    Arrow's kernels; every other text, once each, through :func:`_parse_token`."""
    n = len(texts)
    plain = pc.match_substring_regex(texts, _PLAIN).to_numpy(zero_copy_only=False)
    num = np.full(n, np.nan)
    num[plain] = pc.cast(texts.filter(plain), pa.float64()).to_numpy()
    is_num = plain.copy()
    pct = np.zeros(n, dtype=bool)
    na = np.zeros(n, dtype=bool)
    boolv = np.where(pc.is_in(texts, value_set=_PLAIN_BOOLS).to_numpy(zero_copy_only=False), num, np.nan)
    rest = np.flatnonzero(~plain)
    for k, text in zip(rest, texts.take(rest).to_pylist()):
        num[k], is_num[k], pct[k], boolv[k], na[k] = _parse_token(text)
    return _Tokens(num, is_num, pct, boolv, na)


@dataclass(frozen=True)
class Parsed:
    value: np.ndarray    # float, NaN where not a value
    is_na: np.ndarray    # bool
    reason: np.ndarray   # object: None when fine, else the Chinese message


def parse_values(tok: _Tokens, itype: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 na_allowed: np.ndarray, names: np.ndarray) -> Parsed:
    """Check non-blank texts (their tokens), vectorised; each carries its own indicator's properties.

    Besides the type and the scheme's bounds, every number must be plausible (SPEC round 2):
    finite, a count at most MAX_COUNT, a ``number`` within ±MAX_ABS.
    """
    num, is_num, pct, boolv, na_tok = tok.num, tok.is_num, tok.pct, tok.boolv, tok.na
    n = len(num)
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(num)
    is_bool = itype == "bool"
    is_rate = itype == "rate"
    is_count = itype == "count"
    reason = np.full(n, None, dtype=object)
    clean = np.ones(n, dtype=bool)     # no reason yet: the first problem of a cell is the one told

    def flag(mask, make):
        mask = mask & clean
        if mask.any():
            idx = np.flatnonzero(mask)
            reason[idx] = [make(i) for i in idx]
            clean[idx] = False

    def kind(i):
        return INDICATOR_TYPES[itype[i]]

    na_cell = na_tok & ~(is_bool & ~np.isnan(boolv))   # "N" is a bool, "NA" is not
    flag(na_cell & ~na_allowed, lambda i: f"指标「{names[i]}」不允许填写「不适用」,应为{kind(i)}")
    is_na = na_cell & na_allowed
    flag(is_bool & np.isnan(boolv) & ~na_cell,
         lambda i: f"指标「{names[i]}」应填 是/否(也可写 Y/N、true/false、1/0)")
    numeric = ~is_bool & ~na_cell
    flag(numeric & is_num & pct & ~is_rate, lambda i: f"指标「{names[i]}」不是比率,不能写百分号,应为{kind(i)}")
    flag(numeric & ~is_num, lambda i: f"指标「{names[i]}」应为{kind(i)}")
    flag(numeric & is_num & ~finite, lambda i: f"指标「{names[i]}」数值过大,不是有限的数字")
    ok = numeric & is_num & finite
    value = np.where(is_bool, boolv, np.where(ok, num, np.nan))
    with np.errstate(invalid="ignore"):
        flag(ok & is_count & (num < 0), lambda i: f"指标「{names[i]}」是计数,不能为负数")
        flag(ok & is_count & (num != np.round(num)), lambda i: f"指标「{names[i]}」是计数,应为整数")
        flag(ok & is_count & (num > MAX_COUNT),
             lambda i: f"指标「{names[i]}」计数超出合理范围(不能大于 {MAX_COUNT:,})")
        flag(ok & (itype == "number") & (np.abs(num) > MAX_ABS),
             lambda i: f"指标「{names[i]}」超出合理范围(应在 {-MAX_ABS:,.0f} 到 {MAX_ABS:,.0f} 之间)")
        flag(ok & is_rate & ((num < 0) | (num > 100)), lambda i: f"指标「{names[i]}」是比率,应在 0–100 之间")
        flag(ok & (value < lo), lambda i: f"指标「{names[i]}」不能小于{lo[i]:g}")
        flag(ok & (value > hi), lambda i: f"指标「{names[i]}」不能大于{hi[i]:g}")
    value = np.where(~clean | is_na, np.nan, value)
    return Parsed(value.astype(float), is_na & clean, reason)


def _parse_scores(tok: _Tokens) -> tuple[np.ndarray, np.ndarray]:
    """Self scores: (value, bad) of non-blank texts (their tokens); a score is a number in 0–200."""
    with np.errstate(invalid="ignore"):
        bad = ~tok.is_num | tok.pct | ~np.isfinite(tok.num) | (tok.num < 0) | (tok.num > 200)
    return np.where(bad, np.nan, tok.num), bad


# -- the outcome ---------------------------------------------------------------------------------------
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


class _Problems:
    """Every problem found so far, each (row, column index for ordering, column, value, message)."""

    def __init__(self, header: list[str]):
        self.header = header
        self.items: list[tuple] = []

    def add(self, row, j: int, value, message: str, column: str | None = None) -> None:
        if column is None:
            column = self.header[j] if j >= 0 else ""
        self.items.append((row, j, column, value, message))

    def frame(self) -> pd.DataFrame:
        """The problem table, sorted by row then column."""
        items = sorted(self.items, key=lambda p: (-1 if p[0] is None else int(p[0]), int(p[1])))
        return pd.DataFrame({
            "row": pd.Series([None if p[0] is None else int(p[0]) for p in items], dtype=object),
            "column": pd.Series([str(p[2]) for p in items], dtype=object),
            "value": pd.Series([str(p[3]) for p in items], dtype=object),
            "message": pd.Series([str(p[4]) for p in items], dtype=object),
        })

    def __bool__(self) -> bool:
        return bool(self.items)


def _text_column(values) -> pd.Categorical:
    """Repetitive text (unit codes, periods, indicator codes) as a categorical: building a pandas 3
    string column from 180k Python strings costs more than all the validation."""
    if isinstance(values, pd.Categorical):
        return values
    return pd.Categorical(np.asarray(values, dtype=object))


def _distinct(small: np.ndarray) -> np.ndarray:
    """The sorted distinct values of small non-negative integers, by counting (np.unique is slower)."""
    return np.flatnonzero(np.bincount(small)) if len(small) else np.zeros(0, dtype=np.int64)


def _indexed_text(labels, index: np.ndarray) -> pd.Categorical:
    """``labels[index]`` (none missing) as a categorical, factorizing the few labels rather than the
    many values; the codes in the integer type pandas would pick, so that it keeps them as they are."""
    codes, categories = pd.factorize(np.asarray(labels, dtype=object))
    small = next(t for t in (np.int8, np.int16, np.int32, np.int64) if len(categories) <= np.iinfo(t).max)
    return pd.Categorical.from_codes(codes.astype(small)[index], categories=categories, validate=False)


def _values_frame(unit=(), period=(), indicator=(), value=(), is_na=()) -> pd.DataFrame:
    return pd.DataFrame({"unit_code": _text_column(unit), "period": _text_column(period),
                         "indicator": _text_column(indicator),
                         "value": np.asarray(value, dtype=float), "is_na": np.asarray(is_na, dtype=bool)})


def _subs_frame(unit=(), period=(), self_score=(), row_no=()) -> pd.DataFrame:
    return pd.DataFrame({"unit_code": np.asarray(unit, dtype=object), "period": np.asarray(period, dtype=object),
                         "self_score": np.asarray(self_score, dtype=float),
                         "row_no": np.asarray(row_no, dtype=np.int64)})


def _rejected(table: Table, sha: str, problems: _Problems, layout: str = "") -> Checked:
    preview = table.preview() if table.header else pd.DataFrame()
    return Checked(table.file_name, sha, len(table.row_numbers), layout, _values_frame(), _subs_frame(),
                   problems.frame(), preview, table.encoding)


class _Catalogue:
    """Every indicator of every loaded scheme, addressable by (matching key, scheme index)."""

    def __init__(self, schemes: list[Scheme]):
        self.schemes = schemes
        S = len(schemes)
        self.code, self.itype, self.lo, self.hi, self.na, self.name = [], [], [], [], [], []
        self.source = []
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
                self.source.append(ind.source)
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
        self.source = np.array(self.source, dtype=object)
        self.code_id = pd.factorize(self.code)[0]   # the same code in two schemes: one id

    def key_of(self, text: str) -> int:
        return next((self.key_id[v] for v in _key_variants(text) if v in self.key_id), -1)


# -- checking, phase by phase ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """What the header row says: which column is what."""

    roles: dict[str, int]          # unit, period, self, ind_name, value -> column
    indicators: dict[int, int]     # wide layout: column -> catalogue key id
    long: bool

    @property
    def name(self) -> str:
        return "long" if self.long else "wide"


@dataclass(frozen=True)
class _Rows:
    """One entry per data row."""

    unit: np.ndarray        # the registry's unit code, None when unknown
    period: np.ndarray      # canonical period, None when not one
    scheme: np.ndarray      # index into the catalogue's schemes, -1 when none applies
    known: np.ndarray       # unit and period are both fine
    submission: np.ndarray  # a number per (unit, period) of the known rows, -1 for the others


@dataclass(frozen=True)
class _Cells:
    """Every non-blank indicator cell of an indicator its row's scheme has, as flat arrays, row
    by row. A cell's text is ``texts[text[k]]``: the distinct texts of the indicator columns."""

    row: np.ndarray       # data row index
    col: np.ndarray       # file column
    prop: np.ndarray      # catalogue property row
    text: np.ndarray      # index into texts
    value: np.ndarray
    is_na: np.ndarray
    ok: np.ndarray        # parsed without a problem
    texts: pa.Array

    def raw(self, k: int) -> str:
        return self.texts[int(self.text[k])].as_py()


def _layout(table: Table, cat: _Catalogue, problems: _Problems) -> _Layout | None:
    """Read the header; None when the file cannot be checked further (a structural problem)."""
    hr = table.header_row
    roles: dict[str, int] = {}
    indicators: dict[int, int] = {}
    seen: dict[str, int] = {}
    header_problems = False
    for j, h in enumerate(table.header):
        k = header_key(h)
        if not k:
            if table.nonblank(j).any():
                problems.add(hr, j, "", "该列有数据但没有表头,无法识别", column=f"(第{j + 1}列)")
                header_problems = True
            continue
        kind = ("unit" if k in UNIT_HEADERS else "period" if k in PERIOD_HEADERS else
                "self" if k in SELF_HEADERS else "ind_name" if k in INDICATOR_HEADERS else
                "value" if k in VALUE_HEADERS else "info" if k in INFO_HEADERS else None)
        ident = kind
        if kind is None:
            kid = cat.key_of(h)
            if kid < 0:
                problems.add(hr, j, h, f"未知的指标列「{h}」:不是任何已加载考评表中的指标代码或指标名称")
                header_problems = True
                continue
            kind = "ind"
            ident = "ind:" + ",".join(map(str, cat.matrix[kid]))
        if kind == "info":
            continue
        if ident in seen:
            problems.add(hr, j, h, f"列「{h}」与第{seen[ident] + 1}列「{table.header[seen[ident]]}」重复,"
                                   "同一项只能有一列")
            header_problems = True
            continue
        seen[ident] = j
        if kind == "ind":
            indicators[j] = kid
        else:
            roles[kind] = j
    for j in table.stray:
        problems.add(hr, j, "", "该列有数据但没有表头,无法识别", column=f"(第{j + 1}列)")
        header_problems = True
    long = "ind_name" in roles and "value" in roles and not indicators
    structural = [f"缺少必需的列 {label}" for kind, label in (("unit", "unit_code(单位代码)"),
                                                             ("period", "period(季度)")) if kind not in roles]
    if not long and ("ind_name" in roles) != ("value" in roles):
        structural.append("长表格式需要同时有 indicator(指标)和 value(数值)两列")
    elif not long and not indicators and not structural and not header_problems:
        structural.append("没有任何指标列:宽表每个指标一列(表头为指标代码或指标名称),"
                          "或使用长表 unit_code, period, indicator, value")
    for message in structural:
        problems.add(hr, -1, "", message)
    return None if structural else _Layout(roles, indicators, long)


def _rows(store, table: Table, layout: _Layout, cat: _Catalogue, actor: User, problems: _Problems) -> _Rows:
    """Unit, period and scheme of every data row, and whether the actor may upload for that unit.

    Each distinct text of the unit and period columns is looked at once; a unit code is found in
    the registry as written (ASCII), else full-width forms folded, else regardless of case.
    """
    rn = table.row_numbers
    ju, jp = layout.roles["unit"], layout.roles["period"]
    with store.cursor() as cur:
        registry = cur.sql("SELECT unit_code, grp FROM units").to_arrow_table()
    reg_codes = registry["unit_code"].combine_chunks()
    grp = registry["grp"].combine_chunks().dictionary_encode()
    reg_group, groups = grp.indices.to_numpy(), grp.dictionary.to_pylist()     # a registry row's group

    codes, texts = table.factorize(ju)
    found = pc.index_in(texts, value_set=reg_codes).fill_null(-1).to_numpy(zero_copy_only=False)
    at = np.where(pc.string_is_ascii(texts).to_numpy(zero_copy_only=False), found, -1).astype(np.int64)
    uniq = texts.to_pylist()
    empty = pc.binary_length(texts).to_numpy() == 0
    if ((at < 0) & ~empty).any():
        position = {code: i for i, code in enumerate(reg_codes.to_pylist())}
        upper: dict[str, str | None] = {}
        for code in position:
            upper[code.upper()] = None if code.upper() in upper else code   # ambiguous when two differ by case only
        for k in np.flatnonzero(at < 0):
            v = halfwidth(uniq[k])
            code = v if v in position else upper.get(v.upper())
            at[k] = position[code] if code is not None else -1
    resolved = np.full(len(uniq), None, dtype=object)
    hit = np.flatnonzero(at >= 0)
    resolved[hit] = reg_codes.take(pa.array(at[hit])).to_pylist()
    unit = resolved[codes]
    unit_at = at[codes]
    unit_ok = unit_at >= 0
    blank = empty[codes]
    for i in np.flatnonzero(blank):
        problems.add(rn[i], ju, "", "单位代码不能为空")
    for i in np.flatnonzero(~blank & ~unit_ok):
        problems.add(rn[i], ju, uniq[codes[i]], f"单位代码「{uniq[codes[i]]}」不在单位名录中")
    # access, decided once per distinct unit code of the file
    if not permissions.can(actor, "upload.office"):       # the office's figures, for every unit
        allowed = np.array([permissions.can(actor, "upload.unit", unit=r or u)
                            for u, r in zip(uniq, resolved)], dtype=bool)[codes]
        for i in np.flatnonzero(~blank & ~allowed):
            problems.add(rn[i], ju, uniq[codes[i]], _forbidden(actor, uniq[codes[i]]))

    codes, texts = table.factorize(jp)
    uniq = texts.to_pylist()
    parsed, messages = [], []
    for v in uniq:
        try:
            parsed.append(periods.parse_period(v))
            messages.append("")
        except InputError as exc:
            parsed.append(None)
            messages.append("季度不能为空" if v == "" else str(exc))
    period_ids, canonical = pd.factorize(np.array(parsed, dtype=object))   # -1 where not a period
    period = np.array(parsed, dtype=object)[codes]
    period_at = period_ids[codes]
    period_ok = period_at >= 0
    for i in np.flatnonzero(~period_ok):
        problems.add(rn[i], jp, uniq[codes[i]], messages[codes[i]])

    # the quarter's lifecycle: a unit uploads only while it is 报送中, the office and checkers also in 审核中
    closed = lifecycle.upload_problems(store, actor, list(canonical))
    for i in np.flatnonzero(np.array([p in closed for p in parsed], dtype=bool)[codes]):
        problems.add(rn[i], jp, uniq[codes[i]], closed[period[i]])

    known = unit_ok & period_ok
    submission = np.where(known, unit_at * len(canonical) + period_at, -1)
    scheme = np.full(len(rn), -1, dtype=np.int64)
    at = np.flatnonzero(known)
    pair = reg_group[unit_at[at]] * len(canonical) + period_at[at]   # (group, period) of the known rows
    for key in _distinct(pair):
        group, p = groups[key // len(canonical)], canonical[key % len(canonical)]
        scheme[at[pair == key]] = next((x for x, s in enumerate(cat.schemes) if s.covers(group, p)), -1)
    for i in np.flatnonzero(known & (scheme < 0)):
        problems.add(rn[i], jp, uniq[codes[i]], f"单位 {unit[i]} 属于分组「{groups[reg_group[unit_at[i]]]}」,"
                                                f"没有适用于该分组 {period[i]} 的考评表")
    return _Rows(unit, period, scheme, known, submission)


def _forbidden(actor: User, code: str) -> str:
    if actor.is_unit:
        return (f"无权上传:账号 {actor.username} 只能上传本单位({actor.unit_code or '未绑定单位'})的数据,"
                f"不能上传单位 {code}")
    return f"无权上传:账号 {actor.username}({actor.role_label})不能上传单位填报的数据"


def source_refusal(actor: User, source: str, name: str) -> str | None:
    """Why ``actor`` may not upload a figure of this ``source`` (SPEC round 2), or None.

    Units upload their own figures; the office's inspection team and 第三方 (checker) upload the
    office's; the office may upload any figure but a computed one; nobody uploads a computed one.
    """
    if source == "computed":
        return f"指标「{name}」由系统计算,不能上传"
    if source == "office" and not permissions.can(actor, "upload.office"):
        return f"指标「{name}」由政务公开办填报,单位不能上传"
    if source == "unit" and not permissions.can(actor, "upload.unit"):
        return f"指标「{name}」由单位填报,{actor.role_label}不能上传"
    return None


def _source_problems(table: Table, layout: _Layout, cat: _Catalogue, actor: User, problems: _Problems) -> None:
    """Wide layout: a column of a figure the actor does not supply is refused once, by its header."""
    S = len(cat.schemes)
    for j, kid in layout.indicators.items():
        p = cat.matrix[kid, S]
        why = source_refusal(actor, cat.source[p], cat.name[p])
        if why:
            problems.add(table.header_row, j, table.header[j], why)
    if "self" in layout.roles and not permissions.can(actor, "upload.unit"):
        j = layout.roles["self"]
        if table.nonblank(j).any():
            problems.add(table.header_row, j, table.header[j], f"自评分由单位填报,{actor.role_label}不能上传")


def _long_names(table: Table, layout: _Layout, cat: _Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """Long layout: (catalogue key id or -1, names 自评分) of every row's indicator cell."""
    codes, texts = table.factorize(layout.roles["ind_name"])
    uniq = texts.to_pylist()
    kid = np.array([cat.key_of(u) if u else -1 for u in uniq], dtype=np.int64)
    is_self = np.array([header_key(u) in SELF_HEADERS for u in uniq], dtype=bool)
    return kid[codes], is_self[codes]


def _self_scores(table: Table, layout: _Layout, cat: _Catalogue, problems: _Problems) -> np.ndarray:
    """The self score of every data row (NaN where none): a column, or long-layout rows 自评分."""
    rn = table.row_numbers
    scores = np.full(len(rn), np.nan)
    if layout.long:
        j = layout.roles["value"]
        idx = np.flatnonzero(_long_names(table, layout, cat)[1] & table.nonblank(j))
    elif "self" in layout.roles:
        j = layout.roles["self"]
        idx = np.flatnonzero(table.nonblank(j))
    else:
        return scores
    if len(idx):
        codes, texts = table.factorize(j)
        values, bad = _parse_scores(_tokens(texts))
        scores[idx] = values[codes[idx]]
        for i in idx[bad[codes[idx]]]:
            problems.add(rn[i], j, table.text(i, j), "自评分应为 0–200 之间的数字")
    return scores


def _indicator_cells(table: Table, layout: _Layout, rows: _Rows, cat: _Catalogue, actor: User,
                     problems: _Problems) -> _Cells:
    """Every non-blank indicator cell, parsed against its row's scheme.

    A text is parsed once (:func:`_tokens` of the distinct texts of the columns) and checked once
    per indicator it is given for (:func:`parse_values` of *entries*): in the wide layout an entry
    is a distinct text of a column under one of the file's schemes, in the long layout a cell.
    Every cell then takes the outcome of its entry.
    """
    rn = table.row_numbers
    S = len(cat.schemes)
    slot = np.where(rows.scheme >= 0, rows.scheme, S)       # the row's column of cat.matrix
    if layout.long:
        jk, jv = layout.roles["ind_name"], layout.roles["value"]
        names = table.nonblank(jk)
        filled = table.nonblank(jv)
        kid, is_self = _long_names(table, layout, cat)
        for i in np.flatnonzero(~names & filled):
            problems.add(rn[i], jk, "", "指标不能为空")
        for i in np.flatnonzero(names & (kid < 0) & ~is_self):
            name = table.text(i, jk)
            problems.add(rn[i], jk, name, f"未知指标「{name}」:不是任何已加载考评表中的指标代码或指标名称")
        ids, texts = table.factorize(jv)
        row = np.flatnonzero((kid >= 0) & filled)
        col, text = np.full(len(row), jv), ids[row].astype(np.int64)
        prop = cat.matrix[kid[row], slot[row]]
        entry = None                                        # a cell is an entry
    else:
        jcols = np.array(list(layout.indicators), dtype=np.int64)
        encoded = [table.columns[j].dictionary_encode() for j in jcols]
        texts = pa.concat_arrays([e.dictionary for e in encoded]) if encoded else pa.array([], pa.string())
        sizes = np.array([len(e.dictionary) for e in encoded], dtype=np.int64)
        ids = np.empty((len(jcols), len(rn)), dtype=np.int64)      # indicator columns × rows: text index
        for c, (e, first) in enumerate(zip(encoded, np.cumsum(sizes) - sizes)):
            np.add(e.indices.to_numpy(), first, out=ids[c])
        ids = ids.T.ravel()                                          # row by row
        at = np.flatnonzero((pc.binary_length(texts).to_numpy() > 0)[ids])   # the non-blank cells, row by row
        text = ids[at]
        row = at // max(len(jcols), 1)
        col = jcols[at - row * len(jcols)]
        present = _distinct(slot)
        pos = np.zeros(S + 1, dtype=np.int64)
        pos[present] = np.arange(len(present))
        entry = text * len(present) + pos[slot[row]] if len(present) > 1 else text
        entry_text = np.repeat(np.arange(len(texts)), len(present))
        kid_of_text = np.repeat(np.array([layout.indicators[j] for j in jcols], dtype=np.int64), sizes)
        entry_prop = cat.matrix[kid_of_text[entry_text], np.tile(present, len(texts))]
        prop = entry_prop[entry]
    keep = prop >= 0
    for k in np.flatnonzero(~keep):
        i = row[k]
        named = table.text(i, jk) if layout.long else table.header[col[k]]   # as the file names it
        s = cat.schemes[rows.scheme[i]]
        problems.add(rn[i], col[k], texts[int(text[k])].as_py(),
                     f"单位 {rows.unit[i]} 适用的考评表「{s.title}」({s.id})中没有指标「{named}」")
    if layout.long:      # each row names its indicator: a figure the actor does not supply, row by row
        refusals = {p: source_refusal(actor, cat.source[p], cat.name[p]) for p in _distinct(prop[keep])}
        for k in np.flatnonzero(keep):
            if refusals[prop[k]] is not None:
                problems.add(rn[row[k]], jk, table.text(row[k], jk), refusals[prop[k]])
                keep[k] = False
    if not keep.all():
        row, col, text, prop = row[keep], col[keep], text[keep], prop[keep]
        entry = None if entry is None else entry[keep]
    if entry is None:
        entry, entry_text, entry_prop = np.arange(len(row)), text, prop
    tok = _tokens(texts)
    value = np.full(len(entry_prop), np.nan)
    is_na = np.zeros(len(entry_prop), dtype=bool)
    reason = np.full(len(entry_prop), None, dtype=object)
    e = np.flatnonzero(entry_prop >= 0)    # not a text under a scheme without its column: no cell's
    p = entry_prop[e]
    parsed = parse_values(tok[entry_text[e]], cat.itype[p], cat.lo[p], cat.hi[p], cat.na[p], cat.name[p])
    value[e], is_na[e], reason[e] = parsed.value, parsed.is_na, parsed.reason
    ok = np.equal(reason, None)[entry]
    for k in np.flatnonzero(~ok):
        problems.add(rn[row[k]], col[k], texts[int(text[k])].as_py(), reason[entry[k]])
    return _Cells(row, col, prop, text, value[entry], is_na[entry], ok, texts)


def _duplicates(table: Table, layout: _Layout, rows: _Rows, cells: _Cells, cat: _Catalogue,
                problems: _Problems) -> None:
    """The same unit and period twice (long layout: the same indicator of them twice)."""
    rn = table.row_numbers
    if layout.long:
        sel = np.flatnonzero(rows.known[cells.row])
        at = cells.row[sel]
        key = rows.submission[at] * (cat.code_id.max(initial=0) + 1) + cat.code_id[cells.prop[sel]]
    else:
        at = np.flatnonzero(rows.known)
        key = rows.submission[at]
    key = pd.Series(key)
    dup = key.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    first = pd.Series(rn[at]).groupby(key, sort=False).transform("first").to_numpy()
    for k in np.flatnonzero(dup):
        i = at[k]
        u, per, row = rows.unit[i], rows.period[i], int(rn[i])
        if layout.long:
            j = layout.roles["ind_name"]
            problems.add(row, j, table.text(i, j), f"同一单位同一季度的指标重复:单位 {u} {per} 的"
                                                   f"「{cat.code[cells.prop[sel[k]]]}」出现在第{first[k]}行和第{row}行")
        else:
            j = layout.roles["unit"]
            problems.add(row, j, table.text(i, j), f"同一单位同一季度重复:单位 {u} {per} "
                                                   f"出现在第{first[k]}行和第{row}行")


def _cross_checks(table: Table, layout: _Layout, rows: _Rows, cells: _Cells, cat: _Catalogue,
                  problems: _Problems) -> None:
    """The schemes' rules between figures of one submission (e.g. 按期办结数不超过办结数)."""
    rn = table.row_numbers
    n = len(rn)
    if layout.long:  # one submission spans several rows: group the rows by (unit, period)
        sub_of_row = pd.factorize(rows.submission)[0]
    else:
        sub_of_row = np.arange(n)
    for x, s in enumerate(cat.schemes):
        if not s.checks:
            continue
        subs = _distinct(sub_of_row[rows.scheme == x])
        if not len(subs):
            continue
        pos = np.full(n, -1)
        pos[subs] = np.arange(len(subs))
        first_row = np.zeros(len(subs), dtype=np.int64)
        in_s = np.flatnonzero(rows.scheme == x)[::-1]
        first_row[pos[sub_of_row[in_s]]] = in_s  # reversed: the first row of each submission wins
        codes = sorted({c for ch in s.checks for c in ch.reads()})
        read = np.zeros(len(cat.code), dtype=bool)
        read[[cat.prop_of[x][c] for c in codes]] = True
        read = np.flatnonzero(read[cells.prop] & cells.ok)    # the cells any check reads
        read_prop = cells.prop[read]
        values, cell_of, where, rows_at = {}, {}, {}, {}
        for c in codes:
            m = read[read_prop == cat.prop_of[x][c]]
            at = pos[sub_of_row[cells.row[m]]]
            values[c] = np.full(len(subs), np.nan)
            values[c][at] = cells.value[m]
            cell_of[c] = np.full(len(subs), -1)
            cell_of[c][at] = m
            where[c] = np.full(len(subs), -1)
            where[c][at] = cells.col[m]
            rows_at[c] = np.zeros(len(subs), dtype=np.int64)
            rows_at[c][at] = rn[cells.row[m]]
        for ch in s.checks:
            reads = list(dict.fromkeys(ch.reads()))
            for k in np.flatnonzero(~ch.holds({c: values[c] for c in reads})):
                shown = ",".join(f"{s.indicators[c].name}={values[c][k]:g}" for c in reads)
                message = f"不满足校验规则「{ch.name}」({ch.expr}):{shown}"
                value = "、".join(cells.raw(cell_of[c][k]) if cell_of[c][k] >= 0 else "" for c in reads)
                if layout.long:  # reported on the last of the rows involved
                    i = first_row[k]
                    problems.add(max(int(rows_at[c][k]) for c in reads), layout.roles["value"], value,
                                 f"单位 {rows.unit[i]} {rows.period[i]}:{message}")
                else:
                    js = [int(where[c][k]) for c in reads]
                    problems.add(rn[first_row[k]], min(js), value, message,
                                 column="、".join(table.header[j] for j in js))


def _require_uploader(actor: User) -> None:
    """Only someone who may upload something gets past; which units, is checked row by row."""
    if not (permissions.can(actor, "upload.unit") or permissions.can(actor, "upload.office")):
        permissions.require(actor, "upload.unit")


def check_upload(store, data: bytes, file_name: str, actor: User) -> Checked:
    """Validate an upload completely; every problem ends up in ``Checked.problems``."""
    _require_uploader(actor)
    sha = hashlib.sha256(data).hexdigest()
    table = read_upload(data, file_name, UNIT_HEADERS)
    problems = _Problems(table.header)
    if table.problems:
        for p in table.problems:
            problems.add(p["row"], 0, p["value"], p["message"], column=p["column"])
        return _rejected(table, sha, problems)
    cat = _Catalogue(load_schemes(store))
    layout = _layout(table, cat, problems)
    if layout is None:
        return _rejected(table, sha, problems)
    rows = _rows(store, table, layout, cat, actor, problems)
    self_scores = _self_scores(table, layout, cat, problems)
    if not layout.long:
        _source_problems(table, layout, cat, actor, problems)
    cells = _indicator_cells(table, layout, rows, cat, actor, problems)
    _duplicates(table, layout, rows, cells, cat, problems)
    _cross_checks(table, layout, rows, cells, cat, problems)
    if problems:
        return _rejected(table, sha, problems, layout.name)
    values = _values_frame(_indexed_text(rows.unit, cells.row), _indexed_text(rows.period, cells.row),
                           _indexed_text(cat.code, cells.prop), cells.value, cells.is_na)
    subs = _subs_frame(rows.unit, rows.period, self_scores, table.row_numbers)
    if layout.long:
        subs = subs.groupby(["unit_code", "period"], sort=False, as_index=False).agg(
            self_score=("self_score", "max"), row_no=("row_no", "min"))
        subs = _subs_frame(subs["unit_code"], subs["period"], subs["self_score"], subs["row_no"])
    return Checked(file_name, sha, len(table.row_numbers), layout.name, values, subs,
                   _Problems([]).frame(), table.preview(), table.encoding)


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


# The same file again is a no-op while every figure and self score of its earlier batch is current.
_NOOP_SQL = """
    SELECT b.batch_id FROM batches b
    WHERE b.sha256 = ? AND b.rolled_back_at IS NULL
      AND NOT EXISTS (  -- a figure of it superseded: a later live batch has a cell for it
          SELECT 1 FROM indicator_values v
          JOIN indicator_values v2 USING (unit_code, period, indicator)
          JOIN batches b2 ON b2.batch_id = v2.batch_id
          WHERE v.batch_id = b.batch_id AND v2.batch_id > b.batch_id AND b2.rolled_back_at IS NULL)
      AND NOT EXISTS (
          SELECT 1 FROM submissions s
          WHERE s.batch_id = b.batch_id AND s.self_score IS NOT NULL AND EXISTS (
              SELECT 1 FROM submissions s2 JOIN batches b2 USING (batch_id)
              WHERE s2.unit_code = s.unit_code AND s2.period = s.period AND s2.batch_id > s.batch_id
                AND b2.rolled_back_at IS NULL AND s2.self_score IS NOT NULL))
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
    _require_uploader(actor)
    if not checked.ok:
        raise UploadRejected(checked.title, checked.problems, checked)
    periods_ = checked.periods
    units_ = checked.units
    summary = (f"{checked.rows}行,{len(checked.values)}个数值,{len(units_)}个单位,"
               f"季度 {'、'.join(periods_)}")

    def write(cur):
        known = cur.execute("SELECT count(*) FROM batches WHERE sha256 = ? AND rolled_back_at IS NULL",
                            [checked.sha256]).fetchone()[0]
        same = cur.execute(_NOOP_SQL, [checked.sha256]).fetchone() if known else None
        if same:
            raise _Noop(same[0])
        batch_id = cur.execute("SELECT nextval('seq_batch')").fetchone()[0]
        cur.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                    [batch_id, actor.username, datetime.now(), checked.file_name, checked.sha256, checked.rows,
                     periods_, units_])
        subs = checked.submissions
        # the categorical columns cross as Arrow dictionaries: the few labels once, not 180k strings
        vals = pa.Table.from_pandas(checked.values, preserve_index=False)
        tag = f"{batch_id}_{id(cur)}"
        cur.register(f"up_subs_{tag}", subs)
        cur.register(f"up_vals_{tag}", vals)
        # DuckDB's threads as configured: one thread makes the INSERT of a province's quarter (180k
        # rows) look 3× faster, but only by leaving the compression of the rows to the COMMIT; with
        # the COMMIT the two take as long at 180k rows and two threads 40% less at 2.7M.
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


KINDS = {"unit": "单位填报", "office": "政务公开办/第三方"}


def template(store, actor: User, group: str, period: str, kind: str | None = None) -> pd.DataFrame:
    """An empty upload for ``group`` and ``period`` in the wide layout, headers in Chinese.

    ``kind`` "unit": one row per unit the actor may report for (a unit account: its own), then
    自评分 and the units' own figures; "office": every unit of the group and the figures the office
    and 第三方 supply. Default: what the actor supplies (a checker: office; others: unit).
    """
    period = periods.parse_period(period)
    kind = kind or ("office" if permissions.can(actor, "upload.office") and not permissions.can(actor, "upload.unit")
                    else "unit")
    if kind not in KINDS:
        raise InputError(f"模板类型「{kind}」无效,可用:{'、'.join(KINDS)}")
    permissions.require(actor, "upload.unit" if kind == "unit" else "upload.office")
    scheme = next((s for s in load_schemes(store) if s.covers(group, period)), None)
    if scheme is None:
        raise InputError(f"分组「{group}」在 {period} 没有适用的考评表")
    in_group = [r[0] for r in store.rows("SELECT unit_code FROM units WHERE grp = ? ORDER BY unit_code", [group])]
    codes = in_group if kind == "office" else [c for c in in_group if permissions.can(actor, "upload.unit", unit=c)]
    if in_group and not codes:
        raise PermissionDenied(f"无权下载分组「{group}」的模板:账号 {actor.username} 只能填报本单位"
                               f"({actor.unit_code})的数据")
    head = ["单位代码", "季度", "自评分"] if kind == "unit" else ["单位代码", "季度"]
    columns = head + [ind.name for ind in scheme.indicators.values() if ind.source == kind]
    frame = pd.DataFrame("", index=range(len(codes)), columns=columns)
    frame["单位代码"] = codes
    frame["季度"] = period
    return frame


def changes(store, checked: Checked) -> pd.DataFrame:
    """What confirming a checked upload would change, figure by figure: ``unit_code, unit_name,
    period, indicator, name, old, new`` (old blank where there was none); unchanged figures left out."""
    columns = ["unit_code", "unit_name", "period", "indicator", "name", "old", "new"]
    if not checked.ok or checked.values.empty:
        return pd.DataFrame(columns=columns)
    new = checked.values.astype({"unit_code": object, "period": object, "indicator": object})
    with store.cursor() as cur:
        tag = f"chg_{id(cur)}"
        cur.register(tag, new)
        try:
            df = cur.execute(f"""
                SELECT n.unit_code, u.unit_name, n.period, n.indicator, c.value AS old_value, c.is_na AS old_na,
                       n.value AS new_value, n.is_na AS new_na
                FROM {tag} n JOIN units u USING (unit_code)
                LEFT JOIN current_values c USING (unit_code, period, indicator)
                WHERE c.indicator IS NULL OR c.is_na IS DISTINCT FROM n.is_na
                   OR (NOT n.is_na AND c.value IS DISTINCT FROM n.value)
                ORDER BY n.unit_code, n.period, n.indicator""").df()
        finally:
            cur.unregister(tag)
    names = {code: ind.name for s in load_schemes(store) for code, ind in s.indicators.items()}

    def shown(value, na):
        if na is True:
            return "不适用"
        return "" if value is None or pd.isna(value) else f"{float(value):g}"

    df["name"] = df["indicator"].map(names).fillna(df["indicator"])
    df["old"] = [shown(v, n) for v, n in zip(df["old_value"], df["old_na"])]
    df["new"] = [shown(v, n) for v, n in zip(df["new_value"], df["new_na"])]
    return df[columns]
