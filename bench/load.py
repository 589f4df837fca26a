"""Concurrent sessions on the app: ``python -m bench --scale P --sessions 20``.

Serves the app with ``streamlit run`` on a loopback port against the benchmark's database, then
opens the 排名 page in N headless Debian-chromium contexts at once (Playwright), each logged in by
the HttpOnly session cookie, and reports the time from navigation to the page rendered (its title
and its table drawn, the script no longer running): median, 95th percentile and the slowest.
A first session, not counted, pays the server's cold start (it scores every quarter); the N then
open the page together, as N office staff would after a 通报 goes out. Bounded: at most
:data:`MAX_SESSIONS` sessions and :data:`TIMEOUT_S` each; a session that times out counts as
failed and is reported, not waited for. The browsers run on the same 2 cores as the server, so
the figures include the browsers' own rendering: an upper bound of the server's share.
:func:`server_sessions` measures that share alone: N AppTest sessions in threads of one process.
"""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MAX_SESSIONS = 50
TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """``streamlit run dashboard/app.py`` on a free loopback port, stopped on exit."""

    def __init__(self, db: str, log: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")
        env = {**os.environ, "KAOPING_DB": db, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self):
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(self.url + "/_stcore/health", timeout=2).read() == b"ok":
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("streamlit did not start: " + Path(self.log.name).read_text()[-2000:])
            time.sleep(0.3)

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def _open_ranking(browser, url: str, cookie: dict) -> float:
    """Seconds from navigation to the 排名 page rendered, in a new context (a new session)."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT_S * 1000)
    context.set_default_navigation_timeout(TIMEOUT_S * 1000)
    try:
        await context.add_cookies([cookie])
        page = await context.new_page()
        t0 = time.perf_counter()
        await page.goto(url + "/ranking")
        await page.get_by_role("heading", name="排名", exact=True).first.wait_for(timeout=TIMEOUT_S * 1000)
        await page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=TIMEOUT_S * 1000)
        await page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
            " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
            timeout=TIMEOUT_S * 1000)
        return time.perf_counter() - t0
    finally:
        await context.close()


async def _sessions(url: str, token: str, n: int) -> dict:
    from playwright.async_api import async_playwright

    from scoring.sessions import COOKIE

    cookie = {"name": COOKIE, "value": token, "url": url + "/", "httpOnly": True, "sameSite": "Strict"}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            first = await _open_ranking(browser, url, cookie)       # the server's cold start
            t0 = time.perf_counter()
            done = await asyncio.gather(*[asyncio.wait_for(_open_ranking(browser, url, cookie), TIMEOUT_S)
                                          for _ in range(n)], return_exceptions=True)
            wall = time.perf_counter() - t0
        finally:
            await browser.close()
    times = np.array([t for t in done if isinstance(t, float)])
    failed = [repr(e)[:200] for e in done if not isinstance(e, float)]
    return {"sessions": n, "sessions_ok": len(times), "sessions_failed": len(failed),
            "sessions_errors": "; ".join(failed[:3]), "sessions_first_s": first, "sessions_wall_s": wall,
            "sessions_median_s": float(np.median(times)) if len(times) else None,
            "sessions_p95_s": float(np.percentile(times, 95)) if len(times) else None,
            "sessions_max_s": float(times.max()) if len(times) else None}


def server_sessions(db: str, user, n: int) -> dict:
    """The server's share alone: N Streamlit sessions (AppTest, threads of this process, as a
    server runs them) opening 排名 at once; each time is the page script's run, from start to end."""
    from concurrent.futures import ThreadPoolExecutor

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["KAOPING_DB"] = db
    app = str(ROOT / "dashboard" / "app.py")

    def one(_) -> float:
        at = AppTest.from_file(app, default_timeout=TIMEOUT_S)
        at.session_state["user"] = user
        t0 = time.perf_counter()
        at.run()                      # a logged-in session starts on 排名
        if at.exception:
            raise RuntimeError(at.exception[0].message)
        return time.perf_counter() - t0

    st.cache_resource.clear()
    first = one(0)                    # the cold start, not counted
    n = max(1, min(int(n), MAX_SESSIONS))
    with ThreadPoolExecutor(n) as pool:
        t0 = time.perf_counter()
        times = np.array(list(pool.map(one, range(n))))
        wall = time.perf_counter() - t0
    st.cache_resource.clear()         # the store lets go of the file
    return {"server_sessions": n, "server_sessions_first_s": first, "server_sessions_wall_s": wall,
            "server_sessions_median_s": float(np.median(times)), "server_sessions_p95_s": float(np.percentile(times, 95))}


def load_test(db: str, token: str, n: int, log_dir: Path) -> dict:
    """N concurrent sessions opening 排名 (see the module's docstring); ``token`` logs them in."""
    if not Path(CHROMIUM).exists():
        return {"sessions_error": f"{CHROMIUM} not found"}
    n = max(1, min(int(n), MAX_SESSIONS))
    with _Server(db, log_dir / "streamlit.log") as server:
        return asyncio.run(_sessions(server.url, token, n))
