"""A real browser (Debian chromium through Playwright) against `streamlit run` on a loopback port.

Logs in as the office and as a unit user, opens every page, uploads a file with problems and a
good one, and saves screenshots under tests/artifacts/ (not committed; look at them).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from dashboard import nav
from scoring.accounts import DEMO_PASSWORD, User
from tests.dashboard_support import ROOT, build_demo_db, top_unit_upload

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
playwright = pytest.importorskip("playwright.sync_api")

TITLES = {name: title for pages in nav.sections_for(User("o", "office")).values() for name, title, _ in pages}
BAD_GBK = "单位代码,季度,自评分,网站错链数\r\nNOPE01,2025Q4,90,3\r\nSZ001,2025年第九季度,90,abc\r\n".encode("gbk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(db, log_dir: Path, **env_extra):
    """``streamlit run`` of the app on a free loopback port against ``db``; yields its URL."""
    port = free_port()
    env = {**os.environ, "KAOPING_DB": str(db), "PYTHONPATH": str(ROOT), **env_extra}
    log = open(log_dir / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("streamlit did not start: " + Path(log.name).read_text())
        time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from scoring import lifecycle
    from scoring.cli import CLI_OFFICE
    from scoring.store import Store

    db = build_demo_db(tmp_path_factory.mktemp("browser") / "demo.duckdb")
    with Store(db) as s:        # the demo's 2025Q4 is on 公示: back to review, where the office corrects figures
        lifecycle.close_period(s, CLI_OFFICE, "2025Q4")
    top, good = top_unit_upload(db)
    with streamlit_server(db, tmp_path_factory.mktemp("log")) as url:
        yield url, good


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def settle(page, title: str | None = None) -> None:
    if title:
        page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=30_000)
    page.wait_for_timeout(400)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=30_000)
    page.wait_for_timeout(1200)  # plotly draws after the script finishes


def assert_no_traceback(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    assert "Traceback" not in page.inner_text("body")


def login(page, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_label("用户名").wait_for(timeout=30_000)
    settle(page)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    settle(page, "排名")


def open_page(page, name: str) -> None:
    link = page.locator("[data-testid='stSidebarNav']").get_by_text(TITLES[name], exact=True)
    heading = page.get_by_role("heading", name=TITLES[name], exact=True).first
    for _ in range(3):  # a click that lands while the previous page still reruns can be lost
        link.click()
        try:
            heading.wait_for(timeout=15_000)
            break
        except playwright.TimeoutError:
            continue
    settle(page, TITLES[name])


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # Streamlit scrolls inside its main container: grow the viewport to the content for the shot
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": max(900, min(int(height) + 40, 5000))})
    page.wait_for_timeout(600)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1440, "height": 900})
    return path


def test_office_every_page_and_upload(server, browser):
    url, _ = server
    page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page.goto(url)
    page.get_by_label("用户名").wait_for(timeout=30_000)
    settle(page)
    assert "演示模式" in page.inner_text("body")
    shot(page, "login")
    login(page, url, "office")
    for name in nav.pages_for(User("office", "office")):
        if name != "ranking":
            open_page(page, name)
        assert_no_traceback(page)
        assert "演示模式" in page.inner_text("body")
        shot(page, f"office_{name}")

    open_page(page, "upload")
    page.locator("input[type=file]").set_input_files(
        {"name": "错误数据.csv", "mimeType": "text/csv", "buffer": BAD_GBK})
    page.get_by_text("整个文件未导入").wait_for(timeout=30_000)
    settle(page)
    assert_no_traceback(page)
    shot(page, "office_upload_problems")

    url, good = server
    page.locator("input[type=file]").set_input_files({"name": "更正.csv", "mimeType": "text/csv", "buffer": good})
    page.get_by_role("button", name="确认导入").click()
    page.get_by_text("已导入批次").wait_for(timeout=30_000)
    settle(page)
    assert_no_traceback(page)
    shot(page, "office_upload_done")

    # the quarter's 通报, one click on 排名: a Word file that opens and names the quarter
    open_page(page, "ranking")
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="生成通报(Word)").click()
    path = ARTIFACTS / "bulletin.docx"
    download.value.save_as(path)
    import docx
    text = "\n".join(p.text for p in docx.Document(path).paragraphs)
    assert "政务公开" in text and "通报" in text and "一、总体情况" in text
    page.close()


def test_unit_user_every_page(server, browser):
    url, _ = server
    page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    login(page, url, "unit-shizhi")
    sidebar = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert "核定" not in sidebar and "管理" not in sidebar
    for name in nav.pages_for(User("unit-shizhi", "unit", "X")):
        if name != "ranking":
            open_page(page, name)
        assert_no_traceback(page)
        shot(page, f"unit_{name}")
    page.close()


# -- the quarter lifecycle, walked in the browser ------------------------------------------------
LIFECYCLE_TODAY = "2026-01-07"


@pytest.fixture(scope="module")
def lifecycle_server(tmp_path_factory):
    """A server of its own (a fresh demo, "today" fixed) with 2025Q4 back at 报送中 whatever the demo seeds."""
    from scoring import lifecycle
    from scoring.cli import CLI_OFFICE
    from scoring.store import Store

    db = build_demo_db(tmp_path_factory.mktemp("lifecycle") / "demo.duckdb")
    with Store(db) as s:
        for step in ("reopen", "close"):
            st = lifecycle.state(s, "2025Q4")
            if step == "reopen" and st.status == lifecycle.PUBLISHED:
                lifecycle.reopen(s, CLI_OFFICE, "2025Q4", "浏览器测试重新走一遍")
            if step == "close" and st.status == lifecycle.PUBLICITY:
                lifecycle.close_period(s, CLI_OFFICE, "2025Q4")
        if lifecycle.status_of(s, "2025Q4") == lifecycle.REVIEWING:
            lifecycle.open_period(s, CLI_OFFICE, "2025Q4", "2026-01-10")
        unit = s.one("SELECT unit_code FROM users WHERE username = 'unit-shizhi'")[0]
    with streamlit_server(db, tmp_path_factory.mktemp("log"), KAOPING_TODAY=LIFECYCLE_TODAY) as url:
        yield url, db, unit


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label``."""
    box = page.locator("[data-testid='stSelectbox']").filter(has_text=label).first
    box.click()
    page.get_by_role("option", name=option).first.click()
    settle(page)


