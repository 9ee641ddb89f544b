"""Live training figures: one frame of a ``genlib.lab.live.LiveView`` over the target's exact
density, and the replay of a job's frames as a Plotly animation ("watch it learn")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from genlib.viz.animation import MAX_FRAMES, add_animation
from genlib.viz.core import DATA_COLOR, MODEL_COLOR, as_numpy, f32, square_layout, style
from genlib.viz.fields import contour_trace, quiver_trace

__all__ = ["live_figure", "replay_figure", "loss_spec", "LIVE_LABELS"]

#: default (English) legend names; pages pass translated ones
LIVE_LABELS: dict[str, str] = {
    "samples": "x ~ q_θ",
    "target": "p(x) (exact)",
    "log_q": "q_θ(x)",
    "D": "σ(D_φ(x))",
    "field": "learned field",
    "field_true": "exact field",
    "lines": "decoded manifold",
    "particles": "Gibbs negatives",
    "dstar": "D* = 0 (p = q̂)",
    "step": "step",
}

_GRID_SCALES = {
    "log_q": [[0.0, "#ffffff"], [0.5, "#c6dbef"], [1.0, "#2171b5"]],
    "D": [[0.0, "#b2182b"], [0.5, "#f7f7f7"], [1.0, "#2166ac"]],
}


def _grid_trace(view: Any, labels: Mapping[str, str]) -> go.Heatmap:
    res = int(view.grid_res)
    x0, x1, y0, y1 = view.bounds
    xs, ys = np.linspace(x0, x1, res), np.linspace(y0, y1, res)
    v = as_numpy(view.grid).reshape(res, res).astype(np.float64)
    if view.grid_kind == "D":
        z = 1.0 / (1.0 + np.exp(-np.clip(v, -30, 30)))  # σ(D) in [0, 1]
        zmin, zmax = 0.0, 1.0
    else:
        v = np.where(np.isfinite(v), v, -np.inf)
        top = float(v.max()) if np.isfinite(v.max()) else 0.0
        z = np.exp(v - top)  # q relative to its maximum
        zmin, zmax = 0.0, 1.0
    name = labels.get(view.grid_kind, view.grid_kind)
    return go.Heatmap(
        x=f32(xs),
        y=f32(ys),
        z=np.round(z, 4),
        zmin=zmin,
        zmax=zmax,
        colorscale=_GRID_SCALES.get(view.grid_kind, "Blues"),
        showscale=view.grid_kind == "D",
        colorbar={"thickness": 10, "len": 0.7},
        opacity=0.85,
        name=name,
        hovertemplate="(%{x:.2f}, %{y:.2f}): %{z:.3f}<extra>" + name + "</extra>",
    )


def _points(x: Any, name: str, color: str, size: float = 4.5) -> go.Scatter:
    p = as_numpy(x).reshape(-1, 2) if x is not None and len(x) else np.zeros((0, 2))
    return go.Scatter(
        x=f32(p[:, 0]),
        y=f32(p[:, 1]),
        mode="markers",
        name=name,
        marker={"size": size, "color": color, "opacity": 0.7, "line": {"width": 0}},
        hoverinfo="skip",
    )


def _lines(view: Any, name: str) -> go.Scatter:
    lines = as_numpy(view.lines)  # (L, P, 2)
    seg = np.concatenate([lines, np.full((lines.shape[0], 1, 2), np.nan)], axis=1).reshape(-1, 2)
    return go.Scatter(
        x=f32(seg[:, 0]),
        y=f32(seg[:, 1]),
        mode="lines",
        name=name,
        line={"color": "#7a3fb0", "width": 1.2},
        hoverinfo="skip",
        connectgaps=False,
    )


def _frame_traces(view: Any, labels: Mapping[str, str], arrow: float) -> list[go.BaseTraceType]:
    out: list[go.BaseTraceType] = []
    if view.grid is not None and view.grid_res:
        out.append(_grid_trace(view, labels))
    if view.lines is not None:
        out.append(_lines(view, labels["lines"]))
    if view.field is not None and view.field_pts is not None:
        if view.field_true is not None:
            out.append(
                quiver_trace(
                    view.field_pts,
                    view.field_true,
                    scale=arrow,
                    normalise=True,
                    color="#e69f00",
                    name=labels["field_true"],
                    width=1.6,
                )
            )
        out.append(
            quiver_trace(
                view.field_pts,
                view.field,
                scale=arrow,
                normalise=True,
                color="#1f2933",
                name=labels["field"],
            )
        )
    dstar = (view.extra or {}).get("dstar")
    if dstar is not None and view.grid_res:
        res = int(view.grid_res)
        x0, x1, y0, y1 = view.bounds
        out.append(
            go.Contour(
                x=f32(np.linspace(x0, x1, res)),
                y=f32(np.linspace(y0, y1, res)),
                z=np.clip(as_numpy(dstar).reshape(res, res), -20, 20),
                contours={"coloring": "none", "start": 0.0, "end": 0.0, "size": 1.0},
                line={"color": "#1f2933", "width": 2, "dash": "dash"},
                showscale=False,
                showlegend=True,
                name=labels["dstar"],
                hoverinfo="skip",
            )
        )
    out.append(_points(view.samples, labels["samples"], MODEL_COLOR))
    if view.particles is not None:
        out.append(_points(view.particles, view.particles_label or labels["particles"], "#009e73"))
    return out


def _background(
    target_grid: tuple[Any, Any, Any] | None, labels: Mapping[str, str]
) -> list[go.BaseTraceType]:
    if target_grid is None:
        return []
    xs, ys, log_p = target_grid
    return [contour_trace(log_p, xs, ys, color=DATA_COLOR, name=labels["target"], levels=6)]


def _arrow(view: Any) -> float:
    x0, x1, _, _ = view.bounds
    g = int(round(np.sqrt(len(view.field_pts)))) if view.field_pts is not None else 12
    return 0.8 * (x1 - x0) / max(g, 2)


def live_figure(
    view: Any,
    *,
    target_grid: tuple[Any, Any, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    height: int = 480,
) -> go.Figure:
    """One live frame: ``view`` (a ``LiveView``) over the exact density contours of the target
    (``target_grid = (xs, ys, log_p)``)."""
    lab = {**LIVE_LABELS, **(labels or {})}
    fig = go.Figure(_background(target_grid, lab) + _frame_traces(view, lab, _arrow(view)))
    style(fig, title=title, height=height)
    if title:  # the title on its own row above the legend
        fig.update_layout(margin={"t": 95}, title={"y": 0.985, "yanchor": "top"})
    return square_layout(fig, view.bounds)


def replay_figure(
    views: Sequence[Any],
    steps: Sequence[int],
    *,
    target_grid: tuple[Any, Any, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    height: int = 540,
    duration_ms: int = 200,
) -> go.Figure:
    """The frames of a job as an animation (at most ``MAX_FRAMES``, evenly thinned), slider
    labelled by training step."""
    if not views:
        raise ValueError("no frames to replay")
    if len(views) != len(steps):
        raise ValueError("one step per frame")
    lab = {**LIVE_LABELS, **(labels or {})}
    keep = np.unique(
        np.linspace(0, len(views) - 1, min(len(views), MAX_FRAMES)).round().astype(int)
    )
    arrow = _arrow(views[0])
    bg = _background(target_grid, lab)
    first = _frame_traces(views[keep[0]], lab, arrow)
    fig = go.Figure(bg + first)
    idx = list(range(len(bg), len(bg) + len(first)))
    frames = []
    for i, k in enumerate(keep):
        traces = _frame_traces(views[k], lab, arrow)
        if len(traces) != len(first):  # a frame without an optional layer: keep the shape
            traces = (traces + first)[: len(first)]
        frames.append(go.Frame(data=traces, traces=idx, name=str(i)))
    style(fig, title=title, height=height)
    square_layout(fig, views[0].bounds)
    redraw = any(isinstance(t, go.Heatmap) for t in first)
    return add_animation(
        fig,
        frames,
        [f"{int(steps[k])}" for k in keep],
        duration_ms=duration_ms,
        redraw=redraw,
        prefix=f"{lab['step']} = ",
    )


def loss_spec(
    history: Sequence[Mapping[str, float]],
    title: str,
    height: int = 260,
    *,
    names: Mapping[str, str] | None = None,
    xlabel: str = "step",
) -> dict:
    """The live loss curve as a plain Plotly figure dict (cheap to build on every rerun of a
    live panel: no trace validation), at most 400 points; ``names`` maps the logged key to its
    legend name, ``xlabel`` is the step axis title."""
    rows = list(history)[-400:]
    key = "loss" if rows and "loss" in rows[0] else next((k for k in rows[0] if k != "step"), "")
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": [float(r.get("step", i)) for i, r in enumerate(rows)],
                "y": [float(r.get(key, float("nan"))) for r in rows],
                "line": {"color": "#0072B2", "width": 2},
                "name": (names or {}).get(key, key),
            }
        ],
        "layout": {
            "height": height,
            "margin": {"l": 50, "r": 10, "t": 36, "b": 36},
            "title": {"text": title, "font": {"size": 14}},
            "template": "plotly_white",
            "xaxis": {"title": {"text": xlabel}},
            "showlegend": False,
        },
    }
