"""Ring targets: concentric circles and rings (see ``shared/TARGETS.md``).

A uniform ring of radius r convolved with N(0, σ² I) has the closed-form (Rice) density
    p(x) = (2πσ²)⁻¹ exp(-(ρ² + r²)/2σ²) I₀(rρ/σ²),  ρ = |x|,
evaluated as ``-(ρ - r)²/2σ² + log i0e(rρ/σ²)`` so that nothing overflows. Under
``x_t = a x0 + s eps`` a ring stays a ring: radius a r, variance a²σ² + s², so every marginal,
score and moment here is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from genlib.distributions._quadrature import as_points, check_alpha_sigma, check_n, check_positive
from genlib.distributions.base import LOG_2PI, Bounds, Target2D, register

__all__ = ["RingMixture", "circles", "rings"]


class RingMixture(Target2D):
    """Σ_j w_j · (uniform ring of radius r_j) ⊗ N(0, σ² I)."""

    def __init__(
        self,
        radii: Sequence[float],
        std: float,
        weights: Sequence[float] | None = None,
        name: str = "rings",
        bounds: Bounds | None = None,
    ) -> None:
        r = torch.as_tensor(list(radii), dtype=torch.float64).reshape(-1)
        if (
            r.numel() == 0
            or r.numel() > 64
            or not bool(torch.isfinite(r).all())
            or bool((r < 0).any())
            or bool((r > 1000).any())
        ):
            raise ValueError("ring radii must be 1 to 64 finite numbers in [0, 1000]")
        self.std = check_positive(f"{name} std", std, 0.0, 10.0)
        w = (
            torch.ones_like(r)
            if weights is None
            else torch.as_tensor(list(weights), dtype=torch.float64)
        )
        if (
            w.shape != r.shape
            or bool((w < 0).any())
            or not bool(torch.isfinite(w).all())
            or float(w.sum()) <= 0
        ):
            raise ValueError(
                "ring weights must be one non-negative number per radius, with a positive sum"
            )
        self.radii = r  # (J,)
        self.log_w = torch.log(w / w.sum())  # (J,)
        self.name = name
        if bounds is None:
            half = math.ceil(2 * (float(r.max()) + 5 * self.std)) / 2
            bounds = (-half, half, -half, half)
        self.bounds = bounds

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_n(n)
        idx = (
            torch.multinomial(self.log_w.exp(), n, replacement=True, generator=generator)
            if n
            else torch.zeros(0, dtype=torch.long)
        )
        ang = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        r = self.radii[idx]
        x = torch.stack([r * ang.cos(), r * ang.sin()], 1)
        return (x + self.std * torch.randn(n, 2, generator=generator, dtype=torch.float64)).float()

    def _terms(self, x: Tensor, a: float, s: float) -> tuple[Tensor, Tensor, Tensor, float]:
        """Per-ring log w_j + log p_j(x) ``(N, J)``, ρ ``(N,)``, z = a r ρ / v ``(N, J)``, v."""
        v = a * a * self.std**2 + s * s
        rho = x.norm(dim=1)  # (N,)
        r = a * self.radii  # (J,)
        z = r * rho[:, None] / v  # (N, J)
        lp = (
            self.log_w
            - LOG_2PI
            - math.log(v)
            - (rho[:, None] - r) ** 2 / (2 * v)
            + torch.log(torch.special.i0e(z))
        )
        return lp, rho, z, v

    def log_prob_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        a, s = check_alpha_sigma(alpha, sigma)
        lp, _, _, _ = self._terms(as_points(x), a, s)
        return torch.logsumexp(lp, dim=1).to(x.dtype)

    def score_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        """∇ log p = x · Σ_j resp_j (-1/v + (a r_j / v)² · I₁(z)/(z I₀(z))): exact, finite at 0."""
        a, s = check_alpha_sigma(alpha, sigma)
        x64 = as_points(x)
        lp, _, z, v = self._terms(x64, a, s)
        resp = torch.softmax(lp, dim=1)  # (N, J)
        zs = z.clamp(min=1e-300)
        i1_over_z = torch.where(z > 1e-8, torch.special.i1e(zs) / zs, torch.full_like(z, 0.5))
        coef = -1.0 / v + (a * self.radii / v) ** 2 * i1_over_z / torch.special.i0e(z)  # (N, J)
        return (x64 * (resp * coef).sum(1, keepdim=True)).to(x.dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        return self.log_prob_t(x, 1.0, 0.0)

    def score(self, x: Tensor) -> Tensor:
        return self.score_t(x, 1.0, 0.0)

    def moments(self, n: int = 0) -> tuple[Tensor, Tensor]:
        """Exact: mean 0, covariance (E r²/2 + σ²) I."""
        er2 = float((self.log_w.exp() * self.radii**2).sum())
        return torch.zeros(2, dtype=torch.float64), (er2 / 2 + self.std**2) * torch.eye(
            2, dtype=torch.float64
        )


@register("circles")
def circles(radii: tuple[float, ...] = (3.0, 1.5), std: float = 0.24) -> RingMixture:
    """Two concentric circles (radius 3 and 1.5, equally likely), noise σ = 0.24."""
    bounds = (-4.5, 4.5, -4.5, 4.5) if tuple(radii) == (3.0, 1.5) and std == 0.24 else None
    return RingMixture(radii, std, name="circles", bounds=bounds)


@register("rings")
def rings(radii: tuple[float, ...] = (3.0, 2.25, 1.5, 0.75), std: float = 0.08) -> RingMixture:
    """Four concentric rings (radii 3, 2.25, 1.5, 0.75), noise σ = 0.08."""
    bounds = (
        (-4.0, 4.0, -4.0, 4.0) if tuple(radii) == (3.0, 2.25, 1.5, 0.75) and std == 0.08 else None
    )
    return RingMixture(radii, std, name="rings", bounds=bounds)
