"""The quarterly 通报 (docx) and the score-table exports (xlsx, csv).

Every figure comes from ``ranking.ranked_history`` and ``reports`` so the dashboard, the 通报
and the exports say the same numbers. The document follows the shape of real 通报: 版头,
发文字号, title, 主送, 一、总体情况 (with two charts), 二、考评结果 (one table per group),
三、存在问题, 四、工作要求 (from ``data/bulletin.yaml``), 落款, then 附件 (the full score table,
landscape). Charts are rendered by plotly + kaleido (Chromium); if that fails the error says so.
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import engine, periods, reports
from .permissions import User, require
from .errors import InputError, KaopingError
from .exports import to_csv_bytes, to_xlsx_bytes
from .ranking import change_label, rank_label, ranked_history
from .rules import fmt
from .schemes import scheme_for

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "data" / "bulletin.yaml"
TREND_QUARTERS = 8
GRADE_ORDER = ["优秀", "良好", "合格", "一般", "不合格"]
GRADE_COLORS = {"优秀": "#2E7D32", "良好": "#1565C0", "合格": "#F9A825", "一般": "#EF6C00", "不合格": "#C62828"}
CHART_FONT = "Noto Sans CJK SC"
CN_NUM = "一二三四五六七八九十"


class ChartError(KaopingError):
    """The charts of the 通报 could not be rendered (no Chromium for kaleido, or it failed)."""


# =========================================================================================
# Data: one scoring run, everything the document says
# =========================================================================================
@dataclass
class BulletinData:
    period: str
    scores: engine.Scores
    ranked: pd.DataFrame        # ranked_history over the trend window
    current: pd.DataFrame       # ranked rows of ``period``
    groups: list[str]           # in template order
    template: dict

    @property
    def previous(self) -> str:
        return periods.previous(self.period)


def load_template(path=None) -> dict:
    p = Path(path) if path else DEFAULT_TEMPLATE
    if not p.is_absolute() and not p.exists():
        p = DEFAULT_TEMPLATE.parent.parent / p
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputError(f"通报模板不存在:{p}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"通报模板 {p} 格式错误:{exc}") from None
    fonts = {"title": "Noto Serif CJK SC", "body": "Noto Serif CJK SC",
             "heading": "Noto Sans CJK SC", "latin": "Times New Roman"}
    fonts.update(data.get("fonts") or {})
    data["fonts"] = fonts
    data.setdefault("office", "政务公开办公室")
    data.setdefault("city", "")
    data.setdefault("title", "关于{period_label}全市政务公开工作考评情况的通报")
    data.setdefault("requirements", [])
    data.setdefault("date_format", "{y}年{m}月{d}日")
    return data


def collect(store, period: str, template: dict) -> BulletinData:
    period = periods.parse_period(period)
    first = periods.from_index(periods.period_index(period) - TREND_QUARTERS + 1)
    window = periods.quarters_between(first, period)
    scores = engine.score(store, window)
    ranked = ranked_history(scores)
    current = ranked[ranked["period"] == period].reset_index(drop=True)
    if current.empty:
        raise InputError(f"{periods.label(period)}没有考评数据,无法生成通报")
    present = list(dict.fromkeys(current["group"]))
    order = [g for g in template.get("groups") or [] if g in present]
    order += sorted(g for g in present if g not in order)
    return BulletinData(period, scores, ranked, current, order, template)


def _fill(text: str, d: BulletinData, **extra) -> str:
    year, q = periods.split(d.period)
    values = dict(year=year, quarter=q, quarter_cn=CN_NUM[q - 1], period_label=periods.label(d.period),
                  city=d.template.get("city", ""), units=len(d.current), **extra)
    return str(text or "").format_map(_Default(values))


class _Default(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def _issue_date(template: dict, issued: date | None) -> date:
    if issued is not None:
        return issued
    raw = template.get("issue_date")
    if isinstance(raw, date):
        return raw
    if raw:
        return date.fromisoformat(str(raw))
    return date.today()


def _signed(x: float, unit: str = "分") -> str:
    if x is None or pd.isna(x):
        return ""
    x = float(engine.round2(x))
    if abs(x) < 0.005:
        return "持平"
    return f"{'提高' if x > 0 else '下降'}{abs(x):.2f}{unit}"


def _pct(x) -> str:
    return f"{fmt(float(x))}%"


def change_text(row) -> str:
    """较上季度: rank change label, and the score change when there is a previous score."""
    label = change_label(row["rank_change"])
    tc = row.get("total_change")
    if tc is None or pd.isna(tc):
        return label
    return f"{label}({float(tc):+.2f})"


# =========================================================================================
# Charts
# =========================================================================================
def _short_period(p: str) -> str:
    y, q = periods.split(p)
    return f"{y}年{CN_NUM[q - 1]}季度"


def trend_figure(d: BulletinData):
    import plotly.graph_objects as go

    trend = reports.group_trend(d.ranked)
    fig = go.Figure()
    all_periods = sorted(trend["period"].unique())
    for g in d.groups:
        t = trend[trend["group"] == g].sort_values("period")
        fig.add_trace(go.Scatter(x=[_short_period(p) for p in t["period"]], y=t["mean"], name=g,
                                 mode="lines+markers", line={"width": 2.5}, marker={"size": 7}))
    fig.update_layout(
        font={"family": CHART_FONT, "size": 15, "color": "#222"}, template="plotly_white",
        width=900, height=430, margin={"l": 60, "r": 60, "t": 20, "b": 90},
        legend={"orientation": "h", "y": -0.2, "x": 0.5, "xanchor": "center"},
        yaxis={"title": _cn("平均得分(分)"), "gridcolor": "#ddd"},
        xaxis={"categoryorder": "array", "categoryarray": [_short_period(p) for p in all_periods]})
    return fig


def grade_figure(d: BulletinData):
    import plotly.graph_objects as go

    dist = reports.grade_distribution(d.current)
    grades = [g for g in GRADE_ORDER if g in set(dist["grade"])]
    grades += sorted(set(dist["grade"]) - set(grades))
    fig = go.Figure()
    totals = [int(dist[dist["group"] == g]["units"].sum()) for g in d.groups]
    ticks = [_cn(f"{g}({n}家)") for g, n in zip(d.groups, totals)]
    for grade in grades:
        counts = [int(dist[(dist["group"] == g) & (dist["grade"] == grade)]["units"].sum()) for g in d.groups]
        fig.add_trace(go.Bar(x=ticks, y=counts, name=grade, marker_color=GRADE_COLORS.get(grade),
                             text=[str(c) for c in counts], textposition="outside", cliponaxis=False,
                             textfont={"size": 14}))
    fig.update_layout(
        barmode="group", font={"family": CHART_FONT, "size": 15, "color": "#222"}, template="plotly_white",
        width=900, height=430, margin={"l": 60, "r": 30, "t": 30, "b": 90},
        legend={"orientation": "h", "y": -0.15, "x": 0.5, "xanchor": "center", "traceorder": "normal"},
        yaxis={"title": _cn("单位数(家)"), "gridcolor": "#ddd"}, bargap=0.25, bargroupgap=0.05)
    return fig


def _browser_path() -> str | None:
    if os.environ.get("BROWSER_PATH"):
        path = os.environ["BROWSER_PATH"]
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            raise ChartError(f"无法生成通报图表:环境变量 BROWSER_PATH 指向的浏览器不存在或不可执行({path})")
        return path
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def render_png(figures: list) -> list[bytes]:
    """PNG bytes of each figure, rendered in one Chromium session; ChartError if impossible."""
    path = _browser_path()
    if path is None:
        raise ChartError("无法生成通报图表:未找到 Chromium 浏览器(kaleido 需要它)。"
                         "请安装 chromium(Debian: apt-get install chromium)或设置环境变量 BROWSER_PATH")
    os.environ.setdefault("BROWSER_PATH", path)
    try:
        import kaleido
    except ImportError as exc:
        raise ChartError(f"无法生成通报图表:缺少 kaleido({exc})") from exc
    with tempfile.TemporaryDirectory() as tmp:
        specs = [{"fig": fig, "path": str(Path(tmp) / f"chart{i}.png"),
                  "opts": {"format": "png", "width": fig.layout.width, "height": fig.layout.height, "scale": 2}}
                 for i, fig in enumerate(figures)]
        try:
            errors = kaleido.write_fig_from_object_sync(specs, cancel_on_error=True)
        except Exception as exc:  # noqa: BLE001 (any renderer failure becomes one clear error)
            raise ChartError(f"无法生成通报图表:kaleido/Chromium 渲染失败({type(exc).__name__}: {exc})") from exc
        if errors:
            raise ChartError(f"无法生成通报图表:{errors[0]}")
        out = []
        for spec in specs:
            p = Path(spec["path"])
            if not p.exists() or p.stat().st_size == 0:
                raise ChartError("无法生成通报图表:渲染器没有输出图片")
            out.append(p.read_bytes())
    return out


# =========================================================================================
# docx helpers: fonts (w:eastAsia), paragraphs, tables, page numbers
# =========================================================================================
def _qn(tag):
    from docx.oxml.ns import qn

    return qn(tag)


def _set_rfonts(rpr, east: str, latin: str) -> None:
    rfonts = rpr.find(_qn("w:rFonts"))
    if rfonts is None:
        from docx.oxml import OxmlElement

        rfonts = OxmlElement("w:rFonts")
        rpr.insert(0, rfonts)
    for attr in ("w:ascii", "w:hAnsi", "w:cs"):
        rfonts.set(_qn(attr), latin)
    rfonts.set(_qn("w:eastAsia"), east)
    rfonts.set(_qn("w:hint"), "eastAsia")


# Elements that follow w:pBdr in w:pPr (the schema fixes the order; Word is strict about it).
_AFTER_PBDR = ("w:shd", "w:tabs", "w:suppressAutoHyphens", "w:kinsoku", "w:wordWrap", "w:overflowPunct",
               "w:topLinePunct", "w:autoSpaceDE", "w:autoSpaceDN", "w:bidi", "w:adjustRightInd",
               "w:snapToGrid", "w:spacing", "w:ind", "w:contextualSpacing", "w:mirrorIndents",
               "w:suppressOverlap", "w:jc", "w:textDirection", "w:textAlignment", "w:textboxTightWrap",
               "w:outlineLvl", "w:divId", "w:cnfStyle", "w:rPr", "w:sectPr", "w:pPrChange")


class Doc:
    def __init__(self, template: dict):
        from docx import Document
        from docx.shared import Cm, Pt

        self.t = template
        self.fonts = template["fonts"]
        self.doc = Document()
        sec = self.doc.sections[0]
        sec.page_width, sec.page_height = Cm(21), Cm(29.7)
        sec.top_margin, sec.bottom_margin = Cm(3.7), Cm(3.0)
        sec.left_margin, sec.right_margin = Cm(2.8), Cm(2.6)
        sec.footer_distance = Cm(1.8)
        styles = self.doc.styles
        normal = styles["Normal"]
        normal.font.size = Pt(16)
        normal.font.name = self.fonts["latin"]
        _set_rfonts(normal.element.get_or_add_rPr(), self.fonts["body"], self.fonts["latin"])
        pf = normal.paragraph_format
        pf.space_before, pf.space_after = Pt(0), Pt(0)
        pf.line_spacing = Pt(28)
        for name in ("Heading 1", "Heading 2", "Title", "Table Grid"):
            try:
                st = styles[name]
            except KeyError:
                continue
            _set_rfonts(st.element.get_or_add_rPr(), self.fonts["heading"], self.fonts["latin"])
        self._register_fonts()
        self._page_number(sec)

    def _register_fonts(self) -> None:
        """fontTable entries with GB2312 charset and a Windows alternative, for Word's substitution."""
        part = None
        for rel in self.doc.part.rels.values():
            if rel.reltype.endswith("/fontTable"):
                part = rel.target_part
        if part is None:
            return
        xml = part.blob.decode("utf-8") if hasattr(part, "blob") else None
        if xml is None:
            return
        alt = {"serif": "宋体", "sans": "黑体"}
        entries = []
        for role in ("title", "body", "heading"):
            name = self.fonts[role]
            if f'w:name="{name}"' in xml or any(f'w:name="{name}"' in e for e in entries):
                continue
            kind = "sans" if "Sans" in name or "黑" in name else "serif"
            entries.append(
                f'<w:font w:name="{name}"><w:altName w:val="{alt[kind]}"/><w:charset w:val="86"/>'
                f'<w:family w:val="{"swiss" if kind == "sans" else "roman"}"/><w:pitch w:val="variable"/></w:font>')
        if entries:
            xml = xml.replace("</w:fonts>", "".join(entries) + "</w:fonts>")
            part._blob = xml.encode("utf-8")

    def _page_number(self, section) -> None:
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.oxml import parse_xml
        from docx.oxml.ns import nsdecls

        p = section.footer.paragraphs[0]
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        self._run(p, "— ", size=14, font="body")
        fld = parse_xml(f'<w:fldSimple {nsdecls("w")} w:instr="PAGE"><w:r><w:t>1</w:t></w:r></w:fldSimple>')
        p._p.append(fld)
        for r in fld.iter(_qn("w:r")):
            rpr = r.get_or_add_rPr()
            _set_rfonts(rpr, self.fonts["body"], self.fonts["latin"])
            sz = parse_xml(f'<w:sz {nsdecls("w")} w:val="28"/>')
            rpr.append(sz)
        self._run(p, " —", size=14, font="body")

    # -- text ------------------------------------------------------------------------------
    def _run(self, p, text, *, size=16, font="body", bold=False, color=None):
        from docx.shared import Pt, RGBColor

        r = p.add_run(_cn(text).replace(_KEEP_OPEN, "").replace(_KEEP_CLOSE, ""))
        r.font.size = Pt(size)
        r.font.bold = bold
        r.font.name = self.fonts["latin"]
        _set_rfonts(r._element.get_or_add_rPr(), self.fonts[font], self.fonts["latin"])
        if color:
            r.font.color.rgb = RGBColor.from_string(color)
        return r

    def para(self, text="", *, size=16, font="body", bold=False, align=None, indent=True, color=None,
             before=0, after=0, line=28, keep_next=False):
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.shared import Pt

        p = self.doc.add_paragraph()
        pf = p.paragraph_format
        if indent:
            pf.first_line_indent = Pt(size * 2)
        pf.space_before, pf.space_after = Pt(before), Pt(after)
        pf.line_spacing = Pt(line) if line else None
        pf.keep_with_next = keep_next
        if align:
            p.alignment = {"center": WD_ALIGN_PARAGRAPH.CENTER, "right": WD_ALIGN_PARAGRAPH.RIGHT,
                           "left": WD_ALIGN_PARAGRAPH.LEFT, "justify": WD_ALIGN_PARAGRAPH.JUSTIFY}[align]
        else:
            p.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        if text:
            self._run(p, text, size=size, font=font, bold=bold, color=color)
        return p

    def heading(self, text, level=1):
        """一、 in 黑体; (一) in body font bold. Real headings (outline levels), styled by hand."""
        from docx.shared import Pt

        p = self.doc.add_paragraph(style="Heading 1" if level == 1 else "Heading 2")
        pf = p.paragraph_format
        pf.first_line_indent = Pt(32)
        pf.space_before, pf.space_after = Pt(6 if level == 1 else 0), Pt(0)
        pf.line_spacing = Pt(28)
        pf.keep_with_next = True
        self._run(p, text, size=16, font="heading" if level == 1 else "body", bold=level != 1, color="000000")
        return p

    def lead_para(self, lead: str, text: str):
        """A paragraph that starts with a bold lead phrase, as 工作要求 do."""
        p = self.para()
        self._run(p, lead, bold=True)
        self._run(p, text)
        return p

    def red_rule(self):
        from docx.oxml import parse_xml
        from docx.oxml.ns import nsdecls

        p = self.para(indent=False, line=12, after=18)
        p._p.get_or_add_pPr().insert_element_before(parse_xml(
            f'<w:pBdr {nsdecls("w")}><w:bottom w:val="single" w:sz="18" w:space="1" w:color="C00000"/></w:pBdr>'),
            *_AFTER_PBDR)
        return p

    def picture(self, png: bytes, width_cm: float, caption: str):
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.shared import Cm

        p = self.doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.paragraph_format.keep_with_next = True
        p.paragraph_format.space_before = Cm(0.2)
        p.paragraph_format.first_line_indent = Cm(0)
        p.paragraph_format.line_spacing = 1.0  # an exact line height (the body's 28pt) would clip the image
        p.add_run().add_picture(io.BytesIO(png), width=Cm(width_cm))
        self.para(caption, size=12, font="heading", align="center", indent=False, after=6, line=20)

    # -- tables ----------------------------------------------------------------------------
    def table(self, header: list[str], rows: list[list[str]], widths_cm: list[float], *,
              size=10.5, left_cols=(1,)):
        from docx.enum.table import WD_TABLE_ALIGNMENT, WD_CELL_VERTICAL_ALIGNMENT
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.oxml import parse_xml
        from docx.oxml.ns import nsdecls
        from docx.shared import Cm, Pt

        t = self.doc.add_table(rows=1 + len(rows), cols=len(header))
        t.style = self.doc.styles["Table Grid"]
        t.alignment = WD_TABLE_ALIGNMENT.CENTER
        t.autofit = False  # w:tblLayout fixed: the column widths below are kept
        for j, w in enumerate(widths_cm):
            t.columns[j].width = Cm(w)
        for i, values in enumerate([header] + rows):
            row = t.rows[i]
            trpr = row._tr.get_or_add_trPr()
            trpr.append(parse_xml(f'<w:cantSplit {nsdecls("w")}/>'))
            if i == 0:
                trpr.append(parse_xml(f'<w:tblHeader {nsdecls("w")}/>'))
            for j, value in enumerate(values):
                cell = row.cells[j]
                cell.width = Cm(widths_cm[j])
                cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER
                p = cell.paragraphs[0]
                pf = p.paragraph_format
                pf.first_line_indent = Pt(0)
                pf.line_spacing = 1.0
                pf.space_before = pf.space_after = Pt(1)
                p.alignment = (WD_ALIGN_PARAGRAPH.LEFT if (i > 0 and j in left_cols) else WD_ALIGN_PARAGRAPH.CENTER)
                self._run(p, str(value), size=size, font="heading" if i == 0 else "body", bold=i == 0)
                if i == 0:
                    cell._tc.get_or_add_tcPr().insert_element_before(parse_xml(
                        f'<w:shd {nsdecls("w")} w:val="clear" w:color="auto" w:fill="E7E6E6"/>'),
                        "w:noWrap", "w:tcMar", "w:textDirection", "w:tcFitText", "w:vAlign", "w:hideMark")
        return t

    def landscape_section(self):
        from docx.enum.section import WD_ORIENT, WD_SECTION
        from docx.shared import Cm

        sec = self.doc.add_section(WD_SECTION.NEW_PAGE)
        sec.orientation = WD_ORIENT.LANDSCAPE
        sec.page_width, sec.page_height = Cm(29.7), Cm(21)
        sec.top_margin, sec.bottom_margin = Cm(2.5), Cm(2.2)
        sec.left_margin, sec.right_margin = Cm(2.5), Cm(2.5)
        return sec

    def bytes(self) -> bytes:
        buf = io.BytesIO()
        self.doc.save(buf)
        return buf.getvalue()


