"""Rendering helpers shared by the pages: number formats, grade colours, user text kept as text.

Users' text (unit names, reasons, file names) is data. Streamlit renders Markdown in titles,
captions, alerts, ``st.table`` cells and labels, so every such string that carries user text goes
through :func:`plain` (each ASCII punctuation mark backslash-escaped: no link, image, emphasis,
colour directive or formula survives); grids (``st.dataframe``) show cells as text already.
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from scoring import accounts
from scoring.errors import KaopingError, Problems
from scoring.labels import GRADE_BG, GRADE_COLORS

from . import state

log = logging.getLogger("kaoping.dashboard")

OWN_ROW_BG = "#fff8c5"
_MARKDOWN = re.compile(r"([!-/:-@\[-`{-~])")   # every ASCII punctuation mark
_LINE_BREAKS = re.compile(r"[\r\n]+")


def plain(text) -> str:
    """``text`` as literal text inside Streamlit Markdown (one line; nothing is interpreted)."""
    return _MARKDOWN.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))


def plain_cells(df: pd.DataFrame) -> pd.DataFrame:
    """A frame for ``st.table`` (which renders Markdown in cells): text cells through :func:`plain`."""
    out = df.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]):
            out[c] = pd.Series([plain(v) if isinstance(v, str) else v for v in out[c]], index=out.index, dtype=object)
    out.columns = [plain(c) for c in out.columns]
    return out


def table(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The columns named in ``columns`` (code -> Chinese label), renamed, in that order."""
    return df[list(columns)].rename(columns=columns).reset_index(drop=True)


def grade_style(value) -> str:
    if value in GRADE_COLORS:
        return f"background-color: {GRADE_BG[value]}; color: {GRADE_COLORS[value]}; font-weight: 600"
    return ""


def styled(df: pd.DataFrame, *, grade_col: str | None = "等级", highlight: pd.Series | None = None,
           decimals: int = 2):
    """A Styler: grade badge colours, 2-decimal numbers, an optional highlighted row mask."""
    sty = df.style
    floats = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    sty = sty.format(na_rep="—")  # never "None" or "nan" on screen
    if floats:
        sty = sty.format({c: f"{{:.{decimals}f}}" for c in floats}, na_rep="—")
    if grade_col and grade_col in df.columns:
        sty = sty.map(grade_style, subset=[grade_col])
    if highlight is not None and highlight.any():
        mask = highlight.to_numpy()

        def row_style(row):
            return [f"background-color: {OWN_ROW_BG}; font-weight: 600" if mask[row.name] else ""] * len(row)

        sty = sty.apply(row_style, axis=1)
    return sty


def grade_badges(df: pd.DataFrame, column: str) -> tuple[pd.DataFrame, dict]:
    """The grade column as coloured badges through column_config (a Styler costs ~0.1 s per 1,000 rows)."""
    df = df.copy()
    df[column] = [[g] if isinstance(g, str) and g else [] for g in df[column]]
    names = [g for g in GRADE_COLORS if g in set(df[column].explode().dropna())] or list(GRADE_COLORS)
    config = {column: st.column_config.MultiselectColumn(
        column, options=names, color=[GRADE_COLORS[g] for g in names], width="small")}
    return df, config


def highlighted(df: pd.DataFrame, mask: pd.Series):
    """A Styler that marks the rows of ``mask`` (a unit user's own row)."""
    return styled(df, grade_col=None, highlight=mask)


def fmt2(x) -> str:
    return "—" if x is None or pd.isna(x) else f"{float(x):.2f}"


def demo_banner() -> None:
    """The 演示模式 notice (every page, when the database is a demo)."""
    if accounts.is_demo(state.store()):
        st.warning("演示模式:当前为演示数据和公开的演示账号,请勿录入真实数据。", icon=":material/science:")


def demo_accounts_table() -> None:
    rows = accounts.demo_accounts(state.store())
    st.table(plain_cells(pd.DataFrame(rows, columns=["用户名", "密码", "说明"])).style.hide(axis="index"))


@contextmanager
def guarded():
    """Show a library error's message, or a short Chinese message for anything else; never a traceback."""
    try:
        yield
    except KaopingError as exc:
        st.error(plain(exc))
    except Exception:  # noqa: BLE001 - the page must not show a traceback
        log.exception("dashboard page failed")
        st.error("页面出错了,请刷新后重试;如仍有问题请联系政务公开办(错误已记录)。")


def no_data(message: str = "暂无考评数据:请先在「数据上传」页上传季度数据。") -> None:
    st.info(message)
    st.stop()


def action(fn, *args, **kwargs):
    """Run a library action; on a KaopingError show its message (and every problem) and return None."""
    try:
        return fn(*args, **kwargs)
    except Problems as exc:
        st.error(plain(exc.title))
        table = getattr(exc, "table", None)
        if table is None:
            table = pd.DataFrame({"问题": [str(p) for p in exc.problems]})
        st.dataframe(table, hide_index=True, width="stretch")
        return None
    except KaopingError as exc:
        st.error(plain(exc))
        return None


def flash(key: str) -> None:
    """Show (once) a success message a previous run left under ``key``."""
    if key in st.session_state:
        st.success(plain(st.session_state.pop(key)))


def nullable_numbers(df: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, dict]:
    """Columns that may be empty, as right-aligned 2-decimal text with "—" (a grid shows "None" otherwise)."""
    df = df.copy()
    for c in columns:
        df[c] = [("—" if pd.isna(v) else f"{float(v):.2f}") for v in df[c]]
    return df, {c: st.column_config.TextColumn(c, alignment="right") for c in columns}
