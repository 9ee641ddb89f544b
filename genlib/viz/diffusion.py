"""Figure builders shared by the diffusion pages (score matching, NCSN, DDPM, SDE, flow matching).

Pure functions: numpy/torch arrays in, plotly figures out.

- ``reverse_trajectory_figure``: particles from noise to data played client-side, a few full
  trails, and optionally a second panel with the per-frame data predictions x̂_0 (DDPM).
- ``field_comparison_figure``: THE learned-vs-exact field figure of every score/velocity family
  (a ``genlib.lab.fields.FieldComparison`` unpacked): learned field, exact field (same arrow
  scale) and the error as a heatmap (with the data overlaid, to see where it was trained).
- ``final_samples_figure``: two or more final clouds side by side (e.g. plain vs annealed Langevin).
- ``schedule_curves``: noise-schedule curves (ᾱ_t, β_t, σ_i …) against the step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from genlib.viz.animation import MAX_FRAMES, MAX_PARTICLES, add_animation, trail_xy
from genlib.viz.core import (
    DATA_COLOR,
    MODEL_COLOR,
    Bounds,
    as_numpy,
    color,
    f32,
    scatter_trace,
    square_layout,
    style,
)
from genlib.viz.fields import quiver_trace

__all__ = [
    "reverse_trajectory_figure",
    "field_comparison_figure",
    "final_samples_figure",
    "schedule_curves",
    "shared_arrow_scale",
    "ERROR_SCALE",
]

ERROR_SCALE = [
    [0.0, "#ffffff"],
    [0.2, "#fde0c5"],
    [0.5, "#f59e62"],
    [0.8, "#d55e00"],
    [1.0, "#7f2704"],
]


def _legend_above_titles(fig: go.Figure) -> go.Figure:
    """Subplot titles sit at the top of each panel: lift the legend above them."""
    fig.update_layout(margin={"t": 95}, legend={"y": 1.16, "yanchor": "bottom"})
    return fig


def _thin(F: int) -> np.ndarray:
    return np.unique(np.linspace(0, F - 1, min(F, MAX_FRAMES)).round().astype(int))


def _particles(
    x: np.ndarray, name: str, c: str, size: float, opacity: float, **axes: str
) -> go.Scatter:
    return go.Scatter(
        x=f32(x[:, 0]),
        y=f32(x[:, 1]),
        mode="markers",
        marker={"size": size, "color": c, "opacity": opacity, "line": {"width": 0}},
        name=name,
        hoverinfo="skip",
        **axes,
    )


def reverse_trajectory_figure(
    xs: Any,
    bounds: Bounds,
    labels: Sequence[str] | None = None,
    *,
    x0_preds: Any | None = None,
    trails: int = 8,
    trail_length: int = 0,
    background: Sequence[go.BaseTraceType] = (),
    titles: tuple[str, str] = ("x_t", "x̂_0(x_t)"),
    particle_name: str = "particles",
    pred_name: str = "x̂_0",
    trail_name: str = "trajectories",
    slider_prefix: str = "",
    size: float = 4.5,
    opacity: float = 0.65,
    duration_ms: int = 80,
    height: int = 540,
) -> go.Figure:
    """Particles ``xs (F, N, 2)`` in generation order (frame 0 = noise), animated in fixed
    ``bounds``, with the full paths (``trail_length=0``) of the first ``trails`` particles.

    With ``x0_preds (F, N, 2)`` a second panel shows the data prediction made at each frame;
    both panels share the slider. ``background`` traces (e.g. the target density) are drawn
    under the particles in every panel. Frames are thinned to ``MAX_FRAMES``, particles capped at
    ``MAX_PARTICLES``."""
    x = as_numpy(xs)
    if x.ndim != 3 or x.shape[-1] != 2:
        raise ValueError(f"trajectory must be (F, N, 2), got {x.shape}")
    keep = _thin(x.shape[0])
    x = x[keep, :MAX_PARTICLES]
    labs = [str(i) for i in keep] if labels is None else [str(labels[i]) for i in keep]
    preds = None if x0_preds is None else as_numpy(x0_preds)[keep, :MAX_PARTICLES]
    k = min(int(trails), x.shape[1])
    cols = 1 if preds is None else 2
    fig = make_subplots(
        rows=1,
        cols=cols,
        subplot_titles=list(titles[:cols]) if cols == 2 else None,
        horizontal_spacing=0.07,
    )
    n_bg = 0
    for j in range(1, cols + 1):
        for tr in background:
            tr = go.Figure(tr).data[0]  # a copy per panel
            if j > 1:
                tr.showlegend = False
                if hasattr(tr, "showscale"):
                    tr.showscale = False
            fig.add_trace(tr, row=1, col=j)
            n_bg += 1
    ax2 = {"xaxis": "x2", "yaxis": "y2"} if cols == 2 else {}

    def dynamic(f: int) -> list[go.BaseTraceType]:
        out: list[go.BaseTraceType] = []
        if k:
            tx, ty = trail_xy(x, f, k, trail_length)
            out.append(
                go.Scatter(
                    x=tx,
                    y=ty,
                    mode="lines",
                    line={"color": MODEL_COLOR, "width": 1.4},
                    name=trail_name,
                    hoverinfo="skip",
                    xaxis="x",
                    yaxis="y",
                )
            )
        out.append(_particles(x[f], particle_name, DATA_COLOR, size, opacity, xaxis="x", yaxis="y"))
        if preds is not None:
            out.append(_particles(preds[f], pred_name, color(2), size, opacity, **ax2))
        return out

    for tr in dynamic(0):
        fig.add_trace(tr, row=1, col=2 if getattr(tr, "xaxis", "x") == "x2" else 1)
    idx = list(range(n_bg, len(fig.data)))
    frames = [go.Frame(data=dynamic(f), traces=idx, name=str(f)) for f in range(len(keep))]
    style(fig, height=height)
    square_layout(fig, bounds, row=1, col=1)
    if cols == 2:
        square_layout(fig, bounds, row=1, col=2, ytitle=None)
        _legend_above_titles(fig)
    return add_animation(fig, frames, labs, duration_ms=duration_ms, prefix=slider_prefix)


def shared_arrow_scale(*fields: Any, quantile: float = 0.95) -> float:
    """A common arrow length reference for several fields: the ``quantile`` of all their norms
    (longer arrows are clipped to it, so a few huge vectors far from the data do not shrink the
    rest)."""
    norms = np.concatenate([np.linalg.norm(as_numpy(v).reshape(-1, 2), axis=1) for v in fields])
    norms = norms[np.isfinite(norms)]
    return float(np.quantile(norms, quantile)) if norms.size else 1.0


def _arrows(
    pts: np.ndarray, v: np.ndarray, cap: float, length: float, c: str, name: str
) -> go.Scatter:
    """Arrows with a shared scale: a vector of norm ``cap`` (or more: clipped) gets ``length``."""
    v = np.where(np.isfinite(v), v, 0.0)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    v = v * np.minimum(1.0, cap / np.maximum(n, 1e-12))  # clip at cap
    vmax = float(np.linalg.norm(v, axis=1).max()) if len(v) else 0.0
    # quiver_trace rescales so its longest arrow has length ``scale``: undo that for a shared scale
    scale = length * vmax / max(cap, 1e-12)
    return quiver_trace(pts, v, scale=max(scale, 1e-9), color=c, name=name)


def _log_p_contours(gx: np.ndarray, gy: np.ndarray, log_p: Any | None) -> list[go.Contour]:
    """Grey contours of ``log_p (G, G)`` (12 nats below its maximum), or none."""
    if log_p is None:
        return []
    lp = as_numpy(log_p).reshape(len(gy), len(gx))
    if not np.isfinite(lp).any():
        return []
    top = float(np.nanmax(np.where(np.isfinite(lp), lp, -np.inf)))
    lo = top - 12.0
    z = np.maximum(np.where(np.isfinite(lp), lp, lo), lo)
    return [
        go.Contour(
            x=f32(gx),
            y=f32(gy),
            z=z,
            contours={"coloring": "none", "start": lo, "end": top, "size": 1.5},
            line={"color": "#b8c2cc", "width": 1},
            showscale=False,
            name="log p",
            hoverinfo="skip",
            showlegend=False,
        )
    ]


def _error_range(err: np.ndarray, log_p: Any | None, mass_range: float) -> float:
    """Top of the error colour range: the 98 % quantile where p has mass (log p > max −
    ``mass_range``; far from the data the error is large and would wash out the picture, so the
    colour saturates there), else over the whole grid."""
    region = err[np.isfinite(err)]
    if log_p is not None:
        lp = as_numpy(log_p).reshape(err.shape)
        if np.isfinite(lp).any():
            mask = np.isfinite(err) & (
                lp > np.nanmax(np.where(np.isfinite(lp), lp, -np.inf)) - mass_range
            )
            if mask.any():
                region = err[mask]
    return float(np.quantile(region, 0.98)) if region.size else 1.0


def field_comparison_figure(
    xs: Any,
    ys: Any,
    learned: Any,
    exact: Any | None,
    bounds: Bounds,
    *,
    error: Any | None = None,
    log_p: Any | None = None,
    points: Any | None = None,
    titles: Sequence[str] = ("learned", "exact", "error"),
    names: Sequence[str] = ("s_θ", "∇ log p", "error"),
    points_name: str = "data",
    normalise: bool = False,
    mass_range: float = 8.0,
    height: int = 430,
) -> go.Figure:
    """The one learned-vs-exact field figure of the score and flow pages.

    On one grid (``xs (G,)``, ``ys (G,)``; fields ``(G, G, 2)`` or ``(G*G, 2)`` indexed
    ``[iy, ix]``, e.g. a ``genlib.lab.fields.FieldComparison``): the learned field, the exact field
    (same arrow scale, clipped at the 95 % quantile, or unit arrows with ``normalise``) and a
    heatmap of the error ``(G, G)`` (default ‖learned − exact‖). ``log_p (G, G)`` draws density
    contours under the arrows and sets the error's colour range where p has mass; ``points (M, 2)``
    overlays data on the error panel. ``exact=None`` (no known marginal): the learned panel only.
    ``names`` are the trace names (learned, exact, error)."""
    gx, gy = as_numpy(xs), as_numpy(ys)
    G = len(gx)
    lv = as_numpy(learned).reshape(-1, 2)
    tv = None if exact is None else as_numpy(exact).reshape(-1, 2)
    yy, xx = np.meshgrid(gy, gx, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel()], 1)  # (G*G, 2) row-major like the fields
    spacing = 0.85 * min(gx[1] - gx[0], gy[1] - gy[0]) if G > 1 else 1.0
    cols = 1 if tv is None else 3
    fig = make_subplots(
        rows=1, cols=cols, subplot_titles=list(titles)[:cols], horizontal_spacing=0.05
    )
    contours = _log_p_contours(gx, gy, log_p)
    fields = [lv] if tv is None else [lv, tv]
    if normalise:
        fields = [v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12) for v in fields]
    cap = 1.0 if normalise else shared_arrow_scale(*fields)
    for col, (v, c, name) in enumerate(
        zip(fields, (MODEL_COLOR, "#1f2933"), names[:2], strict=False), start=1
    ):
        for tr in contours:
            fig.add_trace(go.Figure(tr).data[0], row=1, col=col)
        fig.add_trace(_arrows(pts, v, cap, spacing, c, name), row=1, col=col)
    if tv is not None:
        err = (
            np.linalg.norm(lv - tv, axis=1).reshape(G, G)
            if error is None
            else as_numpy(error).reshape(G, G)
        )
        zmax = _error_range(err, log_p, mass_range)
        err_name = names[2] if len(names) > 2 else "error"
        fig.add_trace(
            go.Heatmap(
                x=f32(gx),
                y=f32(gy),
                z=np.round(np.where(np.isfinite(err), err, zmax), 4),
                colorscale=ERROR_SCALE,
                zmin=0.0,
                zmax=max(zmax, 1e-9),
                name=err_name,
                colorbar={
                    "title": {"text": err_name, "side": "right"},
                    "thickness": 12,
                    "len": 0.8,
                },
                hovertemplate="(%{x:.2f}, %{y:.2f}): %{z:.3g}<extra></extra>",
            ),
            row=1,
            col=3,
        )
    if points is not None:
        fig.add_trace(
            scatter_trace(
                points, name=points_name, color_=DATA_COLOR, size=2.5, opacity=0.35, max_points=3000
            ),
            row=1,
            col=cols,
        )
    style(fig, height=height)
    for col in range(1, cols + 1):
        square_layout(fig, bounds, row=1, col=col, ytitle="x₂" if col == 1 else None)
    return _legend_above_titles(fig)


def final_samples_figure(
    clouds: Mapping[str, Any],
    bounds: Bounds,
    *,
    titles: Sequence[str] | None = None,
    background: Sequence[go.BaseTraceType] = (),
    colors: Sequence[str] | None = None,
    size: float = 3.5,
    opacity: float = 0.55,
    height: int = 430,
) -> go.Figure:
    """Point clouds side by side, one panel each (same bounds), over optional ``background``."""
    names = list(clouds)
    n = len(names)
    if n == 0:
        raise ValueError("need at least one cloud")
    fig = make_subplots(
        rows=1, cols=n, subplot_titles=list(titles or names), horizontal_spacing=0.06
    )
    for j, name in enumerate(names, start=1):
        for tr in background:
            tr = go.Figure(tr).data[0]
            if j > 1 and hasattr(tr, "showscale"):
                tr.showscale = False
            tr.showlegend = False
            fig.add_trace(tr, row=1, col=j)
        c = colors[j - 1] if colors is not None else color(j - 1)
        fig.add_trace(
            scatter_trace(clouds[name], name=name, color_=c, size=size, opacity=opacity),
            row=1,
            col=j,
        )
    style(fig, height=height)
    for j in range(1, n + 1):
        square_layout(fig, bounds, row=1, col=j, ytitle="x₂" if j == 1 else None)
    return _legend_above_titles(fig)


def schedule_curves(
    x: Any,
    curves: Mapping[str, Any],
    *,
    xlabel: str = "t",
    log_y: bool = False,
    markers: Mapping[str, tuple[float, float]] | None = None,
    title: str | None = None,
    height: int = 300,
) -> go.Figure:
    """Lines ``curves[name] (len(x),)`` against ``x``; ``markers`` name -> (x, y) highlights a
    point (e.g. ᾱ_T at t = T)."""
    xv = as_numpy(x)
    fig = go.Figure()
    for i, (name, y) in enumerate(curves.items()):
        fig.add_trace(
            go.Scatter(
                x=f32(xv),
                y=as_numpy(y),
                mode="lines",
                name=name,
                line={"color": color(i), "width": 2},
            )
        )
    for i, (name, (mx, my)) in enumerate((markers or {}).items()):
        fig.add_trace(
            go.Scatter(
                x=[mx],
                y=[my],
                mode="markers+text",
                text=[name],
                textposition="top left",
                marker={"size": 10, "color": color(i + len(curves)), "symbol": "diamond"},
                name=name,
                showlegend=False,
            )
        )
    style(fig, title=title, height=height)
    fig.update_xaxes(title={"text": xlabel}, showgrid=True, gridcolor="#eceff3")
    fig.update_yaxes(type="log" if log_y else "linear", showgrid=True, gridcolor="#eceff3")
    return fig
