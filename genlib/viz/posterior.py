"""Figure of the VAE page's posterior panel (lecture 3-2): the true posterior q_θ(z|x) next to the
encoder r_φ(z|x) of one data point, on the latent grid of ``genlib.lab.vae.vae_posterior``.

Pure builder: numpy in (a ``VaePosterior``), plotly figure out. A 2D latent gives two heatmaps
(each density relative to its maximum) with the other density's contour lines drawn over it; a
1D latent gives the two densities as curves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from genlib.viz.core import DENSITY_SCALE, PALETTE, f32, style

if TYPE_CHECKING:
    from genlib.lab.vae import VaePosterior

__all__ = ["POSTERIOR_LABELS", "posterior_figure"]

POSTERIOR_LABELS: dict[str, str] = {
    "true": "true posterior q_θ(z|x)",
    "encoder": "encoder r_φ(z|x)",
    "density": "density / max",
    "mean": "encoder mean μ_φ(x)",
}


def _rel(log_d: np.ndarray) -> np.ndarray:
    """A log density as density / max (NaN-free)."""
    z = np.asarray(log_d, dtype=np.float64)
    z = np.where(np.isfinite(z), z, -np.inf)
    return np.round(np.exp(z - z.max()), 4)


def _contours(z: np.ndarray, xs: np.ndarray, ys: np.ndarray, colour: str, name: str) -> go.Contour:
    return go.Contour(
        x=f32(xs), y=f32(ys), z=_rel(z),
        contours={"coloring": "none", "start": 0.05, "end": 0.95, "size": 0.15},
        line={"color": colour, "width": 1.6}, showscale=False, name=name, showlegend=True,
        hoverinfo="skip",
    )  # fmt: skip


def _view(axis: np.ndarray, *masses: np.ndarray, level: float = 1e-3) -> list[float]:
    """The part of ``axis`` where any of the (relative, marginal) ``masses`` exceeds ``level``,
    padded by 15 % (the quadrature window is wider: it holds the tails too)."""
    keep = np.zeros(len(axis), dtype=bool)
    for m in masses:
        keep |= m >= level * m.max()
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return [float(axis[0]), float(axis[-1])]
    lo, hi = float(axis[idx[0]]), float(axis[idx[-1]])
    pad = 0.15 * max(hi - lo, float(axis[1] - axis[0]))
    return [max(lo - pad, float(axis[0])), min(hi + pad, float(axis[-1]))]


def posterior_figure(
    post: VaePosterior, *, labels: Mapping[str, str] | None = None, height: int = 420
) -> go.Figure:
    """q_θ(z|x) (left) and r_φ(z|x) (right) on the same latent window, each with the other's
    contours (2D latent), or both as curves (1D latent)."""
    lab = {**POSTERIOR_LABELS, **(labels or {})}
    true_c, enc_c = PALETTE[1], PALETTE[0]
    if len(post.axes) == 1:
        z = post.axes[0]
        fig = go.Figure()
        for log_d, name, c in ((post.log_post, lab["true"], true_c), (post.log_enc, lab["encoder"], enc_c)):  # fmt: skip
            fig.add_trace(go.Scatter(x=f32(z), y=f32(np.exp(log_d)), mode="lines", name=name, line={"color": c, "width": 2.5}))  # fmt: skip
        style(fig, height=height)
        fig.update_xaxes(title={"text": "z"})
        return fig
    xs, ys = post.axes
    fig = make_subplots(rows=1, cols=2, subplot_titles=[lab["true"], lab["encoder"]], horizontal_spacing=0.1)  # fmt: skip
    for col, (main, other, oc, oname) in enumerate(
        ((post.log_post, post.log_enc, enc_c, lab["encoder"]), (post.log_enc, post.log_post, true_c, lab["true"])), start=1
    ):  # fmt: skip
        fig.add_trace(
            go.Heatmap(
                x=f32(xs), y=f32(ys), z=_rel(main), colorscale=DENSITY_SCALE, zmin=0, zmax=1,
                showscale=col == 2, colorbar={"title": {"text": lab["density"]}},
                hovertemplate="z=(%{x:.3f}, %{y:.3f})<br>%{z:.3f}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
        tr = _contours(other, xs, ys, oc, oname)
        tr.showlegend = col == 1 or oname == lab["true"]
        fig.add_trace(tr, row=1, col=col)
        fig.add_trace(
            go.Scatter(
                x=[float(post.enc_mean[0])], y=[float(post.enc_mean[1])], mode="markers",
                marker={"symbol": "x", "size": 10, "color": "#111827"}, name=lab["mean"],
                showlegend=col == 1,
            ),
            row=1, col=col,
        )  # fmt: skip
    rel = [_rel(post.log_post), _rel(post.log_enc)]
    xr = _view(xs, *(r.max(0) for r in rel))
    yr = _view(ys, *(r.max(1) for r in rel))
    for col in (1, 2):
        fig.update_xaxes(title={"text": "z₁"}, range=xr, row=1, col=col)
        fig.update_yaxes(title={"text": "z₂"}, range=yr, row=1, col=col)
    style(fig, height=height)
    fig.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.16, "xanchor": "left", "x": 0.0},
        margin={"b": 90},
    )
    return fig
