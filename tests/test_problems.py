"""问题清单 → 整改 → 复核 (SPEC round 2 "Problem ledger"): import, the status flow, 逾期, the score."""
from __future__ import annotations

import io
import json

import openpyxl
import pytest

from scoring import accounts, audit, engine, problems, views
from scoring.accounts import User
from scoring.cli import CLI_OFFICE
from scoring.errors import InputError, NotFound, PermissionDenied, Problems
from scoring.schemes import save_scheme
from tests.support import GOOD, SPEC_SCHEME, run_cli, submit

U1, U2 = User("u1", "unit", "U1"), User("u2", "unit", "U2")
JC = User("jc", "checker")
PW = "Zhengwu-gongkai-7788"
HEAD = "单位代码,季度,考评项,问题描述,链接,发现日期,整改期限"

# SPEC's example with a section counting the ledger, as the shipped schemes do
LEDGER_SCHEME = SPEC_SCHEME.replace("total_max: 35", "total_max: 40").replace(
    "  - {code: budget_on_time,", """  - {code: issues_assigned, name: 下发问题数, type: count, source: computed, computed: {ledger: assigned}}
  - {code: issues_closed, name: 按期销号问题数, type: count, source: computed, computed: {ledger: closed_on_time}}
  - {code: issues_overdue, name: 逾期未整改问题数, type: count, source: computed, computed: {ledger: overdue}}
  - {code: budget_on_time,""").replace("bonus: {max: 5", """  - id: sup
    name: 监督保障
    max: 5
    items:
      - {id: sup.rectify, name: 问题按期整改率, max: 4,
         rule: {type: ratio, numerator: issues_closed, denominator: issues_assigned, full_at: 1.0, on_zero: full}}
      - {id: sup.overdue, name: 逾期未整改问题, max: 1, rule: {type: deduct, indicator: issues_overdue, per: 0.5}}
bonus: {max: 5""")


def csv(*lines: str, encoding: str = "utf-8") -> bytes:
    return "\n".join((HEAD,) + lines).encode(encoding)


@pytest.fixture
def today(monkeypatch):
    def set_today(day: str):
        monkeypatch.setenv("KAOPING_TODAY", day)
    set_today("2025-10-15")
    return set_today


@pytest.fixture
def ledger(store, today):
    save_scheme(store, LEDGER_SCHEME, CLI_OFFICE)          # a new version of the store's scheme
    submit(store, "2025Q3", {"U1": GOOD, "U2": GOOD})
    for user in (U1, U2, JC):
        accounts.add_user(store, CLI_OFFICE, user.username, PW, user.role, user.unit_code)
    return store


def item(store, unit: str, item_id: str, period: str = "2025Q3") -> dict:
    report = views.unit_report(store, CLI_OFFICE, unit, period)
    return next(i for i in report["items"] if i["item_id"] == item_id)


# -- import -----------------------------------------------------------------------------------------
def test_import_whole_file_with_item_by_id_or_name(ledger):
    msg = problems.import_problems(ledger, JC, csv(
        "U1,2025Q3,site.links,首页错链3处,https://www.example.gov.cn/,2025-09-20,2025-10-20",
        "U1,2025Q3,政策解读率,政策文件未同步解读,,2025/9/21,2025年10月31日",
        "U2,2025年第三季度,,依申请答复书未告知救济途径,,20250922,2025.11.1"), "第三方问题清单.csv")
    assert "新增3个问题,涉及2家单位" in msg
    df = problems.list_problems(ledger, CLI_OFFICE)
    assert sorted(df["item_id"].fillna("—")) == ["site.interp", "site.links", "—"]
    assert set(df["status"]) == {"待整改"} and df["period"].eq("2025Q3").all()
    assert df.set_index("description").loc["依申请答复书未告知救济途径", "due_on"].isoformat() == "2025-11-01"
    again = problems.import_problems(ledger, JC, csv(
        "U1,2025Q3,site.links,首页错链3处,https://www.example.gov.cn/,2025-09-20,2025-10-20"), "again.csv")
    assert "新增0个问题" in again and "1个问题已在清单中,未重复导入" in again
    assert len(problems.list_problems(ledger, CLI_OFFICE)) == 3


