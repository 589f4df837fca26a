"""``python -m bench --scale C|P|N [--json]``: SPEC's Performance benchmark, in one run.

Generates the scale's data deterministically into a temporary DuckDB file, then measures ingest
throughput (through the real upload path: ``ingest()`` with CSV bytes, validation included),
scoring time (one quarter, every quarter), the same values' plain DuckDB scan, the naive pandas
baseline (and asserts its totals equal the engine's), the 排名 and 单位详情 pages' server time
(AppTest: cold, warm, and right after a unit's and a quarter's upload), the command line in
processes of its own (``--help``; 10,000 units ingested and ranked, ``bench/cli_e2e.py``), with
``--sessions N`` N concurrent sessions on 排名 (``bench/load.py``), and the peak resident memory.
Prints a table of figures against their targets; ``--json`` prints one flat JSON object instead
(one key per figure, plus the machine, with its 1-minute load).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import hashlib
import json
import logging
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # AppTest outside a server warns on every run
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

from bench import cli_e2e, load  # noqa: E402
from bench import generate as G  # noqa: E402
from bench.naive import naive_totals  # noqa: E402
from scoring import analytics, engine, memo  # noqa: E402
from scoring.permissions import SYSTEM as CLI_OFFICE  # noqa: E402
from scoring.accounts import add_user, get_user  # noqa: E402
from scoring.ingest import ingest  # noqa: E402
from scoring.schemes import save_scheme  # noqa: E402
from scoring.sessions import create as create_session  # noqa: E402
from scoring.store import Store  # noqa: E402
from scoring.units import save_units  # noqa: E402

# how many of the latest quarters go through the real upload path (the rest are bulk-loaded)
REAL_QUARTERS = {"C": 8, "P": 2, "N": 1}
REPEAT = 3  # timings are the best of REPEAT runs (the machine is shared)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- memory -----------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class Memory:
    """Peak RSS of the whole run, and of a phase (Linux: VmHWM, reset through clear_refs)."""

    def __init__(self):
        self.peak_kb = 0

    def mark(self) -> int:
        hwm = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak_kb = max(self.peak_kb, hwm)
        return hwm

    def reset(self) -> bool:
        self.mark()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False


def best_of(fn, n: int = REPEAT) -> tuple[float, object]:
    times, out = [], None
    for _ in range(n):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


# -- loading ----------------------------------------------------------------------------------
def bulk_load(store: Store, q: G.Quarter, scale: G.Scale) -> None:
    """One quarter written directly as one batch (the rows the upload path would write)."""
    subs, vals = G.quarter_long(q)
    sha = hashlib.sha256(f"bench-bulk:{scale.name}:{q.period}".encode()).hexdigest()

    def write(cur):
        bid = cur.execute("SELECT nextval('seq_batch')").fetchone()[0]
        cur.execute("INSERT INTO batches VALUES (?, 'bench', now(), ?, ?, ?, ?, ?, NULL, NULL)",
                    [bid, f"{q.period}.csv", sha, len(subs), [q.period], list(q.units)])
        cur.register("bench_subs", subs)
        cur.register("bench_vals", vals)
        try:
            cur.execute(f"INSERT INTO submissions SELECT {bid}, unit_code, period, self_score, row_no FROM bench_subs")
            cur.execute(f"INSERT INTO indicator_values SELECT {bid}, unit_code, period, indicator, value, is_na "
                        "FROM bench_vals")
        finally:
            cur.unregister("bench_subs")
            cur.unregister("bench_vals")

    store.write(write)


def load_adjustments(store: Store, scale: G.Scale, periods: list[str], units: np.ndarray) -> int:
    frames = [G.adjustments(scale, p, units) for p in periods]
    adj = pd.concat(frames, ignore_index=True)

    def write(cur):
        for rev in (0, 1):  # revisions get the later ids, so they supersede
            cur.register("bench_adj", adj[adj["rev"] == rev])
            cur.execute("""INSERT INTO adjustments SELECT nextval('seq_adjustment'), unit_code, period, item_id,
                           points, '考评组评定', 'bench', now() FROM bench_adj""")
            cur.unregister("bench_adj")

    store.write(write)
    return len(adj)


# -- the dashboard pages ----------------------------------------------------------------------------
def time_pages(db: str, store: Store, results: dict, uploads: dict) -> None:
    """排名 and 单位详情 server time through AppTest: cold (empty caches), warm, and right after an
    upload (``uploads``: scenario -> a function that makes a new upload, run before the timed run)."""
    import streamlit as st
    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    streamlit.logger.set_log_level("error")  # "missing ScriptRunContext" noise outside a runtime
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)

    app = ROOT / "dashboard" / "app.py"
    pages = {"ranking": None, "unit_detail": "app_pages/unit_detail.py"}
    if not app.exists() or not all((ROOT / "dashboard" / "app_pages" / f"{p}.py").exists() for p in pages):
        results["pages_error"] = "dashboard pages not found"
        return
    os.environ["KAOPING_DB"] = db
    user = get_user(store, "bench-office") or add_user(store, CLI_OFFICE, "bench-office",
                                                         "Kp-bench-pass-2025", "office")
    errors = []

    def run_page(switch_to, cold=False, before=None):
        at = AppTest.from_file(str(app), default_timeout=600)
        at.session_state["user"] = user
        # A first run logs the session in and pays AppTest's own start-up (it scans every installed
        # package for components, ~0.15 s); the page's own run after it is what is timed.
        at.run()
        if switch_to:  # the page is routed by st.navigation
            at.switch_page(switch_to)
        if cold:  # the page then starts with nothing cached: the store is opened, all quarters scored
            st.cache_resource.clear()
            st.cache_data.clear()
            memo.forget()
            gc.collect()
        written = None
        if before:  # e.g. an upload by someone else, which the page shows at its next run
            t0 = time.perf_counter()
            before()        # with the app's results in this process, the upload brings them up to date
            written = time.perf_counter() - t0
            gc.collect()
        t0 = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - t0
        if at.exception:
            errors.append(f"{switch_to or 'ranking'}: {at.exception[0].message}")
        titles = [t.value for t in at.title]
        return elapsed, titles, written

    for name, switch_to in pages.items():
        results[f"page_{name}_cold_s"], titles, _ = run_page(switch_to, cold=True)
        results[f"page_{name}_warm_s"] = min(run_page(switch_to)[0] for _ in range(REPEAT))
        for scenario, upload in uploads.items():
            runs = [run_page(switch_to, before=upload) for _ in range(REPEAT)]
            results[f"page_{name}_after_{scenario}_s"] = min(r[0] for r in runs)
            results[f"{scenario}_with_app_s"] = min(r[2] for r in runs)   # the upload, its rescoring included
        results[f"page_{name}_title"] = titles[0] if titles else None
    if errors:
        results["pages_error"] = "; ".join(errors)


def upload_scenarios(store: Store, scale: G.Scale, period: str, units: np.ndarray) -> dict:
    """What the page timings do before a page's run "after an upload", each a new file each time:
    ``unit``: one unit's own row (the first unit of the first group, the one both pages show
    first): one (quarter, group) changes; ``quarter``: the office's file of every unit: every group
    of the quarter changes. The self scores move by 0.1 each time, so that no file repeats."""
    q = G.quarter(scale, period, units)
    first = dataclasses.replace(q, units=q.units[:1], value=q.value[:1], na=q.na[:1], blank=q.blank[:1],
                                self_score=q.self_score[:1])
    count = {"unit": 0, "quarter": 0}

    def upload(name, base):
        def run():
            count[name] += 1
            data = G.quarter_csv(dataclasses.replace(base, self_score=np.minimum(base.self_score + 0.1 * count[name], 100)))
            res = ingest(store, data, f"{period}-{name}-{count[name]}.csv", CLI_OFFICE)
            assert not res.noop, res.message
        return run

    return {"unit_upload": upload("unit", first), "quarter_upload": upload("quarter", q)}


# -- the run ----------------------------------------------------------------------------------
def run(scale_name: str, *, pages: bool = True, keep: str | None = None, cli: bool = True, sessions: int = 0) -> dict:
    scale = G.SCALES[scale_name]
    mem = Memory()
    tmp = Path(tempfile.mkdtemp(prefix=f"kaoping-bench-{scale_name}-"))
    db = str(Path(keep) if keep else tmp / "bench.duckdb")
    r: dict = {"scale": scale_name, "units": scale.units, "quarters": scale.quarters}
    try:
        store = Store(db)
        reg = G.registry(scale)
        save_units(store, reg, CLI_OFFICE)
        scheme, _ = save_scheme(store, G.scheme_yaml(scale), CLI_OFFICE)
        r["indicators"] = len(scheme.indicators)
        r["items"] = len(scheme.items)
        qs = G.quarters(scale)
        units = reg["unit_code"].to_numpy(dtype=object)
        n_real = REAL_QUARTERS[scale_name]

        # 1. data: bulk-load the earlier quarters, then upload the latest ones for real
        t0 = time.perf_counter()
        total_values = 0
        for p in qs[:-n_real]:
            q = G.quarter(scale, p, units)
            total_values += q.n_values
            bulk_load(store, q, scale)
        with store.cursor() as cur:     # the earlier quarters at rest, as a database is when a clerk uploads:
            cur.execute("CHECKPOINT")   # the first upload's COMMIT must not flush the bulk load
        os.sync()
        r["bulk_load_s"] = time.perf_counter() - t0
        log(f"{scale_name}: bulk-loaded {len(qs) - n_real} quarters in {r['bulk_load_s']:.1f} s")
        ingest_times, ingest_values, ingest_bytes = [], 0, 0
        for p in qs[-n_real:]:
            q = G.quarter(scale, p, units)
            data = G.quarter_csv(q)
            total_values += q.n_values
            del q
            gc.collect()
            t0 = time.perf_counter()
            res = ingest(store, data, f"{p}.csv", CLI_OFFICE)
            ingest_times.append(time.perf_counter() - t0)
            ingest_values += res.values
            ingest_bytes += len(data)
            assert not res.noop and res.rows == scale.units, res.message
        r["ingest_files"] = n_real
        r["ingest_rows_per_file"] = scale.units
        r["ingest_values"] = ingest_values
        r["ingest_mb"] = round(ingest_bytes / 2**20, 2)
        r["ingest_s"] = sum(ingest_times)
        r["ingest_quarter_s"] = sum(ingest_times) / n_real
        r["ingest_quarter_max_s"] = max(ingest_times)
        r["ingest_values_per_s"] = ingest_values / sum(ingest_times)
        r["values_total"] = total_values
        r["adjustments"] = load_adjustments(store, scale, qs, units)
        stored = store.one("SELECT count(*) FROM current_values")[0]
        assert stored == total_values, (stored, total_values)
        log(f"{scale_name}: ingest {r['ingest_values_per_s']:,.0f} values/s; {total_values:,} values stored")

        # 2. scoring against a plain scan of the same values
        mem.reset()
        last = qs[-1]
        scan_sql = ("SELECT unit_code, sum(value) FROM current_values WHERE period IN ({}) GROUP BY unit_code")
        one_sql = scan_sql.format("?")
        all_sql = scan_sql.format(", ".join("?" * len(qs)))
        r["scan_one_quarter_s"], _ = best_of(lambda: store.rows(one_sql, [last]))
        r[f"score_one_quarter_{scale_name}_s"], one = best_of(lambda: engine.score(store, [last]))
        r["score_one_quarter_vs_scan"] = r[f"score_one_quarter_{scale_name}_s"] / r["scan_one_quarter_s"]
        r["scan_all_quarters_s"], _ = best_of(lambda: store.rows(all_sql, qs))
        r[f"score_all_quarters_{scale_name}_s"], everything = best_of(lambda: engine.score(store))
        r["score_all_quarters_vs_scan"] = r[f"score_all_quarters_{scale_name}_s"] / r["scan_all_quarters_s"]
        assert len(everything.units) == scale.units * scale.quarters
        del everything
        r["peak_rss_scoring_mb"] = mem.mark() / 1024
        log(f"{scale_name}: scoring one quarter {r[f'score_one_quarter_{scale_name}_s']:.3f} s, "
            f"all {r[f'score_all_quarters_{scale_name}_s']:.3f} s")

        # 3. the naive baseline on the latest quarter, compared on the same quarter
        t0 = time.perf_counter()
        naive = naive_totals(store, scheme, last)
        r["naive_one_quarter_s"] = time.perf_counter() - t0
        eng = one.units.set_index("unit_code")["total"]
        both = pd.concat({"engine": eng, "naive": naive}, axis=1)
        diff = (both["engine"] - both["naive"]).abs()
        bad = both[~(diff <= 0.01 + 1e-9)]
        assert bad.empty, f"naive baseline disagrees with the engine on {len(bad)} units:\n{bad.head(10)}"
        r["naive_units_compared"] = len(both)
        r["naive_max_abs_diff"] = float(diff.max())
        r["naive_vs_engine"] = r["naive_one_quarter_s"] / r[f"score_one_quarter_{scale_name}_s"]
        log(f"{scale_name}: naive {r['naive_one_quarter_s']:.2f} s, totals equal on {len(both)} units")

        # 3b. rank robustness of the latest quarter (1,000 perturbations): every group as the CLI
        #     asks for it, and all the units taken as one group (the target: a 3,000-unit group)
        def fresh(fn):  # the analytics memoise on the blocks: time the computation, not the memo
            memo.forget()
            return fn()

        r["robustness_quarter_s"], rob = best_of(lambda: fresh(lambda: analytics.robustness(store, CLI_OFFICE, last,
                                                                                              scores=one)))
        assert len(rob) == scale.units and (rob["rank_low"] <= rob["rank"]).all()
        pooled = engine.Scores([dataclasses.replace(b, keys=b.keys.assign(group="全部")) for b in one.blocks],
                               one.units.assign(group="全部"))
        r["robustness_one_group_s"], _ = best_of(lambda: fresh(lambda: analytics.robustness_of(pooled, last, "全部")))
        log(f"{scale_name}: robustness, quarter {r['robustness_quarter_s']:.3f} s, "
            f"{scale.units} units as one group {r['robustness_one_group_s']:.3f} s")

        # 4. the pages (at P and C; at N the target is not defined and the run would be long)
        if pages and scale_name in ("C", "P"):
            time_pages(db, store, r, upload_scenarios(store, scale, last, units))
            log(f"{scale_name}: pages ranking {r.get('page_ranking_warm_s')}, detail {r.get('page_unit_detail_warm_s')}")
        mem.mark()
        r["peak_rss_mb"] = mem.peak_kb / 1024
        r["db_file_mb"] = round(Path(db).stat().st_size / 2**20, 1)

        # 5. the command line in processes of its own: start-up, and 10,000 units end to end
        if cli:
            r["cli_help_s"] = cli_e2e.time_help()
            r.update(cli_e2e.time_end_to_end())
            log(f"{scale_name}: --help {r['cli_help_s']:.3f} s; 10,000 units through the CLI {r['cli_e2e_s']:.2f} s, "
                f"with a server started beforehand {r['cli_e2e_served_s']:.2f} s")

        # 6. concurrent sessions on a server of its own (which needs the file: this process lets go)
        token = None
        if sessions:
            user = get_user(store, "bench-office") or add_user(store, CLI_OFFICE, "bench-office",
                                                                 "Kp-bench-pass-2025", "office")
            token = create_session(store, user)
            r.update(load.server_sessions(db, user, sessions))
            log(f"{scale_name}: {sessions} server sessions, median {r['server_sessions_median_s']:.2f} s, "
                f"p95 {r['server_sessions_p95_s']:.2f} s")
        store.close()
        if sessions:
            import streamlit as st

            st.cache_resource.clear()       # the pages' store (AppTest, this process) lets go too
            gc.collect()
            time.sleep(3)                   # a lingering store closes its file after 2 s idle
            r.update(load.load_test(db, token, sessions, tmp))
            log(f"{scale_name}: {sessions} sessions, median {r.get('sessions_median_s')}, p95 {r.get('sessions_p95_s')}")
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    r.update(machine())
    return r


def machine() -> dict:
    import duckdb

    vm = psutil.virtual_memory()
    try:
        commit = os.popen(f"git -C {ROOT} rev-parse --short HEAD 2>/dev/null").read().strip() or None
    except OSError:
        commit = None
    return {"machine_cores": os.cpu_count(), "machine_memory_gib": round(vm.total / 2**30, 1),
            "machine_load_1m": round(os.getloadavg()[0], 2), "machine_platform": platform.platform(),
            "python": platform.python_version(), "duckdb": duckdb.__version__, "git_commit": commit,
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds")}


# -- the report ----------------------------------------------------------------------------------
def targets(r: dict) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, met) rows; met is 'yes', 'no' or '—' (no target at this scale)."""
    s = r["scale"]
    rows = []

    def add(label, value, fmt, target, ok, applies=True):
        shown = "—" if value is None else fmt.format(value)
        met = "—" if not applies or value is None or ok is None else ("yes" if ok else "NO")
        rows.append((label, shown, target if applies else f"({target} at {target_scale.get(label, '?')})", met))

    target_scale = {"ingest throughput (values/s)": "P, N", "ingest, one quarter file": "P", "score one quarter": "N", "score every quarter": "P",
                    "排名 page, warm": "P", "单位详情 page, warm": "P", "peak RSS, whole run": "N",
                    **{f"{page} page, after {told}": "P" for page in ("排名", "单位详情")
                       for told in ("a unit's upload", "a quarter's upload")},
                    "rank robustness, all units as one group": "P"}
    v = r["ingest_values_per_s"]
    add("ingest throughput (values/s)", v, "{:,.0f}", "≥ 2,000,000", v >= 2e6, s in ("P", "N"))
    v = r["ingest_quarter_s"]
    add("ingest, one quarter file", v, "{:.2f} s", "< 1 s", v < 1, s == "P")
    v = r[f"score_one_quarter_{s}_s"]
    add("score one quarter", v, "{:.3f} s", "≤ 1 s", v <= 1, s == "N")
    v = r[f"score_all_quarters_{s}_s"]
    add("score every quarter", v, "{:.3f} s", "≤ 3 s", v <= 3, s == "P")
    v = r["score_one_quarter_vs_scan"]
    add("score one quarter ÷ plain scan", v, "{:.1f} ×", "≤ 5 ×", v <= 5)
    v = r["score_all_quarters_vs_scan"]
    add("score every quarter ÷ plain scan", v, "{:.1f} ×", "≤ 5 ×", v <= 5)
    v = r["naive_vs_engine"]
    add("naive baseline ÷ engine (one quarter)", v, "{:.0f} ×", "≥ 50 ×", v >= 50)
    for page, label in (("ranking", "排名 page"), ("unit_detail", "单位详情 page")):
        cold, warm = r.get(f"page_{page}_cold_s"), r.get(f"page_{page}_warm_s")
        add(f"{label}, cold", cold, "{:.3f} s", "(reported)", None)
        add(f"{label}, warm", warm, "{:.3f} s", "≤ 0.5 s", None if warm is None else warm <= 0.5, s == "P")
        for scenario, told in (("unit_upload", "a unit's upload"), ("quarter_upload", "a quarter's upload")):
            v = r.get(f"page_{page}_after_{scenario}_s")
            add(f"{label}, after {told}", v, "{:.3f} s", "≤ 0.3 s", None if v is None else v <= 0.3, s == "P")
    for scenario, told in (("unit_upload", "a unit's upload"), ("quarter_upload", "a quarter's upload")):
        add(f"{told}, the app's results brought up to date", r.get(f"{scenario}_with_app_s"), "{:.3f} s",
            "(reported)", None)
    add("rank robustness, every group", r.get("robustness_quarter_s"), "{:.3f} s", "(reported)", None)
    v = r.get("robustness_one_group_s")
    add("rank robustness, all units as one group", v, "{:.3f} s", "≤ 1 s", None if v is None else v <= 1, s == "P")
    v = r.get("cli_help_s")
    add("python -m scoring --help", v, "{:.3f} s", "≤ 0.15 s", None if v is None else v <= 0.15)
    add("10,000 units: CLI ingest + ranking", r.get("cli_e2e_s"), "{:.2f} s", "(reported)", None)
    v = r.get("cli_e2e_vs_spreadsheet")
    add("spreadsheet (19.4 s) ÷ CLI, 10,000 units", v, "{:.1f} ×", "≥ 20 ×", None if v is None else v >= 20)
    add("10,000 units: CLI ingest + ranking, server started", r.get("cli_e2e_served_s"), "{:.2f} s", "(reported)", None)
    v = r.get("cli_e2e_served_vs_spreadsheet")
    add("spreadsheet (19.4 s) ÷ CLI with server, 10,000 units", v, "{:.1f} ×", "≥ 20 ×", None if v is None else v >= 20)
    for key, label in (("server_sessions_median_s", "server run, median"), ("server_sessions_p95_s", "server run, p95"),
                       ("sessions_median_s", "rendered in chromium, median"), ("sessions_p95_s", "rendered in chromium, p95")):
        if r.get("sessions"):
            add(f"{r['sessions']} sessions: 排名 {label}", r.get(key), "{:.2f} s", "(reported)", None)
    v = r["peak_rss_mb"]
    add("peak RSS, whole run", v, "{:,.0f} MB", "≤ 2,048 MB", v <= 2048, s == "N")
    add("peak RSS, scoring phase", r["peak_rss_scoring_mb"], "{:,.0f} MB", "(reported)", None)
    return rows


