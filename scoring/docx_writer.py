"""A Word document in the shape of a Chinese official document (公文, GB/T 9704-2012): A4 with
margins 上37mm 下35mm 左28mm 右26mm; 标题 方正小标宋简体 2号, 正文 仿宋_GB2312 3号 on a 28 pt grid,
一级标题 黑体, 二级标题 楷体_GB2312, 页码 4号宋体; East Asian fonts set explicitly; tables, pictures,
page numbers and a landscape section. It knows nothing about scores; :mod:`scoring.bulletin` says
what to write.

The document names the official fonts, so Word on an office PC that has them uses them. Each one
is declared in the font table with a fallback (``w:altName``, ECMA-376 §17.8.3.1: the family to
use when the named one is missing): Noto CJK, which renders the document on this server
(Debian ``fonts-noto-cjk``) and anywhere the official fonts are not installed.
"""
from __future__ import annotations

import io
import re
from xml.sax.saxutils import quoteattr

from docx import Document
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_TAB_ALIGNMENT
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Cm, Mm, Pt, RGBColor

# role -> the font GB/T 9704 names for it
DEFAULT_FONTS = {"title": "方正小标宋简体", "body": "仿宋_GB2312", "heading": "黑体", "heading2": "楷体_GB2312",
                 "page_number": "宋体", "latin": "Times New Roman"}
# role -> what renders it where the named font is missing
DEFAULT_FALLBACKS = {"title": "Noto Serif CJK SC", "body": "Noto Serif CJK SC", "heading": "Noto Sans CJK SC",
                     "heading2": "Noto Serif CJK SC", "page_number": "Noto Serif CJK SC",
                     "latin": "Times New Roman"}
# GB/T 9704-2012 5.2.1: 天头 37 mm, 订口 28 mm; the type area 156 × 225 mm leaves 35 mm and 26 mm
MARGINS_MM = {"top": 37, "bottom": 35, "left": 28, "right": 26}

ALIGN = {"center": WD_ALIGN_PARAGRAPH.CENTER, "right": WD_ALIGN_PARAGRAPH.RIGHT,
         "left": WD_ALIGN_PARAGRAPH.LEFT, "justify": WD_ALIGN_PARAGRAPH.JUSTIFY}

# What XML 1.0 cannot hold (C0 controls but tab and newline, lone surrogates, U+FFFE/U+FFFF), and
# the C1 controls: python-docx would refuse the whole document over one such character in a name.
_NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text) -> str:
    """``text`` without the characters a .docx cannot hold."""
    return _NOT_XML.sub("", str(text))


def _set_rfonts(rpr, east: str, latin: str) -> None:
    """w:rFonts with w:eastAsia: without it Word renders Chinese in its own default font."""
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = OxmlElement("w:rFonts")
        rpr.insert(0, rfonts)
    for attr in ("w:ascii", "w:hAnsi", "w:cs"):
        rfonts.set(qn(attr), latin)
    rfonts.set(qn("w:eastAsia"), east)
    rfonts.set(qn("w:hint"), "eastAsia")


# Elements that follow w:pBdr in w:pPr (the schema fixes the order; Word is strict about it).
_AFTER_PBDR = ("w:shd", "w:tabs", "w:suppressAutoHyphens", "w:kinsoku", "w:wordWrap", "w:overflowPunct",
               "w:topLinePunct", "w:autoSpaceDE", "w:autoSpaceDN", "w:bidi", "w:adjustRightInd",
               "w:snapToGrid", "w:spacing", "w:ind", "w:contextualSpacing", "w:mirrorIndents",
               "w:suppressOverlap", "w:jc", "w:textDirection", "w:textAlignment", "w:textboxTightWrap",
               "w:outlineLvl", "w:divId", "w:cnfStyle", "w:rPr", "w:sectPr", "w:pPrChange")
# ... and those that follow w:shd in w:tcPr.
_AFTER_TC_SHD = ("w:noWrap", "w:tcMar", "w:textDirection", "w:tcFitText", "w:vAlign", "w:hideMark")


