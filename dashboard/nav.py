"""Which pages each role sees: (file stem, title, icon, section). Used by app.py and the tests."""
from __future__ import annotations

# Material icons ship with Streamlit; emoji need a colour-emoji font the server's browsers may lack.
COMMON = [("ranking", "排名", ":material/leaderboard:"), ("unit_detail", "单位详情", ":material/apartment:"),
          ("trends", "趋势", ":material/trending_up:"), ("upload", "数据上传", ":material/upload_file:"),
          ("scheme", "考评表", ":material/table_view:"), ("rectify", "问题整改", ":material/build:")]
OFFICE_ONLY = [("adjust", "核定", ":material/edit_note:"), ("admin", "管理", ":material/settings:")]
LOGIN = ("login", "登录", ":material/login:")


def sections_for(user) -> dict[str, list[tuple[str, str, str]]]:
    """Navigation sections of ``user`` (None: not logged in)."""
    if user is None:
        return {"": [LOGIN]}
    if not user.is_office:
        return {"考评": COMMON}
    return {"考评": COMMON, "政务公开办": OFFICE_ONLY}


def pages_for(user) -> list[str]:
    return [name for pages in sections_for(user).values() for name, _, _ in pages]
