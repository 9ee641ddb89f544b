"""Score matching (4-1) and denoising score matching / NCSN (4-2): objectives against independent
computations (finite differences, autograd, Gaussian identities), plus the models' contracts."""

from __future__ import annotations

import math

import pytest
import torch

from genlib import distributions
from genlib.models.ncsn import NCSN, component_fractions, dsm_loss, dsm_target, geometric_ladder
from genlib.models.score_matching import (
    ScoreMatching,
    compare_score_fields,
    hyvarinen_loss,
    hyvarinen_terms,
)
from genlib.nn import MLP
from genlib.runs import RunSpec, evaluate, run
from genlib.training import TrainConfig, train

MEAN = torch.tensor([0.5, -1.0], dtype=torch.float64)
COV = torch.tensor([[0.6, 0.25], [0.25, 0.4]], dtype=torch.float64)
PREC = torch.linalg.inv(COV)


def true_score(x: torch.Tensor) -> torch.Tensor:
    return -(x - MEAN.to(x.dtype)) @ PREC.to(x.dtype).T


def gaussian_samples(n: int, seed: int = 0) -> torch.Tensor:
    z = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return MEAN + z @ torch.linalg.cholesky(COV).T


# -- 4-1: Hyvärinen score matching ------------------------------------------------------------


