"""Schemes (考评表): the YAML form, its load-time checks, and the objects the engine runs.

Every problem found while loading is collected, each naming the place and the field, e.g.
``sections[1](site).items[1](site.items).rule.tiers:阈值必须从高到低``.
"""
from __future__ import annotations

import hashlib
import operator
import re
from dataclasses import dataclass, field

import numpy as np
import yaml

from . import periods
from .errors import InputError, Problems
from .limits import MAX_ABS
from .permissions import require
from .rules import RULES, Rule, number

INDICATOR_TYPES = {"count": "计数(非负整数)", "number": "数值", "rate": "比率(0–100%)", "bool": "是/否"}
OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
       "==": operator.eq, "!=": operator.ne}
TOP_KEYS = {"scheme", "title", "version", "description", "applies_to", "total_max", "indicators",
            "sections", "bonus", "penalties", "veto", "grades", "missing", "checks", "annual"}
MISSING_MODES = ("zero",)
# The usual bands (岳阳 2017 and most tables since) when a scheme does not name its own.
DEFAULT_GRADES = [{"name": "优秀", "min": 90}, {"name": "良好", "min": 80}, {"name": "合格", "min": 60},
                  {"name": "不合格", "min": 0}]


@dataclass(frozen=True)
class Indicator:
    code: str
    name: str
    type: str
    min: float | None = None
    max: float | None = None
    na_allowed: bool = False
    source: str = "unit"                 # unit | office | computed: who supplies the figure
    computed: tuple | None = None        # ("children", what, agg) or ("ledger", count, item_id)


@dataclass(frozen=True)
class Item:
    id: str
    name: str
    max: float | None
    rule: Rule
    kind: str = "item"  # item | bonus | penalty
    section_id: str | None = None
    once_in: int | None = None  # scored in this quarter (1–4) of each year only, 不适用 in the others


