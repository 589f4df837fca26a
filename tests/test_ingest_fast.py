"""The fast paths of an upload give what the forgiving paths give.

Arrow's CSV reader splits the usual CSV (no quotes, every row as wide as the first) and Arrow's
kernels convert plain numbers; the csv module and the Python parser of ingest read and parse
everything else. These tests hold each fast path to its slow one: the same table, the same values,
the same problems on the same spreadsheet rows.
"""
from __future__ import annotations

import csv
import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import ingest, readers
from scoring.cli import CLI_OFFICE
from scoring.ingest import _parse_token, _tokens, check_upload
from scoring.store import Store
from tests.support import UPLOADS, setup_store


@pytest.fixture(scope="module")
def store():
    s = setup_store(Store(":memory:"))
    yield s
    s.close()


# -- numbers: Arrow's kernels against _parse_token -------------------------------------------------------
TRICKY = ["1e5", "  3 ", "3", "+2", "-0", "-0.0", "0", "1", "1.0", "0.0", "01", "007.50", "1,234", "1,234.5",
          "1,23", "１２", "１２．５", "95%", "９５％", "12 %", "nan", "NaN", "inf", "-inf", "Infinity", "1e400",
          "-1e400", "0x10", "1_000", "1 000", "", " ", "是", "否", "Y", "n", "NA", "n/a", "不适用", "true",
          "FALSE", ".5", "-.5", "5.", "1.", "+-1", "--1", "1e", "e1", "١٢", "²", "٣", "\u30001\u3000",
          "123456789012345", "1234567890123456", "0.123456789012345", "0.1234567890123456",
          "-999999999999999.999999999999999", "999999999999999.9999999999999999", "1.5e7", "10000001"]


def _same(a: float, b: float) -> bool:
    """Equal as doubles, bit for bit (-0.0 is not 0.0), NaN equal to NaN."""
    return np.float64(a).tobytes() == np.float64(b).tobytes() or (np.isnan(a) and np.isnan(b))


def _assert_as_parse_token(texts: list[str]) -> None:
    tok = _tokens(pa.array(texts, pa.string()))
    for k, text in enumerate(texts):
        num, is_num, pct, boolv, na = _parse_token(text)
        got = (tok.num[k], bool(tok.is_num[k]), bool(tok.pct[k]), tok.boolv[k], bool(tok.na[k]))
        assert _same(got[0], num) and got[1:3] == (is_num, pct) and _same(got[3], boolv) and got[4] == na, \
            (text, got, (num, is_num, pct, boolv, na))


def test_plain_numbers_take_the_kernels_and_give_what_the_python_parser_gives(monkeypatch):
    slow = []
    monkeypatch.setattr(ingest, "_parse_token", lambda text: slow.append(text) or _parse_token(text))
    _assert_as_parse_token(TRICKY)
    plain = {t for t in TRICKY if t not in slow}
    # the kernels decide exactly the plain forms; everything else goes through _parse_token
    assert plain == {"3", "+2", "-0", "-0.0", "0", "1", "1.0", "0.0", "01", "007.50", "123456789012345",
                     "0.123456789012345", "-999999999999999.999999999999999", "10000001"}
    for text in plain:     # and accept only what _parse_token accepts, as the same number
        num, is_num, pct, _, na = _parse_token(text)
        assert is_num and not pct and not na and _same(num, float(text))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789+-.,eE% １２％．\u3000xn是", max_size=10), max_size=30))
def test_random_texts_parse_alike(texts):
    _assert_as_parse_token(texts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.from_regex(r"[+-]?[0-9]{1,15}(\.[0-9]{1,15})?", fullmatch=True), min_size=1, max_size=50))
def test_plain_numbers_round_like_float(texts):
    """Arrow's parser rounds as float() does (pandas' to_numeric, used before, did not always)."""
    got = pc.cast(pa.array(texts), pa.float64()).to_numpy()
    assert [v.tobytes() for v in got] == [np.float64(float(t)).tobytes() for t in texts]
    _assert_as_parse_token(texts)


# -- CSV: Arrow's reader against the csv module ------------------------------------------------------
def _read(data: bytes, name: str = "t.csv", keys=frozenset({"unit_code", "单位代码"}), fast: bool = True):
    """The table read as read_upload reads it, or with the csv module only (``fast=False``); and
    whether Arrow's reader read it."""
    taken = []
    original = readers._csv_columns

    def spy(*args):
        taken.append(fast and original(*args))
        return taken[-1]

    readers._csv_columns = spy
    try:
        table = readers.read_upload(data, name, keys)
    finally:
        readers._csv_columns = original
    return table, any(taken)


