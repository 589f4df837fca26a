"""Uploads: golden files (every encoding, layout and bad case), fuzzing, and the write path."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.cli import CLI_OFFICE
from scoring.permissions import User
from scoring.errors import InputError, Problems
from scoring.ingest import UploadRejected, check_upload, ingest
from scoring.readers import MAX_BYTES, decode_bytes, read_upload, sniff_delimiter
from scoring.schemes import save_scheme
from scoring.store import Store
from scoring.units import save_units
from tests.support import setup_store

UPLOADS = Path(__file__).resolve().parent / "uploads"
CLERK = User("sz1", "unit", "SZ001")


@pytest.fixture
def ustore():
    s = setup_store(Store(":memory:"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def shared_store():
    s = setup_store(Store(":memory:"))
    yield s
    s.close()


# -- golden files ---------------------------------------------------------------------------------
GOOD = ["good_utf8_bom.csv", "good_utf8.csv", "good_gbk.csv", "good_gb18030.csv", "good_utf16.csv",
        "good_tab.csv", "good_forgiving.csv", "good_long.csv", "good.xlsx", "good_title.xlsx"]

# file -> (acting user, [(row, column, fragment of the message)]) in the order reported
BAD: dict[str, tuple[User, list[tuple]]] = {
    "empty.csv": (CLI_OFFICE, [(None, "", "文件为空")]),
    "blank_lines.csv": (CLI_OFFICE, [(None, "", "文件中没有任何内容")]),
    "binary.csv": (CLI_OFFICE, [(None, "", "文件含有二进制内容")]),
    "bad_encoding.csv": (CLI_OFFICE, [(None, "", "无法识别文件编码")]),
    "not_really.xlsx": (CLI_OFFICE, [(None, "", "内容不是有效的 Excel 文件")]),
    "broken.xlsx": (CLI_OFFICE, [(None, "", "无法读取 Excel 文件")]),
    "legacy.xls": (CLI_OFFICE, [(None, "", "不支持旧版 Excel(.xls)")]),
    "missing_columns.csv": (CLI_OFFICE, [(1, "", "缺少必需的列 period(季度)")]),
    "no_indicators.csv": (CLI_OFFICE, [(1, "", "没有任何指标列")]),
    "unknown_column.csv": (CLI_OFFICE, [(1, "foo", "未知的指标列「foo」"), (1, "网站数", "未知的指标列「网站数」")]),
    "duplicate_header.csv": (CLI_OFFICE, [(1, "主动公开信息条数", "与第5列「items」重复")]),
    "unknown_unit.csv": (CLI_OFFICE, [(3, "unit_code", "单位代码「SZ999」不在单位名录中"),
                                      (4, "unit_code", "单位代码不能为空")]),
    "bad_period.csv": (CLI_OFFICE, [(2, "period", "季度格式不正确:「2025Q5」"),
                                    (3, "period", "季度格式不正确:「三季度」"),
                                    (4, "period", "季度不能为空")]),
    "no_scheme.csv": (CLI_OFFICE, [(2, "period", "没有适用于该分组 2024Q4 的考评表"),
                                   (3, "period", "分组「其他单位」,没有适用于该分组 2025Q3 的考评表")]),
    "wrong_type.csv": (CLI_OFFICE, [(2, "self_score", "自评分应为 0–200 之间的数字"),
                                    (2, "has_group", "指标「成立领导小组」应填 是/否"),
                                    (2, "items", "指标「主动公开信息条数」应为非负整数"),
                                    (2, "links", "指标「网站错链数」是计数,应为整数"),
                                    (2, "budget", "指标「预算按时公开」应填 是/否"),
                                    (2, "satisfaction", "指标「满意度得分」应为数字"),
                                    (2, "apps_new", "不是比率,不能写百分号")]),
    "out_of_range.csv": (CLI_OFFICE, [(2, "items", "是计数,不能为负数"),
                                      (2, "links", "指标「网站错链数」不能大于500"),
                                      (2, "reply_rate", "是比率,应在 0–100 之间"),
                                      (2, "satisfaction", "不能大于10"),
                                      (3, "self_score", "自评分应为 0–200 之间的数字"),
                                      (3, "reply_rate", "是比率,应在 0–100 之间"),
                                      (3, "satisfaction", "不能小于-10")]),
    "na_not_allowed.csv": (CLI_OFFICE, [(2, "has_group", "指标「成立领导小组」不允许填写「不适用」"),
                                        (2, "items", "指标「主动公开信息条数」不允许填写「不适用」")]),
    "duplicate.csv": (CLI_OFFICE, [(4, "unit_code", "单位 SZ001 2025Q3 出现在第2行和第4行")]),
    "checks.csv": (CLI_OFFICE, [
        (2, "apps_ontime、apps_closed",
         "不满足校验规则「按期办结数不超过办结数」(apps_ontime <= apps_closed):按期办结申请数=12,本期办结申请数=11"),
        (3, "apps_new、apps_carried、apps_closed、apps_forward", "不满足校验规则「申请数收支平衡」")]),
    "not_in_scheme.csv": (CLI_OFFICE, [(2, "links", "考评表「测试用乡镇考评表」(t-xiangzhen)中没有指标「links」")]),
    "long_bad.csv": (CLI_OFFICE, [(3, "指标", "「items」出现在第2行和第3行"),
                                  (4, "指标", "未知指标「bogus」"),
                                  (5, "数值", "是计数,不能为负数"),
                                  (7, "数值", "不满足校验规则「按期办结数不超过办结数」")]),
    "forbidden.csv": (CLERK, [(3, "unit_code", "账号 sz1 只能上传本单位(SZ001)的数据,不能上传单位 SZ002"),
                              (4, "unit_code", "不能上传单位 XZ001")]),
    "bad.xlsx": (CLI_OFFICE, [(2, "has_group", "应填 是/否"), (2, "items", "是计数,不能为负数"),
                              (3, "unit_code", "出现在第2行和第3行")]),
}

EXPECTED_VALUES = {  # (unit, indicator) -> value (NaN with is_na for 不适用) of every good file
    ("SZ001", "has_group"): 1, ("SZ001", "items"): 1234, ("SZ001", "links"): 3, ("SZ001", "reply_rate"): 95,
    ("SZ001", "budget"): "NA", ("SZ001", "satisfaction"): 5, ("SZ001", "apps_new"): 10,
    ("SZ001", "apps_carried"): 2, ("SZ001", "apps_closed"): 11, ("SZ001", "apps_ontime"): 10,
    ("SZ001", "apps_forward"): 1,
    ("SZ002", "has_group"): 0, ("SZ002", "items"): 12, ("SZ002", "links"): 0, ("SZ002", "reply_rate"): 100,
    ("SZ002", "budget"): 1, ("SZ002", "satisfaction"): -3.5, ("SZ002", "apps_new"): 0,
    ("SZ002", "apps_carried"): 0, ("SZ002", "apps_closed"): 0, ("SZ002", "apps_ontime"): 0,
    ("SZ002", "apps_forward"): 0,
    ("XZ001", "has_group"): 1, ("XZ001", "items"): 7,
}


def test_every_golden_file_has_an_expectation():
    files = {p.name for p in UPLOADS.iterdir() if p.suffix in (".csv", ".xlsx", ".xls")} - {"units.csv"}
    assert files == set(GOOD) | set(BAD)


@pytest.mark.parametrize("name", GOOD + sorted(BAD))
def test_golden(shared_store, name):
    data = (UPLOADS / name).read_bytes()
    actor, expected = BAD.get(name, (CLI_OFFICE, []))
    checked = check_upload(shared_store, data, name, actor)
    got = [(r.row, r.column, r.message) for r in checked.problems.itertuples()]
    assert [(r, c) for r, c, _ in got] == [(r, c) for r, c, _ in expected], got
    for (_, _, message), (_, _, fragment) in zip(got, expected):
        assert fragment in message
    assert list(checked.problems.columns) == ["row", "column", "value", "message"]
    if expected:
        assert checked.values.empty and checked.submissions.empty
        return
    values = {(r.unit_code, r.indicator): ("NA" if r.is_na else r.value) for r in checked.values.itertuples()}
    assert values == EXPECTED_VALUES
    assert set(checked.values["period"]) == {"2025Q3"}
    subs = checked.submissions.set_index("unit_code")
    assert subs.loc["SZ001", "self_score"] == 88.5 and np.isnan(subs.loc["SZ002", "self_score"])
    assert subs.loc["XZ001", "self_score"] == 90
    assert checked.rows == (26 if name == "good_long.csv" else 3)  # long: 24 values + 2 自评分
    assert len(checked.preview) == min(checked.rows, 20)


def test_row_numbers_follow_the_spreadsheet(shared_store):
    # good_title.xlsx: a title in row 1, a blank row 2, the header in row 3
    table = read_upload((UPLOADS / "good_title.xlsx").read_bytes(), "good_title.xlsx", {"unit_code"})
    assert table.header_row == 3 and list(table.row_numbers) == [4, 5, 6]
    # good_forgiving.csv: title line, header in row 2, a blank line in row 4
    table = read_upload((UPLOADS / "good_forgiving.csv").read_bytes(), "good_forgiving.csv", {"单位代码"})
    assert table.header_row == 2 and list(table.row_numbers) == [3, 5, 6]
    checked = check_upload(shared_store, (UPLOADS / "good_forgiving.csv").read_bytes(), "f.csv", CLI_OFFICE)
    assert list(checked.submissions["row_no"]) == [3, 5, 6]


def test_rejected_upload_writes_nothing_and_carries_the_table(ustore):
    before = ustore.data_version
    with pytest.raises(UploadRejected) as info:
        ingest(ustore, (UPLOADS / "wrong_type.csv").read_bytes(), "wrong_type.csv", CLI_OFFICE)
    exc = info.value
    assert isinstance(exc, Problems) and isinstance(exc, InputError)
    assert len(exc.table) == 7 and len(exc.problems) == 7
    assert exc.problems[0]["row"] == 2 and "第2行,列「self_score」,值「八十」" in str(exc.problems[0])
    assert "7处问题" in exc.title
    for table in ("batches", "submissions", "indicator_values", "audit_log"):
        n = ustore.one(f"SELECT count(*) FROM {table} WHERE {'action = ' + repr('upload') if table == 'audit_log' else 'true'}")[0]
        assert n == 0, table
    assert ustore.data_version == before


def test_ingest_writes_one_batch_and_audits(ustore):
    data = (UPLOADS / "good_gbk.csv").read_bytes()
    result = ingest(ustore, data, "good_gbk.csv", CLI_OFFICE)
    assert not result.noop and result.batch_id == 1
    assert result.message == "已导入批次 #1:3行,24个数值,3个单位,季度 2025Q3"
    b = ustore.df("SELECT * FROM batches").iloc[0]
    assert b.file_name == "good_gbk.csv" and b.n_rows == 3 and list(b.periods) == ["2025Q3"]
    assert list(b.units) == ["SZ001", "SZ002", "XZ001"] and len(b.sha256) == 64
    assert ustore.one("SELECT count(*) FROM current_values")[0] == 24
    assert ustore.one("SELECT is_na FROM current_values WHERE unit_code='SZ001' AND indicator='budget'")[0]
    audit = ustore.df("SELECT * FROM audit_log WHERE action = 'upload'")
    assert len(audit) == 1 and audit.target[0] == "good_gbk.csv" and "批次 #1" in audit.detail[0]


def test_identical_reupload_is_a_noop_until_superseded_or_rolled_back(ustore):
    from scoring.batches import rollback

    a = (UPLOADS / "good_utf8.csv").read_bytes()
    first = ingest(ustore, a, "a.csv", CLI_OFFICE)
    again = ingest(ustore, a, "a-again.csv", CLI_OFFICE)
    assert again.noop and again.batch_id == first.batch_id
    assert again.message == "文件「a-again.csv」与批次 #1 内容相同,未重复导入"
    assert ustore.one("SELECT count(*) FROM batches")[0] == 1
    # a different file supersedes it; then the first file is new again
    ingest(ustore, (UPLOADS / "good_tab.csv").read_bytes(), "b.csv", CLI_OFFICE)
    third = ingest(ustore, a, "a.csv", CLI_OFFICE)
    assert not third.noop and third.batch_id == 3
    rollback(ustore, 3, CLI_OFFICE)
    fourth = ingest(ustore, a, "a.csv", CLI_OFFICE)
    assert not fourth.noop and fourth.batch_id == 4


def test_unit_clerk_may_upload_own_unit(ustore):
    data = "单位代码,季度,items\r\nSZ001,2025Q3,5\r\n".encode()
    assert ingest(ustore, data, "own.csv", CLERK).values == 1
    assert ustore.one("SELECT uploaded_by FROM batches")[0] == "sz1"


def test_size_limit(ustore):
    big = b"unit_code,period,items\n" + b"SZ001,2025Q3,1\n" * (MAX_BYTES // 15 + 10)
    checked = check_upload(ustore, big, "big.csv", CLI_OFFICE)
    assert checked.problems.iloc[0].message.startswith("文件过大") and "20 MB" in checked.problems.iloc[0].message


def test_decode_bytes_order_and_errors():
    assert decode_bytes("单位".encode("utf-8-sig")) == "单位"
    assert decode_bytes("单位".encode("utf-16")) == "单位"
    assert decode_bytes("单位".encode("gbk")) == "单位"
    assert decode_bytes("䶮".encode("gb18030")) == "䶮"
    with pytest.raises(InputError, match="无法识别文件编码"):
        decode_bytes(b"\x80\xff\xfe\x81")
    with pytest.raises(InputError, match="UTF-8 的 BOM"):
        decode_bytes(b"\xef\xbb\xbf\xff")
    assert sniff_delimiter("a\tb\tc\n1,2\t3") == "\t"
    assert sniff_delimiter("\n\na,b\n") == ","


def test_three_thousand_units_by_sixty_indicators_is_vectorised(ustore):
    """Not a timing test (see bench/): a province-scale quarter loads and round-trips."""
    n, k = 3000, 60
    inds = "\n".join(f"  - {{code: i{j:02d}, name: 指标{j:02d}, type: {['count', 'rate', 'number', 'bool'][j % 4]}}}"
                     for j in range(k))
    save_scheme(ustore, f"""scheme: big
