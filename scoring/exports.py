"""CSV and XLSX exports that are safe to open in Excel or WPS.

Unit names, reasons and file names are user-supplied: a cell beginning with ``= + - @`` (or a
tab or carriage return) would be run as a formula by a spreadsheet ("CSV injection"), so such
strings get a leading ``'``. XLSX cells are always written as text, never as formulas or links.
HTML in a cell stays the same characters: nothing here renders or entity-escapes it.
"""
from __future__ import annotations

import io
import math
import re
from datetime import date, datetime

import numpy as np
import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
# Full-width forms that some spreadsheets (WPS) also treat as formula starts.
FORMULA_PREFIXES += ("\uff1d", "\uff0b", "\uff0d", "\uff20")


def escape_cell(value):
    """``value`` with a leading ``'`` if it is a string a spreadsheet would treat as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    if any(name is not None for name in df.index.names):
        df = df.reset_index()
    if isinstance(df.columns, pd.MultiIndex):
        df = df.copy()
        df.columns = [" / ".join(str(p) for p in col if str(p)) for col in df.columns]
    return df


def _escaped(df: pd.DataFrame) -> pd.DataFrame:
    df = _flat(df)
    out = pd.DataFrame({i: df.iloc[:, i].astype(object).map(escape_cell) for i in range(df.shape[1])},
                       index=range(len(df)))
    out.columns = [escape_cell(str(c)) for c in df.columns]
    return out


def to_csv_text(df: pd.DataFrame, lineterminator: str = "\n") -> str:
    """CSV text with every string cell escaped (numbers stay numbers, so −1 is not touched)."""
    return _escaped(df).to_csv(index=False, lineterminator=lineterminator)


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 with a BOM (so Excel reads the Chinese right), CRLF lines, every string escaped."""
    return to_csv_text(df, "\r\n").encode("utf-8-sig")


_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def _sheet_name(name, taken: set[str]) -> str:
    base = _BAD_SHEET_CHARS.sub("_", str(name)).strip("'").strip() or "Sheet"
    base = base[:31]
    candidate, n = base, 2
    while candidate.lower() in taken:
        suffix = f"({n})"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(candidate.lower())
    return candidate


def _width(value) -> int:
    text = "" if value is None else str(value)
    return sum(2 if ord(c) > 0x2E7F else 1 for c in text)


def _missing(value) -> bool:
    if value is None or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, (str, bytes)) else False
    except (TypeError, ValueError):
        return False


def to_xlsx_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    """One workbook, a sheet per DataFrame: bold frozen header row, text cells never formulas."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {
        "in_memory": True,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "nan_inf_to_errors": False,
    })
    header = wb.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1, "text_wrap": True})
    as_date = wb.add_format({"num_format": "yyyy-mm-dd"})
    as_datetime = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    taken: set[str] = set()
    for name, df in (sheets or {"Sheet": pd.DataFrame()}).items():
        ws = wb.add_worksheet(_sheet_name(name, taken))
        df = _escaped(df)
        widths = [_width(c) for c in df.columns]
        for j, col in enumerate(df.columns):
            ws.write_string(0, j, col, header)
        for i, row in enumerate(df.itertuples(index=False, name=None), start=1):
            for j, value in enumerate(row):
                if _missing(value):
                    ws.write_blank(i, j, None)
                    continue
                if isinstance(value, np.generic):
                    value = value.item()
                if isinstance(value, bool):
                    ws.write_boolean(i, j, value)
                elif isinstance(value, (int, float)):
                    if math.isinf(value):
                        ws.write_string(i, j, str(value))
                    else:
                        ws.write_number(i, j, value)
                elif isinstance(value, pd.Timestamp):
                    ws.write_datetime(i, j, value.to_pydatetime().replace(tzinfo=None), as_datetime)
                elif isinstance(value, datetime):
                    ws.write_datetime(i, j, value.replace(tzinfo=None), as_datetime)
                elif isinstance(value, date):
                    ws.write_datetime(i, j, datetime(value.year, value.month, value.day), as_date)
                else:
                    value = escape_cell(value if isinstance(value, str) else str(value))
                    ws.write_string(i, j, value)
                widths[j] = max(widths[j], _width(value))
        for j, w in enumerate(widths):
            ws.set_column(j, j, min(max(w + 2, 8), 60))
        ws.freeze_panes(1, 0)
    wb.close()
    return buf.getvalue()
