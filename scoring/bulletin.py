"""The quarterly 通报 (docx) and the 考评得分明细表 (xlsx).

Every figure comes from ``ranking.ranked_history`` and ``reports``, so the dashboard, the 通报 and
the score table say the same numbers. The document follows real 通报: 版头, 发文字号, title, 主送,
一、总体情况 (two charts), 二、考评结果 (a table per group, then the 通报表扬 of the 优秀 units),
三、存在问题 (the problems found, by type, naming the units), 四、上期问题整改情况 (整改率 and the
units with 逾期未整改 problems), 五、工作要求 (from ``data/bulletin.yaml``), 落款, the score table
and the quarter's 问题清单 as 附件, and the 版记 (抄送, 印发). How Word is written is
:mod:`scoring.docx_writer`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import analytics, engine, periods, problems, reports
from .adjustments import list_adjustments
from .errors import InputError, KaopingError
from .exports import to_xlsx_bytes
from .labels import GRADE_COLORS, GRADE_ORDER
from .permissions import SYSTEM, User, require
from .ranking import change_label, rank_label, ranked_history
from .rules import fmt
from .schemes import load_schemes, scheme_for

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "data" / "bulletin.yaml"
TREND_QUARTERS = 8
CHART_FONT = "Noto Sans CJK SC"
CN_NUM = "一二三四五六七八九十"


class ChartError(KaopingError):
    """The charts of the 通报 could not be rendered (no Chromium for kaleido, or it failed)."""


# =========================================================================================
# Data: one scoring run, everything the document says
# =========================================================================================
@dataclass
class BulletinData:
    period: str
    scores: engine.Scores
    ranked: pd.DataFrame        # ranked_history over the trend window
    current: pd.DataFrame       # ranked rows of ``period``
    groups: list[str]           # in template order
    template: dict
    problems: pd.DataFrame      # the problem ledger of ``period`` (scoring.problems.list_problems)
    previous_problems: pd.DataFrame   # … and of the quarter before, for 上期问题整改情况

    @property
    def previous(self) -> str:
        return periods.previous(self.period)


def load_template(path=None) -> dict:
    p = Path(path) if path else DEFAULT_TEMPLATE
    if not p.is_absolute() and not p.exists():
        p = DEFAULT_TEMPLATE.parent.parent / p
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputError(f"通报模板不存在:{p}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"通报模板 {p} 格式错误:{exc}") from None
    data["fonts"] = data.get("fonts") or {}                    # named in the document (default GB/T 9704's)
    data["fallback_fonts"] = data.get("fallback_fonts") or {}  # where those are missing (default Noto CJK)
    data.setdefault("office", "政务公开办公室")
    data.setdefault("city", "")
    data.setdefault("title", "关于{period_label}全市政务公开工作考评情况的通报")
    data.setdefault("requirements", [])
    data.setdefault("date_format", "{y}年{m}月{d}日")
    return data


def _group_order(present, template: dict) -> list[str]:
    """The template's group order, then any other group alphabetically."""
    present = set(present)
    order = [g for g in template.get("groups") or [] if g in present]
    return order + sorted(present - set(order))


def collect(store, period: str, template: dict) -> BulletinData:
    period = periods.parse_period(period)
    first = periods.from_index(periods.period_index(period) - TREND_QUARTERS + 1)
    scores = engine.score(store, periods.quarters_between(first, period))
    ranked = ranked_history(scores)
    current = ranked[ranked["period"] == period].reset_index(drop=True)
    if current.empty:
        raise InputError(f"{periods.label(period)}没有考评数据,无法生成通报")
    ledger = problems.list_problems(store, SYSTEM, period=period)
    before = problems.list_problems(store, SYSTEM, period=periods.previous(period))
    return BulletinData(period, scores, ranked, current, _group_order(current["group"], template), template,
                        ledger, before)


def _fill(text: str, d: BulletinData, **extra) -> str:
    year, q = periods.split(d.period)
    values = dict(year=year, quarter=q, quarter_cn=CN_NUM[q - 1], period_label=periods.label(d.period),
                  city=d.template.get("city", ""), units=len(d.current), **extra)
    return str(text or "").format_map(_Default(values))