title: 大表
applies_to: {{groups: [省直部门], from: 2025Q1, to: 2025Q4}}
total_max: 10
indicators:
{inds}
sections:
  - {{id: s, name: S, max: 10, items: [{{id: s.a, name: A, max: 10, rule: {{type: deduct, indicator: i00, per: 1}}}}]}}
grades: [{{name: 合格, min: 0}}]
checks: [{{id: c1, name: 检查, expr: "i04 <= i00 + 1000"}}]
""", CLI_OFFICE)
    codes = [f"P{i:05d}" for i in range(n)]
    save_units(ustore, pd.DataFrame({"unit_code": codes, "unit_name": codes, "group": "省直部门",
                                     "parent_code": None}), CLI_OFFICE)
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"unit_code": codes, "period": "2025Q3"})
    for j in range(k):
        df[f"i{j:02d}"] = rng.integers(0, 2 if j % 4 == 3 else 100, n)
    result = ingest(ustore, df.to_csv(index=False).encode(), "big.csv", CLI_OFFICE)
    assert result.values == n * k and result.units == n
    got = ustore.df("SELECT sum(value) AS s FROM current_values WHERE period = '2025Q3' AND unit_code LIKE 'P%'")
    assert got.s[0] == df.iloc[:, 2:].to_numpy().sum()


# -- fuzzing -----------------------------------------------------------------------------------------
def _outcome(store, data: bytes, name: str):
    """Either a clean load or a problem table, never anything else."""
    checked = check_upload(store, data, name, CLI_OFFICE)
    assert list(checked.problems.columns) == ["row", "column", "value", "message"]
    if checked.ok:
        assert checked.problems.empty
        assert set(checked.values.columns) == {"unit_code", "period", "indicator", "value", "is_na"}
    else:
        assert checked.values.empty
        assert all(isinstance(m, str) and m for m in checked.problems["message"])
        assert all(r is None or isinstance(r, int) for r in checked.problems["row"])
    return checked


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=2000), ext=st.sampled_from(["csv", "xlsx", "txt", "tsv"]))
def test_fuzz_random_bytes(shared_store, data, ext):
    _outcome(shared_store, data, f"random.{ext}")


GOOD_BYTES = {name: (UPLOADS / name).read_bytes() for name in GOOD}


@FUZZ
@given(name=st.sampled_from(GOOD), ops=st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "cut"]),
                                                          st.integers(0, 10**9), st.binary(min_size=1, max_size=4)),
                                                min_size=1, max_size=6))
def test_fuzz_byte_mutations_of_good_files(shared_store, name, ops):
    data = bytearray(GOOD_BYTES[name])
    for op, pos, blob in ops:
        p = pos % (len(data) + 1)
        if op == "flip" and data:
            data[p % len(data)] ^= blob[0] or 1
        elif op == "insert":
            data[p:p] = blob
        elif op == "delete":
            del data[p:p + len(blob)]
        elif op == "cut":
            del data[p:]
    _outcome(shared_store, bytes(data), name)


CELLS = st.one_of(st.sampled_from(["", "不适用", "NA", "n/a", "是", "否", "Y", "n", "TRUE", "1", "0", "-1", "1,234",
                                   "１２", "95%", "101", "1e400", "nan", "inf", "2025Q3", "2025年第五季度", "SZ001",
                                   "SZ999", "\"", ",", "\t", "\r\n", "=1+1", "0.5", "  7  "]),
                  st.text(max_size=8))


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 13), CELLS), min_size=1, max_size=8))
def test_fuzz_cell_mutations_end_in_load_or_problems(ustore, edits):
    """Random cell edits of a good file: ingest either loads (values round-trip) or rejects cleanly."""
    lines = (UPLOADS / "good_utf8.csv").read_text("utf-8").splitlines()
    rows = [line.split(",") for line in lines]
    for r, c, text in edits:
        rows[r][c] = text
    import csv
    import io
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    data = buf.getvalue().encode("utf-8")
    n_before = ustore.one("SELECT count(*) FROM indicator_values")[0]
    try:
        result = ingest(ustore, data, "mut.csv", CLI_OFFICE)
    except UploadRejected as exc:
        assert not exc.table.empty
        assert ustore.one("SELECT count(*) FROM indicator_values")[0] == n_before
        return
    if not result.noop:
        stored = ustore.one("SELECT count(*) FROM indicator_values WHERE batch_id = ?", [result.batch_id])[0]
        assert stored == result.values


def test_fuzz_random_mutation_smoke(shared_store):
    """A quick deterministic sweep on top of hypothesis: truncations of every good file."""
    rnd = random.Random(7)
    for name, data in GOOD_BYTES.items():
        for _ in range(10):
            _outcome(shared_store, data[: rnd.randrange(len(data) + 1)], name)


def test_template_round_trips_through_the_checker():
    """A filled-in template (Chinese headers, one row per allowed unit) is a valid upload."""
    import datetime

    from scoring.permissions import User
    from scoring.errors import PermissionDenied
    from scoring.exports import to_csv_bytes
    from scoring.ingest import template, template_period
    store = setup_store(Store(":memory:"))
    blank = template(store, CLI_OFFICE, "市直部门", "2025年第三季度")
    assert list(blank.columns[:3]) == ["单位代码", "季度", "自评分"] and "主动公开信息条数" in blank.columns
    assert blank["单位代码"].tolist() == ["SZ001", "SZ002", "SZ003"] and set(blank["季度"]) == {"2025Q3"}
    filled = blank.assign(**{c: "0" for c in blank.columns[3:]})
    checked = check_upload(store, to_csv_bytes(filled), "模板.csv", CLI_OFFICE)
    assert checked.ok, checked.problems
    clerk = User("clerk", "unit", "SZ002")
    assert template(store, clerk, "市直部门", "2025Q3")["单位代码"].tolist() == ["SZ002"]
    with pytest.raises(PermissionDenied):
        template(store, clerk, "乡镇街道", "2025Q3")
    assert template_period(store, "市直部门", datetime.date(2025, 11, 5)) == "2025Q3"
    assert template_period(store, "市直部门", datetime.date(2027, 2, 1)) == "2025Q4"  # the scheme's last quarter
