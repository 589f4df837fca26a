"""The 年度通报 (docx): the year's result in the quarterly 通报's structure.

版头, 发文字号, title, 主送, 一、总体情况, 二、年度考评结果 (a table per group: the four quarters
side by side, the annual score, grade and 目标管理考核折算分), 三、存在问题 (不合格, missing quarters,
年报 with 勾稽 errors), 四、工作要求, 落款. The wording, fonts and office come from the quarterly
通报's template (``data/bulletin.yaml``); the building blocks are :mod:`scoring.bulletin`'s.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from . import engine, periods, views, yearbook
from .annual import QUARTER_LABELS, weights_text
from .bulletin import CN_NUM, _cn, _issue_date, _keep, _pct, _prose, load_template
from .errors import NotFound
from .permissions import User, require
from .ranking import rank_label
from .rules import fmt

REQUIREMENTS = (
    ("对照结果抓整改。", "各单位要对照年度考评结果和各季度得分明细,逐项分析失分原因,制定整改措施,"
                     "整改情况纳入{next_year}年第一季度考评。"),
    ("规范编制年度报告。", "各单位要严格按照国办公开办函〔2021〕30号规定的格式编制政府信息公开工作年度报告,"
                       "发布前逐项核对统计表的勾稽关系,确保数据真实准确、按时公布。"),
    ("按时报送季度数据。", "各单位要在每季度结束后10个工作日内报送考评数据,未报送的季度按0分计入年度结果。"),
)


def _group_order(present, template: dict) -> list[str]:
    order = [g for g in template.get("groups") or [] if g in present]
    return order + [g for g in present if g not in order]


def _quarter_cell(x) -> str:
    return "缺报" if x is None or pd.isna(x) else f"{float(x):.2f}"


def collect(store, actor: User, year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(annual table of every group, the 年报 uploads of the year) as the office sees them."""
    table = views.annual_ranking(store, actor, year, scores=engine.score(store, periods.year_quarters(year)))
    if table.empty:
        raise NotFound(f"{year}年度没有考评数据,无法生成年度通报")
    return table, yearbook.uploads(store, actor, year)