class Doc:
    """One document being written. ``fonts`` maps the roles title/body/heading/heading2/page_number/
    latin to the font names the document gives (default: GB/T 9704's); ``fallbacks`` maps the same
    roles to the fonts that stand in where those are missing (default: Noto CJK);
    ``prose`` turns every text into what is written (the 通报 uses it for full-width punctuation).
    Every text is made XML-safe last, whatever ``prose`` did."""

    def __init__(self, fonts: dict | None = None, prose=None, fallbacks: dict | None = None):
        self.fonts = {**DEFAULT_FONTS, **(fonts or {})}
        self.fallbacks = {**DEFAULT_FALLBACKS, **(fallbacks or {})}
        self.prose = prose or (lambda text: text)
        self.doc = Document()
        sec = self.doc.sections[0]
        sec.page_width, sec.page_height = Cm(21), Cm(29.7)
        sec.top_margin, sec.bottom_margin = Mm(MARGINS_MM["top"]), Mm(MARGINS_MM["bottom"])
        sec.left_margin, sec.right_margin = Mm(MARGINS_MM["left"]), Mm(MARGINS_MM["right"])
        sec.footer_distance = Cm(1.8)
        styles = self.doc.styles
        normal = styles["Normal"]
        normal.font.size = Pt(16)
        normal.font.name = self.fonts["latin"]
        _set_rfonts(normal.element.get_or_add_rPr(), self.fonts["body"], self.fonts["latin"])
        pf = normal.paragraph_format
        pf.space_before, pf.space_after = Pt(0), Pt(0)
        pf.line_spacing = Pt(28)
        for name, role in (("Heading 1", "heading"), ("Heading 2", "heading2"), ("Title", "title"),
                           ("Table Grid", "body")):
            try:
                st = styles[name]
            except KeyError:
                continue
            _set_rfonts(st.element.get_or_add_rPr(), self.fonts[role], self.fonts["latin"])
        self._register_fonts()
        self._page_number(sec)

    def _register_fonts(self) -> None:
        """fontTable entries with the GB2312 charset and the fallback as ``w:altName``, for substitution."""
        part = next((rel.target_part for rel in self.doc.part.rels.values()
                     if rel.reltype.endswith("/fontTable")), None)
        if part is None or not hasattr(part, "blob"):
            return
        xml = part.blob.decode("utf-8")
        entries = {}
        for role in ("title", "body", "heading", "heading2", "page_number"):
            name, alt = self.fonts[role], self.fallbacks[role]
            if f"w:name={quoteattr(name)}" in xml or name in entries:
                continue
            sans = "Sans" in name or "黑" in name or "Sans" in alt
            alt_xml = f"<w:altName w:val={quoteattr(alt)}/>" if alt and alt != name else ""
            entries[name] = (f'<w:font w:name={quoteattr(name)}>{alt_xml}'
                             f'<w:charset w:val="86"/><w:family w:val="{"swiss" if sans else "roman"}"/>'
                             '<w:pitch w:val="variable"/></w:font>')
        if entries:
            part._blob = xml.replace("</w:fonts>", "".join(entries.values()) + "</w:fonts>").encode("utf-8")

    def _page_number(self, section) -> None:
        """— 1 — centred in the footer, as 公文 number their pages."""
        p = section.footer.paragraphs[0]
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        self.run(p, "— ", size=14, font="page_number")
        fld = parse_xml(f'<w:fldSimple {nsdecls("w")} w:instr="PAGE"><w:r><w:t>1</w:t></w:r></w:fldSimple>')
        p._p.append(fld)
        for r in fld.iter(qn("w:r")):
            rpr = r.get_or_add_rPr()
            _set_rfonts(rpr, self.fonts["page_number"], self.fonts["latin"])
            rpr.append(parse_xml(f'<w:sz {nsdecls("w")} w:val="28"/>'))
        self.run(p, " —", size=14, font="page_number")

    # -- text ------------------------------------------------------------------------------
    def run(self, p, text, *, size=16, font="body", bold=False, color=None):
        r = p.add_run(xml_safe(self.prose(str(text))))
        r.font.size = Pt(size)
        r.font.bold = bold
        r.font.name = self.fonts["latin"]
        _set_rfonts(r._element.get_or_add_rPr(), self.fonts[font], self.fonts["latin"])
        if color:
            r.font.color.rgb = RGBColor.from_string(color)
        return r

    def para(self, text="", *, size=16, font="body", bold=False, align=None, indent=True, color=None,
             before=0, after=0, line=28, keep_next=False, right_indent=None, left_indent=None, page_break=False):
        """A paragraph; ``indent`` is the two-character first-line indent of body text."""
        p = self.doc.add_paragraph()
        pf = p.paragraph_format
        if indent:
            pf.first_line_indent = Pt(size * 2)
        if left_indent is not None:
            pf.left_indent = Pt(left_indent)
        pf.page_break_before = page_break
        pf.space_before, pf.space_after = Pt(before), Pt(after)
        pf.line_spacing = Pt(line) if line else None
        pf.keep_with_next = keep_next
        if right_indent is not None:
            pf.right_indent = Pt(right_indent)
        p.alignment = ALIGN[align or "justify"]
        if text:
            self.run(p, text, size=size, font=font, bold=bold, color=color)
        return p

    def heading(self, text, level=1):
        """一、 in 黑体, (一) in 楷体_GB2312, both 3号. Real headings (outline levels), styled by hand."""
        p = self.doc.add_paragraph(style="Heading 1" if level == 1 else "Heading 2")
        pf = p.paragraph_format
        pf.first_line_indent = Pt(32)
        pf.space_before, pf.space_after = Pt(6 if level == 1 else 0), Pt(0)
        pf.line_spacing = Pt(28)
        pf.keep_with_next = True
        self.run(p, text, size=16, font="heading" if level == 1 else "heading2", color="000000")
        return p

    def lead_para(self, lead: str, text: str):
        """A paragraph that starts with a bold lead phrase."""
        p = self.para()
        self.run(p, lead, bold=True)
        self.run(p, text)
        return p

    def red_rule(self):
        """The red line under a 红头 (版头)."""
        p = self.para(indent=False, line=12, after=18)
        p._p.get_or_add_pPr().insert_element_before(parse_xml(
            f'<w:pBdr {nsdecls("w")}><w:bottom w:val="single" w:sz="18" w:space="1" w:color="C00000"/></w:pBdr>'),
            *_AFTER_PBDR)
        return p

    def record_line(self, left: str, right: str = "", *, top=False, bottom=False, size=14):
        """One line of the 版记 (GB/T 9704): ``left`` and ``right`` at the two margins, with a rule
        above and/or below (the first and last rules of the block are the thick ones)."""
        p = self.para(indent=False, line=28, left_indent=size / 2, right_indent=size / 2)
        sides = ([("top", 12)] if top else []) + [("bottom", 12 if bottom else 6)]
        borders = "".join(f'<w:{side} w:val="single" w:sz="{size_}" w:space="1" w:color="000000"/>'
                          for side, size_ in sides)
        p._p.get_or_add_pPr().insert_element_before(parse_xml(f'<w:pBdr {nsdecls("w")}>{borders}</w:pBdr>'),
                                                    *_AFTER_PBDR)
        self.run(p, left, size=size)
        if right:
            section = self.doc.sections[-1]
            width = section.page_width - section.left_margin - section.right_margin - Pt(size)
            p.paragraph_format.tab_stops.add_tab_stop(width, WD_TAB_ALIGNMENT.RIGHT)
            self.run(p, "\t" + right, size=size)
        return p

    def picture(self, png: bytes, width_cm: float, caption: str):
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
        """A grid with a shaded header row repeated on every page; rows never split across pages."""
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
                p.alignment = WD_ALIGN_PARAGRAPH.LEFT if (i > 0 and j in left_cols) else WD_ALIGN_PARAGRAPH.CENTER
                self.run(p, value, size=size, font="heading" if i == 0 else "body", bold=i == 0)
                if i == 0:
                    cell._tc.get_or_add_tcPr().insert_element_before(parse_xml(
                        f'<w:shd {nsdecls("w")} w:val="clear" w:color="auto" w:fill="E7E6E6"/>'), *_AFTER_TC_SHD)
        return t

    def landscape_section(self):
        """A new page in landscape, e.g. for a wide attachment table."""
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
