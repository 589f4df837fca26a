"""AppTest: every page of each role's navigation renders, and the issue's behaviours work."""
from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import nav
from scoring import accounts, adjustments, engine, views
from scoring import rectifications as rect
from scoring.accounts import User
from scoring.errors import PermissionDenied
from scoring.store import Store
from tests.dashboard_support import APP, build_demo_db, copy_db, top_unit_upload
from tests.support import office_ranking

OFFICE = User("office", "office")
TIMEOUT = 60


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory):
    return build_demo_db(tmp_path_factory.mktemp("demo") / "demo.duckdb")


@pytest.fixture(scope="session")
def unit_user(demo_template):
    with Store(demo_template, read_only=True) as s:
        code = s.one("SELECT unit_code FROM users WHERE username = 'unit-shizhi'")[0]
    return User("unit-shizhi", "unit", code)


@pytest.fixture(scope="module")
def shared_db(demo_template, tmp_path_factory):
    """A read-mostly copy for the smoke tests."""
    return copy_db(demo_template, tmp_path_factory.mktemp("shared") / "demo.duckdb")


@pytest.fixture
def db(demo_template, tmp_path, monkeypatch):
    """A fresh copy for a test that writes."""
    path = copy_db(demo_template, tmp_path / "demo.duckdb")
    monkeypatch.setenv("KAOPING_DB", str(path))
    return path