def test_gbk_csv_and_xlsx_as_excel_writes_them(ledger):
    msg = problems.import_problems(ledger, CLI_OFFICE, csv("U1,2025Q3,错链,首页错链,,2025-09-20,2025-10-20",
                                                           encoding="gbk"), "清单.csv")
    assert "新增1个问题" in msg
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["江州市政务公开第三方检测问题清单"])                      # a title line above the header
    ws.append(["序号"] + HEAD.split(","))
    import datetime as dt
    ws.append([1, "U2", "2025Q3", "site.rel", "信息发布量偏低", None, dt.datetime(2025, 9, 20), dt.datetime(2025, 10, 20)])
    buf = io.BytesIO()
    wb.save(buf)
    assert "新增1个问题" in problems.import_problems(ledger, CLI_OFFICE, buf.getvalue(), "清单.xlsx")
    row = problems.list_problems(ledger, U2).iloc[0]
    assert row["item_name"] == "发布量横向比较" and row["found_on"].isoformat() == "2025-09-20"


def test_a_bad_list_is_refused_whole_naming_every_row_column_and_value(ledger):
    bad = csv("U1,2025Q3,site.links,首页错链,,2025-09-20,2025-10-20",             # fine, but not written
              "NOPE,2025Q3,,错链,,2025-09-20,2025-10-20",
              "U2,2025Q9,,错链,,2025-09-20,2025-10-20",
              "U2,2025Q3,无此项,错链,,2025-09-20,2025-10-20",
              "U2,2025Q3,,,,2025-09-20,2025-10-20",
              "U2,2025Q3,,错链,ftp://x,2025-09-20,2025-10-20",
              "U2,2025Q3,,错链,,明天,2025-10-20",
              "U2,2025Q3,,错链2,,2025-09-20,2025-09-01",
              "U1,2025Q3,site.links,首页错链,,2025-09-20,2025-10-20")              # the first again
    with pytest.raises(Problems) as exc:
        problems.import_problems(ledger, JC, bad, "bad.csv")
    found = {(p["row"], p["column"], p["value"]) for p in exc.value.problems}
    assert found == {(3, "单位代码", "NOPE"), (4, "季度", "2025Q9"), (5, "考评项", "无此项"), (6, "问题描述", ""),
                     (7, "链接", "ftp://x"), (8, "发现日期", "明天"), (9, "整改期限", "2025-09-01"),
                     (10, "问题描述", "首页错链")}
    assert "整个文件未导入" in exc.value.title
    assert "第3行,列「单位代码」,值「NOPE」:单位代码不在单位名录中" in str(exc.value)
    assert problems.list_problems(ledger, CLI_OFFICE).empty


def test_headers_are_checked(ledger):
    with pytest.raises(Problems) as exc:
        problems.import_problems(ledger, JC, "单位代码,季度,问题描述,整改期限,负责人\nU1,2025Q3,x,2025-10-01,张三".encode(),
                                 "h.csv")
    messages = [str(p) for p in exc.value.problems]
    assert any("缺少列「发现日期」" in m for m in messages) and any("「负责人」" in m and "未知的列" in m for m in messages)


def test_who_may_import_respond_and_review(ledger):
    with pytest.raises(PermissionDenied):
        problems.import_problems(ledger, U1, csv("U1,2025Q3,,x,,2025-09-20,2025-10-20"), "u.csv")
    pid = problems.add_problem(ledger, JC, "U1", "2025Q3", "首页错链", found_on="2025-09-20", due_on="2025-10-20")
    with pytest.raises(PermissionDenied):
        problems.respond(ledger, U2, pid, "不是我的")
    with pytest.raises(PermissionDenied):
        problems.list_problems(ledger, U2, unit_code="U1")
    assert problems.list_problems(ledger, U2).empty and len(problems.list_problems(ledger, U1)) == 1
    with pytest.raises(PermissionDenied):
        problems.respond(ledger, JC, pid, "检查组不能代单位反馈")
    problems.respond(ledger, U1, pid, "已修复")
    with pytest.raises(PermissionDenied):
        problems.review(ledger, U1, pid, True, "自己销号")
    with pytest.raises(PermissionDenied):
        problems.history(ledger, U2, pid)
    accounts.disable_user(ledger, CLI_OFFICE, "jc")       # a session that outlived its account
    with pytest.raises(PermissionDenied, match="已停用"):
        problems.review(ledger, JC, pid, True)


