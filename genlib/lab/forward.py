"""The forward diffusion view of the Distributions and diffusion pages (lecture 4-3 / 4-4).

``forward_diffusion(target, cfg)`` computes what the animation shows: particles pushed through
the simulated chain (VP = DDPM: x_t = √α_t x_{t-1} + √β_t z; VE: x_i = x_{i-1} + √(σ_i² − σ_{i-1}²) z)
next to the closed-form marginal p(x_t) = ∫ p(x_0) N(x_t; a_t x_0, s_t² I) dx_0 on a grid, and
the coefficients (a_t, s_t) of the conditional p(x_t | x_0) = N(a_t x_0, s_t² I).
``genlib.viz.diffusion_forward`` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.geometry import Bounds, grid, union_bounds
from genlib.lab.fields import exact_log_prob
from genlib.processes import (
    DDPMSchedule,
    ScheduleKind,
    simulate_ddpm_chain,
    simulate_ve_ladder,
    ve_sigma_ladder,
)

__all__ = [
    "ProcessKind",
    "ForwardConfig",
    "ForwardDiffusion",
    "forward_diffusion",
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


@dataclass(frozen=True)
class ForwardDiffusion:
    """The forward process at F frames (numpy, forward order: frame 0 = the data x_0)."""

    xs: np.ndarray  # (F, N, 2) particles
    a: np.ndarray  # (F,) mean coefficient a_t of p(x_t | x_0)
    s: np.ndarray  # (F,) standard deviation s_t
    steps: tuple[int, ...]  # t (VP) or ladder index i (VE) of each frame, 0 = data
    labels: tuple[str, ...]  # slider label per frame
    bounds: Bounds
    grid_x: np.ndarray  # (res,)
    grid_y: np.ndarray  # (res,)
    marginal: np.ndarray | None  # (F, res, res) p(x_t) / max_x p(x_t), None if no closed form
    alpha_bar_T: float | None = None  # VP: ᾱ_T
    exact: bool = True  # False when the target's marginals come from a reference sample
    process: ProcessKind = "vp"


def _relative_marginals(
    target: Target2D, pts: np.ndarray, a_t: list[float], s_t: list[float], res: int
) -> np.ndarray | None:
    """p(x_t)/max p(x_t) on the grid for every frame ``(F, res, res)``; None without marginals."""
    x = torch.as_tensor(pts, dtype=torch.float32)
    out = np.zeros((len(a_t), res, res))
    try:
        for f, (a, s) in enumerate(zip(a_t, s_t, strict=True)):
            with torch.no_grad():
                lp = exact_log_prob(target, x, a, s).double().numpy()
            lp = np.where(np.isfinite(lp), lp, -np.inf).reshape(res, res)
            top = lp.max()
            out[f] = np.exp(lp - top) if np.isfinite(top) else 0.0
    except NotImplementedError:
        return None
    return out


def forward_diffusion(target: Target2D, cfg: ForwardConfig) -> ForwardDiffusion:
    """Simulate the forward chain from ``cfg.n`` target samples (seeded by ``cfg.seed``) and
    evaluate the exact marginals p(x_t) of each frame on a ``cfg.res`` grid."""
    g = make_generator(cfg.seed)
    x0 = target.sample(cfg.n, generator=g).double()  # (N, 2)
    if cfg.process == "vp":
        sched = DDPMSchedule(cfg.schedule, cfg.T)
        xs, steps = simulate_ddpm_chain(x0, sched, num_frames=cfg.frames, generator=g)
        a_t, s_t = sched.marginal(torch.tensor(steps))
        labels = [f"t = {t}   ᾱ_t = {v:.3f}" for t, v in zip(steps, (a_t**2).tolist(), strict=True)]
        prior_half = 3.5
        alpha_bar_T: float | None = sched.alpha_bar_T
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
    marginal = _relative_marginals(target, pts, a_t.tolist(), s_t.tolist(), cfg.res)
    return ForwardDiffusion(
        xs=xs.float().numpy(),
        a=a_t.double().numpy(),
        s=s_t.double().numpy(),
        steps=tuple(int(t) for t in steps),
        labels=tuple(labels),
        bounds=bounds,
        grid_x=gx,
        grid_y=gy,
        marginal=marginal,
        alpha_bar_T=alpha_bar_T,
        exact=bool(getattr(target, "exact_marginals", True)),
        process=cfg.process,
    )
