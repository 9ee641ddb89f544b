"""Figures of the SDE and flow-matching pages (lecture 4-4 / 4-5): a learned vector field next to
the exact one with an error map, the exact vs model (PF-ODE / flow) density, and conditional
flow-matching paths. Pure builders: arrays in, plotly figures out."""

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
from genlib.viz.fields import contour_trace, density_trace, quiver_trace

__all__ = [
    "ERROR_SCALE",
    "field_comparison_figure",
    "likelihood_figure",
    "conditional_paths_figure",
    "log_ratio_trace",
]

ERROR_SCALE = [[0.0, "#ffffff"], [0.3, "#fdd49e"], [0.7, "#ef6548"], [1.0, "#7f0000"]]
RATIO_SCALE = [[0.0, "#2166ac"], [0.5, "#f7f7f7"], [1.0, "#b2182b"]]


def _arrows(
    pts: np.ndarray,
    vecs: np.ndarray,
    spacing: float,
    common_max: float,
    normalise: bool,
    name: str,
    color: str,
):
    own = float(np.linalg.norm(vecs, axis=1).max()) if len(vecs) else 0.0
    scale = 0.8 * spacing if normalise else 0.9 * spacing * own / max(common_max, 1e-12)
    return quiver_trace(
        pts, vecs, scale=max(scale, 1e-9), normalise=normalise, name=name, color=color
    )


def field_comparison_figure(
    pts: Any,
    learned: Any,
    true: Any | None,
    error: Any | None,
    bounds: Bounds,
    *,
    xs: Any = None,
    ys: Any = None,
    log_p: Any | None = None,
    titles: Sequence[str] = ("learned", "exact", "error"),
    names: Sequence[str] = ("s_θ(x, t)", "∇ log p_t(x)", "error"),
    normalise: bool = True,
    mass_range: float = 8.0,
    height: int = 470,
) -> go.Figure:
    """Up to three panels on a ``res × res`` grid (``pts (res², 2)`` from ``viz.grid``): the learned
    field, the exact field (same arrow scale unless ``normalise``), and a heatmap of the error
    ``(res²,)``. ``log_p (res²,)`` (the exact marginal at that time) is drawn as contours under the
    arrows; the error's colour range is set where log p_t > max − ``mass_range``. ``true``/``error``
    may be None (target without a known marginal): one panel."""
    p = as_numpy(pts).reshape(-1, 2)
    res = int(round(np.sqrt(len(p))))
    if res * res != len(p):
        raise ValueError("pts must be a square grid from viz.grid")
    xs = np.unique(p[:, 0]) if xs is None else as_numpy(xs)
    ys = np.unique(p[:, 1]) if ys is None else as_numpy(ys)
    spacing = min(bounds[1] - bounds[0], bounds[3] - bounds[2]) / max(res - 1, 1)
    v_l = np.nan_to_num(as_numpy(learned).reshape(-1, 2))
    v_t = None if true is None else np.nan_to_num(as_numpy(true).reshape(-1, 2))
    common = max(
        float(np.linalg.norm(v, axis=1).max()) for v in [v_l] + ([v_t] if v_t is not None else [])
    )
    bg = (
        [contour_trace(log_p, xs, ys, color="#9aa4b2", name="log p_t")] if log_p is not None else []
    )

    def field_fig(vecs: np.ndarray, name: str, col: str) -> go.Figure:
        fig = go.Figure(bg + [_arrows(p, vecs, spacing, common, normalise, name, col)])
        style(fig, height=height)
        return square_layout(fig, bounds)

    figs = [field_fig(v_l, names[0], MODEL_COLOR)]
    if v_t is not None:
        figs.append(field_fig(v_t, names[1], DATA_COLOR))
    if error is not None:
        err = np.nan_to_num(as_numpy(error).reshape(res, res), nan=0.0, posinf=0.0)
        # colour range from where p_t has mass (far from the data the error is large and would
        # wash out the picture; there the colour saturates)
        region = err
        if log_p is not None:
            lp = as_numpy(log_p).reshape(res, res)
            mask = lp > np.nanmax(lp) - mass_range
            region = err[mask] if mask.any() else err
        zmax = float(np.quantile(region, 0.98)) if region.size else 1.0
        heat = go.Heatmap(
            x=f32(xs),
            y=f32(ys),
            z=err,
            zmin=0.0,
            zmax=max(zmax, 1e-9),
            colorscale=ERROR_SCALE,
            name=names[2],
            hovertemplate="(%{x:.2f}, %{y:.2f}): %{z:.3g}<extra>" + names[2] + "</extra>",
        )
        fig = go.Figure([heat] + bg)
        style(fig, height=height)
        figs.append(square_layout(fig, bounds))
    fig = panels(figs, list(titles)[: len(figs)], height=height)
    return fig.update_layout(showlegend=False)


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