def build_document(table: pd.DataFrame, reports: pd.DataFrame, year: int, template: dict, issued: date) -> bytes:
    from .docx_writer import Doc

    quarters = periods.year_quarters(year)
    groups = _group_order(list(dict.fromkeys(table["group"])), template)
    fill = {"year": year, "next_year": year + 1, "city": template.get("city", ""), "units": len(table)}
    doc = Doc(template["fonts"], prose=_prose, fallbacks=template["fallback_fonts"])
    if template.get("header"):
        doc.para(template["header"], size=34, font="title", bold=True, color="C00000", align="center",
                 indent=False, before=6, after=12, line=48)
    if template.get("doc_number"):
        doc.para(str(template["doc_number"]).format_map({"year": year + 1, "quarter": 1}), align="center", indent=False)
    if template.get("header"):
        doc.red_rule()
    doc.para(f"关于{year}年度全市政务公开工作考评结果的通报", size=22, font="title", bold=True, align="center",
             indent=False, before=12, after=18, line=34)
    if template.get("addressees"):
        doc.para(template["addressees"], indent=False)
    doc.para("根据《{city}政务公开工作考评办法》,市政务公开办公室汇总了全市{units}家单位{year}年度四个季度的考评结果,"
             "并对各单位{year}年度政府信息公开工作年度报告统计表进行了勾稽审核。现将{year}年度考评结果通报如下:".format_map(fill))

    doc.heading("一、总体情况")
    n_bad = int((~table["passed"].astype(bool)).sum())
    top = table.loc[table["excellent"].astype(bool), "grade"].iloc[0] if table["excellent"].any() else "优秀"
    text = (f"{year}年度共考评{len(table)}家单位,其中"
            + "、".join(f"{_keep(g)}{int((table['group'] == g).sum())}家" for g in groups)
            + f"。全市年度平均得分{table['total'].mean():.2f}分,{int(table['excellent'].sum())}家单位年度考评等次为{top},"
            + (f"{n_bad}家单位年度考评不合格。" if n_bad else "无年度考评不合格的单位。"))
    missing = table[table["n_missing"] > 0]
    if len(missing):
        text += f"{len(missing)}家单位有季度未报送数据,相应季度按0分计入年度得分。"
    doc.para(text)
    for k, g in enumerate(groups):
        sub = table[table["group"] == g]
        best, worst = sub[sub["total"] == sub["total"].max()], sub[sub["total"] == sub["total"].min()]
        q_means = "、".join(f"{label}{sub[q].mean():.2f}分" for label, q in zip(QUARTER_LABELS, quarters)
                            if sub[q].notna().any())
        excellent = sub[sub["excellent"].astype(bool)]
        text = (f"参评{len(sub)}家,年度平均得分{sub['total'].mean():.2f}分(各季度平均:{q_means});"
                f"最高分{best['total'].iloc[0]:.2f}分({'、'.join(_keep(n) for n in best['unit_name'])}),"
                f"最低分{worst['total'].iloc[0]:.2f}分({'、'.join(_keep(n) for n in worst['unit_name'])});"
                f"合格率{_pct(100 * sub['passed'].astype(bool).mean())}。")
        text += (f"{excellent['grade'].iloc[0] if len(excellent) else ''}等次{len(excellent)}家:{'、'.join(_keep(n) for n in excellent['unit_name'])}。" if len(excellent)
                 else "本年度无优秀等次单位。")
        doc.lead_para(f"({CN_NUM[k]}){_keep(g)}。", text)

    doc.heading("二、年度考评结果")
    doc.para("各组年度考评结果如下(按年度得分由高到低排列,得分相同的名次并列;缺报季度按0分计):")
    for k, g in enumerate(groups):
        sub = table[table["group"] == g].sort_values(["rank", "unit_code"])
        has_points = sub["points"].notna().any()
        header = ["名次", "单位"] + [label for label in QUARTER_LABELS] + ["年度得分", "等次"] + (["折算分"] if has_points else [])
        rows = [[rank_label(r["rank"], r["tied"]), _keep(r["unit_name"])] + [_quarter_cell(r[q]) for q in quarters]
                + [f"{r['total']:.2f}", r["grade"]] + ([fmt(float(r["points"]))] if has_points else [])
                for r in sub.to_dict("records")]
        widths = [1.6, 4.4, 1.5, 1.5, 1.5, 1.5, 1.7, 1.2] + ([1.2] if has_points else [])
        doc.para(f"({CN_NUM[k]}){_keep(g)}({len(sub)}家)", bold=True, keep_next=True, before=6)
        doc.table(header, rows, widths, size=9)
        note = f"年度得分为{weights_text_of(sub)}"
        if has_points:
            note += f";折算分为年度得分×{fmt(float(sub['points_max'].iloc[0]))}÷100,计入目标管理考核"
        doc.para(note + "。", size=12, line=20)

    doc.heading("三、存在问题")
    doc.heading("(一)年度考评不合格的单位", 2)
    fail = table[~table["passed"].astype(bool)]
    doc.para("本年度无年度考评不合格的单位。" if fail.empty else
             f"{len(fail)}家单位年度考评不合格:" + ";".join(
                 f"{_keep(r['unit_name'])}({_keep(r['group'])},{r['total']:.2f}分)" for r in fail.to_dict("records")) + "。")
    doc.heading("(二)季度数据缺报的单位", 2)
    doc.para("各单位均按时报送了四个季度的考评数据。" if missing.empty else
             "以下单位有季度未报送数据,相应季度按0分计:" + "、".join(
                 f"{_keep(r['unit_name'])}({r['missing_quarters']})" for r in missing.to_dict("records")) + "。")
    doc.heading("(三)年度报告统计表勾稽错误", 2)
    faulty = reports[reports["errors"] > 0] if not reports.empty else reports
    absent = table[~table["unit_code"].isin(reports["unit_code"])] if not reports.empty else table
    text = (f"{len(reports)}家单位报送了{year}年度年报统计表," if len(reports) else f"尚无单位报送{year}年度年报统计表,")
    text += ("经勾稽审核未发现错误。" if faulty.empty else
             f"其中{len(faulty)}家存在勾稽错误:" + "、".join(f"{_keep(r['unit_name'])}({int(r['errors'])}处)"
                                                         for r in faulty.to_dict("records")) + "。")
    if len(reports) and len(absent):
        text += f"{len(absent)}家单位尚未报送。"
    doc.para(text + f"年报按时发布和勾稽情况在{year + 1}年第一季度考评中计分。")

    doc.heading("四、工作要求")
    for k, (title, body) in enumerate(REQUIREMENTS):
        doc.lead_para(f"({CN_NUM[k]}){title}", body.format_map(fill))
    doc.para("", line=28)
    doc.para("", line=28)
    doc.para(template["office"], align="right", indent=False, right_indent=64)
    doc.para(template["date_format"].format(y=issued.year, m=issued.month, d=issued.day), align="right",
             indent=False, right_indent=80)
    if template.get("contact"):
        doc.para(template["contact"], size=14, line=28, before=12)
    return doc.bytes()


def weights_text_of(sub: pd.DataFrame) -> str:
    return str(sub["weights"].iloc[0]) if "weights" in sub and len(sub) else weights_text(np.full(4, 0.25))


def bulletin_bytes(store, year: int, actor: User, template_path=None, *, issued: date | None = None) -> bytes:
    """The 年度通报 as .docx bytes (office only)."""
    require(actor, "annual.view")
    require(actor, "bulletin")
    template = load_template(template_path)
    table, reports = collect(store, actor, year)
    return build_document(table, reports, year, template, _issue_date(template, issued))


def write_bulletin(store, year: int, out_path, actor: User, template_path=None) -> str:
    data = bulletin_bytes(store, year, actor, template_path)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return _cn(f"已生成{year}年度考评通报:") + str(out) + _cn(f"({len(data) / 1024:.0f} KB)")
