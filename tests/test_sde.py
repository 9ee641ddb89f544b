"""Score SDE (lecture 4-4): oracle tests of the samplers with the ANALYTIC score of Gaussian and
Gaussian-mixture targets (no network), the exact PF-ODE likelihood, the forward SDE's marginals,
and contract tests of the registered ``sde`` model."""

from __future__ import annotations

import math

import pytest
import torch

from genlib import models
from genlib.distributions.base import GaussianMixture
from genlib.lab.fields import compare_fields, field_kind
from genlib.models.base import HasLogProb, HasScore
from genlib.processes.forward import simulate_forward_sde
from genlib.processes.sde import VESDE, VPSDE
from genlib.samplers.ode import ode_log_likelihood
from genlib.samplers.sde import (
    marginal_score_fn,
    pf_ode_sample,
    predictor_corrector,
    reverse_sample,
)
from genlib.trajectory import Trajectory

SDES = {"vp": VPSDE(), "ve": VESDE(sigma_min=0.01, sigma_max=10.0)}
# a correlated-free but anisotropic, off-centre Gaussian: mean (1, -0.5), stds (0.6, 1.3)
GAUSS = GaussianMixture(torch.tensor([[1.0, -0.5]]), torch.tensor([[0.6, 1.3]]))
# a two-mode mixture with unequal weights
GMM = GaussianMixture(
    torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), torch.tensor([0.5, 0.7]), torch.tensor([0.3, 0.7])
)


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.double()
    m = x.mean(0)
    xc = x - m
    return m, xc.T @ xc / (x.shape[0] - 1)


def assert_moments(x, target, tol_mean=0.06, tol_cov=0.12):
    m, c = moments(x)
    m_true, c_true = target.moments()
    assert torch.isfinite(x).all()
    assert (m - m_true).abs().max() < tol_mean, (m, m_true)
    assert (c - c_true).abs().max() < tol_cov * float(c_true.abs().max()), (c, c_true)


def prior(sde, n, seed, target=None):
    """n draws of the exact p_1 (the target diffused to t = 1; VE's N(0, σ_max²) prior is off by
    the target's mean, which a deterministic PF-ODE would carry to the end)."""
    g = torch.Generator().manual_seed(seed)
    a, s = (float(v) for v in sde.marginal(torch.ones(1)))
    x0 = (target or GMM).sample(n, generator=g)
    return a * x0 + s * torch.randn(n, 2, generator=g)


# --- forward process -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_forward_em_simulation_matches_closed_form_marginal(kind):
    """p(x_t | x_0) = N(a(t) x_0, s(t)² I): Euler–Maruyama of dx = f dt + g dw from a point mass."""
    sde = SDES[kind]
    n = 20_000
    x0 = torch.tensor([1.5, -1.0]).expand(n, 2).clone()
    xs, ts = simulate_forward_sde(
        sde, x0, steps=1000, generator=torch.Generator().manual_seed(0), num_frames=5
    )
    assert xs.shape == (5, n, 2) and float(ts[0]) == 0.0 and float(ts[-1]) == 1.0
    for xt, t in zip(xs[1:], ts[1:], strict=True):
        a, s = sde.marginal(t.reshape(1))
        m, c = moments(xt)
        se = float(s) / math.sqrt(n)
        assert (m - a * x0[0]).abs().max() < 5 * se + 0.01 * float(s), (t, m, a)
        assert (c.diagonal() / float(s) ** 2 - 1).abs().max() < 0.05, (t, c, s)
        assert abs(float(c[0, 1])) < 0.05 * float(s) ** 2


# --- reverse samplers with the analytic score --------------------------------------------------
@pytest.mark.parametrize("kind", ["vp", "ve"])
@pytest.mark.parametrize("target", [GAUSS, GMM], ids=["gauss", "gmm"])
def test_reverse_sde_recovers_target(kind, target):
    sde = SDES[kind]
    score = marginal_score_fn(target, sde)
    g = torch.Generator().manual_seed(1)
    x = reverse_sample(sde, score, prior(sde, 8000, 2, target), steps=500, generator=g)
    assert x.shape == (8000, 2)
    assert_moments(x, target)


