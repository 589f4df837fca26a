"""Who is acting, and what they may do. Every access check of the system lives here."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import PermissionDenied

ROLES = {"office": "政务公开办", "unit": "单位"}


@dataclass(frozen=True)
class User:
    username: str
    role: str
    unit_code: str | None = None

    @property
    def is_office(self) -> bool:
        return self.role == "office"


CLI_OFFICE = User("命令行", "office")


def require_office(actor: User, what: str) -> None:
    if not actor.is_office:
        raise PermissionDenied(f"无权{what}:仅政务公开办可以操作")


def require_unit_access(actor: User, unit_code: str, what: str = "查看该单位详情") -> None:
    if actor.is_office:
        return
    if actor.unit_code != unit_code:
        raise PermissionDenied(f"无权{what}:账号 {actor.username} 只能访问本单位({actor.unit_code})的数据,不能访问 {unit_code}")
