"""What the tests share: SPEC's example scheme, a small registry, a direct way to submit values,
two hand-checked units, and the store of the golden upload files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from scoring.cli import CLI_OFFICE
from scoring.schemes import save_scheme
from scoring.store import Store
from scoring.units import read_registry, save_units

ROOT = Path(__file__).resolve().parent.parent
UPLOADS = ROOT / "tests" / "uploads"

def run_cli(*args: str, db=None, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """``python -m scoring [--db DB] ARGS`` in a process of its own, as a person types it; ``env``
    adds environment variables (``KAOPING_TODAY=…``)."""
    where = ["--db", str(db)] if db is not None else []
    return subprocess.run([sys.executable, "-m", "scoring", *where, *args], capture_output=True, text=True,
                          input=stdin, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT, timeout=120)


# SPEC's example scheme, completed so that the sections add up to total_max (35).
SPEC_SCHEME = """
scheme: spec-example
title: 示例考评表
applies_to: {groups: [市直部门], from: 2025Q1, to: 2025Q4}
total_max: 35
indicators:
  - {code: has_leading_group, name: 成立政务公开领导小组, type: bool}
  - {code: proactive_items,  name: 主动公开信息条数, type: count}
  - {code: broken_links,     name: 网站错链数, type: count}
  - {code: reply_on_time_rate, name: 依申请按期答复率, type: rate}
  - {code: policy_docs,      name: 政策文件数, type: count}
  - {code: interpretations,  name: 政策解读数, type: count}
  - {code: commendations,    name: 获上级表彰次数, type: count}
  - {code: criticisms,       name: 上级通报批评次数, type: count}
  - {code: secret_leaks,     name: 泄密事件数, type: count}
  - {code: budget_on_time,   name: 预算按时公开, type: bool, na_allowed: true}
sections:
  - id: org
    name: 组织领导
    max: 10
    items:
      - {id: org.group, name: 成立领导小组, max: 2, rule: {type: boolean, indicator: has_leading_group}}
      - {id: org.budget, name: 预算公开, max: 8, rule: {type: boolean, indicator: budget_on_time}}
  - id: site
    name: 平台建设
    max: 25
    items:
      - {id: site.links, name: 错链, max: 4, rule: {type: deduct, indicator: broken_links, per: 0.5}}
      - {id: site.items, name: 信息发布量, max: 6,
         rule: {type: ladder, indicator: proactive_items, tiers: [[50, 6], [30, 4], [1, 2]]}}
      - {id: site.reply, name: 按期答复, max: 5,
         rule: {type: rate, indicator: reply_on_time_rate, full_at: 100, zero_at: 80}}
      - {id: site.interp, name: 政策解读率, max: 3,
         rule: {type: ratio, numerator: interpretations, denominator: policy_docs, full_at: 1.0}}
      - {id: site.rel, name: 发布量横向比较, max: 2, rule: {type: relative, indicator: proactive_items}}
      - {id: site.review, name: 考评组评定, max: 5, rule: {type: manual}}
bonus: {max: 5, items: [{id: bonus.commend, name: 获上级表彰, max: 3,
        rule: {type: per, indicator: commendations, per: 1}}]}
penalties: [{id: pen.criticism, name: 上级通报批评, rule: {type: per, indicator: criticisms, per: 3}}]
veto:  [{id: veto.leak, name: 发生泄密事件, indicator: secret_leaks, op: ">", value: 0}]
grades: [{name: 优秀, min: 90}, {name: 良好, min: 80}, {name: 合格, min: 60}, {name: 不合格, min: 0}]
missing: zero
"""

UNITS = pd.DataFrame(
    [("U1", "市教育局", "市直部门", None), ("U2", "市公安局", "市直部门", None),
     ("U3", "市民政局", "市直部门", None), ("U4", "市财政局", "市直部门", None),
     ("X1", "东湖区", "县区", None)],
    columns=["unit_code", "unit_name", "group", "parent_code"])


def submit(store, period: str, rows: dict[str, dict], self_scores: dict | None = None, by: str = "test") -> int:
    """Write one batch directly (bypassing upload parsing): {unit: {indicator: value | 'NA'}}."""
    def write(cur):
        batch = cur.execute("SELECT nextval('seq_batch')").fetchone()[0]
        cur.execute("INSERT INTO batches VALUES (?, ?, now(), 'direct', '', ?, [?], ?, NULL, NULL)",
                    [batch, by, len(rows), period, list(rows)])
        for unit, values in rows.items():
            cur.execute("INSERT INTO submissions VALUES (?, ?, ?, ?, 0)",
                        [batch, unit, period, (self_scores or {}).get(unit)])
            for code, value in values.items():
                if value is None:
                    continue
                na = value == "NA"
                cur.execute("INSERT INTO indicator_values VALUES (?, ?, ?, ?, ?, ?)",
                            [batch, unit, period, code, None if na else float(value), na])
        return batch
    return store.write(write)


# Two units of the example scheme, hand-checked in test_engine.py.
GOOD = dict(has_leading_group=1, budget_on_time=1, broken_links=3, proactive_items=45,
            reply_on_time_rate=95, policy_docs=4, interpretations=3, commendations=2,
            criticisms=0, secret_leaks=0)
WEAK = dict(has_leading_group=0, budget_on_time="NA", broken_links=10, proactive_items=60,
            reply_on_time_rate=70, policy_docs=0, interpretations=0, commendations=5,
            criticisms=1, secret_leaks=0)


def setup_store(store: Store) -> Store:
    """The registry of tests/uploads/units.csv and the two test schemes of the golden uploads."""
    save_units(store, read_registry(UPLOADS / "units.csv"), CLI_OFFICE)
    save_scheme(store, (UPLOADS / "scheme.yaml").read_text("utf-8"), CLI_OFFICE)
    save_scheme(store, (UPLOADS / "scheme_xz.yaml").read_text("utf-8"), CLI_OFFICE)
    return store


def office_ranking(store, period: str, group: str | None = None):
    """The ranking as the office sees it (through the read layer, as every front end)."""
    from scoring import views

    return views.ranking(store, CLI_OFFICE, period, group)