class _Default(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def _issue_date(template: dict, issued: date | None) -> date:
    if issued is not None:
        return issued
    raw = template.get("issue_date")
    if isinstance(raw, date):
        return raw
    if raw:
        return date.fromisoformat(str(raw))
    return periods.today()


def _signed(x: float, unit: str = "分") -> str:
    if x is None or pd.isna(x):
        return ""
    x = float(engine.round2(x))
    if abs(x) < 0.005:
        return "持平"
    return f"{'提高' if x > 0 else '下降'}{abs(x):.2f}{unit}"


def _pct(x) -> str:
    return f"{fmt(float(x))}%"


def _change_text(row) -> str:
    """较上季度: rank change label, and the score change when there is a previous score."""
    label = change_label(row["rank_change"])
    tc = row.get("total_change")
    if tc is None or pd.isna(tc):
        return label
    return f"{label}({float(tc):+.2f})"


# -- prose: full-width punctuation, except inside names ---------------------------------------
_FULL_WIDTH = {",": "\uff0c", ":": "\uff1a", ";": "\uff1b", "(": "\uff08", ")": "\uff09"}
_KEEP_OPEN, _KEEP_CLOSE = "\x01", "\x02"


def _keep(text) -> str:
    """Mark user-supplied text (unit, group, item names) so that ``_cn`` leaves it as it is."""
    text = str(text).replace(_KEEP_OPEN, "").replace(_KEEP_CLOSE, "")
    return f"{_KEEP_OPEN}{text}{_KEEP_CLOSE}"


def _cn(text: str) -> str:
    """Full-width punctuation for our Chinese prose (the library's explanations use ASCII).

    Text marked with ``_keep`` and a colon between digits (10:30) stay as they are.
    """
    out, depth = [], 0
    for i, c in enumerate(text):
        if c == _KEEP_OPEN:
            depth += 1
        elif c == _KEEP_CLOSE:
            depth -= 1
        if depth or (c == ":" and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()):
            out.append(c)
        else:
            out.append(_FULL_WIDTH.get(c, c))
    return "".join(out)


def _prose(text: str) -> str:
    """What the document writes for ``text``: full-width prose, the ``_keep`` marks removed."""
    return _cn(text).replace(_KEEP_OPEN, "").replace(_KEEP_CLOSE, "")


# =========================================================================================
# Charts
# =========================================================================================
def _short_period(p: str) -> str:
    y, q = periods.split(p)
    return f"{y}年{CN_NUM[q - 1]}季度"


def trend_figure(d: BulletinData):
    import plotly.graph_objects as go

    trend = reports.group_trend(d.ranked)
    fig = go.Figure()
    all_periods = sorted(trend["period"].unique())
    for g in d.groups:
        t = trend[trend["group"] == g].sort_values("period")
        fig.add_trace(go.Scatter(x=[_short_period(p) for p in t["period"]], y=t["mean"], name=g,
                                 mode="lines+markers", line={"width": 2.5}, marker={"size": 7}))
    fig.update_layout(
        font={"family": CHART_FONT, "size": 15, "color": "#222"}, template="plotly_white",
        width=900, height=430, margin={"l": 60, "r": 60, "t": 20, "b": 90},
        legend={"orientation": "h", "y": -0.2, "x": 0.5, "xanchor": "center"},
        yaxis={"title": _cn("平均得分(分)"), "gridcolor": "#ddd"},
        xaxis={"categoryorder": "array", "categoryarray": [_short_period(p) for p in all_periods]})
    return fig


def grade_figure(d: BulletinData):
    import plotly.graph_objects as go

    dist = reports.grade_distribution(d.current)
    grades = [g for g in GRADE_ORDER if g in set(dist["grade"])]
    grades += sorted(set(dist["grade"]) - set(grades))
    fig = go.Figure()
    totals = [int(dist[dist["group"] == g]["units"].sum()) for g in d.groups]
    ticks = [_cn(f"{g}({n}家)") for g, n in zip(d.groups, totals)]
    for grade in grades:
        counts = [int(dist[(dist["group"] == g) & (dist["grade"] == grade)]["units"].sum()) for g in d.groups]
        fig.add_trace(go.Bar(x=ticks, y=counts, name=grade, marker_color=GRADE_COLORS.get(grade),
                             text=[str(c) for c in counts], textposition="outside", cliponaxis=False,
                             textfont={"size": 14}))
    fig.update_layout(
        barmode="group", font={"family": CHART_FONT, "size": 15, "color": "#222"}, template="plotly_white",
        width=900, height=430, margin={"l": 60, "r": 30, "t": 30, "b": 90},
        legend={"orientation": "h", "y": -0.15, "x": 0.5, "xanchor": "center", "traceorder": "normal"},
        yaxis={"title": _cn("单位数(家)"), "gridcolor": "#ddd"}, bargap=0.25, bargroupgap=0.05)
    return fig


def _browser_path() -> str | None:
    if os.environ.get("BROWSER_PATH"):
        path = os.environ["BROWSER_PATH"]
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            raise ChartError(f"无法生成通报图表:环境变量 BROWSER_PATH 指向的浏览器不存在或不可执行({path})")
        return path
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def render_png(figures: list) -> list[bytes]:
    """PNG bytes of each figure, rendered in one Chromium session; ChartError if impossible."""
    path = _browser_path()
    if path is None:
        raise ChartError("无法生成通报图表:未找到 Chromium 浏览器(kaleido 需要它)。"
                         "请安装 chromium(Debian: apt-get install chromium)或设置环境变量 BROWSER_PATH")
    os.environ.setdefault("BROWSER_PATH", path)
    try:
        import kaleido
    except ImportError as exc:
        raise ChartError(f"无法生成通报图表:缺少 kaleido({exc})") from exc
    with tempfile.TemporaryDirectory() as tmp:
        specs = [{"fig": fig, "path": str(Path(tmp) / f"chart{i}.png"),
                  "opts": {"format": "png", "width": fig.layout.width, "height": fig.layout.height, "scale": 2}}
                 for i, fig in enumerate(figures)]
        try:
            errors = kaleido.write_fig_from_object_sync(specs, cancel_on_error=True)
        except Exception as exc:  # noqa: BLE001 (any renderer failure becomes one clear error)
            raise ChartError(f"无法生成通报图表:kaleido/Chromium 渲染失败({type(exc).__name__}: {exc})") from exc
        if errors:
            raise ChartError(f"无法生成通报图表:{errors[0]}")
        out = []
        for spec in specs:
            p = Path(spec["path"])
            if not p.exists() or p.stat().st_size == 0:
                raise ChartError("无法生成通报图表:渲染器没有输出图片")
            out.append(p.read_bytes())
    return out


# =========================================================================================
# The 通报, section by section
# =========================================================================================
def _names(df: pd.DataFrame) -> str:
    return "、".join(_keep(n) for n in df["unit_name"])


def _overview(doc, d: BulletinData) -> None:
    city = reports.city_summary(d.ranked)
    now = city[city["period"] == d.period].iloc[0]
    prev = city[city["period"] == d.previous]
    prev = prev.iloc[0] if len(prev) else None
    summary = reports.group_summary(d.ranked)
    per = summary[summary["period"] == d.period].set_index("group")
    before = summary[summary["period"] == d.previous].set_index("group")
    n_fail = int((~d.current["passed"].astype(bool)).sum())

    counts = "、".join(f"{_keep(g)}{int(per.loc[g, 'units'])}家" for g in d.groups)
    text = f"本季度共考评{int(now['units'])}家单位,其中{counts}。全市平均得分{now['mean']:.2f}分"
    if prev is not None:
        text += f",较上季度({prev['mean']:.2f}分){_signed(now['mean'] - prev['mean'])}"
    text += f";合格率{_pct(now['pass_rate'])}"
    if prev is not None:
        text += f"(上季度{_pct(prev['pass_rate'])})"
    text += f"。{int(now['excellent'])}家单位考评等次为优秀"
    text += f",{n_fail}家单位不合格。" if n_fail else ",无不合格单位。"
    doc.para(text)

    for k, g in enumerate(d.groups):
        row = per.loc[g]
        sub = d.current[d.current["group"] == g]
        best = sub[sub["total"] == sub["total"].max()]
        worst = sub[sub["total"] == sub["total"].min()]
        text = f"参评{int(row['units'])}家,平均得分{row['mean']:.2f}分"
        if g in before.index:
            text += f"(上季度{before.loc[g, 'mean']:.2f}分,{_signed(row['mean'] - before.loc[g, 'mean'])})"
        else:
            text += "(上季度无考评数据)"
        text += (f";最高分{row['max']:.2f}分({_names(best)}),最低分{row['min']:.2f}分({_names(worst)});"
                 f"合格率{_pct(row['pass_rate'])}。")
        if int(row["excellent"]):
            text += f"优秀等次{int(row['excellent'])}家:{_keep(row['excellent_units'])}。"
        else:
            text += "本季度无优秀等次单位。"
        doc.lead_para(f"({CN_NUM[k]}){_keep(g)}。", text)


def _results(doc, d: BulletinData) -> None:
    doc.para("各组考评结果如下(按得分由高到低排列,得分相同的名次并列):")
    for k, g in enumerate(d.groups):
        sub = d.current[d.current["group"] == g].sort_values(["rank", "unit_code"])
        doc.para(f"({CN_NUM[k]}){_keep(g)}({len(sub)}家)", bold=True, keep_next=True, before=6)
        rows = [[rank_label(r["rank"], r["tied"]), _keep(r["unit_name"]), f"{r['total']:.2f}", r["grade"],
                 _change_text(r)] for r in sub.to_dict("records")]
        doc.table(["名次", "单位", "得分", "等次", "较上季度"], rows, [2.5, 6.3, 2.0, 1.8, 3.0])
        robust = analytics.robustness_sentence(analytics.robustness_of(d.scores, d.period, g))
        if robust:
            doc.para(robust, size=12, line=20)
        doc.para("", line=10)
    doc.para("注:“较上季度”栏为名次变化(↑上升、↓下降、—持平,“新”为上季度未参评),括号内为得分增减。",
             size=12, line=20)
    _commendation(doc, d)


def _commendation(doc, d: BulletinData) -> None:
    """通报表扬: the units graded 优秀 (the best grade of their scheme), named group by group."""
    best = d.current[d.current["grade"] == GRADE_ORDER[0]]
    if best.empty:
        return
    parts = [f"{_keep(g)}:{_names(best[best['group'] == g].sort_values(['rank', 'unit_code']))}"
             for g in d.groups if (best["group"] == g).any()]
    doc.lead_para("通报表扬。", f"对考评等次为优秀的{len(best)}家单位予以通报表扬。" + ";".join(parts)
                  + "。希望受表扬的单位再接再厉,其他单位要学习借鉴好的做法。")


def _problems(doc, d: BulletinData) -> None:
    k = 0
    fail = reports.failing(d.current)
    doc.heading(f"({CN_NUM[k]})不合格及触发单项否决的单位", 2)
    if fail.empty:
        doc.para("本季度无考评不合格或触发单项否决的单位。")
    else:
        parts = [f"{_keep(r['unit_name'])}({_keep(r['group'])},{_reason(r)})" for r in fail.to_dict("records")]
        doc.para(f"{len(fail)}家单位考评不合格:" + ";".join(parts) + "。")
    k += 1

    doc.heading(f"({CN_NUM[k]})第三方检测和检查发现的问题", 2)
    for text in found_problems(d.problems, d.groups):
        doc.para(text)
    k += 1

    losses = reports.item_losses(d.scores, d.period)
    skip = reports.never_assessed_items(d.scores, d.period)
    if not skip.empty:
        key = set(zip(skip["group"], skip["item_id"]))
        losses = losses[[(g, i) not in key for g, i in zip(losses["group"], losses["item_id"])]]
    losses = losses[losses["mean_lost"] > 0].head(6)
    doc.heading(f"({CN_NUM[k]})失分较多的指标", 2)
    if losses.empty:
        doc.para("本季度各项指标均未出现明显失分。")
    else:
        parts = [f"{_keep(r['group'])}“{_keep(r['name'])}”(满分{fmt(r['max'])}分)平均失分{r['mean_lost']:.2f}分,"
                 f"{int(r['units_lost'])}家(共{int(r['units'])}家)单位失分"
                 + (f",其中{int(r['missing'])}家未报送" if int(r["missing"]) else "")
                 for r in losses.to_dict("records")]
        doc.para("从各项指标得分看,失分主要集中在:" + ";".join(parts) + "。")
        if not skip.empty:
            names = "、".join(_keep(n) for n in dict.fromkeys(skip["name"]))
            doc.para(f"“{names}”等人工评定指标本季度尚未核定,暂按0分计,未列入上述分析。", size=14, line=24)
    k += 1

    doc.heading(f"({CN_NUM[k]})名次下降较多的单位", 2)
    parts = []
    for g in d.groups:
        _, fallers = reports.movers(d.current[d.current["group"] == g], n=3)
        # a unit whose own score rose fell only because others rose more: not criticised here
        fallers = fallers[fallers["total_change"] < 0]
        for r in fallers.to_dict("records"):
            why = analytics.attribution_of(d.scores, r["unit_code"], d.period)
            parts.append(f"{_keep(r['unit_name'])}({_keep(g)})由第{int(r['prev_rank'])}名降至第{int(r['rank'])}名,"
                         f"得分由{r['prev_total']:.2f}分降至{r['total']:.2f}分,其中本单位得分变化影响"
                         f"{-why['rank_own']}位、其他单位得分变化影响{-why['rank_peers']}位")
    if parts:
        doc.para(";".join(parts) + "。")
    else:
        doc.para("与上季度相比,无名次下降的单位。")
    k += 1

    incomplete = d.current[d.current["n_missing"] > 0].sort_values(["group", "rank"])
    if not incomplete.empty:
        doc.heading(f"({CN_NUM[k]})数据报送不完整的单位", 2)
        parts = [f"{_keep(r['unit_name'])}({int(r['n_missing'])}项)" for r in incomplete.to_dict("records")]
        doc.para("以下单位有指标未按时报送,相应指标计0分:" + "、".join(parts) + "。")


MAX_TYPES = 8      # problem types named in the text; the rest are in the 问题清单 附件


def found_problems(ledger: pd.DataFrame, groups: list[str]) -> list[str]:
    """存在问题 by type: one sentence per problem description shared by several units, naming them
    (``以下5家单位政策文件栏目超6个月未更新:…``, in the 通报's group order), then the single ones."""
    if ledger.empty:
        return ["本季度第三方检测和检查未发现问题。"]
    out = [f"本季度第三方检测和检查共发现问题{len(ledger)}个,涉及{ledger['unit_code'].nunique()}家单位,"
           f"已全部列入问题清单(附件2)并下发各单位限期整改。主要问题如下:"]
    order = ledger["group"].map({g: k for k, g in enumerate(groups)})
    by_type = (ledger.assign(order=order).sort_values(["order", "unit_code", "id"]).groupby("description", sort=False)
               .agg(units=("unit_name", lambda s: list(dict.fromkeys(s))), n=("unit_code", "nunique"))
               .sort_values("n", ascending=False, kind="stable"))
    shared, single = by_type[by_type["n"] > 1], by_type[by_type["n"] == 1]
    for k, (description, row) in enumerate(shared.head(MAX_TYPES).iterrows()):
        out.append(f"{k + 1}.以下{row['n']}家单位{_keep(description)}:{'、'.join(_keep(u) for u in row['units'])}。")
    if len(single):
        named = [f"{_keep(r['units'][0])}{_keep(d)}" for d, r in single.head(MAX_TYPES).iterrows()]
        more = f"等{len(single)}个问题" if len(single) > MAX_TYPES else ""
        out.append(f"{min(len(shared), MAX_TYPES) + 1}.此外,{';'.join(named)}{more}。")
    if len(shared) > MAX_TYPES:
        out.append(f"其余{len(shared) - MAX_TYPES}类问题见附件2。")
    return out


def rectification_summary(before: pd.DataFrame) -> list[str]:
    """上期问题整改情况: how many of last quarter's problems were closed (on time), the 整改率,
    and the units with problems 逾期未整改, named with their counts."""
    if before.empty:
        return ["上季度未下发问题清单。"]
    closed, on_time = before["status"] == problems.CLOSED, before["on_time"]
    waiting = int((before["status"] == problems.PENDING).sum())
    overdue = before[before["status"] == problems.OVERDUE]
    text = (f"上季度下发问题{len(before)}个,已整改销号{int(closed.sum())}个(其中按期销号{int(on_time.sum())}个),"
            f"整改率{closed.mean() * 100:.1f}%")
    text += f";{waiting}个已反馈整改情况,正在复核" if waiting else ""
    if overdue.empty:
        return [text + ";无逾期未整改问题。"]
    per_unit = overdue.groupby("unit_name", sort=False).size().sort_values(ascending=False, kind="stable")
    names = "、".join(f"{_keep(u)}({n}个)" for u, n in per_unit.items())
    return [text + f";逾期未整改问题{len(overdue)}个,涉及{len(per_unit)}家单位:{names}。",
            "逾期未整改的问题已按考评办法在“问题按期整改率”等指标中扣分。请上述单位抓紧整改,"
            "整改完成后在系统中反馈整改情况和佐证链接,经复核销号。"]


def _reason(r) -> str:
    if isinstance(r.get("veto_name"), str):
        return f"触发单项否决“{_keep(r['veto_name'])}”,得分{r['total']:.2f}分"
    return f"得分{r['total']:.2f}分,低于合格线"


def _requirements(doc, d: BulletinData) -> None:
    for k, req in enumerate(d.template.get("requirements") or []):
        if isinstance(req, str):
            doc.para(_fill(req, d))
        else:
            doc.lead_para(f"({CN_NUM[k]})" + _fill(req.get("title", ""), d), _fill(req.get("text", ""), d))


def _attachment(doc, d: BulletinData, store) -> None:
    doc.landscape_section()
    doc.para("附件1", font="heading", indent=False)
    doc.para(f"{periods.label(d.period)}全市政务公开工作考评得分明细表", size=20, font="title", bold=True,
             align="center", indent=False, before=6, after=12, line=30)
    sections = d.scores.sections
    sections = sections[sections["period"] == d.period]
    for k, g in enumerate(d.groups):
        sub = d.current[d.current["group"] == g].sort_values(["rank", "unit_code"])
        scheme = scheme_for(store, g, d.period)
        secs = list(scheme.sections) if scheme else []
        pts = sections[sections["group"] == g].pivot_table(index="unit_code", columns="section_id",
                                                           values="points", aggfunc="first")
        header = ["名次", "单位"] + [f"{_keep(s.name)}({fmt(s.max)})" for s in secs] + ["加分", "扣分", "总分", "等次"]
        rows = []
        for r in sub.to_dict("records"):
            cells = [rank_label(r["rank"], r["tied"]), _keep(r["unit_name"])]
            cells += [fmt(float(engine.round2(pts.loc[r["unit_code"], s.id])))
                      if r["unit_code"] in pts.index and s.id in pts.columns else "—" for s in secs]
            cells += [fmt(r["bonus"]) if r["bonus"] else "", fmt(r["penalty"]) if r["penalty"] else "",
                      f"{r['total']:.2f}", r["grade"] + ("(否决)" if isinstance(r["veto"], str) else "")]
            rows.append(cells)
        avail = 24.7
        fixed = [1.8, 5.2, 1.3, 1.3, 1.7, 1.9]
        w = max(1.4, (avail - sum(fixed)) / max(len(secs), 1))
        widths = fixed[:2] + [w] * len(secs) + fixed[2:]
        doc.para(f"({CN_NUM[k]}){_keep(g)}({len(sub)}家)", bold=True, keep_next=True, indent=False, before=6)
        doc.table(header, rows, widths, size=9)
    doc.para("注:各一级指标得分已按分值封顶;含“不适用”指标的单位,总分按“得分÷适用总分×100”折算,"
             "故各项之和可能与总分不同。单项否决的单位总分按否决规则计。各单位逐项得分及失分原因见考评得分明细表(Excel)。",
             size=10.5, line=18, indent=False, before=6)


def build_document(store, d: BulletinData, charts: list[bytes], issued: date) -> bytes:
    from .docx_writer import Doc  # python-docx only when a document is written

    t = d.template
    doc = Doc(t["fonts"], prose=_prose, fallbacks=t["fallback_fonts"])
    if t.get("header"):
        doc.para(t["header"], size=34, font="title", bold=True, color="C00000", align="center",
                 indent=False, before=6, after=12, line=48)
    if t.get("doc_number"):
        doc.para(_fill(t["doc_number"], d), align="center", indent=False)
    if t.get("header"):
        doc.red_rule()
    doc.para(_fill(t["title"], d), size=22, font="title", bold=True, align="center", indent=False,
             before=12, after=18, line=34)
    if t.get("addressees"):
        doc.para(_fill(t["addressees"], d), indent=False)
    if t.get("intro"):
        doc.para(_fill(t["intro"], d))

    doc.heading("一、总体情况")
    _overview(doc, d)
    first = periods.label(d.ranked["period"].min())
    doc.picture(charts[0], 15.2, f"图1 各组平均得分走势({first}至{periods.label(d.period)})")
    doc.picture(charts[1], 15.2, f"图2 {periods.label(d.period)}各组考评等次分布")

    doc.heading("二、考评结果")
    _results(doc, d)
    doc.heading("三、存在问题")
    _problems(doc, d)
    doc.heading("四、上期问题整改情况")
    for text in rectification_summary(d.previous_problems):
        doc.para(text)
    if t.get("requirements"):
        doc.heading("五、工作要求")
        _requirements(doc, d)

    doc.para("", line=28)
    doc.para(f"附件:1.{periods.label(d.period)}全市政务公开工作考评得分明细表")
    doc.para(f"2.{periods.label(d.period)}第三方检测问题清单", indent=False, left_indent=16 * 5)   # under "1."
    doc.para("", line=28)
    doc.para("", line=28)
    doc.para(t["office"], align="right", indent=False, right_indent=64)
    doc.para(t["date_format"].format(y=issued.year, m=issued.month, d=issued.day), align="right", indent=False,
             right_indent=80)
    if t.get("contact"):
        doc.para(t["contact"], size=14, line=28, before=12)
    _attachment(doc, d, store)
    _problem_attachment(doc, d, issued)
    _record_block(doc, d, issued)
    return doc.bytes()


def _problem_attachment(doc, d: BulletinData, issued: date) -> None:
    """附件2: every problem of the quarter, unit by unit, with its deadline and where it stands."""
    doc.para("附件2", font="heading", indent=False, page_break=True)
    doc.para(f"{periods.label(d.period)}第三方检测问题清单", size=20, font="title", bold=True,
             align="center", indent=False, before=6, after=12, line=30)
    if d.problems.empty:
        doc.para("本季度未发现问题。", indent=False)
        return
    ledger = d.problems.assign(order=d.problems["group"].map({g: k for k, g in enumerate(d.groups)}))
    ledger = ledger.sort_values(["order", "unit_code", "id"])
    rows = [[str(k + 1), _keep(r["unit_name"]), _keep(r["item_name"] or "—"), _keep(r["description"]),
             f"{r['due_on']:%Y-%m-%d}", r["status"]] for k, r in enumerate(ledger.to_dict("records"))]
    doc.table(["序号", "单位", "考评项", "问题描述", "整改期限", "整改情况"], rows, [1.3, 5.0, 4.2, 9.0, 2.6, 2.6],
              size=9, left_cols=(1, 2, 3))
    doc.para(f"注:整改情况截至{issued.year}年{issued.month}月{issued.day}日;逾期未整改指超过整改期限仍未销号的问题。",
             size=10.5, line=18, indent=False, before=6)


def _record_block(doc, d: BulletinData, issued: date) -> None:
    """版记 (GB/T 9704): 抄送 and 印发机关 with the 印发日期, between rules, at the end of the document."""
    t = d.template
    doc.para("", line=28)
    if t.get("cc"):
        doc.record_line(f"抄送:{_fill(t['cc'], d)}", top=True)
    doc.record_line(t.get("printer") or t["office"], f"{issued.year}年{issued.month}月{issued.day}日印发",
                    top=not t.get("cc"), bottom=True)


def _bulletin(store, period: str, actor: User, template_path, issued: date | None) -> tuple[bytes, BulletinData]:
    require(actor, "bulletin")
    template = load_template(template_path)
    d = collect(store, period, template)
    charts = render_png([trend_figure(d), grade_figure(d)])
    return build_document(store, d, charts, _issue_date(template, issued)), d


def bulletin_bytes(store, period: str, actor: User, template_path=None, *, issued: date | None = None) -> bytes:
    """The quarterly 通报 as .docx bytes (office only)."""
    return _bulletin(store, period, actor, template_path, issued)[0]


def write_bulletin(store, period: str, out_path, actor: User, template_path=None) -> str:
    """Write the 通报 to ``out_path``; returns a one-line summary in Chinese."""
    data, d = _bulletin(store, period, actor, template_path, None)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return (_cn(f"已生成{periods.label(d.period)}考评通报:") + str(out)
            + _cn(f"({len(d.current)}家单位,{len(d.groups)}个分组,{len(data) / 1024:.0f} KB)"))


# =========================================================================================
# 考评得分明细表 (xlsx): every unit × item of a period, per group a long sheet (one row per
# unit and item, with the reasons) and a matrix sheet (a row per unit, a column per item)
# =========================================================================================
SCORE_COLUMNS = ["单位", "指标", "分值", "得分", "扣分", "失分原因", "整改情况", "核定情况"]


def _period_results(store, period: str, actor: User, scores: engine.Scores | None):
    """(period, scores, the period's ranked rows) for the office's score tables."""
    require(actor, "bulletin")
    period = periods.parse_period(period)
    if scores is None:
        scores = engine.score(store, [periods.previous(period), period])
    ranked = ranked_history(scores)
    units = ranked[ranked["period"] == period]
    if units.empty:
        raise InputError(f"{periods.label(period)}没有考评数据")
    return period, scores, units


def score_table_frames(store, period: str, actor: User, scores: engine.Scores | None = None) -> dict[str, pd.DataFrame]:
    """One frame per group: each unit's items (units in rank order), then the unit's total row."""
    period, scores, units = _period_results(store, period, actor, scores)
    units = units.assign(order=np.arange(len(units)))      # ranked_history: by group, rank, unit_code

    items = scores.items
    items = items[items["period"] == period]
    items = items.assign(pos=items.groupby("unit_code", sort=False).cumcount())
    section_names = (scores.sections.loc[scores.sections["period"] == period, ["group", "section_id", "name"]]
                     .drop_duplicates(["group", "section_id"]).rename(columns={"name": "section_name"}))
    items = items.merge(section_names, on=["group", "section_id"], how="left")
    items = items.merge(units[["unit_code", "unit_name", "order"]], on="unit_code")

    kind, status = items["kind"].to_numpy(), items["status"].to_numpy()
    penalty, bonus = kind == "penalty", kind == "bonus"
    points = engine.round2(np.where(penalty, -items["points"].to_numpy(float), items["points"].to_numpy(float)))
    max_ = np.where(penalty, np.nan, items["max"].to_numpy(float))
    lost = np.where(penalty, np.abs(points), np.where(bonus, np.nan, engine.round2(np.maximum(max_ - points, 0.0))))
    item_rows = pd.DataFrame({
        "group": items["group"], "order": items["order"], "pos": items["pos"], "unit_code": items["unit_code"],
        "item_id": items["item_id"], "单位": items["unit_name"],
        "指标": np.where(penalty, "[扣分项]" + items["name"], np.where(
            bonus, "[加分项]" + items["name"], items["section_name"].fillna("") + "/" + items["name"])),
        "分值": max_, "得分": points, "扣分": lost,
    })
    explained = (np.nan_to_num(lost) > 1e-9) | np.isin(status, ["missing", "pending"])
    item_rows["失分原因"] = ""
    item_rows.loc[explained, "失分原因"] = _explanations(scores, period, item_rows[explained])
    item_rows["核定情况"] = np.where(status == "pending", "待评定", "")
    ledger = problems.list_problems(store, SYSTEM, period=period)
    found, progress = _ledger_notes(ledger, item_rows)
    has_found = explained & (found != "")
    item_rows.loc[has_found, "失分原因"] = item_rows.loc[has_found, "失分原因"] + ";发现问题:" + found[has_found]
    item_rows["整改情况"] = progress
    adjusted = status == "adjusted"
    if adjusted.any():
        item_rows.loc[adjusted, "核定情况"] = _adjustment_notes(store, actor, period, item_rows[adjusted])

    total_max = {s.id: s.total_max for s in load_schemes(store)}
    total_rows = pd.DataFrame({
        "group": units["group"].to_numpy(), "order": units["order"].to_numpy(), "pos": np.iinfo(np.int64).max,
        "单位": units["unit_name"].to_numpy(), "指标": "总分", "分值": units["scheme"].map(total_max).to_numpy(),
        "得分": units["total"].to_numpy(), "扣分": np.nan, "核定情况": "",
        "整改情况": [_unit_progress(ledger[ledger["unit_code"] == u]) for u in units["unit_code"]],
        "失分原因": [f"等次:{g};组内第{rank_label(r, t)}名" + (f";触发单项否决:{v}" if isinstance(v, str) else "")
                 for g, r, t, v in zip(units["grade"], units["rank"], units["tied"], units["veto_name"])],
    })
    table = pd.concat([item_rows, total_rows], ignore_index=True).sort_values(["order", "pos"])
    return {g: table.loc[table["group"] == g, SCORE_COLUMNS].reset_index(drop=True)
            for g in _group_order(units["group"], load_template())}


def _ledger_notes(ledger: pd.DataFrame, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For each (unit_code, item_id) of ``rows``: the problems found on that item (``#12 政策文件栏目
    超6个月未更新``) and where each stands (``#12 已销号(按期)``); "" where the ledger has none."""
    found, progress = {}, {}
    for r in ledger[ledger["item_id"].notna()].sort_values("id").itertuples():
        key = (r.unit_code, r.item_id)
        found.setdefault(key, []).append(f"#{r.id} {r.description}")
        progress.setdefault(key, []).append(f"#{r.id} {r.status}" + ("(按期)" if r.on_time else ""))
    keys = list(zip(rows["unit_code"], rows["item_id"]))
    return (np.array(["、".join(found.get(k, [])) for k in keys], dtype=object),
            np.array([";".join(progress.get(k, [])) for k in keys], dtype=object))


def _unit_progress(mine: pd.DataFrame) -> str:
    """A unit's problems of the quarter in one phrase: ``下发问题3个:已销号2个、逾期未整改1个``."""
    if mine.empty:
        return "无下发问题"
    counts = mine["status"].value_counts()
    return f"下发问题{len(mine)}个:" + "、".join(f"{s}{counts[s]}个" for s in problems.STATUSES if s in counts)


def _explanations(scores: engine.Scores, period: str, rows: pd.DataFrame) -> list[str]:
    """The engine's sentence for each of ``rows`` (unit_code, item_id). The engine writes
    explanations one unit at a time, so this asks once per unit that needs any."""
    text = {}
    for unit in dict.fromkeys(rows["unit_code"]):
        for it in scores.explain(unit, period)["items"]:
            text[(unit, it["item_id"])] = it["explanation"]
    return [text[k] for k in zip(rows["unit_code"], rows["item_id"])]


def _adjustment_notes(store, actor: User, period: str, rows: pd.DataFrame) -> list[str]:
    """核定为X分;理由;核定人;date for each adjusted row, from its current adjustment record."""
    adj = list_adjustments(store, actor, period=period)
    adj = rows[["unit_code", "item_id"]].merge(adj[adj["current"].astype(bool)], on=["unit_code", "item_id"], how="left")
    return [f"核定为{fmt(p)}分;理由:{r};核定人:{a};{at:%Y-%m-%d}"
            for p, r, a, at in zip(adj["points"], adj["reason"], adj["actor"], adj["adjusted_at"])]


MATRIX_SUFFIX = "(矩阵)"


def score_matrix_frames(store, period: str, actor: User, scores: engine.Scores | None = None) -> dict[str, pd.DataFrame]:
    """One frame per group: a row per unit (rank order: 名次, 单位), a column per item of the
    group's scheme in the scheme's order (``名称(满分)``; bonus items ``[加分]名称``, penalty items
    ``[扣分]名称`` with the points they take away as a negative number), then 总分 and 等次.
    A cell is the item's points; blank where the unit has no such item."""
    period, scores, units = _period_results(store, period, actor, scores)
    items = scores.items
    items = items[items["period"] == period]
    penalty = (items["kind"] == "penalty").to_numpy()
    points = engine.round2(np.where(penalty, -items["points"].to_numpy(float), items["points"].to_numpy(float)))
    items = items.assign(cell=points)
    out = {}
    for g in _group_order(units["group"], load_template()):
        rows = units[units["group"] == g]
        part = items[items["group"] == g]
        columns = part.drop_duplicates("item_id")
        labels = [f"[扣分]{n}" if k == "penalty" else f"[加分]{n}" if k == "bonus" else f"{n}({fmt(float(m))})"
                  for n, k, m in zip(columns["name"], columns["kind"], columns["max"])]
        seen: dict[str, int] = {}
        for i, label in enumerate(labels):                 # two items of one name stay two columns
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                labels[i] = f"{label}[{columns['item_id'].iloc[i]}]"
        cells = (part.pivot_table(index="unit_code", columns="item_id", values="cell", aggfunc="first")
                 .reindex(index=rows["unit_code"], columns=columns["item_id"]))
        frame = pd.DataFrame({"名次": [rank_label(r, t) for r, t in zip(rows["rank"], rows["tied"])],
                              "单位": rows["unit_name"].to_numpy()})
        frame = pd.concat([frame, pd.DataFrame(cells.to_numpy(), columns=labels)], axis=1)
        frame["总分"] = rows["total"].to_numpy()
        frame["等次"] = [gr + ("(否决)" if isinstance(v, str) else "") for gr, v in zip(rows["grade"], rows["veto"])]
        out[g] = frame
    return out


def score_table_xlsx(store, period: str, actor: User) -> bytes:
    """考评得分明细表 as an Excel workbook (office only): per group, the long sheet (every unit's
    items with points, lost points and the reason) and beside it the unit × item matrix."""
    require(actor, "bulletin")
    period = periods.parse_period(period)
    scores = engine.score(store, [periods.previous(period), period])
    long = score_table_frames(store, period, actor, scores)
    matrix = score_matrix_frames(store, period, actor, scores)
    sheets = {}
    for g, frame in long.items():
        sheets[g] = frame
        sheets[g + MATRIX_SUFFIX] = matrix[g]
    return to_xlsx_bytes(sheets)
