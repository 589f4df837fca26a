"""Hostile and implausible input: XLSX bombs, absurd numbers, look-alike digits, a broken registry.

Each test is the regression test of one hole that was open: it failed before the fix.
"""
from __future__ import annotations

import io
import re
import resource
import subprocess
import sys
import time
import zipfile

import pandas as pd
import pytest

from scoring import readers
from scoring.cli import CLI_OFFICE
from scoring.errors import PermissionDenied, Problems
from scoring.ingest import check_upload
from scoring.permissions import User
from scoring.store import Store
from scoring.units import all_units, parse_registry, save_units
from tests.support import ROOT, setup_store


@pytest.fixture(scope="module")
def store():
    s = setup_store(Store(":memory:"))
    yield s
    s.close()


# -- hand-written XLSX files (no <dimension> element) --------------------------------------------
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RNS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006"
PARTS = {
    "[Content_Types].xml":
        f'<Types xmlns="{PKG}/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>',
    "_rels/.rels":
        f'<Relationships xmlns="{PKG}/relationships">'
        f'<Relationship Id="rId1" Type="{RNS}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml":
        f'<workbook xmlns="{NS}" xmlns:r="{RNS}"><sheets><sheet name="数据" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels":
        f'<Relationships xmlns="{PKG}/relationships">'
        f'<Relationship Id="rId1" Type="{RNS}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{RNS}/styles" Target="styles.xml"/></Relationships>',
    # style 1 is a fill colour: a cell with s="1" and no value is an empty styled cell
    "xl/styles.xml":
        f'<styleSheet xmlns="{NS}"><fonts count="1"><font/></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="solid"><fgColor rgb="FFFFFF00"/></patternFill></fill></fills>'
        '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="0" fillId="1" applyFill="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>',
}


