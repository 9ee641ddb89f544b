"""Forward vs reverse KL fitting (genlib.kl, genlib.objectives): oracle tests against closed
forms, autograd and Monte Carlo; the lecture's claims (moment matching, mode seeking) on the
two-peak target; the fits run on the common training loop (progress, Stop, no global RNG)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from genlib import distributions
from genlib.distributions.base import GaussianMixture
from genlib.kl import (
    MAX_FORWARD_DATA,
    GaussianQ,
    GridCache,
    KLConfig,
    KLPair,
    MixtureQ,
    build_q,
    exact_kls,
    fit,
    fit_pair,
    frame_steps,
    grid_kls,
    job_key,
    jsonable,
    make_grid,
    mode_fractions,
    moment_matched,
    picked_mode,
    seed_sweep,
)
from genlib.objectives import reverse_kl, target_log_prob
from genlib.training import TrainConfig, train

CPU = "cpu"


def _gaussian_q(mean, cov) -> GaussianQ:
    return GaussianQ.from_moments(mean, cov)


def _perturbed(q: torch.nn.Module, seed: int, scale: float = 0.3) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in q.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return q


# ----------------------------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize(
    "bad",
    [
        {"steps": 0},
        {"steps": 5001},
        {"n_samples": 5000},
        {"num_frames": 201},
        {"lr": 0.0},
        {"lr": float("nan")},
        {"lr": 1.5},  # the common loop's bound
        {"q": "vae"},
        {"divergence": "both"},
        {"optimizer": "lbfgs"},
        {"init_scale": 0.0},
        {"init_mean": (0.0, float("inf"))},
        {"grid_res": 512},
        {"components": 9},
        {"seed": -1},
    ],
)
def test_config_rejects_out_of_bounds(bad):
    with pytest.raises(ValueError):
        KLConfig(**bad)


def test_config_is_hashable_and_freezes_params():
    a = KLConfig(target_params={"distance": 5.0, "std": 0.5})
    b = KLConfig(target_params=(("std", 0.5), ("distance", 5.0)))
    assert a == b and hash(a) == hash(b)
    assert a.to_dict()["target_params"] == {"distance": 5.0, "std": 0.5}
    with pytest.raises(ValueError, match="unknown target"):
        KLConfig(target="nope").build_target()
    with pytest.raises(ValueError, match="bad parameters"):
        KLConfig(target_params={"bogus": 1}).build_target()


def test_frame_steps_cover_start_and_end():
    s = frame_steps(800, 60)
    assert s[0] == 0 and s[-1] == 800 and len(s) == 60 and s == sorted(set(s))
    assert frame_steps(3, 200) == [0, 1, 2, 3]


# ----------------------------------------------------------------------------------------------
# the q families: densities are normalised, samples carry their own log density


@pytest.mark.parametrize("family", ["gaussian", "mixture", "flow"])
def test_q_density_normalised_and_rsample_consistent(family):
    cfg = KLConfig(q=family, components=3, init_scale=0.8, seed=1)
    q = _perturbed(build_q(cfg, CPU), seed=2, scale=0.2 if family != "flow" else 0.05)
    g = make_grid(distributions.build("two_peaks"), (-9.0, 9.0, -9.0, 9.0), 256)
    with torch.no_grad():
        mass = float(q.log_prob(g.points.float()).double().exp().sum() * g.cell_area)
        y, log_q = q.rsample(512, torch.Generator().manual_seed(0))
        ref = q.log_prob(y)
    assert mass == pytest.approx(1.0, abs=2e-3)
    torch.testing.assert_close(log_q, ref, atol=1e-4, rtol=1e-4)


def test_gaussian_q_matches_torch_mvn():
    cov = [[1.3, 0.4], [0.4, 0.5]]
    q = _gaussian_q([0.3, -0.7], cov)
    mvn = MultivariateNormal(torch.tensor([0.3, -0.7]), torch.tensor(cov))
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0)) * 2
    torch.testing.assert_close(q.log_prob(x), mvn.log_prob(x), atol=1e-5, rtol=1e-5)
    m, c = q.moments()
    np.testing.assert_allclose(c.numpy(), cov, atol=1e-6)


def test_flow_log_prob_is_change_of_variables():
    """log q(f(ε)) = log N(ε) − log|det ∂f/∂ε| with the Jacobian from autograd."""
    q = _perturbed(build_q(KLConfig(q="flow", flow_layers=3), CPU), seed=5, scale=0.3)
    eps = torch.randn(6, 2, generator=torch.Generator().manual_seed(3))
    for e in eps:
        J = torch.autograd.functional.jacobian(lambda z: q.transform(z[None])[0][0], e)
        y = q.transform(e[None])[0]
        expected = (
            -math.log(2 * math.pi) - 0.5 * float((e**2).sum()) - float(torch.linalg.slogdet(J)[1])
        )
        assert float(q.log_prob(y).detach()) == pytest.approx(expected, abs=1e-4)


def test_mixture_moments_exact():
    q = _perturbed(MixtureQ((0.0, 0.0), 1.0, 3, torch.Generator().manual_seed(0)), seed=1)
    m, c = q.moments()
    with torch.no_grad():
        y = q.push(q.display_noise(400_000, torch.Generator().manual_seed(1))).double()
    np.testing.assert_allclose(m.numpy(), y.mean(0).numpy(), atol=0.02)
    np.testing.assert_allclose(c.numpy(), torch.cov(y.T).numpy(), atol=0.04)


# ----------------------------------------------------------------------------------------------
# exact KL on a grid vs closed forms and Monte Carlo


@pytest.mark.parametrize(
    "mean,cov", [([0.5, -0.3], [[1.2, 0.5], [0.5, 0.8]]), ([2.5, 1.0], [[0.3, -0.1], [-0.1, 0.6]])]
)
def test_grid_kl_matches_closed_form_both_directions(mean, cov):
    target = GaussianMixture(
        torch.tensor([[0.0, 0.0]]), torch.tensor([[0.7, 1.1]]), bounds=(-4.5, 4.5, -4.5, 4.5)
    )
    q = _gaussian_q(mean, cov)
    p_mvn = MultivariateNormal(
        torch.zeros(2, dtype=torch.float64),
        torch.diag(torch.tensor([0.49, 1.21], dtype=torch.float64)),
    )
    q_mvn = MultivariateNormal(
        torch.tensor(mean, dtype=torch.float64), torch.tensor(cov, dtype=torch.float64)
    )
    kls = exact_kls(target, q, res=200)
    assert kls["kl_pq"] == pytest.approx(float(kl_divergence(p_mvn, q_mvn)), abs=1e-2)
    assert kls["kl_qp"] == pytest.approx(float(kl_divergence(q_mvn, p_mvn)), abs=1e-2)
    assert kls["p_mass"] == pytest.approx(1.0, abs=1e-3) and kls["q_mass"] == pytest.approx(
        1.0, abs=1e-3
    )
    # and an independent Monte-Carlo estimate of both directions
    g = torch.Generator().manual_seed(0)
    x = target.sample(200_000, generator=g).double()  # p is this one-component mixture
    mc_pq = (p_mvn.log_prob(x) - q_mvn.log_prob(x)).mean()
    y = (
        q_mvn.mean
        + torch.randn(200_000, 2, generator=g, dtype=torch.float64)
        @ torch.linalg.cholesky(q_mvn.covariance_matrix).T
    )
    mc_qp = (q_mvn.log_prob(y) - p_mvn.log_prob(y)).mean()
    assert kls["kl_pq"] == pytest.approx(float(mc_pq), abs=0.03)
    assert kls["kl_qp"] == pytest.approx(float(mc_qp), abs=0.03)


def test_grid_kl_follows_q_outside_the_target_box():
    """A broad q far outside the target's box: the grid grows so KL(q‖p) stays exact."""
    target = GaussianMixture(torch.tensor([[0.0, 0.0]]), 0.5, bounds=(-2.0, 2.0, -2.0, 2.0))
    q = _gaussian_q([3.0, 0.0], [[4.0, 0.0], [0.0, 4.0]])
    p_mvn = MultivariateNormal(
        torch.zeros(2, dtype=torch.float64), 0.25 * torch.eye(2, dtype=torch.float64)
    )
    q_mvn = MultivariateNormal(
        torch.tensor([3.0, 0.0], dtype=torch.float64), 4.0 * torch.eye(2, dtype=torch.float64)
    )
    kls = exact_kls(target, q, cache=GridCache(target, 256))
    assert kls["half_width"] > 10
    assert kls["kl_qp"] == pytest.approx(float(kl_divergence(q_mvn, p_mvn)), rel=1e-2)
    assert kls["kl_pq"] == pytest.approx(float(kl_divergence(p_mvn, q_mvn)), abs=1e-2)


