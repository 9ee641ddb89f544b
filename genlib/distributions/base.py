"""The 2D target interface and the Gaussian-mixture machinery every exact target builds on.

Conventions
- Points are float32 tensors ``(N, 2)``; densities are natural-log, normalised over R².
- Diffused marginals: for ``x_t = alpha * x_0 + sigma * eps`` (eps ~ N(0, I)), ``log_prob_t(x,
  alpha, sigma)`` and ``score_t(x, alpha, sigma)`` give log p_t(x) and ∇ log p_t(x). VP/DDPM uses
  ``alpha = sqrt(alpha_bar)``, ``sigma = sqrt(1 - alpha_bar)``; VE uses ``alpha = 1``,
  ``sigma = σ``. ``alpha=1, sigma=0`` is the target itself.
- Every random function takes an optional ``torch.Generator`` (CPU generator -> CPU samples).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from genlib.limits import MAX_SAMPLES, check_int
from genlib.registry import Registry

__all__ = [
    "Target2D",
    "GaussianMixture",
    "TARGETS",
    "register",
    "Bounds",
    "LOG_2PI",
    "check_alpha_sigma",
    "autograd_score",
]

from genlib.geometry import LOG_2PI, Bounds  # noqa: E402  (re-exported: the one home is geometry)

TARGETS: Registry[Target2D] = Registry("target")
register = TARGETS.register


class Target2D(abc.ABC):
    """A 2D distribution with exact sampling and an exact, normalised density."""

    name: str = "target"
    bounds: Bounds = (-4.0, 4.0, -4.0, 4.0)
    #: True when log_prob_t/score_t are closed form (or quadrature as accurate as log_prob).
    exact_marginals: bool = True

    @abc.abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` independent samples, ``(n, 2)`` float32."""

    @abc.abstractmethod
    def log_prob(self, x: Tensor) -> Tensor:
        """Exact normalised log density, ``(N, 2) -> (N,)``."""

    def score(self, x: Tensor) -> Tensor:
        """∇_x log p(x), ``(N, 2) -> (N, 2)`` (autograd of ``log_prob`` unless overridden)."""
        return autograd_score(self.log_prob, x)

    def log_prob_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        """log p_t(x) of ``alpha * x0 + sigma * eps``: ``(N, 2) -> (N,)``."""
        raise NotImplementedError(f"{self.name}: no diffused marginal")

    def score_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        """∇ log p_t(x) of ``alpha * x0 + sigma * eps``: ``(N, 2) -> (N, 2)``."""
        return autograd_score(lambda y: self.log_prob_t(y, alpha, sigma), x)

    def entropy(self, n: int = 200_000, generator: torch.Generator | None = None) -> float:
        """H(p) = -E_p log p in nats (Monte Carlo with the exact density unless overridden)."""
        g = generator if generator is not None else torch.Generator().manual_seed(1234)
        x = self.sample(n, generator=g)
        return float(-self.log_prob(x).double().mean())

    def moments(self, n: int = 400_000) -> tuple[Tensor, Tensor]:
        """Mean ``(2,)`` and covariance ``(2, 2)`` (exact where overridden, else Monte Carlo)."""
        x = self.sample(n, generator=torch.Generator().manual_seed(4321)).double()
        mean = x.mean(0)
        xc = x - mean
        return mean, xc.T @ xc / (n - 1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def check_alpha_sigma(alpha: float | Tensor, sigma: float | Tensor) -> tuple[float, float]:
    """``(alpha, sigma)`` as floats; ``ValueError`` unless both are finite scalars, ``alpha >= 0``,
    ``sigma >= 0`` and not both zero."""
    try:
        a, s = float(alpha), float(sigma)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError("alpha and sigma must be scalars (floats or 0-d tensors)") from err
    if not (math.isfinite(a) and math.isfinite(s)):
        raise ValueError(f"alpha and sigma must be finite, got alpha={a}, sigma={s}")
    if a < 0 or s < 0:
        raise ValueError(f"need alpha >= 0 and sigma >= 0, got alpha={a}, sigma={s}")
    if a == 0 and s == 0:
        raise ValueError("alpha and sigma cannot both be zero (the marginal would be a point mass)")
    return a, s


def autograd_score(log_prob, x: Tensor) -> Tensor:
    with torch.enable_grad():
        y = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(log_prob(y).sum(), y)
    return grad.detach()


@dataclass(frozen=True)
class _Components:
    means: Tensor  # (K, 2)
    variances: Tensor  # (K, 2) diagonal variances
    log_weights: Tensor  # (K,) normalised


class GaussianMixture(Target2D):
    """Σ_k w_k N(μ_k, diag(v_k)): exact sampling, density, score, moments and diffused marginals
    (under ``x_t = a x0 + s eps`` the means become ``a μ_k`` and the variances ``a² v_k + s²``)."""

    def __init__(
        self,
        means: Tensor,
        stds: Tensor | float,
        weights: Tensor | None = None,
        name: str = "gmm",
        bounds: Bounds | None = None,
    ) -> None:
        means = torch.as_tensor(means, dtype=torch.float64).reshape(-1, 2)
        k = means.shape[0]
        stds = torch.as_tensor(stds, dtype=torch.float64)
        if stds.ndim == 0:  # one isotropic std for all components
            variances = torch.full((k, 2), float(stds) ** 2, dtype=torch.float64)
        elif stds.ndim == 1:  # (K,) isotropic per component
            variances = (stds.reshape(k, 1) ** 2).expand(k, 2)
        else:  # (K, 2) diagonal
            variances = stds.reshape(k, 2) ** 2
        w = (
            torch.ones(k, dtype=torch.float64)
            if weights is None
            else torch.as_tensor(weights, dtype=torch.float64)
        )
        if (
            w.shape != (k,)
            or not bool(torch.isfinite(w).all())
            or bool((w < 0).any())
            or float(w.sum()) <= 0
        ):
            raise ValueError("mixture weights must be k non-negative numbers with a positive sum")
        if not bool(torch.isfinite(means).all()) or float(means.abs().max()) > 1e4:
            raise ValueError("mixture means must be finite numbers of size at most 1e4")
        # finite, positive and neither underflowing (1e-300) nor overflowing (1e308) when squared
        if not bool(torch.isfinite(variances).all()) or bool(
            ((variances < 1e-12) | (variances > 1e8)).any()
        ):
            raise ValueError("mixture standard deviations must be in [1e-6, 1e4]")
        self.comp = _Components(means, variances.clone(), torch.log(w / w.sum()))
        self.name = name
        if bounds is None:
            sd = variances.sqrt().max()
            lo = (means - 3.5 * sd).min(0).values
            hi = (means + 3.5 * sd).max(0).values
            c = (lo + hi) / 2
            half = float((hi - lo).max()) / 2
            bounds = (
                float(c[0]) - half,
                float(c[0]) + half,
                float(c[1]) - half,
                float(c[1]) + half,
            )
        self.bounds = bounds

    @property
    def means(self) -> Tensor:
        return self.comp.means.float()

    @property
    def weights(self) -> Tensor:
        return self.comp.log_weights.exp().float()

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_int("sample count", n, 0, MAX_SAMPLES)
        if n == 0:  # torch.multinomial refuses n = 0
            return torch.zeros(0, 2)
        idx = torch.multinomial(
            self.comp.log_weights.exp(), n, replacement=True, generator=generator
        )
        eps = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.comp.means[idx] + self.comp.variances[idx].sqrt() * eps).float()

    def _component_log_probs(self, x: Tensor, alpha, sigma) -> Tensor:
        """log w_k + log N(x; a μ_k, a² v_k + s²) for every component: (N, K)."""
        a, s = check_alpha_sigma(alpha, sigma)
        x64 = x.double().unsqueeze(1)  # (N, 1, 2)
        mu = a * self.comp.means  # (K, 2)
        var = a**2 * self.comp.variances + s**2  # (K, 2)
        quad = ((x64 - mu) ** 2 / var).sum(-1)  # (N, K)
        log_norm = -LOG_2PI - 0.5 * torch.log(var).sum(-1)  # (K,)
        return self.comp.log_weights + log_norm - 0.5 * quad

    def log_prob_t(self, x: Tensor, alpha, sigma) -> Tensor:
        return torch.logsumexp(self._component_log_probs(x, alpha, sigma), dim=1).to(x.dtype)

    def score_t(self, x: Tensor, alpha, sigma) -> Tensor:
        lp = self._component_log_probs(x, alpha, sigma)  # (N, K)
        resp = torch.softmax(lp, dim=1)  # posterior responsibilities (N, K)
        a, s = check_alpha_sigma(alpha, sigma)
        mu = a * self.comp.means
        var = a**2 * self.comp.variances + s**2
        per_comp = (mu.unsqueeze(0) - x.double().unsqueeze(1)) / var  # (N, K, 2)
        return (resp.unsqueeze(-1) * per_comp).sum(1).to(x.dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        return self.log_prob_t(x, 1.0, 0.0)

    def score(self, x: Tensor) -> Tensor:
        return self.score_t(x, 1.0, 0.0)

    def moments(self, n: int = 0) -> tuple[Tensor, Tensor]:
        w = self.comp.log_weights.exp()  # (K,)
        mean = (w[:, None] * self.comp.means).sum(0)
        d = self.comp.means - mean
        cov = (
            w[:, None, None]
            * (torch.diag_embed(self.comp.variances) + d[:, :, None] * d[:, None, :])
        ).sum(0)
        return mean, cov
