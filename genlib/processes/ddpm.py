"""DDPM (lecture 4-3): the discrete forward Markov chain and its closed forms.

Time convention: integer steps t = 1..T; x_0 is data, x_T ≈ N(0, I). Tensors are indexed by
``t - 1`` internally; every public method takes the lecture's t (1..T), t = 0 meaning the data.

    p(x_t | x_{t-1}) = N(√α_t x_{t-1}, β_t I),   α_t = 1 - β_t
    p(x_t | x_0)     = N(√ᾱ_t x_0, (1 - ᾱ_t) I),  ᾱ_t = Π_{τ≤t} α_τ
    p(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I),  μ̃_t = c0_t x_0 + ct_t x_t,  β̃_t = (1-ᾱ_{t-1}) β_t / (1-ᾱ_t)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = ["DDPMSchedule", "make_betas", "ScheduleKind"]

ScheduleKind = Literal["linear", "cosine"]


def make_betas(kind: ScheduleKind, T: int) -> Tensor:
    """β_1..β_T as float64 ``(T,)``.

    linear: Ho et al.'s 1e-4..0.02 for T=1000, rescaled by 1000/T so that ᾱ_T ≈ 0 for any T
    (Nichol & Dhariwal); cosine: ᾱ(t) = cos²((t/T + s)/(1 + s) · π/2), s = 0.008, β clipped at 0.999.
    """
    if T < 2 or T > 10_000:
        raise ValueError("T must be in [2, 10000]")
    if kind == "linear":
        scale = 1000.0 / T
        return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), T, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown schedule {kind!r}")


@dataclass(frozen=True)
class DDPMSchedule:
    """Precomputed DDPM coefficients (float64 on the CPU; ``.to(device)`` per use is cheap)."""

    kind: ScheduleKind = "linear"
    T: int = 100

    def __post_init__(self) -> None:
        betas = make_betas(self.kind, self.T)
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, 0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        object.__setattr__(self, "betas", betas)  # (T,)
        object.__setattr__(self, "alphas", alphas)
        object.__setattr__(self, "alpha_bar", alpha_bar)
        object.__setattr__(self, "alpha_bar_prev", alpha_bar_prev)
        # posterior q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, beta_tilde)
        object.__setattr__(self, "posterior_var", betas * (1 - alpha_bar_prev) / (1 - alpha_bar))
        object.__setattr__(self, "posterior_c0", betas * alpha_bar_prev.sqrt() / (1 - alpha_bar))
        object.__setattr__(
            self, "posterior_ct", (1 - alpha_bar_prev) * alphas.sqrt() / (1 - alpha_bar)
        )

    # The coefficient tensors are set in __post_init__ (declared here for type checkers).
    betas: Tensor = None  # type: ignore[assignment]
    alphas: Tensor = None  # type: ignore[assignment]
    alpha_bar: Tensor = None  # type: ignore[assignment]
    alpha_bar_prev: Tensor = None  # type: ignore[assignment]
    posterior_var: Tensor = None  # type: ignore[assignment]
    posterior_c0: Tensor = None  # type: ignore[assignment]
    posterior_ct: Tensor = None  # type: ignore[assignment]

    @property
    def alpha_bar_T(self) -> float:
        """ᾱ_T: how close the last step is to the N(0, I) prior (want ≈ 0)."""
        return float(self.alpha_bar[-1])

    def marginal(self, t: int | Tensor) -> tuple[Tensor, Tensor]:
        """(√ᾱ_t, √(1-ᾱ_t)) for t in 0..T (t = 0 gives (1, 0))."""
        ab = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar])[torch.as_tensor(t)]
        return ab.sqrt(), (1 - ab).sqrt()

    def q_sample(self, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε with t ``(N,)`` in 1..T: ``(N, 2)``."""
        a, s = self.marginal(t)
        return a.to(x0).unsqueeze(-1) * x0 + s.to(x0).unsqueeze(-1) * eps

    def q_step(self, x_prev: Tensor, t: int, noise: Tensor) -> Tensor:
        """One forward Markov step x_{t-1} -> x_t = √α_t x_{t-1} + √β_t z (t in 1..T)."""
        return (
            math.sqrt(float(self.alphas[t - 1])) * x_prev
            + math.sqrt(float(self.betas[t - 1])) * noise
        )

    def posterior(self, x0: Tensor, xt: Tensor, t: int) -> tuple[Tensor, float]:
        """Mean ``(N, 2)`` and variance β̃_t of q(x_{t-1} | x_t, x_0), t in 1..T."""
        mean = float(self.posterior_c0[t - 1]) * x0 + float(self.posterior_ct[t - 1]) * xt
        return mean, float(self.posterior_var[t - 1])

    def predict_x0(self, xt: Tensor, eps: Tensor, t: int) -> Tensor:
        """x̂_0 = (x_t - √(1-ᾱ_t) ε̂) / √ᾱ_t."""
        ab = float(self.alpha_bar[t - 1])
        return (xt - math.sqrt(1 - ab) * eps) / math.sqrt(ab)

    def eps_to_score(self, eps: Tensor, t: int | Tensor) -> Tensor:
        """score = -ε̂ / √(1-ᾱ_t)."""
        _, s = self.marginal(t)
        s = s.to(eps)
        return -eps / (s.unsqueeze(-1) if s.ndim else s)
