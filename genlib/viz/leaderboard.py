"""Leaderboard charts: every family on one target (pure Altair; a DataFrame in, a chart out).

Columns are renamed to plain field names before charting: Vega-Lite reads ``.``, ``[`` and ``]``
in a field name as nested access, so a column like "exact KL(p‖q) [nats]" would chart nothing."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

__all__ = ["ratio_chart", "kl_chart"]

FONT = 14


def _plain(df: pd.DataFrame, model_col: str, value_col: str) -> pd.DataFrame:
    d = pd.DataFrame({"model": df[model_col].astype(str), "value": pd.to_numeric(df[value_col])})
    return d[d["value"].map(lambda v: v is not None and math.isfinite(v))]


def _style(chart: alt.Chart) -> alt.Chart:
    return chart.configure_axis(labelFontSize=FONT, titleFontSize=FONT).configure_view(stroke=None)


def ratio_chart(df: pd.DataFrame, model_col: str, ratio_col: str, title: str) -> alt.Chart:
    """Horizontal bars of a metric / noise-floor ratio on a log axis, with the floor (1) marked."""
    d = _plain(df, model_col, ratio_col)
    d = d[d["value"] > 0]
    hi = max(2.0, float(d["value"].max()) * 1.3) if len(d) else 10.0
    scale = alt.Scale(type="log", domain=[0.5, hi])
    base = alt.Chart(d).encode(
        y=alt.Y("model:N", sort="x", title=None, axis=alt.Axis(labelOverlap=False))
    )
    bars = base.mark_bar(color="#4c78a8").encode(
        x=alt.X("value:Q", scale=scale, title=title, axis=alt.Axis(format="~g")),
        x2=alt.datum(0.5),  # a log axis has no 0: bars start at the axis' left end
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("value:Q", format=".2f", title=title)],
    )
    text = base.mark_text(align="left", dx=4, fontSize=FONT - 2).encode(
        x=alt.X("value:Q", scale=scale), text=alt.Text("value:Q", format=".2f")
    )
    floor = (
        alt.Chart(pd.DataFrame({"x": [1.0]}))
        .mark_rule(color="#e45756", strokeDash=[4, 3])
        .encode(x=alt.X("x:Q", scale=scale))
    )
    return _style((bars + text + floor).properties(height=max(160, 34 * len(d) + 20)))


def kl_chart(df: pd.DataFrame, model_col: str, kl_col: str, title: str) -> alt.Chart:
    """Horizontal bars of exact KL(p‖q) in nats (models with a density only)."""
    d = _plain(df, model_col, kl_col)
    base = alt.Chart(d).encode(
        y=alt.Y("model:N", sort="x", title=None, axis=alt.Axis(labelOverlap=False))
    )
    bars = base.mark_bar(color="#54a24b").encode(
        x=alt.X("value:Q", title=title, axis=alt.Axis(format=".3~f", tickCount=5)),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("value:Q", format=".4f", title=title)],
    )
    text = base.mark_text(align="left", dx=4, fontSize=FONT - 2).encode(
        x="value:Q", text=alt.Text("value:Q", format=".3f")
    )
    return _style((bars + text).properties(height=max(160, 34 * len(d) + 20)))
