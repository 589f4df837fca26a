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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = build_demo_db(tmp_path_factory.mktemp("browser") / "demo.duckdb")
    top, good = top_unit_upload(db)
    port = free_port()
    env = {**os.environ, "KAOPING_DB": str(db), "PYTHONPATH": str(ROOT)}
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")
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
    yield url, good
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


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
