"""Flow matching (lecture 4-5): oracle tests of the probability paths (endpoints, u_τ(x̃|x) as the
τ-derivative of the conditional flow, the true marginal velocity against the continuity equation),
ODE sampling and the exact likelihood with the true velocity, and contract tests of the
registered ``flow_matching`` model."""

from __future__ import annotations

import pytest
import torch

from genlib import models
from genlib.distributions.base import GaussianMixture
from genlib.lab.fields import compare_fields, field_kind
from genlib.lab.flow_matching import conditional_paths, exact_trajectory, target_conditional_paths
from genlib.models.base import HasLogProb, HasScore, HasVelocity
from genlib.models.flow_matching import standard_normal_log_prob
from genlib.processes.paths import conditional_trajectories, make_path
from genlib.samplers.ode import ode_log_likelihood, odeint, velocity_and_divergence

PATHS = ["ot", "straight", "vp"]
GMM = GaussianMixture(
    torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), torch.tensor([0.5, 0.7]), torch.tensor([0.3, 0.7])
)


def data(n=200, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return GMM.sample(n, generator=g).to(dtype), torch.randn(n, 2, generator=g, dtype=dtype)


def moments(x):
    x = x.double()
    m = x.mean(0)
    xc = x - m
    return m, xc.T @ xc / (x.shape[0] - 1)


@pytest.mark.parametrize("kind", PATHS)
def test_path_endpoints(kind):
    """τ = 0 is noise, τ = τ_max is the data (up to σ_min for ot, 10⁻² for vp)."""
    path = make_path(kind, sigma_min=0.01)
    x, noise = data()
    n = x.shape[0]
    x_start = path.sample(x, torch.zeros(n, dtype=x.dtype), noise)
    x_end = path.sample(x, torch.full((n,), path.tau_max, dtype=x.dtype), noise)
    tol_start = {"ot": 0.0, "straight": 0.0, "vp": 0.01 * float(x.abs().max())}[kind]
    assert (x_start - noise).abs().max() <= tol_start + 1e-12
    # the data end: μ_1 = x, σ_1 = σ_min (ot), 0 (straight), ≈ 0.01 (vp at τ = 1 - 10⁻³)
    sig_end = {"ot": 0.01, "straight": 0.0, "vp": 0.011}[kind]
    assert (x_end - x).abs().max() <= sig_end * float(noise.abs().max()) + 0.001 * float(
        x.abs().max()
    ) + 1e-12
    assert path.tau_max <= 1.0


@pytest.mark.parametrize("kind", PATHS)
def test_conditional_velocity_is_the_tau_derivative_of_the_flow(kind):
    """u_τ(x̃|x) = σ̇/σ (x̃ − μ_τ) + μ̇_τ equals d/dτ (μ_τ(x) + σ_τ x̃_0) at fixed x̃_0 (central
    finite differences), and the two forms (lecture formula / ȧ x + σ̇ x̃_0) agree."""
    path = make_path(kind)
    x, noise = data()
    h = 1e-6
    for tau in (0.05, 0.3, 0.7, 0.95):
        t = torch.full((x.shape[0],), tau, dtype=x.dtype)
        fd = (path.sample(x, t + h, noise) - path.sample(x, t - h, noise)) / (2 * h)
        xt, u = path.target_velocity(x, t, noise)
        assert torch.allclose(u, fd, atol=1e-6 * (1 + float(fd.abs().max())))
        assert torch.allclose(path.conditional_velocity(xt, x, t), u, atol=1e-8)


@pytest.mark.parametrize("kind", PATHS)
def test_true_marginal_velocity_solves_the_continuity_equation(kind):
    """∂_τ p_τ + ∇·(p_τ u_τ) = 0 ⇔ ∂_τ log p_τ + ∇·u + u·∇log p_τ = 0, with ∂_τ by central
    differences of the exact marginal log-density and ∇·u by autograd."""
    path = make_path(kind)
    pts = torch.tensor([[-2.0, 0.3], [0.5, 0.5], [2.5, 1.5], [0.0, -1.0]], dtype=torch.float64)
    h = 1e-5
    for tau in (0.2, 0.5, 0.8):
        dlogp = (
            path.marginal_log_prob(GMM, pts, tau + h) - path.marginal_log_prob(GMM, pts, tau - h)
        ) / (2 * h)
        u, div = velocity_and_divergence(
            lambda y, t, tau=tau: path.marginal_velocity(GMM, y, tau), pts, torch.zeros(4)
        )
        a, s = (float(c) for c in path.coefficients(torch.tensor([tau], dtype=torch.float64))[:2])
        grad_logp = GMM.score_t(pts, a, s)
        residual = dlogp + div + (u * grad_logp).sum(-1)
        assert residual.abs().max() < 1e-5, (tau, residual)


def test_true_marginal_velocity_is_the_conditional_mean():
    """Lemma 4: u_τ(x̃) = E[u_τ(x̃|x) | x̃] — check against self-normalised importance sampling
    over the target at one point."""
    path = make_path("ot")
    tau = 0.6
    x, noise = data(200_000, seed=3)
    pt = torch.tensor([[0.8, 0.4]], dtype=torch.float64)
    a, s = (float(c) for c in path.coefficients(torch.tensor([tau], dtype=torch.float64))[:2])
    logw = -((pt - a * x) ** 2).sum(-1) / (2 * s * s)  # p_τ(x̃ | x) up to a constant
    w = torch.softmax(logw, 0)
    u_cond = path.conditional_velocity(
        pt.expand_as(x), x, torch.full((x.shape[0],), tau, dtype=x.dtype)
    )
    mc = (w[:, None] * u_cond).sum(0)
    exact = path.marginal_velocity(GMM, pt, tau)[0]
    assert (mc - exact).abs().max() < 0.03, (mc, exact)


@pytest.mark.parametrize("kind", ["ot", "vp"])
def test_ode_with_true_velocity_recovers_target_and_its_density(kind):
    path = make_path(kind)

    def v(y, t):
        return path.marginal_velocity(GMM, y, float(t.reshape(-1)[0]))

    z = torch.randn(6000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = odeint(v, z, 0.0, path.tau_max, steps=60, method="heun")
    m, c = moments(x)
    m_true, c_true = GMM.moments()
    assert (m - m_true).abs().max() < 0.06 and (c - c_true).abs().max() < 0.25
    # exact likelihood: log p_1(x) = log N(x(0); 0, I) − ∫_0^1 ∇·u dτ; the path's data end is the
    # target blurred by σ_{τ_max} (and scaled by a(τ_max))
    pts, _ = data(6, seed=4)
    a1, s1 = (
        float(c) for c in path.coefficients(torch.tensor([path.tau_max], dtype=torch.float64))[:2]
    )
    got = ode_log_likelihood(
        v, pts, path.tau_max, 0.0, standard_normal_log_prob, steps=100, method="rk4"
    )
    tol = 1e-2 if kind == "ot" else 2e-2  # vp: its τ = 0 end is N(0.0066 x, 1 - a²), not N(0, I)
    assert (got - GMM.log_prob_t(pts, a1, s1)).abs().max() < tol


def test_conditional_trajectories_are_straight_lines():
    path = make_path("straight")
    x, noise = data(5)
    frames, taus = conditional_trajectories(path, x, noise, num_frames=7)
    assert frames.shape == (7, 5, 2) and taus.shape == (7,)
    assert torch.allclose(frames[0], noise) and torch.allclose(frames[-1], x)
    mid = (1 - taus[3]) * noise + taus[3] * x
    assert torch.allclose(frames[3], mid)


# --- the registered model ----------------------------------------------------------------------
def small(path="ot", **kw):
    torch.manual_seed(0)
    opts = {"hidden": 32, "depth": 2, "steps": 10, "likelihood_steps": 4, **kw}
    return models.build("flow_matching", path=path, **opts)


def test_registered_with_presets_and_capabilities():
    assert "flow_matching" in models.names()
    m = small()
    assert isinstance(m, HasLogProb) and isinstance(m, HasVelocity)
    for preset in ("fast", "quality"):
        models.build("flow_matching", **models.preset("flow_matching", preset).model)


@pytest.mark.parametrize("kind", PATHS)
def test_model_contract(kind):
    m = small(kind)
    x = GMM.sample(64, generator=torch.Generator().manual_seed(0))
    loss = m.loss(x)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    m.eval()
    assert m.velocity(x, 0.5).shape == (64, 2)
    a = m.sample(40, generator=torch.Generator().manual_seed(1))
    b = m.sample(40, generator=torch.Generator().manual_seed(1))
    assert a.shape == (40, 2) and torch.equal(a, b)
    traj = m.trajectory(20, num_frames=5, generator=torch.Generator().manual_seed(2))
    assert traj.xs.shape == (5, 20, 2) and traj.time_label == "τ"
    assert float(traj.ts[0]) == 0.0 and float(traj.ts[-1]) == pytest.approx(
        m.tau_max
    )  # noise -> data
    assert torch.allclose(
        traj.xs[-1], m.sample(20, generator=torch.Generator().manual_seed(2)), atol=1e-5
    )
    lp = m.log_prob(x[:8])
    assert lp.shape == (8,) and torch.isfinite(lp).all()


def test_model_plumbing_with_the_true_velocity(monkeypatch):
    """With the network replaced by the exact marginal velocity, the model samples the target and
    its log_prob is the exact log density of the path's data end."""
    m = small("ot", steps=40, likelihood_steps=40)
    monkeypatch.setattr(
        m,
        "velocity",
        lambda y, t: m.true_velocity(GMM, y, float(torch.as_tensor(t).reshape(-1)[0])),
    )
    x = m.sample(4000, generator=torch.Generator().manual_seed(0))
    mean, _ = moments(x)
    assert (mean - GMM.moments()[0]).abs().max() < 0.08
    pts = GMM.sample(6, generator=torch.Generator().manual_seed(5))
    assert (m.log_prob(pts) - GMM.log_prob_t(pts, 1.0, 0.01)).abs().max() < 2e-2


def test_model_rejects_bad_options():
    for bad in (
        {"path": "cosine"},
        {"method": "dopri5"},
        {"steps": 0},
        {"sigma_min": 1.5},
        {"beta_min": 30.0, "path": "vp"},
    ):
        with pytest.raises(ValueError):
            models.build("flow_matching", **bad)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["8gaussians", "moons"])
def test_fast_preset_quality(target, fast_preset_quality):
    ratio, kl = fast_preset_quality("flow_matching", target)
    assert ratio < 3.0
    assert kl < (0.1 if target == "8gaussians" else 0.15)


# --- one vocabulary: marginal_at, the field comparison, the lab demos ---------------------------
@pytest.mark.parametrize("kind", PATHS)
def test_marginal_at_matches_the_path_noising(kind):
    """The level is τ: marginal_at(τ) = (a(τ), σ_τ) of x̃ = a x + σ x̃_0, checked against the moments
    of the path's own conditional samples from a point mass."""
    m = small(kind)
    n = 40_000
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([[1.5, -1.0]], dtype=torch.float64).expand(n, 2)
    for tau in (0.2, 0.5, 0.9):
        xt = m.path.sample(
            x, torch.full((n,), tau, dtype=x.dtype), torch.randn(n, 2, generator=g, dtype=x.dtype)
        )
        a, s = m.marginal_at(tau)
        mean, cov = moments(xt)
        assert (mean - a * x[0]).abs().max() < 5 * s / n**0.5 + 1e-9, (tau, mean, a)
        assert (cov.diagonal() / s**2 - 1).abs().max() < 0.03, (tau, cov, s)
    with pytest.raises(ValueError):
        m.marginal_at(-0.1)


@pytest.mark.parametrize("kind", ["ot", "vp"])
def test_field_comparison_is_the_exact_marginal_velocity(kind):
    m = small(kind).eval()
    assert field_kind(m) == "velocity" and not isinstance(m, HasScore)
    bounds = (-3.0, 3.0, -2.0, 4.0)
    cmp = compare_fields(m, GMM, 0.6, bounds, grid_size=6)
    a, s = m.marginal_at(0.6)
    assert (cmp.kind, cmp.a, cmp.s, cmp.weight) == ("velocity", a, s, 1.0)
    pts = cmp.points
    torch.testing.assert_close(cmp.exact.reshape(-1, 2), m.path.marginal_velocity(GMM, pts, 0.6))
    torch.testing.assert_close(cmp.log_p.reshape(-1), GMM.log_prob_t(pts, a, s))
    with torch.no_grad():
        torch.testing.assert_close(cmp.learned.reshape(-1, 2), m.velocity(pts, 0.6))
    torch.testing.assert_close(cmp.error, (cmp.learned - cmp.exact).norm(dim=-1))


def test_lab_exact_trajectory_and_conditional_paths():
    """The exact-velocity ODE starts from the same noise as the model's trajectory under an
    equally seeded generator and carries it to the target; conditional paths end at the data."""
    m = small("ot", steps=40)
    exact = exact_trajectory(m, GMM, 3000, 5, generator=torch.Generator().manual_seed(7))
    learned = m.trajectory(3000, 5, generator=torch.Generator().manual_seed(7))
    assert exact.time_label == learned.time_label == "τ" and exact.xs.shape == (5, 3000, 2)
    torch.testing.assert_close(exact.xs[0], learned.xs[0])
    mean, _ = moments(exact.xs[-1])
    assert (mean - GMM.moments()[0]).abs().max() < 0.1
    x, _ = data(6, dtype=torch.float32)
    cond = conditional_paths(
        make_path("straight"), x, 7, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(cond.xs[-1], x)
    from_target = target_conditional_paths(make_path("straight"), GMM, 6, 7, seed=3)
    g = torch.Generator().manual_seed(3)  # the data points first, then the noise
    x3 = GMM.sample(6, generator=g)
    torch.testing.assert_close(from_target.xs[-1], x3)
    torch.testing.assert_close(from_target.xs[0], torch.randn(6, 2, generator=g))
