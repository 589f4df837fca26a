"""The rule types of a scheme: one registered class each, as pandera registers its checks.

A rule class is all there is to know about its type: the parameters it takes and their checks
(``build``), how it scores a column of units (``score``), how it says the scoring in words
(``describe``), and how it explains one unit's points (``explain``). Missing and not-applicable
values are handled by the engine before a rule sees them, except where the rule itself decides
(``ratio`` with a zero denominator).
"""
from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from .errors import InputError
from .limits import MAX_ABS, finite

RULES: dict[str, type[Rule]] = {}


def rule(name: str) -> Callable[[type], type]:
    """Register a rule type under the name a scheme uses for it."""

    def register(cls: type) -> type:
        cls.type_name = name
        RULES[name] = dataclass(frozen=True)(cls)
        return RULES[name]

    return register


def fmt(x: float | None) -> str:
    """2 decimals at most, no trailing zeros: 2.5, 4, 0.33."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "—"
    text = f"{round(float(x) + 0.0, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def number(value, *, lo: float = -MAX_ABS, above: float | None = None) -> float:
    """A number written in a scheme, or InputError saying what is wrong with it (no place: the
    caller knows the place). YAML's true/false are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"应为数字,实际为「{value}」")
    x = finite(value, "数值", lo=lo, hi=MAX_ABS)
    if above is not None and x <= above:
        raise InputError(f"必须大于{above:g},实际为{x:g}")
    return x


# -- parameter declarations: the dataclass fields of a rule, with what they must hold -------------
def indicator() -> Any:
    """An indicator the rule reads (its code, declared in the scheme's indicators)."""
    return field(metadata={"kind": "indicator"})


def number_param(default=MISSING, *, lo: float = -MAX_ABS, above: float | None = None) -> Any:
    return field(default=default, metadata={"kind": "number", "lo": lo, "above": above})


def choice(*options: str) -> Any:
    """One of ``options``; the first is the default."""
    return field(default=options[0], metadata={"kind": "choice", "options": options})


def tiers() -> Any:
    """``[[threshold, points], …]``."""
    return field(metadata={"kind": "tiers"})


@dataclass(frozen=True)
class Context:
    """What ``explain`` may need beyond the unit's own values."""

    names: dict[str, str]  # indicator code -> Chinese name
    percent: frozenset = frozenset()  # codes of rate indicators, shown with %
    group_max: Callable[[str], float] = lambda code: float("nan")

    def name(self, code: str) -> str:
        return self.names.get(code, code)

    def pct(self, code: str) -> str:
        return "%" if code in self.percent else ""


Problem = tuple[str, str]  # (parameter path inside the rule, e.g. "tiers[1][0]", message)


class Rule:
    """Base of every rule type: the parameters are the dataclass fields (declared with
    :func:`indicator`, :func:`number_param`, :func:`choice`, :func:`tiers`)."""

    type_name: ClassVar[str]
    penalty_ok: ClassVar[bool] = False  # may score a 重大扣分项 (an item without a max)
    # scored by the office (核定), not from figures: 0 and 待评定 until adjusted
    pending_when_unadjusted: ClassVar[bool] = False
    # "section": the item's points may go below 0, its section's may not (deduct declares it)
    floor = "item"

    @classmethod
    def build(cls, raw: dict, indicators: Container[str]) -> tuple[Rule | None, list[Problem]]:
        """The rule a scheme's ``rule:`` mapping describes, or the problems with it."""
        problems: list[Problem] = []
        params = {f.name: f for f in fields(cls)}
        for key in raw:
            if key != "type" and key not in params:
                problems.append((str(key), f"{cls.type_name} 规则没有参数「{key}」,"
                                            f"可用参数:{'、'.join(sorted(params)) or '无'}"))
        kwargs = {}
        for name, f in params.items():
            value = raw.get(name)
            if value is None:
                if f.default is MISSING:
                    problems.append((name, f"{cls.type_name} 规则缺少参数 {name}"))
                continue
            try:
                kwargs[name] = _PARAM_KINDS[f.metadata["kind"]](value, f.metadata, indicators)
            except _ParamError as exc:
                problems.append((name + exc.sub, exc.message))
        if problems:
            return None, problems
        made = cls(**kwargs)
        problems = made.check()
        return (None, problems) if problems else (made, [])

    def check(self) -> list[Problem]:
        """Checks across parameters (each parameter alone is checked by its declaration)."""
        return []

    def reads(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self) if f.metadata.get("kind") == "indicator"]

    def na_mask(self, cols: dict[str, np.ndarray]) -> np.ndarray | None:
        """Units for which the rule itself finds the item not applicable."""
        return None

    def score(self, cols: dict[str, np.ndarray], max_: float | None, groups: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self, names: dict[str, str], max_: float | None) -> str:
        """How an item is scored, in words, e.g. 「网站错链数」每处扣0.5分,扣完为止."""
        raise NotImplementedError

    def explain(self, v: dict[str, float], points: float, max_: float | None, ctx: Context) -> str:
        raise NotImplementedError


