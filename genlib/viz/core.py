"""Shared figure machinery: the house style, fixed square axes, scatter clouds, loss curves, panels.

Every builder is pure: numpy (or torch) arrays in, a ``plotly.graph_objects.Figure`` out. Axis ranges
are fixed to the given bounds ``(xmin, xmax, ymin, ymax)`` with an equal aspect ratio, so figures of
the same target line up and animations do not rescale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

__all__ = [
    "Bounds",
    "PALETTE",
    "DATA_COLOR",
    "MODEL_COLOR",
    "DENSITY_SCALE",
    "MAX_DISPLAY_POINTS",
    "as_numpy",
    "f32",
    "color",
    "square_layout",
    "style",
    "scatter",
    "scatter_trace",
    "loss_curve",
    "panels",
    "pad_bounds",
    "fit_width",
    "union_bounds",
]

from genlib.geometry import Bounds, union_bounds  # noqa: E402  (re-exported)

# Okabe–Ito: colour-blind safe, prints well on white slides.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
DATA_COLOR = PALETTE[0]  # target samples p
MODEL_COLOR = PALETTE[1]  # model samples q_θ
# white -> light teal -> deep blue: points in warm colours stay readable on top of it
DENSITY_SCALE = [
    [0.0, "#ffffff"],
    [0.15, "#e0f0f5"],
    [0.4, "#9ecae1"],
    [0.7, "#4292c6"],
    [1.0, "#08306b"],
]
MAX_DISPLAY_POINTS = 50_000
FONT = "'Source Sans 3', 'Source Sans Pro', 'Helvetica Neue', Arial, 'Noto Sans CJK JP', sans-serif"
HOUSE_TEMPLATE = "plotly_white"
# Every new figure starts from the house template: setting it per figure
# (``update_layout(template=...)``) validates and copies the whole template, ≈ 70-90 ms a
# figure on one CPU core (measured: 25-35 % of a later visitor's page time), while the default
# is applied when the figure is created at a few ms. Same figure JSON either way.
pio.templates.default = HOUSE_TEMPLATE


def as_numpy(x: Any) -> np.ndarray:
    """A float64 numpy array from a numpy array, list or (any-device) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def f32(x: Any) -> np.ndarray:
    """Coordinates for a trace: float32 (plotly ships numpy arrays as compact binary)."""
    return np.asarray(as_numpy(x), dtype=np.float32)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def pad_bounds(bounds: Bounds, frac: float = 0.0) -> Bounds:
    x0, x1, y0, y1 = (float(b) for b in bounds)
    dx, dy = (x1 - x0) * frac, (y1 - y0) * frac
    return (x0 - dx, x1 + dx, y0 - dy, y1 + dy)


def _axis(lo: float, hi: float, title: str | None) -> dict[str, Any]:
    return {
        "range": [lo, hi],
        "autorange": False,
        "zeroline": False,
        "showgrid": True,
        "gridcolor": "#eceff3",
        "linecolor": "#9aa4b2",
        "mirror": True,
        "ticks": "outside",
        "title": {"text": title} if title else None,
    }


def style(
    fig: go.Figure, *, title: str | None = None, height: int = 460, font_size: int = 14
) -> go.Figure:
    """The house style: white background, Okabe–Ito colours, compact margins, legend on top."""
    if pio.templates.default != HOUSE_TEMPLATE:
        # Streamlit's plotly module sets its own default when it is first imported (after this
        # one): restore ours once, and give this figure the house template by hand
        pio.templates.default = HOUSE_TEMPLATE
        fig.update_layout(template=HOUSE_TEMPLATE)
    fig.update_layout(
        font={"family": FONT, "size": font_size, "color": "#1f2933"},
        title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": font_size + 3}}
        if title
        else None,
        height=height,
        margin={"l": 50, "r": 20, "t": 60 if title else 30, "b": 45},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0.0},
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
        colorway=PALETTE,
    )
    return fig


def square_layout(
    fig: go.Figure,
    bounds: Bounds,
    *,
    row: int | None = None,
    col: int | None = None,
    xtitle: str | None = "x₁",
    ytitle: str | None = "x₂",
) -> go.Figure:
    """Fix the axes of one (sub)plot to ``bounds`` with an equal aspect ratio."""
    x0, x1, y0, y1 = (float(b) for b in bounds)
    kw = {} if row is None else {"row": row, "col": col}
    fig.update_xaxes(**_axis(x0, x1, xtitle), constrain="domain", **kw)
    # the y axis of this subplot is tied to its own x axis
    xref = "x"
    if row is not None:
        sub = fig.get_subplot(row, col)
        xref = sub.xaxis.plotly_name.replace("axis", "")
    fig.update_yaxes(
        **_axis(y0, y1, ytitle), scaleanchor=xref, scaleratio=1, constrain="domain", **kw
    )
    return fig


def fit_width(fig: go.Figure, colorbar_px: int = 95) -> go.Figure:
    """Give a single square (equal-aspect) plot the width that fits it, so the legend and colour
    bar sit next to it instead of across an empty strip. Figures with several subplots, or with
    a width already set, are left alone."""
    lay = fig.layout
    axes = [k for k in lay.to_plotly_json() if k.startswith("xaxis")]
    if lay.width is not None or len(axes) > 1 or lay.yaxis.scaleanchor is None:
        return fig
    m = lay.margin
    height = lay.height or 460
    side = height - (m.t or 0) - (m.b or 0)
    has_bar = any(tr.type == "heatmap" and tr.showscale is not False for tr in fig.data)
    fig.update_layout(width=int(side + (m.l or 0) + (m.r or 0) + (colorbar_px if has_bar else 0)))
    return fig


