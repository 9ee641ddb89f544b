"""Figures of the VAE page (lecture 3-2): pure builders, numpy in, plotly figure out.

- ``colour_values(x, by)``: one number per data point (its angle about the data mean, or a
  coordinate) so that a point and its code r_φ(z|x) share a colour;
- ``latent_data_figure(...)``: data space (points + the decoder manifold μ_θ(latent grid)) next to
  latent space (the encoder means μ_φ(x) over the prior's 1σ/2σ circles and the latent grid);
- ``samples_figure(...)``: samples of q_θ (with decoder noise, or the decoder means) over the exact
  target density;
- ``elbo_terms_figure(history)``: reconstruction and KL terms (and −ELBO) against the step;
- ``bounds_figure(table)``: the importance-weighted bound against K next to the ELBO, the
  quadrature log q_θ(x) and −S(p).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from genlib.viz.core import PALETTE, Bounds, as_numpy, f32, loss_curve, square_layout, style
from genlib.viz.fields import density_trace

__all__ = [
    "LABELS",
    "ColourBy",
    "colour_values",
    "polylines",
    "latent_data_figure",
    "samples_figure",
    "elbo_terms_figure",
    "bounds_figure",
]

ColourBy = Literal["angle", "x1", "x2"]
CYCLIC = "Phase"  # a cyclic colour scale for angles
LINEAR = "Viridis"
MANIFOLD_COLOR = "#4b5563"

#: default (English) texts; pages pass their translated ones
LABELS: dict[str, str] = {
    "data": "data x ~ p",
    "latent": "latent space: encoder means μ_φ(x)",
    "data_panel": "data space",
    "manifold": "decoder mean μ_θ(z) on a latent grid",
    "grid": "latent grid",
    "prior": "prior q_Z: 1σ, 2σ",
    "codes": "μ_φ(x)",
    "std_axis": "σ_φ(x)",
    "samples": "samples x ~ q_θ",
    "means": "decoder means μ_θ(z)",
    "density": "p(x)",
    "recon": "reconstruction −⟨log q_θ(x|z)⟩",
    "kl": "KL(r_φ(z|x) ‖ q_Z)",
    "loss": "−ELBO",
    "step": "step",
    "nats": "nats",
    "iwae": "IWAE bound (K samples)",
    "elbo": "ELBO",
    "log_q": "log q_θ(x) (quadrature)",
    "neg_entropy": "−S(p) = ⟨log p⟩_p",
    "k_axis": "K (importance samples)",
    "bound_axis": "mean over x ~ p [nats]",
    "colour": "colour",
}


def _lab(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**LABELS, **(labels or {})}


def colour_values(x: Any, by: ColourBy = "angle") -> np.ndarray:
    """A colour coordinate per point ``x (N, 2)``: the angle about the mean of ``x`` (in
    [−π, π]) or the x₁ / x₂ coordinate."""
    x = as_numpy(x).reshape(-1, 2)
    if by == "x1":
        return x[:, 0]
    if by == "x2":
        return x[:, 1]
    c = x - x.mean(0)
    return np.arctan2(c[:, 1], c[:, 0])


def polylines(curves: Any) -> tuple[np.ndarray, np.ndarray]:
    """Curves ``(L, P, 2)`` joined into one trace with NaN gaps: x, y arrays of length L·(P+1)."""
    c = as_numpy(curves)
    c = np.concatenate([c, np.full((c.shape[0], 1, 2), np.nan)], axis=1).reshape(-1, 2)
    return f32(c[:, 0]), f32(c[:, 1])


def _manifold_trace(manifold: Any, name: str, width: float) -> go.Scatter:
    """The decoder manifold (polylines of decoder means) as one line trace."""
    mx, my = polylines(manifold)
    return go.Scatter(
        x=mx,
        y=my,
        mode="lines",
        line={"color": MANIFOLD_COLOR, "width": width},
        name=name,
        hoverinfo="skip",
    )


def _marker(colour: np.ndarray, by: ColourBy, size: float, showscale: bool, title: str) -> dict:
    lo, hi = (-np.pi, np.pi) if by == "angle" else (float(colour.min()), float(colour.max()))
    return {
        "size": size,
        "color": f32(colour),
        "colorscale": CYCLIC if by == "angle" else LINEAR,
        "cmin": lo,
        "cmax": hi,
        "opacity": 0.75,
        "line": {"width": 0},
        "showscale": showscale,
        "colorbar": {"title": {"text": title}, "thickness": 12, "len": 0.8},
    }


def _circle(r: float, n: int = 120) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def latent_data_figure(
    x: Any,
    colour: Any,
    z_mean: Any,
    manifold: Any,
    bounds: Bounds,
    *,
    z_std: Any = None,
    latent_bounds: Bounds = (-3.5, 3.5, -3.5, 3.5),
    latent_grid: Any = None,
    by: ColourBy = "angle",
    colour_title: str | None = None,
    labels: Mapping[str, str] | None = None,
    height: int = 480,
) -> go.Figure:
    """Data space (left: points ``x (N, 2)`` coloured by ``colour (N,)`` and the decoder manifold
    ``(L, P, 2)``) next to latent space (right: the encoder means ``z_mean (N, d)`` in the same
    colours; a 2D latent over the prior circles and the latent grid ``(L, P, 2)`` whose image is
    the manifold; a 1D latent as (μ_φ(x), σ_φ(x)) using ``z_std (N, 1)``)."""
    lab = _lab(labels)
    x = as_numpy(x).reshape(-1, 2)
    colour = as_numpy(colour).reshape(-1)
    zm = as_numpy(z_mean)
    zm = zm.reshape(len(zm), -1)
    d = zm.shape[1]
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=[lab["data_panel"], lab["latent"]], horizontal_spacing=0.12
    )
    fig.add_trace(
        _manifold_trace(manifold, lab["manifold"], width=1.2),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=f32(x[:, 0]),
            y=f32(x[:, 1]),
            mode="markers",
            marker=_marker(colour, by, 4.5, True, colour_title or lab["colour"]),
            name=lab["data"],
            hovertemplate="(%{x:.2f}, %{y:.2f})<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if d == 2:
        for r, dash in ((1.0, "solid"), (2.0, "dash")):
            c = _circle(r)
            fig.add_trace(
                go.Scatter(
                    x=f32(c[:, 0]),
                    y=f32(c[:, 1]),
                    mode="lines",
                    line={"color": "#9aa4b2", "width": 1.5, "dash": dash},
                    name=lab["prior"],
                    showlegend=r == 1.0,
                    hoverinfo="skip",
                ),
                row=1,
                col=2,
            )
        if latent_grid is not None:
            gx, gy = polylines(latent_grid)
            fig.add_trace(
                go.Scatter(
                    x=gx,
                    y=gy,
                    mode="lines",
                    line={"color": MANIFOLD_COLOR, "width": 0.8},
                    opacity=0.5,
                    name=lab["grid"],
                    hoverinfo="skip",
                ),
                row=1,
                col=2,
            )
        zx, zy = zm[:, 0], zm[:, 1]
    else:
        zx = zm[:, 0]
        zy = as_numpy(z_std).reshape(-1) if z_std is not None else np.zeros_like(zx)
    fig.add_trace(
        go.Scatter(
            x=f32(zx),
            y=f32(zy),
            mode="markers",
            marker=_marker(colour, by, 4.5, False, lab["colour"]),
            name=lab["codes"],
            hovertemplate="(%{x:.2f}, %{y:.2f})<extra></extra>",
        ),
        row=1,
        col=2,
    )
    style(fig, height=height)
    square_layout(fig, bounds, row=1, col=1)
    if d == 2:
        square_layout(fig, latent_bounds, row=1, col=2, xtitle="z₁", ytitle="z₂")
    else:
        lo, hi = latent_bounds[0], latent_bounds[1]
        top = max(1.5, float(np.nanmax(zy)) * 1.1) if len(zy) else 1.5
        fig.update_xaxes(range=[lo, hi], title={"text": "z"}, row=1, col=2)
        fig.update_yaxes(range=[0.0, top], title={"text": lab["std_axis"]}, row=1, col=2)
    fig.update_layout(legend={"y": -0.12, "yanchor": "top"}, margin={"b": 80})
    return fig


def samples_figure(
    samples: Any,
    log_p: Any,
    xs: Any,
    ys: Any,
    bounds: Bounds,
    *,
    means: Any = None,
    manifold: Any = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    height: int = 480,
) -> go.Figure:
    """Samples of q_θ ``(N, 2)`` (and optionally the decoder means and the manifold) over the exact
    target density heatmap ``log_p`` on the grid ``xs × ys``."""
    lab = _lab(labels)
    fig = go.Figure([density_trace(log_p, xs, ys, name=lab["density"])])
    if manifold is not None:
        fig.add_trace(_manifold_trace(manifold, lab["manifold"], width=1.0))
    s = as_numpy(samples).reshape(-1, 2)
    fig.add_trace(
        go.Scatter(
            x=f32(s[:, 0]),
            y=f32(s[:, 1]),
            mode="markers",
            marker={"size": 3.5, "color": PALETTE[1], "opacity": 0.6, "line": {"width": 0}},
            name=lab["samples"],
        )
    )
    if means is not None:
        m = as_numpy(means).reshape(-1, 2)
        fig.add_trace(
            go.Scatter(
                x=f32(m[:, 0]),
                y=f32(m[:, 1]),
                mode="markers",
                marker={"size": 3.5, "color": PALETTE[4], "opacity": 0.8, "line": {"width": 0}},
                name=lab["means"],
            )
        )
    style(fig, title=title, height=height)
    return square_layout(fig, bounds)


def elbo_terms_figure(
    history: Sequence[Mapping[str, float]],
    *,
    labels: Mapping[str, str] | None = None,
    height: int = 340,
) -> go.Figure:
    """The two terms of −ELBO against the step: reconstruction, KL, and their sum."""
    lab = _lab(labels)
    rows = [
        {"step": r["step"], lab["recon"]: r["recon"], lab["kl"]: r["kl"], lab["loss"]: r["loss"]}
        for r in history
        if {"step", "recon", "kl", "loss"} <= set(r)
    ]
    fig = loss_curve(
        rows, [lab["recon"], lab["kl"], lab["loss"]], height=height, xlabel=lab["step"]
    )
    fig.update_yaxes(title={"text": lab["nats"]})
    return fig


def bounds_figure(
    table: Mapping[str, float],
    *,
    neg_entropy: float | None = None,
    entropy: float | None = None,
    labels: Mapping[str, str] | None = None,
    height: int = 380,
) -> go.Figure:
    """IWAE_K against K (log axis) with horizontal lines at the ELBO, the quadrature log q_θ(x)
    and −S(p) (given as ``neg_entropy`` or as the entropy S(p) itself; ``table`` as from
    ``genlib.lab.vae.BoundTable.as_dict``: ``elbo``, ``iwae_<K>``, ``log_q``)."""
    lab = _lab(labels)
    if neg_entropy is None and entropy is not None:
        neg_entropy = -float(entropy)
    ks = sorted(int(k.split("_")[1]) for k in table if k.startswith("iwae_"))
    vals = [table[f"iwae_{k}"] for k in ks]
    fig = go.Figure(
        go.Scatter(
            x=ks,
            y=vals,
            mode="lines+markers",
            name=lab["iwae"],
            line={"color": PALETTE[0], "width": 2.5},
            marker={"size": 9},
            hovertemplate="K=%{x}: %{y:.4f}<extra></extra>",
        )
    )
    lines = [("elbo", PALETTE[1], "dot"), ("log_q", PALETTE[2], "dash")]
    lo, hi = (min(ks), max(ks)) if ks else (1, 10)
    for key, col, dash in lines:
        if key in table:
            fig.add_trace(
                go.Scatter(
                    x=[lo, hi],
                    y=[table[key], table[key]],
                    mode="lines",
                    name=f"{lab[key]} = {table[key]:.4f}",
                    line={"color": col, "dash": dash, "width": 2},
                )
            )
    if neg_entropy is not None:
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[neg_entropy, neg_entropy],
                mode="lines",
                name=f"{lab['neg_entropy']} = {neg_entropy:.4f}",
                line={"color": "#6b7280", "dash": "longdash", "width": 1.5},
            )
        )
    style(fig, height=height)
    fig.update_xaxes(type="log", title={"text": lab["k_axis"]}, showgrid=True, gridcolor="#eceff3")
    fig.update_yaxes(title={"text": lab["bound_axis"]}, showgrid=True, gridcolor="#eceff3")
    fig.update_layout(
        legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top"}
    )
    return fig