@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_predictor_corrector_recovers_target(kind):
    sde = SDES[kind]
    score = marginal_score_fn(GMM, sde)
    g = torch.Generator().manual_seed(3)
    x = predictor_corrector(
        sde, score, prior(sde, 8000, 4), steps=200, snr=0.1, corrector_steps=1, generator=g
    )
    assert_moments(x, GMM)


@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_pf_ode_recovers_target(kind):
    sde = SDES[kind]
    x = pf_ode_sample(
        sde, marginal_score_fn(GMM, sde), prior(sde, 8000, 5), steps=100, method="heun"
    )
    assert_moments(x, GMM)
    # the ODE is deterministic: same start, same end
    x2 = pf_ode_sample(
        sde, marginal_score_fn(GMM, sde), prior(sde, 8000, 5), steps=100, method="heun"
    )
    assert torch.equal(x, x2)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_lambda_family_keeps_the_marginals(lam):
    """dx = [f - (1+λ²)/2 g² s] dt + λ g dw̄ has marginals p_t for every λ: check the frame at an
    intermediate t against N(a μ, a² Σ + s² I) and the end against the target."""
    sde = SDES["vp"]
    g = torch.Generator().manual_seed(6)
    path = reverse_sample(
        sde,
        marginal_score_fn(GAUSS, sde),
        prior(sde, 10_000, 7, GAUSS),
        steps=400,
        lam=lam,
        generator=g,
        num_frames=5,
    )
    assert isinstance(path, Trajectory) and path.xs.shape == (5, 10_000, 2)
    assert (
        path.time_label == "t"
        and float(path.ts[0]) == 1.0
        and abs(float(path.ts[-1]) - sde.eps) < 1e-6
    )
    mid_t = path.ts[2].reshape(1)  # t = 0.5
    a, s = (float(v) for v in sde.marginal(mid_t))
    m_true, c_true = GAUSS.moments()
    m, c = moments(path.xs[2])
    assert (m - a * m_true).abs().max() < 0.04
    assert (c - (a * a * c_true + s * s * torch.eye(2, dtype=torch.float64))).abs().max() < 0.06
    assert_moments(path.xs[-1], GAUSS)


def test_different_lambdas_give_different_paths_same_law():
    sde = SDES["vp"]
    score = marginal_score_fn(GAUSS, sde)
    x1 = prior(sde, 4000, 8, GAUSS)
    a = reverse_sample(
        sde, score, x1, steps=200, lam=0.0, generator=torch.Generator().manual_seed(0)
    )
    b = reverse_sample(
        sde, score, x1, steps=200, lam=1.0, generator=torch.Generator().manual_seed(0)
    )
    assert (a - b).norm(dim=1).mean() > 0.3  # the paths differ point by point...
    ma, ca = moments(a)
    mb, cb = moments(b)
    assert (ma - mb).abs().max() < 0.08 and (ca - cb).abs().max() < 0.15  # ...the law does not


def test_bad_sampler_arguments():
    sde = SDES["vp"]
    score = marginal_score_fn(GAUSS, sde)
    with pytest.raises(ValueError):
        reverse_sample(sde, score, torch.zeros(3, 2), steps=0)
    with pytest.raises(ValueError):
        reverse_sample(sde, score, torch.zeros(3, 2), steps=10, lam=-1.0)


# --- exact likelihood by the PF-ODE ------------------------------------------------------------
@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_pf_ode_log_likelihood_with_exact_score_is_exact(kind):
    """log p_0(x) = log p_T(x(T)) + ∫_0^T ∇·(f - ½ g² s) dt with the exact score and exact p_T
    equals the exact log density (within 1e-2 nats)."""
    sde = SDES[kind]
    score = marginal_score_fn(GMM, sde)
    a1, s1 = (float(v) for v in sde.marginal(torch.ones(1)))

    def p_T(z):
        return GMM.log_prob_t(z, a1, s1)

    x = GMM.sample(8, generator=torch.Generator().manual_seed(9)).double()
    got = ode_log_likelihood(
        lambda y, t: sde.pf_ode_drift(y, t, score(y, t)),
        x,
        sde.eps,
        1.0,
        p_T,
        steps=100,
        method="rk4",
    )
    a0, s0 = (float(v) for v in sde.marginal(torch.full((1,), sde.eps)))
    exact_eps = GMM.log_prob_t(x, a0, s0)  # the density at t = ε that the ODE transports
    assert (got - exact_eps).abs().max() < 1e-2, (got, exact_eps)
    assert (got - GMM.log_prob(x)).abs().max() < 1e-2  # and ε is small enough to be the data