# -- the status flow ------------------------------------------------------------------------------------
def test_respond_return_respond_close_with_history_and_audit(ledger, today):
    pid = problems.add_problem(ledger, JC, "U1", "2025Q3", "首页错链", item="site.links",
                               found_on="2025-09-20", due_on="2025-10-20")
    with pytest.raises(InputError, match="只有待复核的问题可以复核"):
        problems.review(ledger, JC, pid, True)
    with pytest.raises(InputError, match="整改说明不能为空"):
        problems.respond(ledger, U1, pid, "  ")
    with pytest.raises(InputError, match="http"):
        problems.respond(ledger, U1, pid, "已修复", "javascript:alert(1)")
    assert "等待复核" in problems.respond(ledger, U1, pid, "已修复错链", "https://www.example.gov.cn/zcwj/")
    with pytest.raises(InputError, match="只有待整改或被退回"):
        problems.respond(ledger, U1, pid, "再交一次")
    with pytest.raises(InputError, match="复核意见不能为空"):
        problems.review(ledger, JC, pid, False, "")
    assert "已退回" in problems.review(ledger, JC, pid, False, "仍有2处错链")
    assert problems.list_problems(ledger, U1).iloc[0]["status"] == "退回"
    problems.respond(ledger, U1, pid, "全部修复")
    today("2025-10-18")
    assert "已销号" in problems.review(ledger, JC, pid, True, "复核通过")
    row = problems.list_problems(ledger, U1).iloc[0]
    assert (row["status"], row["reviewed_by"], row["reviewed_on"].isoformat()) == ("已销号", "jc", "2025-10-18")
    steps = problems.history(ledger, U1, pid)
    assert steps["status"].tolist() == ["待整改", "待复核", "退回", "待复核", "已销号"]
    assert steps["note"].tolist()[1:] == ["已修复错链", "仍有2处错链", "全部修复", "复核通过"]
    log = audit.read(ledger, CLI_OFFICE)
    assert (log["action"] == "rectification").sum() == 5
    with pytest.raises(NotFound):
        problems.respond(ledger, U1, 999, "x")


def test_overdue_is_computed_against_today(ledger, today):
    pid = problems.add_problem(ledger, JC, "U1", "2025Q3", "首页错链", found_on="2025-09-20", due_on="2025-10-20")
    today("2025-10-20")
    assert problems.list_problems(ledger, U1).iloc[0]["status"] == "待整改"
    today("2025-10-21")
    row = problems.list_problems(ledger, U1).iloc[0]
    assert (row["status"], bool(row["overdue"]), row["days_left"], row["time_left"]) == ("逾期未整改", True, -1, "逾期1天")
    assert len(problems.list_problems(ledger, CLI_OFFICE, status="逾期未整改")) == 1
    problems.respond(ledger, U1, pid, "迟交的整改")              # a late answer is still taken
    assert problems.list_problems(ledger, U1).iloc[0]["status"] == "逾期未整改"
    problems.review(ledger, JC, pid, True)
    row = problems.list_problems(ledger, U1).iloc[0]
    assert row["status"] == "已销号"
    with ledger.cursor() as cur:
        counts = problems.ledger_counts(cur, ["2025Q3"])
    assert counts[["assigned", "open", "overdue", "closed_on_time"]].iloc[0].tolist() == [1, 0, 0, 0]  # closed late


# -- the score ----------------------------------------------------------------------------------------
def test_import_answer_close_and_overdue_move_the_score_and_explain_says_why(ledger, today):
    full = item(ledger, "U1", "sup.rectify")
    assert full["points"] == 4 and item(ledger, "U1", "sup.overdue")["points"] == 1      # no problem: full
    problems.import_problems(ledger, JC, csv("U1,2025Q3,site.links,首页错链3处,,2025-09-20,2025-10-20",
                                             "U1,2025Q3,site.interp,政策文件未同步解读,,2025-09-21,2025-10-31"),
                             "list.csv")
    rectify = item(ledger, "U1", "sup.rectify")
    assert rectify["points"] == 0
    assert "按期销号问题数0÷下发问题数2" in rectify["explanation"]
    assert "#1 首页错链3处(待整改)" in rectify["explanation"] and "#2 政策文件未同步解读(待整改)" in rectify["explanation"]
    problems.respond(ledger, U1, 1, "已修复")
    problems.review(ledger, JC, 1, True)                              # 2025-10-15 ≤ 2025-10-20: on time
    rectify = item(ledger, "U1", "sup.rectify")
    assert rectify["points"] == 2 and "#1 首页错链3处(已销号,按期)" in rectify["explanation"]
    before = engine.score(ledger, ["2025Q3"]).units.set_index("unit_code").loc["U1", "total"]
    today("2025-11-01")                                               # #2 is now past its 整改期限
    overdue = item(ledger, "U1", "sup.overdue")
    assert overdue["points"] == 0.5 and "#2 政策文件未同步解读(逾期未整改)" in overdue["explanation"]
    assert "逾期未整改问题数 由系统计算:问题清单逾期未整改数1个,截至2025-11-01" in overdue["source_text"]
    after = engine.score(ledger, ["2025Q3"]).units.set_index("unit_code").loc["U1", "total"]
    assert after == pytest.approx(before - 0.5 * 40 / 40, abs=0.01)
    assert item(ledger, "U2", "sup.rectify")["points"] == 4                   # U2 has no problem


