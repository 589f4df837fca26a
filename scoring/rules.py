"""The rule types of a scheme: one registered class each, as pandera registers its checks.

A rule scores a whole column of units at once (``score``) and explains one unit's points in a
Chinese sentence a person can check by hand (``explain``). Missing and not-applicable values
are handled by the engine before a rule sees them, except where the rule itself decides
(``ratio`` with a zero denominator).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, ClassVar

import numpy as np

RULES: dict[str, type] = {}


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


class Rule:
    """Base of every rule type: the parameters are the dataclass fields."""

    type_name: ClassVar[str]
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    indicator_params: ClassVar[tuple[str, ...]] = ("indicator",)

    def reads(self) -> list[str]:
        return [getattr(self, p) for p in self.indicator_params]

    def na_mask(self, cols: dict[str, np.ndarray]) -> np.ndarray | None:
        """Units for which the rule itself finds the item not applicable."""
        return None

    def score(self, cols: dict[str, np.ndarray], max_: float, groups: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def explain(self, v: dict[str, float], points: float, max_: float | None, ctx: Context) -> str:
        raise NotImplementedError

    @classmethod
    def params(cls) -> list[tuple[str, object, bool]]:
        """(name, default, required) of each parameter."""
        from dataclasses import MISSING

        return [(f.name, f.default, f.default is MISSING) for f in fields(cls)]


def _of_max(max_: float | None) -> str:
    return f"(满分{fmt(max_)}分)" if max_ is not None else ""


@rule("boolean")
class Boolean(Rule):
    indicator: str

    def score(self, cols, max_, groups):
        return np.where(cols[self.indicator] > 0, max_, 0.0)

    def explain(self, v, points, max_, ctx):
        name = ctx.name(self.indicator)
        if v[self.indicator] > 0:
            return f"{name}:是,得{fmt(points)}分{_of_max(max_)}"
        return f"{name}:否,不得分,得0分{_of_max(max_)}"


@rule("deduct")
class Deduct(Rule):
    indicator: str
    per: float
    floor: str = "item"
    choices = {"floor": ("item", "section")}

    def score(self, cols, max_, groups):
        raw = max_ - self.per * cols[self.indicator]
        return raw if self.floor == "section" else np.maximum(raw, 0.0)

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
    indicator: str
    tiers: tuple

    def score(self, cols, max_, groups):
        x = cols[self.indicator]
        out = np.zeros_like(x, dtype=float)
        for threshold, pts in reversed(self.tiers):  # highest threshold applied last wins
            out = np.where(x >= threshold, float(pts), out)
        return out

    def explain(self, v, points, max_, ctx):
        x = v[self.indicator]
        name = ctx.name(self.indicator)
        steps = "、".join(f"≥{fmt(t)}得{fmt(p)}分" for t, p in self.tiers)
        for threshold, _ in self.tiers:
            if x >= threshold:
                return f"{name}{fmt(x)},达到「≥{fmt(threshold)}」档({steps}),得{fmt(points)}分{_of_max(max_)}"
        lowest = self.tiers[-1][0]
        return f"{name}{fmt(x)},未达到最低档{fmt(lowest)}({steps}),得0分{_of_max(max_)}"


@rule("rate")
class Rate(Rule):
    indicator: str
    full_at: float = 100.0
    zero_at: float = 0.0

    def score(self, cols, max_, groups):
        x = cols[self.indicator]
        return max_ * np.clip((x - self.zero_at) / (self.full_at - self.zero_at), 0.0, 1.0)

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
    numerator: str
    denominator: str
    full_at: float = 1.0
    on_zero: str = "full"
    choices = {"on_zero": ("full", "na", "zero")}
    indicator_params = ("numerator", "denominator")

    def na_mask(self, cols):
        return (cols[self.denominator] == 0) if self.on_zero == "na" else None

    def score(self, cols, max_, groups):
        num, den = cols[self.numerator], cols[self.denominator]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.clip((num / np.where(den == 0, 1.0, den)) / self.full_at, 0.0, 1.0)
        on_zero = {"full": max_, "na": 0.0, "zero": 0.0}[self.on_zero]
        return np.where(den == 0, on_zero, max_ * frac)

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
    indicator: str

    def score(self, cols, max_, groups):
        x = np.nan_to_num(cols[self.indicator], nan=0.0)
        best = _group_max(x, groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(best > 0, max_ * np.clip(x / np.where(best > 0, best, 1.0), 0.0, 1.0), 0.0)

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
    indicator: str
    per: float

    def score(self, cols, max_, groups):
        raw = self.per * cols[self.indicator]
        return raw if max_ is None else np.minimum(raw, max_)

    def explain(self, v, points, max_, ctx):
        n = v[self.indicator]
        name = ctx.name(self.indicator)
        if max_ is None:  # penalty (重大扣分项): no cap
            return f"{name}{fmt(n)}次,每次扣{fmt(self.per)}分,扣{fmt(abs(points))}分(不设上限)"
        capped = ",已达上限" if self.per * n > max_ else ""
        return f"{name}{fmt(n)}次,每次{fmt(self.per)}分{capped},得{fmt(points)}分(上限{fmt(max_)}分)"


@rule("manual")
class Manual(Rule):
    indicator_params = ()

    def score(self, cols, max_, groups):
        raise AssertionError("manual items are scored from adjustments by the engine")

    def explain(self, v, points, max_, ctx):
        return f"待考评组评定,暂计0分{_of_max(max_)}"


def explain_missing(missing: list[str], max_: float | None, ctx: Context) -> str:
    names = "、".join(f"「{ctx.name(c)}」" for c in missing)
    return f"未报送{names},计0分{_of_max(max_)}"


def explain_na(na: list[str], max_: float | None, ctx: Context) -> str:
    names = "、".join(f"「{ctx.name(c)}」" for c in na)
    return f"{names}不适用,本项不计分,适用总分相应减少{fmt(max_)}分"