class _ParamError(Exception):
    def __init__(self, message: str, sub: str = ""):
        self.message, self.sub = message, sub


def _indicator_param(value, meta, indicators):
    if not isinstance(value, str) or value not in indicators:
        raise _ParamError(f"指标「{value}」未在 indicators 中声明")
    return value


def _number_param(value, meta, indicators):
    try:
        return number(value, lo=meta["lo"], above=meta["above"])
    except InputError as exc:
        raise _ParamError(str(exc)) from None


def _choice_param(value, meta, indicators):
    if value not in meta["options"]:
        raise _ParamError(f"取值「{value}」无效,可用:{'、'.join(meta['options'])}")
    return value


def _tiers_param(value, meta, indicators):
    if not isinstance(value, list) or not value:
        raise _ParamError("应为 [[阈值, 分值], …] 的列表")
    out = []
    for k, tier in enumerate(value):
        if not isinstance(tier, list) or len(tier) != 2:
            raise _ParamError(f"每档应为 [阈值, 分值],实际为「{tier}」", f"[{k}]")
        pair = []
        for m, (x, lo) in enumerate(zip(tier, (-MAX_ABS, 0.0))):
            try:
                pair.append(number(x, lo=lo))
            except InputError as exc:
                raise _ParamError(str(exc), f"[{k}][{m}]") from None
        out.append(tuple(pair))
    return tuple(out)


_PARAM_KINDS = {"indicator": _indicator_param, "number": _number_param, "choice": _choice_param,
                "tiers": _tiers_param}


def _of_max(max_: float | None) -> str:
    return f"(满分{fmt(max_)}分)" if max_ is not None else ""


def _quoted(names: dict[str, str], code: str) -> str:
    return f"「{names.get(code, code)}」"


@rule("boolean")
class Boolean(Rule):
    indicator: str = indicator()

    def score(self, cols, max_, groups):
        return np.where(cols[self.indicator] > 0, max_, 0.0)

    def describe(self, names, max_):
        return f"{_quoted(names, self.indicator)}为是得{fmt(max_)}分,否则0分"

    def explain(self, v, points, max_, ctx):
        name = ctx.name(self.indicator)
        if v[self.indicator] > 0:
            return f"{name}:是,得{fmt(points)}分{_of_max(max_)}"
        return f"{name}:否,不得分,得0分{_of_max(max_)}"


@rule("deduct")
class Deduct(Rule):
    indicator: str = indicator()
    per: float = number_param(lo=0.0)
    floor: str = choice("item", "section")

    def score(self, cols, max_, groups):
        raw = max_ - self.per * cols[self.indicator]
        return raw if self.floor == "section" else np.maximum(raw, 0.0)

    def describe(self, names, max_):
        floor = "扣完为止" if self.floor == "item" else "可超扣,但所在部分不低于0分"
        return f"{_quoted(names, self.indicator)}每处扣{fmt(self.per)}分,{floor}"

    def explain(self, v, points, max_, ctx):
        n = v[self.indicator]
        lost = self.per * n
        head = f"{ctx.name(self.indicator)}{fmt(n)}处,每处扣{fmt(self.per)}分"
        if n <= 0:
            return f"{ctx.name(self.indicator)}0处,不扣分,得{fmt(points)}分{_of_max(max_)}"
        if lost > max_ and self.floor == "item":
            return f"{head},应扣{fmt(lost)}分,扣完为止,得0分{_of_max(max_)}"
        if lost > max_:
            return f"{head},扣{fmt(lost)}分,得{fmt(points)}分(满分{fmt(max_)}分,超扣部分在本节内抵扣)"
        return f"{head},扣{fmt(lost)}分,得{fmt(points)}分{_of_max(max_)}"


