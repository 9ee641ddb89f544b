"""Curve targets: two moons, the swiss roll and two spirals (see ``shared/TARGETS.md``).

Each is "a random point on a curve, plus noise", so its density is a 1D integral over the curve
parameter of a kernel; ``CurveMixture`` evaluates it with composite Gauss–Legendre quadrature
(≥ 200 nodes per arc, panels of equal arc length). Samples use random parameters (never linspace).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from genlib.distributions._quadrature import (
    CurveMixture,
    NodeSet,
    check_n,
    check_positive,
    curve_panels,
)
from genlib.distributions.base import register

__all__ = ["Moons", "SwissRoll", "TwoSpirals", "moons", "swissroll", "two_spirals"]


def _panels(n_nodes: int, per_panel: int) -> int:
    """Panels per arc for about ``n_nodes`` quadrature nodes per arc."""
    try:
        n = int(n_nodes) if not isinstance(n_nodes, bool) and int(n_nodes) == n_nodes else -1
    except (TypeError, ValueError):
        n = -1
    if not (32 <= n <= 20000):
        raise ValueError(f"n_nodes must be an integer in [32, 20000], got {n_nodes!r}")
    return math.ceil(n / per_panel)


class Moons(CurveMixture):
    """Two half-circle arcs: θ ~ U(0, π), upper (cos θ, sin θ), lower (1 - cos θ, 0.5 - sin θ),
    each with probability ½; then ×2 + (-1, -0.2), plus N(0, noise²) (FFJORD/sklearn: noise 0.2
    after scaling). Density: quadrature over θ on each arc (208 nodes per arc: log-density error
    < 1e-8 anywhere in the bounds)."""

    per_panel = 16

    def __init__(self, noise: float = 0.2, n_nodes: int = 208) -> None:
        self.std = check_positive("moons noise", noise, 0.0, 2.0)
        self.name = "moons"
        self.bounds = (-4.0, 4.0, -4.0, 4.0)
        self._set_levels(self._nodes, _panels(n_nodes, self.per_panel))

    @staticmethod
    def _arc(upper: bool) -> Callable[[np.ndarray], np.ndarray]:
        def c(t: np.ndarray) -> np.ndarray:
            if upper:
                pts = np.stack([np.cos(t), np.sin(t)], -1)
            else:
                pts = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], -1)
            return 2 * pts + np.array([-1.0, -0.2])

        return c

    def _nodes(self, panels: int) -> NodeSet:
        cs, ws = [], []
        for upper in (True, False):
            arc = self._arc(upper)
            t, w = curve_panels(arc, 0.0, math.pi, panels, self.per_panel)  # (P, m)
            cs.append(arc(t))  # (P, m, 2)
            ws.append(0.5 * w / math.pi)
        return NodeSet.from_arrays(np.concatenate(cs), np.concatenate(ws))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_n(n)
        theta = torch.rand(n, generator=generator, dtype=torch.float64) * math.pi
        upper = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
        c, s = theta.cos(), theta.sin()
        pts = torch.where(upper[:, None], torch.stack([c, s], 1), torch.stack([1 - c, 0.5 - s], 1))
        x = 2 * pts + torch.tensor([-1.0, -0.2], dtype=torch.float64)
        return (x + self.std * torch.randn(n, 2, generator=generator, dtype=torch.float64)).float()


class SwissRoll(CurveMixture):
    """t ~ U(1.5π, 4.5π); (t cos t, t sin t)/5 + N(0, noise²) (sklearn's roll, FFJORD scaling).
    Density: quadrature over t (320 nodes: log-density error < 1e-10 in the bounds)."""

    T0, T1 = 1.5 * math.pi, 4.5 * math.pi
    per_panel = 32

    def __init__(self, noise: float = 0.2, n_nodes: int = 320) -> None:
        self.std = check_positive("swissroll noise", noise, 0.0, 2.0)
        self.name = "swissroll"
        self.bounds = (-4.0, 4.0, -4.0, 4.0)
        self._set_levels(self._nodes, _panels(n_nodes, self.per_panel))

    @staticmethod
    def _curve(t: np.ndarray) -> np.ndarray:
        return np.stack([t * np.cos(t), t * np.sin(t)], -1) / 5.0

    def _nodes(self, panels: int) -> NodeSet:
        t, w = curve_panels(self._curve, self.T0, self.T1, panels, self.per_panel)
        return NodeSet.from_arrays(self._curve(t), w)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_n(n)
        t = self.T0 + (self.T1 - self.T0) * torch.rand(n, generator=generator, dtype=torch.float64)
        x = torch.stack([t * t.cos(), t * t.sin()], 1) / 5.0
        return (x + self.std * torch.randn(n, 2, generator=generator, dtype=torch.float64)).float()


class TwoSpirals(CurveMixture):
    """FFJORD's two spirals: n = √u·3π (u ~ U(0, 1)); arm (-n cos n, n sin n) + U(0, 0.5)²,
    negated with probability ½; /3; + N(0, noise²).

    Given n and the arm, x0 is uniform on a square of side 1/6, so the kernel is a box ⊗ Gaussian
    (products of normal-CDF differences); the quadrature runs over n with density 2n/(3π)²
    (448 nodes per arm: log-density error < 1e-9 where log p > -60, ~1e-6 in the far corners).
    """

    N_MAX = 3 * math.pi
    per_panel = 32

    def __init__(self, noise: float = 0.1, n_nodes: int = 448) -> None:
        self.std = check_positive("2spirals noise", noise, 0.0, 2.0)
        self.half_width = 0.5 / 3 / 2  # U(0, 0.5)/3 is a box of half-width 1/12
        self.name = "2spirals"
        self.bounds = (-4.0, 4.0, -4.0, 4.0)
        self._set_levels(self._nodes, _panels(n_nodes, self.per_panel))

    @staticmethod
    def _arm(t: np.ndarray) -> np.ndarray:
        return np.stack([-t * np.cos(t), t * np.sin(t)], -1) / 3.0

    def _nodes(self, panels: int) -> NodeSet:
        dens = lambda t: 2 * t / self.N_MAX**2  # noqa: E731  density of n = 3π√u
        t, w = curve_panels(self._arm, 0.0, self.N_MAX, panels, self.per_panel, density=dens)
        c = self._arm(t) + self.half_width  # (P, m, 2) box centres of the first arm
        return NodeSet.from_arrays(np.concatenate([c, -c]), np.concatenate([w, w]))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_n(n)
        t = torch.rand(n, generator=generator, dtype=torch.float64).sqrt() * self.N_MAX
        arm = torch.stack([-t * t.cos(), t * t.sin()], 1)
        arm = arm + 0.5 * torch.rand(n, 2, generator=generator, dtype=torch.float64)
        sign = torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < 0.5, 1.0, -1.0)
        x = sign[:, None] * arm / 3.0
        return (x + self.std * torch.randn(n, 2, generator=generator, dtype=torch.float64)).float()


@register("moons")
def moons(noise: float = 0.2, n_nodes: int = 208) -> Moons:
    """Two moons (FFJORD scaling), noise σ = 0.2."""
    return Moons(noise, n_nodes)


@register("swissroll")
def swissroll(noise: float = 0.2, n_nodes: int = 320) -> SwissRoll:
    """Swiss roll (t ∈ [1.5π, 4.5π], /5), noise σ = 0.2."""
    return SwissRoll(noise, n_nodes)


@register("2spirals")
def two_spirals(noise: float = 0.1, n_nodes: int = 448) -> TwoSpirals:
    """FFJORD's two spirals, noise σ = 0.1."""
    return TwoSpirals(noise, n_nodes)
