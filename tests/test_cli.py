"""The CLI through a subprocess on a temporary database, as a script or a person would use it."""
import json
import subprocess
import sys

import pytest

from scoring.cli import CLI_OFFICE
from scoring.store import Store
from tests.support import GOOD, ROOT, SPEC_SCHEME, UNITS, WEAK, run_cli, submit


def cli(*args, db, stdin=None):
    return run_cli(*args, db=db, stdin=stdin)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "cli.duckdb"
    (tmp_path / "scheme.yaml").write_text(SPEC_SCHEME, encoding="utf-8")
    UNITS.to_csv(tmp_path / "units.csv", index=False)
    assert cli("units", str(tmp_path / "units.csv"), db=path).returncode == 0
    r = cli("scheme", str(tmp_path / "scheme.yaml"), db=path)
    assert r.returncode == 0, r.stderr
    assert "spec-example" in r.stdout
    with Store(path) as s:
        submit(s, "2025Q2", {"U1": GOOD, "U2": WEAK})
        submit(s, "2025Q3", {"U1": GOOD, "U2": WEAK, "U3": {"secret_leaks": 1}, "U4": GOOD})
    return path


def test_ranking_json_has_exactly_the_spec_keys(db):
    r = cli("ranking", "--period", "2025年第三季度", "--format", "json", db=db)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert all(list(row) == ["period", "group", "rank", "unit_code", "unit_name", "total", "grade", "rank_change"]
               for row in rows)
    by = {row["unit_code"]: row for row in rows}
    assert by["U1"]["rank"] == by["U4"]["rank"] == 1 and by["U2"]["rank"] == 3 and by["U3"]["rank"] == 4
    assert by["U1"]["rank_change"] == 0 and by["U2"]["rank_change"] == -1 and by["U4"]["rank_change"] is None
    assert isinstance(by["U1"]["total"], float) and by["U1"]["period"] == "2025Q3"
    assert "市教育局" in r.stdout  # UTF-8, not ASCII-escaped


def test_ranking_table_and_csv(db):
    table = cli("ranking", "--period", "2025Q3", db=db)
    assert table.returncode == 0 and "1(并列)" in table.stdout and "新" in table.stdout
    csv = cli("ranking", "--period", "2025Q3", "--group", "市直部门", "--format", "csv", db=db)
    lines = csv.stdout.splitlines()
    assert lines[0] == "period,group,rank,unit_code,unit_name,total,grade,rank_change"
    by_unit = {line.split(",")[3]: line.split(",") for line in lines[1:]}
    assert by_unit["U2"][7] == "-1" and by_unit["U4"][7] == ""  # numbers are not escaped; 新 is empty


def test_ranking_csv_escapes_formula_like_names(db):
    from scoring.units import save_units
    with Store(db) as s:
        renamed = UNITS.assign(unit_name=UNITS["unit_name"].where(UNITS["unit_code"] != "U1", "=HYPERLINK(1)"))
        save_units(s, renamed, CLI_OFFICE)
    out = cli("ranking", "--period", "2025Q3", "--format", "csv", db=db).stdout
    assert "'=HYPERLINK(1)" in out


def test_explain_json(db):
    r = cli("explain", "U2", "--period", "2025Q3", "--format", "json", db=db)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == ["unit_code", "period", "scheme", "items", "sections", "bonus", "veto", "total", "grade", "rank"]
    assert doc["total"] == 14.26 and doc["rank"] == 3 and doc["veto"] is None and doc["bonus"] == 3
    assert all(list(it) == ["item_id", "name", "points", "max", "status", "explanation", "sources"]
               for it in doc["items"])
    links = next(it for it in doc["items"] if it["item_id"] == "site.links")
    [source] = links["sources"]
    assert source["indicator"] == "broken_links" and source["value"] == 10.0 and source["source"] == "unit"
    assert isinstance(source["batch"], int) and source["batch"] >= 1
    assert next(it for it in doc["items"] if it["item_id"] == "site.review")["sources"] == []
    pen = next(it for it in doc["items"] if it["item_id"] == "pen.criticism")
    assert pen["points"] == -3 and pen["max"] is None
    assert list(doc["sections"][0]) == ["id", "name", "points", "max"]
    vetoed = json.loads(cli("explain", "U3", "--period", "2025Q3", "--format", "json", db=db).stdout)
    assert vetoed["veto"] == "veto.leak" and vetoed["total"] == 0


def test_explain_table_reads_like_a_score_sheet(db):
    r = cli("explain", "U1", "--period", "2025Q3", db=db)
    assert r.returncode == 0
    assert "网站错链数3处,每处扣0.5分,扣1.5分,得2.5分(满分4分)" in r.stdout
    assert "总分:26.00" in r.stdout and "组内名次:1(并列)/4" in r.stdout


