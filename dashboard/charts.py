"""Plotly figure builders: plain DataFrames in, figures out; no Streamlit here (tested alone)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from scoring.labels import GRADE_COLORS, GRADE_ORDER  # noqa: E402 - the one palette (app, badges, 通报)

MAIN = "#1f4e79"
MEAN = "#7f8c8d"
BEST = "#2e7d32"
OWN = "#d35400"          # a unit user's own unit, wherever it is marked
FONT = "Noto Sans CJK SC, Noto Sans SC, Microsoft YaHei, sans-serif"
# plotly_white's layout (white paper, light grid); its per-trace defaults are left out: every trace
# here sets its own colours, and copying them into each figure cost ~25 ms a chart. It is the
# process's default template (the app's figures are all made here), which plotly applies to a new
# figure without validating it again: ~7 ms a chart less than passing it to each figure.
TEMPLATE = go.layout.Template(layout=pio.templates["plotly_white"].layout)
pio.templates["kaoping"] = TEMPLATE
pio.templates.default = "kaoping"


def _layout(fig: go.Figure, title: str, *, height: int = 360, **kw) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=15)),
                      font=dict(family=FONT, size=13), height=height,
                      margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1), **kw)
    return fig


def _empty(title: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text="暂无数据", showarrow=False, font=dict(size=16, color=MEAN))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title)


def score_trend(history: pd.DataFrame, unit_name: str = "本单位") -> go.Figure:
    """A unit's total per quarter against the group mean and best (``ranking.unit_history``)."""
    title = "得分走势(与组内平均、最高比较)"
    if history.empty:
        return _empty(title)
    x = history["period"].tolist()
    fig = go.Figure()
    fig.add_scatter(x=x, y=history["group_best"], name="组内最高", mode="lines",
                    line=dict(color=BEST, dash="dot"), hovertemplate="%{x} 组内最高 %{y:.2f}<extra></extra>")
    fig.add_scatter(x=x, y=history["group_mean"], name="组内平均", mode="lines",
                    line=dict(color=MEAN, dash="dash"), hovertemplate="%{x} 组内平均 %{y:.2f}<extra></extra>")
    fig.add_scatter(x=x, y=history["total"], name=unit_name, mode="lines+markers+text",
                    line=dict(color=MAIN, width=3), text=[f"{v:.2f}" for v in history["total"]],
                    textposition="top center", hovertemplate="%{x} 总分 %{y:.2f}<extra></extra>")
    fig.update_yaxes(title="总分")
    fig.update_xaxes(type="category", title=None)
    return _layout(fig, title)