def test_kl_falls_back_to_monte_carlo_when_q_outgrows_the_grid():
    target = GaussianMixture(torch.tensor([[0.0, 0.0]]), 0.5, bounds=(-2.0, 2.0, -2.0, 2.0))
    q = _gaussian_q([0.0, 0.0], [[400.0, 0.0], [0.0, 400.0]])  # ±6σ = ±120: wider than any grid
    p_mvn = MultivariateNormal(
        torch.zeros(2, dtype=torch.float64), 0.25 * torch.eye(2, dtype=torch.float64)
    )
    q_mvn = MultivariateNormal(
        torch.zeros(2, dtype=torch.float64), 400.0 * torch.eye(2, dtype=torch.float64)
    )
    kls = exact_kls(target, q, res=256)
    assert kls["method_qp"] == "mc" and kls["method_pq"] == "grid" and kls["q_mass"] < 0.99
    assert kls["kl_qp"] == pytest.approx(float(kl_divergence(q_mvn, p_mvn)), rel=0.02)
    assert kls["kl_pq"] == pytest.approx(float(kl_divergence(p_mvn, q_mvn)), abs=1e-2)


def test_reverse_kl_gradient_for_targets_without_autograd_log_prob():
    """Quadrature targets return detached log p; the gradient then comes from their exact score
    (checked here against central finite differences of log p)."""
    target = distributions.build("moons")
    y = torch.tensor(
        [[0.3, 0.4], [-1.2, 0.1], [1.5, -0.6]], dtype=torch.float32, requires_grad=True
    )
    log_p = target_log_prob(target)
    (grad,) = torch.autograd.grad(log_p(y).sum(), y)
    h = 1e-3
    for i in range(2):
        e = torch.zeros(1, 2, dtype=torch.float64)
        e[0, i] = h
        x = y.detach().double()
        fd = (
            target.log_prob((x + e).float()).double() - target.log_prob((x - e).float()).double()
        ) / (2 * h)
        torch.testing.assert_close(grad[:, i].double(), fd, atol=2e-2, rtol=2e-2)
    res = fit(
        KLConfig(target="moons", steps=150, lr=0.05, num_frames=2, grid_res=64, n_show=50),
        device=CPU,
    )
    assert res.status == "ok" and res.final.kl_qp < res.frames[0].kl_qp - 0.8


