"""DDPM ancestral sampling (lecture 4-3, Ho et al. 2020, Algorithm 2).

With the ε-prediction ε̂ = eps_fn(x_t, t), the reverse step q_θ(x_{t-1} | x_t) is

    x_{t-1} = (x_t − β_t/√(1−ᾱ_t) ε̂) / √α_t + σ_t z,   z ~ N(0, I)  (no noise at t = 1)

with σ_t² = β_t ("beta", the lecture's/Ho's choice for x_0 ~ N(0, I)) or σ_t² = β̃_t =
(1−ᾱ_{t−1}) β_t / (1−ᾱ_t) ("beta_tilde", the true posterior variance, exact for a point mass x_0).
At each recorded frame the data prediction x̂_0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t is kept too.

The schedule's coefficients are turned into Python floats once, so the loop has no host sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from genlib.processes.ddpm import DDPMSchedule
from genlib.processes.forward import frame_indices
from genlib.rng import randn_like
from genlib.trajectory import Trajectory

__all__ = ["EpsFn", "VarianceKind", "ddpm_ancestral", "ancestral_coefficients"]

EpsFn = Callable[[Tensor, int], Tensor]  # x_t (N, 2), t in 1..T -> ε̂ (N, 2)
VarianceKind = Literal["beta", "beta_tilde"]


def ancestral_coefficients(
    schedule: DDPMSchedule, variance: VarianceKind = "beta"
) -> dict[str, list[float]]:
    """Per-step floats (index t − 1): ``coef_eps`` β_t/√(1−ᾱ_t), ``inv_sqrt_alpha`` 1/√α_t,
    ``sigma`` σ_t, ``sqrt_ab`` √ᾱ_t, ``sqrt_1mab`` √(1−ᾱ_t)."""
    if variance == "beta":
        var = schedule.betas
    elif variance == "beta_tilde":
        var = schedule.posterior_var
    else:
        raise ValueError(f"unknown reverse variance {variance!r} (use 'beta' or 'beta_tilde')")
    return {
        "coef_eps": (schedule.betas / (1 - schedule.alpha_bar).sqrt()).tolist(),
        "inv_sqrt_alpha": (1 / schedule.alphas.sqrt()).tolist(),
        "sigma": var.sqrt().tolist(),
        "sqrt_ab": schedule.alpha_bar.sqrt().tolist(),
        "sqrt_1mab": (1 - schedule.alpha_bar).sqrt().tolist(),
    }


@torch.no_grad()
def ddpm_ancestral(
    eps_fn: EpsFn,
    schedule: DDPMSchedule,
    x_T: Tensor,
    generator: torch.Generator | None = None,
    num_frames: int = 50,
    variance: VarianceKind = "beta",
) -> Trajectory:
    """Run x_T -> x_0 with ``eps_fn``.

    Returns a ``Trajectory`` in generation order (``time_label`` ``"t"``): ``xs (F, N, 2)``,
    ``ts (F,)`` the step of each frame (frame 0 is x_T at t = T, the last frame x_0 at t = 0) and
    ``x0_preds (F, N, 2)`` (at t = 0, x̂_0 is x_0 itself); ``num_frames`` is capped at T + 1.
    """
    c = ancestral_coefficients(schedule, variance)
    T = schedule.T
    keep = set(frame_indices(T, num_frames))  # steps done (0..T); t = T - k
    x = x_T.clone()
    frames: list[Tensor] = []
    preds: list[Tensor] = []
    ts: list[int] = []
    for t in range(T, 0, -1):
        i = t - 1
        eps = eps_fn(x, t)  # (N, 2)
        if (T - t) in keep:
            frames.append(x.clone())
            preds.append((x - c["sqrt_1mab"][i] * eps) / c["sqrt_ab"][i])
            ts.append(t)
        mean = (x - c["coef_eps"][i] * eps) * c["inv_sqrt_alpha"][i]
        x = mean + c["sigma"][i] * randn_like(x, generator) if t > 1 else mean
    frames.append(x.clone())
    preds.append(x.clone())
    ts.append(0)
    return Trajectory(
        torch.stack(frames), torch.tensor(ts, dtype=torch.float32), "t", torch.stack(preds)
    )
