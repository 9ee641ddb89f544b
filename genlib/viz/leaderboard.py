"""Leaderboard charts: every family on one target (pure Altair; a DataFrame in, a chart out)."""

from __future__ import annotations

import altair as alt
import pandas as pd

__all__ = ["ratio_chart", "kl_chart"]


def ratio_chart(df: pd.DataFrame, model_col: str, ratio_col: str, title: str) -> alt.Chart:
    """Horizontal bars of a metric / noise-floor ratio on a log axis, with the floor (1) marked."""
    base = alt.Chart(df).encode(y=alt.Y(f"{model_col}:N", sort="x", title=None))
    bars = base.mark_bar(color="#4c78a8").encode(
        x=alt.X(f"{ratio_col}:Q", scale=alt.Scale(type="log"), title=title),
        tooltip=[model_col, alt.Tooltip(f"{ratio_col}:Q", format=".2f")],
    )
    floor = (
        alt.Chart(pd.DataFrame({"x": [1.0]}))
        .mark_rule(color="#e45756", strokeDash=[4, 3])
        .encode(x="x:Q")
    )
    return (bars + floor).properties(height=max(120, 28 * len(df)))


def kl_chart(df: pd.DataFrame, model_col: str, kl_col: str, title: str) -> alt.Chart:
    """Horizontal bars of exact KL(p‖q) in nats (models with a density only)."""
    d = df.dropna(subset=[kl_col])
    return (
        alt.Chart(d)
        .mark_bar(color="#54a24b")
        .encode(
            y=alt.Y(f"{model_col}:N", sort="x", title=None),
            x=alt.X(f"{kl_col}:Q", title=title),
            tooltip=[model_col, alt.Tooltip(f"{kl_col}:Q", format=".3f")],
        )
        .properties(height=max(120, 28 * len(d)))
    )