def test_reverse_kl_is_infinite_where_p_vanishes():
    log_p = torch.tensor([0.0, -math.inf, 0.0, -math.inf]).double()  # p = 0 on two cells
    log_q = torch.tensor([-0.5, -1.0, -0.5, -1.0]).double()
    kl_pq, kl_qp = grid_kls(log_p, log_q, 0.5)
    assert math.isfinite(kl_pq) and kl_qp == math.inf
    assert jsonable({"a": [math.inf, -math.inf, math.nan, 1.0]}) == {
        "a": ["inf", "-inf", "nan", 1.0]
    }
    assert json.loads(json.dumps(jsonable({"kl": math.inf})))["kl"] == "inf"


def test_fit_reports_infinite_reverse_kl_on_bounded_support(monkeypatch):
    """A target with p = 0 outside a box: a Gaussian q puts mass there, so KL(q‖p) = +inf."""
    base = distributions.build("two_peaks")

    class Boxed(type(base)):
        def log_prob(self, x):
            lp = super().log_prob(x)
            return torch.where(x.abs().max(1).values <= 5.0, lp, torch.full_like(lp, -math.inf))

    boxed = Boxed(base.comp.means, 0.5, name="boxed", bounds=base.bounds)
    monkeypatch.setattr(KLConfig, "build_target", lambda self: boxed)
    res = fit(KLConfig(divergence="reverse", steps=20, num_frames=2, init_scale=3.0))
    assert res.status == "infinite" and "inf" in res.message
    assert res.frames[0].kl_qp == math.inf and math.isfinite(res.frames[0].kl_pq)


# ----------------------------------------------------------------------------------------------
# the lecture: forward KL = moment matching, reverse KL seeks a mode


