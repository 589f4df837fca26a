"""Who supplies each figure (SPEC round 2): unit, office/第三方 and computed figures, per-cell batches."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from scoring import accounts, engine, ingest, views
from scoring import problems
from scoring.batches import rollback
from scoring.cli import CLI_OFFICE
from scoring.errors import Problems
from scoring.schemes import save_scheme
from scoring.store import Store
from scoring.units import save_units
from tests.support import GOOD, SPEC_SCHEME

ROOT = Path(__file__).resolve().parent.parent
PW = "Zhengwu-gongkai-7788"

# SPEC's example with 网站错链数 supplied by the office's inspection team
OFFICE_SCHEME = SPEC_SCHEME.replace(
    "  - {code: broken_links,     name: 网站错链数, type: count}",
    "  - {code: broken_links,     name: 网站错链数, type: count, source: office}")

COUNTY_SCHEME = """
scheme: county
title: 县区考评表
applies_to: {groups: [县区], from: 2025Q1, to: 2025Q4}
total_max: 10
indicators:
  - {code: town_avg, name: 所辖乡镇平均分, type: number, computed: {children: total, agg: mean}}
  - {code: town_count, name: 所辖乡镇数, type: count, computed: {children: total, agg: count}}
  - {code: problems, name: 下发问题数, type: count, computed: {ledger: assigned}}
  - {code: open_day, name: 政府开放日, type: bool}
sections:
  - id: s
    name: 基础
    max: 10
    items:
      - {id: s.towns, name: 乡镇考评成绩, max: 5, rule: {type: rate, indicator: town_avg, full_at: 30, zero_at: 0}}
      - {id: s.open, name: 开放日, max: 5, rule: {type: boolean, indicator: open_day}}
