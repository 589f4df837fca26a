"""Shared fixtures (the data they use lives in tests/support.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scoring.cli import CLI_OFFICE  # noqa: E402
from scoring.schemes import save_scheme  # noqa: E402
from scoring.store import Store  # noqa: E402
from scoring.units import save_units  # noqa: E402
from tests.support import SPEC_SCHEME, UNITS  # noqa: E402


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "test.duckdb")
    save_units(s, UNITS, CLI_OFFICE)
    save_scheme(s, SPEC_SCHEME, CLI_OFFICE)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _today_is_restored():
    """Opening a demo database makes its day the process's today (KAOPING_TODAY); no test leaks it."""
    import os

    before = os.environ.get("KAOPING_TODAY")
    yield
    if before is None:
        os.environ.pop("KAOPING_TODAY", None)
    else:
        os.environ["KAOPING_TODAY"] = before
