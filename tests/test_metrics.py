"""Metrics: ≈ floor for same-distribution samples, grow with a shift; exact KL against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from genlib import distributions
from genlib.metrics import (
    energy_distance,
    exact_kl,
    grid_kl,
    histogram_kl,
    mmd_rbf,
    mode_coverage,
    noise_floor,
    sliced_wasserstein,
)

SAMPLE_METRICS = {
    "sliced_wasserstein": sliced_wasserstein,
    "mmd": mmd_rbf,
    "energy": energy_distance,
}


@pytest.mark.parametrize("name", list(SAMPLE_METRICS))
def test_sample_metric_floor_and_shift(name):
    fn = SAMPLE_METRICS[name]
    p = distributions.build("8gaussians")
    g = torch.Generator().manual_seed(0)
    n = 2000
    floor = noise_floor(p, n, name, repeats=3)
    same = fn(p.sample(n, generator=g), p.sample(n, generator=g), generator=g)
    shifted = [
        fn(p.sample(n, generator=g) + torch.tensor([d, 0.0]), p.sample(n, generator=g), generator=g)
        for d in (0.5, 1.5)
    ]
    assert same < 3 * max(floor, 1e-4)
    assert shifted[0] > 3 * max(floor, 1e-4)
    assert shifted[1] > shifted[0]


def test_sliced_wasserstein_of_a_shift_is_the_projected_shift():
    # W2 between x and x + d along direction u is |d·u|; the sliced value is sqrt(mean (d·u)²) = |d|/√2
    x = torch.randn(4000, 2, generator=torch.Generator().manual_seed(1))
    d = torch.tensor([1.0, 0.0])
    sw = sliced_wasserstein(x, x + d, n_proj=2000, generator=torch.Generator().manual_seed(2))
    assert sw == pytest.approx(1 / math.sqrt(2), rel=0.03)


def _gauss_log_prob(mean, var):
    return lambda x: -math.log(2 * math.pi * var) - 0.5 * ((x - mean) ** 2).sum(-1) / var


def test_exact_kl_matches_closed_form_between_gaussians():
    p = distributions.GaussianMixture(torch.zeros(1, 2), 1.0)
    m, v = torch.tensor([0.5, -0.3]), 1.7
    # KL(N(0, I) ‖ N(m, vI)) in 2D = log v + (2 + |m|²)/(2v)·... (per dim: ½(log v + (1 + m²)/v − 1))
    closed = sum(0.5 * (math.log(v) + (1 + float(mi) ** 2) / v - 1) for mi in m)
    out = exact_kl(p, _gauss_log_prob(m, v), n=50_000, generator=torch.Generator().manual_seed(0))
    assert out["kl"] == pytest.approx(closed, abs=4 * out["stderr"] + 1e-3)
    assert out["entropy"] == pytest.approx(math.log(2 * math.pi * math.e), abs=0.02)


def test_grid_kl_matches_closed_form():
    xs = torch.linspace(-8, 8, 401)
    xx, yy = torch.meshgrid(xs, xs, indexing="xy")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1).double()
    area = float((xs[1] - xs[0]) ** 2)
    m, v = torch.tensor([0.5, -0.3], dtype=torch.float64), 1.7
    lp = _gauss_log_prob(torch.zeros(2, dtype=torch.float64), 1.0)(pts)
    lq = _gauss_log_prob(m, v)(pts)
    closed = sum(0.5 * (math.log(v) + (1 + float(mi) ** 2) / v - 1) for mi in m)
    assert grid_kl(lp, lq, area) == pytest.approx(closed, abs=1e-3)


def test_histogram_kl_small_for_same_large_for_different():
    p = distributions.build("8gaussians")
    g = torch.Generator().manual_seed(0)
    b = p.bounds
    same = histogram_kl(p.sample(20000, generator=g), p.sample(20000, generator=g), b)
    diff = histogram_kl(p.sample(20000, generator=g), torch.randn(20000, 2, generator=g), b)
    assert same < 0.1 < diff


def test_mode_coverage_counts_modes():
    p = distributions.build("8gaussians")
    centres = p.means
    g = torch.Generator().manual_seed(0)
    full = mode_coverage(p.sample(4000, generator=g), centres, radius=0.8)
    assert full["modes_covered"] == 8
    half = p.sample(4000, generator=g)
    half = half[half[:, 0] > 0.5]  # only the modes on the right (3 of 8)
    assert mode_coverage(half, centres, radius=0.8)["modes_covered"] == 3