# =========================================================================================
# The 通报
# =========================================================================================
def _names(df: pd.DataFrame, limit: int | None = None) -> str:
    names = [_keep(n) for n in df["unit_name"]]
    if limit and len(names) > limit:
        return "、".join(names[:limit]) + f"等{len(names)}家单位"
    return "、".join(names)


def _overview(doc: Doc, d: BulletinData) -> None:
    city = reports.city_summary(d.ranked)
    now = city[city["period"] == d.period].iloc[0]
    prev = city[city["period"] == d.previous]
    prev = prev.iloc[0] if len(prev) else None
    summary = reports.group_summary(d.ranked)
    per = summary[summary["period"] == d.period].set_index("group")
    before = summary[summary["period"] == d.previous].set_index("group")
    n_fail = int((~reports._is_pass(d.current)).sum())

    counts = "、".join(f"{_keep(g)}{int(per.loc[g, 'units'])}家" for g in d.groups)
    text = f"本季度共考评{int(now['units'])}家单位,其中{counts}。全市平均得分{now['mean']:.2f}分"
    if prev is not None:
        text += f",较上季度({prev['mean']:.2f}分){_signed(now['mean'] - prev['mean'])}"
    text += f";合格率{_pct(now['pass_rate'])}"
    if prev is not None:
        text += f"(上季度{_pct(prev['pass_rate'])})"
    text += f"。{int(now['excellent'])}家单位考评等次为优秀"
    text += f",{n_fail}家单位不合格。" if n_fail else ",无不合格单位。"
    doc.para(_cn(text))

    for k, g in enumerate(d.groups):
        row = per.loc[g]
        sub = d.current[d.current["group"] == g]
        best = sub[sub["total"] == sub["total"].max()]
        worst = sub[sub["total"] == sub["total"].min()]
        text = f"参评{int(row['units'])}家,平均得分{row['mean']:.2f}分"
        if g in before.index:
            text += f"(上季度{before.loc[g, 'mean']:.2f}分,{_signed(row['mean'] - before.loc[g, 'mean'])})"
        else:
            text += "(上季度无考评数据)"
        text += (f";最高分{row['max']:.2f}分({_names(best)}),最低分{row['min']:.2f}分({_names(worst)});"
                 f"合格率{_pct(row['pass_rate'])}。")
        if int(row["excellent"]):
            text += f"优秀等次{int(row['excellent'])}家:{_keep(row['excellent_units'])}。"
        else:
            text += "本季度无优秀等次单位。"
        p = doc.para()
        doc._run(p, f"({CN_NUM[k]}){_keep(g)}。", bold=True)
        doc._run(p, _cn(text))