def table(r: dict) -> str:
    s = r["scale"]
    head = (f"Scale {s}: {r['units']:,} units × {r['quarters']} quarters, {r['indicators']} indicators, "
            f"{r['items']} items, {r['values_total']:,} values, {r['adjustments']:,} adjustments\n"
            f"Machine: {r['machine_cores']} cores, {r['machine_memory_gib']} GiB, load {r['machine_load_1m']}, "
            f"{r['date']}; DuckDB {r['duckdb']}, Python {r['python']}, commit {r['git_commit']}\n"
            f"Ingest: {r['ingest_files']} file(s) of {r['ingest_rows_per_file']:,} rows through ingest() "
            f"({r['ingest_values']:,} values, {r['ingest_mb']} MB); other quarters bulk-loaded in "
            f"{r['bulk_load_s']:.1f} s. Timings are the best of {REPEAT} unless cold.\n"
            f"Naive baseline: {r['naive_units_compared']:,} units of one quarter, totals equal to the engine's "
            f"(max |diff| {r['naive_max_abs_diff']:.3g}), {r['naive_one_quarter_s']:.2f} s.\n")
    if r.get("pages_error"):
        head += f"Pages: {r['pages_error']}\n"
    if r.get("sessions"):
        head += (f"Sessions: {r['sessions_ok']} of {r['sessions']} rendered (first, cold: {r['sessions_first_s']:.1f} s; "
                 f"all {r['sessions']} together in {r['sessions_wall_s']:.1f} s)"
                 + (f"; failed: {r['sessions_errors']}" if r["sessions_failed"] else "") + "\n")
    elif r.get("sessions_error"):
        head += f"Sessions: {r['sessions_error']}\n"
    rows = [("figure", "value", "target", "met?")] + targets(r)
    widths = [max(_w(row[k]) for row in rows) for k in range(4)]
    lines = ["| " + " | ".join(_pad(c, widths[k]) for k, c in enumerate(row)) + " |" for row in rows]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return head + "\n" + "\n".join(lines)


def _w(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _w(text))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=sorted(G.SCALES), default="C")
    ap.add_argument("--json", action="store_true", help="print one flat JSON object")
    ap.add_argument("--no-pages", action="store_true", help="skip the AppTest page timings")
    ap.add_argument("--keep", metavar="DB", help="write the database here and keep it")
    ap.add_argument("--no-cli", action="store_true", help="skip the command-line timings (--help, 10,000 units)")
    ap.add_argument("--sessions", type=int, default=0, metavar="N",
                    help=f"also open 排名 in N concurrent browser sessions (at most {load.MAX_SESSIONS})")
    args = ap.parse_args(argv)
    r = run(args.scale, pages=not args.no_pages, keep=args.keep, cli=not args.no_cli, sessions=args.sessions)
    r["targets_met"] = sum(row[3] == "yes" for row in targets(r))
    r["targets_missed"] = sum(row[3] == "NO" for row in targets(r))
    if args.json:
        print(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()},
                         ensure_ascii=False))
        print(table(r), file=sys.stderr)
    else:
        print(table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
