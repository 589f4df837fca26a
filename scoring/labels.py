"""Every Chinese label a person reads for a code of the system, and the one grade palette.

The app, the CLI, the 通报 and the exports all take their words and colours from here.
"""
from __future__ import annotations

ROLE_LABELS = {"office": "政务公开办", "checker": "第三方/检查组", "unit": "单位"}

# item statuses of a scoring result
ITEM_STATUS = {"ok": "正常", "missing": "未报送", "na": "不适用", "pending": "待评定", "adjusted": "已核定"}

# indicator types, as a clerk is told what a cell must hold
INDICATOR_TYPES = {"count": "非负整数", "number": "数字", "rate": "0–100 的百分比", "bool": "是/否"}

RULE_TYPES = {"boolean": "是否", "deduct": "扣分", "ladder": "分档", "rate": "比率", "ratio": "比值",
              "relative": "横向比较", "per": "按次计分", "manual": "评定", "veto": "否决"}

# the 问题整改 ledger: its statuses are these words themselves (scoring.problems), coloured so
PROBLEM_COLORS = {"待整改": "#b7791f", "待复核": "#1565c0", "已销号": "#2e7d32", "退回": "#ef6c00",
                  "逾期未整改": "#c62828"}

# upload batches
BATCH_CURRENT, BATCH_SUPERSEDED, BATCH_ROLLED_BACK = "当前", "已被替代", "已回滚"

# grades: text colour (charts, badges, the 通报's charts) and a pale tint behind badges.
# 一般 appears in some years' schemes between 合格 and 不合格.
GRADE_ORDER = ["优秀", "良好", "合格", "一般", "不合格"]
GRADE_COLORS = {"优秀": "#2e7d32", "良好": "#1565c0", "合格": "#b7791f", "一般": "#ef6c00", "不合格": "#c62828"}
GRADE_BG = {"优秀": "#e6f4ea", "良好": "#e3eefb", "合格": "#fdf3dc", "一般": "#fdebd9", "不合格": "#fde7e7"}

# the audit log's actions
AUDIT_ACTIONS = {
    "login": "登录成功",
    "login_failed": "登录失败",
    "locked": "账号锁定",
    "logout": "退出登录",
    "session": "登录凭证",
    "upload": "上传数据",
    "rollback": "回滚批次",
    "adjust": "核定得分",
    "scheme": "加载考评表",
    "units": "更新单位名录",
    "user": "账号变更",
    "init": "初始化数据库",
    "rectification": "问题整改",
    "period": "考评周期",
    "objection": "异议",
}

# the quarter lifecycle (报送 → 审核 → 公示 → 定稿): the statuses are these words themselves
PERIOD_STATUSES = ("未开放", "报送中", "审核中", "公示中", "已定稿")

# 异议 filed during 公示
OBJECTION_STATUS = {"pending": "待答复", "accepted": "已采纳", "rejected": "不予采纳"}