def test_exact_divergence_matches_finite_differences():
    torch.manual_seed(0)
    net = MLP(2, 2, hidden=16, depth=2, activation="softplus").double()
    x = torch.randn(50, 2, dtype=torch.float64)
    sq, div = hyvarinen_terms(net, x)
    h = 1e-5
    fd = torch.zeros(50, dtype=torch.float64)
    with torch.no_grad():
        for i in range(2):
            e = torch.zeros(2, dtype=torch.float64)
            e[i] = h
            fd += (net(x + e)[:, i] - net(x - e)[:, i]) / (2 * h)
        s = net(x)
    torch.testing.assert_close(div, fd, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(sq, (s**2).sum(-1))
    torch.testing.assert_close(hyvarinen_loss(net, x), (sq + 2 * fd).mean(), rtol=1e-6, atol=1e-7)


def test_hyvarinen_loss_is_minimised_by_the_true_score():
    """J(s) = ⟨s² + 2∇·s⟩ = ⟨(s − ∇log p)²⟩ − ⟨(∇log p)²⟩: for the true score J = −tr Σ⁻¹, and any
    perturbation raises J by ⟨(s − ∇log p)²⟩ (up to Monte-Carlo error)."""
    x = gaussian_samples(40_000)
    j_true = hyvarinen_loss(true_score, x)
    assert float(j_true.detach()) == pytest.approx(-float(PREC.trace()), rel=0.02)

    def perturbed(y: torch.Tensor) -> torch.Tensor:
        return 1.3 * true_score(y) + torch.stack([0.2 * y[:, 1], torch.sin(y[:, 0])], 1)

    j_pert = hyvarinen_loss(perturbed, x)
    gap = ((perturbed(x) - true_score(x)) ** 2).sum(-1).mean()
    assert float(j_pert.detach()) > float(j_true.detach())
    assert float((j_pert - j_true).detach()) == pytest.approx(float(gap), rel=0.05)


def test_score_matching_learns_a_gaussian_score():
    target = distributions.build("two_peaks", distance=0.0, std=0.7)  # one Gaussian N(0, 0.49 I)
    torch.manual_seed(0)
    model = ScoreMatching(hidden=32, depth=2, langevin_steps=300, step_size=0.02)
    cfg = TrainConfig(steps=400, batch_size=256, lr=3e-3, data_size=5000, log_every=100)
    res = train(model, target, cfg, device=torch.device("cpu"))
    assert res.status == "ok"
    x = target.sample(2000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        err = (model.score(x) - target.score(x)).norm(dim=-1).mean()
        scale = target.score(x).norm(dim=-1).mean()
    assert float(err) < 0.25 * float(scale)
    # the data statistics the sampler starts from
    assert torch.allclose(model.data_mean, torch.zeros(2), atol=0.05)
    assert torch.allclose(model.data_std, torch.full((2,), 0.7), rtol=0.05)
    x0 = model.init_points(500, "box", generator=torch.Generator().manual_seed(0))
    assert bool(((x0 >= model.data_lo) & (x0 <= model.data_hi)).all())
    far = model.init_points(500, "far", generator=torch.Generator().manual_seed(0))
    assert float(far.abs().max()) > float(model.data_hi.abs().max())
    traj = model.trajectory(100, num_frames=7, generator=torch.Generator().manual_seed(0))
    assert traj.xs.shape == (7, 100, 2) and traj.time_label == "Langevin step"
    assert float(traj.ts[-1]) == 300


def test_compare_score_fields_grid():
    target = distributions.build("8gaussians")
    cmp = compare_score_fields(
        target.score, target.score, target.bounds, grid_size=12, log_p_fn=target.log_prob
    )
    assert cmp.learned.shape == (12, 12, 2) and cmp.error.shape == (12, 12)
    assert float(cmp.error.max()) == 0.0
    # row-major layout: entry [iy, ix] is the field at (xs[ix], ys[iy])
    pt = torch.tensor([[float(cmp.xs[3]), float(cmp.ys[7])]])
    torch.testing.assert_close(cmp.true[7, 3], target.score(pt)[0])
    torch.testing.assert_close(cmp.log_p[7, 3], target.log_prob(pt)[0])


# -- 4-2: denoising score matching / NCSN -----------------------------------------------------


def test_dsm_target_is_the_kernel_score():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 2, generator=g, dtype=torch.float64)
    sigma = 0.37
    xt = (x + sigma * torch.randn(20, 2, generator=g, dtype=torch.float64)).requires_grad_(True)
    log_kernel = (
        -0.5 * ((xt - x) ** 2).sum(-1) / sigma**2 - math.log(2 * math.pi * sigma**2)
    ).sum()
    (grad,) = torch.autograd.grad(log_kernel, xt)
    torch.testing.assert_close(dsm_target(xt.detach(), x, sigma), grad)


def test_dsm_loss_weighting_and_vincent_identity():
    """λ(σ) = σ²; and E_{x,x̃}‖s − ∇log p(x̃|x)‖² − E_{x̃}‖s − ∇log p_σ(x̃)‖² does not depend on s
    (Vincent 2011), checked for two different s with the exact diffused score of a Gaussian."""
    x = gaussian_samples(60_000, seed=1).float()
    sigma = 0.5
    xt = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    s_a = torch.zeros_like(xt)
    manual = sigma**2 * ((s_a + (xt - x) / sigma**2) ** 2).sum(-1).mean()
    torch.testing.assert_close(dsm_loss(s_a, xt, x, sigma), manual)
    cov_s = (COV + sigma**2 * torch.eye(2, dtype=torch.float64)).float()
    prec_s = torch.linalg.inv(cov_s)

    def diffused(y):
        return -(y - MEAN.float()) @ prec_s.T

    def gap(s):
        dsm = ((s - dsm_target(xt, x, sigma)) ** 2).sum(-1).mean()
        esm = ((s - diffused(xt)) ** 2).sum(-1).mean()
        return float(dsm - esm)

    c1 = gap(diffused(xt))
    c2 = gap(0.5 * diffused(xt) + 0.3)
    assert c1 == pytest.approx(c2, rel=0.03)
    # and the constant is E‖∇log p(x̃|x)‖² − E‖∇log p_σ(x̃)‖² = 2/σ² − tr(Σ_σ⁻¹)
    assert c1 == pytest.approx(2 / sigma**2 - float(prec_s.trace()), rel=0.03)


def test_ladder_and_ncsn_loss():
    ladder = geometric_ladder(10.0, 0.02, 10)
    assert float(ladder[0]) == pytest.approx(10.0) and float(ladder[-1]) == pytest.approx(0.02)
    ratios = ladder[:-1] / ladder[1:]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios)) and bool((ratios > 1).all())
    torch.manual_seed(0)
    model = NCSN(hidden=32, depth=2)
    x = torch.randn(128, 2)
    torch.manual_seed(5)
    loss = model.loss(x)
    torch.manual_seed(5)
    idx = torch.randint(0, 10, (128,))
    sig = model.sigmas[idx][:, None]
    xt = x + sig * torch.randn_like(x)
    ref = (
        sig**2 * ((model.score(xt, sig[:, 0]) + (xt - x) / sig**2) ** 2).sum(-1, keepdim=True)
    ).mean()
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # score(x, σ) with a scalar σ equals the per-sample form
    torch.testing.assert_close(model.score(x, 0.3), model.score(x, torch.full((128,), 0.3)))


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_ncsn_sampling_contract(mode):
    torch.manual_seed(0)
    model = NCSN(mode=mode, hidden=16, depth=2, num_levels=4, steps_per_level=5).eval()
    a = model.sample(30, generator=torch.Generator().manual_seed(1))
    b = model.sample(30, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    assert a.shape == (30, 2) and torch.isfinite(a).all()
    traj = model.trajectory(30, num_frames=6, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(traj.xs[-1], a)
    if mode == "multi":
        assert (
            traj.time_label == "σ"
            and float(traj.ts[0]) == pytest.approx(10.0)
            and float(traj.ts[-1]) == 0.0
        )


def test_component_fractions():
    target = distributions.build("far_mixture")
    x = target.sample(20_000, generator=torch.Generator().manual_seed(0))
    frac = component_fractions(target, x)
    assert frac is not None and torch.allclose(
        frac, torch.tensor([0.8, 0.2], dtype=torch.float64), atol=0.01
    )


# -- seeded quality (reduced budgets) ---------------------------------------------------------


@pytest.mark.slow
def test_ncsn_fast_reaches_the_floor_on_8gaussians(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLIB_CACHE", str(tmp_path))
    spec = RunSpec.from_preset("ncsn", "8gaussians", preset="fast", seed=0, steps=2500)
    metrics = evaluate(run(spec, use_cache=False), n=3000)
    assert metrics["sliced_wasserstein"] < 3 * metrics["sliced_wasserstein_floor"], metrics


@pytest.mark.slow
def test_score_matching_fast_reaches_the_floor_on_8gaussians(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLIB_CACHE", str(tmp_path))
    spec = RunSpec.from_preset("score_matching", "8gaussians", preset="fast", seed=0, steps=2000)
    metrics = evaluate(run(spec, use_cache=False), n=3000)
    assert metrics["sliced_wasserstein"] < 3 * metrics["sliced_wasserstein_floor"], metrics