penalties: [{id: pen.problems, name: 问题扣分, rule: {type: per, indicator: problems, per: 1}}]
"""

UNITS = pd.DataFrame(
    [("U1", "市教育局", "市直部门", "X1"), ("U2", "市公安局", "市直部门", "X1"), ("U3", "市民政局", "市直部门", None),
     ("X1", "东湖区", "县区", None)],
    columns=["unit_code", "unit_name", "group", "parent_code"])


@pytest.fixture
def world(tmp_path):
    s = Store(tmp_path / "sources.duckdb")
    save_scheme(s, OFFICE_SCHEME, CLI_OFFICE)
    save_scheme(s, COUNTY_SCHEME, CLI_OFFICE)
    save_units(s, UNITS, CLI_OFFICE)
    accounts.add_user(s, CLI_OFFICE, "u1", PW, "unit", "U1")
    accounts.add_user(s, CLI_OFFICE, "jc", PW, "checker")
    users = {n: accounts.get_user(s, n) for n in ("u1", "jc")}
    yield s, users
    s.close()


def csv(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


UNIT_FILE = csv("单位代码,季度,自评分,成立政务公开领导小组,主动公开信息条数,依申请按期答复率,政策文件数,政策解读数,"
                "获上级表彰次数,上级通报批评次数,泄密事件数,预算按时公开",
                "U1,2025Q3,30,是,45,95,4,3,2,0,0,是")


def messages(exc) -> list[str]:
    return exc.value.table["message"].tolist()


def test_a_unit_file_with_an_office_column_is_rejected_naming_the_column(world):
    store, users = world
    bad = csv("单位代码,季度,网站错链数,主动公开信息条数", "U1,2025Q3,0,45")
    with pytest.raises(Problems) as exc:
        ingest.ingest(store, bad, "u1.csv", users["u1"])
    assert messages(exc) == ["指标「网站错链数」由政务公开办填报,单位不能上传"]
    assert exc.value.table["column"].tolist() == ["网站错链数"] and exc.value.table["row"].tolist() == [1]
    long = csv("unit_code,period,indicator,value", "U1,2025Q3,主动公开信息条数,45", "U1,2025Q3,broken_links,0")
    with pytest.raises(Problems) as exc:
        ingest.ingest(store, long, "u1-long.csv", users["u1"])
    assert messages(exc) == ["指标「网站错链数」由政务公开办填报,单位不能上传"]
    assert exc.value.table["row"].tolist() == [3]
    assert store.one("SELECT count(*) FROM batches")[0] == 0


def test_a_checker_uploads_office_figures_only_for_every_unit(world):
    store, users = world
    ingest.ingest(store, UNIT_FILE, "u1.csv", users["u1"])
    ok = csv("单位代码,季度,网站错链数", "U1,2025Q3,3", "U2,2025Q3,1", "U3,2025Q3,")
    result = ingest.ingest(store, ok, "第三方检测.csv", users["jc"])
    assert result.values == 2
    bad = csv("单位代码,季度,自评分,主动公开信息条数", "U2,2025Q3,90,45")
    with pytest.raises(Problems) as exc:
        ingest.ingest(store, bad, "jc.csv", users["jc"])
    assert set(messages(exc)) == {"指标「主动公开信息条数」由单位填报,第三方/检查组不能上传",
                                  "自评分由单位填报,第三方/检查组不能上传"}
    # the unit's own figures and self score are untouched by the checker's batch
    report = views.unit_report(store, CLI_OFFICE, "U1", "2025Q3")
    items = {it["item_id"]: it for it in report["items"]}
    assert items["site.links"]["points"] == 2.5 and items["site.items"]["points"] == 4
    assert report["rank_row"]["self_score"] == 30
    [links] = items["site.links"]["sources"]
    [count] = items["site.items"]["sources"]
    assert links["source"] == "office" and links["batch"] == result.batch_id and links["value"] == 3
    assert count["source"] == "unit" and count["batch"] != result.batch_id


def test_a_computed_figure_is_never_uploaded(world):
    store, _ = world
    for who in (CLI_OFFICE,):
        with pytest.raises(Problems) as exc:
            ingest.ingest(store, csv("单位代码,季度,所辖乡镇平均分,政府开放日", "X1,2025Q3,90,是"), "x.csv", who)
        assert messages(exc) == ["指标「所辖乡镇平均分」由系统计算,不能上传"]


def test_the_office_one_column_upload_changes_one_figure_and_rollback_restores_it(world):
    store, users = world
    ingest.ingest(store, UNIT_FILE, "u1.csv", users["u1"])
    ingest.ingest(store, csv("单位代码,季度,网站错链数", "U1,2025Q3,3"), "jc.csv", users["jc"])
    before = views.unit_report(store, CLI_OFFICE, "U1", "2025Q3")
    one = csv("单位代码,季度,主动公开信息条数", "U1,2025Q3,60")
    checked = ingest.check_upload(store, one, "更正.csv", CLI_OFFICE)
    preview = ingest.changes(store, checked)
    assert preview[["unit_code", "name", "old", "new"]].values.tolist() == [["U1", "主动公开信息条数", "45", "60"]]
    batch = ingest.write_batch(store, checked, CLI_OFFICE).batch_id
    after = views.unit_report(store, CLI_OFFICE, "U1", "2025Q3")
    moved = {a["item_id"] for a, b in zip(after["items"], before["items"]) if a["points"] != b["points"]}
    assert moved == {"site.items"} and after["rank_row"]["self_score"] == 30
    assert "1个数值恢复" in rollback(store, batch, CLI_OFFICE)
    again = views.unit_report(store, CLI_OFFICE, "U1", "2025Q3")
    assert [i["points"] for i in again["items"]] == [i["points"] for i in before["items"]]
    assert again["total"] == before["total"]


def test_templates_hold_the_columns_each_role_supplies(world):
    store, users = world
    mine = ingest.template(store, users["u1"], "市直部门", "2025Q3")
    assert "网站错链数" not in mine.columns and "自评分" in mine.columns and mine["单位代码"].tolist() == ["U1"]
    office = ingest.template(store, users["jc"], "市直部门", "2025Q3")
    assert list(office.columns) == ["单位代码", "季度", "网站错链数"]
    assert office["单位代码"].tolist() == ["U1", "U2", "U3"]
    assert list(ingest.template(store, CLI_OFFICE, "县区", "2025Q3").columns) == ["单位代码", "季度", "自评分", "政府开放日"]


def test_children_are_scored_first_and_their_mean_total_is_the_parents_figure(world):
    store, users = world
    ingest.ingest(store, UNIT_FILE, "u1.csv", users["u1"])
    ingest.ingest(store, csv("单位代码,季度,主动公开信息条数", "U2,2025Q3,10", "U3,2025Q3,60"), "u23.csv", CLI_OFFICE)
    ingest.ingest(store, csv("单位代码,季度,政府开放日", "X1,2025Q3,是"), "x1.csv", CLI_OFFICE)
    problems.add_problem(store, CLI_OFFICE, "X1", "2025Q3", "首页错链", found_on="2025-09-01", due_on="2099-01-01")
    scores = engine.score(store, ["2025Q3"])
    totals = scores.units.set_index("unit_code")["total"]
    mean = (totals["U1"] + totals["U2"]) / 2            # U3 has no parent
    report = views.unit_report(store, CLI_OFFICE, "X1", "2025Q3", scores=scores)
    items = {it["item_id"]: it for it in report["items"]}
    [src] = items["s.towns"]["sources"]
    assert src == {"indicator": "town_avg", "value": pytest.approx(mean), "source": "computed", "batch": None}
    assert items["s.towns"]["points"] == pytest.approx(engine.round2(min(mean / 30, 1) * 5))
    assert "2个下级单位的总分平均" in items["s.towns"]["source_text"]
    [ledger] = items["pen.problems"]["sources"]
    assert ledger["value"] == 1 and items["pen.problems"]["points"] == -1


def test_explain_json_names_the_sources(world, tmp_path):
    store, users = world
    ingest.ingest(store, UNIT_FILE, "u1.csv", users["u1"])
    ingest.ingest(store, csv("单位代码,季度,网站错链数", "U1,2025Q3,3"), "jc.csv", users["jc"])
    path = store.path
    store.close()
    r = subprocess.run([sys.executable, "-m", "scoring", "--db", path, "explain", "U1", "--period", "2025Q3",
                        "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    items = {it["item_id"]: it for it in json.loads(r.stdout)["items"]}
    assert items["site.links"]["sources"][0]["source"] == "office"
    r = subprocess.run([sys.executable, "-m", "scoring", "--db", path, "explain", "U1", "--period", "2025Q3"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "网站错链数:政务公开办/第三方,批次2" in r.stdout and "数据来源" in r.stdout


def test_the_checker_previews_what_changes_then_confirms(world, monkeypatch):
    from dashboard import nav
    from tests.dashboard_support import app

    store, users = world
    ingest.ingest(store, UNIT_FILE, "u1.csv", users["u1"])
    ingest.ingest(store, csv("单位代码,季度,网站错链数", "U1,2025Q3,3"), "jc.csv", users["jc"])
    monkeypatch.setenv("KAOPING_DB", store.path)
    assert not {"ranking", "adjust", "admin"} & set(nav.pages_for(users["jc"]))     # a checker ranks nobody
    at = app(users["jc"], "upload")
    assert at.selectbox(key="upload.template_kind").value == "office"
    at.file_uploader[0].upload("第三方检测.csv", csv("单位代码,季度,网站错链数", "U1,2025Q3,5", "U2,2025Q3,0"),
                               "text/csv").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    changed = at.dataframe[1].value                      # after the preview of the file itself
    assert changed[["单位代码", "原值", "新值"]].values.tolist() == [["U1", "3", "5"], ["U2", "", "0"]]
    next(b for b in at.button if b.label == "确认导入").click().run()
    assert not at.exception
    assert store.one("SELECT count(*) FROM batches WHERE uploaded_by = 'jc'")[0] == 2
