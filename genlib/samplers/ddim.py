"""DDIM: denoising diffusion implicit models (Song, Meng & Ermon 2021), a sampler of the DDPM /
VP process that may skip steps.

With the ε-prediction ε̂ = ε_θ(x_t, t) and x̂_0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t, one step from t to an
earlier s (ᾱ_s > ᾱ_t) is

    x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ²) ε̂ + σ z,   σ = η √((1−ᾱ_s)/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_s)

η = 0 is deterministic (a first-order solver of the probability-flow ODE in the variables
x/√ᾱ and √(1−ᾱ)/√ᾱ); η = 1 is DDPM's ancestral step with σ² = β̃ on the (respaced) schedule. One
network evaluation per step; a last point with ᾱ = 1 returns x̂_0.

Functions of this module step with FUNCTIONS (an ``eps_fn`` or a ``score_fn``), never models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from genlib.processes.ddpm import DDPMSchedule
from genlib.processes.sde import SDE
from genlib.rng import randn_like

__all__ = [
    "AnyEpsFn",
    "ddim",
    "ddim_timesteps",
    "ddpm_ddim",
    "vp_ddim",
    "vp_eps_fn",
]

AnyEpsFn = Callable[[Tensor, Any], Tensor]  # x (N, 2), a time (int step or float t) -> ε̂ (N, 2)


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` distinct integer steps from T down to 1, evenly spread (descending)."""
    if not (1 <= steps <= T):
        raise ValueError(f"DDIM steps must be in [1, T = {T}]")
    if steps == 1:
        return [T]
    grid = torch.linspace(T, 1, steps, dtype=torch.float64).round().long().tolist()
    out: list[int] = []
    for t in grid:  # rounding can repeat a step when steps is close to T: keep them distinct
        t = min(t, out[-1] - 1) if out else t
        out.append(max(t, 1))
    return out


@torch.no_grad()
def ddim(
    eps_fn: AnyEpsFn,
    times: Sequence[Any],
    alpha_bar: Sequence[float],
    x: Tensor,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DDIM from ``x (N, 2)`` at ``times[0]`` through ``times[1:]``: ``alpha_bar[i]`` is ᾱ at
    ``times[i]`` (increasing towards the data; the last may be 1, the data). ``eps_fn`` is
    evaluated at ``times[:-1]`` only (``len(times) − 1`` evaluations). Returns ``(N, 2)``."""
    if len(times) != len(alpha_bar) or len(times) < 2:
        raise ValueError("DDIM needs matching times and ᾱ's, at least two of them")
    if not (0.0 <= eta <= 1.0):
        raise ValueError("DDIM's η must be in [0, 1]")
    for i in range(len(times) - 1):
        a_c, a_n = float(alpha_bar[i]), float(alpha_bar[i + 1])
        eps = eps_fn(x, times[i])  # (N, 2)
        x0 = (x - math.sqrt(1.0 - a_c) * eps) / math.sqrt(a_c)
        sigma = 0.0
        if eta > 0 and a_n < 1.0:
            sigma = eta * math.sqrt((1.0 - a_n) / (1.0 - a_c) * max(1.0 - a_c / a_n, 0.0))
        x = math.sqrt(a_n) * x0 + math.sqrt(max(1.0 - a_n - sigma * sigma, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * randn_like(x, generator)
    return x


def ddpm_ddim(
    eps_fn: Callable[[Tensor, int], Tensor],
    schedule: DDPMSchedule,
    x_T: Tensor,
    steps: int,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DDIM on a DDPM schedule with ``steps`` network evaluations at ``ddim_timesteps(T, steps)``,
    ending at x̂_0 (t = 0, ᾱ_0 = 1). With ``steps = T`` and η = 1 it is DDPM's ancestral sampler
    with σ_t² = β̃_t. Returns ``(N, 2)``."""
    ts = ddim_timesteps(schedule.T, steps)
    ab = [float(schedule.alpha_bar[t - 1]) for t in ts] + [1.0]
    return ddim(eps_fn, [*ts, 0], ab, x_T, eta, generator)


def vp_eps_fn(sde: SDE, score_fn: Callable[[Tensor, Tensor], Tensor]) -> AnyEpsFn:
    """ε̂(x, t) = −s(t) · score(x, t) for a float time t (the score gets an expanded ``(N,)``;
    s(t) is computed on the host in float64, so no device-to-host sync per evaluation)."""

    def eps(x: Tensor, t: float) -> Tensor:
        _, s = sde.marginal(torch.tensor([float(t)], dtype=torch.float64))
        tt = torch.full((1,), float(t), dtype=x.dtype, device=x.device)  # a fill: no copy
        return -float(s[0]) * score_fn(x, tt.expand(x.shape[0]))

    return eps


def vp_ddim(
    sde: SDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    steps: int,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    t_end: float | None = None,
) -> Tensor:
    """DDIM for a VP-SDE (ᾱ(t) = a(t)²) with a score function, from t = 1 to ``t_end`` (default
    ``sde.eps``) on a uniform time grid of ``steps`` steps (``steps`` score evaluations)."""
    if sde.kind != "vp":
        raise ValueError("DDIM here is for the VP process (ᾱ(t) = a(t)²)")
    if steps < 1:
        raise ValueError("DDIM needs at least one step")
    t_end = sde.eps if t_end is None else t_end
    ts = torch.linspace(1.0, t_end, steps + 1, dtype=torch.float64)
    a, _ = sde.marginal(ts)
    return ddim(vp_eps_fn(sde, score_fn), ts.tolist(), (a**2).tolist(), x, eta, generator)
