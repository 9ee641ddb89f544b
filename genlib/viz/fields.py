"""Scalar and vector fields on the plane: evaluation grids, density heatmaps, contours, quivers."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go

from genlib.geometry import MAX_GRID_RES, grid
from genlib.viz.core import DENSITY_SCALE, Bounds, as_numpy, f32, square_layout, style

__all__ = [
    "MAX_GRID_RES",
    "grid",
    "density_heatmap",
    "density_trace",
    "contour_trace",
    "quiver_trace",
    "quiver",
]

Scale = Literal["density", "log_density", "relative"]


def _z(logp: Any, res: int, scale: Scale, floor: float) -> np.ndarray:
    lp = as_numpy(logp).reshape(res, res)
    lp = np.where(np.isfinite(lp), lp, -np.inf)
    if scale == "log_density":
        return np.maximum(
            lp, max(floor, float(lp.max()) - 30.0) if np.isfinite(lp.max()) else floor
        )
    z = np.exp(lp - (float(lp.max()) if scale == "relative" and np.isfinite(lp.max()) else 0.0))
    return z


def density_trace(
    logp: Any,
    xs: Any,
    ys: Any,
    *,
    scale: Scale = "density",
    name: str = "p(x)",
    colorscale: Any = DENSITY_SCALE,
    showscale: bool = True,
    floor: float = -30.0,
    decimals: int = 4,
    zmax: float | None = None,
) -> go.Heatmap:
    """A heatmap of a log-density evaluated on ``grid(...)`` points (``logp (res*res,)``).
    ``scale``: the density, its log, or the density relative to its maximum (``relative``, in [0, 1])."""
    xs, ys = as_numpy(xs), as_numpy(ys)
    z = _z(logp, len(xs), scale, floor)
    if scale != "log_density":
        z = np.round(z, decimals) if scale == "relative" else z
    label = {"density": name, "log_density": f"log {name}", "relative": f"{name} / max"}[scale]
    return go.Heatmap(
        x=f32(xs),
        y=f32(ys),
        z=z,
        colorscale=colorscale,
        showscale=showscale,
        zmin=0.0 if scale != "log_density" else None,
        zmax=zmax,
        name=label,
        colorbar={"title": {"text": label, "side": "right"}, "thickness": 12, "len": 0.8},
        hovertemplate="(%{x:.2f}, %{y:.2f}): %{z:.3g}<extra>" + label + "</extra>",
    )


def contour_trace(
    logp: Any,
    xs: Any,
    ys: Any,
    *,
    levels: int = 8,
    color: str = "#1f2933",
    name: str = "log p(x)",
    floor: float = -12.0,
) -> go.Contour:
    """Contour lines of a log-density on the grid (levels between ``max + floor`` and ``max``)."""
    xs, ys = as_numpy(xs), as_numpy(ys)
    lp = as_numpy(logp).reshape(len(ys), len(xs))
    top = float(np.nanmax(np.where(np.isfinite(lp), lp, -np.inf)))
    lo = top + floor
    lp = np.maximum(np.where(np.isfinite(lp), lp, lo), lo)
    return go.Contour(
        x=xs,
        y=ys,
        z=lp,
        contours={"coloring": "none", "start": lo, "end": top, "size": (top - lo) / max(levels, 1)},
        line={"color": color, "width": 1},
        showscale=False,
        name=name,
        hoverinfo="skip",
    )


def density_heatmap(
    logp: Any,
    bounds: Bounds,
    res: int,
    *,
    scale: Scale = "density",
    contours: bool = False,
    title: str | None = None,
    name: str = "p(x)",
    height: int = 460,
) -> go.Figure:
    """A figure of a log-density evaluated on ``grid(bounds, res)``."""
    xs, ys, _ = grid(bounds, res)
    fig = go.Figure([density_trace(logp, xs, ys, scale=scale, name=name)])
    if contours:
        fig.add_trace(contour_trace(logp, xs, ys))
    style(fig, title=title, height=height)
    return square_layout(fig, bounds)


def quiver_trace(
    pts: Any,
    vecs: Any,
    *,
    scale: float = 1.0,
    normalise: bool = False,
    head: float = 0.3,
    color: str = "#1f2933",
    name: str = "field",
    width: float = 1.2,
) -> go.Scatter:
    """Arrows from ``pts (M, 2)`` along ``vecs (M, 2)`` as one line trace (shafts + two head strokes).

    ``normalise``: every arrow gets length ``scale`` (direction only); otherwise vectors are scaled
    so that the longest arrow has length ``scale``."""
    p = as_numpy(pts).reshape(-1, 2)
    v = as_numpy(vecs).reshape(-1, 2)
    v = np.where(np.isfinite(v), v, 0.0)
    norm = np.linalg.norm(v, axis=1, keepdims=True)  # (M, 1)
    if normalise:
        v = scale * v / np.maximum(norm, 1e-12)
    else:
        v = scale * v / max(float(norm.max()), 1e-12)
    tip = p + v
    length = np.linalg.norm(v, axis=1, keepdims=True)
    u = v / np.maximum(length, 1e-12)  # unit direction
    perp = np.stack([-u[:, 1], u[:, 0]], 1)
    h = head * length
    left = tip - h * u + 0.5 * h * perp
    right = tip - h * u - 0.5 * h * perp
    nan = np.full_like(p, np.nan)
    # each arrow: base -> tip, gap, left -> tip -> right, gap   (7 points)
    seg = np.stack([p, tip, nan, left, tip, right, nan], axis=1).reshape(-1, 2)  # (7M, 2)
    return go.Scatter(
        x=f32(seg[:, 0]),
        y=f32(seg[:, 1]),
        mode="lines",
        line={"color": color, "width": width},
        name=name,
        hoverinfo="skip",
        connectgaps=False,
    )


def quiver(
    pts: Any,
    vecs: Any,
    bounds: Bounds,
    *,
    normalise: bool = False,
    scale: float | None = None,
    background: list[go.BaseTraceType] | None = None,
    title: str | None = None,
    name: str = "field",
    height: int = 460,
) -> go.Figure:
    """A vector-field figure; the default arrow scale is ~0.6 of the grid spacing."""
    p = as_numpy(pts).reshape(-1, 2)
    if scale is None:
        m = max(int(round(np.sqrt(len(p)))), 2)
        scale = 0.6 * min(bounds[1] - bounds[0], bounds[3] - bounds[2]) / (m - 1)
    fig = go.Figure(list(background or []))
    fig.add_trace(quiver_trace(p, vecs, scale=scale, normalise=normalise, name=name))
    style(fig, title=title, height=height)
    return square_layout(fig, bounds)
