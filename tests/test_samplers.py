"""Oracle tests of the samplers with ANALYTIC scores (no network): Langevin, annealed Langevin and
DDPM ancestral sampling must recover the target's moments / mixture weights."""

from __future__ import annotations

import math

import pytest
import torch

from genlib import distributions
from genlib.distributions.base import GaussianMixture
from genlib.processes.ddpm import DDPMSchedule
from genlib.samplers import (
    annealed_langevin,
    annealed_record_points,
    ddpm_ancestral,
    langevin,
    langevin_record_steps,
)

MEAN = torch.tensor([1.0, -0.5])
COV = torch.tensor([[0.5, 0.2], [0.2, 0.3]])  # a correlated Gaussian
PREC = torch.linalg.inv(COV)


def gaussian_score(x: torch.Tensor) -> torch.Tensor:
    """∇ log N(x; MEAN, COV) = −Σ⁻¹ (x − μ), written independently of genlib."""
    return -(x - MEAN) @ PREC.T


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.double()
    m = x.mean(0)
    xc = x - m
    return m, xc.T @ xc / (x.shape[0] - 1)


def test_langevin_recovers_a_correlated_gaussian():
    g = torch.Generator().manual_seed(0)
    x0 = 3.0 * torch.randn(4000, 2, generator=g)  # broad init, far from the mean
    path = langevin(
        gaussian_score, x0, step_size=0.005, n_steps=1500, generator=g, record_every=500
    )
    frames = path.xs
    assert frames.shape == (4, 4000, 2)  # steps 0, 500, 1000, 1500
    assert path.ts.tolist() == [0, 500, 1000, 1500] and path.time_label == "Langevin step"
    torch.testing.assert_close(frames[0], x0)
    m, c = moments(frames[-1])
    assert torch.allclose(m.float(), MEAN, atol=0.05)
    # ULA's stationary covariance is inflated by O(ε): allow 8 %
    assert torch.allclose(c.float(), COV, atol=0.04, rtol=0.08)


def test_langevin_with_a_mixture_score_and_determinism():
    target = distributions.build("two_peaks", distance=3.0, std=0.6)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    x0 = torch.zeros(3000, 2)
    a = langevin(target.score, x0, 0.01, 2000, generator=g1).xs
    b = langevin(target.score, x0, 0.01, 2000, generator=g2).xs
    torch.testing.assert_close(a, b)
    assert a.shape == (2, 3000, 2)
    mean, cov = target.moments()
    m, c = moments(a[-1])
    assert torch.allclose(m, mean, atol=0.12)
    assert torch.allclose(c, cov, atol=0.15, rtol=0.1)


def test_record_points():
    assert langevin_record_steps(10, 3) == [0, 3, 6, 9, 10]
    assert langevin_record_steps(10, 0) == [0, 10]
    pts = annealed_record_points(num_levels=4, steps_per_level=5, num_frames=10)
    assert pts[0] == 0 and pts[-1] == 20 and {5, 10, 15} <= set(pts) and len(pts) <= 10
    with pytest.raises(ValueError):
        langevin(gaussian_score, torch.zeros(2, 2), step_size=-1.0, n_steps=3)


def test_annealed_langevin_recovers_a_gaussian_from_diffused_scores():
    target = GaussianMixture(torch.tensor([[1.0, -0.5]]), torch.tensor([[0.7, 0.4]]))
    sigmas = torch.exp(torch.linspace(math.log(5.0), math.log(0.01), 8))
    g = torch.Generator().manual_seed(2)
    x0 = 5.0 * torch.randn(4000, 2, generator=g)
    path = annealed_langevin(
        lambda x, s: target.score_t(x, 1.0, s),
        x0,
        sigmas,
        eps=0.01**2,
        steps_per_level=100,
        generator=g,
        num_frames=12,
    )
    frames, labels = path.xs, path.ts
    assert (
        path.time_label == "σ"
        and frames.shape[1:] == (4000, 2)
        and labels.shape[0] == frames.shape[0]
    )
    assert (
        float(labels[0]) == pytest.approx(5.0) and float(labels[-1]) == 0.0
    )  # denoised last frame
    mean, cov = target.moments()
    m, c = moments(frames[-1])
    assert torch.allclose(m, mean, atol=0.04)
    assert torch.allclose(c, cov, atol=0.03, rtol=0.08)


