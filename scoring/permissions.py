"""Who may do what: the roles, the acting user, and one question, :func:`can`.

Every entry point of the library asks :func:`require` before it reads or writes; there is no
default actor anywhere (a forgotten actor is an error, not office rights). The table
:data:`ACTIONS` is the whole policy; README's "who may do what" is checked against it by a test.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import PermissionDenied
from .labels import ROLE_LABELS

OFFICE, CHECKER, UNIT = "office", "checker", "unit"
ROLES = (OFFICE, CHECKER, UNIT)

# how far a unit account's right reaches
OWN, GROUP, ANY = "own", "group", "any"


@dataclass(frozen=True)
class User:
    """The acting user. ``group`` (the unit's group) is filled in when the account is read from
    the database; ``system`` marks the command line's and the system's own identity, which are
    not stored accounts."""

    username: str
    role: str
    unit_code: str | None = None
    group: str | None = field(default=None, compare=False)
    system: bool = field(default=False, compare=False)

    @property
    def is_office(self) -> bool:
        return self.role == OFFICE

    @property
    def is_checker(self) -> bool:
        return self.role == CHECKER

    @property
    def is_unit(self) -> bool:
        return self.role == UNIT

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


SYSTEM = User("系统", OFFICE, system=True)   # the system's own writes (demo seeding, benchmark)


@dataclass(frozen=True)
class Action:
    """One thing a user may do: who may, and for a unit account how far (own unit, own group)."""

    label: str
    office: bool = True
    checker: bool = False
    unit: str | None = None        # None: never; OWN: its own unit; GROUP: its own group; ANY


ACTIONS: dict[str, Action] = {
    "ranking.view": Action("查看排名", unit=GROUP),
    "ranking.private": Action("查看自评分、自评差和否决项", unit=OWN),
    "unit.view": Action("查看单位详情", unit=OWN),
    "trends.view": Action("查看趋势", unit=GROUP),
    "trends.units": Action("查看各单位分项得分和指标数值"),
    "scheme.view": Action("查看考评表", checker=True, unit=ANY),
    "scheme.load": Action("加载考评表"),
    "upload.unit": Action("上传单位填报数据", unit=OWN),
    "upload.office": Action("上传政务公开办/第三方数据", checker=True),
    "batches.view": Action("查看上传批次", checker=True, unit=OWN),
    "batches.rollback": Action("回滚批次"),
    "adjust": Action("核定得分"),
    "adjustments.view": Action("查看核定记录", unit=OWN),
    "problems.view": Action("查看问题清单", checker=True, unit=OWN),
    "problems.add": Action("登记或导入问题清单", checker=True),
    "problems.respond": Action("反馈整改情况", unit=OWN),
    "problems.review": Action("复核整改(销号或退回)", checker=True),
    "bulletin": Action("生成通报和得分表"),
    "units.manage": Action("更新单位名录"),
    "users.manage": Action("管理账号"),
    "audit.view": Action("查看审计日志"),
    "anomalies.view": Action("查看核查清单(异常数据提示)"),
    "period.manage": Action("管理考评周期(开放报送、截止、公示、定稿、重新开放)"),
    "period.view": Action("查看考评周期和报送截止日期", checker=True, unit=ANY),
    "objection.file": Action("对公示结果提出异议", office=False, unit=OWN),
    "objection.view": Action("查看异议及答复", unit=OWN),
    "objection.answer": Action("答复异议(采纳并核定或不予采纳)"),
    "annual.view": Action("查看年度排名(四个季度并列)和年度通报"),
    "yearbook.view": Action("查看年报统计表", checker=True, unit=OWN),
    "yearbook.upload": Action("上传年报统计表", unit=OWN),
    "yearbook.record": Action("按已发布原样登记有勾稽错误的年报"),
}


def can(actor: User, action: str, unit: str | None = None, group: str | None = None) -> bool:
    """May ``actor`` do ``action`` (for ``unit`` / in ``group`` when given)?

    For a unit account, an action of reach OWN with no ``unit`` means "for its own unit" and the
    caller restricts what it returns to that unit; likewise GROUP with no ``group``.
    """
    rule = ACTIONS[action]                      # an unknown action is a programming error
    if not isinstance(actor, User):
        return False
    if actor.role == OFFICE:
        return rule.office
    if actor.role == CHECKER:
        return rule.checker
    if actor.role != UNIT or rule.unit is None or not actor.unit_code:
        return False
    if rule.unit == ANY:
        return True
    if unit is not None and unit != actor.unit_code and rule.unit == OWN:
        return False
    if rule.unit == GROUP:
        if group is not None and group != actor.group:
            return False
        if unit is not None and unit != actor.unit_code:
            return False                        # a peer's details are never the group's business
    return True


def require(actor: User, action: str, unit: str | None = None, group: str | None = None) -> User:
    """:func:`can`, or PermissionDenied with a Chinese sentence saying what and why."""
    if not isinstance(actor, User):
        raise PermissionDenied(f"无权{ACTIONS[action].label}:未指定操作人(请先登录)")
    if can(actor, action, unit, group):
        return actor
    rule = ACTIONS[action]
    who = f"账号 {actor.username}({actor.role_label})"
    if actor.role == UNIT and rule.unit is not None:
        if rule.unit == GROUP and group is not None and unit is None:
            why = f"只能查看本单位所在分组({actor.group or '未知'}),不能查看「{group}」"
        else:
            why = f"只能访问本单位({actor.unit_code})的数据,不能访问 {unit}"
    else:
        allowed = "、".join(ROLE_LABELS[r] for r, ok in
                           ((OFFICE, rule.office), (CHECKER, rule.checker), (UNIT, rule.unit is not None)) if ok)
        why = f"仅{allowed}可以操作"
    raise PermissionDenied(f"无权{rule.label}:{who}{why}")


def action_table() -> list[tuple[str, str, str, str, str]]:
    """The policy as rows (action, 说明, 政务公开办, 第三方/检查组, 单位) for README and the admin page."""
    reach = {None: "—", OWN: "本单位", GROUP: "本分组", ANY: "全部"}
    return [(name, a.label, "全部" if a.office else "—", "全部" if a.checker else "—", reach[a.unit])
            for name, a in ACTIONS.items()]