def test_moment_matched_is_the_forward_kl_optimum():
    """q* = N(E_p x, Cov_p x) (closed form for a GMM) has the least KL(p‖q) among perturbations."""
    target = distributions.build("two_peaks", distance=4.0, std=0.5, weight=0.3)
    m, c = moment_matched(target)
    w = np.array([0.3, 0.7])
    mu = np.array([[-2.0, 0.0], [2.0, 0.0]])
    m_ref = (w[:, None] * mu).sum(0)
    c_ref = sum(
        w[k] * (0.25 * np.eye(2) + np.outer(mu[k] - m_ref, mu[k] - m_ref)) for k in range(2)
    )
    np.testing.assert_allclose(m, m_ref, atol=1e-12)
    np.testing.assert_allclose(c, c_ref, atol=1e-12)
    cache = GridCache(target, 200)
    best = exact_kls(target, _gaussian_q(m, c), cache=cache)["kl_pq"]
    for dm, dc in [((0.2, 0.0), 0.0), ((0.0, 0.2), 0.0), ((0.0, 0.0), 0.3), ((0.0, 0.0), -0.3)]:
        other = exact_kls(target, _gaussian_q(m + np.array(dm), c * (1 + dc)), cache=cache)["kl_pq"]
        assert other > best + 1e-3


@pytest.mark.parametrize(
    "target,params",
    [("two_peaks", {"distance": 4.0, "std": 0.5, "weight": 0.3}), ("8gaussians", {})],
)
def test_forward_kl_gaussian_fit_is_moment_matching(target, params):
    cfg = KLConfig(
        target=target, target_params=params, divergence="forward", optimizer="sgd",
        lr=0.1, n_samples=2048, steps=400, num_frames=2, grid_res=96, n_show=50,
    )  # fmt: skip
    res = fit(cfg, device=CPU)
    m_ref, c_ref = moment_matched(cfg.build_target())
    assert res.status == "ok"
    np.testing.assert_allclose(res.final.params["mean"], m_ref, atol=0.06)
    np.testing.assert_allclose(
        res.final.params["cov"], c_ref, atol=0.04 * float(np.abs(c_ref).max())
    )


@pytest.mark.parametrize("seed", [0, 2])
def test_reverse_kl_seeks_one_mode_and_forward_covers_both(seed):
    d, s = 4.0, 0.5  # separation 8σ
    cfg = KLConfig(
        target_params={"distance": d, "std": s},
        steps=400,
        lr=0.05,
        num_frames=2,
        seed=seed,
        grid_res=128,
        n_show=200,
    )
    fwd, rev = fit_pair(cfg, device=CPU)
    mean = np.array(rev.final.params["mean"])
    cov = np.array(rev.final.params["cov"])
    centres = np.array([[-d / 2, 0.0], [d / 2, 0.0]])
    k = int(np.argmin(np.linalg.norm(centres - mean, axis=1)))
    assert np.linalg.norm(mean - centres[k]) < 0.2
    np.testing.assert_allclose(np.diag(cov), [s**2, s**2], rtol=0.3)
    assert rev.final.kl_qp == pytest.approx(math.log(2), abs=0.03)  # = log 1/w of the mode
    assert rev.final.kl_pq > 5.0  # the other peak is missed
    assert rev.picked_mode() == k
    # forward KL: q covers both peaks (x-variance above (d/2)²)
    assert fwd.final.params["cov"][0][0] > d**2 / 4
    assert fwd.picked_mode() == -1
    assert fwd.final.kl_pq < rev.final.kl_pq and rev.final.kl_qp < fwd.final.kl_qp


def test_reverse_kl_value_is_log_inverse_weight_of_the_mode():
    cfg = KLConfig(
        target_params={"weight": 0.3},
        steps=400,
        lr=0.05,
        num_frames=2,
        grid_res=128,
        init_mean=(-1.0, 0.0),
    )
    res = fit(cfg, device=CPU)
    assert res.picked_mode() == 0  # the light mode on the left, where it started
    assert res.final.kl_qp == pytest.approx(math.log(1 / 0.3), abs=0.03)


# ----------------------------------------------------------------------------------------------
# figure helpers: highest-density contours of a Gaussian are its 1σ / 2σ ellipses


