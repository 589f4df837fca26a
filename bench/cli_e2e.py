"""The command line as a clerk's office uses it, timed in processes of its own.

- ``python -m scoring --help``: the start-up of a command (imports), best of 5.
- 10,000 units end to end: ``python -m scoring ingest QUARTER.csv`` then ``python -m scoring
  ranking --period P --format csv`` (two processes, start-up included) on a database that already
  holds the registry and the scheme, the benchmark's scheme (60 indicators, 40 items). Each
  repetition starts from a copy of that database, so no upload is a repeat (a no-op). Best of
  :data:`REPEAT`: ``cli_e2e_s`` (no server: each process imports pandas, numpy, DuckDB itself).
- The same two commands with a server (``python -m scoring --db D serve``, scoring/server.py)
  started for the database beforehand: each command is still a process of its own (the client:
  Python's start-up, the request, the output), the server has imported the heavy modules already.
  The server's start-up (``cli_e2e_server_start_s``, until its socket is in place) is not counted
  in ``cli_e2e_served_s``: it is paid once per working session, not per command. The served ranking
  must be byte for byte the ranking of the run without a server.

The spreadsheet it replaces, and how the ratio is re-measured, is in bench/RESULTS.md
("The spreadsheet comparison").
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import generate as G

ROOT = Path(__file__).resolve().parent.parent
E2E = G.Scale("E", 10_000, 1, "2025Q4")     # one quarter of 10,000 units
REPEAT = 3
SPREADSHEET_S = 19.4     # LibreOffice Calc recalculating the scheme as formulas, 10,000 units (RESULTS.md)
SERVER_START_TIMEOUT_S = 120


def _env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def _run(*args: str, out=subprocess.DEVNULL, **env: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scoring", *args], cwd=ROOT, env=_env(**env), check=True, stdout=out,
                   stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def time_help() -> float:
    """Best of 5 ``python -m scoring --help``."""
    return min(_run("--help") for _ in range(5))


def start_server(db: Path) -> tuple[subprocess.Popen, float]:
    """``python -m scoring --db DB serve``, and the seconds until its socket is in place."""
    sock = Path(f"{Path(db).resolve()}.sock")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "scoring", "--db", str(db), "serve"], cwd=ROOT, env=_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not sock.is_socket():
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        if time.perf_counter() - t0 > SERVER_START_TIMEOUT_S:
            stop_server(proc)
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    return proc, time.perf_counter() - t0


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _fresh(base: Path, db: Path) -> None:
    for f in (db, Path(f"{db}.wal")):
        f.unlink(missing_ok=True)
    shutil.copy(base, db)


def _ingest_and_rank(db: Path, upload: Path, period: str, out_csv: Path, **env: str) -> tuple[float, float]:
    ingest_s = _run("--db", str(db), "ingest", str(upload), **env)
    with open(out_csv, "w") as out:
        ranking_s = _run("--db", str(db), "ranking", "--period", period, "--format", "csv", out=out, **env)
    rows = sum(1 for _ in open(out_csv, encoding="utf-8")) - 1
    assert rows == E2E.units, rows
    return ingest_s, ranking_s


def time_end_to_end() -> dict:
    from scoring.permissions import SYSTEM
    from scoring.schemes import save_scheme
    from scoring.store import Store
    from scoring.units import save_units

    tmp = Path(tempfile.mkdtemp(prefix="kaoping-bench-cli-"))
    server = None
    try:
        base = tmp / "base.duckdb"
        reg = G.registry(E2E)
        with Store(base) as store:
            save_units(store, reg, SYSTEM)
            save_scheme(store, G.scheme_yaml(E2E), SYSTEM)
        period = G.quarters(E2E)[-1]
        q = G.quarter(E2E, period, reg["unit_code"].to_numpy(dtype=object))
        upload = tmp / f"{period}.csv"
        upload.write_bytes(G.quarter_csv(q))

        runs = []                                   # no server: every process pays its imports
        for k in range(REPEAT):
            db = tmp / f"run{k}.duckdb"
            _fresh(base, db)
            ingest_s, ranking_s = _ingest_and_rank(db, upload, period, tmp / "ranking.csv", KAOPING_NO_SERVER="1")
            runs.append((ingest_s + ranking_s, ingest_s, ranking_s))
        total, ingest_s, ranking_s = min(runs)

        served_db = tmp / "served.duckdb"           # one server for the database, started beforehand
        _fresh(base, served_db)
        server, start_s = start_server(served_db)
        served = []
        for _ in range(REPEAT):
            _fresh(base, served_db)                 # the server is idle: it holds no file open
            s_ingest, s_ranking = _ingest_and_rank(served_db, upload, period, tmp / "served.csv")
            served.append((s_ingest + s_ranking, s_ingest, s_ranking))
        stop_server(server)
        server = None
        assert (tmp / "served.csv").read_bytes() == (tmp / "ranking.csv").read_bytes(), "served output differs"
        s_total, s_ingest, s_ranking = min(served)
        return {"cli_e2e_units": E2E.units, "cli_e2e_values": q.n_values, "cli_e2e_s": total,
                "cli_e2e_ingest_s": ingest_s, "cli_e2e_ranking_s": ranking_s,
                "cli_e2e_vs_spreadsheet": SPREADSHEET_S / total,
                "cli_e2e_served_s": s_total, "cli_e2e_served_ingest_s": s_ingest,
                "cli_e2e_served_ranking_s": s_ranking, "cli_e2e_served_vs_spreadsheet": SPREADSHEET_S / s_total,
                "cli_e2e_server_start_s": start_s}
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":     # python -m bench.cli_e2e: these figures alone
    import json

    sys.path.insert(0, str(ROOT))
    figures = {"cli_help_s": time_help(), **time_end_to_end()}
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))