def app(user: User | None, page: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if user is not None:
        at.session_state["user"] = user
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    if page and page != nav.pages_for(user)[0]:
        at.switch_page(f"app_pages/{page}.py")
        at.run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def unescape(text: str) -> str:
    """What a person reads of Markdown source in which user text was escaped (ui.plain)."""
    return re.sub(r"\\(.)", r"\1", str(text))


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
    parts += [m.value for m in at.metric] + [m.label for m in at.metric] + [w.value for w in at.warning]
    parts += [i.value for i in at.info] + [s.value for s in at.success]
    return "\n".join(unescape(p) for p in parts)


def frame(el) -> pd.DataFrame:
    value = el.value
    return value.data if hasattr(value, "data") else value


# -- smoke: every page of each role ---------------------------------------------------------
@pytest.mark.parametrize("page", nav.pages_for(OFFICE))
def test_office_pages_render(page, shared_db, monkeypatch):
    monkeypatch.setenv("KAOPING_DB", str(shared_db))
    at = app(OFFICE, page)
    assert_clean(at)
    assert at.title[0].value == dict((n, t) for pages in nav.sections_for(OFFICE).values() for n, t, _ in pages)[page]
    assert any("演示模式" in w.value for w in at.warning)


@pytest.mark.parametrize("page", nav.pages_for(User("u", "unit", "X")))
def test_unit_pages_render(page, shared_db, monkeypatch, unit_user):
    monkeypatch.setenv("KAOPING_DB", str(shared_db))
    at = app(unit_user, page)
    assert_clean(at)
    assert any("演示模式" in w.value for w in at.warning)


def test_unit_navigation_has_no_office_pages(unit_user):
    assert "adjust" not in nav.pages_for(unit_user) and "admin" not in nav.pages_for(unit_user)
    assert nav.pages_for(None) == ["login"]


# -- login ----------------------------------------------------------------------------------
def test_login_form_demo_banner_wrong_password_and_success(db):
    at = app(None)
    assert at.title[0].value == "政务公开季度考评"
    assert any("演示模式" in w.value for w in at.warning)
    assert "unit-shizhi" in [unescape(u) for u in frame(at.table[0])["用户名"]]
    at.text_input(key="login.username").input("office")
    at.text_input[1].input("wrong-password-1")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["用户名或密码错误"]
    at.text_input(key="login.username").input("office")
    at.text_input[1].input(accounts.DEMO_PASSWORD)
    at.button[0].click().run()
    assert_clean(at)
    assert at.title[0].value == "排名"
    assert at.session_state["user"] == OFFICE
    # nothing but the user is kept: no password anywhere in the session
    assert accounts.DEMO_PASSWORD not in repr(at.session_state)


def test_login_lockout_message(db):
    at = app(None)
    for _ in range(accounts.MAX_FAILURES):
        at.text_input(key="login.username").input("unit-qiye")
        at.text_input[1].input("not-the-password")
        at.button[0].click().run()
    assert "锁定" in at.error[0].value


# -- ranking --------------------------------------------------------------------------------
def test_ranking_filter_and_search(shared_db, monkeypatch):
    monkeypatch.setenv("KAOPING_DB", str(shared_db))
    at = app(OFFICE, "ranking")
    full = frame(at.dataframe[0])
    assert list(full.columns[:5]) == ["名次", "单位名称", "单位代码", "总分", "等级"]
    assert len(full) > 10
    at.multiselect(key="ranking.grades").select("优秀").run()
    excellent = frame(at.dataframe[0])
    assert 0 < len(excellent) < len(full) and {g for badge in excellent["等级"] for g in badge} == {"优秀"}  # grades are badges
    at.multiselect(key="ranking.grades").unselect("优秀").run()
    name = full["单位名称"].iloc[3]
    at.text_input(key="ranking.search").input(name[1:3]).run()
    found = frame(at.dataframe[0])
    assert name in found["单位名称"].tolist() and len(found) < len(full)
    assert all(name[1:3] in n for n in found["单位名称"])


def test_bulletin_and_score_table_buttons_for_the_office_only(shared_db, monkeypatch, unit_user):
    monkeypatch.setenv("KAOPING_DB", str(shared_db))
    labels = lambda at: [d.proto.label for d in at.get("download_button")]  # noqa: E731
    assert {"生成通报(Word)", "逐项得分表(Excel)", "下载 CSV", "下载 Excel"} <= set(labels(app(OFFICE, "ranking")))
    assert "生成通报(Word)" not in labels(app(unit_user, "ranking"))


def test_unit_user_sees_own_group_with_own_row(shared_db, monkeypatch, unit_user):
    monkeypatch.setenv("KAOPING_DB", str(shared_db))
    at = app(unit_user, "ranking")
    group = at.selectbox(key="ranking.group")
    assert group.disabled and group.options == ["市直部门"]
    assert unit_user.unit_code in frame(at.dataframe[0])["单位代码"].tolist()


def test_click_through_to_unit_detail(shared_db, monkeypatch):
    monkeypatch.setenv("KAOPING_DB", str(shared_db))
    with Store(shared_db) as s:
        latest = engine.latest_period(s)
        r = office_ranking(s, latest, "县区")
    code, name = r["unit_code"].iloc[2], r["unit_name"].iloc[2]
    # what a row click stores before switching page
    at = app(OFFICE, "unit_detail", **{"detail.unit": code, "detail.period": latest})
    assert_clean(at)
    assert unescape(at.subheader[0].value).startswith(name)
    assert "失分明细" in texts(at)
    items = frame(at.table[0])
    assert any("批次" in unescape(v) for v in items["数据来源"])              # where each figure came from


def test_unit_user_cannot_reach_another_units_detail(shared_db, monkeypatch, unit_user):
    monkeypatch.setenv("KAOPING_DB", str(shared_db))
    with Store(shared_db) as s:
        other = s.one("SELECT unit_code FROM units WHERE grp = '市直部门' AND unit_code <> ? LIMIT 1",
                      [unit_user.unit_code])[0]
        with pytest.raises(PermissionDenied):
            views.unit_history(s, unit_user, other)
    at = app(unit_user, "unit_detail", **{"detail.unit": other})
    assert_clean(at)
    picker = at.selectbox(key="detail.pick")
    assert picker.value == unit_user.unit_code and len(picker.options) == 1
    assert picker.disabled
    assert other not in texts(at)
    with pytest.raises(ValueError):
        at.switch_page("app_pages/adjust.py")


# -- upload, rollback, adjust ---------------------------------------------------------------
GBK_BAD = ("单位代码,季度,自评分,网站错链数\r\nNOPE01,2025Q4,90,3\r\nSZ001,2025年第九季度,90,abc\r\n").encode("gbk")


def test_upload_gbk_file_with_errors_shows_problem_table(db):
    at = app(OFFICE, "upload")
    at.file_uploader[0].upload("错误数据.csv", GBK_BAD, "text/csv").run()
    assert not at.exception
    assert "未导入" in at.error[0].value
    problems = frame(at.dataframe[1])  # after the preview
    assert list(problems.columns) == ["行号", "列", "值", "问题"]
    assert "NOPE01" in problems["值"].astype(str).tolist()
    assert not any(b.label == "确认导入" for b in at.button)


def test_fill_in_template_for_the_own_unit(shared_db, monkeypatch, unit_user):
    monkeypatch.setenv("KAOPING_DB", str(shared_db))
    at = app(unit_user, "upload")
    assert_clean(at)
    assert at.selectbox(key="upload.template_group").disabled
    assert "下载模板(CSV)" in [d.proto.label for d in at.get("download_button")]
    assert "1行(每个单位一行)" in texts(at)


def test_good_upload_changes_ranking_and_rollback_restores_it(db):
    top, data = top_unit_upload(db)
    at = app(OFFICE, "upload")
    at.file_uploader[0].upload("更正.csv", data, "text/csv").run()
    assert not at.error, [e.value for e in at.error]
    confirm = next(b for b in at.button if b.label == "确认导入")
    confirm.click().run()
    assert_clean(at)
    assert "已导入批次" in texts(at)
    at.switch_page("app_pages/ranking.py").run()
    at.selectbox(key="ranking.group").select("市直部门").run()
    table = frame(at.dataframe[0])
    assert table["单位代码"].iloc[0] != top
    # roll the batch back: the unit is first again
    at.switch_page("app_pages/upload.py").run()
    assert at.selectbox(key="upload.rollback_id").value is None       # nothing preselected
    newest = max(at.selectbox(key="upload.rollback_id").options, key=lambda o: int(o.split()[0].lstrip("#")))
    at.selectbox(key="upload.rollback_id").set_value(int(newest.split()[0].lstrip("#"))).run()
    at.checkbox(key="upload.rollback_sure").check()
    next(b for b in at.button if b.label == "回滚").click().run()
    assert_clean(at)
    assert "回滚" in texts(at)
    with Store(db) as s:
        assert office_ranking(s, "2025Q4", "市直部门")["unit_code"].iloc[0] == top


def _keyed(widgets, prefix):
    return next(w for w in widgets if w.key.startswith(prefix))


def test_adjust_needs_a_reason_then_saves(db):
    at = app(OFFICE, "adjust")
    assert_clean(at)
    picked = at.selectbox(key="adjust.item")
    current = float(re.search(r"现([\d.]+)分", picked.options[picked.index]).group(1))
    assert _keyed(at.number_input, "adjust.points").value == current        # starts at the current points
    _keyed(at.number_input, "adjust.points").set_value(99.0)
    _keyed(at.text_area, "adjust.reason").input("超出满分")
    next(b for b in at.button if b.label == "保存核定").click().run()
    assert "超出范围" in at.error[0].value                                   # said, in Chinese
    _keyed(at.number_input, "adjust.points").set_value(1.0)
    _keyed(at.text_area, "adjust.reason").input("")
    next(b for b in at.button if b.label == "保存核定").click().run()
    assert "理由" in at.error[0].value
    _keyed(at.number_input, "adjust.points").set_value(1.0)
    _keyed(at.text_area, "adjust.reason").input("材料复核后认定")
    next(b for b in at.button if b.label == "保存核定").click().run()
    assert_clean(at)
    assert "已核定" in texts(at)
    picked = at.selectbox(key="adjust.item")
    assert "已核定,现1.00分" in picked.options[picked.index]                 # the label shows the new points
    with Store(db) as s:
        adj = adjustments.list_adjustments(s, OFFICE)
    assert "材料复核后认定" in adj["reason"].tolist()


def test_unit_marks_own_problem_rectified(db, unit_user):
    with Store(db) as s:
        mine = rect.list_rectifications(s, unit_user, status=rect.OPEN)
    if mine.empty:
        with Store(db) as s:
            rect.add_rectification(s, OFFICE, unit_user.unit_code, "2025Q4", "第三方检测", "栏目未更新")
    at = app(unit_user, "rectify")
    assert_clean(at)
    at.text_area(key="rectify.done_note").input("已更新栏目")
    next(b for b in at.button if b.label == "标记为已整改").click().run()
    assert_clean(at)
    assert "已标记为已整改" in texts(at)


# -- loading a scheme and the registry from the pages --------------------------------------
def test_office_loads_a_scheme_and_sees_every_problem_of_a_bad_one(db):
    from tests.support import SPEC_SCHEME
    good = (SPEC_SCHEME.replace("scheme: spec-example", "scheme: 2026-test")
            .replace("2025Q1", "2026Q1").replace("2025Q4", "2026Q4"))
    bad = good.replace("[[50, 6], [30, 4], [1, 2]]", "[[1, 2], [50, 6]]").replace("per: 0.5}", "per: 0.5, cap: 1}")
    at = app(OFFICE, "scheme")
    at.file_uploader(key="scheme.upload").upload("2026.yaml", bad.encode("utf-8"), "application/x-yaml").run()
    next(b for b in at.button if b.label == "校验并加载").click().run()
    assert "2处错误" in at.error[0].value
    problems = " ".join(frame(at.dataframe[0])["问题"])
    assert "site.items).rule.tiers:阈值必须从高到低" in problems and "没有参数「cap」" in problems
    at.file_uploader(key="scheme.upload").upload("2026.yaml", good.encode("utf-8"), "application/x-yaml").run()
    next(b for b in at.button if b.label == "校验并加载").click().run()
    assert_clean(at)
    assert "考评表 2026-test(示例考评表)已加载" in texts(at)
    assert "示例考评表(市直部门,2026Q1–2026Q4)" in at.selectbox(key="scheme.pick").options


def test_office_imports_the_unit_registry(db):
    csv = "单位代码,单位名称,分组,上级单位代码\nSZ900,市新设局,市直部门,\n".encode("gbk")
    at = app(OFFICE, "admin")
    at.file_uploader(key="admin.registry").upload("名录.csv", csv, "text/csv")
    next(b for b in at.button if b.label == "导入").click().run()
    assert_clean(at)
    assert "新增1个" in texts(at)
    with Store(db) as s:
        assert s.one("SELECT unit_name FROM units WHERE unit_code = 'SZ900'")[0] == "市新设局"
