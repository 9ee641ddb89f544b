"""Figures of the Boltzmann-machine page (lecture 2-2, 2-3): pure builders, numpy in, plotly out.

- ``free_energy_figure``: the marginal ("free") energy landscape E_θ(x) as a heatmap with
  contours, optionally with points on top;
- ``mixture_figure``: the RBM as a Gaussian mixture — the 2^H component means b + W h sized by
  their weights π_h, over the model density;
- ``chains_figure``: block-Gibbs chains as an animation (with trails);
- ``phases_figure``: positive phase (data) against negative phase (MC samples) particles, or the
  negative-phase particles recorded during training as an animation.
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
    PALETTE,
    Bounds,
    as_numpy,
    f32,
    square_layout,
    style,
)
from genlib.viz.fields import contour_trace, density_trace

__all__ = [
    "SIGN_LABELS",
    "sign_figure",
    "LABELS",
    "energy_trace",
    "free_energy_figure",
    "mixture_figure",
    "chains_figure",
    "phases_figure",
]

ENERGY_SCALE = "Viridis"

#: default (English) texts; pages pass translated ones
LABELS: dict[str, str] = {
    "energy": "E_θ(x) − min",
    "data": "data x ~ p (positive phase)",
    "negative": "MC samples y ~ q_θ (negative phase)",
    "components": "component means b + W h (size ∝ π_h)",
    "density": "q_θ(x)",
    "chains": "Gibbs chains",
    "paths": "chain paths",
    "step": "training step",
}


def _lab(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**LABELS, **(labels or {})}


def energy_trace(
    energy: Any,
    xs: Any,
    ys: Any,
    *,
    clip: float = 12.0,
    name: str = "E_θ(x) − min",
    showscale: bool = True,
) -> go.Heatmap:
    """The energy on the grid, shifted so its minimum is 0 and clipped at ``clip`` (low = probable)."""
    xs, ys = as_numpy(xs), as_numpy(ys)
    e = as_numpy(energy).reshape(len(ys), len(xs))
    e = np.where(np.isfinite(e), e, np.nan)
    e = np.minimum(e - np.nanmin(e), clip)
    return go.Heatmap(
        x=f32(xs), y=f32(ys), z=e, colorscale=ENERGY_SCALE, reversescale=True, zmin=0.0, zmax=clip,
        showscale=showscale, name=name, colorbar={"title": {"text": name, "side": "right"}, "thickness": 12},
        hovertemplate="(%{x:.2f}, %{y:.2f}): %{z:.2f}<extra></extra>",
    )  # fmt: skip


def free_energy_figure(
    energy: Any,
    xs: Any,
    ys: Any,
    bounds: Bounds,
    *,
    points: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    clip: float = 12.0,
    title: str | None = None,
) -> go.Figure:
    """E_θ(x) on the grid (heatmap + contours of −E) with optional labelled point clouds."""
    lab = _lab(labels)
    fig = go.Figure([energy_trace(energy, xs, ys, clip=clip, name=lab["energy"])])
    fig.add_trace(
        contour_trace(-as_numpy(energy), xs, ys, levels=10, color="#f9fafb", name="−E", floor=-clip)
    )
    for i, (name, pts) in enumerate((points or {}).items()):
        p = as_numpy(pts).reshape(-1, 2)
        fig.add_trace(
            go.Scatter(
                x=f32(p[:, 0]), y=f32(p[:, 1]), mode="markers", name=name,
                marker={"size": 4, "color": [MODEL_COLOR, DATA_COLOR, PALETTE[2]][i % 3], "opacity": 0.7},
                hoverinfo="skip",
            )
        )  # fmt: skip
    style(fig, title=title)
    return square_layout(fig, bounds)


def mixture_figure(
    log_q: Any,
    xs: Any,
    ys: Any,
    bounds: Bounds,
    log_weights: Any,
    means: Any,
    *,
    labels: Mapping[str, str] | None = None,
    max_components: int = 4096,
    title: str | None = None,
) -> go.Figure:
    """The exact density q_θ with the mixture's component means sized by weight (the heaviest
    ``max_components`` only)."""
    lab = _lab(labels)
    lw = as_numpy(log_weights).ravel()
    mu = as_numpy(means).reshape(-1, 2)
    order = np.argsort(-lw)[:max_components]
    w = np.exp(lw[order])
    size = 4 + 26 * np.sqrt(w / max(float(w.max()), 1e-300))
    fig = go.Figure([density_trace(log_q, xs, ys, name=lab["density"])])
    fig.add_trace(
        go.Scatter(
            x=f32(mu[order, 0]), y=f32(mu[order, 1]), mode="markers", name=lab["components"],
            marker={"size": f32(size), "color": MODEL_COLOR, "opacity": 0.8, "line": {"width": 1, "color": "#ffffff"}},
            customdata=f32(w), hovertemplate="(%{x:.2f}, %{y:.2f}) π=%{customdata:.3g}<extra></extra>",
        )
    )  # fmt: skip
    style(fig, title=title)
    return square_layout(fig, bounds)


def chains_figure(
    frames: Any,
    frame_labels: Sequence[str],
    bounds: Bounds,
    *,
    background: Sequence[go.BaseTraceType] = (),
    trails: int = 20,
    labels: Mapping[str, str] | None = None,
    slider_prefix: str = "",
    height: int = 500,
    max_frames: int = 60,
) -> go.Figure:
    """Block-Gibbs chains ``frames (F, N, 2)`` animated, with the paths of ``trails`` chains;
    long chains are thinned to ``max_frames`` evenly spaced frames (first and last kept)."""
    lab = _lab(labels)
    xs = as_numpy(frames)
    keep = np.unique(
        np.linspace(0, xs.shape[0] - 1, min(xs.shape[0], max(2, max_frames))).round().astype(int)
    )
    return animated_scatter(
        xs[keep], bounds, [str(frame_labels[i]) for i in keep], name=lab["chains"], trail_name=lab["paths"], marker_color=MODEL_COLOR, trails=trails,
        trail_length=0, background=list(background), slider_prefix=slider_prefix, height=height, size=4.0,
    )  # fmt: skip


def phases_figure(
    data: Any,
    negative: Any,
    bounds: Bounds,
    *,
    background: Sequence[go.BaseTraceType] = (),
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Positive phase (data points, whose energy the update lowers) against negative phase (MC
    samples, whose energy it raises)."""
    lab = _lab(labels)
    fig = go.Figure(list(background))
    for pts, name, c in ((data, lab["data"], DATA_COLOR), (negative, lab["negative"], MODEL_COLOR)):
        p = as_numpy(pts).reshape(-1, 2)
        fig.add_trace(
            go.Scatter(
                x=f32(p[:, 0]), y=f32(p[:, 1]), mode="markers", name=name,
                marker={"size": 5, "color": c, "opacity": 0.7, "line": {"width": 0}}, hoverinfo="skip",
            )
        )  # fmt: skip
    style(fig, title=title)
    return square_layout(fig, bounds)


