"""Batches: history, supersede, rollback; concurrent ingests; a writer killed mid-transaction."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from scoring.cli import CLI_OFFICE
from scoring.accounts import User
from scoring.batches import list_batches, rollback
from scoring.errors import InputError, NotFound, PermissionDenied
from scoring.ingest import ingest
from scoring.store import Store
from tests.support import setup_store

ROOT = Path(__file__).resolve().parent.parent
CLERK = User("sz1", "unit", "SZ001")
CLERK2 = User("sz2", "unit", "SZ002")


def wide(rows: dict[str, int], period: str = "2025Q3", items_col: str = "items") -> bytes:
    """A small wide upload: {unit: items}, with has_group = 是."""
    lines = [f"unit_code,period,has_group,{items_col}"] + [f"{u},{period},是,{v}" for u, v in rows.items()]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def current(store, unit="SZ001", period="2025Q3", indicator="items"):
    row = store.one("SELECT value FROM current_values WHERE unit_code = ? AND period = ? AND indicator = ?",
                    [unit, period, indicator])
    return None if row is None else row[0]


@pytest.fixture
def bstore():
    s = setup_store(Store(":memory:"))
    yield s
    s.close()


def test_supersede_and_rollback_restore_previous_values(bstore):
    b1 = ingest(bstore, wide({"SZ001": 10, "SZ002": 20}), "q3-v1.csv", CLI_OFFICE).batch_id
    b2 = ingest(bstore, wide({"SZ001": 11}), "q3-v2.csv", CLI_OFFICE).batch_id
    b3 = ingest(bstore, wide({"SZ001": 12}, period="2025Q2"), "q2.csv", CLI_OFFICE).batch_id
    assert current(bstore) == 11 and current(bstore, "SZ002") == 20
    df = list_batches(bstore, CLI_OFFICE)
    assert list(df.batch_id) == [b3, b2, b1]
    assert list(df.status) == ["当前", "当前", "当前"]  # b1 still current for SZ002
    assert list(df.current_rows) == [1, 1, 1]

    b4 = ingest(bstore, wide({"SZ002": 21}), "q3-v3.csv", CLI_OFFICE).batch_id
    df = list_batches(bstore, CLI_OFFICE).set_index("batch_id")
    assert df.loc[b1, "status"] == "已被替代" and df.loc[b4, "status"] == "当前"

    message = rollback(bstore, b2, CLI_OFFICE)
    assert message == f"已回滚批次 #{b2}「q3-v2.csv」:2个数值恢复为此前批次的数据"
    assert current(bstore) == 10  # b1's value is current again
    df = list_batches(bstore, CLI_OFFICE).set_index("batch_id")
    assert df.loc[b2, "status"] == "已回滚" and df.loc[b2, "rolled_back_by"] == "命令行"
    assert df.loc[b1, "status"] == "当前"

    # rolling back a unit-period's only batch leaves it without data
    assert rollback(bstore, b3, CLI_OFFICE).endswith("2个数值不再有上报数据")
    assert current(bstore, period="2025Q2") is None
    # rolling back b4 brings back b1's figure for SZ002
    rollback(bstore, b4, CLI_OFFICE)
    assert current(bstore, "SZ002") == 20

    # nothing was deleted, every rollback is audited
    assert bstore.one("SELECT count(*) FROM submissions")[0] == 5
    audit = bstore.df("SELECT target, detail FROM audit_log WHERE action = 'rollback' ORDER BY id")
    assert list(audit.target) == [f"批次 #{b2}", f"批次 #{b3}", f"批次 #{b4}"]


def test_rollback_of_superseded_batch_says_nothing_changed(bstore):
    b1 = ingest(bstore, wide({"SZ001": 10}), "a.csv", CLI_OFFICE).batch_id
    ingest(bstore, wide({"SZ001": 11}), "b.csv", CLI_OFFICE)
    assert "当前数据不变" in rollback(bstore, b1, CLI_OFFICE)
    assert current(bstore) == 11


def test_rollback_errors(bstore):
    b1 = ingest(bstore, wide({"SZ001": 10}), "a.csv", CLI_OFFICE).batch_id
    with pytest.raises(NotFound, match="批次 #99 不存在"):
        rollback(bstore, 99, CLI_OFFICE)
    with pytest.raises(InputError, match="批次号「abc」无效"):
        rollback(bstore, "abc", CLI_OFFICE)
    with pytest.raises(PermissionDenied, match="仅政务公开办"):
        rollback(bstore, b1, CLERK)
    rollback(bstore, f"#{b1}", CLI_OFFICE)
    with pytest.raises(InputError, match="已于 .* 由 命令行 回滚,不能重复回滚"):
        rollback(bstore, b1, CLI_OFFICE)
    assert bstore.one("SELECT count(*) FROM audit_log WHERE action = 'rollback'")[0] == 1


def test_unit_account_sees_only_batches_touching_own_unit(bstore):
    ingest(bstore, wide({"SZ001": 10, "SZ002": 20}), "all.csv", CLI_OFFICE)
    ingest(bstore, wide({"SZ002": 21}), "sz2.csv", CLERK2)
    ingest(bstore, wide({"SZ001": 11}), "sz1.csv", CLERK)
    mine = list_batches(bstore, CLERK)
    assert list(mine.file_name) == ["sz1.csv", "all.csv"]
    assert all(u == ["SZ001"] for u in mine.units)  # other units of a shared batch are not shown
    assert list(list_batches(bstore, CLERK2).file_name) == ["sz2.csv", "all.csv"]
    assert len(list_batches(bstore, CLI_OFFICE)) == 3


def test_empty_history(bstore):
    df = list_batches(bstore, CLI_OFFICE)
    assert df.empty and "status" in df.columns


# -- concurrency -------------------------------------------------------------------------------------
def _file_store(tmp_path) -> Path:
    path = tmp_path / "k.duckdb"
    with Store(path) as s:
        setup_store(s)
    return path


def _uploads(k: int) -> list[bytes]:
    """k different valid uploads, each for the three 市直部门 units and its own period value."""
    return [wide({"SZ001": 100 + i, "SZ002": 200 + i, "SZ003": 300 + i}) for i in range(k)]


def _assert_consistent(store, n_batches: int):
    batches = store.df("SELECT batch_id, n_rows, sha256 FROM batches ORDER BY batch_id")
    assert len(batches) == n_batches
    per = store.df("""SELECT b.batch_id, b.n_rows,
                        (SELECT count(*) FROM submissions s WHERE s.batch_id = b.batch_id) AS subs,
                        (SELECT count(*) FROM indicator_values v WHERE v.batch_id = b.batch_id) AS vals
                      FROM batches b""")
    assert (per.subs == per.n_rows).all() and (per.vals == 2 * per.n_rows).all()
    orphans = store.one("""SELECT (SELECT count(*) FROM submissions WHERE batch_id NOT IN (SELECT batch_id FROM batches))
                              + (SELECT count(*) FROM indicator_values WHERE batch_id NOT IN (SELECT batch_id FROM batches))""")
    assert orphans[0] == 0
    # the current values all come from the newest batch, for every unit
    newest = store.one("SELECT max(batch_id) FROM batches")[0]
    cur = store.df("SELECT DISTINCT batch_id FROM current_submissions WHERE period = '2025Q3'")
    assert list(cur.batch_id) == [newest]
    return batches


def test_eight_ingests_from_threads(tmp_path):
    path = _file_store(tmp_path)
    datas = _uploads(8)
    results, errors = [None] * 8, []
    store = Store(path)
    barrier = threading.Barrier(8)

    def run(i):
        try:
            barrier.wait()
            results[i] = ingest(store, datas[i], f"t{i}.csv", CLI_OFFICE)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    # ids are unique; a transaction retried after a write conflict draws a new one (gaps are fine)
    assert len({r.batch_id for r in results}) == 8 and not any(r.noop for r in results)
    batches = _assert_consistent(store, 8)
    # each batch holds exactly its own file's values
    for r, i in zip(results, range(8)):
        v = store.one("SELECT value FROM indicator_values WHERE batch_id = ? AND unit_code = 'SZ002' "
                      "AND indicator = 'items'", [r.batch_id])[0]
        assert v == 200 + i
    assert store.one("SELECT count(*) FROM audit_log WHERE action = 'upload'")[0] == 8
    assert len(set(batches.sha256)) == 8
    store.close()


CHILD_INGEST = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from scoring.cli import CLI_OFFICE
    from scoring.ingest import ingest
    from scoring.store import Store
    data = open(sys.argv[2], "rb").read()
    with Store(sys.argv[1]) as store:
        print(ingest(store, data, sys.argv[2].rsplit("/", 1)[-1], CLI_OFFICE).batch_id)
""")


