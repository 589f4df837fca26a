"""The annual result: weights and points from the scheme, missing quarters flagged, ``annual`` and
``annual-report`` on the command line, the 年度通报, the demo's 年报 and the two pages."""
from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from docx import Document

from scoring import annual, annual_bulletin, engine, views, yearbook
from scoring.cli import CLI_OFFICE
from scoring.errors import PermissionDenied, Problems
from scoring.permissions import User
from scoring.schemes import load_schemes, parse_scheme, save_scheme
from scoring.store import Store
from tests.dashboard_support import app, build_demo_db, copy_db, unescape
from tests.support import GOOD, SPEC_SCHEME, UNITS, WEAK, run_cli, submit

UNIT = User("u1", "unit", "U1", group="市直部门")
SPEC_KEYS = ["year", "group", "rank", "unit_code", "unit_name", "total", "grade", "quarters"]


def quarters(store):
    submit(store, "2025Q1", {"U1": GOOD, "U2": WEAK, "U3": GOOD})
    submit(store, "2025Q2", {"U1": GOOD, "U2": WEAK, "U3": GOOD})
    submit(store, "2025Q4", {"U1": WEAK, "U2": GOOD, "U3": GOOD})   # nobody reported 2025Q3


def test_mean_of_the_quarters_with_missing_ones_counted_zero_and_flagged(store):
    quarters(store)
    scores = engine.score(store)
    table = views.annual(store, CLI_OFFICE, 2025, scores=scores)
    per = scores.units.pivot_table(index="unit_code", columns="period", values="total")
    u1 = table.set_index("unit_code").loc["U1"]
    assert u1["total"] == pytest.approx(round((per.loc["U1", "2025Q1"] + per.loc["U1", "2025Q2"] + per.loc["U1", "2025Q4"]) / 4, 2))
    assert u1["missing_quarters"] == "2025Q3" and u1["n_missing"] == 1 and pd.isna(u1["2025Q3"])
    assert u1["grade"] in ("优秀", "良好", "合格", "不合格") and pd.isna(u1["points"])
    records = annual.records(table)
    assert all(list(r) == SPEC_KEYS for r in records)
    assert {r["unit_code"]: r["quarters"][2] for r in records} == {"U1": None, "U2": None, "U3": None}


def test_weights_year_end_share_and_points_declared_in_the_scheme(store):
    quarters(store)
    save_scheme(store, SPEC_SCHEME.replace("missing: zero", "missing: zero\nannual: {year_end: 0.4, points: 5}"), CLI_OFFICE)
    scores = engine.score(store)
    table = annual.annual_table(scores, 2025, None, load_schemes(store)).set_index("unit_code")
    per = scores.units.pivot_table(index="unit_code", columns="period", values="total")
    want = 0.2 * (per.loc["U2", "2025Q1"] + per.loc["U2", "2025Q2"]) + 0.4 * per.loc["U2", "2025Q4"]
    assert table.loc["U2", "total"] == pytest.approx(round(want, 2))
    assert table.loc["U2", "points"] == pytest.approx(float(engine.round2(table.loc["U2", "total"] * 5 / 100)))
    assert "四季度40%" in table.loc["U2", "weights"]


@pytest.mark.parametrize("annual_yaml, where", [
    ("{quarters: [0.5, 0.5, 0.5, 0.5]}", "annual.quarters:四个季度的权重之和为2,应为1"),
    ("{quarters: [1, 0]}", "annual.quarters:应为四个季度的权重"),
    ("{year_end: 1.5}", "annual.year_end"),
    ("{points: -5}", "annual.points"),
    ("{weights: 1}", "annual.weights:未知字段"),
])
def test_bad_annual_declarations_name_the_field(annual_yaml, where):
    with pytest.raises(Problems) as exc:
        parse_scheme(SPEC_SCHEME.replace("missing: zero", f"missing: zero\nannual: {annual_yaml}"))
    assert where in str(exc.value)


def test_annual_ranking_and_bulletin_are_the_offices(store):
    quarters(store)
    with pytest.raises(PermissionDenied):
        views.annual_ranking(store, UNIT, 2025)
    with pytest.raises(PermissionDenied):
        annual_bulletin.bulletin_bytes(store, 2025, UNIT)