def _results(doc: Doc, d: BulletinData) -> None:
    doc.para(_cn("各组考评结果如下(按得分由高到低排列,得分相同的名次并列):"))
    for k, g in enumerate(d.groups):
        sub = d.current[d.current["group"] == g].sort_values(["rank", "unit_code"])
        doc.para(f"({CN_NUM[k]}){_keep(g)}({len(sub)}家)", bold=True, keep_next=True, before=6)
        rows = [[rank_label(r["rank"], r["tied"]), _keep(r["unit_name"]), f"{r['total']:.2f}", r["grade"], change_text(r)]
                for r in sub.to_dict("records")]
        doc.table(["名次", "单位", "得分", "等次", "较上季度"], rows, [2.5, 6.3, 2.0, 1.8, 3.0])
        doc.para("", line=10)
    doc.para(_cn("注:“较上季度”栏为名次变化(↑上升、↓下降、—持平,“新”为上季度未参评),括号内为得分增减。"),
             size=12, line=20)


def _problems(doc: Doc, d: BulletinData) -> None:
    k = 0
    fail = reports.failing(d.current)
    doc.heading(f"({CN_NUM[k]})不合格及触发单项否决的单位", 2)
    if fail.empty:
        doc.para("本季度无考评不合格或触发单项否决的单位。")
    else:
        parts = [f"{_keep(r['unit_name'])}({_keep(r['group'])},{_reason(r)})" for r in fail.to_dict("records")]
        doc.para(_cn(f"{len(fail)}家单位考评不合格:" + ";".join(parts) + "。"))
    k += 1

    losses = reports.item_losses(d.scores, d.period)
    skip = reports.never_assessed_items(d.scores, d.period)
    if not skip.empty:
        key = set(zip(skip["group"], skip["item_id"]))
        losses = losses[[(g, i) not in key for g, i in zip(losses["group"], losses["item_id"])]]
    losses = losses[losses["mean_lost"] > 0].head(6)
    doc.heading(f"({CN_NUM[k]})失分较多的指标", 2)
    if losses.empty:
        doc.para("本季度各项指标均未出现明显失分。")
    else:
        parts = [f"{_keep(r['group'])}“{_keep(r['name'])}”(满分{fmt(r['max'])}分)平均失分{r['mean_lost']:.2f}分,"
                 f"{int(r['units_lost'])}家(共{int(r['units'])}家)单位失分"
                 + (f",其中{int(r['missing'])}家未报送" if int(r["missing"]) else "")
                 for r in losses.to_dict("records")]
        doc.para(_cn("从各项指标得分看,失分主要集中在:" + ";".join(parts) + "。"))
        if not skip.empty:
            names = "、".join(_keep(n) for n in dict.fromkeys(skip["name"]))
            doc.para(_cn(f"“{names}”等人工评定指标本季度尚未核定,暂按0分计,未列入上述分析。"), size=14, line=24)
    k += 1

    doc.heading(f"({CN_NUM[k]})名次下降较多的单位", 2)
    parts = []
    for g in d.groups:
        _, fallers = reports.movers(d.current[d.current["group"] == g], n=3)
        for r in fallers.to_dict("records"):
            parts.append(f"{_keep(r['unit_name'])}({_keep(g)})由第{int(r['prev_rank'])}名降至第{int(r['rank'])}名,"
                         f"得分由{r['prev_total']:.2f}分降至{r['total']:.2f}分")
    if parts:
        doc.para(_cn(";".join(parts) + "。"))
    else:
        doc.para("与上季度相比,无名次下降的单位。")
    k += 1

    incomplete = d.current[d.current["n_missing"] > 0].sort_values(["group", "rank"])
    if not incomplete.empty:
        doc.heading(f"({CN_NUM[k]})数据报送不完整的单位", 2)
        parts = [f"{_keep(r['unit_name'])}({int(r['n_missing'])}项)" for r in incomplete.to_dict("records")]
        doc.para(_cn("以下单位有指标未按时报送,相应指标计0分:" + "、".join(parts) + "。"))