@dataclass(frozen=True)
class Section:
    id: str
    name: str
    max: float
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Veto:
    id: str
    name: str
    indicator: str
    op: str
    value: float
    cap: float | None = None

    def fires(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(np.isnan(x), False, OPS[self.op](x, self.value))


@dataclass(frozen=True)
class Grade:
    name: str
    min: float


_CHECK_RE = re.compile(r"^(.+?)\s*(<=|>=|==|!=|<|>)\s*(.+)$")
_TERM_RE = re.compile(r"\s*([+-]?)\s*([A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?)\s*")


@dataclass(frozen=True)
class Check:
    """A cross-field rule on one row of an upload, e.g. ``apps_closed_on_time <= apps_closed``."""

    id: str
    name: str
    expr: str
    left: tuple[tuple[float, str], ...]  # (sign, code or number)
    op: str
    right: tuple[tuple[float, str], ...]

    def reads(self) -> list[str]:
        return [t for _, t in self.left + self.right if not _is_number(t)]

    def holds(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        """True where the rule holds or cannot be judged (a value is missing)."""
        left, right = _side(self.left, cols), _side(self.right, cols)
        with np.errstate(invalid="ignore"):
            ok = OPS[self.op](left + 0.0, right + 0.0) | np.isclose(left, right) & (self.op in ("<=", ">=", "=="))
        return ok | np.isnan(left) | np.isnan(right)


def _is_number(t: str) -> bool:
    return t[0].isdigit()


def _side(terms, cols) -> np.ndarray:
    n = len(next(iter(cols.values()))) if cols else 1
    total = np.zeros(n)
    for sign, t in terms:
        total = total + sign * (float(t) if _is_number(t) else cols[t])
    return total


def parse_terms(text: str) -> tuple[tuple[float, str], ...] | None:
    text = text.strip()
    terms, pos = [], 0
    while pos < len(text):
        m = _TERM_RE.match(text, pos)
        if not m or m.end() == pos or (terms and not m.group(1)):
            return None
        terms.append((-1.0 if m.group(1) == "-" else 1.0, m.group(2)))
        pos = m.end()
    return tuple(terms) or None


@dataclass(frozen=True)
class Scheme:
    id: str
    title: str
    groups: tuple[str, ...]
    period_from: str
    period_to: str
    total_max: float
    indicators: dict[str, Indicator]
    sections: tuple[Section, ...]
    bonus_max: float
    bonus_min_base: float
    bonus_items: tuple[Item, ...]
    penalties: tuple[Item, ...]
    vetoes: tuple[Veto, ...]
    grades: tuple[Grade, ...]  # highest minimum first
    missing: str
    checks: tuple[Check, ...]
    yaml_text: str = field(repr=False, default="")
    annual_weights: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)  # Q1..Q4 in the annual result
    annual_points: float | None = None  # the annual total converted into 目标管理考核 points (× this ÷ 100)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.yaml_text.encode("utf-8")).hexdigest()

    @property
    def items(self) -> list[Item]:
        """Section items, then bonus items, then penalty items."""
        return [i for s in self.sections for i in s.items] + list(self.bonus_items) + list(self.penalties)

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    def covers(self, group: str, period: str) -> bool:
        return group in self.groups and self.period_from <= period <= self.period_to

    def grade_of(self, totals: np.ndarray) -> np.ndarray:
        """The grade of each total: the first (highest) grade whose minimum it reaches."""
        mins = np.array([g.min for g in self.grades])
        below = (np.asarray(totals, dtype=float)[:, None] < mins[None, :] - 1e-9).sum(axis=1)
        return np.array([g.name for g in self.grades], dtype=object)[np.minimum(below, len(mins) - 1)]

    @property
    def lowest_grade(self) -> str:
        return self.grades[-1].name

    def names(self) -> dict[str, str]:
        return {c: i.name for c, i in self.indicators.items()}


def periods_overlap(a: Scheme, b: Scheme) -> bool:
    return a.period_from <= b.period_to and b.period_from <= a.period_to


# -- reading the YAML ---------------------------------------------------------------------------
# A real scheme is ~16 KB, nested 8 deep, with no aliases; these bounds are far above that and
# far below what would exhaust memory, the stack or float conversion.
MAX_TEXT = 1_000_000      # characters
MAX_DEPTH = 40            # nested collections
MAX_ALIASES = 100         # *references
MAX_NODES = 50_000        # values, every alias counted as what it stands for
MAX_INT_DIGITS = 18       # any integer longer is absurd (and float() of it may overflow)

try:  # libyaml's parser: five times faster than PyYAML's pure-Python one on a large file
    from yaml.cyaml import CParser as _CParser
    _BASES: tuple = (yaml.composer.Composer, _CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver)
except ImportError:  # PyYAML built without libyaml
    _CParser, _BASES = None, (yaml.SafeLoader,)


class _Loader(*_BASES):
    """``yaml.safe_load`` with the bounds above, checked while composing (in Python, from the
    parser's events), before anything is built or walked: "billion laughs" aliases, a
    100,000-deep ``[[[…]]]``, a 400-digit integer."""

    def __init__(self, text: str):
        if _CParser is None:
            yaml.SafeLoader.__init__(self, text)
        else:
            _CParser.__init__(self, text)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
        self._depth = self._aliases = self._nodes = 0
        self._weight: dict[int, int] = {}  # anchored node -> values it stands for

    def _refuse(self, message: str, mark) -> None:
        raise yaml.composer.ComposerError(None, None, message, mark)

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                self._refuse(f"别名(*引用)超过{MAX_ALIASES}个,考评表用不到这么多引用", mark)
            node = super().compose_node(parent, index)  # an undefined alias is an error there
            if id(node) not in self._weight:
                self._refuse("别名引用了包含它自身的内容(递归引用)", mark)
            self._count(self._weight[id(node)], mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            self._refuse(f"嵌套超过{MAX_DEPTH}层,不是考评表的结构", mark)
        anchored = self.peek_event().anchor is not None
        before = self._nodes
        self._count(1, mark)
        node = super().compose_node(parent, index)
        if anchored:
            self._weight[id(node)] = self._nodes - before
        self._depth -= 1
        return node

    def _count(self, n: int, mark) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            self._refuse(f"超过{MAX_NODES}个值(别名按展开后计),不是考评表的规模", mark)

    def construct_yaml_int(self, node):
        digits = node.value.lstrip("+-").replace("_", "").replace(":", "")
        if len(digits) > MAX_INT_DIGITS:
            message = f"整数「{node.value[:12]}…」有{len(digits)}位,位数过多,不是合理的数值"
            raise yaml.constructor.ConstructorError(None, None, message, node.start_mark)
        return super().construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
# 1e-3 and 5e8 are numbers (YAML 1.2 and every spreadsheet), not strings as YAML 1.1 reads them
_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _read_yaml(text: str):
    if len(text) > MAX_TEXT:
        raise Problems("考评表文件过大", [f"YAML:共{len(text)}个字符,超过上限{MAX_TEXT}个字符"])
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"第{mark.line + 1}行第{mark.column + 1}列" if mark else "YAML"
        raise Problems("考评表不是有效的 YAML", [f"{where}:{getattr(exc, 'problem', exc)}"]) from None
    finally:
        loader.dispose()


# -- loading --------------------------------------------------------------------------------
class _Errors(list):
    def add(self, path: str, message: str) -> None:
        self.append(f"{path}:{message}")


def _num(value, path, errors, *, required=True, lo=-MAX_ABS, above=None):
    """A finite number within [lo, MAX_ABS] (and > ``above``), or None and the problem noted."""
    if value is None:
        if required:
            errors.add(path, "缺少数值")
        return None
    try:
        return number(value, lo=lo, above=above)
    except InputError as exc:
        errors.add(path, str(exc))
        return None


def _text(value, path, errors, *, required=True):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(path, "不能为空")
        return None
    if isinstance(value, (list, dict)):
        errors.add(path, "应为文字,不能是列表或映射")
        return None
    return str(value).strip()


def _where(path: str, raw: dict) -> str:
    return f"{path}({raw['id']})" if isinstance(raw, dict) and raw.get("id") else path


def _parse_rule(raw, path, indicators, errors) -> Rule | None:
    if not isinstance(raw, dict):
        errors.add(path, "应为映射,如 {type: deduct, indicator: 错链数代码, per: 0.5}")
        return None
    rtype = raw.get("type")
    cls = RULES.get(rtype) if isinstance(rtype, str) else None
    if cls is None:
        errors.add(f"{path}.type", f"未知的规则类型「{rtype}」,可用:{'、'.join(RULES)}")
        return None
    made, problems = cls.build(raw, indicators)
    for where, message in problems:
        errors.add(f"{path}.{where}", message)
    return made


def _parse_item(raw, path, indicators, errors, ids, *, kind, section_id=None) -> Item | None:
    if not isinstance(raw, dict):
        errors.add(path, "应为映射,含 id、name、max、rule")
        return None
    where = _where(path, raw)
    item_id = _text(raw.get("id"), f"{where}.id", errors)
    name = _text(raw.get("name"), f"{where}.name", errors)
    if item_id is not None:
        if item_id in ids:
            errors.add(f"{where}.id", f"条目编号「{item_id}」重复")
        ids.add(item_id)
    max_ = _num(raw.get("max"), f"{where}.max", errors, required=kind != "penalty", above=0.0)
    rule = _parse_rule(raw.get("rule"), f"{where}.rule", indicators, errors)
    once_in = _parse_once_in(raw.get("once_in"), f"{where}.once_in", errors)
    if rule is not None and kind == "penalty" and not rule.penalty_ok:
        usable = "、".join(t for t, cls in RULES.items() if cls.penalty_ok)
        errors.add(f"{where}.rule.type", f"重大扣分项只能使用 {usable} 规则")
        return None
    if None in (item_id, name, rule) or (max_ is None and kind != "penalty"):
        return None
    return Item(item_id, name, max_, rule, kind, section_id, once_in)


def _parse_once_in(raw, path, errors) -> int | None:
    """``once_in: Q1`` (or 1): the quarter of each year in which an annual item is scored."""
    if raw is None:
        return None
    text = str(raw).strip().upper().removeprefix("Q")
    if isinstance(raw, bool) or text not in ("1", "2", "3", "4"):
        errors.add(path, f"「{raw}」无效,应为 Q1、Q2、Q3 或 Q4(每年在该季度考评一次)")
        return None
    return int(text)


def _parse_annual(raw, errors) -> tuple[tuple[float, ...], float | None]:
    """``annual: {quarters: [w1, w2, w3, w4]}`` or ``{year_end: share}`` (the fourth quarter's share,
    the rest split evenly), and ``points: 5`` (the annual total × 5 ÷ 100 in 目标管理考核)."""
    weights, points = (0.25, 0.25, 0.25, 0.25), None
    if raw is None:
        return weights, points
    if not isinstance(raw, dict):
        errors.add("annual", "应为映射,如 {quarters: [0.25, 0.25, 0.25, 0.25], points: 5} 或 {year_end: 0.4}")
        return weights, points
    for key in raw:
        if key not in ("quarters", "year_end", "points"):
            errors.add(f"annual.{key}", "未知字段,可用字段:quarters、year_end、points")
    if "quarters" in raw and "year_end" in raw:
        errors.add("annual", "quarters 与 year_end 只能写一个")
    elif "quarters" in raw:
        q = raw["quarters"]
        if not isinstance(q, list) or len(q) != 4:
            errors.add("annual.quarters", "应为四个季度的权重,如 [0.25, 0.25, 0.25, 0.25]")
        else:
            ws = [_num(w, f"annual.quarters[{k}]", errors, lo=0.0) for k, w in enumerate(q)]
            if None not in ws:
                if abs(sum(ws) - 1) > 1e-6:
                    errors.add("annual.quarters", f"四个季度的权重之和为{sum(ws):g},应为1")
                else:
                    weights = tuple(ws)
    elif "year_end" in raw:
        share = _num(raw["year_end"], "annual.year_end", errors, lo=0.0)
        if share is not None and share > 1:
            errors.add("annual.year_end", f"年终(第四季度)占比{share:g}应在0到1之间")
        elif share is not None:
            weights = ((1 - share) / 3,) * 3 + (share,)
    if "points" in raw:
        points = _num(raw["points"], "annual.points", errors, above=0.0)
    return weights, points


def _parse_indicators(raw, errors) -> dict[str, Indicator]:
    out: dict[str, Indicator] = {}
    if not isinstance(raw, list) or not raw:
        errors.add("indicators", "应为非空列表")
        return out
    for k, ind in enumerate(raw):
        path = f"indicators[{k}]"
        if not isinstance(ind, dict):
            errors.add(path, "应为映射,含 code、name、type")
            continue
        path = f"{path}({ind.get('code')})" if ind.get("code") else path
        code = _text(ind.get("code"), f"{path}.code", errors)
        name = _text(ind.get("name"), f"{path}.name", errors)
        itype = ind.get("type")
        if itype not in INDICATOR_TYPES:
            errors.add(f"{path}.type", f"类型「{itype}」无效,可用:{'、'.join(INDICATOR_TYPES)}")
        lo = _num(ind.get("min"), f"{path}.min", errors, required=False)
        hi = _num(ind.get("max"), f"{path}.max", errors, required=False)
        if lo is not None and hi is not None and lo > hi:
            errors.add(f"{path}.min", f"下限{lo}大于上限{hi}")
        if code in out:
            errors.add(f"{path}.code", f"指标代码「{code}」重复")
        source, computed = _parse_source(ind, path, errors)
        if code and name and itype in INDICATOR_TYPES:
            out[code] = Indicator(code, name, itype, lo, hi, bool(ind.get("na_allowed", False)), source, computed)
    names = [i.name for i in out.values()]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        errors.add("indicators", f"指标名称「{dup}」重复,上传文件将无法按名称识别该列")
    return out


SOURCES = ("unit", "office", "computed")
CHILD_AGGS = ("mean", "min", "max", "sum", "count")
LEDGER_COUNTS = ("assigned", "closed_on_time", "overdue", "open")


def _parse_source(ind: dict, path: str, errors) -> tuple[str, tuple | None]:
    """``source`` (default unit) and, for a computed figure, how it is computed."""
    raw = ind.get("computed")
    source = ind.get("source", "computed" if raw is not None else "unit")
    if source not in SOURCES:
        errors.add(f"{path}.source", f"来源「{source}」无效,可用:{'、'.join(SOURCES)}")
        return "unit", None
    if source != "computed":
        if raw is not None:
            errors.add(f"{path}.computed", "只有 source: computed 的指标才能写 computed")
        return source, None
    if not isinstance(raw, dict):
        errors.add(f"{path}.computed", "系统计算的指标需写明计算方法,如 {children: total, agg: mean} "
                                       "或 {ledger: assigned}")
        return source, None
    if sum(k in raw for k in ("children", "ledger", "yearbook")) != 1:
        errors.add(f"{path}.computed", "应写 children(下级单位汇总)、ledger(问题清单计数)或 yearbook(年报勾稽错误数)之一")
        return source, None
    if "yearbook" in raw:
        if raw["yearbook"] != "errors" or set(raw) != {"yearbook"}:
            errors.add(f"{path}.computed.yearbook", "应为 errors(上一年度年报勾稽检查的错误数)")
        return source, ("yearbook", "errors", None)
    if "children" in raw:
        what, agg = raw.get("children"), raw.get("agg", "mean")
        unknown = set(raw) - {"children", "agg"}
        if unknown:
            errors.add(f"{path}.computed", f"未知的键:{'、'.join(sorted(map(str, unknown)))}")
        if not isinstance(what, str) or not what.strip():
            errors.add(f"{path}.computed.children", "应为 total(下级单位总分)或下级单位的指标代码")
        if agg not in CHILD_AGGS:
            errors.add(f"{path}.computed.agg", f"汇总方式「{agg}」无效,可用:{'、'.join(CHILD_AGGS)}")
        return source, ("children", str(what).strip(), agg)
    count, item = raw.get("ledger"), raw.get("item")
    unknown = set(raw) - {"ledger", "item"}
    if unknown:
        errors.add(f"{path}.computed", f"未知的键:{'、'.join(sorted(map(str, unknown)))}")
    if count not in LEDGER_COUNTS:
        errors.add(f"{path}.computed.ledger", f"计数「{count}」无效,可用:{'、'.join(LEDGER_COUNTS)}")
    if item is not None and not isinstance(item, str):
        errors.add(f"{path}.computed.item", "应为考评项编号")
    return source, ("ledger", count, item)


def _parse_period(value, path, errors) -> str | None:
    try:
        return periods.parse_period(value)
    except InputError as exc:
        errors.add(path, str(exc))
        return None


def parse_scheme(text: str) -> Scheme:
    """Parse and check one scheme; raise Problems listing every error found."""
    errors = _Errors()
    doc = _read_yaml(text)
    if not isinstance(doc, dict):
        raise Problems("考评表格式错误", ["顶层:应为映射(scheme、title、applies_to、indicators、sections …)"])
    for key in doc:
        if key not in TOP_KEYS:
            errors.add(str(key), f"未知字段,可用字段:{'、'.join(sorted(TOP_KEYS))}")

    scheme_id = _text(doc.get("scheme"), "scheme", errors)
    title = _text(doc.get("title"), "title", errors, required=False) or scheme_id or ""
    applies = doc.get("applies_to")
    groups: tuple[str, ...] = ()
    p_from = p_to = None
    if not isinstance(applies, dict):
        errors.add("applies_to", "应为 {groups: [...], from: 2025Q1, to: 2025Q4}")
    else:
        raw_groups = applies.get("groups")
        if isinstance(raw_groups, str):  # one group written without brackets
            raw_groups = [raw_groups]
        if not isinstance(raw_groups, list) or not raw_groups or not all(isinstance(g, str) and g.strip() for g in raw_groups):
            errors.add("applies_to.groups", "应为非空的分组名称列表")
        else:
            groups = tuple(g.strip() for g in raw_groups)
        p_from = _parse_period(applies.get("from"), "applies_to.from", errors)
        p_to = _parse_period(applies.get("to"), "applies_to.to", errors)
        if p_from and p_to and p_from > p_to:
            errors.add("applies_to.to", f"结束季度 {p_to} 早于开始季度 {p_from}")
    total_max = _num(doc.get("total_max", 100), "total_max", errors, above=0.0)
    indicators = _parse_indicators(doc.get("indicators"), errors)

    ids: set[str] = set()
    sections: list[Section] = []
    raw_sections = doc.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        errors.add("sections", "应为非空列表")
        raw_sections = []
    section_sum = 0.0
    for k, raw in enumerate(raw_sections):
        path = _where(f"sections[{k}]", raw)
        if not isinstance(raw, dict):
            errors.add(path, "应为映射,含 id、name、max、items")
            continue
        sid = _text(raw.get("id"), f"{path}.id", errors)
        if sid is not None:
            if sid in ids:
                errors.add(f"{path}.id", f"编号「{sid}」重复")
            ids.add(sid)
        sname = _text(raw.get("name"), f"{path}.name", errors)
        smax = _num(raw.get("max"), f"{path}.max", errors, above=0.0)
        section_sum += smax or 0.0
        raw_items = raw.get("items")
        if not isinstance(raw_items, list) or not raw_items:
            errors.add(f"{path}.items", "应为非空列表")
            raw_items = []
        items = [_parse_item(it, f"{path}.items[{j}]", indicators, errors, ids, kind="item", section_id=sid)
                 for j, it in enumerate(raw_items)]
        if sid and sname and smax is not None:
            sections.append(Section(sid, sname, smax, tuple(i for i in items if i is not None)))
    if raw_sections and total_max is not None and abs(section_sum - total_max) > 1e-6:
        errors.add("sections", f"各部分 max 之和为{section_sum:g},应等于总分 total_max {total_max:g}")

    bonus = doc.get("bonus") or {}
    bonus_items: list[Item] = []
    bonus_max = bonus_min = 0.0
    if not isinstance(bonus, dict):
        errors.add("bonus", "应为 {max: 5, min_base: 0, items: [...]}")
    elif bonus:
        bonus_max = _num(bonus.get("max"), "bonus.max", errors, lo=0.0) or 0.0
        bonus_min = _num(bonus.get("min_base", 0), "bonus.min_base", errors) or 0.0
        for key in bonus:
            if key not in ("max", "min_base", "items"):
                errors.add(f"bonus.{key}", "未知字段,可用字段:max、min_base、items")
        raw_items = bonus.get("items") or []
        if not isinstance(raw_items, list):
            errors.add("bonus.items", "应为列表")
            raw_items = []
        bonus_items = [i for j, it in enumerate(raw_items)
                       if (i := _parse_item(it, f"bonus.items[{j}]", indicators, errors, ids, kind="bonus"))]

    raw_pen = doc.get("penalties") or []
    if isinstance(raw_pen, dict):
        raw_pen = raw_pen.get("items") or []
    if not isinstance(raw_pen, list):
        errors.add("penalties", "应为列表")
        raw_pen = []
    penalties = [i for j, it in enumerate(raw_pen)
                 if (i := _parse_item(it, f"penalties[{j}]", indicators, errors, ids, kind="penalty"))]

    vetoes = _parse_vetoes(doc.get("veto") or [], indicators, errors, ids)
    grades = _parse_grades(doc.get("grades", DEFAULT_GRADES), errors)
    missing = doc.get("missing", "zero")
    if missing not in MISSING_MODES:
        errors.add("missing", f"取值「{missing}」无效,可用:{'、'.join(MISSING_MODES)}")
    checks = _parse_checks(doc.get("checks") or [], indicators, errors)
    annual_weights, annual_points = _parse_annual(doc.get("annual"), errors)
    for ind in indicators.values():
        if ind.computed and ind.computed[0] == "ledger" and ind.computed[2] and ind.computed[2] not in ids:
            errors.add(f"indicators({ind.code}).computed.item", f"考评项「{ind.computed[2]}」不在本考评表中")

    if errors:
        raise Problems(f"考评表 {scheme_id or ''} 有{len(errors)}处错误", list(errors))
    return Scheme(scheme_id, title, groups, p_from, p_to, total_max, indicators, tuple(sections),
                  bonus_max, bonus_min, tuple(bonus_items), tuple(penalties), tuple(vetoes),
                  grades, missing, tuple(checks), text, annual_weights, annual_points)


def _parse_vetoes(raw, indicators, errors, ids) -> list[Veto]:
    out = []
    if not isinstance(raw, list):
        errors.add("veto", "应为列表")
        return out
    for k, v in enumerate(raw):
        path = _where(f"veto[{k}]", v)
        if not isinstance(v, dict):
            errors.add(path, "应为映射,含 id、name、indicator、op、value")
            continue
        vid = _text(v.get("id"), f"{path}.id", errors)
        if vid in ids:
            errors.add(f"{path}.id", f"编号「{vid}」重复")
        ids.add(vid)
        name = _text(v.get("name"), f"{path}.name", errors)
        ind = v.get("indicator")
        if ind not in indicators:
            errors.add(f"{path}.indicator", f"指标「{ind}」未在 indicators 中声明")
        op = v.get("op", ">")
        if op not in OPS:
            errors.add(f"{path}.op", f"比较符「{op}」无效,可用:{' '.join(OPS)}")
        value = v.get("value", 0)
        if isinstance(value, bool) and ind in indicators and indicators[ind].type == "bool":
            value = float(value)  # {op: "==", value: false} on a 是/否 indicator
        else:
            value = _num(value, f"{path}.value", errors)
        cap = _num(v.get("cap"), f"{path}.cap", errors, required=False, lo=0.0)
        if vid and name and ind in indicators and op in OPS and value is not None:
            out.append(Veto(vid, name, ind, op, value, cap))
    return out


def _parse_grades(raw, errors) -> tuple[Grade, ...]:
    if not isinstance(raw, list) or not raw:
        errors.add("grades", "应为非空列表,如 [{name: 优秀, min: 90}, …]")
        return (Grade("—", 0.0),)
    grades = []
    for k, g in enumerate(raw):
        path = f"grades[{k}]"
        if not isinstance(g, dict):
            errors.add(path, "应为 {name: 等次名称, min: 最低分}")
            continue
        name = _text(g.get("name"), f"{path}.name", errors)
        lo = _num(g.get("min"), f"{path}.min", errors)
        if name and lo is not None:
            grades.append(Grade(name, lo))
    names = [g.name for g in grades]
    if len(set(names)) != len(names):
        errors.add("grades", "等次名称重复")
    return tuple(sorted(grades, key=lambda g: -g.min)) or (Grade("—", 0.0),)


def _parse_checks(raw, indicators, errors) -> list[Check]:
    out = []
    if not isinstance(raw, list):
        errors.add("checks", "应为列表")
        return out
    for k, c in enumerate(raw):
        path = _where(f"checks[{k}]", c)
        if not isinstance(c, dict):
            errors.add(path, "应为 {id, name, expr}")
            continue
        cid = _text(c.get("id"), f"{path}.id", errors)
        name = _text(c.get("name"), f"{path}.name", errors, required=False) or cid
        expr = _text(c.get("expr"), f"{path}.expr", errors)
        if not expr:
            continue
        m = _CHECK_RE.match(expr)
        left = parse_terms(m.group(1)) if m else None
        right = parse_terms(m.group(3)) if m else None
        if not (left and right):
            errors.add(f"{path}.expr", f"表达式「{expr}」无法解析,应形如 a + b <= c(仅支持指标代码、数字、+、-)")
            continue
        check = Check(cid or expr, name, expr, left, m.group(2), right)
        absurd = [t for _, t in left + right if _is_number(t) and float(t) > MAX_ABS]
        if absurd:
            errors.add(f"{path}.expr", f"数值「{absurd[0][:20]}」超出合理范围(不超过{MAX_ABS:g})")
            continue
        unknown = [t for t in check.reads() if t not in indicators]
        if unknown:
            errors.add(f"{path}.expr", f"指标「{'、'.join(unknown)}」未在 indicators 中声明")
            continue
        out.append(check)
    return out


# -- the schemes in the store -----------------------------------------------------------------
_parsed: dict[str, Scheme] = {}


def _cached_parse(text: str) -> Scheme:
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if key not in _parsed:
        _parsed[key] = parse_scheme(text)
    return _parsed[key]


def load_schemes(store) -> list[Scheme]:
    """Every scheme loaded into the store."""
    return [_cached_parse(r[0]) for r in store.rows("SELECT yaml_text FROM schemes ORDER BY scheme_id")]


def scheme_for(store, group: str, period: str) -> Scheme | None:
    return next((s for s in load_schemes(store) if s.covers(group, period)), None)


def save_scheme(store, text: str, actor) -> tuple[Scheme, str]:
    """Check and load a scheme (a new version replaces the old one of the same id).

    Returns the scheme and what happened: ``new``, ``updated`` or ``unchanged``.
    """
    from .audit import record

    require(actor, "scheme.load")
    scheme = parse_scheme(text)
    overlaps = [
        f"applies_to:与已加载的考评表 {other.id} 重叠(分组 {'、'.join(sorted(set(scheme.groups) & set(other.groups)))},"
        f"{max(scheme.period_from, other.period_from)}–{min(scheme.period_to, other.period_to)})"
        for other in load_schemes(store)
        if other.id != scheme.id and set(scheme.groups) & set(other.groups) and periods_overlap(scheme, other)
    ]
    if overlaps:
        raise Problems(f"考评表 {scheme.id} 不能加载:同一分组同一季度只能适用一个考评表", overlaps)

    def write(cur):
        old = cur.execute("SELECT sha256 FROM schemes WHERE scheme_id = ?", [scheme.id]).fetchone()
        if old and old[0] == scheme.sha256:
            return "unchanged"
        row = [scheme.title, text, scheme.sha256, list(scheme.groups), scheme.period_from,
               scheme.period_to, actor.username, scheme.id]
        if old:
            cur.execute("UPDATE schemes SET title = ?, yaml_text = ?, sha256 = ?, groups = ?, period_from = ?, "
                        "period_to = ?, loaded_at = now(), loaded_by = ? WHERE scheme_id = ?", row)
        else:
            cur.execute("INSERT INTO schemes (title, yaml_text, sha256, groups, period_from, period_to, "
                        "loaded_by, scheme_id, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())", row)
        record(cur, actor, "scheme", scheme.id,
               f"{'更新' if old else '加载'} {scheme.title},sha256 {scheme.sha256[:12]}")
        return "updated" if old else "new"

    return scheme, store.write(write)