@rule("ladder")
class Ladder(Rule):
    indicator: str = indicator()
    tiers: tuple = tiers()

    def check(self):
        if any(a[0] <= b[0] for a, b in zip(self.tiers, self.tiers[1:])):
            return [("tiers", "阈值必须从高到低")]
        return []

    def score(self, cols, max_, groups):
        x = cols[self.indicator]
        out = np.zeros_like(x, dtype=float)
        for threshold, pts in reversed(self.tiers):  # highest threshold applied last wins
            out = np.where(x >= threshold, float(pts), out)
        return out

    def _steps(self) -> str:
        return "、".join(f"≥{fmt(t)}得{fmt(p)}分" for t, p in self.tiers)

    def describe(self, names, max_):
        return f"按{_quoted(names, self.indicator)}分档:{self._steps()},否则0分"

    def explain(self, v, points, max_, ctx):
        x = v[self.indicator]
        name = ctx.name(self.indicator)
        for threshold, _ in self.tiers:
            if x >= threshold:
                return f"{name}{fmt(x)},达到「≥{fmt(threshold)}」档({self._steps()}),得{fmt(points)}分{_of_max(max_)}"
        lowest = self.tiers[-1][0]
        return f"{name}{fmt(x)},未达到最低档{fmt(lowest)}({self._steps()}),得0分{_of_max(max_)}"


@rule("rate")
class Rate(Rule):
    """Linear between the zero line and the full line; full_at < zero_at means lower is better."""

    indicator: str = indicator()
    full_at: float = number_param(100.0)
    zero_at: float = number_param(0.0)

    def check(self):
        if self.full_at == self.zero_at:
            return [("zero_at", "满分线 full_at 与零分线 zero_at 不能相同")]
        return []

    def score(self, cols, max_, groups):
        x = cols[self.indicator]
        return max_ * np.clip((x - self.zero_at) / (self.full_at - self.zero_at), 0.0, 1.0)

    def describe(self, names, max_):
        full, zero = ("≥", "≤") if self.full_at > self.zero_at else ("≤", "≥")
        return (f"{_quoted(names, self.indicator)}{full}{fmt(self.full_at)}得满分,"
                f"{zero}{fmt(self.zero_at)}得0分,其间按比例计分")

    def explain(self, v, points, max_, ctx):
        x = v[self.indicator]
        name = ctx.name(self.indicator)
        u = ctx.pct(self.indicator)
        frac = (x - self.zero_at) / (self.full_at - self.zero_at)
        if frac >= 1:
            return f"{name}{fmt(x)}{u},达到满分线{fmt(self.full_at)}{u},得{fmt(points)}分{_of_max(max_)}"
        if frac <= 0:
            return f"{name}{fmt(x)}{u},达到零分线{fmt(self.zero_at)}{u},得0分{_of_max(max_)}"
        return (
            f"{name}{fmt(x)}{u},按({fmt(x)}−{fmt(self.zero_at)})÷({fmt(self.full_at)}−{fmt(self.zero_at)})"
            f"×{fmt(max_)}计,得{fmt(points)}分{_of_max(max_)}"
        )