def test_annual_bulletin_structure(store):
    quarters(store)
    yearbook.import_reports(store, yearbook.long_csv([_faulty("U2", 2025)]), "p.csv", CLI_OFFICE, as_published=True)
    doc = Document(io.BytesIO(annual_bulletin.bulletin_bytes(store, 2025, CLI_OFFICE)))
    text = [p.text for p in doc.paragraphs]
    assert "关于2025年度全市政务公开工作考评结果的通报" in text
    for heading in ("一、总体情况", "二、年度考评结果", "三、存在问题", "四、工作要求"):
        assert heading in text
    body = "\n".join(text)
    assert "2025Q3" in body and "市公安局（1处）" in body           # missing quarter and the 年报's errors named
    table = doc.tables[0]
    assert [c.text for c in table.rows[0].cells][:8] == ["名次", "单位", "一季度", "二季度", "三季度", "四季度", "年度得分", "等次"]
    assert any(c.text == "缺报" for r in table.rows for c in r.cells)


def _faulty(unit, year):
    rep = yearbook.Report(unit, year)
    rep.values[("四", "行政复议", "结果维持")] = 1         # 总计 left 0: one error
    return rep


# -- the command line -------------------------------------------------------------------------------
@pytest.fixture
def db(tmp_path):
    path = tmp_path / "cli.duckdb"
    with Store(path) as s:
        from scoring.units import save_units

        save_units(s, UNITS, CLI_OFFICE)
        save_scheme(s, SPEC_SCHEME, CLI_OFFICE)
        quarters(s)
    return path


def test_cli_annual_json_has_exactly_the_spec_keys(db):
    r = run_cli("annual", "--year", "2025", "--format", "json", db=db)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and all(list(row) == SPEC_KEYS for row in rows)
    assert all(len(row["quarters"]) == 4 and row["quarters"][2] is None for row in rows)
    assert all(isinstance(row["rank"], int) and isinstance(row["total"], float) for row in rows)
    assert "市教育局" in r.stdout                              # UTF-8, not ASCII-escaped
    table = run_cli("annual", "--year", "2025", db=db)
    assert table.returncode == 0 and "缺报" in table.stdout and "三季度" in table.stdout
    csv = run_cli("annual", "--year", "2025", "--format", "csv", "--group", "市直部门", db=db)
    assert csv.returncode == 0 and csv.stdout.splitlines()[0].endswith("2025Q1,2025Q2,2025Q3,2025Q4")


def test_cli_usage_errors_exit_2(db):
    assert run_cli("annual", db=db).returncode == 2
    assert run_cli("annual", "--year", "明年", db=db).returncode == 2
    assert run_cli("annual-report", db=db).returncode == 2


def test_cli_annual_report_template_import_show(db, tmp_path):
    template = tmp_path / "t.xlsx"
    r = run_cli("annual-report", "template", "--out", str(template), "--unit", "U1", "--year", "2024", db=db)
    assert r.returncode == 0 and template.exists(), r.stderr
    rep = yearbook.read_reports(template.read_bytes(), "t.xlsx")[0][0]
    rep.values[("三", "一", "自然人")] = rep.values[("三", "一", "总计")] = 3
    rep.values[("三", "三(一)", "自然人")] = rep.values[("三", "三(一)", "总计")] = 3
    rep.values[("三", "三(七)", "自然人")] = rep.values[("三", "三(七)", "总计")] = 3
    bad = tmp_path / "bad.xlsx"
    broken = yearbook.Report("U1", 2024, dict(rep.values))
    broken.values[("三", "三(七)", "自然人")] = 2
    bad.write_bytes(yearbook.template_bytes("U1", "市教育局", 2024, broken))
    r = run_cli("annual-report", "import", str(bad), db=db)
    assert r.returncode == 1 and "表三「（七）总计」行「自然人」列为2,应等于（一）至（六）各项之和3" in r.stdout
    good = tmp_path / "good.xlsx"
    good.write_bytes(yearbook.template_bytes("U1", "市教育局", 2024, rep))
    r = run_cli("annual-report", "import", str(good), db=db)
    assert r.returncode == 0 and "已导入1份年报统计表" in r.stdout, r.stdout + r.stderr
    r = run_cli("annual-report", "show", "U1", "--year", "2024", db=db)
    assert r.returncode == 0 and "一、本年新收政府信息公开申请数量" in r.stdout and "勾稽错误0处" in r.stdout
    out = tmp_path / "u1.docx"
    assert run_cli("annual-report", "show", "U1", "--year", "2024", "--out", str(out), db=db).returncode == 0
    assert len(Document(str(out)).tables) == 3
    r = run_cli("annual-report", "show", "U2", "--year", "2024", db=db)
    assert r.returncode == 1 and "没有2024年度的年报统计数据" in r.stderr
    listed = run_cli("annual-report", "list", "--year", "2024", db=db)
    assert listed.returncode == 0 and "U1" in listed.stdout