def test_eight_ingests_from_processes(tmp_path):
    path = _file_store(tmp_path)
    files = []
    for i, data in enumerate(_uploads(8)):
        f = tmp_path / f"p{i}.csv"
        f.write_bytes(data)
        files.append(f)
    code = CHILD_INGEST.format(root=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(f)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for f in files]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    ids = {int(o[0].strip()) for o in outs}
    assert len(ids) == 8
    with Store(path) as store:
        _assert_consistent(store, 8)
        names = store.df("SELECT file_name FROM batches")
        assert sorted(names.file_name) == sorted(f.name for f in files)


CHILD_WRITER = textwrap.dedent("""
    import sys, uuid
    sys.path.insert(0, {root!r})
    import pandas as pd
    from scoring.cli import CLI_OFFICE
    from scoring.ingest import check_upload, write_batch
    from scoring.store import Store
    with Store(sys.argv[1]) as store:
        checked = check_upload(store, open(sys.argv[2], "rb").read(), "big.csv", CLI_OFFICE)
        assert checked.ok, checked.problems
        print("ready", flush=True)
        while True:  # write batch after batch: a kill lands inside a transaction most of the time
            checked.sha256 = uuid.uuid4().hex
            print("begin", flush=True)
            write_batch(store, checked, CLI_OFFICE)
            print("done", flush=True)
""")


