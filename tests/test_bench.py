"""The benchmark's quick run: `python -m bench --scale C --json` prints one well-formed flat JSON object.

Only the shape of the report is checked here (timings on a shared machine are not assertions);
the run itself asserts that the naive baseline's totals equal the engine's.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FIGURES = [
    "ingest_values_per_s", "ingest_quarter_s", "score_one_quarter_C_s", "score_all_quarters_C_s",
    "scan_one_quarter_s", "scan_all_quarters_s", "score_one_quarter_vs_scan", "score_all_quarters_vs_scan",
    "naive_one_quarter_s", "naive_vs_engine", "page_ranking_cold_s", "page_ranking_warm_s",
    "page_unit_detail_cold_s", "page_unit_detail_warm_s", "peak_rss_mb", "peak_rss_scoring_mb",
    "page_ranking_after_unit_upload_s", "page_unit_detail_after_quarter_upload_s",
    "unit_upload_with_app_s", "quarter_upload_with_app_s",
]


@pytest.mark.timeout(180)
def test_bench_scale_c_json_report():
    proc = subprocess.run([sys.executable, "-m", "bench", "--scale", "C", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout[-2000:]
    report = json.loads(lines[0])
    assert isinstance(report, dict)
    assert all(not isinstance(v, (dict, list)) for v in report.values()), "the report is flat"
    assert report["scale"] == "C" and report["units"] == 150 and report["quarters"] == 8
    assert report["indicators"] == 60 and 35 <= report["items"] <= 45
    for key in FIGURES:
        value = report[key]
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (key, value)
    assert report["naive_units_compared"] == 150 and report["naive_max_abs_diff"] <= 0.01
    assert "pages_error" not in report, report.get("pages_error")
    assert report["values_total"] > 0 and report["ingest_values"] == report["values_total"]
    assert report["machine_cores"] >= 1 and report["machine_memory_gib"] > 0 and report["date"]
    assert report["targets_met"] + report["targets_missed"] > 0
