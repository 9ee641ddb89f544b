"""Figures of the forward diffusion (lecture 4-3 / 4-4), drawn from a ``ForwardDiffusion``
computed by ``genlib.lab.forward`` (this module only draws: no sampling, no simulation).

``forward_diffusion_figure(fd)`` shows the simulated particles next to the closed-form marginal
p(x_t) with one shared slider, played client-side; ``schedule_figure(fd)`` the signal and noise
variances along the frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from genlib.viz.animation import add_animation
from genlib.viz.core import (
    DATA_COLOR,
    DENSITY_SCALE,
    MODEL_COLOR,
    f32,
    panels,
    scatter,
    square_layout,
    style,
)

if TYPE_CHECKING:
    from genlib.lab.forward import ForwardDiffusion

__all__ = ["forward_diffusion_figure", "forward_strip_figure", "schedule_figure"]


def _circles(
    center: np.ndarray, s: float, radii: tuple[float, ...] = (1.0, 2.0), m: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    th = np.linspace(0, 2 * np.pi, m)
    xs, ys = [], []
    for r in radii:
        xs += list(center[0] + r * s * np.cos(th)) + [np.nan]
        ys += list(center[1] + r * s * np.sin(th)) + [np.nan]
    return f32(np.array(xs)), f32(np.array(ys))


def forward_diffusion_figure(
    fd: ForwardDiffusion,
    *,
    titles: tuple[str, str] = ("simulated particles x_t", "closed-form marginal p(x_t)"),
    particle_name: str = "x_t",
    highlight_name: str = "x_0 → x_t (one particle)",
    conditional_name: str = "p(x_t | x_0): 1σ, 2σ",
    duration_ms: int = 90,
    height: int = 620,
    trail_length: int = 12,
) -> go.Figure:
    """Two panels sharing one slider: left the particles (one highlighted with its recent path and
    the circles of its conditional N(a_t x_0, s_t² I)), right the exact marginal p(x_t) with the
    same circles. The slider walks the forward process t = 0 → T."""
    xs = fd.xs  # (F, N, 2)
    F = xs.shape[0]
    x0h = xs[0, 0].astype(np.float64)  # the highlighted x_0
    fig = make_subplots(rows=1, cols=2, subplot_titles=list(titles), horizontal_spacing=0.08)
    has_m = fd.marginal is not None

    def traces(f: int) -> list[go.BaseTraceType]:
        c = fd.a[f] * x0h
        cx, cy = _circles(c, float(fd.s[f]))
        lo = max(0, f - trail_length)
        out: list[go.BaseTraceType] = [
            go.Scatter(
                x=f32(xs[f, :, 0]),
                y=f32(xs[f, :, 1]),
                mode="markers",
                marker={"size": 4.5, "color": DATA_COLOR, "opacity": 0.55},
                name=particle_name,
                hoverinfo="skip",
                xaxis="x",
                yaxis="y",
            ),
            go.Scatter(
                x=f32(xs[lo : f + 1, 0, 0]),
                y=f32(xs[lo : f + 1, 0, 1]),
                mode="lines+markers",
                line={"color": MODEL_COLOR, "width": 2},
                marker={
                    "size": [4] * (f - lo) + [11],
                    "color": MODEL_COLOR,
                    "line": {"color": "#ffffff", "width": 1},
                },
                name=highlight_name,
                hoverinfo="skip",
                xaxis="x",
                yaxis="y",
            ),
            go.Scatter(
                x=cx,
                y=cy,
                mode="lines",
                line={"color": MODEL_COLOR, "width": 1.5, "dash": "dot"},
                name=conditional_name,
                hoverinfo="skip",
                xaxis="x",
                yaxis="y",
            ),
        ]
        if has_m:
            out.append(_heat(fd, f))
        out.append(
            go.Scatter(
                x=cx,
                y=cy,
                mode="lines",
                line={"color": MODEL_COLOR, "width": 1.5, "dash": "dot"},
                name=conditional_name,
                showlegend=False,
                hoverinfo="skip",
                xaxis="x2",
                yaxis="y2",
            )
        )
        out.append(
            go.Scatter(
                x=[round(float(c[0]), 4)],
                y=[round(float(c[1]), 4)],
                mode="markers",
                marker={"size": 9, "color": MODEL_COLOR, "symbol": "x"},
                name="a_t x_0",
                hoverinfo="skip",
                xaxis="x2",
                yaxis="y2",
            )
        )
        return out

    first = traces(0)
    for tr in first:
        fig.add_trace(tr, row=1, col=2 if tr.xaxis == "x2" else 1)
    idx = list(range(len(first)))
    frames = [go.Frame(data=traces(f), traces=idx, name=str(f)) for f in range(F)]
    style(fig, height=height)
    fig.update_layout(margin={"t": 95}, legend={"y": 1.09})
    square_layout(fig, fd.bounds, row=1, col=1)
    square_layout(fig, fd.bounds, row=1, col=2, ytitle=None)
    return add_animation(fig, frames, fd.labels, duration_ms=duration_ms, redraw=True)


def _heat(fd: ForwardDiffusion, f: int) -> go.Heatmap:
    """p(x_t) / max as uint8 levels 0..255 (compact in the figure JSON: ~1 byte per cell)."""
    z = np.round(255 * np.clip(fd.marginal[f], 0.0, 1.0)).astype(np.uint8)  # (res, res)
    return go.Heatmap(
        x=f32(fd.grid_x),
        y=f32(fd.grid_y),
        z=z,
        zmin=0,
        zmax=255,
        colorscale=DENSITY_SCALE,
        name="p(x_t)",
        showlegend=False,
        hoverinfo="skip",
        xaxis="x2",
        yaxis="y2",
        colorbar={
            "title": {"text": "p(x_t) / max", "side": "right"},
            "tickvals": [0, 127.5, 255],
            "ticktext": ["0", "0.5", "1"],
            "thickness": 12,
            "len": 0.8,
            "x": 1.02,
        },
    )


def schedule_figure(
    fd: ForwardDiffusion, *, height: int = 260, title: str | None = None
) -> go.Figure:
    """a_t² (signal) and s_t² (noise variance) along the simulated frames."""
    steps = np.asarray(fd.steps)
    fig = go.Figure(
        [
            go.Scatter(
                x=steps,
                y=fd.a**2,
                mode="lines",
                name="a_t²  (ᾱ_t)" if fd.process == "vp" else "a_t² = 1",
                line={"color": DATA_COLOR, "width": 2},
            ),
            go.Scatter(
                x=steps,
                y=fd.s**2,
                mode="lines",
                name="s_t²  (1 − ᾱ_t)" if fd.process == "vp" else "σ_i²",
                line={"color": MODEL_COLOR, "width": 2},
            ),
        ]
    )
    style(fig, height=height, title=title)
    # VE frames climb the NCSN ladder σ₁ > … > σ_L from its small end: step k is σ_{L+1−k}
    fig.update_xaxes(title={"text": "t" if fd.process == "vp" else "L + 1 − i"})
    fig.update_yaxes(type="linear" if fd.process == "vp" else "log")
    return fig


def forward_strip_figure(
    fd: ForwardDiffusion, *, name: str = "x_t", height: int = 300, size: float = 3.0
) -> go.Figure:
    """Every frame of ``fd`` as a small static panel side by side (a filmstrip: data → noise),
    titled by the frame labels, without axes."""
    figs = [scatter({name: fd.xs[i]}, fd.bounds, size=size, opacity=0.5) for i in range(len(fd.steps))]  # fmt: skip
    titles = [lab.replace("   ", " · ") for lab in fd.labels]
    fig = panels(figs, titles, height=height, horizontal_spacing=0.02)
    fig.update_layout(showlegend=False, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_xaxes(showticklabels=False, title=None, ticks="")
    fig.update_yaxes(showticklabels=False, title=None, ticks="")
    return fig
