"""The forward diffusion animation of the Distributions page (lecture 4-3 / 4-4).

``forward_diffusion(target, cfg)`` gathers what the figure shows (no plotting): particles pushed
through the simulated chain (DDPM: x_t = √α_t x_{t-1} + √β_t z; VE: x_i = x_{i-1} + √(σ_i² − σ_{i-1}²) z)
next to the closed-form marginal p(x_t) = ∫ p(x_0) N(x_t; a_t x_0, s_t² I) dx_0 on a grid, and the
conditional p(x_t | x_0) = N(a_t x_0, s_t² I) of one highlighted particle.
``forward_diffusion_figure(fd)`` draws both panels with one shared slider, played client-side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.processes import (
    DDPMSchedule,
    ScheduleKind,
    simulate_ddpm_chain,
    simulate_ve_ladder,
    ve_sigma_ladder,
)
from genlib.viz.animation import add_animation
from genlib.viz.core import (
    DATA_COLOR,
    DENSITY_SCALE,
    MODEL_COLOR,
    Bounds,
    f32,
    square_layout,
    style,
    union_bounds,
)
from genlib.viz.fields import grid

__all__ = [
    "ForwardConfig",
    "ForwardDiffusion",
    "forward_diffusion",
    "forward_diffusion_figure",
    "schedule_figure",
    "MAX_FORWARD_PARTICLES",
    "MAX_FORWARD_FRAMES",
    "MAX_FORWARD_RES",
]

MAX_FORWARD_PARTICLES = 3000
MAX_FORWARD_FRAMES = 80
MAX_FORWARD_RES = 90
ProcessKind = Literal["vp", "ve"]


@dataclass(frozen=True)
class ForwardConfig:
    """What to simulate (hashable: a cache key for the UI)."""

    process: ProcessKind = "vp"
    schedule: ScheduleKind = "linear"  # VP only
    T: int = 100  # VP: number of DDPM steps
    sigma_min: float = 0.01  # VE ladder σ_1 < ... < σ_L
    sigma_max: float = 3.0
    L: int = 50
    n: int = 600  # particles
    frames: int = 41
    res: int = 60  # marginal heatmap resolution
    seed: int = 0

    def __post_init__(self) -> None:
        if self.process not in ("vp", "ve"):
            raise ValueError("process must be 'vp' or 've'")
        if not (2 <= self.T <= 2000):
            raise ValueError("T must be in [2, 2000]")
        if not (2 <= self.L <= 1000):
            raise ValueError("L must be in [2, 1000]")
        if not (0 < self.sigma_min < self.sigma_max <= 100):
            raise ValueError("need 0 < σ_min < σ_max ≤ 100")
        if not (1 <= self.n <= MAX_FORWARD_PARTICLES):
            raise ValueError(f"particles must be in [1, {MAX_FORWARD_PARTICLES}]")
        if not (2 <= self.frames <= MAX_FORWARD_FRAMES):
            raise ValueError(f"frames must be in [2, {MAX_FORWARD_FRAMES}]")
        if not (10 <= self.res <= MAX_FORWARD_RES):
            raise ValueError(f"heatmap resolution must be in [10, {MAX_FORWARD_RES}]")


@dataclass
class ForwardDiffusion:
    xs: np.ndarray  # (F, N, 2) particles, frame 0 = data x_0
    a: np.ndarray  # (F,) mean coefficient a_t of p(x_t | x_0)
    s: np.ndarray  # (F,) standard deviation s_t
    steps: list[int]  # t (VP) or ladder index i (VE) of each frame, 0 = data
    labels: list[str]  # slider label per frame
    bounds: Bounds
    grid_x: np.ndarray  # (res,)
    grid_y: np.ndarray  # (res,)
    marginal: np.ndarray | None  # (F, res, res) p(x_t) / max_x p(x_t), None if no closed form
    alpha_bar_T: float | None = None  # VP: ᾱ_T
    exact: bool = True
    process: ProcessKind = "vp"
    extra: dict = field(default_factory=dict)


def forward_diffusion(target: Target2D, cfg: ForwardConfig) -> ForwardDiffusion:
    """Simulate the forward chain and evaluate the exact marginals for the animation."""
    g = make_generator(cfg.seed)
    x0 = target.sample(cfg.n, generator=g).double()  # (N, 2)
    if cfg.process == "vp":
        sched = DDPMSchedule(cfg.schedule, cfg.T)
        xs, steps = simulate_ddpm_chain(x0, sched, num_frames=cfg.frames, generator=g)
        a_t, s_t = sched.marginal(torch.tensor(steps))
        ab = (a_t**2).tolist()
        labels = [f"t = {t}   ᾱ_t = {v:.3f}" for t, v in zip(steps, ab, strict=True)]
        prior_half = 3.5
        alpha_bar_T = sched.alpha_bar_T
    else:
        sigmas = ve_sigma_ladder(cfg.sigma_min, cfg.sigma_max, cfg.L)
        xs, steps = simulate_ve_ladder(x0, sigmas, num_frames=cfg.frames, generator=g)
        sig = torch.cat([torch.zeros(1, dtype=torch.float64), sigmas])[torch.tensor(steps)]
        a_t, s_t = torch.ones_like(sig), sig
        labels = [f"i = {i}   σ = {v:.3f}" for i, v in zip(steps, sig.tolist(), strict=True)]
        prior_half = 3.0 * cfg.sigma_max
        alpha_bar_T = None
    bounds = union_bounds(tuple(target.bounds), (-prior_half, prior_half, -prior_half, prior_half))
    gx, gy, pts = grid(bounds, cfg.res)
    pts_t = torch.as_tensor(pts, dtype=torch.float32)
    marg: np.ndarray | None = np.zeros((len(steps), cfg.res, cfg.res))
    try:
        for f, (a, s) in enumerate(zip(a_t.tolist(), s_t.tolist(), strict=True)):
            with torch.no_grad():
                lp = (
                    (target.log_prob(pts_t) if s == 0.0 else target.log_prob_t(pts_t, a, s))
                    .double()
                    .numpy()
                )
            lp = np.where(np.isfinite(lp), lp, -np.inf).reshape(cfg.res, cfg.res)
            top = lp.max()
            marg[f] = np.exp(lp - top) if np.isfinite(top) else 0.0
    except NotImplementedError:
        marg = None
    return ForwardDiffusion(
        xs=xs.float().numpy(),
        a=a_t.double().numpy(),
        s=s_t.double().numpy(),
        steps=list(steps),
        labels=labels,
        bounds=bounds,
        grid_x=gx,
        grid_y=gy,
        marginal=marg,
        alpha_bar_T=alpha_bar_T,
        exact=bool(getattr(target, "exact_marginals", True)),
        process=cfg.process,
    )


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
    fig.update_xaxes(title={"text": "t" if fd.process == "vp" else "i"})
    fig.update_yaxes(type="linear" if fd.process == "vp" else "log")
    return fig