def test_hdr_contours_of_a_gaussian_are_its_sigma_ellipses():
    from genlib.viz.kl import contour_segments, ellipse_xy, hdr_levels

    mean, cov = np.array([0.4, -0.2]), np.array([[1.0, 0.5], [0.5, 0.7]])
    xs = ys = np.linspace(-5, 5, 201)
    gx, gy = np.meshgrid(xs, ys)
    mvn = MultivariateNormal(torch.tensor(mean), torch.tensor(cov))
    log_q = mvn.log_prob(torch.tensor(np.stack([gx, gy], -1))).numpy()  # (201, 201), rows along y
    prec = np.linalg.inv(cov)
    for level, k in zip(hdr_levels(log_q, 0.05**2), (1.0, 2.0), strict=True):
        x, y = contour_segments(log_q, xs, ys, level)
        pts = np.stack([x, y], 1)[np.isfinite(x)] - mean
        r = np.sqrt(np.einsum("ni,ij,nj->n", pts, prec, pts))  # Mahalanobis radius
        assert len(pts) > 100 and np.abs(r - k).max() < 0.03
        ex, ey = ellipse_xy(mean, cov, k)
        e = np.stack([ex, ey], 1) - mean
        np.testing.assert_allclose(np.sqrt(np.einsum("ni,ij,nj->n", e, prec, e)), k, rtol=1e-9)


# ----------------------------------------------------------------------------------------------
# determinism, same start, seed sweep, divergence


def test_fit_is_deterministic_under_the_seed():
    cfg = KLConfig(steps=60, num_frames=4, grid_res=48, n_show=30, seed=4)
    a, b = fit(cfg, device=CPU), fit(cfg, device=CPU)
    c = fit(cfg.with_(seed=5), device=CPU)
    assert [f.step for f in a.frames] == [0, 20, 40, 60]
    for fa, fb in zip(a.frames, b.frames, strict=True):
        np.testing.assert_array_equal(fa.samples, fb.samples)
        assert fa.kl_qp == fb.kl_qp and fa.params == fb.params
    assert not np.array_equal(a.final.samples, c.final.samples)


@pytest.mark.parametrize("family", ["gaussian", "mixture", "flow"])
def test_fit_pair_starts_from_the_same_q(family):
    cfg = KLConfig(q=family, steps=10, num_frames=2, grid_res=32, n_show=20, flow_layers=2)
    fwd, rev = fit_pair(cfg, device=CPU)
    np.testing.assert_array_equal(fwd.frames[0].samples, rev.frames[0].samples)
    assert fwd.frames[0].params == rev.frames[0].params
    assert fwd.frames[0].kl_qp == rev.frames[0].kl_qp
    assert not np.array_equal(fwd.final.samples, rev.final.samples)
    assert fwd.final.log_q.shape == fwd.log_p.shape == (len(fwd.ys), len(fwd.xs))


def test_seed_sweep_tallies_modes():
    cfg = KLConfig(steps=250, lr=0.06, grid_res=48, n_show=100)
    sw = seed_sweep(cfg, [0, 1, 2, 3], device=CPU)
    assert [r["seed"] for r in sw.rows] == [0, 1, 2, 3]
    assert sum(sw.tally.values()) == 4 and set(sw.tally) <= {0, 1}
    for r in sw.rows:
        assert r["picked"] in (0, 1) and max(r["fractions"]) > 0.9
        assert abs(abs(r["mean_x"]) - 2.0) < 0.3
    with pytest.raises(ValueError):
        seed_sweep(cfg, [])


def test_mode_helpers():
    centres = np.array([[-2.0, 0.0], [2.0, 0.0]])
    x = np.array([[-1.9, 0.1]] * 9 + [[2.1, 0.0]])
    np.testing.assert_allclose(mode_fractions(x, centres), [0.9, 0.1])
    assert picked_mode(np.array([0.9, 0.1])) == 0 and picked_mode(np.array([0.5, 0.5])) == -1


def test_sgd_with_huge_lr_diverges_cleanly():
    cfg = KLConfig(
        target="far_mixture",
        divergence="forward",
        optimizer="sgd",
        lr=1.0,
        steps=50,
        num_frames=50,
        grid_res=32,
        n_show=20,
    )
    res = fit(cfg, device=CPU)
    assert res.status == "diverged" and "learning rate" in res.message
    assert all(np.isfinite(f.samples).all() for f in res.frames)


