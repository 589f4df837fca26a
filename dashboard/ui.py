"""Rendering helpers shared by the pages: number formats, grade colours, user text kept as text.

Users' text (unit names, reasons, file names) is data. Streamlit renders Markdown in titles,
captions, alerts, ``st.table`` cells and labels, so every such string that carries user text goes
through :func:`plain` (each ASCII punctuation mark backslash-escaped: no link, image, emphasis,
colour directive or formula survives); grids (``st.dataframe``) show cells as text already.
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from scoring import accounts, views
from scoring.errors import KaopingError, Problems
from scoring.labels import GRADE_BG, GRADE_COLORS

from . import state

log = logging.getLogger("kaoping.dashboard")

OWN_ROW_BG = "#fff8c5"
_MARKDOWN = re.compile(r"([!-/:-@\[-`{-~])")   # every ASCII punctuation mark
_LINE_BREAKS = re.compile(r"[\r\n]+")


def plain(text) -> str:
    """``text`` as literal text inside Streamlit Markdown (one line; nothing is interpreted)."""
    return _MARKDOWN.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))


def plain_cells(df: pd.DataFrame) -> pd.DataFrame:
    """A frame for ``st.table`` (which renders Markdown in cells): text cells through :func:`plain`."""
    out = df.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]):
            out[c] = pd.Series([plain(v) if isinstance(v, str) else v for v in out[c]], index=out.index, dtype=object)
    out.columns = [plain(c) for c in out.columns]
    return out


def table(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The columns named in ``columns`` (code -> Chinese label), renamed, in that order."""
    return df[list(columns)].rename(columns=columns).reset_index(drop=True)


def grade_style(value) -> str:
    if value in GRADE_COLORS:
        return f"background-color: {GRADE_BG[value]}; color: {GRADE_COLORS[value]}; font-weight: 600"
    return ""


def styled(df: pd.DataFrame, *, grade_col: str | None = "等级", highlight: pd.Series | None = None,
           decimals: int = 2):
    """A Styler: grade badge colours, 2-decimal numbers, an optional highlighted row mask."""
    sty = df.style
    floats = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    sty = sty.format(na_rep="—")  # never "None" or "nan" on screen
    if floats:
        sty = sty.format({c: f"{{:.{decimals}f}}" for c in floats}, na_rep="—")
    if grade_col and grade_col in df.columns:
        sty = sty.map(grade_style, subset=[grade_col])
    if highlight is not None and highlight.any():
        mask = highlight.to_numpy()

        def row_style(row):
            return [f"background-color: {OWN_ROW_BG}; font-weight: 600" if mask[row.name] else ""] * len(row)

        sty = sty.apply(row_style, axis=1)
    return sty


def grade_badges(df: pd.DataFrame, column: str) -> tuple[pd.DataFrame, dict]:
    """The grade column as coloured badges through column_config (a Styler costs ~0.1 s per 1,000 rows)."""
    df = df.copy()
    df[column] = [[g] if isinstance(g, str) and g else [] for g in df[column]]
    names = [g for g in GRADE_COLORS if g in set(df[column].explode().dropna())] or list(GRADE_COLORS)
    config = {column: st.column_config.MultiselectColumn(
        column, options=names, color=[GRADE_COLORS[g] for g in names], width="small")}
    return df, config


def highlighted(df: pd.DataFrame, mask: pd.Series):
    """A Styler that marks the rows of ``mask`` (a unit user's own row)."""
    return styled(df, grade_col=None, highlight=mask)


def fmt2(x) -> str:
    return "—" if x is None or pd.isna(x) else f"{float(x):.2f}"


def demo_banner() -> None:
    """The 演示模式 notice (every page, when the database is a demo)."""
    if accounts.is_demo(state.store()):
        st.warning("演示模式:当前为演示数据和公开的演示账号,请勿录入真实数据。", icon=":material/science:")


def demo_accounts_table() -> None:
    rows = accounts.demo_accounts(state.store())
    st.table(plain_cells(pd.DataFrame(rows, columns=["用户名", "密码", "说明"])).style.hide(axis="index"))


