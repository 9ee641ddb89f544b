"""Client-side particle animations: the frames are built once and played by Plotly in the browser
(play/pause buttons and a frame slider), never one Streamlit rerun per frame."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from genlib.viz.core import Bounds, as_numpy, color, f32, square_layout, style

__all__ = [
    "MAX_FRAMES",
    "MAX_PARTICLES",
    "add_animation",
    "animated_scatter",
    "trail_xy",
]

MAX_FRAMES = 200
MAX_PARTICLES = 5000


def add_animation(
    fig: go.Figure,
    frames: Sequence[go.Frame],
    labels: Sequence[str],
    *,
    duration_ms: int = 80,
    redraw: bool = False,
    prefix: str = "",
    play_label: str = "▶",
    pause_label: str = "❚❚",
) -> go.Figure:
    """Attach ``frames`` (named ``"0"``, ``"1"``, ...) with play/pause buttons and a slider whose
    step ``i`` shows ``labels[i]`` (``prefix`` is the slider's current-value prefix).
    ``redraw=True`` is needed when frames change heatmaps/contours (not for scatter only)."""
    if len(frames) != len(labels):
        raise ValueError("one label per frame")
    fig.frames = list(frames)
    play = {
        "frame": {"duration": int(duration_ms), "redraw": redraw},
        "fromcurrent": True,
        "transition": {"duration": 0},
        "mode": "immediate",
    }
    pause = {
        "frame": {"duration": 0, "redraw": redraw},
        "mode": "immediate",
        "transition": {"duration": 0},
    }
    fig.update_layout(
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "showactive": False,
                "x": 0.09,
                "y": 0.0,
                "xanchor": "right",
                "yanchor": "top",
                "pad": {"r": 10, "t": 88},
                "buttons": [
                    {"label": play_label, "method": "animate", "args": [None, play]},
                    {"label": pause_label, "method": "animate", "args": [[None], pause]},
                ],
            }
        ],
        sliders=[
            {
                "active": 0,
                "x": 0.1,
                "len": 0.9,
                "y": 0.0,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 55, "b": 6},
                "currentvalue": {
                    "prefix": prefix,
                    "visible": True,
                    "xanchor": "right",
                    "font": {"size": 15},
                },
                "font": {"size": 11},
                "transition": {"duration": 0},
                "steps": [
                    {
                        "label": str(lab),
                        "method": "animate",
                        "args": [[fr.name], {**pause, "frame": {"duration": 0, "redraw": redraw}}],
                    }
                    for fr, lab in zip(frames, labels, strict=True)
                ],
            }
        ],
    )
    fig.update_layout(margin={"b": 150})
    return fig


def trail_xy(xs: np.ndarray, f: int, k: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Polylines of the first ``k`` particles over frames ``max(0, f - length) .. f`` joined into
    one trace with NaN gaps: ``xs (F, N, 2)`` -> x, y arrays."""
    lo = max(0, f - length) if length > 0 else 0
    seg = xs[lo : f + 1, :k, :]  # (L, k, 2)
    seg = np.concatenate([seg, np.full((1, k, 2), np.nan)], axis=0)  # gap after each particle
    seg = seg.transpose(1, 0, 2).reshape(-1, 2)  # (k * (L + 1), 2)
    return f32(seg[:, 0]), f32(seg[:, 1])


def animated_scatter(
    frames: Any,
    bounds: Bounds,
    frame_labels: Sequence[str] | None = None,
    *,
    name: str = "particles",
    trail_name: str = "trajectories",
    marker_color: str | None = None,
    trails: int = 0,
    trail_length: int = 0,
    background: Sequence[go.BaseTraceType] = (),
    frame_backgrounds: Sequence[Sequence[go.BaseTraceType]] | None = None,
    title: str | None = None,
    slider_prefix: str = "",
    size: float = 5.0,
    opacity: float = 0.7,
    duration_ms: int = 80,
    height: int = 540,
) -> go.Figure:
    """Animate particles ``frames (F, N, 2)`` (e.g. ``Trajectory.xs``) inside fixed ``bounds``.

    - ``trails``: draw the paths of the first ``trails`` particles (the last ``trail_length`` frames,
      0 = from the start), named ``trail_name`` in the legend (``name``: the particles);
    - ``background``: static traces under the particles (e.g. the target density);
    - ``frame_backgrounds``: per-frame traces (same count each frame, e.g. the heatmap of p(x_t))
      that replace each other as the animation plays.
    Frames are capped at ``MAX_FRAMES`` (evenly thinned) and particles at ``MAX_PARTICLES``."""
    xs = as_numpy(frames)
    if xs.ndim != 3 or xs.shape[-1] != 2:
        raise ValueError(f"frames must be (F, N, 2), got {xs.shape}")
    F = xs.shape[0]
    keep = np.unique(np.linspace(0, F - 1, min(F, MAX_FRAMES)).round().astype(int))
    xs = xs[keep, :MAX_PARTICLES]  # (F', N', 2)
    labels = (
        [str(i) for i in keep] if frame_labels is None else [str(frame_labels[i]) for i in keep]
    )
    fb = None if frame_backgrounds is None else [list(frame_backgrounds[i]) for i in keep]
    n_fb = len(fb[0]) if fb else 0
    k = min(int(trails), xs.shape[1])
    c = marker_color or color(0)

    def dynamic(f: int) -> list[go.BaseTraceType]:
        out: list[go.BaseTraceType] = list(fb[f]) if fb else []
        if k:
            tx, ty = trail_xy(xs, f, k, trail_length)
            out.append(
                go.Scatter(
                    x=tx,
                    y=ty,
                    mode="lines",
                    line={"color": color(1), "width": 1.5},
                    name=trail_name,
                    hoverinfo="skip",
                )
            )
        out.append(
            go.Scatter(
                x=f32(xs[f, :, 0]),
                y=f32(xs[f, :, 1]),
                mode="markers",
                marker={"size": size, "color": c, "opacity": opacity, "line": {"width": 0}},
                name=name,
                hoverinfo="skip",
            )
        )
        return out

    fig = go.Figure(list(background) + dynamic(0))
    idx = list(range(len(background), len(background) + n_fb + (1 if k else 0) + 1))
    anim = [go.Frame(data=dynamic(f), traces=idx, name=str(f)) for f in range(len(keep))]
    style(fig, title=title, height=height)
    square_layout(fig, bounds)
    return add_animation(
        fig, anim, labels, duration_ms=duration_ms, redraw=n_fb > 0, prefix=slider_prefix
    )