def _as_read(table) -> dict:
    return {"problems": table.problems, "header": table.header, "header_row": table.header_row,
            "rows": table.row_numbers.tolist(), "stray": table.stray, "cells": table.cells.tolist(),
            "encoding": table.encoding, "delimiter": table.delimiter, "kind": table.kind}


def _assert_read_alike(data: bytes, fast: bool, **kw) -> readers.Table:
    table, taken = _read(data, **kw)
    slow, _ = _read(data, fast=False, **kw)
    assert taken == fast
    assert _as_read(table) == _as_read(slow)
    return table


CASES = {  # name -> (file, read by Arrow)
    "crlf": (b"unit_code,period,items\r\nSZ001,2025Q3,5\r\nSZ002,2025Q3,6\r\n", True),
    "lf, no last newline": (b"unit_code,period,items\nSZ001,2025Q3,5\nSZ002,2025Q3,6", True),
    "cr only": (b"unit_code,period,items\rSZ001,2025Q3,5\rSZ002,2025Q3,6\r", True),
    "mixed line ends": (b"unit_code,period,items\r\nSZ001,2025Q3,5\n\rSZ002,2025Q3,6\r\n", True),
    "title and blank lines": ("某市2025年第三季度报表\r\n\r\n单位代码,季度,items\r\nSZ001,2025Q3,5\r\n\r\n"
                              ",,\r\nSZ002,2025Q3,6\r\n\r\n".encode(), True),
    "title wider than the header": ("报表,,,,,,\n单位代码,季度,items\nSZ001,2025Q3,5\n".encode(), True),
    "padding": (" unit_code ,period,items\n SZ001 ,\u30002025Q3\u3000,\t5\xa0\nSZ002,2025 Q3,\u20036\n".encode(), True),
    "punctuation, no padding": ("单位代码,季度,备注\nSZ001,2025Q3,《条例》、附件\n".encode(), True),
    "tabs": ("单位代码\t季度\t主动公开信息条数\t备注\nSZ001\t2025Q3\t1,234\t a, b \n".encode(), True),
    "invisible characters": ("\ufeff单位代码,季度,items\nSZ\u200b001,2025Q3,5\u2060\n".encode(), True),
    "dos end of file": (b"unit_code,period,items\r\nSZ001,2025Q3,5\r\n\x1a", True),
    "data right of the header": (b"unit_code,period,items,\nSZ001,2025Q3,5,9\nSZ002,2025Q3,6,\n", True),
    "empty trailing header cells": (b"unit_code,period,items,,\nSZ001,2025Q3,5,,\n", True),
    "rows shorter than the header": (b"unit_code,period,items,links,\nSZ001,2025Q3\nSZ002,2025Q3\n", True),
    "header only": (b"unit_code,period,items\r\n", True),
    "gbk": ("单位代码,季度,主动公开信息条数\r\nSZ001,2025年第三季度,是\r\n".encode("gbk"), True),
    "utf-16": ("单位代码\t季度\t主动公开信息条数\r\nSZ001\t2025Q3\t12\r\n".encode("utf-16"), True),
    "no header key": (b"a,b,c\n1,2,3\n", True),
    "quotes": (b'unit_code,period,items\nSZ001,2025Q3,"1,234"\n', False),
    "ragged rows": (b"unit_code,period,items\nSZ001,2025Q3,5\nSZ002,2025Q3\nSZ003,2025Q3,5,6\n", False),
    "blank line below the header": (b"unit_code,period,items\n\nSZ001,2025Q3,5\n", False),
    "blank lines only below the header": (b"unit_code,period,items\n\n\n", False),
    "a cell over the csv module's limit": (b"unit_code,period,items\nSZ001,2025Q3," + b"9" * 140_000 + b"\n", False),
    "binary": (b"unit_code,period\nSZ001,\x072025Q3\n", False),
    "only blank lines": (b"\r\n\r\n", False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_arrow_reads_csv_as_the_csv_module_does(name):
    data, fast = CASES[name]
    _assert_read_alike(data, fast)


@pytest.mark.parametrize("path", sorted(UPLOADS.glob("*.csv")), ids=lambda p: p.name)
def test_golden_csv_files_read_alike(path):
    slow = {"good_forgiving.csv": "quotes", "bad_encoding.csv": "unreadable", "binary.csv": "unreadable",
            "blank_lines.csv": "no content", "empty.csv": "no content"}
    _assert_read_alike(path.read_bytes(), path.name not in slow)


def test_title_line_keeps_spreadsheet_row_numbers():
    data = CASES["title and blank lines"][0]
    table = _assert_read_alike(data, True)
    assert table.header_row == 3 and table.row_numbers.tolist() == [4, 7]
    assert table.cells.tolist() == [["SZ001", "2025Q3", "5"], ["SZ002", "2025Q3", "6"]]


def test_padding_is_stripped_and_stray_data_noted():
    table = _assert_read_alike(CASES["padding"][0], True)
    assert table.header == ["unit_code", "period", "items"]
    assert table.cells.tolist() == [["SZ001", "2025Q3", "5"], ["SZ002", "2025 Q3", "6"]]
    assert _assert_read_alike(CASES["data right of the header"][0], True).stray == [3]


def test_the_byte_screen_sees_every_control_and_whitespace_character():
    """Control characters are single bytes in UTF-8, and every whitespace character but \\r and \\n
    starts with one of the bytes the screen keeps: a text without them has no padding."""
    control = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
    for c in map(chr, range(0x110000)):
        if 0xD800 <= ord(c) <= 0xDFFF:
            continue
        first = c.encode("utf-8")[0]
        assert bool(control.match(c)) == (len(c.encode("utf-8")) == 1 and first in readers._CONTROL_BYTES)
        if c.isspace() and c not in "\r\n" and not control.match(c):   # (a control character is refused)
            assert first in readers._PADDING_BYTES[","], hex(ord(c))
            assert c == "\t" or first in readers._PADDING_BYTES["\t"], hex(ord(c))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="a,\t\r\n \u3000", max_size=40))
