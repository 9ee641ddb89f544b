"""Gaussian–Bernoulli RBM (2-2, 2-3): brute-force oracles over all hidden states, Gibbs
conditionals, the contrastive-divergence gradient, the exact mixture density."""

from __future__ import annotations

import itertools
import math
import tempfile

import pytest
import torch

from genlib import distributions
from genlib.metrics import mode_coverage
from genlib.models.rbm import GaussianBernoulliRBM
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
    torch.manual_seed(0)
    m.train_step(x, [opt], 1)
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
    torch.manual_seed(5)
    y = m.negative_samples(x)
    torch.manual_seed(5)
    z = x
    for _ in range(3):
        z, _ = m.gibbs_step(z)
    torch.testing.assert_close(y, z)  # CD-k = k Gibbs sweeps from the data
    p = _rbm(hidden=3, seed=8, sampler="pcd", k=1)
    y1 = p.negative_samples(x).clone()
    y2 = p.negative_samples(x)
    assert not torch.equal(y1, y2) and p._chains is y2  # chains persist between updates


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
    assert [s for s, _ in m.negative_history] == [10, 20, 30, 40, 50, 60]
    clone = GaussianBernoulliRBM(hidden=2)
    clone.load_state_dict(m.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(clone.log_prob(torch.zeros(4, 2)), m.log_prob(torch.zeros(4, 2)))
        a = m.sample(16, generator=torch.Generator().manual_seed(2))
        b = clone.sample(16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    traj = m.trajectory(8, num_frames=10, generator=torch.Generator().manual_seed(2))
    assert traj.xs.shape == (10, 8, 2) and traj.ts[0] == 0 and float(traj.ts[-1]) == m.gibbs_steps


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
    cov = mode_coverage(x, trained.target.means, radius=1.0)
    assert cov["modes_covered"] >= 2 and cov["fraction_near_mode"] > 0.8, cov
    with torch.no_grad():
        assert math.isfinite(float(trained.model.log_partition()))
