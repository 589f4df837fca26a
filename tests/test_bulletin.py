"""The quarterly 通报 (docx) and the score table (xlsx), on realistic demo data.

The database holds the shipped tables and registry with two demo quarters, plus a veto, a tie,
an adjustment, a unit whose name begins with '=' and one whose name holds a control character
(written past the registry's check). The 通报 is made once, through the CLI.
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import openpyxl
import pandas as pd
import pytest
import yaml
from docx import Document
from docx.oxml.ns import qn

from datetime import date

from scoring import demo, engine, periods, problems
from scoring.adjustments import adjust
from scoring.bulletin import ChartError, bulletin_bytes, score_matrix_frames, score_table_frames, score_table_xlsx
from scoring.docx_writer import Doc, xml_safe
from scoring.errors import PermissionDenied
from scoring.permissions import SYSTEM as OFFICE, User
from scoring.ranking import change_label
from scoring.schemes import save_scheme
from scoring.store import Store
from scoring.units import save_units
from tests.support import ROOT, office_ranking

PERIOD, PREV = "2025Q3", "2025Q2"
EVIL = "=HYPERLINK(\"http://x\",\"市审计局\")"
CONTROL = "市\x07档案\x0b局"     # what the .docx holds: 市档案局
HEADINGS = ["一、总体情况", "二、考评结果", "三、存在问题", "四、上期问题整改情况", "五、工作要求"]
TODAY = "2025-11-20"           # the 通报 is written on this day: 逾期 is counted against it


def seed_demo(store) -> dict:
    """The demo registry and tables, two quarters of demo uploads written directly."""
    units = pd.read_csv(ROOT / "data" / "units.csv", dtype=str, keep_default_na=False)
    shizhi = units[units["group"] == "市直部门"]["unit_code"].tolist()
    evil_code, veto_code, tie_a, tie_b, control_code = shizhi[3], shizhi[5], shizhi[7], shizhi[8], shizhi[10]
    units.loc[units["unit_code"] == evil_code, "unit_name"] = EVIL
    save_units(store, units.replace("", None), OFFICE)
    store.write(lambda cur: cur.execute("UPDATE units SET unit_name = ? WHERE unit_code = ?", [CONTROL, control_code]))
    schemes = {}
    for path in sorted((ROOT / "data" / "tables").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        save_scheme(store, text, OFFICE)
        schemes[path.stem] = yaml.safe_load(text)
    frames = demo.demo_uploads(units, schemes, [PREV, PERIOD])
    subs, vals = [], []
    for batch, frame in enumerate(frames.values(), start=1):
        for rec in frame.to_dict("records"):
            unit, period, self_score = rec.pop("unit_code"), rec.pop("period"), rec.pop("self_score", None)
            if period == PERIOD and unit == veto_code:
                rec["secret_leak_incident"] = 1
            subs.append((batch, unit, period, None if pd.isna(self_score) else float(self_score)))
            for code, v in rec.items():
                if isinstance(v, str) or not pd.isna(v):
                    na = v == demo.NA_TEXT
                    vals.append((batch, unit, period, code, None if na else float(v), na))
    n_batches = len(frames)
    subs_df = pd.DataFrame(subs, columns=["batch_id", "unit_code", "period", "self_score"])
    vals_df = pd.DataFrame(vals, columns=["batch_id", "unit_code", "period", "indicator", "value", "is_na"])
    # the tie: tie_b reports exactly what tie_a reports, in a later batch
    tie = vals_df[(vals_df["unit_code"] == tie_a) & (vals_df["period"] == PERIOD)].assign(
        batch_id=n_batches + 1, unit_code=tie_b)
    vals_df = pd.concat([vals_df, tie], ignore_index=True)
    subs_df = pd.concat([subs_df, pd.DataFrame([(n_batches + 1, tie_b, PERIOD, None)], columns=subs_df.columns)])

    def write(cur):
        for _ in range(n_batches + 1):
            cur.execute("INSERT INTO batches VALUES (nextval('seq_batch'), 'demo', now(), 'demo.csv', '', 0, "
                        "[], [], NULL, NULL)")
        cur.register("subs_df", subs_df)
        cur.register("vals_df", vals_df)
        cur.execute("INSERT INTO submissions SELECT batch_id, unit_code, period, self_score, 0 FROM subs_df")
        cur.execute("INSERT INTO indicator_values SELECT * FROM vals_df")

    store.write(write)
    adjust(store, OFFICE, shizhi[0], PERIOD, "site.review", 1.5, "现场检查发现栏目维护不到位")
    stale = shizhi[12:15]
    head = "单位代码,季度,考评项,问题描述,链接,发现日期,整改期限\n"
    rows = [f"{u},{PERIOD},pub.stale,政策文件栏目超6个月未更新,,2025-09-10,2025-10-10" for u in stale]
    rows += [f"{shizhi[15]},{PERIOD},site.links,首页存在3处错链,,2025-09-12,2025-12-31",
             f"{shizhi[16]},{PREV},pub.blank,法定目录存在空白栏目,,2025-06-01,2025-07-01",
             f"{shizhi[17]},{PREV},,依申请答复书未告知救济途径,,2025-06-01,2025-07-01"]
    problems.import_problems(store, OFFICE, (head + "\n".join(rows)).encode("gbk"), "问题清单.csv")
    with periods.today_as(date(2025, 6, 20)):
        pid = int(problems.list_problems(store, OFFICE, unit_code=shizhi[16])["id"].iloc[0])
        problems.respond(store, OFFICE, pid, "已补充栏目内容")
        problems.review(store, OFFICE, pid, True, "复核通过")
    return {"evil": evil_code, "veto": veto_code, "tie": (tie_a, tie_b), "adjusted": shizhi[0],
            "control": control_code, "stale": stale, "links": shizhi[15], "closed": shizhi[16],
            "overdue": shizhi[17]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAOPING_TODAY", TODAY)            # the library's results are those of the 通报's day
        yield from _world(tmp_path_factory)


def _world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bulletin")
    db = tmp / "demo.duckdb"
    with Store(db) as store:
        info = seed_demo(store)
    out = tmp / "通报.docx"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KAOPING_TODAY": TODAY}
    r = subprocess.run([sys.executable, "-m", "scoring", "--db", str(db), "bulletin", "--period", "2025年第三季度",
                        "--out", str(out)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "已生成2025年第三季度考评通报" in r.stdout and str(out) in r.stdout
    store = Store(db)
    info.update(db=db, docx=out, store=store, ranking=office_ranking(store, PERIOD))
    yield info
    store.close()


@pytest.fixture(scope="module")
def document(world):
    return Document(str(world["docx"]))


def texts(doc) -> list[str]:
    return [p.text for p in doc.paragraphs]


def cell_texts(table) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in table.rows]


def as_xlsx(name: str) -> str:
    """A name as openpyxl reads it back: formula-escaped, control characters as OOXML _xHHHH_."""
    name = "'" + name if name.startswith("=") else name
    return re.sub(r"[\x00-\x1f]", lambda m: f"_x{ord(m.group()):04X}_", name)


def fw(text: str) -> str:
    """The document writes Chinese prose with full-width punctuation."""
    return text.translate(str.maketrans({"(": "（", ")": "）", ",": "，", ":": "：", ";": "；"}))


def test_structure_title_headings_and_two_charts(document):
    paras = texts(document)
    assert "关于2025年第三季度全市政务公开工作考评情况的通报" in paras
    assert "江州市政务公开办公室" in paras and "江政公办〔2025〕3号" in paras
    positions = [paras.index(h) for h in HEADINGS]
    assert positions == sorted(positions)
    assert "附件1" in paras and paras.index("附件1") > positions[-1]
    assert any(p.startswith("附件：1.2025年第三季度") for p in paras)
    assert any(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", p) for p in paras)
    assert len(document.inline_shapes) == 2
    images = [r.target_part for r in document.part.rels.values() if r.reltype.endswith("/image")]
    assert len(images) == 2 and all(p.blob[:8] == b"\x89PNG\r\n\x1a\n" and len(p.blob) > 20_000 for p in images)
    # 工作要求 come from the template
    template = yaml.safe_load((ROOT / "data" / "bulletin.yaml").read_text(encoding="utf-8"))
    body = "\n".join(paras)
    for req in template["requirements"]:
        assert fw(req["title"]) in body and fw(req["text"]) in body


def _parts(data_or_path) -> dict[str, str]:
    import zipfile

    src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    with zipfile.ZipFile(src) as z:
        return {n: z.read(f"word/{n}.xml").decode("utf-8") for n in ("styles", "document", "fontTable", "footer1")}


def test_east_asian_fonts_are_set(world):
    from scoring.bulletin import load_template
    from scoring.docx_writer import DEFAULT_FALLBACKS, DEFAULT_FONTS

    t = load_template()
    named, fallback = {**DEFAULT_FONTS, **t["fonts"]}, {**DEFAULT_FALLBACKS, **t["fallback_fonts"]}
    xml = _parts(world["docx"])
    body = xml["document"]
    assert f'w:eastAsia="{named["body"]}"' in xml["styles"]
    assert body.count(f'w:eastAsia="{named["heading"]}"') >= 4      # the headings
    assert body.count(f'w:eastAsia="{named["body"]}"') > 100        # body text and table cells
    assert f'w:name="{named["body"]}"' in xml["fontTable"] and 'w:charset w:val="86"' in xml["fontTable"]
    if named["body"] != fallback["body"]:
        assert f'<w:altName w:val="{fallback["body"]}"/>' in xml["fontTable"]


OFFICIAL = {"title": "方正小标宋简体", "body": "仿宋_GB2312", "heading": "黑体", "heading2": "楷体_GB2312"}


def test_a_document_names_the_official_fonts_with_noto_as_fallback_and_gbt9704_margins():
    doc = Doc()
    doc.para("关于2025年第三季度全市政务公开工作考评情况的通报", size=22, font="title", bold=True)
    doc.heading("一、总体情况")
    doc.heading("(一)考评结果", 2)
    doc.para("正文。")
    back = Document(io.BytesIO(doc.bytes()))
    sec = back.sections[0]
    assert [round(m.mm) for m in (sec.top_margin, sec.bottom_margin, sec.left_margin, sec.right_margin)] == \
        [37, 35, 28, 26]
    runs = [p.runs[0] for p in back.paragraphs]
    east = [r._element.rPr.rFonts.get(qn("w:eastAsia")) for r in runs]
    assert east == [OFFICIAL["title"], OFFICIAL["heading"], OFFICIAL["heading2"], OFFICIAL["body"]]
    assert [r.font.size.pt for r in runs] == [22, 16, 16, 16]            # 2号, 3号
    assert runs[0].font.name == "Times New Roman"                       # Latin letters and digits
    xml = _parts(doc.bytes())
    assert 'w:eastAsia="仿宋_GB2312"' in xml["styles"]                    # the Normal style
    assert 'w:eastAsia="宋体"' in xml["footer1"]                          # 页码 4号宋体
    fonts = xml["fontTable"]
    for role, name in OFFICIAL.items():
        fallback = "Noto Sans CJK SC" if role == "heading" else "Noto Serif CJK SC"
        assert re.search(f'<w:font w:name="{name}"><w:altName w:val="{fallback}"/><w:charset w:val="86"/>', fonts), name


def test_the_bulletin_of_a_template_without_fonts_names_the_official_ones(world, tmp_path):
    from datetime import date

    from scoring.bulletin import build_document, collect, load_template

    template = yaml.safe_load((ROOT / "data" / "bulletin.yaml").read_text(encoding="utf-8"))
    template.pop("fonts", None)
    path = tmp_path / "bulletin.yaml"
    path.write_text(yaml.safe_dump(template, allow_unicode=True), encoding="utf-8")
    t = load_template(path)
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (90, 43), "white").save(buf, "PNG")            # stand-ins for the two charts
    png = buf.getvalue()
    data = build_document(world["store"], collect(world["store"], PERIOD, t), [png, png], date(2025, 10, 15))
    doc = Document(io.BytesIO(data))
    assert [round(doc.sections[0].top_margin.mm), round(doc.sections[0].bottom_margin.mm)] == [37, 35]
    east = {p.text: p.runs[0]._element.rPr.rFonts.get(qn("w:eastAsia")) for p in doc.paragraphs
            if p.runs and p.runs[0]._element.rPr is not None}
    assert east["关于2025年第三季度全市政务公开工作考评情况的通报"] == OFFICIAL["title"]
    assert east["一、总体情况"] == OFFICIAL["heading"]
    assert any(v == OFFICIAL["heading2"] and k.startswith("（一）") for k, v in east.items())
    assert list(east.values()).count(OFFICIAL["body"]) > 10
    assert '<w:altName w:val="Noto Serif CJK SC"/>' in _parts(data)["fontTable"]


def test_result_tables_equal_the_library_ranking(world, document):
    rk = world["ranking"]
    tables = [t for t in document.tables if cell_texts(t)[0] == ["名次", "单位", "得分", "等次", "较上季度"]]
    groups = ["县区", "市直部门", "乡镇街道", "公共企事业单位"]
    assert len(tables) == len(groups)
    seen_tie = False
    for group, table in zip(groups, tables):
        rows = cell_texts(table)[1:]
        lib = rk[rk["group"] == group].sort_values(["rank", "unit_code"])
        assert len(rows) == len(lib)
        for cells, r in zip(rows, lib.to_dict("records")):
            rank, name, total, grade, change = cells
            assert name == xml_safe(r["unit_name"])  # names exactly as registered, less what XML cannot hold
            assert float(total) == r["total"] and total == f"{r['total']:.2f}"
            assert grade == r["grade"]
            assert int(re.match(r"\d+", rank).group()) == r["rank"]
            assert ("并列" in rank) == bool(r["tied"])
            seen_tie |= bool(r["tied"])
            assert change.startswith(change_label(r["rank_change"]))
            if not pd.isna(r["total_change"]):
                assert float(re.search(r"（([+-][\d.]+)）", change).group(1)) == pytest.approx(r["total_change"])
    assert seen_tie
    # a unit name is shown exactly as registered (no full-width punctuation forced on it)
    assert any(cell_texts(t)[i][1] == EVIL for t in tables for i in range(1, len(t.rows)))
    assert any(cell_texts(t)[i][1] == "市档案局" for t in tables for i in range(1, len(t.rows)))
    a, b = world["tie"]
    ra, rb = (rk[rk["unit_code"] == u].iloc[0] for u in (a, b))
    assert ra["rank"] == rb["rank"] and ra["tied"] and rb["tied"]


def test_attachment_has_every_unit_with_its_total(world, document):
    rk = world["ranking"]
    tables = [t for t in document.tables if cell_texts(t)[0][-2:] == ["总分", "等次"]]
    assert len(tables) == 4
    found = {}
    for t in tables:
        for cells in cell_texts(t)[1:]:
            found[cells[1]] = float(cells[-2])
    assert len(found) == len(rk)
    for r in rk.to_dict("records"):
        assert found[xml_safe(r["unit_name"])] == r["total"]


def test_overview_and_problems_name_the_right_units(world, document):
    body = "\n".join(texts(document))
    rk = world["ranking"]
    assert f"本季度共考评{len(rk)}家单位" in body
    assert f"全市平均得分{engine.round2(rk['total'].mean()):.2f}分" in body
    for name in rk[rk["grade"] == "优秀"]["unit_name"]:
        assert xml_safe(name) in body
    vetoed = rk[rk["unit_code"] == world["veto"]].iloc[0]
    assert vetoed["grade"] == "不合格"
    found = body[body.index("三、存在问题"):body.index("四、上期问题整改情况")]
    assert f"{vetoed['unit_name']}（市直部门，触发单项否决“发生泄密或隐私泄露事件”" in found
    assert "失分较多的指标" in found and "名次下降较多的单位" in found


def names_of(world, codes) -> list[str]:
    names = dict(world["store"].rows("SELECT unit_code, unit_name FROM units"))
    return [names[c] for c in codes]


def test_problems_found_are_grouped_by_type_naming_the_units(world, document):
    body = "\n".join(texts(document))
    found = body[body.index("（二）第三方检测和检查发现的问题"):body.index("（三）失分较多的指标")]
    assert "本季度第三方检测和检查共发现问题4个，涉及4家单位" in found
    assert "1.以下3家单位政策文件栏目超6个月未更新：" + "、".join(names_of(world, world["stale"])) + "。" in found
    [links] = names_of(world, [world["links"]])
    assert f"2.此外，{links}首页存在3处错链。" in found


def test_last_quarters_rectification_names_the_overdue_units(world, document):
    body = "\n".join(texts(document))
    part = body[body.index("四、上期问题整改情况"):body.index("五、工作要求")]
    [late] = names_of(world, [world["overdue"]])
    assert ("上季度下发问题2个，已整改销号1个（其中按期销号1个），整改率50.0%；"
            f"逾期未整改问题1个，涉及1家单位：{late}（1个）。") in part


def test_commendation_appendix_2_and_record_block(world, document):
    paras = texts(document)
    rk = world["ranking"]
    praise = next(p for p in paras if p.startswith("通报表扬。"))
    best = rk[rk["grade"] == "优秀"]
    assert f"对考评等次为优秀的{len(best)}家单位予以通报表扬" in praise
    assert all(xml_safe(n) in praise for n in best["unit_name"])
    assert any(p.startswith("2.2025年第三季度第三方检测问题清单") for p in paras)
    assert paras.index("附件2") > paras.index("附件1")
    [table] = [t for t in document.tables if cell_texts(t)[0] == ["序号", "单位", "考评项", "问题描述", "整改期限", "整改情况"]]
    rows = cell_texts(table)[1:]
    assert len(rows) == 4 and {r[5] for r in rows} == {"逾期未整改", "待整改"}
    stale_row = next(r for r in rows if r[1] == names_of(world, world["stale"][:1])[0])
    assert stale_row[2:5] == ["栏目更新及时(动态2周、其他6个月)", "政策文件栏目超6个月未更新", "2025-10-10"]
    assert paras[-2] == "抄送：市委办公室，市人大常委会办公室，市政府办公室，市政协办公室。"
    assert paras[-1] == "江州市政务公开办公室\t2025年11月20日印发"


def test_score_table_xlsx(world):
    store, rk = world["store"], world["ranking"]
    wb = openpyxl.load_workbook(io.BytesIO(score_table_xlsx(store, PERIOD, OFFICE)))
    groups = ["县区", "市直部门", "乡镇街道", "公共企事业单位"]
    assert wb.sheetnames == [name for g in groups for name in (g, g + "(矩阵)")]   # each long sheet, its matrix beside
    totals, evil_cells = {}, []
    for ws in (wb[g] for g in groups):
        assert [c.value for c in ws[1]] == ["单位", "指标", "分值", "得分", "扣分", "失分原因", "整改情况", "核定情况"]
        assert ws.freeze_panes == "A2"
        for unit, item, max_, pts, lost, reason, progress, verified in ws.iter_rows(min_row=2, values_only=True):
            evil_cells += [unit] if "HYPERLINK" in str(unit) else []
            if item == "总分":
                totals[unit] = pts
            elif not item.startswith("["):
                assert lost == pytest.approx(max_ - pts, abs=0.005)
                assert bool(reason) == (lost > 0) or verified == "待评定"
            if verified and verified != "待评定":
                assert "现场检查发现栏目维护不到位" in verified and ws.title == "市直部门"
    assert evil_cells and all(c == "'" + EVIL for c in evil_cells)
    assert len(totals) == len(rk)
    for r in rk.to_dict("records"):
        assert totals[as_xlsx(r["unit_name"])] == r["total"]
    # the engine's explanation is the 失分原因
    ws = wb["市直部门"]
    adjusted = [row for row in ws.iter_rows(min_row=2, values_only=True) if row[7] and row[7] != "待评定"]
    assert len(adjusted) == 1 and adjusted[0][3] == 1.5 and adjusted[0][5].startswith("已核定为1.5分")


def test_office_only(world):
    unit = User("u1", "unit", world["veto"])
    for fn in (bulletin_bytes, score_table_xlsx, score_table_frames, score_matrix_frames):
        with pytest.raises(PermissionDenied):
            fn(world["store"], PERIOD, unit)


def test_missing_browser_is_a_clear_error(world, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    with pytest.raises(ChartError, match="浏览器"):
        bulletin_bytes(world["store"], PERIOD, OFFICE)


def test_writer_drops_what_xml_cannot_hold():
    doc = Doc({"body": 'Evil"Font<&>', "latin": "Times New Roman"})
    doc.para("市\x00审计\x1f局\ufffe\ud800")
    doc.table(["单位"], [["档案\x0b局"]], [3.0])
    back = Document(io.BytesIO(doc.bytes()))
    assert [p.text for p in back.paragraphs][-1] == "市审计局"
    assert back.tables[0].cell(1, 0).text == "档案局"


def test_score_table_rows_are_the_engines_explanation(world):
    store = world["store"]
    scores = engine.score(store, [PREV, PERIOD])
    sheet = score_table_frames(store, PERIOD, OFFICE, scores)["市直部门"]
    for unit in (world["adjusted"], world["veto"]):
        detail = scores.explain(unit, PERIOD)
        rows = sheet[sheet["单位"] == detail["unit_name"]]
        assert list(rows["指标"].iloc[:-1].str.split("/").str[-1].str.replace(r"^\[..项\]", "", regex=True)) == \
            [it["name"] for it in detail["items"]]
        assert list(rows["得分"].iloc[:-1]) == [it["points"] for it in detail["items"]]
        for reason, it in zip(rows["失分原因"], detail["items"]):
            assert reason in ("", it["explanation"])
        assert rows.iloc[-1]["指标"] == "总分" and rows.iloc[-1]["得分"] == detail["total"]
    adjusted = sheet[sheet["核定情况"].str.startswith("核定为")]
    assert len(adjusted) == 1
    assert adjusted.iloc[0]["核定情况"].startswith(f"核定为1.5分;理由:现场检查发现栏目维护不到位;核定人:{OFFICE.username};")


def test_score_table_has_a_unit_by_item_matrix_per_group(world):
    store, rk = world["store"], world["ranking"]
    wb = openpyxl.load_workbook(io.BytesIO(score_table_xlsx(store, PERIOD, OFFICE)))
    scores = engine.score(store, [PREV, PERIOD])
    for group in ["县区", "市直部门", "乡镇街道", "公共企事业单位"]:
        ws = wb[group + "(矩阵)"]
        rows = list(ws.iter_rows(values_only=True))
        header, body = list(rows[0]), rows[1:]
        assert header[:2] == ["名次", "单位"] and header[-2:] == ["总分", "等次"]
        mine = rk[rk["group"] == group]
        assert [r[1] for r in body] == [as_xlsx(n) for n in mine["unit_name"]]          # rank order
        assert [r[-2] for r in body] == mine["total"].tolist()
        # every cell is the engine's points of that item (penalties negative), in the scheme's order
        for r, code in zip(body[:3], mine["unit_code"]):
            items = scores.explain(code, PERIOD)["items"]
            assert len(header) == 4 + len(items)
            for label, it, cell in zip(header[2:-2], items, r[2:-2]):
                assert it["name"] in label
                assert cell == pytest.approx(it["points"], abs=0.005)
        assert any(label.endswith(")") and "(" in label for label in header[2:-2])       # 名称(满分)
    veto_row = next(r for r in wb["市直部门(矩阵)"].iter_rows(values_only=True) if r[-1] and "否决" in str(r[-1]))
    assert veto_row[1] == rk.loc[rk["unit_code"] == world["veto"], "unit_name"].iloc[0]
    assert next(iter(score_matrix_frames(store, PERIOD, OFFICE, scores).values())).columns[0] == "名次"
    with pytest.raises(PermissionDenied):
        score_matrix_frames(store, PERIOD, User("u1", "unit", world["veto"]))


def test_rank_robustness_and_why_a_rank_fell_are_in_the_bulletin(world, document):
    """Each group's table is followed by the robustness sentence; 名次下降 names only units whose own
    score fell too, and says how much of the fall was their own score and how much the others'."""
    text = "\n".join(texts(document))
    assert text.count("稳健性检验") == 4
    rk = world["ranking"]
    heading = next(i for i, t in enumerate(texts(document)) if "名次下降较多的单位" in t)
    paragraph = texts(document)[heading + 1]
    named = [r for r in rk.to_dict("records") if f"{r['unit_name']}（" in paragraph and r["rank_change"] < 0]
    if "无名次下降的单位" not in paragraph:
        assert named and all(r["total_change"] < 0 for r in named)
        assert "其中本单位得分变化影响" in paragraph
    rose = [r for r in rk.to_dict("records") if r["rank_change"] < 0 and r["total_change"] >= 0]
    assert not any(f"{r['unit_name']}（" in paragraph for r in rose)
