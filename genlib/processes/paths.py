"""Flow-matching probability paths (lecture 4-5). τ ∈ [0, 1] with τ = 0 noise and τ = 1 data.

Every path here is a Gaussian conditional path with a data-independent width,

    p_τ(x̃ | x) = N(x̃; μ_τ(x), σ_τ² I),   μ_τ(x) = a(τ) x,

whose conditional flow x̃_τ = μ_τ(x) + σ_τ x̃_0 (x̃_0 ~ N(0, I)) has the velocity (lecture)

    u_τ(x̃ | x) = σ̇_τ / σ_τ · (x̃ - μ_τ(x)) + μ̇_τ(x)   ( = ȧ x + σ̇ x̃_0 along the flow ).

- ``ot`` (Lipman et al.'s optimal-transport path): a = τ, σ = 1 - (1 - σ_min) τ.
- ``straight`` (rectified flow): a = τ, σ = 1 - τ: x̃ = τ x + (1 - τ) x̃_0, u = x - x̃_0.
- ``vp`` (the VP-SDE read backwards): a = α(1 - τ), σ = √(1 - a²), α(t) = exp(-½∫₀ᵗ β).

The marginal path p_τ(x̃) = ∫ p_τ(x̃|x) p(x) dx is the target diffused by (a, σ), so a target's
``score_t(x̃, a, σ)`` gives the *true* marginal velocity (lecture's lemma 4 + Tweedie's formula):

    u_τ(x̃) = E[u_τ(x̃|x) | x̃] = σ̇/σ · x̃ + (ȧ - σ̇ a/σ) · E[x | x̃],   E[x | x̃] = (x̃ + σ² ∇log p_τ(x̃)) / a.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from genlib.distributions.base import Target2D
from genlib.processes.sde import VPSDE
from genlib.registry import Registry

__all__ = [
    "PathKind",
    "ProbabilityPath",
    "OTPath",
    "StraightPath",
    "VPPath",
    "PATHS",
    "make_path",
    "conditional_trajectories",
]

PathKind = Literal["ot", "straight", "vp"]
PATHS: Registry[ProbabilityPath] = Registry("path")


def _col(v: Tensor) -> Tensor:
    return v[:, None] if v.ndim == 1 else v


class ProbabilityPath(abc.ABC):
    """A Gaussian conditional path μ_τ(x) = a(τ) x, σ_τ; τ = 0 noise, τ = 1 data."""

    kind: PathKind
    #: the largest τ used for training and sampling (< 1 where σ_τ -> 0 makes u singular)
    tau_max: float = 1.0

    @abc.abstractmethod
    def coefficients(self, tau: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(a, σ, ȧ, σ̇) at τ: each shaped like ``tau``."""

    def mu(self, x: Tensor, tau: Tensor) -> Tensor:
        """μ_τ(x) = a(τ) x: ``(N, 2)``."""
        a, _, _, _ = self.coefficients(tau)
        return _col(a) * x

    def sigma(self, tau: Tensor) -> Tensor:
        return self.coefficients(tau)[1]

    def sample(self, x: Tensor, tau: Tensor, noise: Tensor) -> Tensor:
        """x̃ = μ_τ(x) + σ_τ x̃_0 ~ p_τ(x̃ | x): ``(N, 2)``."""
        a, s, _, _ = self.coefficients(tau)
        return _col(a) * x + _col(s) * noise

    def conditional_velocity(self, xt: Tensor, x: Tensor, tau: Tensor) -> Tensor:
        """The lecture's u_τ(x̃ | x) = σ̇/σ (x̃ - μ_τ(x)) + μ̇_τ(x): ``(N, 2)`` (needs σ_τ > 0)."""
        a, s, da, ds = self.coefficients(tau)
        return _col(ds / s) * (xt - _col(a) * x) + _col(da) * x

    def target_velocity(self, x: Tensor, tau: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """(x̃, u_τ(x̃ | x)) for the CFM loss, u written as ȧ x + σ̇ x̃_0 (no division by σ)."""
        a, s, da, ds = self.coefficients(tau)
        return _col(a) * x + _col(s) * noise, _col(da) * x + _col(ds) * noise

    def marginal_velocity(self, target: Target2D, xt: Tensor, tau: float) -> Tensor:
        """The true marginal velocity u_τ(x̃) of ``target`` at one τ: ``(N, 2)`` (computed in float64;
        τ is clamped to [10⁻³, τ_max] where a > 0, and below 1 - 10⁻³ where σ_1 = 0). See the module
        doc for the formula."""
        hi = (
            self.tau_max
            if float(self.sigma(torch.ones(1, dtype=torch.float64))) > 0
            else 1.0 - 1e-3
        )
        tau = min(max(float(tau), 1e-3), hi)
        a, s, da, ds = (
            float(c) for c in self.coefficients(torch.tensor([tau], dtype=torch.float64))
        )
        x64 = xt.double()
        score = target.score_t(x64, a, s).double()  # ∇ log p_τ(x̃)
        x_mean = (x64 + s * s * score) / a  # E[x | x̃] (Tweedie)
        return (ds / s * x64 + (da - ds * a / s) * x_mean).to(xt.dtype)

    def marginal_log_prob(self, target: Target2D, xt: Tensor, tau: float) -> Tensor:
        """log p_τ(x̃) of the marginal path: ``(N,)``."""
        a, s, _, _ = (
            float(c) for c in self.coefficients(torch.tensor([float(tau)], dtype=torch.float64))
        )
        return target.log_prob_t(xt, a, s)


@PATHS.register("ot")
@dataclass(frozen=True)
class OTPath(ProbabilityPath):
    """Lipman et al.: μ_τ = τ x, σ_τ = 1 - (1 - σ_min) τ (straight conditional lines)."""

    sigma_min: float = 0.01
    kind: PathKind = "ot"

    def __post_init__(self) -> None:
        if not (0.0 < self.sigma_min < 1.0):
            raise ValueError("sigma_min must be in (0, 1)")

    def coefficients(self, tau: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        c = 1.0 - self.sigma_min
        return tau, 1.0 - c * tau, torch.ones_like(tau), torch.full_like(tau, -c)


@PATHS.register("straight")
@dataclass(frozen=True)
class StraightPath(ProbabilityPath):
    """Rectified flow: x̃ = τ x + (1 - τ) x̃_0 (the OT path with σ_min = 0), u = x - x̃_0."""

    kind: PathKind = "straight"

    def coefficients(self, tau: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return tau, 1.0 - tau, torch.ones_like(tau), -torch.ones_like(tau)


@PATHS.register("vp")
@dataclass(frozen=True)
class VPPath(ProbabilityPath):
    """The VP-SDE's marginal read with τ = 1 - t: a(τ) = α(1 - τ), σ = √(1 - a²),
    ȧ = ½ β(1 - τ) a (since dα/dt = -½ β α), σ̇ = -a ȧ / σ."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    kind: PathKind = "vp"
    tau_max: float = 1.0 - 1e-3
    sde: VPSDE = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (0.0 < self.beta_min < self.beta_max):
            raise ValueError("need 0 < beta_min < beta_max")
        object.__setattr__(self, "sde", VPSDE(self.beta_min, self.beta_max))

    def coefficients(self, tau: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        t = 1.0 - tau
        a, s = self.sde.marginal(t)
        da = 0.5 * self.sde.beta(t) * a
        ds = -a * da / s.clamp(min=1e-12)
        return a, s, da, ds


def make_path(kind: PathKind, **kwargs) -> ProbabilityPath:
    """Build a path by name, passing only the options it takes (``sigma_min`` for ot,
    ``beta_min``/``beta_max`` for vp)."""
    cls = PATHS.get(kind)
    accepted = {"ot": {"sigma_min"}, "straight": set(), "vp": {"beta_min", "beta_max"}}[kind]
    return cls(**{k: v for k, v in kwargs.items() if k in accepted})


def conditional_trajectories(
    path: ProbabilityPath, x: Tensor, noise: Tensor, num_frames: int = 30
) -> tuple[Tensor, Tensor]:
    """The conditional flows x̃_τ(x) = μ_τ(x) + σ_τ x̃_0 for pairs (x, x̃_0): frames ``(F, N, 2)`` at
    ``taus (F,)`` from 0 to ``tau_max`` (straight lines for the ot and straight paths)."""
    num_frames = max(2, min(int(num_frames), 500))
    taus = torch.linspace(0.0, path.tau_max, num_frames, dtype=x.dtype, device=x.device)
    frames = [path.sample(x, tau.expand(x.shape[0]), noise) for tau in taus]
    return torch.stack(frames), taus