def test_adjust_then_explain(db):
    r = cli("adjust", "U1", "2025Q3", "site.review", "5", "--reason", "材料齐全", db=db)
    assert r.returncode == 0, r.stderr
    doc = json.loads(cli("explain", "U1", "--period", "2025Q3", "--format", "json", db=db).stdout)
    item = next(it for it in doc["items"] if it["item_id"] == "site.review")
    assert item["status"] == "adjusted" and item["points"] == 5 and "材料齐全" in item["explanation"]
    assert doc["total"] == 31.0 and doc["rank"] == 1


@pytest.mark.parametrize("args,code,fragment", [
    (["ranking"], 2, "--period"),
    (["explain", "U1", "--period", "2025Q3", "--format", "xml"], 2, "xml"),
    (["nonsense"], 2, ""),
    (["ranking", "--period", "2025Q5"], 1, "季度格式不正确"),
    (["explain", "NOPE", "--period", "2025Q3"], 1, "NOPE"),
    (["adjust", "U1", "2025Q3", "site.review", "9", "--reason", "x"], 1, "超出范围"),
    (["adjust", "U1", "2025Q3", "no.such", "1", "--reason", "x"], 1, "no.such"),
])
def test_exit_codes(db, args, code, fragment):
    r = cli(*args, db=db)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert fragment in r.stdout + r.stderr


def test_bad_scheme_exit_1_names_item_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC_SCHEME.replace("[[50, 6], [30, 4], [1, 2]]", "[[1, 2], [50, 6]]"), encoding="utf-8")
    r = cli("scheme", str(bad), db=tmp_path / "x.duckdb")
    assert r.returncode == 1
    assert "sections[1](site).items[1](site.items).rule.tiers:阈值必须从高到低" in r.stdout


def test_import_scoring_does_not_import_streamlit():
    code = "import sys, scoring.cli, scoring.engine, scoring.ranking; print('streamlit' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() == "False", r.stderr


UPLOADS = ROOT / "tests" / "uploads"


@pytest.fixture
def upload_db(tmp_path):
    path = tmp_path / "up.duckdb"
    assert cli("units", str(UPLOADS / "units.csv"), db=path).returncode == 0
    for name in ("scheme.yaml", "scheme_xz.yaml"):
        assert cli("scheme", str(UPLOADS / name), db=path).returncode == 0
    return path


def test_ingest_batches_rollback_and_acting_user(upload_db):
    ok = cli("ingest", str(UPLOADS / "good_gbk.csv"), db=upload_db)
    assert ok.returncode == 0 and ok.stdout.startswith("已导入批次 #1"), ok.stdout + ok.stderr
    again = cli("ingest", str(UPLOADS / "good_gbk.csv"), db=upload_db)
    assert again.returncode == 0 and "未重复导入" in again.stdout
    bad = cli("ingest", str(UPLOADS / "unknown_unit.csv"), db=upload_db)
    assert bad.returncode == 1 and "SZ999" in bad.stdout and "不在单位名录中" in bad.stdout
    assert "行" in bad.stdout.splitlines()[1]  # the problem table's header: 行 列 值 问题

    add = cli("user", "add", "clerk1", "--role", "unit", "--unit", "SZ001", "--password-stdin",
              db=upload_db, stdin="一二三四五六七八九十\n")
    assert add.returncode == 0, add.stderr
    forbidden = cli("--as", "clerk1", "ingest", str(UPLOADS / "forbidden.csv"), db=upload_db)
    assert forbidden.returncode == 1 and "无权上传" in forbidden.stdout
    refused = cli("rollback", "1", "--as", "clerk1", db=upload_db)
    assert refused.returncode == 1 and "无权" in refused.stderr

    assert cli("ingest", str(UPLOADS / "good.xlsx"), db=upload_db).returncode == 0
    listing = cli("batches", db=upload_db)
    assert "good.xlsx" in listing.stdout and "已被替代" in listing.stdout
    rolled = cli("rollback", "2", db=upload_db)
    assert rolled.returncode == 0 and "已回滚批次 #2" in rolled.stdout
    audit = cli("audit", db=upload_db)
    assert all(word in audit.stdout for word in ("上传数据", "回滚批次", "账号变更", "加载考评表"))


def test_every_command_is_documented_with_help():
    from scoring.cli import build_parser
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        assert parser.description, name
        assert f"python -m scoring {name}" in readme or f"scoring {name}" in readme, name
