"""年报 statistics (国办公开办函〔2021〕30号): template and long CSV, every 勾稽 check naming its cell,
all-or-nothing storage, the office's as-published record, the Word tables, the scheme's
``computed: {yearbook: errors}`` and ``once_in``."""
from __future__ import annotations

import io
import re

import pytest
from docx import Document

from scoring import accounts, engine, yearbook
from scoring.cli import CLI_OFFICE
from scoring.errors import PermissionDenied, Problems
from scoring.permissions import User
from scoring.schemes import parse_scheme, save_scheme
from tests.support import SPEC_SCHEME, submit

UNIT = User("u1", "unit", "U1", group="市直部门")


def simple(unit="U1", year=2024, new=10, carried=0, forward=2) -> yearbook.Report:
    """A consistent report: every application from 自然人, all handled 予以公开 but ``forward``."""
    rep = yearbook.Report(unit, year)
    for col in ("自然人", "总计"):
        rep.values[("三", "一", col)] = new
        rep.values[("三", "二", col)] = carried
        rep.values[("三", "三(一)", col)] = new + carried - forward
        rep.values[("三", "三(七)", col)] = new + carried - forward
        rep.values[("三", "四", col)] = forward
    rep.values[("二", "行政许可", "本年处理决定数量")] = 120
    rep.values[("四", "行政复议", "结果维持")] = rep.values[("四", "行政复议", "总计")] = 1
    return rep


def csv_of(*reps) -> bytes:
    return yearbook.long_csv(list(reps))


def xlsx_of(rep) -> bytes:
    return yearbook.template_bytes(rep.unit_code, "", rep.year, rep)


def rejected(store, data, name, actor=CLI_OFFICE) -> list[str]:
    with pytest.raises(Problems) as exc:
        yearbook.import_reports(store, data, name, actor)
    assert store.one("SELECT count(*) FROM yearbook_uploads")[0] == 0 or name.startswith("keep")
    return [str(p) for p in exc.value.problems]


def test_template_and_long_csv_read_back_the_same_figures():
    rep = yearbook.demo_report("U1", 2024, {}, 37, __import__("numpy").random.default_rng(7))
    for data, name in ((xlsx_of(rep), "年报.xlsx"), (csv_of(rep), "年报.csv")):
        reports, problems = yearbook.read_reports(data, name)
        assert problems == [] and len(reports) == 1
        assert reports[0].values == rep.values and (reports[0].unit_code, reports[0].year) == ("U1", 2024)
    assert yearbook.check(rep) == []


def test_blank_template_reads_as_zeros_and_says_what_is_missing():
    reports, problems = yearbook.read_reports(yearbook.template_bytes("U1", "市教育局", 2024), "t.xlsx")
    assert problems == [] and all(v == 0 for v in reports[0].values.values())
    _, problems = yearbook.read_reports(yearbook.template_bytes(), "t.xlsx")
    assert any("单位代码" in str(p) for p in problems) and any("年度" in str(p) for p in problems)


def test_a_good_report_is_stored_in_one_piece_and_audited(store):
    result = yearbook.import_reports(store, csv_of(simple()), "年报.csv", CLI_OFFICE)
    assert result.errors == 0 and "U1(2024年度)" in result.message
    rep, info = yearbook.report_of(store, CLI_OFFICE, "U1", 2024)
    assert rep.values == simple().values and info["errors"] == 0
    assert store.one("SELECT count(*) FROM yearbook_cells")[0] == len(yearbook.CELLS)
    assert store.one("SELECT count(*) FROM audit_log WHERE action = 'yearbook'")[0] == 1
    # a later upload supersedes, nothing is overwritten
    yearbook.import_reports(store, csv_of(simple(new=12)), "年报2.csv", CLI_OFFICE)
    assert yearbook.report_of(store, CLI_OFFICE, "U1", 2024)[0].get("三", "一", "总计") == 12
    assert store.one("SELECT count(*) FROM yearbook_uploads")[0] == 2


def _bump(rep, cell, by):
    rep.values[cell] += by
    return rep