def rank_trend(history: pd.DataFrame) -> go.Figure:
    """A unit's rank per quarter (1 on top), with the group size in the hover."""
    title = "组内名次走势"
    if history.empty:
        return _empty(title)
    text = [f"{int(r)}/{int(n)}" for r, n in zip(history["rank"], history["n_in_group"])]
    fig = go.Figure(go.Scatter(x=history["period"].tolist(), y=history["rank"], mode="lines+markers+text",
                               text=text, textposition="bottom center", line=dict(color=MAIN, width=3),
                               hovertemplate="%{x} 第%{y}名<extra></extra>", name="名次"))
    n_max = int(history["n_in_group"].max())
    fig.update_yaxes(title="名次", autorange=False, range=[n_max + 1, 0], dtick=max(1, n_max // 5))
    fig.update_xaxes(type="category", title=None)
    return _layout(fig, title, showlegend=False)


def rank_intervals(robust: pd.DataFrame, own_code: str | None = None) -> go.Figure:
    """Each unit's 5th–95th percentile rank as a bar from rank_low to rank_high, its published rank
    as a dot (``analytics.robustness``); units in published order, 1 on top."""
    title = "名次区间(评定项±25%、部分权重±20%扰动1,000次的90%区间)"
    if robust.empty:
        return _empty(title)
    df = robust.sort_values(["rank", "unit_code"]).reset_index(drop=True)
    names = [f"{n}({u})" for n, u in zip(df["unit_name"], df["unit_code"])]
    colors = [BEST if u == own_code else MAIN for u in df["unit_code"]]
    fig = go.Figure()
    fig.add_bar(y=names, x=(df["rank_high"] - df["rank_low"] + 0.6).tolist(), base=(df["rank_low"] - 0.3).tolist(),
                orientation="h", marker_color=colors, opacity=0.35, name="90%区间",
                customdata=df[["rank_low", "rank_high"]].to_numpy(),
                hovertemplate="%{y}:第%{customdata[0]}–%{customdata[1]}名<extra></extra>")
    fig.add_scatter(y=names, x=df["rank"], mode="markers", marker=dict(color=colors, size=8), name="公布名次",
                    hovertemplate="%{y}:第%{x}名<extra></extra>")
    n = int(df["rank_high"].max())
    fig.update_xaxes(title="名次", range=[0.3, n + 0.7], dtick=max(1, n // 10), side="top")
    fig.update_yaxes(autorange="reversed", title=None)
    return _layout(fig, title, height=max(300, 22 * len(df) + 90))


def section_compare(df: pd.DataFrame) -> go.Figure:
    """Sections: the unit's points, the group mean and best, against the section max (``reports.section_compare``)."""
    title = "各部分得分与组内比较"
    if df.empty:
        return _empty(title)
    names = df["name"].tolist()
    fig = go.Figure()
    fig.add_bar(x=names, y=df["max"], name="满分", marker_color="#e5e8ec",
                hovertemplate="%{x} 满分 %{y:.2f}<extra></extra>")
    fig.add_bar(x=names, y=df["points"], name="本单位", marker_color=MAIN,
                hovertemplate="%{x} 本单位 %{y:.2f}<extra></extra>")
    fig.add_bar(x=names, y=df["group_mean"], name="组内平均", marker_color="#9fb3c8",
                hovertemplate="%{x} 组内平均 %{y:.2f}<extra></extra>")
    fig.add_scatter(x=names, y=df["group_best"], name="组内最高", mode="markers",
                    marker=dict(symbol="line-ew-open", size=28, color=BEST, line=dict(width=3)),
                    hovertemplate="%{x} 组内最高 %{y:.2f}<extra></extra>")
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="分")
    return _layout(fig, title)


def group_trend(trend: pd.DataFrame, own: pd.DataFrame | None = None, own_name: str = "本单位") -> go.Figure:
    """Group mean and median over quarters with the min–max band (``reports.group_trend``, one group);
    ``own`` (period, total): a unit user's own totals, drawn on top."""
    title = "组内得分走势(平均、中位数、最低—最高)"
    if trend.empty:
        return _empty(title)
    x = trend["period"].tolist()
    fig = go.Figure()
    fig.add_scatter(x=x, y=trend["max"], mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip")
    fig.add_scatter(x=x, y=trend["min"], mode="lines", line=dict(width=0), fill="tonexty",
                    fillcolor="rgba(31,78,121,0.12)", name="最低—最高", hoverinfo="skip")
    fig.add_scatter(x=x, y=trend["max"], mode="lines+markers", name="最高", line=dict(color=BEST, dash="dot"),
                    hovertemplate="%{x} 最高 %{y:.2f}<extra></extra>")
    fig.add_scatter(x=x, y=trend["min"], mode="lines+markers", name="最低", line=dict(color="#c62828", dash="dot"),
                    hovertemplate="%{x} 最低 %{y:.2f}<extra></extra>")
    fig.add_scatter(x=x, y=trend["median"], mode="lines+markers", name="中位数", line=dict(color=MEAN, dash="dash"),
                    hovertemplate="%{x} 中位数 %{y:.2f}<extra></extra>")
    fig.add_scatter(x=x, y=trend["mean"], mode="lines+markers", name="平均", line=dict(color=MAIN, width=3),
                    hovertemplate="%{x} 平均 %{y:.2f}<extra></extra>")
    if own is not None and not own.empty:
        own = own[own["period"].isin(x)]
        fig.add_scatter(x=own["period"].tolist(), y=own["total"], mode="lines+markers", name=own_name,
                        line=dict(color=OWN, width=3), marker=dict(symbol="star", size=12),
                        hovertemplate=f"%{{x}} {own_name} %{{y:.2f}}<extra></extra>")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=x)
    fig.update_yaxes(title="总分")
    # six series: the legend goes under the plot, where it does not cover the title
    return _layout(fig, title, height=400).update_layout(
        legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0))


def total_distribution(ranked_group: pd.DataFrame, own_code: str | None = None) -> go.Figure:
    """Box plot of the totals of one group per quarter; ``own_code``: that unit marked in each quarter."""
    title = "各季度得分分布"
    if ranked_group.empty:
        return _empty(title)
    fig = go.Figure()
    for period, part in ranked_group.groupby("period", sort=True):
        fig.add_box(y=part["total"], name=str(period), marker_color=MAIN, boxpoints="outliers",
                    text=part["unit_name"], hovertemplate="%{text} %{y:.2f}<extra></extra>", showlegend=False)
    mine = ranked_group[ranked_group["unit_code"] == own_code] if own_code else ranked_group.iloc[0:0]
    if not mine.empty:
        mine = mine.sort_values("period")
        fig.add_scatter(x=mine["period"].astype(str).tolist(), y=mine["total"], mode="markers", name="本单位",
                        marker=dict(symbol="star", size=14, color=OWN, line=dict(color="white", width=1)),
                        hovertemplate="%{x} 本单位 %{y:.2f}<extra></extra>")
    fig.update_xaxes(type="category")
    fig.update_yaxes(title="总分")
    return _layout(fig, title, showlegend=not mine.empty)


def quarter_totals(rows: pd.DataFrame, own_code: str | None = None) -> go.Figure:
    """One quarter of one group: how many units scored in each 5-point band, the group mean, and
    ``own_code``'s total marked (no unit names: what a unit may see of its peers)."""
    title = "本季度组内得分分布"
    if rows.empty:
        return _empty(title)
    fig = go.Figure(go.Histogram(x=rows["total"], xbins=dict(size=5), marker_color="#9fb3c8",
                                 name="单位数", hovertemplate="%{x}分:%{y}个单位<extra></extra>"))
    mean = float(rows["total"].mean())
    fig.add_vline(x=mean, line=dict(color=MAIN, dash="dash", width=2),
                  annotation=dict(text=f"组内平均 {mean:.2f}", font=dict(color=MAIN)), annotation_position="top left")
    mine = rows[rows["unit_code"] == own_code] if own_code else rows.iloc[0:0]
    if not mine.empty:
        total = float(mine["total"].iloc[0])
        fig.add_vline(x=total, line=dict(color=OWN, width=3),
                      annotation=dict(text=f"本单位 {total:.2f}", font=dict(color=OWN)), annotation_position="top right")
    fig.update_xaxes(title="总分")
    fig.update_yaxes(title="单位数")
    return _layout(fig, title, showlegend=False)


def grade_distribution(dist: pd.DataFrame) -> go.Figure:
    """Stacked counts of each grade per quarter (``reports.grade_distribution``, one group)."""
    title = "各季度等级分布"
    if dist.empty:
        return _empty(title)
    fig = go.Figure()
    present = [g for g in GRADE_ORDER if g in set(dist["grade"])] + sorted(set(dist["grade"]) - set(GRADE_ORDER))
    for g in present:
        part = dist[dist["grade"] == g]
        fig.add_bar(x=part["period"], y=part["units"], name=g, marker_color=GRADE_COLORS.get(g, MEAN),
                    hovertemplate=f"%{{x}} {g} %{{y}}个<extra></extra>")
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category", categoryorder="category ascending")
    fig.update_yaxes(title="单位数")
    return _layout(fig, title)


def section_heatmap(matrix: pd.DataFrame) -> go.Figure:
    """Units × sections, percent of each section's max (``reports.section_matrix``)."""
    title = "各单位分项得分率(%)"
    if matrix.empty:
        return _empty(title)
    height = max(360, min(2400, 22 * len(matrix) + 120))
    fig = go.Figure(go.Heatmap(z=matrix.to_numpy(), x=list(matrix.columns), y=list(matrix.index),
                               colorscale="RdYlGn", zmin=0, zmax=100, colorbar=dict(title="%"),
                               hovertemplate="%{y} · %{x}:%{z:.1f}%<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(side="top", type="category")
    return _layout(fig, title, height=height)


def indicator_bars(values: pd.DataFrame, indicator_name: str) -> go.Figure:
    """One indicator across the units of a group (columns unit_name, value), largest first."""
    title = f"{indicator_name}(各单位)"
    df = values.dropna(subset=["value"]).sort_values("value", ascending=True)
    if df.empty:
        return _empty(title)
    height = max(320, min(2400, 20 * len(df) + 100))
    fig = go.Figure(go.Bar(x=df["value"], y=df["unit_name"], orientation="h", marker_color=MAIN,
                           hovertemplate="%{y}:%{x}<extra></extra>"))
    fig.update_yaxes(type="category")
    return _layout(fig, title, height=height, showlegend=False)