def _subsample(x: np.ndarray, max_points: int) -> np.ndarray:
    return x if len(x) <= max_points else x[:max_points]  # iid samples: the first n are a sample


def scatter_trace(
    x: Any,
    *,
    name: str = "samples",
    color_: str | None = None,
    size: float = 4.0,
    opacity: float = 0.6,
    max_points: int = MAX_DISPLAY_POINTS,
    showlegend: bool = True,
) -> go.Scatter | go.Scattergl:
    """One point cloud ``(N, 2)`` as a trace (WebGL above 5000 points)."""
    pts = _subsample(as_numpy(x).reshape(-1, 2), max_points)
    cls = go.Scattergl if len(pts) > 5000 else go.Scatter
    return cls(
        x=f32(pts[:, 0]),
        y=f32(pts[:, 1]),
        mode="markers",
        name=name,
        showlegend=showlegend,
        marker={"size": size, "color": color_, "opacity": opacity, "line": {"width": 0}},
        hovertemplate="(%{x:.3f}, %{y:.3f})<extra>" + name + "</extra>",
    )


def scatter(
    clouds: Any | Mapping[str, Any],
    bounds: Bounds,
    *,
    title: str | None = None,
    size: float = 4.0,
    opacity: float = 0.6,
    background: Sequence[go.BaseTraceType] = (),
    height: int = 460,
    max_points: int = MAX_DISPLAY_POINTS,
) -> go.Figure:
    """One or more labelled point clouds: ``scatter({"p (data)": x, "q_θ": y}, bounds)``.
    ``background`` traces (a density heatmap, contours, arrows) are drawn first."""
    if not isinstance(clouds, Mapping):
        clouds = {"samples": clouds}
    fig = go.Figure(list(background))
    for i, (label, pts) in enumerate(clouds.items()):
        fig.add_trace(
            scatter_trace(
                pts, name=label, color_=color(i), size=size, opacity=opacity, max_points=max_points
            )
        )
    style(fig, title=title, height=height)
    return square_layout(fig, bounds)


def loss_curve(
    history: Sequence[Mapping[str, float]] | Mapping[str, Sequence[float]],
    keys: Sequence[str] | None = None,
    *,
    title: str | None = None,
    log_y: bool = False,
    height: int = 320,
    xlabel: str = "step",
    key_names: Mapping[str, str] | None = None,
) -> go.Figure:
    """Loss (and other logged values) against the step: ``history`` is ``TrainResult.history``
    (rows with a ``step``) or a mapping name -> values (one per step); ``key_names`` maps a logged
    key to its legend name (default: the key)."""
    if isinstance(history, Mapping):
        series = {k: as_numpy(v) for k, v in history.items()}
        n = max((len(v) for v in series.values()), default=0)
        steps = np.asarray(series.pop("step", np.arange(1, n + 1)), dtype=np.float64)
    else:
        rows = list(history)
        steps = np.array([r.get("step", i + 1) for i, r in enumerate(rows)], dtype=np.float64)
        names = [k for k in (rows[0].keys() if rows else []) if k != "step"]
        series = {k: np.array([r.get(k, np.nan) for r in rows], dtype=np.float64) for k in names}
    keys = [k for k in (keys or series.keys()) if k in series]
    fig = go.Figure()
    for i, k in enumerate(keys):
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=series[k],
                mode="lines",
                name=(key_names or {}).get(k, k),
                line={"color": color(i), "width": 2},
            )
        )
    style(fig, title=title, height=height)
    fig.update_xaxes(title={"text": xlabel}, showgrid=True, gridcolor="#eceff3")
    fig.update_yaxes(type="log" if log_y else "linear", showgrid=True, gridcolor="#eceff3")
    return fig


def panels(
    figs: Sequence[go.Figure],
    titles: Sequence[str] | None = None,
    *,
    height: int = 440,
    horizontal_spacing: float = 0.06,
) -> go.Figure:
    """Put static figures side by side, keeping each one's axis ranges and equal aspect."""
    n = len(figs)
    fig = make_subplots(
        rows=1,
        cols=n,
        subplot_titles=list(titles) if titles else None,
        horizontal_spacing=horizontal_spacing,
    )
    seen: set[str] = set()
    for j, f in enumerate(figs, start=1):
        for tr in f.data:
            tr = go.Figure(tr).data[0]  # a copy
            if tr.name in seen and getattr(tr, "showlegend", None) is not False:
                tr.showlegend = False
            seen.add(tr.name or "")
            if hasattr(tr, "colorbar") and n > 1:
                tr.showscale = False
            fig.add_trace(tr, row=1, col=j)
        xr = f.layout.xaxis.range
        yr = f.layout.yaxis.range
        if xr is not None and yr is not None:
            square_layout(
                fig, (xr[0], xr[1], yr[0], yr[1]), row=1, col=j, ytitle="x₂" if j == 1 else None
            )
    style(fig, height=height)
    return fig