def _text(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


HEAD = '<row r="1">' + _text("A1", "unit_code") + _text("B1", "period") + _text("C1", "items") + "</row>"
ONE_ROW = '<row r="2">' + _text("A2", "SZ001") + _text("B2", "2025Q3") + '<c r="C2"><v>5</v></c></row>'


def xlsx(rows=(), *, head: str = HEAD + ONE_ROW, level: int = 6) -> bytes:
    """A workbook whose first sheet is ``head`` followed by the ``rows`` (XML strings), streamed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        for name, xml in PARTS.items():
            z.writestr(name, '<?xml version="1.0" encoding="UTF-8"?>' + xml)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}"><sheetData>{head}'.encode())
            for row in rows:
                sheet.write(row.encode())
            sheet.write(b"</sheetData></worksheet>")
    return buf.getvalue()


def _memory_mb(field: str) -> float:
    status = open("/proc/self/status").read()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1)) / 1024


def measured(fn):
    """(result, seconds, MB the resident memory grew at its peak during ``fn``).

    Linux lets a process reset its peak (VmHWM) through /proc/self/clear_refs; elsewhere the
    growth of ru_maxrss is used, which can only understate."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before, peak = _memory_mb("VmRSS"), lambda: _memory_mb("VmHWM")
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # noqa: E731
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    return out, seconds, peak() - before


def _problems(checked) -> list[tuple]:
    return [(r.row, r.column, r.value, r.message) for r in checked.problems.itertuples()]


# -- 1. XLSX bombs -------------------------------------------------------------------------------
def test_xlsx_200k_styled_rows_at_column_xfd_is_read_in_bounded_time_and_memory(store):
    """~1 MB: 200,000 rows each with one styled empty cell at XFD. It used to pad every row to
    16,384 cells (GBs, minutes); it is only formatting, so the one data row is read."""
    data = xlsx(f'<row r="{i}"><c r="XFD{i}" s="1"/></row>' for i in range(3, 200_003))
    assert len(data) < 1_500_000
    checked, seconds, grown = measured(lambda: check_upload(store, data, "styled.xlsx", CLI_OFFICE))
    print(f"200k styled rows: {seconds:.2f} s, +{grown:.0f} MB")
    assert checked.ok, _problems(checked)
    assert checked.values["value"].tolist() == [5] and checked.submissions["row_no"].tolist() == [2]
    assert seconds < 5 and grown < 300


def test_xlsx_2000_rows_of_16384_styled_cells_is_refused_in_bounded_time_and_memory(store):
    """2,000 rows × 16,384 styled cells (33 M cells) took 290 s and was accepted."""
    wide = '<c s="1"/>' * 16_384
    data = xlsx((f'<row r="{i}">{wide}</row>' for i in range(3, 2_003)), level=1)
    checked, seconds, grown = measured(lambda: check_upload(store, data, "wide.xlsx", CLI_OFFICE))
    print(f"2,000 × 16,384 styled cells: {seconds:.2f} s, +{grown:.0f} MB")
    assert _problems(checked) == [(3, "", "", f"该行有超过 {readers.MAX_COLS} 个单元格(含只设置了格式的空白单元格),"
                                              "无法读取:请删除表格右侧多余的列,或另存为 CSV 后重新上传")]
    assert seconds < 5 and grown < 300


def test_xlsx_values_far_to_the_right_are_refused_in_bounded_time(store):
    data = xlsx(f'<row r="{i}"><c r="XFD{i}"><v>1</v></c></row>' for i in range(3, 200_003))
    checked, seconds, grown = measured(lambda: check_upload(store, data, "far.xlsx", CLI_OFFICE))
    print(f"200k values at XFD: {seconds:.2f} s, +{grown:.0f} MB")
    assert _problems(checked) == [(3, "XFD", "1", f"第16384列有内容,超出可读取的 {readers.MAX_COLS} 列:"
                                                  "请删除表格右侧多余的内容后重新上传")]
    assert seconds < 5 and grown < 300


def test_xlsx_cell_budget(store, monkeypatch):
    """The whole sheet, styled blanks included, is read within a budget of cells."""
    monkeypatch.setattr(readers, "MAX_SHEET_CELLS", 1_000)
    data = xlsx(f'<row r="{i}"><c r="D{i}" s="1"/></row>' for i in range(3, 2_000))
    checked = check_upload(store, data, "budget.xlsx", CLI_OFFICE)
    assert _problems(checked) == [(None, "", "", "工作表的单元格超过 1,000 个(含只设置了格式的空白单元格),无法读取:"
                                                 "请删除多余的行和列、拆分文件,或另存为 CSV 后重新上传")]


def test_csv_wide_header_over_many_short_rows_is_refused_in_bounded_time_and_memory(store):
    """3 MB: a 993-column header over 199,000 short rows was padded to 198 M cells (1.9 GB, 20 s)."""
    header = "unit_code,period,items," + ",".join(f"x{j}" for j in range(990))
    data = (header + "\n" + "SZ001,2025Q3,1\n" * 199_000).encode()
    checked, seconds, grown = measured(lambda: check_upload(store, data, "wide.csv", CLI_OFFICE))
    print(f"993 columns × 199,000 rows: {seconds:.2f} s, +{grown:.0f} MB")
    assert _problems(checked) == [(None, "", "", f"表格超过 {readers.MAX_CELLS:,} 个单元格(199000行 × 993列),请拆分后上传")]
    assert seconds < 5 and grown < 300


def test_xlsx_data_right_of_the_header_is_still_reported(store):
    head = HEAD + '<row r="2">' + _text("A2", "SZ001") + _text("B2", "2025Q3") + '<c r="C2"><v>5</v></c>' \
        + '<c r="F2"><v>7</v></c></row>'
    checked = check_upload(store, xlsx(head=head), "extra.xlsx", CLI_OFFICE)
    assert _problems(checked) == [(1, "(第6列)", "", "该列有数据但没有表头,无法识别")]


def test_xlsx_reads_types_like_excel_writes_them(store):
    """Shared strings, booleans, dates, percent formats and a second sheet that is not read."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["unit_code", "period", "has_group", "reply_rate", "items", "备注"])
    ws.append(["SZ001", "2025Q3", True, 0.95, 1234, pd.Timestamp("2025-09-30").to_pydatetime()])
    ws["D2"].number_format = "0%"
    wb.create_sheet("说明").append(["不读"])
    buf = io.BytesIO()
    wb.save(buf)
    table = readers.read_upload(buf.getvalue(), "t.xlsx", {"unit_code"})
    assert table.ok and table.header == ["unit_code", "period", "has_group", "reply_rate", "items", "备注"]
    assert table.cells.tolist() == [["SZ001", "2025Q3", "true", "95%", "1234", "2025-09-30"]]


# -- 2. plausibility ---------------------------------------------------------------------------------
def _csv(header: str, *rows: str) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def test_implausible_numbers_are_problems_naming_row_column_and_value(store):
    data = _csv("unit_code,period,items,links,satisfaction,apps_new",
                "SZ001,2025Q3,1e308,10000001,1e400,10000000",
                "SZ002,2025Q3,10000000,3,-1e10,1.5e7")
    checked = check_upload(store, data, "big.csv", CLI_OFFICE)
    assert [(r, c, v) for r, c, v, _ in _problems(checked)] == [
        (2, "items", "1e308"), (2, "links", "10000001"), (2, "satisfaction", "1e400"),
        (3, "satisfaction", "-1e10"), (3, "apps_new", "1.5e7")]
    messages = [m for *_, m in _problems(checked)]
    assert "计数超出合理范围(不能大于 10,000,000)" in messages[0] and "网站错链数" in messages[1]
    assert "不是有限的数字" in messages[2] and "超出合理范围" in messages[3]


def test_a_number_type_beyond_a_billion_is_refused(store):
    from scoring.schemes import save_scheme

    s = setup_store(Store(":memory:"))
    text = (ROOT / "tests" / "uploads" / "scheme.yaml").read_text("utf-8")
    save_scheme(s, text.replace("type: number, min: -10, max: 10", "type: number"), CLI_OFFICE)
    ok = check_upload(s, _csv("unit_code,period,satisfaction", "SZ001,2025Q3,-1000000000"), "a.csv", CLI_OFFICE)
    assert ok.ok and ok.values["value"].tolist() == [-1e9]
    bad = check_upload(s, _csv("unit_code,period,satisfaction", "SZ001,2025Q3,1000000001"), "b.csv", CLI_OFFICE)
    assert _problems(bad) == [(2, "satisfaction", "1000000001",
                               "指标「满意度得分」超出合理范围(应在 -1,000,000,000 到 1,000,000,000 之间)")]
    s.close()


# -- 3. huge integers ----------------------------------------------------------------------------------
HUGE = ["1" * 309, "9" * 400, "7" * 5000]


@pytest.mark.parametrize("digits", HUGE, ids=lambda d: f"{len(d)}-digits")
def test_huge_integers_are_problems_not_tracebacks(store, digits):
    data = _csv("unit_code,period,self_score,items,satisfaction", f"SZ001,2025Q3,{digits},{digits},{digits}",
                "SZ002,2025Q3,80,5,1")
    checked = check_upload(store, data, "huge.csv", CLI_OFFICE)
    assert [(r, c) for r, c, _, _ in _problems(checked)] == [(2, "self_score"), (2, "items"), (2, "satisfaction")]
    long = _csv("unit_code,period,indicator,value", f"SZ001,2025Q3,items,{digits}", f"SZ001,2025Q3,自评分,{digits}")
    assert [(r, c) for r, c, _, _ in _problems(check_upload(store, long, "huge_long.csv", CLI_OFFICE))] == [
        (2, "value"), (3, "value")]


def test_huge_integer_in_an_xlsx_cell_is_a_problem(store):
    head = HEAD + '<row r="2">' + _text("A2", "SZ001") + _text("B2", "2025Q3") + f'<c r="C2"><v>{"1" * 309}</v></c></row>'
    checked = check_upload(store, xlsx(head=head), "huge.xlsx", CLI_OFFICE)
    assert [(r, c, v[:5]) for r, c, v, _ in _problems(checked)] == [(2, "items", "11111")]


# -- 4. only ASCII and full-width digits --------------------------------------------------------------
@pytest.mark.parametrize("cell", ["١٢", "²", "۱۲", "१२", "12\u0663"])
def test_lookalike_digits_are_not_numbers(store, cell):
    checked = check_upload(store, _csv("unit_code,period,items,self_score", f"SZ001,2025Q3,{cell},{cell}"),
                           "digits.csv", CLI_OFFICE)
    assert [(r, c, v) for r, c, v, _ in _problems(checked)] == [(2, "items", cell), (2, "self_score", cell)]


def test_fullwidth_digits_still_count(store):
    checked = check_upload(store, _csv("unit_code,period,items,reply_rate,self_score",
                                       "SZ001,２０２５Ｑ３,１２,９５％,８８．５"), "fw.csv", CLI_OFFICE)
    assert checked.ok, _problems(checked)
    assert checked.values.set_index("indicator")["value"].to_dict() == {"items": 12, "reply_rate": 95}
    assert checked.submissions["self_score"].tolist() == [88.5] and checked.periods == ["2025Q3"]


def test_arabic_indic_period_in_an_upload_is_a_period_problem(store):
    checked = check_upload(store, _csv("unit_code,period,items", "SZ001,٢٠٢٥Q3,1"), "p.csv", CLI_OFFICE)
    assert [(r, c, v) for r, c, v, _ in _problems(checked)] == [(2, "period", "٢٠٢٥Q3")]
    assert "季度格式不正确" in _problems(checked)[0][3]


# -- 5. the unit registry ------------------------------------------------------------------------------
REGISTRY_HEAD = "单位代码,单位名称,分组,上级单位代码"


def _registry(*rows: str) -> pd.DataFrame:
    return parse_registry(("\n".join([REGISTRY_HEAD, *rows]) + "\n").encode())


def _refused(s, frame) -> list[tuple]:
    before = all_units(s)
    with pytest.raises(Problems) as info:
        save_units(s, frame, CLI_OFFICE)
    pd.testing.assert_frame_equal(all_units(s), before)   # nothing half-written
    return [(p["row"], p["column"], p["message"]) for p in info.value.problems]


def test_registry_refuses_control_characters_naming_row_and_column():
    s = setup_store(Store(":memory:"))
    got = _refused(s, _registry("SZ010,市审计局\x0b办公室,市直部门,", "SZ011,市统计局,市直部门,",
                                "SZ0\x0012,市\u0085统计局,市直部门,"))
    assert [(r, c) for r, c, _ in got] == [(2, "单位名称"), (4, "单位代码"), (4, "单位名称")]
    assert all("控制字符" in m for *_, m in got)
    s.close()


def test_registry_refuses_a_group_no_scheme_names():
    s = setup_store(Store(":memory:"))   # schemes for 市直部门 and 乡镇街道 are loaded
    got = _refused(s, _registry("SZ010,市审计局,市直部门,", "SZ011,市统计局,市值部门,"))
    assert got == [(3, "分组", "分组「市值部门」不是任何已加载考评表适用的分组(已有:乡镇街道、市直部门)")]
    # an existing unit whose group no scheme names yet may stay as it is
    assert save_units(s, _registry("QT001,市档案馆(更名),其他单位,"), CLI_OFFICE)["changed"] == 1
    s.close()


def test_registry_groups_are_free_before_any_scheme_is_loaded():
    s = Store(":memory:")
    assert save_units(s, _registry("A1,甲,任意分组,"), CLI_OFFICE)["new"] == 1
    s.close()


def test_registry_refuses_unknown_and_own_parents_and_cycles():
    s = setup_store(Store(":memory:"))
    got = _refused(s, _registry("XQ01,东湖区,乡镇街道,", "XZ010,甲街道,乡镇街道,XQ01", "XZ011,乙街道,乡镇街道,XQ99",
                                "XZ012,丙街道,乡镇街道,XZ012", "XZ013,丁街道,乡镇街道,XZ014",
                                "XZ014,戊街道,乡镇街道,XZ013", "XZ001,东湖街道,乡镇街道,XZ015",
                                "XZ015,己街道,乡镇街道,XZ016", "XZ016,庚街道,乡镇街道,XZ001"))
    assert got == [
        (4, "上级单位代码", "上级单位代码「XQ99」不在单位名录中(文件和已有名录中都没有)"),
        (5, "上级单位代码", "上级单位不能是本单位"),
        (6, "上级单位代码", "上级单位形成循环:XZ013 → XZ014 → XZ013"),
        (8, "上级单位代码", "上级单位形成循环:XZ001 → XZ015 → XZ016 → XZ001")]
    s.close()


def test_registry_cycle_through_the_database_is_refused():
    s = setup_store(Store(":memory:"))
    save_units(s, _registry("XZ020,甲街道,乡镇街道,XZ001"), CLI_OFFICE)
    got = _refused(s, _registry("XZ001,东湖街道,乡镇街道,XZ020"))
    assert got == [(2, "上级单位代码", "上级单位形成循环:XZ001 → XZ020 → XZ001")]
    s.close()


def test_registry_lists_every_problem_at_once():
    s = setup_store(Store(":memory:"))
    got = _refused(s, _registry(",无代码,市直部门,", "SZ010,,市直部门,", "SZ010,重复,市直部门,", "SZ011,名\t称,无此分组,NOPE"))
    assert [(r, c) for r, c, _ in got] == [(2, "单位代码"), (3, "单位名称"), (4, "单位代码"), (5, "单位名称"),
                                           (5, "分组"), (5, "上级单位代码")]
    s.close()


def test_registry_is_managed_by_the_office_only():
    s = setup_store(Store(":memory:"))
    frame = _registry("SZ010,市审计局,市直部门,")
    for actor in (User("sz1", "unit", "SZ001"), User("jc", "checker"), None):
        with pytest.raises(PermissionDenied):
            save_units(s, frame, actor)
    s.close()


# -- 6. layering and the acting user -------------------------------------------------------------------
def test_registry_and_scheme_loading_do_not_need_the_upload_checker():
    code = ("import sys, scoring.units, scoring.cli; scoring.units.read_registry('tests/uploads/units.csv'); "
            "scoring.cli._read_text('tests/uploads/scheme.yaml'); "
            "assert 'scoring.ingest' not in sys.modules, 'ingest imported'")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_an_upload_needs_an_acting_user(store):
    with pytest.raises(PermissionDenied):
        check_upload(store, _csv("unit_code,period,items", "SZ001,2025Q3,1"), "x.csv", None)