def _reason(r) -> str:
    if isinstance(r.get("veto_name"), str):
        return f"触发单项否决“{_keep(r['veto_name'])}”,得分{r['total']:.2f}分"
    return f"得分{r['total']:.2f}分,低于合格线"


def _requirements(doc: Doc, d: BulletinData) -> None:
    for k, req in enumerate(d.template.get("requirements") or []):
        if isinstance(req, str):
            doc.para(_fill(req, d))
        else:
            doc.lead_para(f"({CN_NUM[k]})" + _fill(req.get("title", ""), d), _fill(req.get("text", ""), d))


def _attachment(doc: Doc, d: BulletinData, store) -> None:
    doc.landscape_section()
    doc.para("附件", font="heading", indent=False)
    doc.para(f"{periods.label(d.period)}全市政务公开工作考评得分明细表", size=20, font="title", bold=True,
             align="center", indent=False, before=6, after=12, line=30)
    sections = d.scores.sections
    sections = sections[sections["period"] == d.period]
    for k, g in enumerate(d.groups):
        sub = d.current[d.current["group"] == g].sort_values(["rank", "unit_code"])
        scheme = scheme_for(store, g, d.period)
        secs = list(scheme.sections) if scheme else []
        pts = sections[sections["group"] == g].pivot_table(index="unit_code", columns="section_id",
                                                           values="points", aggfunc="first")
        header = ["名次", "单位"] + [f"{_keep(s.name)}({fmt(s.max)})" for s in secs] + ["加分", "扣分", "总分", "等次"]
        rows = []
        for r in sub.to_dict("records"):
            cells = [rank_label(r["rank"], r["tied"]), _keep(r["unit_name"])]
            cells += [fmt(float(engine.round2(pts.loc[r["unit_code"], s.id])))
                      if r["unit_code"] in pts.index and s.id in pts.columns else "—" for s in secs]
            cells += [fmt(r["bonus"]) if r["bonus"] else "", fmt(r["penalty"]) if r["penalty"] else "",
                      f"{r['total']:.2f}", r["grade"] + ("(否决)" if isinstance(r["veto"], str) else "")]
            rows.append(cells)
        avail = 24.7
        fixed = [1.8, 5.2, 1.3, 1.3, 1.7, 1.9]
        w = max(1.4, (avail - sum(fixed)) / max(len(secs), 1))
        widths = fixed[:2] + [w] * len(secs) + fixed[2:]
        doc.para(f"({CN_NUM[k]}){_keep(g)}({len(sub)}家)", bold=True, keep_next=True, indent=False, before=6)
        doc.table(header, rows, widths, size=9)
    doc.para(_cn("注:各一级指标得分已按分值封顶;含“不适用”指标的单位,总分按“得分÷适用总分×100”折算,"
                 "故各项之和可能与总分不同。单项否决的单位总分按否决规则计。各单位逐项得分及失分原因见考评得分明细表(Excel)。"),
             size=10.5, line=18, indent=False, before=6)


