"""Gaussian–Bernoulli RBM (2-2, 2-3): brute-force oracles over all hidden states, Gibbs
conditionals, the contrastive-divergence gradient, the exact mixture density."""

from __future__ import annotations

import itertools
import math
import tempfile

import numpy as np
import pytest
import torch

from genlib import distributions
from genlib.checkpoints import save_checkpoint
from genlib.geometry import grid_tensor
from genlib.lab.rbm import (
    gibbs_frames,
    negative_history,
    negative_phase,
    rbm_landscape,
)
from genlib.metrics import mixture_mode_coverage
from genlib.models.rbm import HISTORY_PARTICLES, MAX_EXACT_HIDDEN, GaussianBernoulliRBM
from genlib.runs import RunSpec, load_trained, result_meta, run
from genlib.training import TrainConfig, train

CPU = torch.device("cpu")


def _rbm(hidden: int = 5, seed: int = 0, **kw) -> GaussianBernoulliRBM:
    """A float64 RBM with random (non-trivial) parameters and per-coordinate σ."""
    m = GaussianBernoulliRBM(hidden=hidden, learn_sigma=True, **kw).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.W.copy_(0.8 * torch.randn(2, hidden, generator=g, dtype=torch.float64))
        m.b.copy_(0.5 * torch.randn(2, generator=g, dtype=torch.float64))
        m.c.copy_(torch.randn(hidden, generator=g, dtype=torch.float64))
        m.log_sigma.copy_(torch.log(torch.tensor([0.6, 0.9], dtype=torch.float64)))
    return m


def _params(m):
    return m.W.detach(), m.b.detach(), m.c.detach(), m.log_sigma.detach().exp() ** 2


def _joint_energy(m, x, h):
    """E(x, h) = ‖x − b‖²/(2σ²) − cᵀh − (x/σ²)ᵀ W h, written out independently: (N,), one h (H,)."""
    W, b, c, s2 = _params(m)
    return ((x - b) ** 2 / (2 * s2)).sum(-1) - c @ h - (x / s2) @ (W @ h)


def _all_h(hidden):
    return [
        torch.tensor(bits, dtype=torch.float64) for bits in itertools.product([0, 1], repeat=hidden)
    ]