def ordered_groups(store, user, present) -> list[str]:
    """``present`` groups in the library's order (the registry's, as the office's own tables list
    them; not by code point), any others after them."""
    present = list(dict.fromkeys(g for g in present if isinstance(g, str)))
    order = views.group_order(store)
    return [g for g in order if g in present] + [g for g in present if g not in order]


def schemes_in_group_order(store, user, loaded: list) -> list:
    """Schemes in the order of their groups (``ordered_groups``), then by period."""
    order = ordered_groups(store, user, [g for s in loaded for g in s.groups])
    rank = {g: i for i, g in enumerate(order)}
    return sorted(loaded, key=lambda s: (min((rank.get(g, len(rank)) for g in s.groups), default=len(rank)),
                                         s.period_from, s.id))


@contextmanager
def guarded():
    """Show a library error's message, or a short Chinese message for anything else; never a traceback."""
    try:
        yield
    except KaopingError as exc:
        st.error(plain(exc))
    except Exception:  # noqa: BLE001 - the page must not show a traceback
        log.exception("dashboard page failed")
        st.error("页面出错了,请刷新后重试;如仍有问题请联系政务公开办(错误已记录)。")


def no_data(message: str = "暂无考评数据:请先在「数据上传」页上传季度数据。") -> None:
    st.info(message)
    st.stop()


def action(fn, *args, **kwargs):
    """Run a library action; on a KaopingError show its message (and every problem) and return None."""
    try:
        return fn(*args, **kwargs)
    except Problems as exc:
        st.error(plain(exc.title))
        table = getattr(exc, "table", None)
        if table is None and all(isinstance(p, dict) and "row" in p for p in exc.problems):
            table = pd.DataFrame(exc.problems, dtype=object).rename(
                columns={"row": "行号", "column": "列", "value": "值", "message": "问题"})
        if table is None:
            table = pd.DataFrame({"问题": [str(p) for p in exc.problems]})
        st.dataframe(table, hide_index=True, width="stretch")
        return None
    except KaopingError as exc:
        st.error(plain(exc))
        return None


def flash_next(key: str, message) -> None:
    """After an action: keep ``message`` for :func:`flash` under ``key`` and rerun, so the page shows
    the new state and the message once; nothing when the action failed (``message`` None/empty)."""
    if message:
        st.session_state[key] = message
        st.rerun()


def flash(key: str) -> None:
    """Show (once) a success message a previous run left under ``key``."""
    if key in st.session_state:
        st.success(plain(st.session_state.pop(key)))


def nullable_numbers(df: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, dict]:
    """Columns that may be empty, as right-aligned 2-decimal text with "—" (a grid shows "None" otherwise)."""
    df = df.copy()
    for c in columns:
        df[c] = [("—" if pd.isna(v) else f"{float(v):.2f}") for v in df[c]]
    return df, {c: st.column_config.TextColumn(c, alignment="right") for c in columns}


