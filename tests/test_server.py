"""The resident server (``python -m scoring serve``, scoring/server.py) and its client (scoring/__main__.py).

Every command sent through the server must print exactly what it prints in a process of its own
(stdout, stderr, exit code, byte for byte): each is run both ways, on two identical databases in
two directories, with the same relative ``--db`` (so the client's working directory matters).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scoring import server as S
from scoring.cli import CLI_OFFICE
from scoring.schemes import save_scheme
from scoring.store import DEFAULT_DB, Store
from scoring.units import save_units
from tests.support import GOOD, ROOT, SPEC_SCHEME, UNITS, WEAK, submit

pytestmark = pytest.mark.timeout(60)

DB = "cli.duckdb"
MANY = 60         # extra units, so that a ranking (~200 bytes a unit) is larger than a small pipe's buffer

UPLOAD = "unit_code,period,has_leading_group,proactive_items,broken_links,reply_on_time_rate,secret_leaks\n" \
         "U1,2025Q4,1,40,2,97,0\nU2,2025Q4,0,55,8,85,0\n"
BAD_UPLOAD = "unit_code,period,has_leading_group,proactive_items\nU1,2025Q4,也许,-3\nZZ9,2025Q9,1,1\n"
PROBLEMS = "单位代码,季度,考评项,问题描述,链接,发现日期,整改期限\nU1,2025Q3,,首页错链,,2025-10-01,2025-11-01\n"


def _env(code: Path = ROOT, **env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KAOPING_")}
    return {**full, "PYTHONPATH": str(code), **env}


def _start(cwd: Path, *args: str, served: bool = True, code: Path = ROOT, **env: str) -> subprocess.Popen:
    full = _env(code, **env)
    if not served:
        full["KAOPING_NO_SERVER"] = "1"
    return subprocess.Popen([sys.executable, "-m", "scoring", "--db", DB, *args], cwd=cwd, env=full,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def client(cwd: Path, *args: str, served: bool = True, code: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    """``python -m scoring --db cli.duckdb ARGS`` run in ``cwd``, through a server if one serves it
    (``code``: where the package is, PYTHONPATH)."""
    return _finish(_start(cwd, *args, served=served, code=code, **env))


def both(pair, *args: str, **env: str):
    """The same command without a server and through it (at the same time, on the two databases);
    asserts equal bytes and exit codes, and that the server ran it."""
    before = pair["log"].read_text("utf-8").count(" → ")
    local = _start(pair["local"], *args, served=False, **env)
    served = client(pair["served"], *args, **env)
    local = _finish(local)
    assert (served.returncode, served.stdout, served.stderr) == (local.returncode, local.stdout, local.stderr)
    log = pair["log"].read_text("utf-8")
    if log.count(" → ") == before and "重新载入" in log:     # someone edited scoring/*.py meanwhile: the
        return served                                          # server refused (ran here) and reloads
    assert _wait(lambda: pair["log"].read_text("utf-8").count(" → ") == before + 1), "not served by the server"
    return served


def _wait(ok, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def seed(path: Path) -> None:
    import pandas as pd

    extra = pd.DataFrame([(f"M{i:03d}", f"测试单位{i}", "市直部门", None) for i in range(MANY)], columns=UNITS.columns)
    with Store(path) as s:
        save_units(s, pd.concat([UNITS, extra], ignore_index=True), CLI_OFFICE)
        save_scheme(s, SPEC_SCHEME, CLI_OFFICE)
        submit(s, "2025Q2", {"U1": GOOD, "U2": WEAK})
        submit(s, "2025Q3", {"U1": GOOD, "U2": WEAK, "U3": {"secret_leaks": 1}, "U4": GOOD,
                             **{f"M{i:03d}": {"proactive_items": i} for i in range(MANY)}})


def start_server(directory: Path, log: Path, code: Path = ROOT) -> subprocess.Popen:
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "scoring", "--db", DB, "serve"], cwd=directory,
                                env=_env(code), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    sock = directory / (DB + S.SUFFIX)
    if not _wait(lambda: (sock.is_socket() and "就绪" in log.read_text("utf-8")) or proc.poll() is not None, 45):
        stop(proc)
        pytest.fail("the server did not start")
    assert proc.poll() is None, log.read_text("utf-8")
    return proc


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    base = root / "base.duckdb"
    seed(base)
    dirs = {"local": root / "local", "served": root / "served"}
    for d in dirs.values():
        d.mkdir()
        shutil.copy(base, d / DB)
        (d / "q4.csv").write_text(UPLOAD, encoding="utf-8")
        (d / "bad.csv").write_text(BAD_UPLOAD, encoding="utf-8")
        (d / "problems.csv").write_text(PROBLEMS, encoding="utf-8")
    log = root / "server.log"
    proc = start_server(dirs["served"], log)
    try:
        yield {**dirs, "log": log, "proc": proc}
    finally:
        code = stop(proc)
        assert code == 0, log.read_text("utf-8")
        assert not (dirs["served"] / (DB + S.SUFFIX)).exists()      # removed on SIGTERM
        assert "已停止" in log.read_text("utf-8")


def test_socket_is_private_and_default_path_is_the_stores(pair):
    st = (pair["served"] / (DB + S.SUFFIX)).stat()
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == os.getuid()
    assert S.DEFAULT_DB == DEFAULT_DB


def test_commands_are_byte_identical_with_and_without_the_server(pair):
    r = both(pair, "ingest", "q4.csv")                          # a relative path: the client's directory
    assert r.returncode == 0 and "已导入批次" in r.stdout.decode()
    r = both(pair, "ranking", "--period", "2025Q3", "--format", "json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 4 + MANY
    assert "市教育局".encode() in r.stdout
    r = both(pair, "explain", "U2", "--period", "2025Q3")
    assert r.returncode == 0 and "总分" in r.stdout.decode()
    r = both(pair, "ingest", "bad.csv")                         # rejected input: every problem, exit 1
    assert r.returncode == 1 and "错误" in r.stdout.decode()
    r = both(pair, "ranking", "--period", "2025Q9")             # an error on stderr, exit 1
    assert r.returncode == 1 and "季度格式不正确" in r.stderr.decode() and not r.stdout
    r = both(pair, "ranking")                                   # usage error, exit 2
    assert r.returncode == 2 and "用法错误" in r.stderr.decode()
    for d in (pair["local"], pair["served"]):                 # the upload went to each database once
        with Store(d / DB) as s:
            assert s.one("SELECT count(*) FROM batches WHERE file_name = 'q4.csv'")[0] == 1


def served(pair, *args: str, **env: str) -> subprocess.CompletedProcess:
    """A command through the server only (``both`` compares with a process of its own)."""
    before = pair["log"].read_text("utf-8").count(" → ")
    r = client(pair["served"], *args, **env)
    log = pair["log"].read_text("utf-8")
    assert _wait(lambda: pair["log"].read_text("utf-8").count(" → ") == before + 1) or "重新载入" in log
    return r


def test_kaoping_today_is_the_clients_and_does_not_leak(pair):
    r = served(pair, "problems", "import", "problems.csv", KAOPING_TODAY="2025-10-15")
    assert r.returncode == 0, r.stderr.decode()

    def status(**env):
        r = served(pair, "problems", "list", "--format", "json", **env)
        assert r.returncode == 0, r.stderr.decode()
        return json.loads(r.stdout)[0]["status"]

    assert status(KAOPING_TODAY="2025-10-15") == "待整改"
    assert status() == "逾期未整改"                             # today is the system date again
    r = served(pair, "problems", "list", KAOPING_TODAY="someday")
    assert r.returncode == 1 and "KAOPING_TODAY「someday」" in r.stderr.decode()
    # a demo database makes its recorded day the process's today: for that request only
    with Store(pair["served"] / DB) as s:
        s.write(lambda cur: s.set_meta(cur, "demo_today", "2025-10-15"), scores_change=False)
    assert status() == "待整改"
    with Store(pair["served"] / DB) as s:
        s.write(lambda cur: cur.execute("DELETE FROM meta WHERE key = 'demo_today'"), scores_change=False)
    assert status() == "逾期未整改"


def test_the_database_is_free_while_the_server_is_idle(pair):
    with Store(pair["served"] / DB) as s:                       # another process may write the file
        assert s.one("SELECT count(*) FROM units")[0] == len(UNITS) + MANY


def test_broken_pipe_ends_like_a_process_of_its_own(pair):
    import fcntl

    results = []
    for served, cwd in ((False, pair["local"]), (True, pair["served"])):
        r, w = os.pipe()
        fcntl.fcntl(w, 1031, 4096)                              # F_SETPIPE_SZ: the ranking is larger
        env = _env(**({} if served else {"KAOPING_NO_SERVER": "1"}))
        proc = subprocess.Popen([sys.executable, "-m", "scoring", "--db", DB, "ranking", "--period", "2025Q3",
                                 "--format", "json"], cwd=cwd, env=env, stdout=w, stderr=subprocess.PIPE)
        os.close(w)
        head = os.read(r, 100)                                  # `| head -c 100`
        os.close(r)
        _, err = proc.communicate(timeout=60)
        results.append((head[:1], proc.returncode, err))
    assert results[0] == results[1] == (b"[", 0, b"")
    assert client(pair["served"], "ranking", "--period", "2025Q3").returncode == 0   # still serving


def test_help_and_password_prompts_stay_in_the_client(pair):
    for args in (["--help"], ["ranking", "--help"]):
        local, served = (client(pair[k], *args, served=k == "local") for k in ("local", "served"))
        assert local.returncode == served.returncode == 0 and local.stdout == served.stdout
    log = pair["log"].read_text("utf-8")
    r = client(pair["served"], "user", "add", "zhang", "--role", "office", "--password-stdin")
    assert r.returncode == 1 and pair["log"].read_text("utf-8") == log   # stdin is the client's: not forwarded


def test_a_second_server_for_the_same_database_is_refused(pair):
    r = subprocess.run([sys.executable, "-m", "scoring", "--db", DB, "serve"], cwd=pair["served"],
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "已在运行" in r.stderr
    assert (pair["served"] / (DB + S.SUFFIX)).is_socket() and pair["proc"].poll() is None


def test_stale_socket_replaced_code_reloaded_socket_removed_on_exit(tmp_path):
    code = tmp_path / "code"                                    # a checkout of its own, to edit
    shutil.copytree(ROOT / "scoring", code / "scoring", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "tests" / "uploads" / "units.csv", work / "units.csv")
    path = work / (DB + S.SUFFIX)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)    # a server killed: its socket left behind
    dead.bind(str(path))
    dead.close()
    assert path.is_socket()
    r = client(work, "units", "units.csv", code=code)          # connection refused: runs in the client
    assert r.returncode == 0, r.stderr
    log = tmp_path / "server.log"
    proc = start_server(work, log, code)                        # replaces the stale socket
    try:
        served = lambda n: _wait(lambda: log.read_text("utf-8").count(" units → 0") == n)  # noqa: E731
        r = client(work, "units", "units.csv", code=code)
        assert r.returncode == 0 and "新增0个" in r.stdout.decode() and served(1)
        labels = code / "scoring" / "labels.py"                 # the program changes under the server
        os.utime(labels, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns + 10**9))
        r = client(work, "units", "units.csv", code=code)      # refused (ran here); the server reloads
        assert r.returncode == 0 and "新增0个" in r.stdout.decode()
        assert _wait(lambda: "重新载入" in log.read_text("utf-8")) and path.is_socket()
        r = client(work, "units", "units.csv", code=code)      # waits for the fresh process, same socket
        assert r.returncode == 0 and served(2), log.read_text("utf-8")
        assert proc.poll() is None
    finally:
        exit_code = stop(proc, signal.SIGINT)
    assert exit_code == 0 and not path.exists()


def test_a_file_in_the_sockets_place_is_left_alone(tmp_path):
    (tmp_path / (DB + S.SUFFIX)).write_text("not a socket")
    r = subprocess.run([sys.executable, "-m", "scoring", "--db", DB, "serve"], cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "不是服务套接字" in r.stderr
    assert (tmp_path / (DB + S.SUFFIX)).read_text() == "not a socket"


# -- the server's refusals, in this process ---------------------------------------------------------
def _request(fp: bytes) -> bytes:
    items = [S.PROTOCOL, fp, os.getcwdb(), b"18", b"80", b"24", b"", b"1", b"batches"]
    body = S.pack(items)
    return len(body).to_bytes(4, "big") + body


def _answer(server: S.Server, request: bytes) -> bytes:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        b.sendall(request)           # (a refused peer's request is left unread: send none, or it is reset)
        server.handle(a)
        a.close()
        b.settimeout(5)
        data = b""
        while chunk := b.recv(4096):
            data += chunk
    return data


def test_other_users_and_other_code_are_refused(tmp_path, monkeypatch):
    server = S.Server(str(tmp_path / DB), log=open(os.devnull, "w"))
    monkeypatch.setattr(S, "peer_uid", lambda sock: os.getuid() + 1)
    assert _answer(server, b"")[:1] == S.REFUSED
    monkeypatch.undo()
    assert _answer(server, _request(b"another checkout"))[:1] == S.REFUSED
    assert not server.reload_requested and not server.stop_requested   # its own code has not changed