SIGN_LABELS: dict[str, str] = {
    "correct": "correct sign: θ − ε(⟨∇E⟩_p − ⟨∇E⟩_q)",
    "slide": "slide's sign: θ + ε(⟨∇E⟩_p − ⟨∇E⟩_q)",
    "kl": "KL(p‖q_θ) [nats]",
    "step": "training step",
}


def sign_figure(
    steps: Any,
    kl: Mapping[str, Any],
    *,
    labels: Mapping[str, str] | None = None,
    height: int = 360,
) -> go.Figure:
    """Exact KL(p‖q_θ) against the step for each update sign (``kl``: sign -> values), log y."""
    lab = {**SIGN_LABELS, **(labels or {})}
    fig = go.Figure()
    colours = {"correct": PALETTE[2], "slide": PALETTE[1]}
    for sign, values in kl.items():
        y = np.asarray(values, dtype=np.float64)
        y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
        fig.add_trace(
            go.Scatter(
                x=np.asarray(steps, dtype=np.float64), y=y, mode="lines+markers",
                name=lab.get(sign, sign), line={"color": colours.get(sign), "width": 2.5},
                marker={"size": 5},
            )
        )  # fmt: skip
    style(fig, height=height)
    fig.update_xaxes(title={"text": lab["step"]}, gridcolor="#eceff3")
    fig.update_yaxes(title={"text": lab["kl"]}, type="log", gridcolor="#eceff3")
    return fig