# -- Streamlit's own English ---------------------------------------------------------------
# Streamlit 1.67 has no setting for the language of its widgets. These words are put into Chinese
# in the browser (text and tooltips, as they appear); what cannot be reached this way (the word
# "empty" a grid draws on its canvas, menus drawn by the grid) is listed in README.
ZH = {
    "Upload": "上传文件", "Upload directories": "上传文件夹", "Browse files": "选择文件",
    "Drag and drop file here": "将文件拖到此处", "Drag and drop files here": "将文件拖到此处",
    "No results": "无匹配项", "No options to select": "无可选项", "No options to select.": "无可选项",
    "Choose an option": "请选择", "Choose options": "请选择",
    "Clear all": "全部清除", "Clear value": "清除", "Select all": "全选",
    "Search": "搜索", "Show/hide columns": "显示/隐藏列", "Download as CSV": "下载为 CSV",
    "Fullscreen": "全屏", "Close fullscreen": "退出全屏", "Close Search": "关闭搜索",
    "Next Result": "下一个", "Previous Result": "上一个", "Clear selection": "清除选择",
    "Sort ascending": "升序", "Sort descending": "降序", "Hide column": "隐藏列", "Pin column": "固定列",
    "Unpin column": "取消固定", "Autosize": "自动列宽", "Format": "格式", "Copy column name": "复制列名",
    "Running...": "运行中…", "Stop": "停止", "Add files": "添加文件", "Type to search": "输入关键字搜索",
}
_ZH_SCRIPT = """<script>
(() => {
  if (window.__kaopingZh) return;
  window.__kaopingZh = true;
  const ZH = %s;
  const exts = /^\u2022 [A-Z0-9.]+(, [A-Z0-9.]+)*$/;      // the upload box's file types
  const perFile = /^\\s*(\\d+(?:\\.\\d+)?\\s*[KMG]?B) per file\\s*$/;
  const found = /^(?:(\\d+) of )?(?:over (1000)|(\\d+) results?)$/;   // the grid's search: "2 of 5 results"
  const fix = (text) => {
    const t = text.trim();
    if (Object.prototype.hasOwnProperty.call(ZH, t)) return text.replace(t, ZH[t]);
    const f = t.match(found);
    if (f) return text.replace(t, (f[1] ? `第${f[1]}条,` : "") + (f[2] ? "超过1000条" : `共${f[3]}条`));
    const m = t.match(perFile);
    if (m) return text.replace(t, "单个文件不超过" + m[1].replace(/\\s+/g, ""));
    if (exts.test(t)) return text.replace(t, "\u00b7 " + t.slice(2).replace(/, /g, "\u3001"));
    return text;
  };
  const walk = (root) => {
    if (root.nodeType === 3) {
      const v = fix(root.nodeValue);
      if (v !== root.nodeValue) root.nodeValue = v;
      return;
    }
    if (root.nodeType !== 1) return;
    for (const a of ["aria-label", "title", "placeholder"]) {
      const v = root.getAttribute(a);
      if (v) { const f = fix(v); if (f !== v) root.setAttribute(a, f); }
    }
    const it = document.createTreeWalker(root, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
    let n;
    while ((n = it.nextNode())) {
      if (n.nodeType === 3) {
        const v = fix(n.nodeValue);
        if (v !== n.nodeValue) n.nodeValue = v;
      } else {
        for (const a of ["aria-label", "title", "placeholder"]) {
          const v = n.getAttribute(a);
          if (v) { const f = fix(v); if (f !== v) n.setAttribute(a, f); }
        }
      }
    }
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "childList") r.addedNodes.forEach(walk);
      else walk(r.target);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true,
                             attributes: true, attributeFilter: ["aria-label", "title", "placeholder"]});
  walk(document.body);
})();
</script>"""


def browser_scripts(extra: str | None = None) -> None:
    """The page scripts of the app (our own text, no user text): Streamlit's English in Chinese,
    and ``extra`` (the login cookie's one-time hand-over) when there is one."""
    import json

    st.html(_ZH_SCRIPT % json.dumps(ZH, ensure_ascii=False), unsafe_allow_javascript=True, width="content")
    if extra:
        st.html(extra, unsafe_allow_javascript=True, width="content")


def change_password_form(user) -> None:
    """修改密码, for every logged-in user (the library checks the old password like a login)."""
    with st.expander("修改密码", expanded=False):
        with st.form("account.password", clear_on_submit=True, border=False):
            old = st.text_input("原密码", type="password")          # no keys: never kept in session state
            new = st.text_input(f"新密码(至少{accounts.MIN_PASSWORD_LEN}个字符)", type="password")
            again = st.text_input("再次输入新密码", type="password")
            submitted = st.form_submit_button("修改")
        if submitted:
            if new != again:
                st.error("两次输入的新密码不一致")
            elif action(lambda: accounts.change_password(state.store(), user, old, new, keep=state.token()) or True):
                st.success("密码已修改;其他设备上的登录已退出。")
