"""The checkerboard and the banana (see ``shared/TARGETS.md``): both have closed-form densities,
moments and entropies; their diffused marginals are closed form (checkerboard: sums of products of
normal-CDF differences) or a 1D quadrature (banana: over x₁, centred on its posterior)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genlib.distributions._quadrature import (
    as_points,
    check_alpha_sigma,
    check_n,
    check_positive,
    gaussian_log_prob,
    log_diff_ndtr,
)
from genlib.distributions.base import LOG_2PI, Bounds, Target2D, autograd_score, register

__all__ = ["Checkerboard", "Banana", "checkerboard", "banana"]


class Checkerboard(Target2D):
    """x₁ ~ U(-2, 2); x₂ ~ U(0, 1) - 2·Bernoulli(½) + (⌊x₁⌋ mod 2); then ×2: uniform (density
    1/32) on the 8 squares [c, c+2) × [r, r+2), c, r ∈ {-4, -2, 0, 2}, with column + row index even.

    ``log_prob`` is -log 32 on the support and -inf off it; ``score`` is 0 everywhere (inside it is
    exactly 0; outside it is undefined). For pictures of the score use ``score_t`` with sigma > 0.
    """

    EDGES = (-4.0, -2.0, 0.0, 2.0)  # lower edges of the 4 columns / rows (side 2)

    def __init__(self) -> None:
        self.name = "checkerboard"
        self.bounds = (-4.5, 4.5, -4.5, 4.5)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_n(n)
        x1 = 4 * torch.rand(n, generator=generator, dtype=torch.float64) - 2
        flip = (torch.rand(n, generator=generator, dtype=torch.float64) < 0.5).double()
        x2 = (
            torch.rand(n, generator=generator, dtype=torch.float64)
            - 2 * flip
            + torch.remainder(torch.floor(x1), 2)
        )
        return (2 * torch.stack([x1, x2], 1)).float()

    def log_prob(self, x: Tensor) -> Tensor:
        x64 = as_points(x).detach()
        idx = torch.floor(x64 / 2) + 2  # (N, 2) column / row index, 0..3 inside
        inside = ((idx >= 0) & (idx <= 3)).all(1) & (torch.remainder(idx.sum(1), 2) == 0)
        out = torch.full((x64.shape[0],), -math.inf, dtype=torch.float64)
        return out.masked_fill(inside, -math.log(32.0)).to(x.dtype)

    def score(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)

    def _log_prob_t64(self, x: Tensor, a: float, s: float) -> Tensor:
        """log p_t = -log(32 a²) + log Σ_squares Π_j [Φ((x_j - a lo_j)/s) - Φ((x_j - a hi_j)/s)]."""
        lo = torch.tensor(self.EDGES, dtype=torch.float64)  # (4,)
        zh = (x[:, :, None] - a * lo) / s  # (N, 2, 4)
        zl = (x[:, :, None] - a * (lo + 2)) / s
        ld = log_diff_ndtr(zl, zh)  # (N, 2, 4) log of the per-coordinate CDF differences
        even = torch.logsumexp(ld[:, :, 0::2], dim=2)  # (N, 2) columns/rows 0 and 2
        odd = torch.logsumexp(ld[:, :, 1::2], dim=2)  # (N, 2) columns/rows 1 and 3
        both = torch.stack([even.sum(1), odd.sum(1)], 1)  # (N, 2): even×even + odd×odd squares
        return torch.logsumexp(both, dim=1) - math.log(32.0 * a * a)

    def log_prob_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        a, s = check_alpha_sigma(alpha, sigma)
        if s == 0.0:
            return (self.log_prob(x.double() / a) - 2 * math.log(a)).to(x.dtype)
        x64 = as_points(x)
        if a == 0.0:
            return gaussian_log_prob(x64, s * s).to(x.dtype)
        return self._log_prob_t64(x64, a, s).to(x.dtype)

    def score_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        a, s = check_alpha_sigma(alpha, sigma)
        if s == 0.0:
            return torch.zeros_like(x)
        if a == 0.0:
            return (-x.double() / (s * s)).to(x.dtype)
        return autograd_score(lambda y: self._log_prob_t64(y, a, s), as_points(x)).to(x.dtype)

    def entropy(self, n: int = 0, generator: torch.Generator | None = None) -> float:
        return math.log(32.0)

    def moments(self, n: int = 0) -> tuple[Tensor, Tensor]:
        """Exact: mean 0, Var x₁ = Var x₂ = 16/3, Cov(x₁, x₂) = 1."""
        return torch.zeros(2, dtype=torch.float64), torch.tensor(
            [[16 / 3, 1.0], [1.0, 16 / 3]], dtype=torch.float64
        )


class Banana(Target2D):
    """x₁ ~ N(0, σ₁²); x₂ | x₁ ~ N(b x₁² + c, σ₂²) (defaults σ₁ = 1.5, b = 0.5, c = -1.5, σ₂ = 0.5).

    Density, score, moments and entropy are closed form. The diffused marginal integrates x₁ out:
    p_t(y) = N(y₁; 0, a²σ₁² + s²) · E[N(y₂; a(b x₁² + c), a²σ₂² + s²)] over the posterior
    x₁ | y₁ ~ N(μ, v), by a uniform-grid rule in z = (x₁ - μ)/√v on [-14, 14] (spacing 0.1,
    spectrally accurate: relative error < 1e-12 wherever log p_t > -60 in the bounds).
    """

    Z_MAX, DZ = 14.0, 0.1

    def __init__(
        self, std1: float = 1.5, std2: float = 0.5, curvature: float = 0.5, offset: float = -1.5
    ) -> None:
        self.std1 = check_positive("banana std1", std1, 0.0, 100.0)
        self.std2 = check_positive("banana std2", std2, 0.0, 100.0)
        self.b, self.c = float(curvature), float(offset)
        if not (
            math.isfinite(self.b)
            and math.isfinite(self.c)
            and abs(self.b) <= 10
            and abs(self.c) <= 100
        ):
            raise ValueError("banana curvature must be in [-10, 10] and offset in [-100, 100]")
        self.name = "banana"
        lo = self.c - 3 * self.std2 if self.b >= 0 else self.c + 3 * self.std2 - 8 * self.std1
        self.bounds: Bounds = (-4 * self.std1, 4 * self.std1, lo, lo + 8 * self.std1)
        z = torch.arange(-self.Z_MAX, self.Z_MAX + self.DZ / 2, self.DZ, dtype=torch.float64)
        self._z = z  # (Q,)
        self._lw = torch.log_softmax(-0.5 * z * z, dim=0)  # (Q,) normalised N(0, 1) weights

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_n(n)
        x1 = self.std1 * torch.randn(n, generator=generator, dtype=torch.float64)
        x2 = (
            self.b * x1 * x1
            + self.c
            + self.std2 * torch.randn(n, generator=generator, dtype=torch.float64)
        )
        return torch.stack([x1, x2], 1).float()

    def _log_prob64(self, x: Tensor) -> Tensor:
        x1, x2 = x[:, 0], x[:, 1]
        r = x2 - self.b * x1 * x1 - self.c
        return (
            -LOG_2PI
            - math.log(self.std1 * self.std2)
            - 0.5 * (x1 / self.std1) ** 2
            - 0.5 * (r / self.std2) ** 2
        )

    def log_prob(self, x: Tensor) -> Tensor:
        return self._log_prob64(as_points(x)).to(x.dtype)

    def score(self, x: Tensor) -> Tensor:
        x64 = as_points(x)
        x1, x2 = x64[:, 0], x64[:, 1]
        r = (x2 - self.b * x1 * x1 - self.c) / self.std2**2
        return torch.stack([-x1 / self.std1**2 + 2 * self.b * x1 * r, -r], 1).to(x.dtype)

    def _diffused(
        self, y: Tensor, a: float, s: float, want_score: bool
    ) -> tuple[Tensor, Tensor | None]:
        """log p_t ``(N,)`` and its gradient ``(N, 2)`` for a > 0, s > 0."""
        v1 = a * a * self.std1**2 + s * s  # Var y₁
        v = 1.0 / (1.0 / self.std1**2 + a * a / (s * s))  # posterior variance of x₁ | y₁
        v2 = a * a * self.std2**2 + s * s  # Var y₂ | x₁
        y1, y2 = y[:, 0:1], y[:, 1:2]  # (N, 1)
        mu = v * a * y1 / (s * s)  # (N, 1) posterior mean
        x1 = mu + math.sqrt(v) * self._z  # (N, Q)
        res = y2 - a * (self.b * x1 * x1 + self.c)  # (N, Q)
        lq = self._lw - 0.5 * res * res / v2  # (N, Q)
        lse = torch.logsumexp(lq, dim=1)  # (N,)
        logp = -LOG_2PI - 0.5 * math.log(v1 * v2) - 0.5 * y[:, 0] ** 2 / v1 + lse
        if not want_score:
            return logp, None
        r = torch.softmax(lq, dim=1)  # (N, Q) posterior over the nodes
        g2 = -(r * res).sum(1) / v2
        dmu = v * a / (s * s)  # d x₁ / d y₁ at fixed z
        g1 = -y[:, 0] / v1 + (r * res * (2 * a * self.b * x1)).sum(1) * dmu / v2
        return logp, torch.stack([g1, g2], 1)

    def log_prob_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        a, s = check_alpha_sigma(alpha, sigma)
        x64 = as_points(x)
        if s == 0.0:
            return (self._log_prob64(x64 / a) - 2 * math.log(a)).to(x.dtype)
        if a == 0.0:
            return gaussian_log_prob(x64, s * s).to(x.dtype)
        return torch.cat([self._diffused(c, a, s, False)[0] for c in x64.split(8192)]).to(x.dtype)

    def score_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        a, s = check_alpha_sigma(alpha, sigma)
        x64 = as_points(x)
        if s == 0.0:
            return (self.score(x64 / a) / a).to(x.dtype)
        if a == 0.0:
            return (-x64 / (s * s)).to(x.dtype)
        return torch.cat([self._diffused(c, a, s, True)[1] for c in x64.split(8192)]).to(x.dtype)

    def entropy(self, n: int = 0, generator: torch.Generator | None = None) -> float:
        """H = H(x₁) + H(x₂ | x₁) = log(2πe σ₁ σ₂)."""
        return math.log(2 * math.pi * math.e * self.std1 * self.std2)

    def moments(self, n: int = 0) -> tuple[Tensor, Tensor]:
        """Exact: E x = (0, bσ₁² + c), Var x₁ = σ₁², Var x₂ = σ₂² + 2b²σ₁⁴, Cov = 0."""
        mean = torch.tensor([0.0, self.b * self.std1**2 + self.c], dtype=torch.float64)
        cov = torch.diag(
            torch.tensor(
                [self.std1**2, self.std2**2 + 2 * self.b**2 * self.std1**4], dtype=torch.float64
            )
        )
        return mean, cov


@register("checkerboard")
def checkerboard() -> Checkerboard:
    """Uniform on 8 squares of side 2 in [-4, 4]² (density 1/32)."""
    return Checkerboard()


@register("banana")
def banana(
    std1: float = 1.5, std2: float = 0.5, curvature: float = 0.5, offset: float = -1.5
) -> Banana:
    """x₁ ~ N(0, 1.5²), x₂ | x₁ ~ N(0.5 x₁² - 1.5, 0.5²)."""
    return Banana(std1, std2, curvature, offset)
