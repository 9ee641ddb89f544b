"""The DDPM variational bound in nats (lecture 4-3, genlib.lab.ddpm_bound) against independent
computations: L_T against torch.distributions' KL, the Gaussian KL against Monte Carlo and the
exact posterior against 2D quadrature of Bayes' rule, every term in closed form for ε_θ ≡ 0 on a
Gaussian target, S(p) by quadrature against the Gaussian entropy, and total ≥ S(p) for an untrained,
a briefly trained and the shipped preset model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from genlib.device import make_generator
from genlib.distributions import TARGETS
from genlib.distributions.base import GaussianMixture
from genlib.lab.ddpm_bound import (
    ddpm_bound,
    ddpm_bounds,
    gaussian_kl,
    grid_entropy,
    prior_kl,
    reverse_variances,
)
from genlib.models.ddpm import DDPM

ROOT = Path(__file__).resolve().parent.parent


def _gauss(m=(0.5, -0.3), c=0.4) -> GaussianMixture:
    return GaussianMixture(torch.tensor([list(m)]), c, bounds=(-3.0, 3.0, -3.0, 3.0))


def test_L_T_is_the_closed_form_prior_kl_averaged_over_the_data():
    torch.manual_seed(0)
    model = DDPM(hidden=16, depth=1, T=20).eval()
    target = TARGETS.build("8gaussians")
    b = ddpm_bound(model, target, 400, make_generator(3))
    # independently: the same x_0 (first draw of the generator), KL by torch.distributions
    x0 = target.sample(400, generator=make_generator(3)).double()
    ab_T = float(torch.cumprod(1 - model.schedule.betas, 0)[-1])
    q = Independent(Normal(math.sqrt(ab_T) * x0, math.sqrt(1 - ab_T) * torch.ones_like(x0)), 1)
    prior = Independent(Normal(torch.zeros_like(x0), torch.ones_like(x0)), 1)
    expected = float(kl_divergence(q, prior).mean())
    assert b.L_T == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert float(prior_kl(x0, ab_T).mean()) == pytest.approx(expected, rel=1e-9)
    assert b["total"] == pytest.approx(b.L_T + float(b.L_t.sum()), rel=1e-12)
    assert b.L_t.shape == (20,) and b.L_0 == float(b.L_t[0])


def test_gaussian_kl_against_monte_carlo():
    g = make_generator(0)
    mu_q = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    mu_p = torch.tensor([[0.1, 0.4]], dtype=torch.float64)
    vq, vp = 0.04, 0.09
    closed = float(gaussian_kl(mu_q, vq, mu_p, vp)[0])
    x = mu_q + math.sqrt(vq) * torch.randn(400_000, 2, generator=g, dtype=torch.float64)
    lq = Independent(Normal(mu_q[0], math.sqrt(vq) * torch.ones(2, dtype=torch.float64)), 1)
    lp = Independent(Normal(mu_p[0], math.sqrt(vp) * torch.ones(2, dtype=torch.float64)), 1)
    d = lq.log_prob(x) - lp.log_prob(x)
    assert closed == pytest.approx(float(d.mean()), abs=4 * float(d.std()) / math.sqrt(len(d)))


def test_posterior_kl_at_one_t_against_quadrature_of_bayes_rule():
    """One t: the posterior p(x_{t−1} | x_t, x_0) ∝ p(x_t | x_{t−1}) p(x_{t−1} | x_0) normalised on
    a 2D grid, and its KL to the model's Gaussian step by quadrature, vs the closed form used by
    the bound (schedule.posterior + gaussian_kl)."""
    s = DDPM(hidden=8, depth=1, T=50).schedule
    t = 7
    x0 = torch.tensor([[0.4, -0.7]], dtype=torch.float64)
    xt = torch.tensor([[0.2, -0.1]], dtype=torch.float64)
    mu_theta, var_p = torch.tensor([[0.25, -0.3]], dtype=torch.float64), float(s.betas[t - 1])
    ab_prev, a_t = float(s.alpha_bar[t - 2]), float(s.alphas[t - 1])
    mean, var = s.posterior(x0, xt, t)
    closed = float(gaussian_kl(mean, var, mu_theta, var_p)[0])
    # quadrature on a fine grid around the posterior mean
    sd = math.sqrt(var)
    h = 12 * sd / 600
    u = torch.arange(-300, 300, dtype=torch.float64) * h + h / 2
    gx, gy = torch.meshgrid(u + float(mean[0, 0]), u + float(mean[0, 1]), indexing="xy")
    y = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)  # x_{t-1} candidates
    log_fwd = -((xt - math.sqrt(a_t) * y) ** 2).sum(1) / (2 * (1 - a_t))
    log_marg = -((y - math.sqrt(ab_prev) * x0) ** 2).sum(1) / (2 * (1 - ab_prev))
    log_post = log_fwd + log_marg
    log_post = log_post - torch.logsumexp(log_post, 0) - math.log(h * h)  # normalised density
    log_model = -((y - mu_theta) ** 2).sum(1) / (2 * var_p) - math.log(2 * math.pi * var_p)
    w = log_post.exp() * h * h
    quad = float((w * (log_post - log_model)).sum())
    assert closed == pytest.approx(quad, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("sigma2", ["beta", "beta_tilde"])
def test_every_term_in_closed_form_when_eps_theta_is_zero(sigma2):
    """ε_θ ≡ 0: μ_θ = x_t/√α_t, so L_{t−1} = d/2 (r − 1 − log r) + d β_t²/(2σ_t² α_t (1−ᾱ_t)) with
    r = β̃_t/σ_t², and L_0 = d/2 log(2π σ_1²) + d β_1/(2 α_1 σ_1²), whatever the data."""
    model = DDPM(hidden=8, depth=1, T=30).eval()
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    model.eps = zero
    model.eps_fn = lambda *a, **k: zero
    s, d = model.schedule, 2
    n = 20_000
    b = ddpm_bound(model, TARGETS.build("moons"), n, make_generator(1), sigma2)
    var = reverse_variances(model, sigma2)
    betas, alphas, ab = s.betas.tolist(), s.alphas.tolist(), s.alpha_bar.tolist()
    expect = [d / 2 * math.log(2 * math.pi * var[0]) + d * betas[0] / (2 * alphas[0] * var[0])]
    for t in range(2, 31):
        r = float(s.posterior_var[t - 1]) / var[t - 1]
        mean_term = d * betas[t - 1] ** 2 / (2 * var[t - 1] * alphas[t - 1] * (1 - ab[t - 1]))
        expect.append(d / 2 * (r - 1 - math.log(r)) + mean_term)
    expect_t = torch.tensor(expect, dtype=torch.float64)
    # each term is a mean of a scaled χ²_2: relative MC error ≈ 1/√n
    assert torch.allclose(b.L_t, expect_t, rtol=0.04, atol=1e-9), (b.L_t - expect_t).abs().max()


@pytest.mark.parametrize("sigma2", ["beta", "beta_tilde"])
def test_every_term_in_closed_form_for_a_gaussian_target_and_a_linear_eps(sigma2):
    """Gaussian data N(m, c² I) and a linear ε_θ(x, t) = k_t (x − a_t m) + δ_t (k_t = s_t/(a_t² c² +
    s_t²): the exact ε of the target, plus a deliberate offset δ_t): ε_θ − ε = k a (x_0 − m) +
    (k s − 1) ε + δ, so every term is closed form through Ho et al.'s ε-form
    ‖μ̃_t − μ_θ‖² = β_t²/(α_t (1 − ᾱ_t)) ‖ε − ε_θ‖² (and x_0 − μ_θ(x_1) = √(β_1/α_1) (ε_θ − ε)), an
    identity the code never uses (it subtracts the means). A sign error in μ_θ or in the posterior
    mean, or a wrong variance, moves the terms far outside the Monte-Carlo error. The model is then a
    linear-Gaussian chain, so q_θ(x_0) is Gaussian and its NLL exact: S(p) ≤ NLL ≤ the bound."""
    m, c, d, T = (0.5, -0.3), 0.4, 2, 25
    model = DDPM(hidden=8, depth=1, T=T).eval()
    s = model.schedule
    betas, alphas, ab = s.betas.tolist(), s.alphas.tolist(), s.alpha_bar.tolist()
    mv = torch.tensor(m, dtype=torch.float64)
    delta = [torch.tensor([0.1, -0.2], dtype=torch.float64) * math.cos(t) for t in range(T + 1)]

    def coeffs(t: int) -> tuple[float, float, float]:
        a, sd = math.sqrt(ab[t - 1]), math.sqrt(1.0 - ab[t - 1])
        return a, sd, sd / (a * a * c * c + sd * sd)

    def eps(x: torch.Tensor, t: int) -> torch.Tensor:
        a, _, k = coeffs(t)
        return (k * (x.double() - a * mv) + delta[t]).to(x.dtype)

    model.eps = eps  # an exact predictor set on the instance is what eps_fn returns
    var = reverse_variances(model, sigma2)
    n = 20_000
    b = ddpm_bound(model, _gauss(m, c), n, make_generator(2), sigma2)

    expect = []
    for t in range(1, T + 1):
        a, sd, k = coeffs(t)
        err2 = d * (k * k * a * a * c * c + (k * sd - 1.0) ** 2) + float((delta[t] ** 2).sum())
        if t == 1:  # the decoder: −log N(x_0; μ_θ(x_1), σ_1² I)
            expect.append(d / 2 * math.log(2 * math.pi * var[0]) + betas[0] * err2 / (2 * alphas[0] * var[0]))  # fmt: skip
        else:
            r = float(s.posterior_var[t - 1]) / var[t - 1]
            mean = betas[t - 1] ** 2 * err2 / (2 * var[t - 1] * alphas[t - 1] * (1 - ab[t - 1]))
            expect.append(d / 2 * (r - 1 - math.log(r)) + mean)
    v_T = 1.0 - ab[-1]
    l_T = d / 2 * (v_T - 1 - math.log(v_T)) + ab[-1] * (float((mv**2).sum()) + d * c * c) / 2
    expect_t = torch.tensor(expect, dtype=torch.float64)
    assert torch.allclose(b.L_t, expect_t, rtol=0.03, atol=1e-6), (b.L_t - expect_t).abs().max()
    assert b.L_T == pytest.approx(l_T, rel=0.03, abs=1e-9)
    total = l_T + float(expect_t.sum())
    assert b.total == pytest.approx(total, abs=4 * b.stderr + 1e-6)
    # the model's exact marginal q_θ(x_0) = N(μ_0, v_0 I) through the chain x_{t-1} = A_t x_t + b_t + σ_t z
    mu_q, v_q = torch.zeros(2, dtype=torch.float64), 1.0
    for t in range(T, 0, -1):
        a, sd, k = coeffs(t)
        A = (1.0 - betas[t - 1] * k / sd) / math.sqrt(alphas[t - 1])
        off = betas[t - 1] / (sd * math.sqrt(alphas[t - 1])) * (k * a * mv - delta[t])
        mu_q, v_q = A * mu_q + off, A * A * v_q + var[t - 1]
    nll = d / 2 * math.log(2 * math.pi * v_q) + (d * c * c + float(((mv - mu_q) ** 2).sum())) / (
        2 * v_q
    )
    entropy = d / 2 * math.log(2 * math.pi * math.e * c * c)
    assert entropy < nll < total, (entropy, nll, total)
    if sigma2 == "beta_tilde":  # β̃_1 = 0 is clipped to β̃_2 for the decoder
        assert var[0] == float(s.posterior_var[1]) and var[1:] == s.posterior_var[1:].tolist()


def test_grid_entropy_of_a_gaussian_and_a_mixture():
    c = 0.4
    h, mass = grid_entropy(_gauss(c=c), 300)
    assert mass == pytest.approx(1.0, abs=1e-4)
    assert h == pytest.approx(math.log(2 * math.pi * math.e * c * c), abs=2e-3)
    mix = TARGETS.build("8gaussians")
    h, _ = grid_entropy(mix, 300)
    assert h == pytest.approx(mix.entropy(n=200_000), abs=0.02)  # Monte Carlo with the density


def test_total_is_at_least_the_entropy_untrained_and_trained():
    from genlib.runs import RunSpec, run

    target = TARGETS.build("8gaussians")
    h, _ = grid_entropy(target, 200)
    untrained = DDPM(hidden=32, depth=2, T=40).eval()
    for b in ddpm_bounds(untrained, target, 1000, make_generator(0)).values():
        assert b.total > h + 3 * b.stderr  # far above: an untrained ε_θ
    spec = RunSpec.from_preset(
        "ddpm", "8gaussians", seed=0, model_overrides={"T": 40, "hidden": 64, "depth": 2},
        steps=400, batch_size=256,
    )  # fmt: skip
    trained = run(spec, use_cache=False)
    assert trained.result.status == "ok"
    before = ddpm_bound(untrained, target, 1000, make_generator(0)).total
    after = ddpm_bounds(trained.model, target, 1000, make_generator(0))
    for b in after.values():
        assert b.total >= h, (b.total, h)
    assert after["beta"].total < before  # training tightens the bound


def test_shipped_preset_bound_is_above_the_entropy():
    from genlib.runs import RunSpec, load_trained

    spec = RunSpec.from_preset("ddpm", "moons")
    path = ROOT / "assets" / "pretrained" / f"{spec.key()}.pt"
    if not path.exists():
        pytest.skip("no shipped DDPM preset for moons")
    trained = load_trained(spec, path=path)
    h, mass = grid_entropy(trained.target, 200)
    assert mass == pytest.approx(1.0, abs=1e-3)
    bs = ddpm_bounds(trained.model, trained.target, 1000, make_generator(0))
    for b in bs.values():
        assert b.total >= h and b.L_T < 1e-3
    assert bs["beta"].total - h < 1.0  # a trained model: the bound is within a nat of S(p)


def test_bad_input_is_a_clear_error():
    model = DDPM(hidden=8, depth=1, T=10)
    with pytest.raises(ValueError, match="data points"):
        ddpm_bound(model, TARGETS.build("moons"), 0, make_generator(0))
    with pytest.raises(ValueError, match="beta"):
        ddpm_bound(model, TARGETS.build("moons"), 10, make_generator(0), "sigma")  # type: ignore[arg-type]
