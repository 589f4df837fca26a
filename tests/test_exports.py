"""Exports: formula escaping (CSV injection), BOM for Excel, text stays text."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime

import numpy as np
import openpyxl
import pandas as pd
import pytest

from scoring.exports import escape_cell, to_csv_bytes, to_xlsx_bytes

EVIL = ["=HYPERLINK(\"http://x\",\"点我\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
        "=cmd|' /C calc'!A0", "＝1+1"]
HTML = "<script>alert('x')</script>市<b>教育</b>局&amp;"


def frame():
    return pd.DataFrame({
        "单位代码": ["U1", "U2", "U3"],
        "单位名称": [HTML, "=1+1", "市公安局"],
        "得分": [91.5, np.nan, -3.0],
        "名次": pd.array([1, 2, None], dtype="Int64"),
        "理由": ["@admin", None, "正常说明"],
        "时间": [datetime(2025, 1, 2, 3, 4, 5), pd.NaT, datetime(2025, 2, 1)],
    })


@pytest.mark.parametrize("value", EVIL)
def test_escape_cell_prefixes_formula_starts(value):
    assert escape_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["市教育局", "U1", "2025Q1", "", " =1", "'=1", HTML])
def test_escape_cell_leaves_ordinary_text(value):
    assert escape_cell(value) == value


@pytest.mark.parametrize("value", [-3, -2.5, 0, None, True, date(2025, 1, 1)])
def test_escape_cell_leaves_non_strings(value):
    assert escape_cell(value) is value


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_has_bom_and_escapes_every_string():
    data = to_csv_bytes(frame())
    assert data.startswith(b"\xef\xbb\xbf")
    rows = read_csv(data)
    assert rows[0] == ["单位代码", "单位名称", "得分", "名次", "理由", "时间"]
    assert rows[1][1] == HTML                    # HTML stays the same characters
    assert rows[2][1] == "'=1+1"
    assert rows[1][4] == "'@admin"
    assert rows[3][2] == "-3.0"                  # a negative number is a number, not escaped


def test_csv_escapes_every_evil_value_and_headers():
    df = pd.DataFrame({"=危险表头": EVIL, "n": range(len(EVIL))})
    rows = read_csv(to_csv_bytes(df))
    assert rows[0][0] == "'=危险表头"
    assert [r[0] for r in rows[1:]] == ["'" + v for v in EVIL]
    for r in rows[1:]:
        assert r[0][0] == "'"


def test_csv_quotes_commas_and_newlines():
    df = pd.DataFrame({"a": ['x,"y"\nz']})
    assert read_csv(to_csv_bytes(df))[1] == ['x,"y"\nz']


def test_csv_keeps_named_index():
    df = frame().set_index("单位代码")
    assert read_csv(to_csv_bytes(df))[0][0] == "单位代码"


def test_csv_does_not_modify_input():
    df = frame()
    before = df.copy()
    to_csv_bytes(df)
    to_xlsx_bytes({"a": df})
    pd.testing.assert_frame_equal(df, before)


def load(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data))


def test_xlsx_cells_are_text_not_formulas():
    df = pd.DataFrame({"值": EVIL})
    ws = load(to_xlsx_bytes({"排名": df}))["排名"]
    for i, v in enumerate(EVIL, start=2):
        cell = ws.cell(row=i, column=1)
        assert cell.data_type == "s"
        assert isinstance(cell.value, str) and cell.value.startswith("'")
        # xlsxwriter stores a CR as the OOXML escape _x000D_, which Excel turns back into CR.
        assert cell.value.replace("_x000D_", "\r") == "'" + v


def test_xlsx_raw_xml_has_no_formula():
    import zipfile

    data = to_xlsx_bytes({"s": pd.DataFrame({"v": EVIL + ["=A1", "http://example.com"]})})
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        assert "<f>" not in sheet and "<f " not in sheet
        assert "hyperlink" not in sheet.lower()


def test_xlsx_types_header_freeze_and_html_text():
    wb = load(to_xlsx_bytes({"结果": frame(), "说明": pd.DataFrame({"x": ["a"]})}))
    assert wb.sheetnames == ["结果", "说明"]
    ws = wb["结果"]
    assert ws.freeze_panes == "A2"
    assert [c.value for c in ws[1]] == ["单位代码", "单位名称", "得分", "名次", "理由", "时间"]
    assert ws["B2"].value == HTML and ws["B2"].data_type == "s"
    assert ws["B3"].value == "'=1+1"
    assert ws["C2"].value == 91.5 and ws["C3"].value is None and ws["C4"].value == -3
    assert ws["D2"].value == 1 and ws["D4"].value is None
    assert ws["E2"].value == "'@admin" and ws["E3"].value is None
    assert ws["F2"].value == datetime(2025, 1, 2, 3, 4, 5) and ws["F3"].value is None


def test_xlsx_sheet_names_are_made_valid_and_unique():
    sheets = {"a/b:c*?[x]": pd.DataFrame({"v": [1]}), "A/B:C*?[X]": pd.DataFrame({"v": [2]}),
              "很长的名字" * 10: pd.DataFrame({"v": [3]}), "'=evil'": pd.DataFrame({"v": [4]})}
    names = load(to_xlsx_bytes(sheets)).sheetnames
    assert len(names) == 4 and len(set(n.lower() for n in names)) == 4
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names)


def test_xlsx_empty_frame_and_unit_name_from_store(tmp_path):
    from scoring.cli import CLI_OFFICE
    from scoring.store import Store
    from scoring.units import all_units, save_units

    with Store(tmp_path / "x.duckdb") as store:
        save_units(store, pd.DataFrame([("U1", HTML, "市直部门", None), ("U2", "=2+2", "县区", None)],
                                       columns=["unit_code", "unit_name", "group", "parent_code"]), CLI_OFFICE)
        units = all_units(store)
    ws = load(to_xlsx_bytes({"单位": units, "空": units.iloc[0:0]}))["单位"]
    names = {ws.cell(row=r, column=2).value for r in range(2, 4)}
    assert names == {HTML, "'=2+2"}
    assert read_csv(to_csv_bytes(units))[1:] and HTML in to_csv_bytes(units).decode("utf-8-sig")