def test_free_energy_equals_brute_force_sum_over_hidden_states():
    m = _rbm(hidden=5)
    x = 2 * torch.randn(40, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    energies = torch.stack([_joint_energy(m, x, h) for h in _all_h(5)], 1)  # (N, 32)
    brute = -torch.logsumexp(-energies, 1)
    with torch.no_grad():
        torch.testing.assert_close(m.energy(x), brute, rtol=1e-10, atol=1e-10)
        h = torch.bernoulli(torch.full((40, 5), 0.5, dtype=torch.float64))
        torch.testing.assert_close(
            m.joint_energy(x, h),
            torch.stack([_joint_energy(m, x[i : i + 1], h[i])[0] for i in range(40)]),
        )


def test_hidden_conditional_matches_brute_force_posterior():
    m = _rbm(hidden=4, seed=2)
    x = torch.randn(30, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    hs = _all_h(4)
    weights = torch.softmax(
        torch.stack([-_joint_energy(m, x, h) for h in hs], 1), 1
    )  # q(h|x): (N, 16)
    marg = weights @ torch.stack(hs)  # q(h_j = 1 | x): (N, 4)
    W, _, c, s2 = _params(m)
    with torch.no_grad():
        torch.testing.assert_close(m.hidden_prob(x), marg, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(m.hidden_prob(x), torch.sigmoid(c + (x / s2) @ W))


def test_visible_conditional_is_gaussian_at_b_plus_wh():
    m = _rbm(hidden=3, seed=4)
    h = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64).expand(40_000, 3)
    with torch.no_grad():
        x = m.sample_visible(h, torch.Generator().manual_seed(0))
    W, b, _, s2 = _params(m)
    torch.testing.assert_close(x.mean(0), b + W @ h[0], rtol=0, atol=0.02)
    torch.testing.assert_close(x.var(0), s2, rtol=0.03, atol=0)


def test_exact_log_prob_integrates_to_one_and_matches_mixture():
    m = _rbm(hidden=4, seed=5)
    n = 401
    with torch.no_grad():
        _, means, _ = m.mixture()
        lo, hi = float(means.min()) - 6, float(means.max()) + 6
        g = torch.linspace(lo, hi, n, dtype=torch.float64)
        xx, yy = torch.meshgrid(g, g, indexing="xy")
        pts = torch.stack([xx.flatten(), yy.flatten()], 1)
        dens = m.log_prob(pts).exp().reshape(n, n)
        mass = torch.trapezoid(torch.trapezoid(dens, g, dim=1), g)
        assert abs(float(mass) - 1.0) < 1e-4
        # the 2^H-component Gaussian mixture gives the same density
        log_pi, means, sigma = m.mixture()
        comp = torch.distributions.Normal(means, sigma).log_prob(pts[:, None, :]).sum(-1)  # (P, 16)
        torch.testing.assert_close(m.log_prob(pts), torch.logsumexp(log_pi + comp, 1))


def test_gibbs_chains_reach_the_exact_distribution():
    m = _rbm(hidden=3, seed=6)
    with torch.no_grad():
        m.W.mul_(0.4)  # weak coupling: fast mixing
        g = torch.Generator().manual_seed(0)
        x = m.gibbs_chain(m.init_chains(20_000, g), 60, generator=g)
        ref = m.sample_exact(20_000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(x.mean(0), ref.mean(0), rtol=0, atol=0.04)
    torch.testing.assert_close(x.std(0), ref.std(0), rtol=0.04, atol=0)


@pytest.mark.parametrize("sampler", ["cd", "pcd", "exact"])
def test_train_step_gradient_is_positive_minus_negative_phase(sampler):
    """SGD(lr=1) on the logged loss moves θ by −(⟨∇E⟩_data − ⟨∇E⟩_model), both phases computed
    here from the same data and negative samples with h averaged under q(h|·)."""
    m = _rbm(hidden=4, seed=7, sampler=sampler, k=2)
    m.grad_clip = float("inf")
    x = (
        distributions.build("two_peaks")
        .sample(64, generator=torch.Generator().manual_seed(0))
        .double()
    )
    W, b, c, s2 = (t.clone() for t in _params(m))
    log_s = m.log_sigma.detach().clone()
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    m.train_step(x, [opt], 1, generator=torch.Generator().manual_seed(0))
    y = m.last_negative

    def phase(v):
        ph = torch.sigmoid(c + (v / s2) @ W)  # ⟨h⟩ under q(h|v): (N, H)
        wh = ph @ W.T  # ⟨W h⟩: (N, 2)
        return {
            "W": -((v / s2).T @ ph) / v.shape[0],  # ∇_W E = −(v/σ²) hᵀ
            "b": (-(v - b) / s2).mean(0),  # ∇_b E = −(v − b)/σ²
            "c": -ph.mean(0),  # ∇_c E = −h
            "log_sigma": (-((v - b) ** 2) / s2 + 2 * v * wh / s2).mean(0),  # ∂E/∂log σ
        }

    pos, neg = phase(x), phase(y)
    old = {"W": W, "b": b, "c": c, "log_sigma": log_s}
    for name in old:
        step = getattr(m, name).detach() - old[name]
        torch.testing.assert_close(step, -(pos[name] - neg[name]), rtol=1e-8, atol=1e-10)


def test_samplers_produce_the_right_negative_particles():
    x = (
        distributions.build("two_peaks")
        .sample(128, generator=torch.Generator().manual_seed(0))
        .double()
    )
    m = _rbm(hidden=3, seed=8, sampler="cd", k=3)
    y = m.negative_samples(x, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    z = x
    for _ in range(3):
        z, _ = m.gibbs_step(z, g)
    torch.testing.assert_close(y, z)  # CD-k = k Gibbs sweeps from the data
    p = _rbm(hidden=3, seed=8, sampler="pcd", k=1)
    assert p.persistent_chains is None
    g = torch.Generator().manual_seed(6)
    y1 = p.negative_samples(x, g).clone()
    y2 = p.negative_samples(x, g)
    assert not torch.equal(y1, y2) and p.persistent_chains is y2  # chains persist
    # the page's negative phase: the same rule, without touching the model
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    torch.testing.assert_close(negative_phase(m, x, generator=g1), m.negative_samples(x, g2))
    before = p.persistent_chains.clone()
    g1, g2 = torch.Generator().manual_seed(8), torch.Generator().manual_seed(8)
    y3 = negative_phase(p, x, generator=g1)  # one more sweep of the model's chains
    assert torch.equal(p.persistent_chains, before)  # ... which stay as they were
    torch.testing.assert_close(y3, p.gibbs_chain(before, 1, generator=g2))
    chains = torch.zeros(128, 2, dtype=torch.float64)  # the run's chains, from the extras
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    torch.testing.assert_close(
        negative_phase(p, x, chains=chains, generator=g1), p.gibbs_chain(chains, 1, generator=g2)
    )
    fresh = _rbm(hidden=3, seed=8, sampler="pcd", k=1)  # no chains yet: long chains from noise
    g1, g2 = torch.Generator().manual_seed(10), torch.Generator().manual_seed(10)
    torch.testing.assert_close(
        negative_phase(fresh, x, generator=g1), fresh.sample(128, generator=g2)
    )


def test_train_step_draws_only_from_the_given_generator():
    x = distributions.build("two_peaks").sample(64, generator=torch.Generator().manual_seed(0))
    for sampler in ("cd", "pcd", "exact"):
        a = _rbm(hidden=3, seed=1, sampler=sampler).float()
        b = _rbm(hidden=3, seed=1, sampler=sampler).float()
        state = torch.get_rng_state()
        la = a.train_step(x, a.configure_optimizers(1e-2), 1, torch.Generator().manual_seed(2))
        assert torch.equal(state, torch.get_rng_state()), sampler  # no global draws
        torch.manual_seed(77)
        lb = b.train_step(x, b.configure_optimizers(1e-2), 1, torch.Generator().manual_seed(2))
        for k in la:
            torch.testing.assert_close(la[k], lb[k], rtol=0, atol=0)
        torch.testing.assert_close(a.last_negative, b.last_negative, rtol=0, atol=0)
        state = torch.get_rng_state()
        a.loss(x, torch.Generator().manual_seed(3))
        assert torch.equal(state, torch.get_rng_state()), sampler


def test_landscape_and_gibbs_frames():
    m = _rbm(hidden=3, seed=9)
    bounds = (-3.0, 3.0, -3.0, 3.0)
    v = rbm_landscape(m, bounds, 7)
    _, _, pts = grid_tensor(bounds, 7, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(torch.as_tensor(v.energy), m.energy(pts))
        torch.testing.assert_close(torch.as_tensor(v.log_q), m.log_prob(pts))
        log_pi, means, _ = m.mixture()
    torch.testing.assert_close(torch.as_tensor(v.log_pi), log_pi)
    torch.testing.assert_close(torch.as_tensor(v.means), means)
    big = GaussianBernoulliRBM(hidden=20)  # too many hidden units: no exact density
    vb = rbm_landscape(big, bounds, 5)
    assert vb.energy.shape == (25,) and vb.log_q is None and vb.means is None
    x0 = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    frames = gibbs_frames(m, 6, 4, x0=x0, generator=torch.Generator().manual_seed(1))
    ref = m.gibbs_chain(x0, 4, generator=torch.Generator().manual_seed(1), record=True)
    assert frames.shape == (5, 6, 2)
    torch.testing.assert_close(frames, ref)
    noise = gibbs_frames(m, 6, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        noise[0], m.init_chains(6, torch.Generator().manual_seed(1))
    )  # from noise by default


def test_log_prob_refuses_large_hidden_layers():
    m = GaussianBernoulliRBM(hidden=20)
    with pytest.raises(NotImplementedError):
        m.log_prob(torch.zeros(3, 2))
    assert m.energy(torch.zeros(3, 2)).shape == (3,)
    with pytest.raises(ValueError):
        GaussianBernoulliRBM(sampler="langevin")
    with pytest.raises(ValueError):
        GaussianBernoulliRBM(hidden=20, sampler="exact")


def test_training_records_history_and_round_trips():
    target = distributions.build("two_peaks")
    m = GaussianBernoulliRBM(hidden=2, record_every=10)
    res = train(
        m,
        target,
        TrainConfig(steps=60, batch_size=128, lr=1e-2, log_every=20, data_size=1000),
        device=CPU,
    )
    assert res.status == "ok"
    assert {"free_energy_data", "free_energy_model", "recon_error"} <= set(res.history[-1])
    extras = res.extras  # the negative phase lives in the training result
    assert extras["negative_steps"] == [10, 20, 30, 40, 50, 60]
    assert extras["negative_particles"].shape == (6, min(128, HISTORY_PARTICLES), 2)
    hist = negative_history(extras)
    assert hist is not None and hist.steps == (10, 20, 30, 40, 50, 60)
    assert hist.particles.shape == (6, 128, 2)
    assert "pcd_chains" not in extras  # CD keeps no chains
    assert negative_history({}) is None
    clone = GaussianBernoulliRBM(hidden=2)
    clone.load_state_dict(m.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(clone.log_prob(torch.zeros(4, 2)), m.log_prob(torch.zeros(4, 2)))
        a = m.sample(16, generator=torch.Generator().manual_seed(2))
        b = clone.sample(16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    traj = m.trajectory(8, num_frames=10, generator=torch.Generator().manual_seed(2))
    assert traj.xs.shape == (10, 8, 2) and traj.ts[0] == 0 and float(traj.ts[-1]) == m.gibbs_steps


def test_negative_history_survives_a_checkpoint(tmp_path, monkeypatch):
    """The recorded negative phase and the PCD chains are part of the training result: saved with
    the checkpoint and back after ``load_trained``, although a rebuilt model has none."""
    monkeypatch.setenv("GENLIB_CACHE", str(tmp_path / "cache"))
    spec = RunSpec.from_preset(
        "rbm", "two_peaks", preset="fast", seed=0, steps=60, log_every=20, data_size=1000,
        batch_size=64, model_overrides={"hidden": 3, "sampler": "pcd", "record_every": 20},
    )  # fmt: skip
    trained = run(spec, use_cache=False)
    extras = trained.result.extras
    assert extras["negative_steps"] == [20, 40, 60]
    assert extras["negative_particles"].shape == (3, 64, 2)
    assert extras["pcd_chains"].shape == (64, 2)
    path = save_checkpoint(
        tmp_path / "rbm.pt", trained.model.state_dict(), spec.to_dict(), result_meta(trained.result)
    )
    loaded = load_trained(spec, path=path, device=CPU)
    assert loaded.model.persistent_chains is None  # the module itself keeps nothing
    back = loaded.result.extras
    assert back["negative_steps"] == extras["negative_steps"]
    torch.testing.assert_close(back["negative_particles"], extras["negative_particles"])
    torch.testing.assert_close(back["pcd_chains"], extras["pcd_chains"])
    hist = negative_history(back)
    assert hist is not None and hist.steps == (20, 40, 60)
    np.testing.assert_allclose(hist.particles, extras["negative_particles"].double().numpy())
    # and through the content-addressed cache of ``run``
    run(spec)
    cached = run(spec)
    assert cached.source == "cache"
    torch.testing.assert_close(cached.result.extras["pcd_chains"], extras["pcd_chains"])


@pytest.mark.slow
@pytest.mark.parametrize("target", ["8gaussians", "two_peaks"])
def test_fast_preset_captures_separated_modes(target, monkeypatch):
    monkeypatch.setenv("GENLIB_CACHE", tempfile.mkdtemp())
    from genlib.device import make_generator
    from genlib.runs import RunSpec, run

    spec = RunSpec.from_preset("rbm", target, preset="fast", seed=0, steps=1500)
    trained = run(spec, use_cache=False)
    with torch.no_grad():
        x = trained.model.sample(4000, generator=make_generator(0))
    cov = mixture_mode_coverage(x, trained.target, radius=1.0)
    assert cov["modes_covered"] >= 2 and cov["fraction_near_mode"] > 0.8, cov
    with torch.no_grad():
        assert math.isfinite(float(trained.model.log_partition()))


# -------------------------------------------------------------------- what the page asks of lab
def _tiny_trained(sampler: str = "cd", steps: int = 30):
    spec = RunSpec.from_preset(
        "rbm",
        "8gaussians",
        seed=4,
        steps=steps,
        batch_size=64,
        model_overrides={"hidden": 4, "sampler": sampler},
    )
    return run(spec, use_cache=False)


@pytest.mark.parametrize("sampler", ["cd", "pcd", "exact"])
def test_live_extra_shows_the_negative_particles_and_log_q(sampler):
    from genlib.lab.rbm import LIVE_GRID, LIVE_PARTICLES, live_extra

    m = _rbm(hidden=4, sampler=sampler, k=2)
    target = distributions.build("8gaussians")
    g = torch.Generator().manual_seed(0)
    out = live_extra(m, target, g, target.bounds)
    assert "particles" not in out  # no update yet: no negative phase to show
    assert out["grid_kind"] == "log_q" and out["grid"].shape == (LIVE_GRID**2,)
    _, _, pts = grid_tensor(target.bounds, LIVE_GRID, dtype=torch.float64)
    np.testing.assert_allclose(out["grid"], m.log_prob(pts).detach().numpy(), rtol=1e-5, atol=1e-5)
    (opt,) = m.configure_optimizers(1e-3)
    x = target.sample(512, generator=torch.Generator().manual_seed(1)).double()
    m.train_step(x, [opt], 0, generator=torch.Generator().manual_seed(2))
    state = g.get_state()
    out = live_extra(m, target, g, target.bounds)
    assert torch.equal(g.get_state(), state)  # draws nothing
    np.testing.assert_allclose(
        out["particles"], m.last_negative[:LIVE_PARTICLES].numpy(), rtol=1e-6, atol=1e-6
    )
    assert out["particles"].shape == (LIVE_PARTICLES, 2)
    label = {"cd": "y ~ CD-2", "pcd": "y ~ PCD-2", "exact": "y ~ q_θ"}[sampler]
    assert out["particles_label"] == label


def test_live_extra_without_an_exact_density_keeps_the_particles():
    from genlib.lab.rbm import live_extra

    m = _rbm(hidden=MAX_EXACT_HIDDEN + 1)
    target = distributions.build("moons")
    m.last_negative = torch.zeros(10, 2, dtype=torch.float64)
    out = live_extra(m, target, torch.Generator(), target.bounds)
    assert "grid" not in out and out["particles"].shape == (10, 2)


def test_trained_chains_phases_coverage_and_landscape():
    from genlib.device import make_generator
    from genlib.lab.rbm import trained_chains, trained_coverage, trained_landscape, trained_phases

    trained = _tiny_trained("pcd")
    target = trained.target
    frames = trained_chains(trained, "data", 20, 3, seed=5)
    assert frames.shape == (4, 20, 2)
    np.testing.assert_allclose(frames[0], target.sample(20, generator=make_generator(5)).numpy())
    noise = trained_chains(trained, "noise", 20, 3, seed=5)
    np.testing.assert_allclose(noise, trained_chains(trained, "noise", 20, 3, seed=5))
    pos, neg = trained_phases(trained, 30, seed=1)
    assert pos.shape == neg.shape == (30, 2)
    np.testing.assert_allclose(pos, target.sample(30, generator=make_generator(2)).numpy())
    cov = trained_coverage(trained, 500)
    assert cov is not None and cov["modes_total"] == 8
    land = trained_landscape(trained, (-4.0, 4.0, -4.0, 4.0), 7)
    assert land.hidden == 4 and land.n_components == 16 and land.sigma.shape == (2,)
    np.testing.assert_allclose(land.sigma, trained.model.log_sigma.detach().exp().numpy())


# -------------------------------------------------------------------- the slide's sign (issue 11)
def test_slide_sign_flips_the_update_exactly():
    """One SGD step with ``update_sign="slide"`` moves every parameter by minus the correct
    step (same weights, same batch, same negative samples)."""
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    deltas = {}
    for sign in ("correct", "slide"):
        m = _rbm(hidden=4, update_sign=sign)
        before = [p.detach().clone() for p in m.parameters()]
        opt = torch.optim.SGD(m.parameters(), lr=1e-2)
        m.train_step(x, [opt], 1, generator=torch.Generator().manual_seed(9))
        deltas[sign] = [p.detach() - b for p, b in zip(m.parameters(), before, strict=True)]
    for dc, ds in zip(deltas["correct"], deltas["slide"], strict=True):
        assert dc.abs().max() > 0
        torch.testing.assert_close(ds, -dc)
    with pytest.raises(ValueError):
        GaussianBernoulliRBM(update_sign="wrong")


def test_update_sign_is_in_the_key_only_when_not_default():
    base = RunSpec.from_preset("rbm", "moons")
    same = RunSpec.from_preset("rbm", "moons", model_overrides={"update_sign": "correct"})
    slide = RunSpec.from_preset("rbm", "moons", model_overrides={"update_sign": "slide"})
    assert base.key() == same.key() != slide.key()
    assert "update_sign" not in dict(base.model_params)
    assert dict(slide.model_params)["update_sign"] == "slide"
    from genlib.runs import build_model

    assert build_model(slide).update_sign == "slide" and build_model(base).update_sign == "correct"


def test_sign_comparison_kl_falls_with_the_correct_sign_and_grows_with_the_slides():
    from genlib.lab.rbm import sign_comparison

    spec = RunSpec.from_preset(
        "rbm", "8gaussians", model_overrides={"hidden": 4}, steps=60, batch_size=128, data_size=5000
    )
    a = sign_comparison(spec, steps=60, every=20, n_kl=1000)
    b = sign_comparison(spec, steps=60, every=20, n_kl=1000)
    assert list(a.steps) == [0, 20, 40, 60]
    for sign in ("correct", "slide"):
        np.testing.assert_array_equal(a.kl[sign], b.kl[sign])  # seeded: deterministic
    assert a.kl["correct"][0] == a.kl["slide"][0]  # the same initial weights
    assert np.all(np.diff(a.kl["slide"]) > 0) and a.kl["slide"][-1] > 2 * a.kl["slide"][0]
    assert a.kl["correct"][-1] < a.kl["correct"][0]
    # the exact KL at the start agrees with an independent estimate on other samples
    from genlib.runs import build_model

    m, target = build_model(spec), spec.target.build()
    x = target.sample(20000, generator=torch.Generator().manual_seed(77))
    with torch.no_grad():
        kl0 = float((target.log_prob(x).double() - m.log_prob(x).double()).mean())
    assert a.kl["correct"][0] == pytest.approx(kl0, rel=0.05)