def test_quarter_lifecycle_walk(lifecycle_server, browser):
    """报送 → 审核 → 公示 (the unit files an 异议, the office accepts it) → 定稿; then a late upload is
    refused and the published ranking does not move."""
    from scoring import views
    from scoring.cli import CLI_OFFICE
    from scoring.store import Store
    from tests.dashboard_support import demo_frame

    url, db, unit = lifecycle_server
    office = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    login(office, url, "office")
    open_page(office, "lifecycle")
    assert_no_traceback(office)

    def step(button: str, expect: str, until: str | None = None) -> None:
        choose(office, "操作", button)
        if until:
            box = office.locator("[data-testid='stDateInput'] input").first
            box.fill(until)
            box.press("Enter")
            settle(office)
        office.get_by_role("button", name=button).click()
        office.get_by_text(expect).first.wait_for(timeout=30_000)
        settle(office)
        assert_no_traceback(office)

    # 报送: the deadline the office sets is what the clerk reads
    from scoring import lifecycle

    with Store(db) as s:
        first = lifecycle.action_label("open", lifecycle.SUBMITTING, lifecycle.state(s, "2025Q4").recorded)
    step(first, "开放报送,截止2026年1月10日", until="2026-01-10")
    head = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    login(head, url, "unit-shizhi")
    open_page(head, "upload")
    assert "2025年第四季度(2025Q4)报送截止:2026年1月10日,还剩3天" in head.inner_text("body")
    shot(head, "unit_lifecycle_deadline")

    # 审核, then 公示 until the default end date (a week from today)
    step("结束报送,进入审核", "报送已截止,进入审核")
    step("公示结果", "结果公示中,异议截止2026年1月14日", until="2026-01-14")

    # the unit sees its provisional result and files an 异议
    open_page(head, "unit_detail")
    choose(head, "季度", "2025Q4")
    head.get_by_text("公示中,异议截止:2026年1月14日").first.wait_for(timeout=30_000)
    head.get_by_label("异议理由(必填)").fill("本季度已按要求完成整改,整改材料已报送")
    head.get_by_role("button", name="提交异议").click()
    head.get_by_text("已提交异议#").first.wait_for(timeout=30_000)
    settle(head)
    assert_no_traceback(head)
    shot(head, "unit_lifecycle_publicity")
    from scoring import objections

    with Store(db) as s:
        [filed] = objections.records(objections.list_objections(s, CLI_OFFICE, period="2025Q4"))
    assert filed["unit_code"] == unit and filed["status"] == "待答复"
    with Store(db) as s:
        item = next(i for i in views.unit_report(s, CLI_OFFICE, unit, "2025Q4")["items"]
                    if i["item_id"] == filed["item_id"])

    # the office accepts it with a 核定
    office.reload()
    settle(office, "考评周期")
    points = office.get_by_label("核定分值(扣分项填扣除的分数)")
    points.fill(f"{item['max']:.2f}")
    points.press("Tab")
    settle(office)
    office.get_by_label("答复理由(必填,单位可见)").fill("整改材料属实,予以采纳")
    office.get_by_role("button", name="提交答复").click()
    office.get_by_text("已采纳").first.wait_for(timeout=30_000)
    settle(office)
    assert_no_traceback(office)

    # 定稿
    step("定稿发布", "已定稿发布")
    shot(office, "office_lifecycle")
    with Store(db) as s:
        published = views.ranking_records(views.ranking(s, CLI_OFFICE, "2025Q4"))
        report = views.unit_report(s, CLI_OFFICE, unit, "2025Q4")
    [accepted] = [it for it in report["items"] if it["item_id"] == filed["item_id"]]
    assert accepted["status"] == "adjusted" and accepted["points"] == item["max"]
    assert f"采纳异议#{filed['id']}:整改材料属实,予以采纳" in accepted["explanation"]

    # a late upload by the clerk is refused, and the published ranking does not move
    from scoring.schemes import parse_scheme

    scheme = parse_scheme((ROOT / "data" / "tables" / "2025-shizhi.yaml").read_text(encoding="utf-8"))
    frame = demo_frame("2025Q4", "2025-shizhi")
    own = [c for c in frame.columns if c in ("unit_code", "period", "self_score")
           or (c in scheme.indicators and scheme.indicators[c].source == "unit")]
    late = frame.loc[frame["unit_code"] == unit, own].to_csv(index=False).encode("utf-8")
    head.reload()
    settle(head)
    open_page(head, "upload")
    assert "报送已截止(当前状态:已定稿)" in head.inner_text("body")
    head.locator("input[type=file]").set_input_files({"name": "补报.csv", "mimeType": "text/csv", "buffer": late})
    import re

    from scoring.accounts import get_user
    from scoring.ingest import check_upload

    head.get_by_text(re.compile("不在报送期|整个文件未导入")).first.wait_for(timeout=30_000)
    settle(head)
    assert_no_traceback(head)
    assert head.get_by_role("button", name="确认导入").count() == 0
    shot(head, "unit_lifecycle_late_upload")
    with Store(db) as s:
        checked = check_upload(s, late, "补报.csv", get_user(s, "unit-shizhi"))
        assert "2025Q4 不在报送期(当前状态:已定稿)" in checked.problems.to_string()
        assert views.ranking_records(views.ranking(s, CLI_OFFICE, "2025Q4")) == published
    head.close()
    office.close()
