"""The forward diffusion view of the Distributions and diffusion pages (lecture 4-3 / 4-4).

``forward_diffusion(target, cfg)`` computes what the animation shows: particles pushed through
the simulated chain (VP = DDPM: x_t = √α_t x_{t-1} + √β_t z; VE: x_i = x_{i-1} + √(σ_i² − σ_{i-1}²) z)
next to the closed-form marginal p(x_t) = ∫ p(x_0) N(x_t; a_t x_0, s_t² I) dx_0 on a grid, and
the coefficients (a_t, s_t) of the conditional p(x_t | x_0) = N(a_t x_0, s_t² I).
``genlib.viz.diffusion_forward`` draws it. ``forward_config_for(model)`` is the forward process a
trained diffusion model reverses (its schedule or its σ range), ``schedule_view`` a DDPM
schedule's curves.

The VE ladder is indexed as NCSN indexes it, σ₁ > … > σ_L (``genlib.models.ncsn``): noising
climbs it from the small end, so the frames after the data are i = L, L−1, …, 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.geometry import Bounds, grid, union_bounds
from genlib.lab.fields import exact_log_prob
from genlib.models.ddpm import DDPM
from genlib.models.ncsn import NCSN
from genlib.models.sde import ScoreSDE
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
    "forward_config_for",
    "ScheduleView",
    "schedule_view",
    "T_CHOICES",
    "ALPHA_BAR_T_OK",
    "MAX_FORWARD_PARTICLES",
    "MAX_FORWARD_FRAMES",
    "MAX_FORWARD_RES",
]

MAX_FORWARD_PARTICLES = 3000
MAX_FORWARD_FRAMES = 80
MAX_FORWARD_RES = 90
ProcessKind = Literal["vp", "ve"]
T_CHOICES = (10, 20, 50, 100, 200, 500, 1000)  # the numbers of DDPM steps a page offers
ALPHA_BAR_T_OK = 0.05  # above it x_T remembers the data: the N(0, I) prior does not match p(x_T)


@dataclass(frozen=True)
class ForwardConfig:
    """What to simulate (hashable: a cache key for the UI)."""

    process: ProcessKind = "vp"
    schedule: ScheduleKind = "linear"  # VP only
    T: int = 100  # VP: number of DDPM steps
    sigma_min: float = 0.01  # VE ladder σ_1 = σ_max > ... > σ_L = σ_min
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
    steps: tuple[int, ...]  # t (VP) or noising step k (VE, σ_{L+1−k}) of each frame, 0 = data
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


def _ve_label(k: int, sigma: float, levels: int) -> str:
    """Frame label of the k-th noising step: the NCSN index i = L + 1 − k of its σ (x₀: data)."""
    return f"x₀   σ = {sigma:.3f}" if k == 0 else f"i = {levels + 1 - k}   σ = {sigma:.3f}"


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
        labels = [_ve_label(k, v, cfg.L) for k, v in zip(steps, sig.tolist(), strict=True)]
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


def forward_config_for(model: Any, n: int = 600, frames: int = 41) -> ForwardConfig:
    """The forward process ``model`` learns to reverse, as a ``ForwardConfig``: DDPM's own
    schedule; NCSN's σ range; a score SDE's discretisation (VP: the linear DDPM chain of T = 100,
    VE: its σ range); otherwise (score matching, no noise) a VE ladder up to σ = 3 to compare."""
    if isinstance(model, DDPM):
        return ForwardConfig("vp", model.schedule.kind, min(model.T, 2000), n=n, frames=frames)
    if isinstance(model, NCSN):
        return ForwardConfig(
            "ve", sigma_min=model.sigma_min, sigma_max=model.sigma_max, n=n, frames=frames
        )
    if isinstance(model, ScoreSDE):
        if model.sde_kind == "vp":
            return ForwardConfig("vp", "linear", 100, n=n, frames=frames)
        proc = model.process
        return ForwardConfig("ve", sigma_min=proc.sigma_min, sigma_max=proc.sigma_max, n=n, frames=frames)  # fmt: skip
    return ForwardConfig("ve", sigma_min=0.01, sigma_max=3.0, n=n, frames=frames)


@dataclass(frozen=True)
class ScheduleView:
    """A DDPM schedule's curves against t = 1..T (float64 numpy ``(T,)``): ᾱ_t, β_t and the
    posterior variance β̃_t; ``alpha_bar_T`` = ᾱ_T."""

    t: np.ndarray
    alpha_bar: np.ndarray
    beta: np.ndarray
    beta_tilde: np.ndarray
    alpha_bar_T: float


def schedule_view(kind: ScheduleKind, T: int) -> ScheduleView:
    """The curves of ``DDPMSchedule(kind, T)``."""
    sched = DDPMSchedule(kind, int(T))
    return ScheduleView(
        np.arange(1, sched.T + 1),
        sched.alpha_bar.numpy(),
        sched.betas.numpy(),
        sched.posterior_var.numpy(),
        sched.alpha_bar_T,
    )