_FULL_WIDTH = {",": "\uff0c", ":": "\uff1a", ";": "\uff1b", "(": "\uff08", ")": "\uff09"}


_KEEP_OPEN, _KEEP_CLOSE = "\x01", "\x02"


def _keep(text) -> str:
    """Mark user-supplied text (unit, group, item names) so that ``_cn`` leaves it as it is."""
    return f"{_KEEP_OPEN}{text}{_KEEP_CLOSE}"


def _cn(text: str) -> str:
    """Full-width punctuation for our Chinese prose (the library's explanations use ASCII).

    Text marked with ``_keep`` and a colon between digits (10:30) stay as they are.
    """
    out, depth = [], 0
    for i, c in enumerate(text):
        if c == _KEEP_OPEN:
            depth += 1
        elif c == _KEEP_CLOSE:
            depth -= 1
        if depth or (c == ":" and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()):
            out.append(c)
        else:
            out.append(_FULL_WIDTH.get(c, c))
    return "".join(out)


def build_document(store, d: BulletinData, charts: list[bytes], issued: date) -> bytes:
    t = d.template
    doc = Doc(t)
    if t.get("header"):
        doc.para(t["header"], size=34, font="title", bold=True, color="C00000", align="center",
                 indent=False, before=6, after=12, line=48)
    if t.get("doc_number"):
        doc.para(_fill(t["doc_number"], d), align="center", indent=False)
    if t.get("header"):
        doc.red_rule()
    doc.para(_fill(t["title"], d), size=22, font="title", bold=True, align="center", indent=False,
             before=12, after=18, line=34)
    if t.get("addressees"):
        doc.para(_fill(t["addressees"], d), indent=False)
    if t.get("intro"):
        doc.para(_fill(t["intro"], d))

    doc.heading("一、总体情况")
    _overview(doc, d)
    first = periods.label(d.ranked["period"].min())
    doc.picture(charts[0], 15.2, f"图1 各组平均得分走势({first}至{periods.label(d.period)})")
    doc.picture(charts[1], 15.2, f"图2 {periods.label(d.period)}各组考评等次分布")

    doc.heading("二、考评结果")
    _results(doc, d)
    doc.heading("三、存在问题")
    _problems(doc, d)
    if t.get("requirements"):
        doc.heading("四、工作要求")
        _requirements(doc, d)

    doc.para("", line=28)
    att = f"附件:{periods.label(d.period)}全市政务公开工作考评得分明细表"
    doc.para(_cn(att), indent=True)
    doc.para("", line=28)
    doc.para("", line=28)
    doc.para(t["office"], align="right", indent=False).paragraph_format.right_indent = _pt(64)
    y, m, dd = issued.year, issued.month, issued.day
    doc.para(t["date_format"].format(y=y, m=m, d=dd), align="right", indent=False).paragraph_format.right_indent = _pt(80)
    if t.get("contact"):
        doc.para(t["contact"], size=14, line=28, before=12)
    _attachment(doc, d, store)
    return doc.bytes()