def test_annealed_langevin_rejects_an_increasing_ladder():
    with pytest.raises(ValueError, match="decreasing"):
        annealed_langevin(lambda x, s: -x, torch.zeros(4, 2), [0.1, 1.0], 1e-3, 5)


def _weight_of_first_component(target: GaussianMixture, x: torch.Tensor) -> float:
    lp = target._component_log_probs(x, 1.0, 0.0)
    return float((lp.argmax(1) == 0).double().mean())


def test_far_mixture_plain_langevin_gets_weights_wrong_annealed_right():
    """Song & Ermon's Fig. 3 with the exact scores: 0.8/0.2 far-apart modes."""
    target = distributions.build("far_mixture")
    g = torch.Generator().manual_seed(3)
    x0 = 16 * torch.rand(3000, 2, generator=g) - 8  # uniform over the box: symmetric basins
    plain = langevin(target.score, x0, 0.1, 1000, generator=g).xs[-1]
    sigmas = torch.exp(torch.linspace(math.log(20.0), math.log(0.1), 10))
    annealed = annealed_langevin(
        lambda x, s: target.score_t(x, 1.0, s),
        x0,
        sigmas,
        eps=0.1 * 0.1**2,
        steps_per_level=100,
        generator=g,
    )
    w_plain = _weight_of_first_component(target, plain)
    w_annealed = _weight_of_first_component(target, annealed.xs[-1])
    assert abs(w_plain - 0.5) < 0.08  # plain Langevin keeps the basin split of its init
    assert abs(w_annealed - 0.8) < 0.04


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_ddpm_ancestral_with_exact_eps_recovers_a_gaussian(kind, variance):
    target = GaussianMixture(torch.tensor([[1.0, -0.5]]), torch.tensor([[0.7, 0.4]]))
    sched = DDPMSchedule(kind, 200)
    sqrt_ab = sched.alpha_bar.sqrt()
    sqrt_1mab = (1 - sched.alpha_bar).sqrt()

    def eps_fn(x: torch.Tensor, t: int) -> torch.Tensor:
        # ε = −√(1−ᾱ_t) ∇ log p_t(x)
        a, s = float(sqrt_ab[t - 1]), float(sqrt_1mab[t - 1])
        return -s * target.score_t(x, a, s)

    g = torch.Generator().manual_seed(4)
    x_T = torch.randn(5000, 2, generator=g)
    path = ddpm_ancestral(eps_fn, sched, x_T, g, num_frames=11, variance=variance)
    frames, ts, preds = path.xs, path.ts, path.x0_preds
    assert path.time_label == "t"
    assert frames.shape == (11, 5000, 2) and preds.shape == frames.shape
    assert ts[0] == 200 and ts[-1] == 0 and bool((ts[:-1] > ts[1:]).all())
    torch.testing.assert_close(frames[0], x_T)
    torch.testing.assert_close(preds[-1], frames[-1])
    mean, cov = target.moments()
    m, c = moments(frames[-1])
    assert torch.allclose(m, mean, atol=0.04)
    assert torch.allclose(c, cov, atol=0.03, rtol=0.1)
    # the x̂0 prediction at the start is the posterior mean E[x0 | x_T] ≈ E[x0] (x_T ≈ independent of x0)
    assert torch.allclose(preds[0].double().mean(0), mean, atol=0.05)


def test_ddpm_ancestral_is_deterministic_under_a_seed():
    sched = DDPMSchedule("linear", 20)

    def eps_fn(x, t):
        return 0.1 * x

    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    a = ddpm_ancestral(eps_fn, sched, x_T, torch.Generator().manual_seed(9), num_frames=5)
    b = ddpm_ancestral(eps_fn, sched, x_T, torch.Generator().manual_seed(9), num_frames=5)
    for u, v in ((a.xs, b.xs), (a.ts, b.ts), (a.x0_preds, b.x0_preds)):
        torch.testing.assert_close(u, v)
    with pytest.raises(ValueError):
        ddpm_ancestral(eps_fn, sched, x_T, variance="nope")  # type: ignore[arg-type]
