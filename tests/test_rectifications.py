"""问题整改: who may do what, the status flow, the audit trail and the demo seed."""
from __future__ import annotations

from datetime import date

import pytest

from scoring import audit
from scoring import rectifications as rect
from scoring.cli import CLI_OFFICE
from scoring.accounts import User
from scoring.errors import InputError, NotFound, PermissionDenied

U1 = User("u1", "unit", "U1")
U2 = User("u2", "unit", "U2")


def test_office_adds_unit_sees_only_its_own(store):
    a = rect.add_rectification(store, CLI_OFFICE, "U1", "2025Q1", "第三方检测", "网站错链3处",
                               found_at="2025-03-01", deadline="2025-03-31")
    rect.add_rectification(store, CLI_OFFICE, "U2", "2025 Q1", "网站普查", "指南未更新")
    assert len(rect.list_rectifications(store, CLI_OFFICE)) == 2
    mine = rect.list_rectifications(store, U1)
    assert mine["rect_id"].tolist() == [a] and mine["status_label"].iloc[0] == "待整改"
    with pytest.raises(PermissionDenied):
        rect.list_rectifications(store, U1, unit_code="U2")
    with pytest.raises(PermissionDenied):
        rect.add_rectification(store, U1, "U1", "2025Q1", "自查", "x")


def test_status_flow_and_audit(store):
    rid = rect.add_rectification(store, CLI_OFFICE, "U1", "2025Q1", "第三方检测", "解读未关联")
    with pytest.raises(PermissionDenied):
        rect.mark_rectified(store, U2, rid, "不是我的")
    with pytest.raises(InputError):
        rect.mark_rectified(store, U1, rid, "  ")
    with pytest.raises(InputError):  # only rectified problems can be reviewed
        rect.review(store, CLI_OFFICE, rid, True)
    rect.mark_rectified(store, U1, rid, "已关联发布")
    row = rect.list_rectifications(store, U1).iloc[0]
    assert row["status"] == rect.RECTIFIED and row["note"] == "已关联发布"
    with pytest.raises(PermissionDenied):
        rect.review(store, U1, rid, True)
    with pytest.raises(InputError):  # sending back needs a reason
        rect.review(store, CLI_OFFICE, rid, False, "")
    rect.review(store, CLI_OFFICE, rid, False, "未见整改材料")
    assert rect.list_rectifications(store, U1).iloc[0]["status"] == rect.OPEN
    rect.mark_rectified(store, U1, rid, "补充材料")
    rect.review(store, CLI_OFFICE, rid, True)
    assert rect.list_rectifications(store, U1).iloc[0]["status_label"] == "已复核"
    with pytest.raises(InputError):
        rect.mark_rectified(store, U1, rid, "再次")
    log = audit.read(store, CLI_OFFICE)
    assert (log["action"] == "rectification").sum() == 5  # add, done, back, done, accepted
    assert log["action_label"].iloc[0] == "问题整改"


def test_overdue_summary_and_bad_input(store):
    rect.add_rectification(store, CLI_OFFICE, "U1", "2025Q1", "第三方检测", "a", found_at="2025-01-01",
                           deadline="2025-02-01")
    df = rect.list_rectifications(store, CLI_OFFICE, today=date(2025, 3, 1))
    assert df["overdue"].tolist() == [True]
    assert rect.summary(df) == {"total": 1, "open": 1, "rectified": 0, "verified": 0, "overdue": 1}
    with pytest.raises(NotFound):
        rect.add_rectification(store, CLI_OFFICE, "NOPE", "2025Q1", "x", "y")
    with pytest.raises(InputError):
        rect.add_rectification(store, CLI_OFFICE, "U1", "2025Q1", "x", "y", found_at="2025-05-01",
                               deadline="2025-04-01")
    with pytest.raises(InputError):
        rect.add_rectification(store, CLI_OFFICE, "U1", "2025Q1", "x", "y", deadline="明天")
    with pytest.raises(NotFound):
        rect.mark_rectified(store, U1, 999, "x")


def test_text_is_kept_as_typed(store):
    text = "<script>alert(1)</script> =1+1"
    rid = rect.add_rectification(store, CLI_OFFICE, "U1", "2025Q1", "群众反映", text)
    assert rect.list_rectifications(store, U1).set_index("rect_id").loc[rid, "description"] == text


def test_seed_demo_rectifications_in_a_transaction(store):
    n = store.write(lambda cur: rect.seed_demo_rectifications(store, cur, today=date(2025, 12, 1)))
    df = rect.list_rectifications(store, CLI_OFFICE, today=date(2025, 12, 1))
    assert n == len(df) == 5  # the five units of the fixture registry (up to six per group)
    assert set(df["status"]) == {rect.OPEN, rect.RECTIFIED, rect.VERIFIED}
    # also callable as store.write's function, as the demo seeding does
    store.write(rect.seed_demo_rectifications)
    assert len(rect.list_rectifications(store, CLI_OFFICE)) == 10