def test_cli_annual_bulletin(db, tmp_path):
    out = tmp_path / "annual.docx"
    r = run_cli("annual-bulletin", "--year", "2025", "--out", str(out), db=db)
    assert r.returncode == 0 and out.exists(), r.stderr
    assert "关于2025年度全市政务公开工作考评结果的通报" in [p.text for p in Document(str(out)).paragraphs]
    r = run_cli("annual-bulletin", "--year", "2019", "--out", str(out), db=db)
    assert r.returncode == 1 and "2019年度没有考评数据" in r.stderr


# -- the demo and the pages ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_template(tmp_path_factory):
    return build_demo_db(tmp_path_factory.mktemp("annual_demo") / "demo.duckdb")


@pytest.fixture
def demo(demo_template, tmp_path, monkeypatch):
    path = copy_db(demo_template, tmp_path / "demo.duckdb")
    monkeypatch.setenv("KAOPING_DB", str(path))
    return path


def test_demo_has_every_units_reports_and_deducts_the_faulty_ones(demo_template):
    with Store(demo_template, read_only=True) as s:
        n_units = s.one("SELECT count(*) FROM units")[0]
        for year in (2024, 2025):
            assert s.one("SELECT count(*) FROM yearbook_current WHERE year = ?", [year])[0] == n_units
        faulty = s.df("SELECT unit_code, errors FROM yearbook_current WHERE errors > 0")
        assert 2 <= len(faulty) <= 6 and (s.one("SELECT max(year) FROM yearbook_current WHERE errors > 0")[0] == 2024)
        scores = engine.score(s, ["2025Q1", "2025Q2"])
    items = scores.items
    for code in faulty["unit_code"]:
        row = items[(items["unit_code"] == code) & (items["period"] == "2025Q1") & items["item_id"].str.endswith("report_err")]
        assert len(row) == 1 and row["points"].iloc[0] < row["max"].iloc[0]
    later = items[(items["period"] == "2025Q2") & items["item_id"].str.endswith("report_err")]
    assert set(later["status"]) == {"na"}


def test_a_unit_counts_only_the_quarters_published_to_it(demo_template):
    from scoring import accounts

    with Store(demo_template, read_only=True) as s:
        user = accounts.get_user(s, "unit-shizhi")
        mine = views.annual(s, user, 2025)
        office = views.annual(s, CLI_OFFICE, 2025, user.group)
    assert mine["2025Q4"].isna().all() and office["2025Q4"].notna().all()   # 2025Q4 is on 公示
    assert (mine["missing_quarters"] == "2025Q4").all() and set(mine["group"]) == {user.group}


def test_annual_page_shows_quarters_flags_missing_and_offers_the_bulletin(demo):
    at = app(User("office", "office"), "annual")
    assert not at.exception and not at.error
    shown = at.dataframe[0].value
    shown = shown.data if hasattr(shown, "data") else shown
    assert list(shown.columns)[:6] == ["名次", "单位代码", "单位名称", "一季度", "二季度", "三季度"]
    assert "年度得分" in shown.columns
    at.selectbox(key="annual.year").set_value(2024).run()
    at.selectbox(key="annual.group").set_value("乡镇街道").run()
    shown = at.dataframe[0].value
    shown = shown.data if hasattr(shown, "data") else shown
    assert (shown["三季度"] == "缺报(计0分)").sum() == 1        # the demo's unit that missed 2024Q3
    assert any("缺报季度" in unescape(w.value) for w in at.warning)
    assert any(b.label == "生成年度通报(Word)" for b in at.get("download_button"))


def test_unit_uploads_its_yearbook_in_the_app_and_sees_the_cell_named(demo):
    with Store(demo, read_only=True) as s:
        code = s.one("SELECT unit_code FROM users WHERE username = 'unit-shizhi'")[0]
        rep, _ = yearbook.report_of(s, CLI_OFFICE, code, 2025)
    user = User("unit-shizhi", "unit", code)
    broken = yearbook.Report(code, 2026, dict(rep.values))
    broken.values[("四", "行政复议", "总计")] += 1
    at = app(user, "yearbook")
    assert not at.exception and not at.error
    assert "年报" == at.title[0].value and at.dataframe               # the stored 2025 tables
    assert len(at.selectbox(key="yearbook.unit").options) == 1
    data = yearbook.template_bytes(code, "", 2026, broken)
    result = yearbook.read_reports(data, "x.xlsx")
    assert not result[1]
    # the upload widget cannot be driven by AppTest: the page's action is the library call it makes
    with Store(demo) as s, pytest.raises(Problems) as exc:
        yearbook.import_reports(s, data, "x.xlsx", user)
    assert any("表四「行政复议」行「总计」列" in str(p) for p in exc.value.problems)