# --- the registered model ----------------------------------------------------------------------
def small(kind="vp", **kw):
    torch.manual_seed(0)
    opts = {"hidden": 32, "depth": 2, "steps": 20, "ode_steps": 10, "likelihood_steps": 4, **kw}
    return models.build("sde", sde=kind, **opts)


def test_registered_with_presets_and_capabilities():
    assert "sde" in models.names()
    assert {"fast", "quality"} <= set(models.MODELS.get("sde").presets)
    m = small()
    assert isinstance(m, HasLogProb) and isinstance(m, HasScore)
    models.build("sde", **models.preset("sde", "fast").model)
    models.build("sde", **models.preset("sde", "quality").model)


@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_model_contract(kind):
    m = small(kind)
    x = GMM.sample(64, generator=torch.Generator().manual_seed(0))
    loss = m.loss(x)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    logs = m.train_step(x, m.configure_optimizers(1e-3), 1)
    assert "loss" in logs and logs["loss"].ndim == 0 and not logs["loss"].requires_grad
    m.eval()
    assert m.score(x, 0.5).shape == (64, 2)
    assert m.score(x, torch.full((64,), 0.3)).shape == (64, 2)
    for sampler in ("em", "pc", "ode"):
        s1 = m.sample(50, generator=torch.Generator().manual_seed(3), sampler=sampler)
        s2 = m.sample(50, generator=torch.Generator().manual_seed(3), sampler=sampler)
        assert s1.shape == (50, 2) and torch.isfinite(s1).all()
        assert torch.equal(s1, s2)  # deterministic under a seed
    traj = m.trajectory(30, num_frames=6, generator=torch.Generator().manual_seed(4), lam=0.5)
    assert traj.xs.shape == (6, 30, 2) and traj.time_label == "t"
    assert float(traj.ts[0]) == 1.0 and float(traj.ts[-1]) == pytest.approx(
        m.t_min
    )  # noise -> data
    lp = m.log_prob(x[:10])
    assert lp.shape == (10,) and torch.isfinite(lp).all()


@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_model_plumbing_with_the_exact_noise_predictor(kind, monkeypatch):
    """Replace the network by the exact ε-predictor ε* = -s(t) ∇log p_t of a Gaussian mixture: the
    model's sampler must recover the target and its log_prob (PF-ODE, model prior) the exact density."""
    m = small(kind, steps=300, likelihood_steps=60)
    true_score = m.true_score_fn(GMM)

    def eps_star(x, t):
        return -m.process.marginal(t)[1][:, None] * true_score(x, t)

    monkeypatch.setattr(m, "epsilon", eps_star)
    x = m.sample(6000, generator=torch.Generator().manual_seed(0), sampler="em")
    assert_moments(x, GMM, tol_mean=0.1, tol_cov=0.15)
    pts = GMM.sample(6, generator=torch.Generator().manual_seed(1))
    # VP's N(0, I) prior is exact to 1e-4 (float32 ODE: 2e-2); VE's N(0, σ_max²) prior ignores the
    # target's mean (0.8, 0.7) and variance (~4.5 vs σ_max² = 100): a log p_T error of ~0.1 nats
    tol = 2e-2 if kind == "vp" else 0.2
    assert (m.log_prob(pts) - GMM.log_prob(pts)).abs().max() < tol


