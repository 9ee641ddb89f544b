"""DDPM (lecture 4-3): the schedule's closed forms against independent computations, and the
model's contract (ε-prediction loss, folded time embedding, score, trajectory with x̂0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlib import distributions, models
from genlib.lab.fields import compare_fields
from genlib.models.ddpm import DDPM
from genlib.processes.ddpm import DDPMSchedule
from genlib.processes.forward import simulate_ddpm_chain
from genlib.runs import RunSpec, evaluate, run


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_alpha_bar_is_the_cumulative_product(kind):
    sched = DDPMSchedule(kind, 50)
    betas = sched.betas.numpy()
    ab = np.ones(50)
    acc = 1.0
    for i, b in enumerate(betas):  # an explicit loop, independent of torch.cumprod
        acc *= 1.0 - b
        ab[i] = acc
    np.testing.assert_allclose(sched.alpha_bar.numpy(), ab, rtol=1e-12)
    assert np.all((betas > 0) & (betas < 1))


def test_linear_betas_follow_ho_rescaled():
    sched = DDPMSchedule("linear", 1000)
    np.testing.assert_allclose(sched.betas.numpy(), np.linspace(1e-4, 0.02, 1000), rtol=1e-12)
    assert DDPM(T=100).alpha_bar_T < 1e-3  # the default reaches the prior
    assert DDPM(T=100, schedule="cosine").alpha_bar_T < 1e-3


def test_q_xt_given_x0_matches_the_markov_chain():
    """Iterate x_t = √α_t x_{t-1} + √β_t z from a point mass; compare the moments with
    N(√ᾱ_t x_0, (1−ᾱ_t) I) at several t."""
    sched = DDPMSchedule("linear", 100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([1.5, -2.0], dtype=torch.float64)
    x = x0.expand(40_000, 2).clone()
    for t in range(1, 101):
        b = float(sched.betas[t - 1])
        x = (1 - b) ** 0.5 * x + b**0.5 * torch.randn(x.shape, generator=g, dtype=torch.float64)
        if t in (1, 10, 40, 100):
            a, s = sched.marginal(t)
            se = float(s) / 200  # standard error of the mean with 40k samples
            assert torch.allclose(x.mean(0), float(a) * x0, atol=5 * se + 1e-4)
            assert torch.allclose(
                x.var(0), torch.full((2,), float(s) ** 2, dtype=torch.float64), rtol=0.03, atol=1e-6
            )
    # and q_sample draws from that closed form
    t = torch.full((40_000,), 40)
    eps = torch.randn(40_000, 2, generator=g, dtype=torch.float64)
    xt = sched.q_sample(x0.expand(40_000, 2), t, eps)
    a, s = sched.marginal(40)
    torch.testing.assert_close(xt, float(a) * x0 + float(s) * eps)


@pytest.mark.parametrize("t", [2, 17, 100])
def test_posterior_matches_gaussian_conditioning(t):
    """q(x_{t-1} | x_t, x_0) from conditioning the joint Gaussian of (x_{t-1}, x_t) given x_0."""
    sched = DDPMSchedule("linear", 100)
    ab_prev = 1.0 if t == 1 else float(sched.alpha_bar[t - 2])
    alpha_t = float(sched.alphas[t - 1])
    beta_t = 1 - alpha_t
    # x_{t-1} | x0 ~ N(√ab_prev x0, 1−ab_prev); x_t = √α_t x_{t-1} + √β_t z
    v_prev = 1 - ab_prev
    cov = np.sqrt(alpha_t) * v_prev
    v_t = alpha_t * v_prev + beta_t
    x0 = torch.tensor([[0.7, -1.1]], dtype=torch.float64)
    xt = torch.tensor([[0.2, 0.4]], dtype=torch.float64)
    mean_t = np.sqrt(ab_prev * alpha_t) * x0.numpy()
    cond_mean = np.sqrt(ab_prev) * x0.numpy() + cov / v_t * (xt.numpy() - mean_t)
    cond_var = v_prev - cov**2 / v_t
    mean, var = sched.posterior(x0, xt, t)
    np.testing.assert_allclose(mean.numpy(), cond_mean, rtol=1e-10, atol=1e-12)
    assert var == pytest.approx(cond_var, rel=1e-10)


def test_folded_time_embedding_equals_the_network():
    torch.manual_seed(0)
    model = DDPM(hidden=32, depth=2, T=30).eval()
    x = torch.randn(64, 2)
    eps_fn = model.eps_fn()
    for t in (1, 7, 30):
        torch.testing.assert_close(eps_fn(x, t), model.eps(x, t), rtol=1e-5, atol=1e-6)
    # score = −ε̂ / √(1 − ᾱ_t), per-sample t too
    t = torch.randint(1, 31, (64,))
    s = model.score(x, t)
    ref = -model.eps(x, t) / (1 - model.schedule.alpha_bar[t - 1]).sqrt().float()[:, None]
    torch.testing.assert_close(s, ref)


def test_loss_is_the_eps_prediction_error():
    """With fixed randomness the loss equals ‖ε − ε_θ(√ᾱ_t x0 + √(1−ᾱ_t) ε, t)‖² averaged."""
    torch.manual_seed(0)
    model = DDPM(hidden=32, depth=2, T=40)
    x0 = torch.randn(256, 2)
    loss = model.loss(x0, generator=torch.Generator().manual_seed(123))
    g = torch.Generator().manual_seed(123)  # the same draws, in the same order: t, then ε
    t = torch.randint(1, 41, (256,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    ab = model.schedule.alpha_bar[t - 1].float()[:, None]
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    ref = ((eps - model.eps(xt, t)) ** 2).sum(-1).mean()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_trajectory_has_x0_predictions_in_generation_order():
    torch.manual_seed(0)
    model = DDPM(hidden=32, depth=2, T=25).eval()
    traj = model.trajectory(40, num_frames=6, generator=torch.Generator().manual_seed(0))
    assert (
        traj.xs.shape == (6, 40, 2)
        and traj.x0_preds is not None
        and traj.x0_preds.shape == (6, 40, 2)
    )
    assert traj.time_label == "t" and float(traj.ts[0]) == 25 and float(traj.ts[-1]) == 0
    torch.testing.assert_close(traj.x0_preds[-1], traj.xs[-1])
    a = model.sample(40, generator=torch.Generator().manual_seed(3))
    b = model.sample(40, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert a.shape == (40, 2)


def test_presets_reach_the_prior():
    for preset in ("fast", "quality"):
        p = models.preset("ddpm", preset)
        assert DDPM(**p.model).alpha_bar_T < 1e-3
        assert p.train.get("ema", 0) >= 0.99  # the EMA is what gets DDPM to the floor (DESIGN §6)


@pytest.mark.slow
def test_ddpm_fast_reaches_the_floor_on_8gaussians(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLIB_CACHE", str(tmp_path))
    spec = RunSpec.from_preset("ddpm", "8gaussians", preset="fast", seed=0, steps=2500)
    trained = run(spec, use_cache=False)
    metrics = evaluate(trained, n=3000)
    assert metrics["sliced_wasserstein"] < 3 * metrics["sliced_wasserstein_floor"], metrics


# --- one vocabulary: marginal_at and the field comparison ------------------------------------
def test_marginal_at_matches_the_simulated_forward_chain():
    """The level is the step t: marginal_at(t) = (√ᾱ_t, √(1−ᾱ_t)) are the moments of q(x_t | x_0),
    checked against the Markov chain x_t = √α_t x_{t-1} + √β_t z simulated from a point mass."""
    model = DDPM(hidden=16, depth=2, T=100)
    n = 40_000
    x0 = torch.tensor([1.5, -2.0], dtype=torch.float64).expand(n, 2).clone()
    xs, steps = simulate_ddpm_chain(
        x0, model.schedule, num_frames=5, generator=torch.Generator().manual_seed(0)
    )
    assert steps == [0, 25, 50, 75, 100]
    for xt, t in zip(xs, steps, strict=True):
        a, s = model.marginal_at(t)
        assert a * a + s * s == pytest.approx(1.0)  # variance preserving
        assert torch.allclose(xt.mean(0), a * x0[0], atol=5 * s / n**0.5 + 1e-9)
        if t:
            assert torch.allclose(xt.var(0), torch.full((2,), s * s, dtype=xt.dtype), rtol=0.03)
        else:
            assert (a, s) == (1.0, 0.0)
    assert model.marginal_at(None) == model.marginal_at(1)
    with pytest.raises(ValueError):
        model.marginal_at(101)


def test_field_comparison_is_the_exact_score_at_marginal_at():
    target = distributions.build("8gaussians")
    torch.manual_seed(0)
    model = DDPM(hidden=16, depth=2, T=50).eval()
    cmp = compare_fields(model, target, 10, target.bounds, grid_size=8)
    a, s = model.marginal_at(10)
    pts = cmp.points
    assert (cmp.kind, cmp.level, cmp.a, cmp.s, cmp.weight) == ("score", 10.0, a, s, s)
    torch.testing.assert_close(cmp.exact.reshape(-1, 2), target.score_t(pts, a, s))
    torch.testing.assert_close(cmp.log_p.reshape(-1), target.log_prob_t(pts, a, s))
    with torch.no_grad():
        torch.testing.assert_close(cmp.learned.reshape(-1, 2), model.score(pts, 10))
