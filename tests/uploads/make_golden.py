"""Writes the golden upload files of tests/test_ingest.py (run once; the files are committed).

    .venv/bin/python tests/uploads/make_golden.py

Registry: tests/uploads/units.csv; schemes: scheme.yaml (市直部门) and scheme_xz.yaml (乡镇街道).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CODES = "unit_code,period,self_score,has_group,items,links,reply_rate,budget,satisfaction," \
        "apps_new,apps_carried,apps_closed,apps_ontime,apps_forward"
NAMES = "单位代码,季度,自评分,成立领导小组,主动公开信息条数,网站错链数,依申请按期答复率,预算按时公开,满意度得分," \
        "本期新收申请数,上期结转申请数,本期办结申请数,按期办结申请数,结转下期申请数"
# the same three rows in every good file: 2 市直部门 units and one 乡镇街道 unit
ROWS = [
    "SZ001,2025Q3,88.5,是,1234,3,95,不适用,5,10,2,11,10,1",
    "SZ002,2025Q3,,否,12,0,100,是,-3.5,0,0,0,0,0",
    "XZ001,2025Q3,90,是,7,,,,,,,,,",
]


def csv_text(header: str, rows: list[str], sep: str = ",") -> str:
    lines = [header] + rows
    return "\r\n".join(line.replace(",", sep) for line in lines) + "\r\n"


def write(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(data)


def xlsx(rows: list[list], percent_cells: tuple = ()) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "数据"
    for r in rows:
        ws.append(r)
    for ref in percent_cells:
        ws[ref].number_format = "0%"
    wb.create_sheet("说明").append(["第二个工作表不会被读取"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def main() -> None:
    good = csv_text(CODES, ROWS)
    write("good_utf8_bom.csv", b"\xef\xbb\xbf" + good.encode("utf-8"))
    # Chinese headers and other period spellings, no BOM
    rows_cn = [ROWS[0].replace("2025Q3", "2025年第三季度"), ROWS[1].replace("2025Q3", "2025-Q3"),
               ROWS[2].replace("2025Q3", "2025 Q3")]
    write("good_utf8.csv", csv_text(NAMES, rows_cn).encode("utf-8"))
    write("good_gbk.csv", csv_text(NAMES, rows_cn).encode("gbk"))
    # GB18030-only characters (not in GBK) in an informational column
    rows_18030 = [r + f",{note}" for r, note in zip(ROWS, ["䶮字测试", "€", "𠀀"])]
    write("good_gb18030.csv", csv_text(CODES + ",备注", rows_18030).encode("gb18030"))
    # Excel "Unicode text": UTF-16 LE with BOM, tab separated
    write("good_utf16.csv", csv_text(NAMES, ROWS, "\t").encode("utf-16"))
    write("good_tab.csv", csv_text(CODES, ROWS, "\t").encode("utf-8"))
    # forgiving values: full-width digits, thousands separators, 95%, bool and NA spellings,
    # headers with a unit in brackets, a title line above the header, a 单位名称 column
    forgiving = ("2025年第三季度政务公开数据\r\n"
                 "单位代码,单位名称,季度,自评分,成立领导小组,主动公开信息条数,网站错链数,依申请按期答复率(%),预算按时公开,"
                 "满意度得分,apps_new,apps_carried,apps_closed,apps_ontime,apps_forward\r\n"
                 'SZ001,市教育局,2025年三季度,８８.５,Y,"1,234",３,95%,NA,5,10,2,11,10,1\r\n'
                 "\r\n"
                 "SZ002,市公安局,2025年第3季度,,false,１２,0,100%,y,-3.5,0,0,0,0,0\r\n"
                 "xz001,东湖街道,2025Q3,90,TRUE,7,,,,,,,,,\r\n")
    write("good_forgiving.csv", forgiving.encode("utf-8"))
    # long layout with Chinese headers; the self score as an indicator row
    long_rows = ["单位代码,季度,指标,数值"]
    for row in ROWS:
        cells = row.split(",")
        for code, v in zip(CODES.split(",")[2:], cells[2:]):
            if v:
                long_rows.append(f"{cells[0]},{cells[1]},{'自评分' if code == 'self_score' else code},{v}")
    write("good_long.csv", ("\r\n".join(long_rows) + "\r\n").encode("utf-8"))

    def typed(row: str) -> list:
        out = []
        for v in row.split(","):
            try:
                out.append(int(v))
            except ValueError:
                try:
                    out.append(float(v))
                except ValueError:
                    out.append(v or None)
        return out

    sheet = [CODES.split(",")] + [typed(r) for r in ROWS]
    sheet[1][6] = 0.95  # reply_rate 95% as Excel stores a percent-formatted cell
    write("good.xlsx", xlsx(sheet, percent_cells=("G2",)))
    write("good_title.xlsx", xlsx([["2025年第三季度数据"], []] + sheet, percent_cells=("G4",)))

    # -- bad files ----------------------------------------------------------------------------
    write("empty.csv", b"")
    write("blank_lines.csv", b"\r\n,,,\r\n  \r\n")
    write("binary.csv", bytes(range(256)) * 4)
    write("bad_encoding.csv", "unit_code,period\r\nSZ001,".encode() + b"\x80\xff\xfe\x81" + b"\r\n")
    write("not_really.xlsx", good.encode("utf-8"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "不是 Excel")
    write("broken.xlsx", buf.getvalue())
    write("legacy.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
    write("missing_columns.csv", csv_text("unit_code,self_score,items", ["SZ001,80,3"]).encode())
    write("no_indicators.csv", csv_text("unit_code,period,self_score", ["SZ001,2025Q3,80"]).encode())
    write("unknown_column.csv", csv_text(CODES + ",foo,网站数", [r + ",1," for r in ROWS]).encode())
    write("unknown_unit.csv", csv_text(CODES, [ROWS[0], ROWS[1].replace("SZ002", "SZ999"),
                                               ROWS[2].replace("XZ001", "")]).encode())
    write("bad_period.csv", csv_text(CODES, [ROWS[0].replace("2025Q3", "2025Q5"),
                                             ROWS[1].replace("2025Q3", "三季度"),
                                             ROWS[2].replace("2025Q3", "")]).encode())
    write("no_scheme.csv", csv_text(CODES, [ROWS[0].replace("2025Q3", "2024Q4"),
                                            ROWS[1].replace("SZ002", "QT001")]).encode())
    write("wrong_type.csv", csv_text(
        CODES, ["SZ001,2025Q3,八十,maybe,abc,2.5,95,x,1.2.3,10%,2,11,10,1"]).encode())
    write("out_of_range.csv", csv_text(
        CODES, ["SZ001,2025Q3,88,是,-1,501,101,是,11,10,2,11,10,1",
                "SZ002,2025Q3,300,否,0,0,-5,否,-10.5,0,0,0,0,0"]).encode())
    write("na_not_allowed.csv", csv_text(
        CODES, ["SZ001,2025Q3,88,不适用,N/A,0,NA,不适用,5,10,2,11,10,1"]).encode())
    write("duplicate.csv", csv_text(CODES, [ROWS[0], ROWS[1], ROWS[0].replace("2025Q3", "2025年第三季度")]).encode())
    write("checks.csv", csv_text(
        CODES, ["SZ001,2025Q3,88,是,10,0,95,是,5,10,2,11,12,1",
                "SZ002,2025Q3,88,是,10,0,95,是,5,10,2,11,10,3"]).encode())
    write("not_in_scheme.csv", csv_text(CODES, [ROWS[2].replace(",,,,,,,,,", ",3,,,,,,,,")]).encode())
    write("duplicate_header.csv", csv_text(CODES + ",主动公开信息条数", [r + ",5" for r in ROWS]).encode())
    write("long_bad.csv", ("单位代码,季度,指标,数值\r\n"
                           "SZ001,2025Q3,items,5\r\n"
                           "SZ001,2025Q3,主动公开信息条数,6\r\n"
                           "SZ001,2025Q3,bogus,1\r\n"
                           "SZ001,2025Q3,links,-2\r\n"
                           "SZ001,2025Q3,apps_ontime,9\r\n"
                           "SZ001,2025Q3,apps_closed,3\r\n").encode("gbk"))
    write("forbidden.csv", good.encode("utf-8"))
    write("bad.xlsx", xlsx([CODES.split(",")[:5], ["SZ001", "2025Q3", 80, "也许", -3],
                            ["SZ001", "2025Q3", 80, "是", 3]]))


if __name__ == "__main__":
    main()