# -- files ----------------------------------------------------------------------------------------------
def test_template_imports_and_unit_workbook(ledger, today):
    template = problems.template()
    ws = openpyxl.load_workbook(io.BytesIO(template)).active
    assert [c.value for c in ws[1]] == list(problems.HEADERS)
    problems.add_problem(ledger, JC, "U1", "2025Q3", "=HYPERLINK(\"x\")首页错链", found_on="2025-09-20",
                         due_on="2025-10-20")
    ws = openpyxl.load_workbook(io.BytesIO(problems.unit_workbook(ledger, U1, "U1"))).active
    header = [c.value for c in ws[1]]
    assert header[:4] == ["编号", "季度", "考评项", "问题描述"] and "整改期限" in header and "状态" in header
    row = [c.value for c in ws[2]]
    assert row[3].startswith("'=HYPERLINK") and "待整改" in row                      # text, not a formula
    with pytest.raises(PermissionDenied):
        problems.unit_workbook(ledger, U2, "U1")


# -- the command line -----------------------------------------------------------------------------------
def cli(db, *args, as_user=None, today="2025-10-15"):
    return run_cli(*((["--as", as_user] if as_user else []) + list(args)), db=db, KAOPING_TODAY=today)


def test_cli_import_list_respond_review(ledger, tmp_path):
    db = ledger.path
    ledger.close()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv("U1,2025Q3,,首页错链,,2025-09-20,2025-10-20", "U9,2025Q3,,x,,2025-09-20,2025-10-20"))
    r = cli(db, "problems", "import", str(bad))
    assert r.returncode == 1 and "第3行,列「单位代码」,值「U9」" in r.stdout + r.stderr
    good = tmp_path / "list.csv"
    good.write_bytes(csv("U1,2025Q3,site.links,首页错链,https://www.example.gov.cn/a,2025-09-20,2025-10-20",
                         encoding="gbk"))
    r = cli(db, "problems", "import", str(good))
    assert r.returncode == 0 and "新增1个问题" in r.stdout
    r = cli(db, "problems", "list", "--format", "json")
    [rec] = json.loads(r.stdout)
    assert list(rec) == ["id", "unit_code", "period", "item_id", "description", "link", "found_on", "due_on",
                         "status", "response", "reviewed_by", "reviewed_on"]
    assert rec == {"id": 1, "unit_code": "U1", "period": "2025Q3", "item_id": "site.links", "description": "首页错链",
                   "link": "https://www.example.gov.cn/a", "found_on": "2025-09-20", "due_on": "2025-10-20",
                   "status": "待整改", "response": None, "reviewed_by": None, "reviewed_on": None}
    r = cli(db, "problems", "respond", "1", "--note", "已修复", "--link", "https://www.example.gov.cn/b", as_user="u1")
    assert r.returncode == 0, r.stderr
    assert cli(db, "problems", "review", "1", "--pass").returncode == 2            # --note is required
    r = cli(db, "problems", "review", "1", "--pass", "--note", "复核通过")
    assert r.returncode == 0 and "已销号" in r.stdout
    [rec] = json.loads(cli(db, "problems", "list", "--status", "已销号", "--format", "json").stdout)
    assert (rec["status"], rec["response"], rec["reviewed_by"], rec["reviewed_on"]) == ("已销号", "已修复", "命令行", "2025-10-15")
    assert json.loads(cli(db, "problems", "list", "--unit", "U2", "--format", "json").stdout) == []
    r = cli(db, "problems", "list", "--status", "不存在", "--format", "json")
    assert r.returncode == 1 and "状态「不存在」无效" in r.stderr
    r = cli(db, "problems", "review", "1", "--return", "--note", "x")
    assert r.returncode == 1 and "只有待复核的问题可以复核" in r.stderr
    r = cli(db, "explain", "U1", "--period", "2025Q3", "--format", "json")
    rectify = next(i for i in json.loads(r.stdout)["items"] if i["item_id"] == "sup.rectify")
    assert rectify["points"] == 4 and "#1 首页错链(已销号,按期)" in rectify["explanation"]
