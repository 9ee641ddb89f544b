"""Autoregressive model (2-4): normalisation oracles, teacher forcing, sequential sampling."""

from __future__ import annotations

import math
import tempfile

import numpy as np
import pytest
import torch

from genlib import distributions
from genlib.lab.autoregressive import (
    conditional_curves,
    marginal_curves,
    model_conditional_x2,
    model_marginal_x1,
    target_conditional_x2,
    target_marginal_x1,
)
from genlib.models.autoregressive import Autoregressive, mixture_log_prob, mixture_sample
from genlib.training import TrainConfig, train

CPU = torch.device("cpu")


def _random_model(seed: int = 0) -> Autoregressive:
    """A small model with perturbed weights (so conditionals really depend on x¹), float64."""
    m = Autoregressive(components=4, hidden=16, depth=2, init_seed=0).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return m.eval()


def test_mixture_log_prob_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    logits, means = torch.randn(50, 5, generator=g), torch.randn(50, 5, generator=g)
    stds = torch.rand(50, 5, generator=g) + 0.1
    y = torch.randn(50, generator=g)
    ref = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=logits), torch.distributions.Normal(means, stds)
    ).log_prob(y)
    torch.testing.assert_close(mixture_log_prob(y, logits, means, stds), ref)


def test_mixture_sample_moments():
    logits = torch.tensor([0.0, math.log(3.0)]).expand(40_000, 2)  # weights 1/4, 3/4
    means = torch.tensor([-2.0, 1.0]).expand(40_000, 2)
    stds = torch.tensor([0.5, 0.2]).expand(40_000, 2)
    y = mixture_sample(logits, means, stds, torch.Generator().manual_seed(0))
    mean = 0.25 * -2 + 0.75 * 1
    var = 0.25 * (0.25 + 4) + 0.75 * (0.04 + 1) - mean**2
    assert abs(float(y.mean()) - mean) < 0.03 and abs(float(y.var()) - var) < 0.05


def test_joint_density_integrates_to_one():
    m = _random_model()
    n, lim = 401, 10.0
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    with torch.no_grad():
        dens = m.log_prob(pts).exp().reshape(n, n)
    mass = torch.trapezoid(torch.trapezoid(dens, g, dim=1), g)
    assert abs(float(mass) - 1.0) < 2e-3


@pytest.mark.parametrize("c", [-2.0, 0.0, 0.7, 3.0])
def test_conditional_integrates_to_one_and_factorises(c):
    m = _random_model(seed=1)
    x2 = torch.linspace(-12, 12, 4001, dtype=torch.float64)
    dens = model_conditional_x2(m, c, x2)
    assert abs(float(torch.trapezoid(dens, x2)) - 1.0) < 1e-3
    pts = torch.stack([torch.full_like(x2, c), x2], 1)
    with torch.no_grad():
        joint = m.log_prob(pts)
        torch.testing.assert_close(joint, m.log_prob_x1(pts[:, 0]) + torch.log(dens))


def test_loss_is_teacher_forced_nll():
    m = _random_model(seed=2)
    x = (
        distributions.build("8gaussians")
        .sample(128, generator=torch.Generator().manual_seed(0))
        .double()
    )
    a, b = m.nll_terms(x)
    torch.testing.assert_close(m.loss(x), -m.log_prob(x).mean())
    torch.testing.assert_close(a, -m.log_prob_x1(x[:, 0]).mean())
    torch.testing.assert_close(b, -m.log_prob_x2_given_x1(x[:, 1], x[:, 0]).mean())


def test_sequential_sampling_follows_the_factors():
    m = _random_model(seed=3).float()
    x = m.sample(20_000, generator=torch.Generator().manual_seed(0))
    # x¹ follows q(x¹): compare the mean with the mixture's closed-form mean
    with torch.no_grad():
        logits, means, _ = m.x1_params()
        mean1 = float((torch.softmax(logits, 0) * means).sum())
    assert abs(float(x[:, 0].mean()) - mean1) < 0.05
    # x² | x¹ follows q(x² | x¹): E[x²] = E_x¹[Σ π_k(x¹) μ_k(x¹)] (law of total expectation)
    with torch.no_grad():
        lg, mu, _ = m.x2_params(x[:, 0])
        mean2 = float((torch.softmax(lg, -1) * mu).sum(-1).mean())
    assert abs(float(x[:, 1].mean()) - mean2) < 0.05