def test_sigkill_mid_write_leaves_no_partial_batch(tmp_path):
    path = _file_store(tmp_path)
    n = 3000
    codes = [f"K{i:05d}" for i in range(n)]
    import pandas as pd

    from scoring.units import save_units
    with Store(path) as s:
        save_units(s, pd.DataFrame({"unit_code": codes, "unit_name": codes, "group": "市直部门",
                                    "parent_code": None}), CLI_OFFICE)
    big = tmp_path / "big.csv"
    lines = ["unit_code,period,has_group,items,links,reply_rate,apps_new,apps_closed,apps_ontime"]
    lines += [f"{c},2025Q3,是,{i % 97},{i % 7},{i % 100},{i % 5},{i % 5},{i % 3 if i % 5 >= 3 else 0}"
              for i, c in enumerate(codes)]
    big.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = CHILD_WRITER.format(root=str(ROOT))
    committed = 0
    for attempt, delay in enumerate((0.35, 0.8, 1.3)):
        proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(big)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            out = proc.stdout.read()
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        with Store(path) as store:  # opens cleanly (WAL replayed or discarded)
            per = store.df("""SELECT b.batch_id, b.n_rows,
                                (SELECT count(*) FROM submissions s WHERE s.batch_id = b.batch_id) AS subs,
                                (SELECT count(*) FROM indicator_values v WHERE v.batch_id = b.batch_id) AS vals
                              FROM batches b""")
            assert (per.subs == per.n_rows).all() and (per.subs == n).all()
            assert (per.vals == 7 * n).all()
            orphans = store.one("""SELECT count(*) FROM indicator_values
                                   WHERE batch_id NOT IN (SELECT batch_id FROM batches)""")[0]
            orphans += store.one("""SELECT count(*) FROM submissions
                                    WHERE batch_id NOT IN (SELECT batch_id FROM batches)""")[0]
            assert orphans == 0
            uploads = store.one("SELECT count(*) FROM audit_log WHERE action = 'upload'")[0]
            assert uploads == len(per)  # the audit row is part of the same transaction
            # every batch the child saw committed is there; one more only if the kill came after
            # COMMIT but before the child printed "done"
            committed += out.count("done")
            assert committed <= len(per) <= committed + (out.count("begin") - out.count("done"))
            committed = len(per)
    # and the database still takes writes
    with Store(path) as store:
        assert not ingest(store, wide({"SZ001": 1}), "after.csv", CLI_OFFICE).noop


def test_a_rejected_check_cannot_be_written(bstore):
    from scoring.ingest import UploadRejected, check_upload, write_batch
    checked = check_upload(bstore, wide({"SZ001": 10}, period="2025Q9"), "bad.csv", CLI_OFFICE)
    assert not checked.ok
    with pytest.raises(UploadRejected):
        write_batch(bstore, checked, CLI_OFFICE)
    assert bstore.one("SELECT count(*) FROM batches")[0] == 0


def test_a_one_column_upload_changes_that_figure_only_and_rollback_restores_it(bstore):
    """SPEC round 2: batches supersede per cell; a blank cell never erases an earlier value."""
    ingest(bstore, wide({"SZ001": 10, "SZ002": 20}), "q3.csv", CLI_OFFICE)
    before = bstore.df("SELECT * FROM current_values ORDER BY ALL")
    one = "unit_code,period,has_group,items\r\nSZ001,2025Q3,,33\r\n".encode("utf-8")   # has_group blank
    b = ingest(bstore, one, "one.csv", CLI_OFFICE).batch_id
    after = bstore.df("SELECT * FROM current_values ORDER BY ALL")
    changed = after.merge(before, on=["unit_code", "period", "indicator"], suffixes=("", "_was"))
    changed = changed[changed["value"] != changed["value_was"]]
    assert changed[["unit_code", "indicator", "value", "value_was"]].values.tolist() == [["SZ001", "items", 33.0, 10.0]]
    assert current(bstore, indicator="has_group") == 1.0                        # the blank erased nothing
    assert rollback(bstore, b, CLI_OFFICE).endswith("1个数值恢复为此前批次的数据")
    restored = bstore.df("SELECT * FROM current_values ORDER BY ALL")
    assert restored.drop(columns="batch_id").equals(before.drop(columns="batch_id"))