# each 勾稽 check: (what breaks it, the cell named, words of the message)
CHECKS = {
    "七总计等于一至六之和": (lambda r: _bump(_bump(r, ("三", "三(七)", "自然人"), 1), ("三", "三(七)", "总计"), 1),
                   "表三「（七）总计」行「自然人」列", "为9,应等于（一）至（六）各项之和8"),
    "总计列等于各类申请人之和": (lambda r: _bump(r, ("三", "三(一)", "总计"), 2),
                     "表三「（一）予以公开」行「总计」列", "应等于各类申请人之和8"),
    "一加二等于三七加四": (lambda r: _bump(_bump(r, ("三", "一", "自然人"), 1), ("三", "一", "总计"), 1),
                  "表三「四、结转下年度继续办理」行「自然人」列", "本年新收加上年结转为11"),
    "复议总计等于分项": (lambda r: _bump(r, ("四", "行政复议", "结果纠正"), 2),
                 "表四「行政复议」行「总计」列", "应等于结果维持、结果纠正、其他结果、尚未审结之和3"),
    "诉讼总计等于分项": (lambda r: _bump(r, ("四", "复议后起诉", "总计"), 1),
                 "表四「行政诉讼（复议后起诉）」行「总计」列", "应等于结果维持"),
}


@pytest.mark.parametrize("name", list(CHECKS))
@pytest.mark.parametrize("layout", ["csv", "xlsx"])
def test_each_check_rejects_the_upload_naming_the_cell(store, name, layout):
    breaks, cell, words = CHECKS[name]
    rep = breaks(simple())
    data, file_name = (csv_of(rep), "年报.csv") if layout == "csv" else (xlsx_of(rep), "年报.xlsx")
    problems = rejected(store, data, file_name)
    hit = [p for p in problems if cell in p and words in p]
    assert hit, problems
    if layout == "xlsx":  # the spreadsheet's own address of the cell, e.g. 第48行,列「D48」
        assert re.match(r"第(\d+)行,列「[A-Z]+\1」", hit[0]), hit[0]
    else:
        assert hit[0].startswith("第") and "列「值」" in hit[0]


def test_carried_over_must_equal_last_years_carried_forward(store):
    yearbook.import_reports(store, csv_of(simple(year=2023, forward=2)), "2023.csv", CLI_OFFICE)
    problems = rejected(store, csv_of(simple(year=2024, carried=3)), "keep-2024.csv")
    assert any("表三「二、上年结转政府信息公开申请数量」行「自然人」列" in p and "2023年度年报「结转下年度继续办理」2不一致" in p
               for p in problems), problems
    assert store.one("SELECT count(*) FROM yearbook_uploads WHERE year = 2024")[0] == 0
    yearbook.import_reports(store, csv_of(simple(year=2024, carried=2)), "2024.csv", CLI_OFFICE)
    # both years in one file: checked against each other
    problems = rejected(store, csv_of(simple("U2", 2023, forward=1), simple("U2", 2024, carried=0)), "keep-both.csv")
    assert any("U2 2024年度" in p and "上年结转" in p for p in problems)


def test_new_applications_against_the_quarters_is_a_warning_with_both_numbers(store):
    for period, n in (("2024Q1", 3), ("2024Q2", 4), ("2024Q4", 1)):
        submit(store, period, {"U1": {"apps_new_received": n}})
    result = yearbook.import_reports(store, csv_of(simple(new=10)), "年报.csv", CLI_OFFICE)
    assert result.errors == 0 and len(result.warnings) == 1
    text = str(result.warnings[0])
    assert "表三「一、本年新收政府信息公开申请数量」行「总计」列为10件" in text and "合计8件" in text and "2024Q3 未报送" in text and "提示" in text
    assert yearbook.report_of(store, CLI_OFFICE, "U1", 2024)[1]["warnings"] == 1


def test_file_problems_name_row_column_and_value(store):
    bad = ("单位代码,年度,表,行,列,值\nU1,2024,表三,一,自然人,abc\nU9,2024,三,一,自然人,1\n"
           "U1,二〇二四,三,一,自然人,1\nU1,2024,五,一,自然人,1\nU1,2024,三,十,自然人,1\n"
           "U1,2024,三,一,外国人,1\nU1,2024,三,一,总计,1.5\nU1,2024,三,一,自然人,2\n").encode()
    problems = rejected(store, bad, "bad.csv")
    joined = "\n".join(problems)
    assert "第2行,列「值」,值「abc」" in joined and "不是数字" in joined
    assert "值「U9」" in joined and "不在单位名录中" in joined
    assert "列「年度」,值「二〇二四」" in joined
    assert "列「表」,值「五」" in joined and "列「行」,值「十」" in joined and "列「列」,值「外国人」" in joined
    assert "件数应为整数" in joined and "第2行已填写过" in joined