def test_lines_split_as_the_csv_module_reads_them(text):
    assert list(readers._lines(text)) == list(io.StringIO(text, newline=""))


def _old_sniff(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return "\t" if line.count("\t") > line.count(",") else ","
    return ","


@pytest.mark.parametrize("text", ["", "\n\n", "a,b\tc", "a\tb\tc,d", "\n" * 70_000 + "a\tb",
                                  "x," * 40_000 + "\t" * 50_000 + "\nq", "\u2028a\tb", " \r\n\x0ba\tb,c"])
def test_sniff_delimiter_reads_only_the_first_lines_but_answers_the_same(text):
    assert readers.sniff_delimiter(text) == _old_sniff(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["", "SZ001", " 5 ", "1,2", "是", "\u3000", "x\ty"]), max_size=5),
                max_size=6), st.sampled_from([",", "\t"]), st.sampled_from(["\r\n", "\n", "\r"]))
def test_random_tables_read_alike(rows, delimiter, newline):
    text = newline.join(delimiter.join(r) for r in [["unit_code", "period", "items"], *rows]) + newline
    table, _ = _read(text.encode())
    slow, _ = _read(text.encode(), fast=False)
    assert _as_read(table) == _as_read(slow)


# -- whole checks: values and problems, fast and slow --------------------------------------------------
MIXED = ("2025年第三季度政务公开数据\t\t\t\r\n\r\n"    # a title as Excel saves it: as wide as the table
         "单位代码\t季度\t自评分\t成立领导小组\t主动公开信息条数\t网站错链数\t依申请按期答复率\t预算按时公开\t满意度得分\r\n"
         "SZ001\t2025年第三季度\t８８．５\tY\t1,234\t３\t95%\t不适用\t+2.5\r\n"
         "SZ002\t2025Q3\t90\t否\t１２\t0\t100\t1\t-0\r\n"
         "\r\n"
         "SZ003\t2025Q3\t\t是\t1e3\t 7 \t99.5\t0\t1.25\r\n")


def _check(store, data: bytes, fast: bool):
    original = readers._csv_columns
    if not fast:
        readers._csv_columns = lambda *args: False
    try:
        return check_upload(store, data, "t.csv", CLI_OFFICE)
    finally:
        readers._csv_columns = original