def test_mixture_reverse_kl_can_cover_both_modes():
    """K = 2 components started around the middle: each settles on one peak."""
    cfg = KLConfig(q="mixture", components=2, steps=400, lr=0.05, num_frames=2, grid_res=96, seed=0)
    res = fit(cfg, device=CPU)
    means = np.sort(np.array(res.final.params["means"])[:, 0])
    np.testing.assert_allclose(means, [-2.0, 2.0], atol=0.25)
    assert res.final.kl_qp < 0.05 and res.final.kl_pq < 0.05


# ----------------------------------------------------------------------------------------------
# the shared objectives (genlib.objectives) and the common training loop


def test_reverse_kl_estimator_matches_closed_form_and_grid():
    """⟨log q − log p⟩ on reparametrised samples = KL(q‖p): closed form for a Gaussian q and p;
    the mixture's stratified estimator against the exact grid value."""
    target = GaussianMixture(
        torch.tensor([[0.5, 0.0]]), torch.tensor([[0.8, 1.2]]), bounds=(-5.0, 5.0, -5.0, 5.0)
    )
    q = _gaussian_q([0.0, 0.4], [[0.6, 0.2], [0.2, 0.9]])
    q_mvn = MultivariateNormal(torch.tensor([0.0, 0.4]), torch.tensor([[0.6, 0.2], [0.2, 0.9]]))
    p_mvn = MultivariateNormal(torch.tensor([0.5, 0.0]), torch.diag(torch.tensor([0.64, 1.44])))
    log_p = target_log_prob(target)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        est = float(q.reverse_kl(log_p, 200_000, g))
    assert est == pytest.approx(float(kl_divergence(q_mvn, p_mvn)), abs=0.01)
    mix = _perturbed(MixtureQ((0.0, 0.0), 0.8, 3, torch.Generator().manual_seed(1)), seed=2)
    with torch.no_grad():
        est_mix = float(mix.reverse_kl(log_p, 300_000, g))
    assert est_mix == pytest.approx(exact_kls(target, mix, res=256)["kl_qp"], abs=0.02)
    # weights: Σ_k w_k ⟨diff⟩_k, with the whole mixture's log density
    y = torch.randn(2, 5, 2, generator=g)
    lq = torch.randn(2, 5, generator=g)
    w = torch.tensor([0.25, 0.75])
    ref = (w * (lq - target.log_prob(y.reshape(-1, 2)).reshape(2, 5)).mean(1)).sum()
    torch.testing.assert_close(reverse_kl(y, lq, target.log_prob, w), ref)


def test_flow_family_shares_the_reverse_kl_objective():
    import genlib.models.flow as flow_module
    from genlib import objectives

    assert flow_module.reverse_kl is objectives.reverse_kl
    target = distributions.build("moons")
    x = torch.zeros(3, 2, requires_grad=True)
    lp = flow_module.differentiable_log_prob(target)(x)
    assert type(lp.grad_fn).__name__ == "TargetLogProbBackward"
    assert not hasattr(flow_module, "_TargetLogProb")


def test_fit_runs_on_the_common_loop_with_progress_and_stop():
    cfg = KLConfig(steps=90, num_frames=10, grid_res=32, n_show=20)
    seen: list[int] = []

    def on_step(step: int, logs: dict[str, float]) -> bool:
        seen.append(step)
        assert math.isfinite(logs["loss"])
        return step < 30  # the Stop button at step 30

    frames: list[int] = []
    res = fit(cfg, device=CPU, on_step=on_step, on_frame=lambda s, fr: frames.append(fr.step))
    assert seen == list(range(1, 31))
    assert res.status == "stopped" and res.steps_done == 30 and "stopped" in res.message
    assert [f.step for f in res.frames] == frames == [0, 10, 20, 30]
    full = fit(cfg, device=CPU)
    assert full.status == "ok" and full.steps_done == 90 and len(full.frames) == 10
    np.testing.assert_array_equal(full.frames[3].samples, res.frames[3].samples)