def _pt(x):
    from docx.shared import Pt

    return Pt(x)


def bulletin_bytes(store, period: str, actor: User, template_path=None, *, issued: date | None = None) -> bytes:
    """The quarterly 通报 as .docx bytes (office only)."""
    require(actor, "bulletin")
    template = load_template(template_path)
    d = collect(store, period, template)
    charts = render_png([trend_figure(d), grade_figure(d)])
    return build_document(store, d, charts, _issue_date(template, issued))


def write_bulletin(store, period: str, out_path, actor: User, template_path=None) -> str:
    """Write the 通报 to ``out_path``; returns a one-line summary in Chinese."""
    period = periods.parse_period(period)
    data = bulletin_bytes(store, period, actor, template_path)
    out = Path(out_path)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    scores = engine.score(store, [period])
    n_units, n_groups = len(scores.units), scores.units["group"].nunique()
    return (_cn(f"已生成{periods.label(period)}考评通报:") + str(out)
            + _cn(f"({n_units}家单位,{n_groups}个分组,{len(data) / 1024:.0f} KB)"))


# =========================================================================================
# Score table (xlsx) and ranking (csv)
# =========================================================================================
SCORE_COLUMNS = ["单位", "指标", "分值", "得分", "扣分", "失分原因", "核定情况"]


