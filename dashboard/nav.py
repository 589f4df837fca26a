"""Which pages each role sees: (file stem, title, icon, section). Used by app.py and the tests."""
from __future__ import annotations

COMMON = [("ranking", "排名", "🏆"), ("unit_detail", "单位详情", "🏢"), ("trends", "趋势", "📈"),
          ("upload", "数据上传", "📤"), ("scheme", "考评表", "📋"), ("rectify", "问题整改", "🛠️")]
OFFICE_ONLY = [("adjust", "核定", "✍️"), ("admin", "管理", "⚙️")]
LOGIN = ("login", "登录", "🔑")


def sections_for(user) -> dict[str, list[tuple[str, str, str]]]:
    """Navigation sections of ``user`` (None: not logged in)."""
    if user is None:
        return {"": [LOGIN]}
    if not user.is_office:
        return {"考评": COMMON}
    return {"考评": COMMON, "政务公开办": OFFICE_ONLY}


def pages_for(user) -> list[str]:
    return [name for pages in sections_for(user).values() for name, _, _ in pages]
