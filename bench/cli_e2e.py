"""The command line as a clerk's office uses it, timed in processes of its own.

- ``python -m scoring --help``: the start-up of a command (imports), best of :data:`REPEAT`.
- 10,000 units end to end: ``python -m scoring ingest QUARTER.csv`` then ``python -m scoring
  ranking --period P --format csv`` (two processes, start-up included) on a database that already
  holds the registry and the scheme, the benchmark's scheme (60 indicators, 40 items). Each
  repetition starts from a copy of that database, so no upload is a repeat (a no-op).

The spreadsheet it replaces, and how the ratio is re-measured, is in bench/RESULTS.md
("The spreadsheet comparison").
"""
from __future__ import annotations

import os
import shutil
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


def _run(*args: str, out=subprocess.DEVNULL) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scoring", *args], cwd=ROOT, env=env, check=True, stdout=out,
                   stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def time_help() -> float:
    """Best of 5 ``python -m scoring --help``."""
    return min(_run("--help") for _ in range(5))


def time_end_to_end() -> dict:
    from scoring.permissions import SYSTEM
    from scoring.schemes import save_scheme
    from scoring.store import Store
    from scoring.units import save_units

    tmp = Path(tempfile.mkdtemp(prefix="kaoping-bench-cli-"))
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
        runs = []
        for k in range(REPEAT):
            db = tmp / f"run{k}.duckdb"
            shutil.copy(base, db)
            ingest_s = _run("--db", str(db), "ingest", str(upload))
            with open(tmp / "ranking.csv", "w") as out:
                ranking_s = _run("--db", str(db), "ranking", "--period", period, "--format", "csv", out=out)
            rows = sum(1 for _ in open(tmp / "ranking.csv", encoding="utf-8")) - 1
            assert rows == E2E.units, rows
            runs.append((ingest_s + ranking_s, ingest_s, ranking_s))
        total, ingest_s, ranking_s = min(runs)
        return {"cli_e2e_units": E2E.units, "cli_e2e_values": q.n_values, "cli_e2e_s": total,
                "cli_e2e_ingest_s": ingest_s, "cli_e2e_ranking_s": ranking_s,
                "cli_e2e_vs_spreadsheet": SPREADSHEET_S / total}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
