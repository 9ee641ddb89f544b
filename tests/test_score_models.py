"""Score matching (4-1) and denoising score matching / NCSN (4-2): objectives against independent
computations (finite differences, autograd, Gaussian identities), plus the models' contracts."""

from __future__ import annotations

import math

import pytest
import torch

from genlib import distributions
from genlib.lab.fields import compare_fields, default_level, field_kind
from genlib.lab.langevin import langevin_demo
from genlib.lab.ncsn import component_fractions, mode_weights, ncsn_langevin_demo, noise_ladder
from genlib.models.ncsn import NCSN, dsm_loss, dsm_target, geometric_ladder
from genlib.models.score_matching import ScoreMatching, hyvarinen_loss, hyvarinen_terms
from genlib.nn import MLP
from genlib.processes.forward import simulate_ve_ladder
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


class ExactScoreModel:
    """A stand-in score model whose s_θ is the target's exact score (marginal_at = (1, 0))."""

    device = torch.device("cpu")

    def __init__(self, target):
        self.target = target

    def score(self, x, level=None):
        return self.target.score(x)

    def marginal_at(self, level=None):
        return 1.0, 0.0


def test_compare_fields_grid():
    target = distributions.build("8gaussians")
    cmp = compare_fields(ExactScoreModel(target), target, None, target.bounds, grid_size=12)
    assert cmp.learned.shape == (12, 12, 2) and cmp.error.shape == (12, 12)
    assert float(cmp.error.max()) == 0.0 and cmp.weight == 1.0
    # row-major layout: entry [iy, ix] is the field at (xs[ix], ys[iy])
    pt = torch.tensor([[float(cmp.xs[3]), float(cmp.ys[7])]])
    torch.testing.assert_close(cmp.exact[7, 3], target.score(pt)[0])
    torch.testing.assert_close(cmp.log_p[7, 3], target.log_prob(pt)[0])
    torch.testing.assert_close(cmp.points[7 * 12 + 3], pt[0])
    with pytest.raises(ValueError):
        compare_fields(ExactScoreModel(target), target, None, target.bounds, grid_size=500)
    with pytest.raises(TypeError):
        compare_fields(object(), target, None, target.bounds)


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
    loss = model.loss(x, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the same draws, in the same order: σ indices, then ε
    idx = torch.randint(0, 10, (128,), generator=g)
    sig = model.sigmas[idx][:, None]
    xt = x + sig * torch.randn(x.shape, generator=g)
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


# -- one vocabulary: marginal_at, field comparisons, the lab demos ----------------------------


def test_score_matching_marginal_and_field_are_p_itself():
    """Score matching has no level: marginal_at = (1, 0) and the exact field is ∇ log p."""
    target = distributions.build("8gaussians")
    torch.manual_seed(0)
    model = ScoreMatching(hidden=16, depth=2).eval()
    assert model.marginal_at(None) == model.marginal_at(0.7) == (1.0, 0.0)
    assert field_kind(model) == "score"
    cmp = compare_fields(model, target, None, target.bounds, grid_size=6)
    pts = cmp.points
    assert (cmp.a, cmp.s, cmp.weight, cmp.level) == (1.0, 0.0, 1.0, None)
    torch.testing.assert_close(cmp.exact.reshape(-1, 2), target.score(pts))
    torch.testing.assert_close(cmp.log_p.reshape(-1), target.log_prob(pts))
    with torch.no_grad():
        torch.testing.assert_close(cmp.learned.reshape(-1, 2), model.score(pts))


def test_ncsn_marginal_at_matches_the_ve_noising():
    """NCSN's level is σ: marginal_at(σ) = (1, σ) are the moments of x₀ + σ ε, checked against the
    VE chain x_i = x_{i-1} + √(σ_i² − σ_{i-1}²) z simulated from a point mass up the ladder."""
    model = NCSN(hidden=16, depth=2, num_levels=6, sigma_max=5.0, sigma_min=0.1)
    ladder = torch.tensor(model.sigma_list[::-1], dtype=torch.float64)  # increasing
    n = 40_000
    x0 = torch.tensor([1.5, -2.0], dtype=torch.float64).expand(n, 2).clone()
    xs, idx = simulate_ve_ladder(
        x0, ladder, num_frames=7, generator=torch.Generator().manual_seed(0)
    )
    for xt, i in zip(xs[1:], idx[1:], strict=True):
        sigma = float(ladder[i - 1])
        a, s = model.marginal_at(sigma)
        assert (a, s) == (1.0, sigma)
        assert torch.allclose(xt.mean(0), a * x0[0], atol=5 * s / n**0.5)
        assert torch.allclose(xt.var(0), torch.full((2,), s * s, dtype=xt.dtype), rtol=0.03)
    assert model.marginal_at(None) == (1.0, model.sigma_list[-1])
    with pytest.raises(ValueError):
        model.marginal_at(0.0)
    single = NCSN(mode="single", sigma=0.3, hidden=8, depth=1)
    assert single.marginal_at(2.0) == (1.0, 0.3)  # one σ: the level is ignored


def test_ncsn_field_comparison_is_the_exact_score_at_marginal_at():
    target = distributions.build("8gaussians")
    torch.manual_seed(0)
    model = NCSN(hidden=16, depth=2, num_levels=4).eval()
    sigma = model.sigma_list[2]
    cmp = compare_fields(model, target, sigma, target.bounds, grid_size=7)
    pts = cmp.points
    assert (cmp.a, cmp.s, cmp.weight) == (1.0, sigma, sigma)
    torch.testing.assert_close(cmp.exact.reshape(-1, 2), target.score_t(pts, 1.0, sigma))
    torch.testing.assert_close(cmp.log_p.reshape(-1), target.log_prob_t(pts, 1.0, sigma))
    with torch.no_grad():
        torch.testing.assert_close(cmp.learned.reshape(-1, 2), model.score(pts, sigma))
    # the error in the units of the σ²-weighted DSM loss
    torch.testing.assert_close(cmp.error, sigma * (cmp.learned - cmp.exact).norm(dim=-1))


def test_ncsn_ladder_view():
    model = NCSN(hidden=8, depth=1, num_levels=5, sigma_max=4.0, sigma_min=0.1, step_ratio=0.2)
    lad = noise_ladder(model)
    assert lad.i.tolist() == [1, 2, 3, 4, 5]
    torch.testing.assert_close(lad.sigma, geometric_ladder(4.0, 0.1, 5))
    # α_i = ε σ_i² / σ_L² with ε = step_ratio σ_L²: α_i = step_ratio σ_i²
    torch.testing.assert_close(lad.alpha, 0.2 * lad.sigma**2)


def test_langevin_demo_same_start_and_noise():
    """The learned and the exact chains start at the same points and share their noise, so with
    s_θ replaced by the exact score the two runs coincide."""
    target = distributions.build("two_peaks", distance=3.0, std=0.6)
    torch.manual_seed(0)
    model = ScoreMatching(hidden=8, depth=1, langevin_steps=50, step_size=0.01)
    demo = langevin_demo(model, target, "box", n=200, n_steps=40, num_frames=5, seed=3)
    assert demo.learned.xs.shape == demo.exact.xs.shape == (5, 200, 2)
    torch.testing.assert_close(demo.learned.xs[0], demo.exact.xs[0])
    assert demo.learned.ts.tolist() == [0, 10, 20, 30, 40]
    model.score = lambda x, level=None: target.score(x)  # type: ignore[method-assign]
    twin = langevin_demo(model, target, "box", n=200, n_steps=40, num_frames=5, seed=3)
    torch.testing.assert_close(twin.learned.xs, twin.exact.xs)


def test_ncsn_demo_with_the_exact_score_recovers_the_weights():
    """Song & Ermon's far mixture with the exact diffused score: annealed Langevin gets the 0.8/0.2
    weights, plain Langevin keeps the split of its uniform initial states."""
    target = distributions.build("far_mixture")
    model = NCSN(hidden=8, depth=1, sigma_max=20.0, sigma_min=0.1, num_levels=10, step_ratio=0.1)
    cmp = ncsn_langevin_demo(model, target, use_true_score=True, n=3000, plain_step=0.1, seed=3)
    w = mode_weights(target, {"plain": cmp.plain_samples, "annealed": cmp.annealed_samples})
    assert w is not None and w["target"] == pytest.approx([0.8, 0.2])
    assert abs(w["annealed"][0] - 0.8) < 0.05
    assert abs(w["plain"][0] - 0.8) > 0.15
    assert cmp.annealed.time_label == "σ" and float(cmp.annealed.ts[0]) == pytest.approx(20.0)


def test_default_levels_are_valid_levels():
    """Every score/velocity family has a first level to show, and marginal_at accepts it."""
    from genlib import models

    tiny = {
        "score_matching": {"hidden": 8, "depth": 1},
        "ncsn": {"hidden": 8, "depth": 1, "num_levels": 3},
        "ddpm": {"hidden": 8, "depth": 1, "T": 40},
        "sde": {"hidden": 8, "depth": 1},
        "flow_matching": {"hidden": 8, "depth": 1},
    }
    for name, kw in tiny.items():
        m = models.build(name, **kw)
        assert field_kind(m) == ("velocity" if name == "flow_matching" else "score")
        a, s = m.marginal_at(default_level(m))
        assert 0.0 <= a <= 1.0 and s >= 0.0 and (a, s) != (0.0, 0.0)
        assert (s == 0.0) == (name == "score_matching")  # only score matching fits p itself
    assert default_level(models.build("ncsn", hidden=8, depth=1, num_levels=3)) == pytest.approx(
        0.05
    )
    assert default_level(models.build("ddpm", hidden=8, depth=1, T=40)) == 4