def test_trajectory_draws_x1_then_x2():
    m = _random_model(seed=4).float()
    traj = m.trajectory(10, num_frames=21, generator=torch.Generator().manual_seed(9))
    x = m.sample(10, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(traj.xs[-1], x)
    assert bool((traj.xs[0] == 0).all())
    mid = int((traj.ts == 1.0).nonzero()[0])
    torch.testing.assert_close(traj.xs[mid][:, 0], x[:, 0])  # x¹ drawn, x² not yet
    assert bool((traj.xs[mid][:, 1] == 0).all())


def test_target_marginal_and_conditional_by_quadrature():
    p = distributions.build("8gaussians")
    x1 = torch.linspace(-4, 4, 41)
    # closed form: the x¹-marginal of an isotropic mixture is a 1D mixture
    means, sd = p.means.double(), 0.5 / math.sqrt(2)
    ref = (
        torch.exp(-0.5 * ((x1.double()[:, None] - means[:, 0]) / sd) ** 2)
        / (sd * math.sqrt(2 * math.pi))
    ).mean(1)
    torch.testing.assert_close(target_marginal_x1(p, x1).double(), ref, rtol=1e-4, atol=1e-6)
    x2 = torch.linspace(-6, 6, 2001)
    cond = target_conditional_x2(p, 2.0, x2)
    assert abs(float(torch.trapezoid(cond, x2)) - 1.0) < 1e-3
    assert bool((target_conditional_x2(p, 50.0, x2) == 0).all())


def test_factor_curves_pair_the_model_with_the_truth():
    m = _random_model(seed=5)
    p = distributions.build("8gaussians")
    x1 = torch.linspace(-4, 4, 81, dtype=torch.float64)
    v = marginal_curves(m, p, x1)
    np.testing.assert_allclose(v.grid, x1.numpy())
    np.testing.assert_allclose(v.p, target_marginal_x1(p, x1).numpy())
    with torch.no_grad():
        np.testing.assert_allclose(v.q, m.log_prob_x1(x1).exp().numpy())
    np.testing.assert_allclose(model_marginal_x1(m, x1).numpy(), v.q)
    x2 = torch.linspace(-6, 6, 121, dtype=torch.float64)
    c = conditional_curves(m, p, 2.0, x2)
    np.testing.assert_allclose(c.p, target_conditional_x2(p, 2.0, x2).numpy())
    np.testing.assert_allclose(c.q, model_conditional_x2(m, 2.0, x2).numpy())


def test_sampling_and_training_leave_the_global_rng_alone():
    m = _random_model(seed=6).float()
    x = distributions.build("two_peaks").sample(64, generator=torch.Generator().manual_seed(0))
    state = torch.get_rng_state()
    a = m.sample(50, generator=torch.Generator().manual_seed(1))
    m.train_step(x, m.configure_optimizers(1e-3), 1, generator=torch.Generator().manual_seed(2))
    assert torch.equal(state, torch.get_rng_state())
    b = _random_model(seed=6).float().sample(50, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_init_seed_fixes_the_weights_without_the_global_rng():
    state = torch.get_rng_state()
    a = Autoregressive(components=3, hidden=8, depth=2, init_seed=4)
    assert torch.equal(state, torch.get_rng_state())
    b = Autoregressive(components=3, hidden=8, depth=2, init_seed=4)
    c = Autoregressive(components=3, hidden=8, depth=2, init_seed=5)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k], rtol=0, atol=0)
    assert not torch.equal(a.net.net[0].weight, c.net.net[0].weight)


def test_train_reduces_loss_and_round_trip():
    target = distributions.build("two_peaks")
    m = Autoregressive(components=4, hidden=32, depth=2)
    res = train(
        m,
        target,
        TrainConfig(steps=200, batch_size=256, lr=5e-3, log_every=50, data_size=2000),
        device=CPU,
    )
    assert res.status == "ok" and res.losses[-1] < res.losses[0]
    assert {"nll_x1", "nll_x2_given_x1"} <= set(res.history[-1])
    clone = Autoregressive(components=4, hidden=32, depth=2)
    clone.load_state_dict(m.state_dict())
    x = target.sample(16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(clone.log_prob(x), m.log_prob(x))
    with pytest.raises(ValueError):
        Autoregressive(components=0)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["8gaussians", "moons"])
def test_fast_preset_reaches_small_exact_kl(target, monkeypatch):
    monkeypatch.setenv("GENLIB_CACHE", tempfile.mkdtemp())
    from genlib.runs import RunSpec, evaluate, run

    spec = RunSpec.from_preset("autoregressive", target, preset="fast", seed=0, steps=1200)
    kl = evaluate(run(spec, use_cache=False), n=4000)["exact_kl"]
    assert kl < 0.15, kl


# -------------------------------------------------------------------- what the page asks of lab
def test_trained_views_of_the_page():
    from genlib.geometry import grid_tensor
    from genlib.lab.autoregressive import (
        SLICE_POINTS,
        sequential_frames,
        slice_range,
        trained_conditional,
        trained_log_q,
        trained_marginal,
    )
    from genlib.runs import RunSpec, run

    spec = RunSpec.from_preset(
        "autoregressive",
        "moons",
        seed=1,
        steps=10,
        batch_size=64,
        model_overrides={"components": 3},
    )
    trained = run(spec, use_cache=False)
    bounds = (-2.0, 3.0, -1.5, 2.0)
    _, _, pts = grid_tensor(bounds, 9)
    with torch.no_grad():
        np.testing.assert_allclose(
            trained_log_q(trained, bounds, 9), trained.model.log_prob(pts).numpy(), rtol=1e-6
        )
    m = trained_marginal(trained, bounds)
    assert m.grid.shape == m.q.shape == m.p.shape == (SLICE_POINTS,)
    assert (m.grid[0], m.grid[-1]) == (-2.0, 3.0)
    c = trained_conditional(trained, bounds, 0.5)
    assert (c.grid[0], c.grid[-1]) == (-1.5, 2.0) and (c.q >= 0).all() and (c.p >= 0).all()
    assert slice_range(bounds) == (-2.0, 3.0, 0.5)
    frames, ts = sequential_frames(trained, 50, seed=3, frames=5)
    assert frames.shape == (5, 50, 2) and ts.shape == (5,)
    np.testing.assert_allclose(frames, sequential_frames(trained, 50, seed=3, frames=5)[0])