def score_table_frames(store, period: str, scores: engine.Scores | None = None) -> dict[str, pd.DataFrame]:
    """One frame per group: every unit × item (rank order), then the unit's total row."""
    period = periods.parse_period(period)
    if scores is None:
        scores = engine.score(store, [periods.previous(period), period])
    ranked = ranked_history(scores)
    current = ranked[ranked["period"] == period]
    if current.empty:
        raise InputError(f"{periods.label(period)}没有考评数据")
    template = load_template()
    order = [g for g in template.get("groups") or [] if g in set(current["group"])]
    order += sorted(set(current["group"]) - set(order))
    frames = {}
    for g in order:
        rows = []
        for r in current[current["group"] == g].sort_values(["rank", "unit_code"]).to_dict("records"):
            result = scores.explain(r["unit_code"], period)
            block, brow = scores.block_of(r["unit_code"], period)
            index = {it.id: j for j, it in enumerate(block.items)}
            sec_names = {s.id: s.name for s in block.scheme.sections}
            for it in result["items"]:
                kind = it["kind"]
                pts = it["points"]
                if kind == "penalty":
                    max_, lost = None, abs(pts)
                    name = f"[扣分项]{it['name']}"
                elif kind == "bonus":
                    max_, lost = it["max"], None
                    name = f"[加分项]{it['name']}"
                else:
                    max_ = it["max"]
                    lost = float(engine.round2(max(max_ - pts, 0.0)))
                    name = f"{sec_names.get(it['section_id'], '')}/{it['name']}"
                reason = it["explanation"] if (lost and lost > 1e-9) or it["status"] in ("missing", "pending") else ""
                verified = ""
                if it["status"] == "adjusted":
                    adj = block.adjustments[(brow, index[it["item_id"]])]
                    verified = (f"核定为{fmt(adj['points'])}分(原计{fmt(block.computed[brow, index[it['item_id']]])}分);"
                                f"理由:{adj['reason']};核定人:{adj['actor']};{adj['adjusted_at']:%Y-%m-%d}")
                elif it["status"] == "pending":
                    verified = "待评定"
                rows.append([r["unit_name"], name, max_, pts, lost, reason, verified])
            veto = f";触发单项否决:{r['veto_name']}" if isinstance(r["veto_name"], str) else ""
            rows.append([r["unit_name"], "总分", block.scheme.total_max, r["total"], None,
                         f"等次:{r['grade']};组内第{rank_label(r['rank'], r['tied'])}名{veto}", ""])
        frames[g] = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    return frames


