"""Figures of the SDE and flow-matching pages (lecture 4-4 / 4-5): the exact vs model (PF-ODE /
flow) density and conditional flow-matching paths. Pure builders: arrays in, plotly figures out.
(The learned-vs-exact field figure is ``genlib.viz.diffusion.field_comparison_figure``.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from genlib.viz.animation import animated_scatter, trail_xy
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

__all__ = [
    "likelihood_figure",
    "conditional_paths_figure",
    "log_ratio_trace",
]

RATIO_SCALE = [[0.0, "#2166ac"], [0.5, "#f7f7f7"], [1.0, "#b2182b"]]


def log_ratio_trace(
    log_q: Any,
    log_p: Any,
    xs: Any,
    ys: Any,
    clip: float = 3.0,
    mass_range: float = 9.2,
    name: str = "log q − log p",
) -> go.Heatmap:
    """A diverging heatmap of log q − log p clipped to ±``clip`` (blue: the model puts too little
    mass, red: too much), blank where p < e^(−``mass_range``) max p (there the ratio of two tiny
    numbers says nothing about KL(p‖q))."""
    xs, ys = as_numpy(xs), as_numpy(ys)
    lp = as_numpy(log_p)
    d = as_numpy(log_q) - lp
    d = np.clip(np.nan_to_num(d, nan=0.0, posinf=clip, neginf=-clip), -clip, clip)
    d = np.where(lp > np.nanmax(lp) - mass_range, d, np.nan).reshape(len(ys), len(xs))
    return go.Heatmap(
        x=f32(xs),
        y=f32(ys),
        z=d,
        zmin=-clip,
        zmax=clip,
        colorscale=RATIO_SCALE,
        name=name,
        hovertemplate="(%{x:.2f}, %{y:.2f}): %{z:.3g}<extra>" + name + "</extra>",
    )


def likelihood_figure(
    xs: Any,
    ys: Any,
    log_p: Any,
    log_q: Any,
    bounds: Bounds,
    *,
    titles: Sequence[str] = ("exact p(x)", "model q_θ(x)", "log q_θ − log p"),
    names: Sequence[str] = ("p(x)", "q_θ(x)"),
    height: int = 470,
) -> go.Figure:
    """Exact density, model density (same colour range) and their log ratio, side by side."""
    lp, lq = as_numpy(log_p), as_numpy(log_q)
    top = float(np.exp(np.nanmax(np.where(np.isfinite(lp), lp, -np.inf))))
    figs = []
    for lv, name in ((lp, names[0]), (lq, names[1])):
        fig = go.Figure([density_trace(lv, xs, ys, name=name, zmax=top)])
        style(fig, height=height)
        figs.append(square_layout(fig, bounds))
    fig = go.Figure([log_ratio_trace(lq, lp, xs, ys)])
    style(fig, height=height)
    figs.append(square_layout(fig, bounds))
    return panels(figs, list(titles), height=height).update_layout(showlegend=False)


def conditional_paths_figure(
    frames: Any,
    bounds: Bounds,
    frame_labels: Sequence[str] | None = None,
    *,
    background: Sequence[go.BaseTraceType] = (),
    title: str | None = None,
    slider_prefix: str = "τ = ",
    height: int = 540,
) -> go.Figure:
    """Conditional flows x̃_τ(x) (``frames (F, N, 2)``, frame 0 = noise): every whole path is drawn
    (light) and the particles move along them from noise to their data point (marked ×)."""
    xs = as_numpy(frames)
    n = xs.shape[1]
    px, py = trail_xy(xs, xs.shape[0] - 1, n, 0)
    lines = go.Scatter(
        x=px,
        y=py,
        mode="lines",
        line={"color": "#c4a484", "width": 1},
        name="x̃_τ(x), 0 ≤ τ ≤ 1",
        hoverinfo="skip",
    )
    ends = go.Scatter(
        x=f32(xs[-1, :, 0]),
        y=f32(xs[-1, :, 1]),
        mode="markers",
        marker={"size": 7, "color": DATA_COLOR, "symbol": "x"},
        name="x ~ p",
        hoverinfo="skip",
    )
    return animated_scatter(
        xs,
        bounds,
        frame_labels,
        name="x̃_τ",
        marker_color=MODEL_COLOR,
        background=list(background) + [lines, ends],
        title=title,
        slider_prefix=slider_prefix,
        size=6.0,
        opacity=0.9,
        height=height,
    )
