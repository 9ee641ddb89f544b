"""Figures of the autoregressive page (lecture 2-4): pure builders, numpy in, plotly out.

- ``joint_figure``: the model density q_θ(x¹, x²) next to p, with the slice x¹ = c marked;
- ``marginal_figure``: q_θ(x¹) against the true p(x¹) (quadrature of the exact target density);
- ``conditional_figure``: q_θ(x² | x¹ = c) against the true p(x² | x¹ = c);
- ``sequential_figure``: sequential sampling, x¹ drawn first (points on the x¹ axis), then x².
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from genlib.viz.animation import animated_scatter
from genlib.viz.core import (
    DATA_COLOR,
    MODEL_COLOR,
    Bounds,
    as_numpy,
    f32,
    panels,
    square_layout,
    style,
)
from genlib.viz.fields import density_trace

__all__ = ["LABELS", "joint_figure", "marginal_figure", "conditional_figure", "sequential_figure"]

#: default (English) texts; pages pass translated ones
LABELS: dict[str, str] = {
    "q_joint": "q_θ(x¹, x²)",
    "p_joint": "p(x¹, x²)",
    "slice": "slice x¹ = c",
    "q_marg": "q_θ(x¹)",
    "p_marg": "p(x¹) (quadrature)",
    "q_cond": "q_θ(x² | x¹ = c)",
    "p_cond": "p(x² | x¹ = c)",
    "density": "density",
    "samples": "samples",
    "step": "step",
}


def _lab(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**LABELS, **(labels or {})}


def joint_figure(
    log_q: Any,
    log_p: Any,
    xs: Any,
    ys: Any,
    bounds: Bounds,
    c: float | None = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """q_θ (left) and p (right) on the same grid and colour range; a vertical line at x¹ = c."""
    lab = _lab(labels)
    lq, lp = as_numpy(log_q), as_numpy(log_p)
    finite = np.concatenate([lq[np.isfinite(lq)], lp[np.isfinite(lp)]])
    zmax = float(np.exp(finite.max())) if finite.size else None
    figs = []
    for lg, name in ((lq, lab["q_joint"]), (lp, lab["p_joint"])):
        f = go.Figure([density_trace(lg, xs, ys, name=name, zmax=zmax)])
        if c is not None:
            f.add_trace(
                go.Scatter(
                    x=[c, c], y=[bounds[2], bounds[3]], mode="lines", name=lab["slice"],
                    line={"color": MODEL_COLOR, "width": 2, "dash": "dash"}, hoverinfo="skip",
                    showlegend=False,
                )
            )  # fmt: skip
        square_layout(f, bounds)
        figs.append(f)
    fig = panels(figs, [lab["q_joint"], lab["p_joint"]])
    fig.data[0].showscale = True
    return fig


def _curves(
    grid: Any,
    q: Any,
    p: Any,
    q_name: str,
    p_name: str,
    xtitle: str,
    ytitle: str,
    title: str | None,
    height: int,
) -> go.Figure:
    g = f32(grid)
    fig = go.Figure(
        [
            go.Scatter(
                x=g, y=f32(p), mode="lines", name=p_name, line={"color": DATA_COLOR, "width": 3}
            ),
            go.Scatter(
                x=g,
                y=f32(q),
                mode="lines",
                name=q_name,
                line={"color": MODEL_COLOR, "width": 2.5, "dash": "dash"},
            ),
        ]
    )
    style(fig, title=title, height=height)
    fig.update_xaxes(title={"text": xtitle}, range=[float(g[0]), float(g[-1])])
    fig.update_yaxes(title={"text": ytitle}, rangemode="tozero")
    return fig


def marginal_figure(
    x1: Any,
    q: Any,
    p: Any,
    *,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    height: int = 340,
) -> go.Figure:
    """The first factor q_θ(x¹) against the true marginal p(x¹) on the grid ``x1``."""
    lab = _lab(labels)
    return _curves(x1, q, p, lab["q_marg"], lab["p_marg"], "x¹", lab["density"], title, height)


def conditional_figure(
    x2: Any,
    q: Any,
    p: Any,
    *,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    height: int = 340,
) -> go.Figure:
    """The second factor q_θ(x² | x¹ = c) against the true conditional p(x² | x¹ = c)."""
    lab = _lab(labels)
    return _curves(x2, q, p, lab["q_cond"], lab["p_cond"], "x²", lab["density"], title, height)


def sequential_figure(
    frames: Any,
    frame_labels: Sequence[str],
    bounds: Bounds,
    *,
    background: Sequence[go.BaseTraceType] = (),
    labels: Mapping[str, str] | None = None,
    slider_prefix: str = "",
) -> go.Figure:
    """Sequential sampling ``frames (F, N, 2)`` (``Autoregressive.trajectory``): the points first
    slide along x¹ to their draw from q_θ(x¹), then along x² to their draw from q_θ(x² | x¹)."""
    lab = _lab(labels)
    return animated_scatter(
        frames, bounds, list(frame_labels), name=lab["samples"], marker_color=MODEL_COLOR,
        background=list(background), slider_prefix=slider_prefix, size=4.0, duration_ms=60,
    )  # fmt: skip
