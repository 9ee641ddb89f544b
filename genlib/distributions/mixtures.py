"""Gaussian-mixture targets: 8 gaussians, 25 gaussians, the lecture's two peaks, the far mixture
and the user's own points."""

from __future__ import annotations

import math

import torch

from genlib.distributions._quadrature import check_positive
from genlib.distributions.base import GaussianMixture, register
from genlib.limits import check_float

__all__ = ["eight_gaussians", "twentyfive_gaussians", "two_peaks", "far_mixture", "custom_gmm"]


@register("8gaussians")
def eight_gaussians(
    radius: float = 2 * math.sqrt(2), std: float = 0.5 / math.sqrt(2)
) -> GaussianMixture:
    """FFJORD's 8 gaussians: centres at radius 2√2, angles 2πk/8, σ = 0.5/√2."""
    radius = check_float("8gaussians radius", radius, 0.0, 100.0)
    std = check_positive("8gaussians std", std, 0.0, 10.0)
    ang = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = radius * torch.stack([ang.cos(), ang.sin()], 1)
    return GaussianMixture(means, std, name="8gaussians", bounds=(-4.5, 4.5, -4.5, 4.5))


@register("25gaussians")
def twentyfive_gaussians(std: float = 0.05 / 2.828) -> GaussianMixture:
    """WGAN-GP's 5x5 grid: centres {-2..2}² · (2/2.828); σ = 0.05/2.828 (sharp; try 0.1 too)."""
    std = check_positive("25gaussians std", std, 0.0, 10.0)
    g = torch.arange(-2, 3, dtype=torch.float64) * (2 / 2.828)
    means = torch.cartesian_prod(g, g)
    return GaussianMixture(means, std, name="25gaussians", bounds=(-2.2, 2.2, -2.2, 2.2))


@register("two_peaks")
def two_peaks(distance: float = 4.0, std: float = 0.5, weight: float = 0.5) -> GaussianMixture:
    """The lecture's KL slide: w N((-d/2, 0), σ²) + (1-w) N((d/2, 0), σ²)."""
    weight = check_float("two_peaks weight", weight, 0.0, 1.0)
    if not (0.0 < weight < 1.0):
        raise ValueError(f"two_peaks weight must be in (0, 1), got {weight!r}")
    distance = check_float("two_peaks distance", distance, 0.0, 100.0)
    std = check_positive("two_peaks std", std, 0.0, 10.0)
    means = torch.tensor([[-distance / 2, 0.0], [distance / 2, 0.0]], dtype=torch.float64)
    half = max(distance / 2 + 4 * std, 3.0)
    return GaussianMixture(
        means,
        std,
        torch.tensor([weight, 1 - weight]),
        name="two_peaks",
        bounds=(-half, half, -half, half),
    )


@register("far_mixture")
def far_mixture(weight: float = 0.8) -> GaussianMixture:
    """0.8 N((5,5), I) + 0.2 N((-5,-5), I): plain Langevin gets the weights wrong."""
    weight = check_float("far_mixture weight", weight, 0.0, 1.0)
    if not (0.0 < weight < 1.0):
        raise ValueError(f"far_mixture weight must be in (0, 1), got {weight!r}")
    means = torch.tensor([[5.0, 5.0], [-5.0, -5.0]], dtype=torch.float64)
    return GaussianMixture(
        means,
        1.0,
        torch.tensor([weight, 1 - weight]),
        name="far_mixture",
        bounds=(-9.0, 9.0, -9.0, 9.0),
    )


MAX_CUSTOM_POINTS = 512


@register("custom_gmm")
def custom_gmm(
    points: tuple[tuple[float, float], ...] = ((-2.0, -1.0), (0.0, 2.0), (2.0, -1.0)),
    std: float = 0.3,
    weights: tuple[float, ...] | None = None,
) -> GaussianMixture:
    """A mixture from the user's points (drawn or taken from an image): x = c_i + σ ε."""
    if len(points) == 0:
        raise ValueError("custom_gmm needs at least one point")
    if len(points) > MAX_CUSTOM_POINTS:
        raise ValueError(f"custom_gmm takes at most {MAX_CUSTOM_POINTS} points")
    std = check_float("custom_gmm std", std, 0.01, 5.0)
    if not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in points):
        raise ValueError("custom_gmm points must be (x, y) pairs")
    for p in points:
        for v in p:
            check_float("custom_gmm point coordinates", v, -100.0, 100.0)
    means = torch.tensor(points, dtype=torch.float64).reshape(-1, 2)
    w = None
    if weights is not None:
        if not isinstance(weights, (list, tuple)) or len(weights) != len(points):
            raise ValueError("custom_gmm weights must be one number per point")
        w = torch.tensor([check_float("custom_gmm weights", v, 0.0, 1e6) for v in weights],
                         dtype=torch.float64)  # fmt: skip
    return GaussianMixture(means, std, w, name="custom_gmm")
