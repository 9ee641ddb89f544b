"""Sample quality against the number of function evaluations, log-log (lectures 4-3, 4-4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from genlib.viz.core import color, style

__all__ = ["nfe_figure"]

_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down")


def nfe_figure(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    *,
    floor: float | None = None,
    floor_name: str = "noise floor",
    title: str | None = None,
    xlabel: str = "NFE",
    ylabel: str = "error",
    slopes: Sequence[int] = (),
    height: int = 420,
) -> go.Figure:
    """One line per sampler (name -> (NFE, error)) on log-log axes; a dashed horizontal line at
    ``floor`` (the metric between two target samples; ``None``/0: none) and thin grey reference
    lines of slope −k for k in ``slopes`` (order-k convergence), anchored at the first curve."""
    fig = go.Figure()
    finite = [
        (x, y)
        for xs, ys in curves.values()
        for x, y in zip(xs, ys, strict=True)
        if y == y and 0 < y < float("inf")
    ]
    for i, (name, (xs, ys)) in enumerate(curves.items()):
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y == y and 0 < y < float("inf")]
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pts],
                y=[p[1] for p in pts],
                mode="lines+markers",
                name=name,
                line={"color": color(i), "width": 2},
                marker={"symbol": _SYMBOLS[i % len(_SYMBOLS)], "size": 8},
            )
        )
    if finite and slopes:
        x0 = min(p[0] for p in finite)
        x1 = max(p[0] for p in finite)
        y0 = max(p[1] for p in finite if p[0] == x0)
        for k in slopes:
            fig.add_trace(
                go.Scatter(
                    x=[x0, x1],
                    y=[y0, y0 * (x0 / x1) ** k],
                    mode="lines",
                    name=f"∝ NFE^−{k}",
                    line={"color": "#9aa5b1", "dash": "dot", "width": 1},
                )
            )
    if floor:
        xs = [p[0] for p in finite] or [1, 2]
        fig.add_trace(
            go.Scatter(
                x=[min(xs), max(xs)],
                y=[floor, floor],
                mode="lines",
                name=floor_name,
                line={"color": "#1f2933", "dash": "dash", "width": 2},
            )
        )
    style(fig, title=title, height=height)
    fig.update_xaxes(type="log", title={"text": xlabel}, showgrid=True, gridcolor="#eceff3")
    fig.update_yaxes(type="log", title={"text": ylabel}, showgrid=True, gridcolor="#eceff3")
    return fig