def test_unit_uploads_its_own_only_and_cannot_record_errors(store):
    accounts.add_user(store, CLI_OFFICE, "u1", "一个足够长的密码2025", "unit", "U1")
    problems = rejected(store, csv_of(simple("U2")), "other.csv", UNIT)
    assert any("只能上传本单位(U1)" in p for p in problems)
    with pytest.raises(PermissionDenied):
        yearbook.import_reports(store, csv_of(simple()), "x.csv", UNIT, as_published=True)
    yearbook.import_reports(store, csv_of(simple()), "own.csv", UNIT)
    with pytest.raises(PermissionDenied):
        yearbook.report_of(store, UNIT, "U2", 2024)


def test_office_records_a_published_report_with_its_errors(store):
    rep = CHECKS["复议总计等于分项"][0](simple())
    result = yearbook.import_reports(store, csv_of(rep), "已发布.csv", CLI_OFFICE, as_published=True)
    assert result.errors == 1 and "勾稽错误1处" in result.message
    with store.cursor() as con:
        counts = yearbook.error_counts(con)
    assert counts.set_index(["unit_code", "year"])["errors"][("U1", 2024)] == 1


def test_word_tables_in_the_official_layout(store):
    yearbook.import_reports(store, csv_of(simple()), "年报.csv", CLI_OFFICE)
    doc = Document(io.BytesIO(yearbook.docx_bytes(store, CLI_OFFICE, "U1", 2024)))
    assert len(doc.tables) == 3
    t3 = doc.tables[1]
    assert t3.cell(0, 3).text == "申请人情况" and t3.cell(1, 4).text == "法人或其他组织"
    row = next(r for r in t3.rows if r.cells[0].text.startswith("一、本年新收"))
    assert [c.text for c in row.cells][-7:] == ["10", "0", "0", "0", "0", "0", "10"]
    assert any(r.cells[1].text == "（三）不予公开" and r.cells[2].text == "1.属于国家秘密" for r in t3.rows)
    t4 = doc.tables[2]
    assert t4.cell(0, 5).text == "行政诉讼" and t4.cell(1, 5).text == "未经复议直接起诉" and len(t4.columns) == 15


YB_SCHEME = SPEC_SCHEME.replace(
    "  - {code: secret_leaks,", "  - {code: report_errors, name: 年报勾稽错误数, type: count, computed: {yearbook: errors}}\n"
                               "  - {code: secret_leaks,", 1)


def _with_report_item(text: str) -> str:
    return text.replace(
        "      - {id: site.review,",
        "      - {id: site.report, name: 年报勾稽, max: 2, once_in: Q1, rule: {type: deduct, indicator: report_errors, per: 0.5}}\n"
        "      - {id: site.review,", 1)


def test_scheme_reads_once_in_and_yearbook_errors_and_refuses_bad_ones():
    s = parse_scheme(_with_report_item(YB_SCHEME))
    assert s.item("site.report").once_in == 1 and s.indicators["report_errors"].computed == ("yearbook", "errors", None)
    with pytest.raises(Problems) as exc:
        parse_scheme(_with_report_item(YB_SCHEME).replace("once_in: Q1", "once_in: Q5")
                     .replace("{yearbook: errors}", "{yearbook: warnings}"))
    text = str(exc.value)
    assert "items[5](site.report).once_in:「Q5」无效" in text and "computed.yearbook" in text


def test_annual_item_scored_in_q1_from_last_years_report_and_not_applicable_elsewhere(store):
    save_scheme(store, _with_report_item(YB_SCHEME), CLI_OFFICE)     # a new version of the fixture's scheme
    for period in ("2025Q1", "2025Q2"):
        submit(store, period, {"U1": {"has_leading_group": 1}, "U2": {"has_leading_group": 1}})
    yearbook.import_reports(store, csv_of(CHECKS["复议总计等于分项"][0](simple())), "p.csv", CLI_OFFICE, as_published=True)
    scores = engine.score(store, ["2025Q1", "2025Q2"])
    q1 = {i["item_id"]: i for i in scores.explain("U1", "2025Q1")["items"]}["site.report"]
    assert q1["points"] == 1.5 and q1["status"] == "ok"
    assert "2024年度年报统计表勾稽检查发现1处错误" in q1["source_text"]
    missing = {i["item_id"]: i for i in scores.explain("U2", "2025Q1")["items"]}["site.report"]
    assert missing["status"] == "missing"          # U2 has no 2024 report
    q2 = scores.explain("U1", "2025Q2")
    item = {i["item_id"]: i for i in q2["items"]}["site.report"]
    assert item["status"] == "na" and "本项每年第一季度考评,本季度不考评" in item["explanation"]
    site = {s["id"]: s for s in q2["sections"]}["site"]
    assert site["max"] == 23.0                      # the section's cap shrank by the item's 2 points