def test_model_rejects_bad_options():
    for bad in (
        {"sde": "sub-vp"},
        {"sampler": "ddim"},
        {"lam": 2.0},
        {"steps": 0},
        {"sigma_min": 20.0, "sde": "ve"},
    ):
        with pytest.raises(ValueError):
            models.build("sde", **bad)
    m = small()
    with pytest.raises(ValueError):
        m.sample(10, lam=1.5)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["8gaussians", "moons"])
def test_fast_preset_quality(target, fast_preset_quality):
    ratio, kl = fast_preset_quality("sde", target)
    assert ratio < 3.0
    assert kl < (0.1 if target == "8gaussians" else 0.15)


# --- one vocabulary: marginal_at and the field comparison ------------------------------------
@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_marginal_at_matches_the_forward_sde(kind):
    """The model's level is the SDE time: marginal_at(t) = (a, s) of p(x_t | x_0), checked against
    an Euler–Maruyama simulation of the model's own forward SDE from a point mass."""
    m = small(kind)
    n = 20_000
    x0 = torch.tensor([1.5, -1.0]).expand(n, 2).clone()
    xs, ts = simulate_forward_sde(
        m.process, x0, steps=500, generator=torch.Generator().manual_seed(1), num_frames=3
    )
    for xt, t in zip(xs[1:], ts[1:], strict=True):
        a, s = m.marginal_at(float(t))
        mean, cov = moments(xt)
        assert (mean - a * x0[0]).abs().max() < 5 * s / math.sqrt(n) + 0.01 * s, (t, mean, a)
        assert (cov.diagonal() / s**2 - 1).abs().max() < 0.05, (t, cov, s)
    with pytest.raises(ValueError):
        m.marginal_at(1.5)


@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_field_comparison_is_the_exact_score_at_marginal_at(kind):
    m = small(kind).eval()
    assert field_kind(m) == "score"
    bounds = (-3.0, 3.0, -2.0, 4.0)
    cmp = compare_fields(m, GMM, 0.3, bounds, grid_size=7)
    a, s = m.marginal_at(0.3)
    assert (cmp.a, cmp.s, cmp.level, cmp.kind) == (a, s, 0.3, "score")
    pts = cmp.points
    assert pts.shape == (49, 2) and float(pts[0, 0]) == -3.0 and float(pts[-1, 1]) == 4.0
    torch.testing.assert_close(cmp.exact.reshape(-1, 2), GMM.score_t(pts, a, s))
    torch.testing.assert_close(cmp.log_p.reshape(-1), GMM.log_prob_t(pts, a, s))
    with torch.no_grad():
        torch.testing.assert_close(cmp.learned.reshape(-1, 2), m.score(pts, 0.3))
    # the error is in the units of the DSM loss: ‖s(t)(s_θ − ∇ log p_t)‖ = ‖ε_θ − ε*‖
    torch.testing.assert_close(cmp.error, s * (cmp.learned - cmp.exact).norm(dim=-1))


FAMILIES = {  # tiny models of every denoising family
    "sde-vp": ("sde", {"sde": "vp", "hidden": 16, "depth": 2, "steps": 5}),
    "sde-ve": ("sde", {"sde": "ve", "hidden": 16, "depth": 2, "steps": 5}),
    "flow_matching": ("flow_matching", {"hidden": 16, "depth": 2, "steps": 5}),
    "ddpm": ("ddpm", {"hidden": 16, "depth": 2, "T": 20}),
    "ncsn": ("ncsn", {"hidden": 16, "depth": 2, "num_levels": 3, "steps_per_level": 3}),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_loss_and_sampling_draw_only_from_their_generator(family):
    """Threads train side by side: the objective's t/σ and ε come from the loop's generator,
    never from the global RNG (its state is untouched, and the loss depends on the generator
    only), and so do the samplers' draws."""
    name, kw = FAMILIES[family]
    torch.manual_seed(0)
    m = models.build(name, **kw)
    x = GMM.sample(64, generator=torch.Generator().manual_seed(0))
    state = torch.get_rng_state()
    a = m.loss(x, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        m.sample(8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(state, torch.get_rng_state())
    torch.manual_seed(123)  # the global seed does not matter
    b = m.loss(x, generator=torch.Generator().manual_seed(5))
    c = m.loss(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