def test_train_config_maps_onto_the_common_loop():
    fwd = KLConfig(divergence="forward", steps=400, n_samples=2048, lr=0.1, seed=7)
    tc = fwd.train_config()
    assert isinstance(tc, TrainConfig)
    assert (tc.steps, tc.batch_size, tc.lr, tc.seed, tc.log_every) == (400, 2048, 0.1, 7, 1)
    assert tc.data_size == MAX_FORWARD_DATA < 400 * 2048
    assert KLConfig(divergence="forward", steps=10, n_samples=64).train_config().data_size == 640
    assert KLConfig(divergence="reverse", n_samples=64).train_config().data_size == 64


def test_q_family_is_a_generative_model_trained_by_the_common_loop():
    """Forward KL of a Gaussian q with plain ``train``: moment matching (the lecture's claim)."""
    from genlib.kl import Q_FAMILIES, Q_NAMES, QDist
    from genlib.models.base import MODELS, GenerativeModel

    assert Q_FAMILIES.names() == list(Q_NAMES)  # their own registry, not the model registry
    assert not any(issubclass(MODELS.get(n), QDist) for n in MODELS.names())
    target = distributions.build("two_peaks", weight=0.3)
    q = GaussianQ((1.0, 1.0), 0.5, divergence="forward", optimizer="sgd")
    assert isinstance(q, GenerativeModel)
    cfg = TrainConfig(steps=300, batch_size=2048, lr=0.1, data_size=200_000, log_every=100)
    res = train(q, target, cfg, device=torch.device(CPU))
    m_ref, c_ref = moment_matched(target)
    m, c = q.moments()
    assert res.status == "ok"
    np.testing.assert_allclose(m.numpy(), m_ref, atol=0.06)
    np.testing.assert_allclose(c.numpy(), c_ref, atol=0.04 * float(np.abs(c_ref).max()))
    with pytest.raises(RuntimeError, match="attach_target"):
        GaussianQ(divergence="reverse").loss(torch.zeros(4, 2))


def test_build_q_leaves_the_global_rng_alone():
    cfg = KLConfig(q="flow", flow_layers=2, seed=3)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = build_q(cfg, CPU), build_q(cfg, CPU)
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb)
    c = build_q(cfg.with_(seed=4), CPU)
    assert any(
        not torch.equal(pa, pc)
        for pa, pc in zip(a.state_dict().values(), c.state_dict().values(), strict=True)
    )


# ----------------------------------------------------------------------------------------------
# background jobs: control (pause / Stop), one job per pair or sweep, content-hash keys


class _StopAt:
    """A ``genlib.training.Control`` that allows steps ``< at`` and records what it saw."""

    def __init__(self, at: int) -> None:
        self.at, self.seen = at, []

    def before_step(self, step: int) -> bool:
        self.seen.append(step)
        return step < self.at


def test_fit_stops_when_the_control_says_so():
    cfg = KLConfig(steps=90, num_frames=10, grid_res=32, n_show=20)
    ctl = _StopAt(36)
    res = fit(cfg, device=CPU, control=ctl)
    assert ctl.seen == list(range(1, 37))  # asked before every step, the loop ended at once
    assert res.status == "stopped" and res.steps_done == 35 and "stopped" in res.message
    # the frames so far plus one where it stopped (the model the page shows)
    assert [f.step for f in res.frames] == [0, 10, 20, 30, 35]
    full = fit(cfg, device=CPU)  # same seed: the stopped fit is the full one cut short
    np.testing.assert_array_equal(full.frames[3].samples, res.frames[3].samples)
    assert fit(cfg, device=CPU, control=_StopAt(1)).frames[0].step == 0  # stopped before step 1


