"""Which pages each user sees: a page is listed when the user may do its action (scoring.permissions)."""
from __future__ import annotations

from scoring.permissions import can

# (file stem, title, icon, the action that opens it). Material icons ship with Streamlit; emoji
# need a colour-emoji font the server's browsers may lack.
COMMON = [("ranking", "排名", ":material/leaderboard:", ("ranking.view",)),
          ("unit_detail", "单位详情", ":material/apartment:", ("unit.view",)),
          ("trends", "趋势", ":material/trending_up:", ("trends.view",)),
          ("upload", "数据上传", ":material/upload_file:", ("upload.unit", "upload.office")),
          ("scheme", "考评表", ":material/table_view:", ("scheme.view",)),
          ("rectify", "问题整改", ":material/build:", ("problems.view",)),
          ("yearbook", "年报", ":material/menu_book:", ("yearbook.view",))]
OFFICE_ONLY = [("lifecycle", "考评周期", ":material/event_available:", ("period.manage",)),
               ("annual", "年度排名", ":material/calendar_month:", ("annual.view",)),
               ("adjust", "核定", ":material/edit_note:", ("adjust",)),
               ("checks", "核查清单", ":material/fact_check:", ("anomalies.view",)),
               ("admin", "管理", ":material/settings:", ("users.manage",))]
LOGIN = ("login", "登录", ":material/login:")


def sections_for(user) -> dict[str, list[tuple[str, str, str]]]:
    """Navigation sections of ``user`` (None: not logged in)."""
    if user is None:
        return {"": [LOGIN]}
    out = {}
    for title, pages in (("考评", COMMON), ("政务公开办", OFFICE_ONLY)):
        mine = [(name, label, icon) for name, label, icon, actions in pages
                if any(can(user, a) for a in actions)]
        if mine:
            out[title] = mine
    return out


def pages_for(user) -> list[str]:
    return [name for pages in sections_for(user).values() for name, _, _ in pages]
