"""The DDPM bound's terms per step and its total next to S(p) and the PF-ODE NLL (lecture 4-3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from genlib.viz.core import as_numpy, color, f32, style

__all__ = ["bound_terms_figure"]


def bound_terms_figure(
    t: Any,
    terms: Mapping[str, Any],
    totals: Mapping[str, float],
    *,
    entropy: float,
    entropy_name: str = "S(p)",
    titles: tuple[str, str] = ("", ""),
    xlabel: str = "t",
    ylabel: str = "nats",
    height: int = 380,
) -> go.Figure:
    """Left: ``terms[name] (K,)`` against the steps ``t (K,)`` on log-log axes (one line per σ_t²
    choice; the terms must be positive, e.g. the KL terms t ≥ 2). Right: bars of ``totals`` (name -> nats per point) with S(p) as a dashed line (the
    bound's floor); bars of non-finite totals are left out."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], subplot_titles=titles)
    tv = f32(as_numpy(t))
    for i, (name, y) in enumerate(terms.items()):
        fig.add_trace(
            go.Scatter(
                x=tv, y=as_numpy(y), mode="lines", name=name, line={"color": color(i), "width": 2}
            ),
            row=1,
            col=1,
        )
    names = [k for k, v in totals.items() if v == v and abs(v) != float("inf")]
    fig.add_trace(
        go.Bar(
            x=names,
            y=[totals[k] for k in names],
            marker={"color": [color(i) for i in range(len(names))]},
            text=[f"{totals[k]:.3f}" for k in names],
            textposition="outside",
            name="Σ",
            showlegend=False,
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=names or [entropy_name],
            y=[entropy] * max(len(names), 1),
            mode="lines",
            line={"color": "#1f2933", "dash": "dash", "width": 2},
            name=f"{entropy_name} = {entropy:.3f}",
        ),
        row=1,
        col=2,
    )
    style(fig, height=height)
    fig.update_layout(margin={"t": 95}, legend={"y": 1.16})  # the legend above the subplot titles
    fig.update_xaxes(
        type="log", title={"text": xlabel}, row=1, col=1, showgrid=True, gridcolor="#eceff3"
    )
    fig.update_yaxes(type="log", title={"text": ylabel}, row=1, col=1, gridcolor="#eceff3")
    lo = min([entropy, *[totals[k] for k in names]])
    hi = max([entropy, *[totals[k] for k in names]])
    pad = 0.15 * (hi - lo) + 0.2
    fig.update_yaxes(range=[lo - pad, hi + pad], title={"text": ylabel}, row=1, col=2)
    return fig
