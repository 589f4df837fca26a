"""The command line of the year: ``annual``, ``annual-report`` (年报统计表) and ``annual-bulletin``.

:func:`register` adds them to the parser of :mod:`scoring.cli`; every handler is a thin shell over
:mod:`scoring.annual`, :mod:`scoring.yearbook` and :mod:`scoring.annual_bulletin`.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from .errors import KaopingError

# The heavy modules (pandas, numpy, DuckDB) are imported inside the handlers, when a command runs:
# `python -m scoring --help` builds this parser too. This module does not import the CLI (no cycle).


def _year(text: str) -> int:
    """``--year``: a four-digit year (2000–2100), also written 2025年 or 2025年度."""
    year = text.strip().removesuffix("年度").removesuffix("年")
    if not (year.isascii() and year.isdigit() and 2000 <= int(year) <= 2100):
        raise argparse.ArgumentTypeError(f"年度「{text}」无效,应为四位年份,如 2025")
    return int(year)


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def cmd_annual(store, args, actor, *, _table):
    import pandas as pd

    from . import annual, periods, views
    from .ranking import rank_label
    from .rules import fmt

    df = views.annual(store, actor, args.year, args.group)
    if args.format == "json":
        _print_json(annual.records(df))
        return
    quarters = periods.year_quarters(args.year)
    if args.format == "csv":
        from .exports import to_csv_text

        out = pd.DataFrame([{**{k: v for k, v in r.items() if k != "quarters"}, **dict(zip(quarters, r["quarters"]))}
                            for r in annual.records(df)],
                           columns=["year", "group", "rank", "unit_code", "unit_name", "total", "grade", *quarters])
        sys.stdout.write(to_csv_text(out))
        return
    if df.empty:
        print(f"{args.year}年度没有考评数据")
        return
    rows = [[r["group"], rank_label(r["rank"], r["tied"]), r["unit_code"], r["unit_name"],
             *("缺报" if pd.isna(r[q]) else f"{r[q]:.2f}" for q in quarters), f"{r['total']:.2f}", r["grade"],
             "" if pd.isna(r["points"]) else fmt(float(r["points"]))] for r in df.to_dict("records")]
    print(_table(["分组", "名次", "单位代码", "单位名称", *annual.QUARTER_LABELS, "年度得分", "等次", "折算分"], rows,
                 set(range(4, 9))))
    flagged = df[df["n_missing"] > 0]
    if len(flagged):
        print(f"缺报季度按0分计:{'、'.join(f'{r.unit_code}({r.missing_quarters})' for r in flagged.itertuples())}")


def cmd_report(store, args, actor, *, _table):
    from . import views, yearbook

    if args.yearbook_cmd == "template":
        name = ""
        if args.unit:
            units = views.units(store, actor)
            match = units[units["unit_code"] == args.unit]
            if match.empty:
                raise KaopingError(f"单位代码「{args.unit}」不存在或无权访问")
            name = match["unit_name"].iloc[0]
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(yearbook.template_bytes(args.unit or "", name, args.year))
        print(f"已生成年报统计表模板:{out}(表二、表三、表四,按国办公开办函〔2021〕30号格式)")
    elif args.yearbook_cmd == "import":
        path = Path(args.file)
        if not path.is_file():
            raise KaopingError(f"找不到文件:{args.file}")
        result = yearbook.import_reports(store, path.read_bytes(), path.name, actor, as_published=args.as_published)
        print(result.message)
        for p in result.warnings:
            print(f"  {p}")
    elif args.yearbook_cmd == "show":
        rep, info = yearbook.report_of(store, actor, args.unit, args.year)
        if args.out:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(yearbook.docx_bytes(store, actor, args.unit, args.year))
            print(f"已生成 {args.unit} {args.year}年度年报统计表(Word):{out}")
            return
        if args.format == "json":
            _print_json({"unit_code": rep.unit_code, "year": rep.year, "errors": int(info["errors"]),
                         "warnings": int(info["warnings"]), "findings": info["findings"],
                         "cells": [{"table": t, "row": r, "column": c, "value": v} for (t, r, c), v in rep.values.items()]})
            return
        print(f"{info.get('unit_name') or rep.unit_code}({rep.unit_code}){rep.year}年度年报统计表"
              f"(勾稽错误{int(info['errors'])}处,提示{int(info['warnings'])}条)")
        for t in ("二", "三", "四"):
            print(f"\n{yearbook.TABLES[t]}")
            rows = yearbook.table_rows(rep, t)
            if t == "二":
                print(_table(["信息内容", "项目", "数值"],
                             [[r.label, c, yearbook._fmt(rep.values[("二", r.code, c)])]
                              for r in yearbook.ROWS if r.table == "二" for c in r.cols], {2}))
            else:
                cols = yearbook.T3_COLS if t == "三" else yearbook.T4_COLS
                print(_table(["项目", *cols], rows, set(range(1, len(cols) + 1))))
        for f in info["findings"]:
            print(f"{'提示' if f['warning'] else '错误'}:{yearbook.cell_name(tuple(f['cell']))}{f['message']}")
    else:  # list
        df = yearbook.uploads(store, actor, args.year)
        if df.empty:
            print("尚无年报统计表")
            return
        rows = [[r.year, r.unit_code, r.unit_name, r.errors, r.warnings, "是" if r.as_published else "",
                 r.uploaded_by, f"{r.uploaded_at:%Y-%m-%d %H:%M}"] for r in df.itertuples()]
        print(_table(["年度", "单位代码", "单位名称", "勾稽错误", "提示", "按已发布登记", "上传人", "上传时间"], rows, {3, 4}))


def cmd_bulletin(store, args, actor):
    from .annual_bulletin import write_bulletin

    print(write_bulletin(store, args.year, args.out, actor))


def register(command, parser_class, text_table) -> None:
    """Add the commands to ``python -m scoring``: ``command`` is :func:`scoring.cli.build_parser`'s,
    ``text_table`` the CLI's aligned plain-text table (passed in: this module does not import the CLI)."""
    p = command("annual", functools.partial(cmd_annual, _table=text_table), "年度考评结果:四个季度并列,按考评表的年度权重计算(默认平均),缺报季度按0分计")
    p.add_argument("--year", required=True, type=_year, help="年度,如 2025")
    p.add_argument("--group", help="分组")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="输出格式")

    p = command("annual-report", functools.partial(cmd_report, _table=text_table), "年报统计表(国办公开办函〔2021〕30号格式):模板、导入、查看")
    sub = p.add_subparsers(dest="yearbook_cmd", metavar="子命令", required=True, parser_class=parser_class)

    def leaf(name, help_text):
        q = sub.add_parser(name, help=help_text, description=help_text)
        q.add_argument("--as", dest="as_user_cmd", metavar="USER", default=argparse.SUPPRESS, help="以该账号的身份操作")
        return q

    q = leaf("template", "下载年报统计表模板(XLSX,版式同公开的年报表格)")
    q.add_argument("--out", required=True, help="输出文件 .xlsx")
    q.add_argument("--unit", help="预填单位代码")
    q.add_argument("--year", type=_year, help="预填年度")
    q = leaf("import", "导入年报统计表(模板 XLSX,或长表 CSV/XLSX:单位代码,年度,表,行,列,值),勾稽检查不通过则不导入")
    q.add_argument("file", help="年报统计表文件")
    q.add_argument("--as-published", action="store_true",
                   help="政务公开办:按已发布的原样登记(勾稽错误照录,计入年报考评项)")
    q = leaf("show", "查看某单位某年度的年报统计表;--out 输出为 Word 表格(官方版式)")
    q.add_argument("unit", help="单位代码")
    q.add_argument("--year", required=True, type=_year, help="年度,如 2025")
    q.add_argument("--out", help="输出文件 .docx")
    q.add_argument("--format", choices=["table", "json"], default="table", help="输出格式")
    q = leaf("list", "列出已报送的年报统计表及勾稽错误数")
    q.add_argument("--year", type=_year, help="年度")

    p = command("annual-bulletin", cmd_bulletin, "生成年度考评通报(docx)")
    p.add_argument("--year", required=True, type=_year, help="年度,如 2025")
    p.add_argument("--out", required=True, help="输出文件 .docx")
