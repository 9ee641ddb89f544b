"""Continuous-time forward SDEs (lecture 4-4): dx = f(x, t) dt + g(t) dw.

Time convention: t ∈ [0, 1]; t = 0 is data, t = 1 the prior. Each SDE keeps its drift and diffusion
next to the closed-form marginal they imply, p(x_t | x_0) = N(a(t) x_0, s(t)² I):

- VE (NCSN in continuous time): σ(t) = σ_min (σ_max/σ_min)^t, f = 0, g = σ(t) √(2 log(σ_max/σ_min));
  a = 1, s(t)² = σ(t)² - σ_min² (so s(0) = 0); prior N(0, σ_max² I).
- VP (DDPM in continuous time): β(t) = β_min + t (β_max - β_min), f = -½ β(t) x, g = √β(t);
  a(t) = exp(-½ ∫₀ᵗ β), s(t)² = 1 - a(t)²; prior N(0, I).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from genlib.registry import Registry
from genlib.rng import randn

__all__ = ["SDE", "VESDE", "VPSDE", "SDES", "SDEKind", "make_sde"]

SDEKind = Literal["ve", "vp"]
SDES: Registry[SDE] = Registry("sde")


class SDE(abc.ABC):
    """Forward SDE with a Gaussian transition kernel."""

    kind: SDEKind
    eps: float = 1e-3  # smallest t used in training/sampling (t = 0 is singular for the score)

    @abc.abstractmethod
    def drift(self, x: Tensor, t: Tensor) -> Tensor:
        """f(x, t): ``(N, 2), (N,) -> (N, 2)``."""

    @abc.abstractmethod
    def diffusion(self, t: Tensor) -> Tensor:
        """g(t): ``(N,) -> (N,)``."""

    @abc.abstractmethod
    def marginal(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(a(t), s(t)) with p(x_t | x_0) = N(a x_0, s² I): ``(N,) -> (N,), (N,)``."""

    @abc.abstractmethod
    def prior_std(self) -> float:
        """Standard deviation of the isotropic Gaussian prior p_1."""

    def prior_sample(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        """``n`` draws of the prior N(0, prior_std² I): ``(n, 2)`` on ``device``."""
        return self.prior_std() * randn(n, 2, generator=generator, device=device)

    def prior_log_prob(self, x: Tensor) -> Tensor:
        var = self.prior_std() ** 2
        return -math.log(2 * math.pi * var) - 0.5 * (x**2).sum(-1) / var

    def perturb(self, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """x_t = a(t) x_0 + s(t) ε: ``(N, 2)``."""
        a, s = self.marginal(t)
        return a[:, None] * x0 + s[:, None] * eps

    def pf_ode_drift(self, x: Tensor, t: Tensor, score: Tensor) -> Tensor:
        """Probability-flow ODE drift f - ½ g² s: ``(N, 2)``."""
        g = self.diffusion(t)
        return self.drift(x, t) - 0.5 * (g**2)[:, None] * score

    def reverse_drift(self, x: Tensor, t: Tensor, score: Tensor) -> Tensor:
        """Reverse-SDE drift f - g² s (integrated backwards in t): ``(N, 2)``."""
        g = self.diffusion(t)
        return self.drift(x, t) - (g**2)[:, None] * score


@SDES.register("ve")
@dataclass(frozen=True)
class VESDE(SDE):
    sigma_min: float = 0.01
    sigma_max: float = 10.0
    kind: SDEKind = "ve"

    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def drift(self, x: Tensor, t: Tensor) -> Tensor:
        return torch.zeros_like(x)

    def diffusion(self, t: Tensor) -> Tensor:
        return self.sigma(t) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))

    def marginal(self, t: Tensor) -> tuple[Tensor, Tensor]:
        s2 = (self.sigma(t) ** 2 - self.sigma_min**2).clamp(min=0.0)
        return torch.ones_like(t), s2.sqrt()

    def prior_std(self) -> float:
        return self.sigma_max


@SDES.register("vp")
@dataclass(frozen=True)
class VPSDE(SDE):
    beta_min: float = 0.1
    beta_max: float = 20.0
    kind: SDEKind = "vp"

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def drift(self, x: Tensor, t: Tensor) -> Tensor:
        return -0.5 * self.beta(t)[:, None] * x

    def diffusion(self, t: Tensor) -> Tensor:
        return self.beta(t).sqrt()

    def marginal(self, t: Tensor) -> tuple[Tensor, Tensor]:
        log_a = -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
        a = log_a.exp()
        return a, (-torch.expm1(2 * log_a)).clamp(min=0.0).sqrt()

    def prior_std(self) -> float:
        return 1.0


def make_sde(kind: SDEKind, **kwargs) -> SDE:
    return SDES.build(kind, **kwargs)