def test_a_file_mixing_plain_and_forgiving_cells(store):
    data = MIXED.encode()
    assert _read(data)[1]
    checked = _check(store, data, True)
    assert checked.ok, checked.problems
    got = {(r.unit_code, r.indicator): ("NA" if r.is_na else r.value) for r in checked.values.itertuples()}
    assert got == {("SZ001", "has_group"): 1, ("SZ001", "items"): 1234, ("SZ001", "links"): 3,
                   ("SZ001", "reply_rate"): 95, ("SZ001", "budget"): "NA", ("SZ001", "satisfaction"): 2.5,
                   ("SZ002", "has_group"): 0, ("SZ002", "items"): 12, ("SZ002", "links"): 0,
                   ("SZ002", "reply_rate"): 100, ("SZ002", "budget"): 1, ("SZ002", "satisfaction"): 0,
                   ("SZ003", "has_group"): 1, ("SZ003", "items"): 1000, ("SZ003", "links"): 7,
                   ("SZ003", "reply_rate"): 99.5, ("SZ003", "budget"): 0, ("SZ003", "satisfaction"): 1.25}
    assert checked.submissions["row_no"].tolist() == [4, 5, 7]
    assert checked.submissions["self_score"].tolist()[:2] == [88.5, 90]
    slow = _check(store, data, False)
    assert checked.values.astype(object).equals(slow.values.astype(object))
    assert checked.submissions.equals(slow.submissions)


def test_problems_keep_their_rows_columns_and_values_below_a_title(store):
    data = ("某市报表\t\t\n\n单位代码\t季度\t自评分\t成立领导小组\t主动公开信息条数\t网站错链数\t依申请按期答复率\t满意度得分\n"
            "SZ001\t2025Q3\t八十\t也许\t-1\t1.5\t95%\t1e400\n"
            "\n"
            "SZ999\t2025Q3\t80\t是\t１２\t501\t101\t11\n"
            "SZ002\t2025Q5\t80\tN\t1,234\t3\t9５%\tabc\n"
            "SZ001\t2025Q3\t80\t是\t1\t1\t1\t1\n").encode()
    assert _read(data)[1]
    checked = _check(store, data, True)
    rows = [(r.row, r.column, r.value) for r in checked.problems.itertuples()]
    assert rows == [(4, "自评分", "八十"), (4, "成立领导小组", "也许"), (4, "主动公开信息条数", "-1"),
                    (4, "网站错链数", "1.5"), (4, "满意度得分", "1e400"), (6, "单位代码", "SZ999"),
                    (6, "网站错链数", "501"), (6, "依申请按期答复率", "101"), (6, "满意度得分", "11"),
                    (7, "季度", "2025Q5"), (7, "满意度得分", "abc"), (8, "单位代码", "SZ001")]
    assert "出现在第4行和第8行" in checked.problems["message"].iloc[-1]
    pd_slow = _check(store, data, False).problems
    assert checked.problems.equals(pd_slow)


@pytest.mark.parametrize("path", sorted(UPLOADS.glob("*.csv")), ids=lambda p: p.name)
def test_golden_files_check_alike(store, path):
    data = path.read_bytes()
    fast, slow = _check(store, data, True), _check(store, data, False)
    assert fast.problems.equals(slow.problems)
    assert fast.values.astype(object).equals(slow.values.astype(object))
    assert fast.submissions.equals(slow.submissions)
    assert fast.preview.equals(slow.preview)


def test_two_schemes_in_one_wide_file(store):
    """An entry per (text, scheme): the same text of a column checked under each scheme of the file."""
    data = ("单位代码,季度,主动公开信息条数,网站错链数\n"
            "SZ001,2025Q3,7,600\nXZ001,2025Q3,7,\nSZ002,2025Q3,-7,3\nXZ001,2025Q4,-7,\nXZ001,2025Q2,8,1\n").encode()
    checked = _check(store, data, True)
    assert [(r.row, r.column, r.value) for r in checked.problems.itertuples()] == [
        (2, "网站错链数", "600"), (4, "主动公开信息条数", "-7"), (5, "主动公开信息条数", "-7"),
        (6, "网站错链数", "1")]
    assert "中没有指标「网站错链数」" in checked.problems["message"].iloc[-1]
    assert "不能大于500" in checked.problems["message"].iloc[0]


def test_csv_module_limit_is_still_reported():
    table, taken = _read(CASES["a cell over the csv module's limit"][0])
    assert not taken and table.problems and "CSV 格式错误" in table.problems[0]["message"]
    assert csv.field_size_limit() < 140_000
