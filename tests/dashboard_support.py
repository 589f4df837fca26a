"""Shared by the dashboard tests: a demo database built once per session, copied per test."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 60


def app(user, page: str | None = None, **state):
    """An AppTest of the app logged in as ``user`` (None: nobody) with ``state`` in the session,
    run, then switched to ``page`` unless that is where the user lands."""
    from streamlit.testing.v1 import AppTest

    from dashboard import nav

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


def unescape(text) -> str:
    """What a person reads of Markdown source in which user text was escaped (ui.plain)."""
    return re.sub(r"\\(.)", r"\1", str(text))


def build_demo_db(path: Path) -> Path:
    from scoring.demo import seed_demo
    from scoring.store import Store

    with Store(path) as store:
        seed_demo(store, ROOT / "data")
    return path


def copy_db(template: Path, target: Path) -> Path:
    shutil.copyfile(template, target)
    wal = Path(str(template) + ".wal")
    if wal.exists():
        shutil.copyfile(wal, Path(str(target) + ".wal"))
    return target


def demo_frame(period: str, scheme_id: str) -> pd.DataFrame:
    """The demo upload of one period and scheme (the same generator the demo database used)."""
    import yaml

    from scoring.demo import demo_uploads
    from scoring.units import read_registry

    units = read_registry(ROOT / "data" / "units.csv")
    schemes = {}
    for p in sorted((ROOT / "data" / "tables").glob("*.yaml")):
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
        schemes[d["scheme"]] = d
    return demo_uploads(units, schemes)[(period, scheme_id)]


def top_unit_upload(db_path, period: str = "2025Q4", group: str = "市直部门",
                    scheme_id: str = "2025-shizhi") -> tuple[str, bytes]:
    """A valid one-row upload that zeroes every figure of the group's first-ranked unit."""
    from scoring.store import Store
    from tests.support import office_ranking

    with Store(db_path) as s:
        top = office_ranking(s, period, group)["unit_code"].iloc[0]
    df = demo_frame(period, scheme_id)
    row = df[df["unit_code"] == top].copy()
    for col in row.columns[3:]:
        if pd.api.types.is_numeric_dtype(row[col]):
            row[col] = 0
    return top, row.to_csv(index=False).encode("utf-8")