def test_fit_pair_is_one_job_and_its_status_reflects_a_stop():
    cfg = KLConfig(steps=40, num_frames=5, grid_res=32, n_show=20)
    rows: list[tuple[int, float]] = []
    ok = fit_pair(
        cfg, device=CPU, control=_StopAt(10**6), on_step=lambda s, r: rows.append((s, r["step"]))
    )
    assert isinstance(ok, KLPair) and ok.status == "ok" and ok.steps_done == 80
    assert rows == [(s, float(s)) for s in range(1, 81)]  # the reverse fit's steps are offset
    fwd, rev = ok  # still unpacks
    assert (fwd.cfg.divergence, rev.cfg.divergence) == ("forward", "reverse")
    # stopped in the forward half: the reverse fit never trains (its start frame only)
    ctl = _StopAt(16)
    a = fit_pair(cfg, device=CPU, control=ctl)
    assert a.status == "stopped" and a.forward.status == a.reverse.status == "stopped"
    assert (a.forward.steps_done, a.reverse.steps_done) == (15, 0)
    assert [f.step for f in a.reverse.frames] == [0] and ctl.seen[-1] == 16
    # stopped in the reverse half (job step 55 = reverse step 15)
    ctl = _StopAt(56)
    b = fit_pair(cfg, device=CPU, control=ctl)
    assert (b.forward.status, b.reverse.status, b.status) == ("ok", "stopped", "stopped")
    assert (b.steps_done, b.reverse.steps_done) == (55, 15)
    assert ctl.seen == list(range(1, 57))
    # diverged (or infinite) if either fit is, unless stopped
    for s in ("diverged", "infinite"):
        assert KLPair(fwd, dataclasses.replace(rev, status=s)).status == "diverged"
    assert KLPair(dataclasses.replace(fwd, status="diverged"), a.reverse).status == "stopped"


def test_seed_sweep_is_one_job_and_keeps_the_finished_seeds_when_stopped():
    cfg = KLConfig(steps=30, grid_res=32, n_show=40)
    ctl = _StopAt(75)  # during seed 2 (job steps 61..90)
    sw = seed_sweep(cfg, [0, 1, 2, 3], device=CPU, control=ctl)
    assert sw.status == "stopped" and sw.seeds_total == 4
    assert [r["seed"] for r in sw.rows] == [0, 1] and sum(sw.tally.values()) <= 2
    assert ctl.seen == list(range(1, 76))
    full = seed_sweep(cfg, [0, 1], device=CPU)
    assert full.status == "ok" and full.rows[1]["mean_x"] == sw.rows[1]["mean_x"]


def test_job_key_is_a_content_hash_of_the_settings():
    cfg = KLConfig(target="two_peaks", target_params={"weight": 0.3}, steps=100)
    key = job_key(cfg)
    assert re.fullmatch(r"kl:[0-9a-f]{24}", key)
    same = KLConfig(target="two_peaks", target_params={"weight": 0.3}, steps=100)
    assert job_key(same) == key  # equal settings, equal keys (a new object)
    assert job_key(cfg.with_(divergence="forward")) == key  # a pair fits both directions
    others = {
        job_key(cfg.with_(seed=1)),
        job_key(cfg.with_(target_params={"weight": 0.4})),
        job_key(cfg.with_(target="moons", target_params={})),
        job_key(cfg, "sweep", seeds=4),
        job_key(cfg, "sweep", seeds=5),
        job_key(cfg, "fit"),
        key,
    }
    assert len(others) == 7
    with pytest.raises(ValueError):
        job_key(cfg, "nope")  # type: ignore[arg-type]


def test_a_pair_runs_and_stops_as_a_background_job():
    from genlib.jobs import JobQueue

    q = JobQueue(max_workers=1, idle_timeout_s=60, use_cache=False)
    try:
        cfg = KLConfig(steps=30, num_frames=4, grid_res=32, n_show=20)
        job = q.submit_work(
            job_key(cfg),
            2 * cfg.steps,
            lambda on_step, ctl: fit_pair(cfg, device=CPU, on_step=on_step, control=ctl),
        )
        assert job.wait(60) and job.state == "done"
        assert job.result.status == "ok" and job.progress().step == 60 == job.total
        assert [r["step"] for r in job.history] == list(range(1, 61))
        big = cfg.with_(steps=5000, seed=1)
        job = q.submit_work(
            job_key(big),
            2 * big.steps,
            lambda on_step, ctl: fit_pair(big, device=CPU, on_step=on_step, control=ctl),
        )
        job.set_rate(200.0)  # slow motion: it is still running when Stop comes
        t0 = time.monotonic()
        while job.progress().step < 5:
            assert time.monotonic() - t0 < 30
            time.sleep(0.05)
        job.stop()
        assert job.wait(5) and job.state == "stopped"
        res = job.result
        assert isinstance(res, KLPair) and res.status == "stopped"
        assert 5 <= res.forward.steps_done < 5000 and res.reverse.steps_done == 0
        assert res.forward.frames[-1].step == res.forward.steps_done
    finally:
        q.shutdown()
