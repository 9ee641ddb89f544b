"""GAN (lecture 3-3): the optimal discriminator D* = log p/q (appendix), alternating k_D/k_G
updates, minimax vs non-saturating gradients, KDE, mode coverage, contract, quality."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genlib import distributions, models
from genlib.device import make_generator
from genlib.distributions.base import GaussianMixture
from genlib.lab.gan import (
    MAX_RECORD_FRAMES,
    MAX_SESSION_STEPS,
    GanSession,
    coverage_over_training,
    gan_view,
    kde_log_density,
    loo_bandwidth,
    model_coverage,
    optimal_discriminator,
    scott_bandwidth,
)
from genlib.metrics import mixture_mode_coverage, mode_radius
from genlib.models.gan import GAN
from genlib.training import TrainConfig, train

CPU = torch.device("cpu")


def _unchanged(before: list[torch.Tensor], module: nn.Module) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def _fixed_gaussian_generator(m: GAN, scale: float, shift: tuple[float, float]) -> None:
    """Replace G by the frozen map z -> scale·z + shift, so q = N(shift, scale² I) exactly."""
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(scale * torch.eye(2))
        lin.bias.copy_(torch.tensor(shift))
    lin.requires_grad_(False)
    m.G = lin


def test_discriminator_alone_learns_log_p_over_q():
    """Lecture appendix: for fixed q, max_D V is reached at e^{D*} = p/q."""
    torch.manual_seed(0)
    m = GAN(z_dim=2, hidden=32, depth=2)
    _fixed_gaussian_generator(m, 1.2, (0.0, 0.0))  # q = N(0, 1.2² I)
    p = GaussianMixture(torch.tensor([[0.6, 0.0]]), 0.8)  # p = N((0.6, 0), 0.8² I)
    opt_d, _ = m.configure_optimizers(3e-3)
    g = make_generator(1)
    for _ in range(600):
        m.d_step(p.sample(256, generator=g), opt_d, generator=g)
    ax = torch.linspace(-1.2, 1.2, 13)
    grid = torch.cartesian_prod(ax, ax)  # where both densities have mass
    log_q = torch.distributions.MultivariateNormal(torch.zeros(2), 1.44 * torch.eye(2)).log_prob(
        grid
    )
    d_star = p.log_prob(grid) - log_q
    with torch.no_grad():
        d = m.discriminate(grid)
    err = (d - d_star).abs()
    assert float(d_star.abs().mean()) > 0.5  # D* is far from the initial D ≈ 0
    assert float(err.mean()) < 0.15 and float(err.max()) < 0.4, (
        float(err.mean()),
        float(err.max()),
    )
    # the same D* through the page's estimator (KDE of q from fakes): agrees within the KDE bias
    with torch.no_grad():
        fakes = m.sample(20_000, generator=make_generator(2))
    est = optimal_discriminator(p, fakes, grid).float()
    assert float((est - d_star).abs().mean()) < 0.1


def test_kde_matches_the_smoothed_gaussian():
    """The KDE of N(0, s²I) samples with bandwidth h estimates N(0, (s² + h²) I)."""
    s, h = 1.0, 0.3
    x = torch.randn(40_000, 2, generator=make_generator(0)) * s
    pts = torch.tensor([[0.0, 0.0], [1.0, -0.5], [-1.5, 0.7]])
    ref = torch.distributions.MultivariateNormal(
        torch.zeros(2), (s * s + h * h) * torch.eye(2)
    ).log_prob(pts)
    torch.testing.assert_close(kde_log_density(x, pts, bandwidth=h).float(), ref, atol=0.03, rtol=0)


def test_loo_bandwidth_adapts_to_multimodal_clouds():
    g = make_generator(0)
    x = torch.randn(1000, 2, generator=g)
    assert 0.4 < loo_bandwidth(x) / scott_bandwidth(x) <= 1.0  # a Gaussian: about Scott's rule
    two = torch.cat(
        [0.1 * torch.randn(500, 2, generator=g) - 3, 0.1 * torch.randn(500, 2, generator=g) + 3]
    )
    assert loo_bandwidth(two) < 0.2 * scott_bandwidth(two)  # Scott's rule would blur both clusters


def test_alternating_step_counts_are_respected():
    m = GAN(z_dim=2, hidden=16, depth=1, k_d=3, k_g=2)
    opts = m.configure_optimizers(1e-3)
    opt_d, opt_g = opts
    assert opt_d.defaults["betas"] == (0.5, 0.9)
    assert {id(p) for p in opt_d.param_groups[0]["params"]} == {id(p) for p in m.D.parameters()}
    assert {id(p) for p in opt_g.param_groups[0]["params"]} == {id(p) for p in m.G.parameters()}
    assert {id(p) for p in m.ema_parameters()} == {id(p) for p in m.G.parameters()}  # EMA: G only
    x = torch.randn(32, 2, generator=make_generator(0))
    for step in (1, 2):
        logs = m.train_step(x, opts, step)
    d_steps = {int(s["step"]) for s in opt_d.state.values()}
    g_steps = {int(s["step"]) for s in opt_g.state.values()}
    assert d_steps == {6} and g_steps == {4}
    assert {"loss", "d_loss", "g_loss", "d_real", "d_fake", "js_est"} <= set(logs)
    assert all(v.ndim == 0 and not v.requires_grad for v in logs.values())
    torch.testing.assert_close(logs["loss"], logs["d_loss"])
    torch.testing.assert_close(logs["js_est"], 2 * math.log(2) - logs["d_loss"])


def test_train_step_and_loss_draw_only_from_the_given_generator():
    torch.manual_seed(0)
    m = GAN(z_dim=2, hidden=16, depth=1, k_d=2, k_g=2)
    twin = GAN(z_dim=2, hidden=16, depth=1, k_d=2, k_g=2)
    twin.load_state_dict(m.state_dict())
    x = torch.randn(32, 2, generator=make_generator(0))
    state = torch.get_rng_state()
    logs = m.train_step(x, m.configure_optimizers(1e-3), 1, generator=make_generator(5))
    loss = m.loss(x, generator=make_generator(6))
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is never drawn from
    torch.manual_seed(123)  # ... so its state cannot matter
    logs2 = twin.train_step(x, twin.configure_optimizers(1e-3), 1, generator=make_generator(5))
    for k in logs:
        torch.testing.assert_close(logs[k], logs2[k], rtol=0, atol=0)
    for a, b in zip(m.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(loss, twin.loss(x, generator=make_generator(6)), rtol=0, atol=0)


def test_d_step_and_g_step_touch_only_their_network():
    m = GAN(z_dim=2, hidden=16, depth=1)
    opt_d, opt_g = m.configure_optimizers(1e-2)
    x = torch.randn(64, 2, generator=make_generator(0))
    g0 = [p.clone() for p in m.G.parameters()]
    d0 = [p.clone() for p in m.D.parameters()]
    m.d_step(x, opt_d)
    assert _unchanged(g0, m.G)
    assert not _unchanged(d0, m.D)
    d1 = [p.clone() for p in m.D.parameters()]
    m.g_step(64, opt_g)
    assert _unchanged(d1, m.D)
    assert not _unchanged(g0, m.G)


def test_minimax_and_nonsaturating_gradients_differ_by_exp_d():
    """∂/∂D of log(1 − σ(D)) is −σ(D) (vanishes where D rejects fakes), of −log σ(D) it is
    −(1 − σ(D)): the pushes on a fake point share the direction ∇D and differ by e^{D}."""
    torch.manual_seed(0)
    mm = GAN(z_dim=2, hidden=16, depth=2, loss="minimax").double()
    ns = GAN(z_dim=2, hidden=16, depth=2, loss="nonsaturating").double()
    ns.load_state_dict(mm.state_dict())
    y = torch.randn(50, 2, generator=make_generator(1), dtype=torch.float64) * 3
    push_mm, push_ns = mm.generator_push(y), ns.generator_push(y)
    d = mm.discriminate(y).detach()
    torch.testing.assert_close(push_mm, d.exp().unsqueeze(1) * push_ns, atol=1e-6, rtol=1e-4)
    # the push is −∇_y of the loss: central finite differences
    eps = 1e-6
    for k in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[k] = eps
        with torch.no_grad():
            fd = (ns.generator_loss_per_point(y + e) - ns.generator_loss_per_point(y - e)) / (
                2 * eps
            )
        torch.testing.assert_close(-fd, push_ns[:, k], atol=1e-6, rtol=1e-5)
    # saturation: where σ(D) ≈ 0 the minimax push vanishes, the non-saturating one does not
    with torch.no_grad():
        mm.D.net[-1].bias.fill_(-12.0)
    push_mm = mm.generator_push(y)
    ns.load_state_dict(mm.state_dict())
    push_ns = ns.generator_push(y)
    assert float(push_mm.norm(dim=1).max()) < 1e-3 * float(push_ns.norm(dim=1).mean())


def test_loss_is_minus_value_and_reaches_both_networks():
    m = GAN(z_dim=3, hidden=16, depth=2)
    x = torch.randn(40, 2, generator=make_generator(0))
    loss = m.loss(x)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in m.D.parameters())
    assert all(p.grad is not None for p in m.G.parameters())
    # −V ≥ 0 always (each term is −log of a probability); = 2 log 2 for a constant D = 0
    with torch.no_grad():
        m.D.net[-1].weight.zero_()
        m.D.net[-1].bias.zero_()
    torch.testing.assert_close(m.loss(x), torch.tensor(2 * math.log(2)))


def test_contract_shapes_round_trip_and_trajectory():
    kw = {"z_dim": 3, "hidden": 16, "depth": 2}
    m = models.build("gan", **kw)
    assert m.sample(9, generator=make_generator(0)).shape == (9, 2)
    tr = m.trajectory(7, num_frames=5, generator=make_generator(1))
    assert tr.xs.shape == (5, 7, 2)
    torch.testing.assert_close(tr.xs[-1], m.sample(7, generator=make_generator(1)))
    m2 = models.build("gan", **kw)
    m2.load_state_dict(m.state_dict())
    torch.testing.assert_close(
        m2.sample(5, generator=make_generator(2)), m.sample(5, generator=make_generator(2))
    )
    with pytest.raises(ValueError, match="loss"):
        GAN(loss="wasserstein")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k_d"):
        GAN(k_d=0)


def test_seeded_training_is_deterministic_and_snapshots():
    target = distributions.build("8gaussians")
    cfg = TrainConfig(
        steps=20,
        batch_size=64,
        seed=3,
        data_size=500,
        log_every=5,
        snapshot_every=10,
        snapshot_size=50,
    )
    results, states = [], []
    for _ in range(2):
        torch.manual_seed(7)
        m = GAN(z_dim=2, hidden=16, depth=1)
        results.append(train(m, target, cfg, device=CPU))
        states.append(m.state_dict())
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k])
    assert [s for s, _ in results[0].snapshots] == [10, 20]
    assert results[0].snapshots[0][1].shape == (50, 2)
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(results[0].history[-1])


def test_mode_coverage_on_mixtures():
    target = distributions.build("8gaussians")
    x = target.sample(4000, generator=make_generator(0))
    full = mixture_mode_coverage(x, target)
    assert full is not None and full["modes_covered"] == 8 and full["fraction_near_mode"] > 0.95
    near3 = torch.cdist(x, target.means).argmin(1) < 3
    part = mixture_mode_coverage(x[near3], target)
    assert part["modes_covered"] == 3
    assert mixture_mode_coverage(x, distributions.build("two_peaks")) is not None
    assert mixture_mode_coverage(x, distributions.build("moons")) is None
    # over training: one row per snapshot, with its step
    rows = coverage_over_training([(10, x[near3]), (20, x)], target)
    assert [(r["step"], r["modes_covered"]) for r in rows] == [(10.0, 3.0), (20.0, 8.0)]
    assert coverage_over_training([(10, x)], distributions.build("moons")) is None


def test_mode_radius_rule():
    """One rule: 3σ of the widest component, capped at half the smallest centre distance."""
    eight = distributions.build("8gaussians")
    sd = 0.5 / math.sqrt(2)
    assert mode_radius(eight) == pytest.approx(3 * sd)  # 1.06 < half the spacing (1.08)
    close = GaussianMixture(torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]]), 0.5)
    assert mode_radius(close) == pytest.approx(0.5)  # 3σ = 1.5 capped at 1/2
    wide = GaussianMixture(torch.tensor([[0.0, 0.0], [8.0, 0.0]]), torch.tensor([0.2, 0.6]))
    assert mode_radius(wide) == pytest.approx(1.8)  # the widest component decides
    x = eight.sample(2000, generator=make_generator(1))
    assert mixture_mode_coverage(x, eight)["radius"] == pytest.approx(3 * sd)
    # a mode's fair share follows its weight: 20 % of N·w_k, not of N/K
    skewed = GaussianMixture(torch.tensor([[-3.0, 0.0], [3.0, 0.0]]), 0.3, torch.tensor([0.9, 0.1]))
    y = skewed.sample(2000, generator=make_generator(2))
    left, right = y[y[:, 0] < 0], y[y[:, 0] > 0]  # about 1800 and 200 points
    assert mixture_mode_coverage(y, skewed)["modes_covered"] == 2
    some = torch.cat([left, right[:100]])  # 100 ≥ 0.2·0.1·N ≈ 38 (but < 0.2·N/2 ≈ 190)
    assert mixture_mode_coverage(some, skewed)["modes_covered"] == 2
    few = torch.cat([left, right[:10]])  # 10 < 0.2·0.1·N ≈ 36
    assert mixture_mode_coverage(few, skewed)["modes_covered"] == 1


def test_model_coverage_samples_the_model_with_its_own_generator():
    torch.manual_seed(0)
    m = GAN(z_dim=2, hidden=16, depth=1)
    target = distributions.build("8gaussians")
    state = torch.get_rng_state()
    a = model_coverage(m, target, n=500, seed=3)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is not used
    with torch.no_grad():
        x = m.sample(500, generator=make_generator(3))
    assert a == mixture_mode_coverage(x, target)
    assert model_coverage(m, distributions.build("moons"), n=100) is None


def test_session_steps_are_bounded_and_separate():
    torch.manual_seed(0)
    m = GAN(z_dim=2, hidden=16, depth=1, k_d=2)
    sess = GanSession(m, distributions.build("8gaussians"), batch_size=32, data_size=500)
    assert sess.model is not m  # the cached model is never modified
    g0 = [p.clone() for p in sess.model.G.parameters()]
    sess.step("d", 3)
    assert _unchanged(g0, sess.model.G)
    assert {int(s["step"]) for s in sess.optimizers[0].state.values()} == {6}  # 3 steps × k_d
    row = sess.step("both", 2)
    assert row["mode"] == "both" and row["steps"] == 5.0 and "g_loss" in row
    assert _unchanged(g0, m.G)
    with pytest.raises(ValueError, match="steps per click"):
        sess.step("g", MAX_SESSION_STEPS + 1)
    with pytest.raises(ValueError, match="mode"):
        sess.step("x", 1)  # type: ignore[arg-type]


def test_view_and_slow_motion_recording():
    torch.manual_seed(0)
    target = distributions.build("8gaussians")
    m = GAN(z_dim=2, hidden=16, depth=1)
    z = torch.randn(30, 2, generator=make_generator(0))
    v = gan_view(m, target, z, target.bounds, res=12)
    assert v.xs.shape == (12,) and v.d.shape == (144,) and v.fakes.shape == (30, 2)
    assert v.push.shape == (30, 2) and v.d_star is not None and v.d_star.shape == (144,)
    # D on the grid is the network's logit at the grid points (rows along y)
    pt = torch.tensor([[v.xs[3], v.ys[5]]], dtype=torch.float32)
    assert abs(float(m.discriminate(pt).detach()) - v.d[5 * 12 + 3]) < 1e-5
    torch.testing.assert_close(torch.as_tensor(v.push), m.generator_push(m.generate(z)).double())
    # D* is masked (NaN) only where both p and q̂ are negligible, finite elsewhere
    assert np.isnan(v.d_star).any() and np.isfinite(v.d_star).any()
    sess = GanSession(m, target, batch_size=32, data_size=500)
    views = sess.record("d", 3, 2, z, target.bounds, res=10)
    assert len(views) == 4 and sess.steps_done == 6 and len(sess.history) == 1
    np.testing.assert_allclose(views[0].fakes, views[-1].fakes)  # D only: the fakes stay put
    assert not np.allclose(views[0].d, views[-1].d)
    views = sess.record("g", 2, 1, z, target.bounds, res=10)
    assert not np.allclose(views[0].fakes, views[-1].fakes)
    with pytest.raises(ValueError, match="frames"):
        sess.record("both", MAX_RECORD_FRAMES + 1, 1, z, target.bounds)


@pytest.mark.slow
def test_fast_preset_covers_8gaussians_and_matches_moons(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLIB_CACHE", str(tmp_path))
    from genlib.runs import RunSpec, evaluate, run

    trained = run(RunSpec.from_preset("gan", "8gaussians", preset="fast", seed=0))
    with torch.no_grad():
        x = trained.model.sample(5000, generator=make_generator(0, trained.model.device)).cpu()
    cov = mixture_mode_coverage(x, trained.target)
    assert cov is not None and cov["modes_covered"] >= 7, cov
    trained = run(RunSpec.from_preset("gan", "moons", preset="fast", seed=0))
    ev = evaluate(trained, n=5000)
    assert ev["sliced_wasserstein"] < 4 * ev["sliced_wasserstein_floor"], ev


# -------------------------------------------------------------------- what the page asks of lab
def _tiny_trained(target: str = "8gaussians", steps: int = 60, **train):
    from genlib.runs import RunSpec, run

    spec = RunSpec.from_preset(
        "gan", target, seed=3, steps=steps, batch_size=64, snapshot_every=20, **train
    )
    return run(spec, use_cache=False)


def test_live_extra_is_the_discriminator_and_d_star_on_the_grid():
    from genlib.geometry import grid_tensor
    from genlib.lab.gan import LIVE_FAKES, LIVE_GRID, live_extra

    m = GAN(z_dim=2, hidden=16, depth=2)
    target = distributions.build("8gaussians")
    g = torch.Generator().manual_seed(0)
    out = live_extra(m, target, g, target.bounds)
    assert set(out) == {"grid", "grid_res", "grid_kind", "extra"}
    assert out["grid_kind"] == "D" and out["grid_res"] == LIVE_GRID
    assert out["grid"].shape == (LIVE_GRID**2,) and out["grid"].dtype == np.float32
    _, _, pts = grid_tensor(target.bounds, LIVE_GRID)
    np.testing.assert_allclose(out["grid"], m.discriminate(pts).detach().numpy(), atol=1e-6)
    # D* = log p − log q̂ with q̂ an isotropic Gaussian KDE (Scott's bandwidth) of the fakes the
    # generator draws with the same generator state: recomputed independently here
    fakes = m.sample(LIVE_FAKES, generator=torch.Generator().manual_seed(0)).detach().double()
    n = fakes.shape[0]
    h = float(fakes.std(0).mean()) * n ** (-1.0 / 6.0)
    d2 = ((pts.double()[:, None, :] - fakes[None, :, :]) ** 2).sum(-1)  # (R², M)
    log_q = torch.logsumexp(-d2 / (2 * h * h), 1) - math.log(n * 2 * math.pi * h * h)
    d_star = target.log_prob(pts).double() - log_q
    np.testing.assert_allclose(out["extra"]["dstar"], d_star.float().numpy(), rtol=1e-3, atol=1e-3)


def test_session_for_copies_the_run_settings_and_leaves_the_model_alone():
    from genlib.lab.gan import loss_summary, session_for, slow_motion

    trained = _tiny_trained(lr=2e-3)
    before = [p.detach().clone() for p in trained.model.parameters()]
    sess = session_for(trained)
    assert (sess.batch_size, sess.seed, sess.lr) == (64, 3, 2e-3)
    assert loss_summary(sess) == {"d_loss": "–", "g_loss": "–"}
    sess.step("d", 2)
    summary = loss_summary(sess)
    assert summary["g_loss"] == "–" and summary["d_loss"] != "–"
    float(summary["d_loss"])  # a number
    views, steps = slow_motion(sess, "g", 3, 2, trained.target.bounds, n=50, res=8)
    assert len(views) == 4 and steps == [2, 4, 6, 8] and views[0].fakes.shape == (50, 2)
    assert _unchanged(before, trained.model)  # the session steps a copy


def test_trained_coverage_over_snapshots_and_none_off_mixtures():
    from genlib.lab.gan import trained_coverage

    trained = _tiny_trained()
    now, rows = trained_coverage(trained)
    assert now is not None and now["modes_total"] == 8
    assert [r["step"] for r in rows] == [float(s) for s, _ in trained.result.snapshots]
    assert all(0 <= r["modes_covered"] <= 8 for r in rows)
    assert trained_coverage(_tiny_trained("moons", steps=20)) == (None, None)
