"""Quarters: parsing the spellings people type, and stepping between them."""
from __future__ import annotations

import contextlib
import datetime
import os
import re

from .errors import InputError
from .readers import halfwidth

_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}

# ASCII digits only, after full-width forms are folded: \d (or NFKC) would also take ٢٠٢٥ or ²
_PATTERNS = (
    re.compile(r"^([0-9]{4})-?Q([1-4])$", re.IGNORECASE),
    re.compile(r"^([0-9]{4})年第?([一二三四1-4])季度$"),
)


def parse_period(text: object) -> str:
    """Return the canonical form ``2025Q3`` of any accepted spelling, else raise InputError."""
    raw = "" if text is None else str(text)
    s = re.sub(r"\s+", "", halfwidth(raw))  # "2025 Q3", "2025年 第三季度", "２０２５Ｑ３"
    for pattern in _PATTERNS:
        m = pattern.match(s)
        if m:
            return f"{m.group(1)}Q{_CN_DIGITS[m.group(2)]}"
    raise InputError(f"季度格式不正确:「{raw}」,应写作 2025Q3、2025-Q3 或 2025年第三季度")


def split(period: str) -> tuple[int, int]:
    return int(period[:4]), int(period[5])


def period_index(period: str) -> int:
    year, q = split(period)
    return year * 4 + q - 1


def from_index(index: int) -> str:
    return f"{index // 4}Q{index % 4 + 1}"


def previous(period: str) -> str:
    return from_index(period_index(period) - 1)


def quarters_between(first: str, last: str) -> list[str]:
    return [from_index(i) for i in range(period_index(first), period_index(last) + 1)]


def year_quarters(year: int) -> list[str]:
    return [f"{year}Q{q}" for q in range(1, 5)]


def today():
    """The system date, or ``KAOPING_TODAY=YYYY-MM-DD`` (tests and demos): every "today" of the
    system (deadlines, 逾期未整改, the lifecycle's dates) comes from here."""
    fixed = os.environ.get("KAOPING_TODAY", "").strip()
    if fixed:
        try:
            return datetime.date.fromisoformat(fixed)
        except ValueError:
            raise InputError(f"环境变量 KAOPING_TODAY「{fixed}」不是日期(应为 2026-01-10 这样的格式)") from None
    return datetime.date.today()


@contextlib.contextmanager
def today_as(day):
    """Within the block :func:`today` is ``day`` (seeding the demo on its own day)."""
    before = os.environ.get("KAOPING_TODAY")
    os.environ["KAOPING_TODAY"] = day.isoformat()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("KAOPING_TODAY", None)
        else:
            os.environ["KAOPING_TODAY"] = before


def live_on_recorded_day(store) -> None:
    """Make the day a database records as its own (the demo's ``demo_today``) this process's today;
    the app and the command line call this when they open a database. A real database, or
    ``KAOPING_TODAY`` already set, leaves today alone."""
    day = store.meta("demo_today")
    if day and not os.environ.get("KAOPING_TODAY"):
        os.environ["KAOPING_TODAY"] = day


def current_quarter(today=None) -> str:
    """The quarter of ``today`` (default: now); the one just ended is ``previous(current_quarter())``."""
    today = today or datetime.date.today()
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


def label(period: str) -> str:
    """``2025Q3`` -> ``2025年第三季度``."""
    year, q = split(period)
    return f"{year}年第{'一二三四'[q - 1]}季度"