def score_table_xlsx(store, period: str, actor: User) -> bytes:
    """考评得分明细表: all units × items of the period, one sheet per group (office only)."""
    require(actor, "bulletin")
    return to_xlsx_bytes(score_table_frames(store, period))


RANKING_CSV_COLUMNS = ["季度", "分组", "名次", "并列", "单位代码", "单位名称", "得分", "等次",
                       "较上季度名次", "较上季度得分"]


def ranking_frame(store, period: str) -> pd.DataFrame:
    period = periods.parse_period(period)
    scores = engine.score(store, [periods.previous(period), period])
    cur = ranked_history(scores)
    cur = cur[cur["period"] == period]
    return pd.DataFrame({
        "季度": periods.label(period), "分组": cur["group"], "名次": cur["rank"].astype(int),
        "并列": np.where(cur["tied"], "是", ""), "单位代码": cur["unit_code"], "单位名称": cur["unit_name"],
        "得分": cur["total"].astype(float), "等次": cur["grade"],
        "较上季度名次": [change_label(v) for v in cur["rank_change"]],
        "较上季度得分": [None if pd.isna(v) else float(v) for v in cur["total_change"]],
    }, columns=RANKING_CSV_COLUMNS).reset_index(drop=True)


def ranking_csv(store, period: str, actor: User) -> bytes:
    """The period's ranking as CSV (UTF-8 with BOM, formula-escaped; office only)."""
    require(actor, "bulletin")
    return to_csv_bytes(ranking_frame(store, period))


__all__ = ["bulletin_bytes", "write_bulletin", "score_table_xlsx", "ranking_csv", "score_table_frames",
           "ranking_frame", "ChartError"]
