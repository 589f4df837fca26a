"""Shared by the dashboard tests: a demo database built once per session, copied per test."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")


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