@rule("ratio")
class Ratio(Rule):
    numerator: str = indicator()
    denominator: str = indicator()
    full_at: float = number_param(1.0, above=0.0)
    on_zero: str = choice("full", "na", "zero")

    def na_mask(self, cols):
        return (cols[self.denominator] == 0) if self.on_zero == "na" else None

    def score(self, cols, max_, groups):
        num, den = cols[self.numerator], cols[self.denominator]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.clip((num / np.where(den == 0, 1.0, den)) / self.full_at, 0.0, 1.0)
        on_zero = {"full": max_, "na": 0.0, "zero": 0.0}[self.on_zero]
        return np.where(den == 0, on_zero, max_ * frac)

    def describe(self, names, max_):
        zero = {"full": "得满分", "na": "本项不适用", "zero": "得0分"}[self.on_zero]
        num, den = _quoted(names, self.numerator), _quoted(names, self.denominator)
        return f"{num}÷{den}达到{fmt(self.full_at)}得满分,不足按比例计分;{den}为0时{zero}"

    def explain(self, v, points, max_, ctx):
        num, den = v[self.numerator], v[self.denominator]
        n_name, d_name = ctx.name(self.numerator), ctx.name(self.denominator)
        if den == 0:
            outcome = {"full": f"视为无需完成,得满分{fmt(points)}分",
                       "na": "本项不适用,不计入适用总分",
                       "zero": "得0分"}[self.on_zero]
            return f"{d_name}为0,{outcome}{_of_max(max_)}"
        ratio = num / den
        return (
            f"{n_name}{fmt(num)}÷{d_name}{fmt(den)}={fmt(ratio)},达标线{fmt(self.full_at)},"
            f"按{fmt(max_)}×min(1,{fmt(ratio)}÷{fmt(self.full_at)})计,得{fmt(points)}分{_of_max(max_)}"
        )


@rule("relative")
class Relative(Rule):
    indicator: str = indicator()

    def score(self, cols, max_, groups):
        x = np.nan_to_num(cols[self.indicator], nan=0.0)
        best = _group_max(x, groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(best > 0, max_ * np.clip(x / np.where(best > 0, best, 1.0), 0.0, 1.0), 0.0)

    def describe(self, names, max_):
        return f"按{_quoted(names, self.indicator)}与本组本季度最高值之比计分"

    def explain(self, v, points, max_, ctx):
        x = v[self.indicator]
        best = ctx.group_max(self.indicator)
        name = ctx.name(self.indicator)
        if not best or best <= 0:
            return f"{name}{fmt(x)},本组本季度最高值为0,得0分{_of_max(max_)}"
        return f"{name}{fmt(x)},本组本季度最高{fmt(best)},按{fmt(x)}÷{fmt(best)}×{fmt(max_)}计,得{fmt(points)}分{_of_max(max_)}"


def _group_max(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """For each element, the largest value among elements of the same group."""
    if len(x) == 0:
        return x
    n_groups = int(groups.max()) + 1
    best = np.full(n_groups, -np.inf)
    np.maximum.at(best, groups, x)
    return best[groups]


@rule("per")
class Per(Rule):
    """Points per case, up to the item's max; without a max (a penalty) there is no cap."""

    indicator: str = indicator()
    per: float = number_param(lo=0.0)
    penalty_ok = True

    def score(self, cols, max_, groups):
        raw = self.per * cols[self.indicator]
        return raw if max_ is None else np.minimum(raw, max_)

    def describe(self, names, max_):
        if max_ is None:
            return f"{_quoted(names, self.indicator)}每次扣{fmt(self.per)}分,不设上限"
        return f"{_quoted(names, self.indicator)}每次得{fmt(self.per)}分,最多{fmt(max_)}分"

    def explain(self, v, points, max_, ctx):
        n = v[self.indicator]
        name = ctx.name(self.indicator)
        if max_ is None:  # penalty (重大扣分项): no cap
            return f"{name}{fmt(n)}次,每次扣{fmt(self.per)}分,扣{fmt(abs(points))}分(不设上限)"
        capped = ",已达上限" if self.per * n > max_ else ""
        return f"{name}{fmt(n)}次,每次{fmt(self.per)}分{capped},得{fmt(points)}分(上限{fmt(max_)}分)"


@rule("manual")
class Manual(Rule):
    penalty_ok = True
    pending_when_unadjusted = True

    def score(self, cols, max_, groups):
        return np.zeros(len(groups))

    def describe(self, names, max_):
        return "由考评组评定(核定录入),未评定前计0分"

    def explain(self, v, points, max_, ctx):
        return f"待考评组评定,暂计0分{_of_max(max_)}"


def explain_missing(missing: list[str], max_: float | None, ctx: Context) -> str:
    names = "、".join(f"「{ctx.name(c)}」" for c in missing)
    return f"未报送{names},计0分{_of_max(max_)}"


def explain_na(na: list[str], max_: float | None, ctx: Context) -> str:
    names = "、".join(f"「{ctx.name(c)}」" for c in na)
    return f"{names}不适用,本项不计分,适用总分相应减少{fmt(max_)}分"
