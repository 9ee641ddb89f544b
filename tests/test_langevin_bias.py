"""Langevin's equilibrium and its bias (lecture 4-1 appendix): ULA's stationary law on a Gaussian
against its closed form, MALA's exactness, and ``langevin_bias`` (KL grows with ε for ULA, MALA
removes it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlib.device import make_generator
from genlib.distributions import TARGETS
from genlib.lab.langevin import bias_step_sizes, fisher_length2, histogram_kl, langevin_bias
from genlib.samplers.mala import mala

V = 0.5  # variance of the test Gaussian N(0, V I)


def _log_prob(x):
    return -0.5 * (x**2).sum(-1) / V


def _score(x):
    return -x / V


@pytest.mark.parametrize("eps", [0.1, 0.4])
def test_ula_stationary_variance_matches_closed_form_and_mala_is_exact(eps):
    """x' = (1 − ε/V) x + √(2ε) z has stationary variance V / (1 − ε/(2V)); MALA keeps V."""
    g = make_generator(0)
    x0 = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(1)) * V**0.5
    ula = mala(_log_prob, _score, x0, eps, 300, generator=g, adjust=False)
    var = float(ula.xs[-1].var())
    assert var == pytest.approx(V / (1 - eps / (2 * V)), rel=0.04)
    assert float(ula.acceptance.mean()) == 1.0
    met = mala(_log_prob, _score, x0, eps, 300, generator=make_generator(0))
    assert float(met.xs[-1].var()) == pytest.approx(V, rel=0.04)
    assert 0.3 < float(met.acceptance.mean()) < 1.0


def test_mala_records_and_validates():
    x0 = torch.zeros(10, 2)
    run = mala(_log_prob, _score, x0, 0.1, 20, generator=make_generator(0), record=[0, 10, 20])
    assert run.steps == [0, 10, 20] and run.xs.shape == (3, 10, 2)
    col = torch.full((10, 1), 0.1)
    assert mala(_log_prob, _score, x0, col, 5, generator=make_generator(0)).xs.shape == (1, 10, 2)
    with pytest.raises(ValueError, match="positive"):
        mala(_log_prob, _score, x0, -0.1, 5)


def test_histogram_kl_of_exact_samples_is_small_and_of_a_shifted_cloud_large():
    target = TARGETS.get("8gaussians")()
    g = torch.Generator().manual_seed(0)
    x = target.sample(100_000, generator=g)
    kl, out = histogram_kl(target, x)
    assert 0 <= kl < 0.03 and out == 0.0
    kl_shift, _ = histogram_kl(target, x + 0.3)
    assert kl_shift > 10 * kl


@pytest.mark.parametrize("c", [1.3, 0.8])
def test_histogram_kl_matches_the_gaussian_closed_form_in_its_direction(c):
    """p = N(0, σ² I) (two_peaks at distance 0), chain = p's samples scaled by c: the estimate is
    KL(p‖N(0, c²σ² I)) = d (log c + 1/(2c²) − ½) up to the histogram's floor and binning, and far
    from the reverse KL (a swapped direction or a lost ½ would show)."""
    import math

    target = TARGETS.get("two_peaks")(distance=0.0)
    x = target.sample(200_000, generator=torch.Generator().manual_seed(0))
    kl, _ = histogram_kl(target, c * x)
    forward = 2 * (math.log(c) + 1 / (2 * c * c) - 0.5)
    reverse = 2 * (-math.log(c) + c * c / 2 - 0.5)
    assert kl == pytest.approx(forward, abs=0.01)
    assert abs(kl - reverse) > 0.02


def test_ula_bias_grows_with_eps_and_mala_removes_it():
    target = TARGETS.get("8gaussians")()
    eps = (0.02, 0.05, 0.1, 0.2)
    ula = langevin_bias(target, eps, generator=make_generator(0))
    met = langevin_bias(target, eps, generator=make_generator(0), mala=True)
    assert np.all(np.diff(ula.kl) > 0), ula.kl  # ULA: the bias grows with ε
    assert ula.kl[-1] > 10 * ula.floor
    assert met.kl[-1] < 0.2 * ula.kl[-1]  # MALA at the largest ε: the bias is gone
    assert met.kl[-1] < 2 * met.floor
    assert np.all(met.acceptance < 1) and np.all(ula.acceptance == 1)
    # KL ~ ε² (an O(ε) bias of the law): doubling ε from 0.1 to 0.2 multiplies the excess by ~4
    ratio = (ula.kl[-1] - ula.floor) / (ula.kl[-2] - ula.floor)
    assert 2.5 < ratio < 8.0


def test_langevin_bias_rejects_bad_step_sizes():
    target = TARGETS.get("8gaussians")()
    with pytest.raises(ValueError, match="step sizes"):
        langevin_bias(target, (0.1, -1.0), generator=make_generator(0))


def test_default_step_sizes_scale_with_the_targets_fisher_length():
    """v_F = d/⟨‖∇log p‖²⟩ is the variance for a Gaussian: two_peaks (std 0.5, far apart) gives
    0.25; 8gaussians' defaults are ε ≈ 0.02 … 0.2; a sharp target gets proportionally smaller ε."""
    assert fisher_length2(TARGETS.get("two_peaks")()) == pytest.approx(0.25, rel=0.05)
    eps = bias_step_sizes(TARGETS.get("8gaussians")())
    assert eps == pytest.approx((0.02, 0.05, 0.1, 0.2), rel=0.1)
    sharp = bias_step_sizes(TARGETS.get("25gaussians")())
    assert sharp[-1] < 0.01 * eps[-1]
