"""The plotly figure builders, without Streamlit."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard import charts

HISTORY = pd.DataFrame({"period": ["2025Q1", "2025Q2", "2025Q3"], "total": [81.5, 84.25, 90.0],
                        "rank": [5, 3, 1], "n_in_group": [10, 10, 11], "group_mean": [80.0, 81.0, 82.0],
                        "group_best": [92.0, 93.0, 90.0]})


def names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def test_score_trend_has_unit_mean_and_best():
    fig = charts.score_trend(HISTORY, "市教育局")
    assert names(fig) == ["组内最高", "组内平均", "市教育局"]
    assert list(fig.data[-1].text) == ["81.50", "84.25", "90.00"]
    assert "得分走势" in fig.layout.title.text


def test_every_figure_has_the_white_layout_and_the_chinese_font():
    for fig in (charts.score_trend(HISTORY), charts.rank_trend(HISTORY), charts.score_trend(HISTORY.iloc[0:0])):
        spec = fig.to_plotly_json()["layout"]
        assert spec["template"]["layout"]["plot_bgcolor"] == "white"
        assert spec["template"]["layout"]["xaxis"]["gridcolor"] == "#EBF0F8"
        assert "Noto Sans CJK SC" in spec["font"]["family"]


def test_rank_trend_puts_first_on_top():
    fig = charts.rank_trend(HISTORY)
    lo, hi = fig.layout.yaxis.range
    assert lo > hi  # reversed: rank 1 at the top
    assert list(fig.data[0].text) == ["5/10", "3/10", "1/11"]


def test_section_compare_bars():
    df = pd.DataFrame({"section_id": ["org", "site"], "name": ["组织领导", "平台建设"], "points": [8.0, 20.5],
                       "max": [10.0, 25.0], "group_mean": [7.5, 18.0], "group_best": [10.0, 24.0]})
    fig = charts.section_compare(df)
    assert names(fig) == ["满分", "本单位", "组内平均", "组内最高"]
    assert list(fig.data[1].y) == [8.0, 20.5]


def test_group_trend_and_distributions():
    trend = pd.DataFrame({"period": ["2025Q1", "2025Q2"], "mean": [80.0, 82.0], "median": [81.0, 83.0],
                          "min": [55.0, 60.0], "max": [95.0, 96.0]})
    assert "平均" in names(charts.group_trend(trend))
    dist = pd.DataFrame({"period": ["2025Q1", "2025Q1", "2025Q2"], "grade": ["良好", "优秀", "不合格"],
                         "units": [3, 2, 1]})
    fig = charts.grade_distribution(dist)
    assert names(fig) == ["优秀", "良好", "不合格"]  # grade order, not data order
    assert fig.data[0].marker.color == charts.GRADE_COLORS["优秀"]
    ranked = pd.DataFrame({"period": ["2025Q1", "2025Q1", "2025Q2"], "total": [80.0, 90.0, 85.0],
                           "unit_name": ["甲", "乙", "甲"]})
    assert len(charts.total_distribution(ranked).data) == 2


def test_heatmap_and_indicator():
    matrix = pd.DataFrame({"组织领导": [100.0, 50.0], "平台建设": [80.0, 20.0]}, index=["甲", "乙"])
    fig = charts.section_heatmap(matrix)
    assert fig.data[0].zmax == 100 and list(fig.data[0].y) == ["甲", "乙"]
    values = pd.DataFrame({"unit_name": ["甲", "乙", "丙"], "value": [3.0, None, 7.0]})
    fig = charts.indicator_bars(values, "网站错链数")
    assert list(fig.data[0].y) == ["甲", "丙"]  # missing values left out, largest at the top
    assert fig.layout.title.text.startswith("网站错链数")


def test_empty_frames_give_a_placeholder():
    empty = pd.DataFrame(columns=HISTORY.columns)
    for fig in (charts.score_trend(empty), charts.rank_trend(empty), charts.group_trend(empty),
                charts.section_heatmap(pd.DataFrame()), charts.grade_distribution(pd.DataFrame(columns=["grade"]))):
        assert fig.layout.annotations[0].text == "暂无数据"


def test_rank_intervals_draw_each_units_interval_and_rank():
    robust = pd.DataFrame({"unit_code": ["A", "B", "C"], "unit_name": ["甲", "乙", "丙"], "rank": [1, 2, 3],
                           "rank_low": [1, 1, 3], "rank_high": [2, 3, 3], "band": [1, 1, 2]})
    fig = charts.rank_intervals(robust, own_code="B")
    bars, dots = fig.data
    assert list(bars.base) == [0.7, 0.7, 2.7] and [round(x, 1) for x in bars.x] == [1.6, 2.6, 0.6]
    assert list(dots.x) == [1, 2, 3] and dots.marker.color[1] == charts.BEST
    assert charts.rank_intervals(robust.iloc[0:0]).layout.annotations[0].text == "暂无数据"
