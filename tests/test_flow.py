"""Normalizing flow (2-5): change-of-variables oracles, invertibility, reverse KL, contract."""

from __future__ import annotations

import math
import tempfile

import numpy as np
import pytest
import torch

from genlib import distributions
from genlib.geometry import grid_tensor
from genlib.lab.flow import flow_density_grid, flow_warp, grid_lines
from genlib.models.flow import (
    NormalizingFlow,
    differentiable_log_prob,
    rq_spline,
    standard_normal_log_prob,
)
from genlib.training import TrainConfig, train

CPU = torch.device("cpu")


def _random_flow(coupling: str, scale: float = 0.3, seed: int = 0, **kw) -> NormalizingFlow:
    """A flow in float64 whose weights are perturbed away from the identity initialisation."""
    flow = NormalizingFlow(
        coupling=coupling, layers=4, hidden=16, depth=2, init_seed=0, **kw
    ).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow.eval()


@pytest.mark.parametrize("coupling", ["affine", "spline"])
def test_log_prob_is_base_density_plus_autograd_log_det(coupling):
    flow = _random_flow(coupling)
    x = 2 * torch.randn(32, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def inv(xi):
        return flow.inverse(xi.unsqueeze(0))[0].squeeze(0)

    jac = torch.func.vmap(torch.func.jacrev(inv))(x)  # (N, 2, 2) Jacobian of f⁻¹
    log_det = torch.linalg.slogdet(jac).logabsdet
    z = flow.inverse(x)[0]
    expected = (
        -0.5 * (z**2).sum(-1) - math.log(2 * math.pi) + log_det
    )  # independent N(0, I) density
    torch.testing.assert_close(flow.log_prob(x), expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(flow.log_det_jacobian(x), log_det, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("coupling", ["affine", "spline"])
def test_forward_ladj_matches_autograd_and_inverse(coupling):
    flow = _random_flow(coupling, seed=3)
    z = torch.randn(32, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x, ladj = flow(z)
    jac = torch.func.vmap(torch.func.jacrev(lambda zi: flow(zi.unsqueeze(0))[0].squeeze(0)))(z)
    torch.testing.assert_close(ladj, torch.linalg.slogdet(jac).logabsdet, rtol=1e-9, atol=1e-9)
    z_back, ladj_inv = flow.inverse(x)
    torch.testing.assert_close(z_back, z, rtol=0, atol=1e-6)  # inverse ∘ forward = id
    torch.testing.assert_close(ladj_inv, -ladj, rtol=0, atol=1e-6)


@pytest.mark.parametrize("coupling", ["affine", "spline"])
def test_density_integrates_to_one(coupling):
    flow = _random_flow(coupling, scale=0.2, seed=5)
    n, lim = 401, 9.0
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    with torch.no_grad():
        dens = flow.log_prob(pts).exp().reshape(n, n)
    mass = torch.trapezoid(torch.trapezoid(dens, g, dim=1), g)
    assert abs(float(mass) - 1.0) < 5e-3


def test_rq_spline_is_monotone_identity_outside_and_inverts():
    g = torch.Generator().manual_seed(0)
    n, k, bound = 2000, 6, 3.0
    w = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64), -1)
    h = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64), -1)
    d = torch.cat(
        [torch.ones(n, 1), torch.rand(n, k - 1, generator=g) * 3 + 0.05, torch.ones(n, 1)], 1
    ).double()
    x = torch.linspace(-5, 5, n, dtype=torch.float64)
    # one shared spline for every x: monotone increasing and continuous
    y, ladj = rq_spline(x, w[:1].expand(n, k), h[:1].expand(n, k), d[:1].expand(n, k + 1), bound)
    assert bool((y[1:] >= y[:-1]).all())
    outside = x.abs() >= bound
    torch.testing.assert_close(y[outside], x[outside])
    assert bool((ladj[outside] == 0).all())
    # finite-difference derivative matches exp(ladj)
    eps = 1e-6
    y2, _ = rq_spline(
        x + eps, w[:1].expand(n, k), h[:1].expand(n, k), d[:1].expand(n, k + 1), bound
    )
    fd = (y2 - y) / eps
    inside = x.abs() < bound - 1e-3
    torch.testing.assert_close(fd[inside], ladj.exp()[inside], rtol=1e-4, atol=1e-4)
    # per-row splines invert
    xr = (torch.rand(n, generator=g, dtype=torch.float64) - 0.5) * 8
    yr, lr = rq_spline(xr, w, h, d, bound)
    xb, lb = rq_spline(yr, w, h, d, bound, inverse=True)
    torch.testing.assert_close(xb, xr, rtol=0, atol=1e-7)
    torch.testing.assert_close(lb, -lr, rtol=0, atol=1e-6)


def test_identity_at_initialisation():
    flow = NormalizingFlow()
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lp = flow.log_prob(x)
    # actnorm and couplings start at the identity; only the (volume-preserving) rotations remain
    torch.testing.assert_close(lp, standard_normal_log_prob(x), rtol=1e-5, atol=1e-5)


def test_layers_forward_and_trajectory_end_at_samples():
    flow = _random_flow("spline").float()
    z = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    pts = flow.layers_forward(z)
    assert pts.shape == (len(flow.layers) + 1, 20, 2) and len(flow.layer_names) == len(flow.layers)
    torch.testing.assert_close(pts[0], z)
    torch.testing.assert_close(pts[-1], flow(z)[0].detach())
    traj = flow.trajectory(20, num_frames=30, generator=torch.Generator().manual_seed(7))
    x = flow.sample(20, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(traj.xs[-1], x)
    assert traj.xs.shape[0] <= 30 and traj.ts[0] == 0 and float(traj.ts[-1]) == len(flow.layers)
    assert bool((traj.ts[1:] > traj.ts[:-1]).all())
    short = flow.trajectory(20, num_frames=4, generator=torch.Generator().manual_seed(7))
    assert short.xs.shape[0] == 4 and float(short.ts[-1]) == len(
        flow.layers
    )  # fewer frames than layers
    torch.testing.assert_close(short.xs[-1], x)


def test_warp_pushes_samples_and_grid_through_every_layer():
    flow = _random_flow("spline").float()
    w = flow_warp(flow, 25, substeps=3, n_lines=5, generator=torch.Generator().manual_seed(4))
    n_layers = len(flow.layers)
    assert w.points.shape == (3 * n_layers + 1, 25, 2) and w.lines.shape == (
        3 * n_layers + 1,
        10,
        50,
        2,
    )
    assert w.layer_names == tuple(flow.layer_names) and float(w.ts[-1]) == n_layers
    z = flow.base_sample(25, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(w.points[0], z)  # frame 0: the base samples
    torch.testing.assert_close(w.points[-1], flow(z)[0].detach())  # last frame: f_θ(z)
    torch.testing.assert_close(w.lines[0], grid_lines(3.0, 5, 50))
    with torch.no_grad():
        torch.testing.assert_close(w.lines[-1, 2], flow(grid_lines(3.0, 5, 50)[2])[0])


def test_density_grid_is_log_prob_and_log_det_on_the_grid():
    flow = _random_flow("affine").float()
    g = flow_density_grid(flow, (-3.0, 3.0, -2.0, 2.0), 9)
    _, _, pts = grid_tensor((-3.0, 3.0, -2.0, 2.0), 9)
    with torch.no_grad():
        np.testing.assert_allclose(g.log_q, flow.log_prob(pts).numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            g.log_det, flow.log_det_jacobian(pts).numpy(), rtol=1e-5, atol=1e-5
        )
    assert g.xs.shape == (9,) and g.ys[0] == -2.0


def test_reverse_loss_draws_only_from_the_given_generator():
    target = distributions.build("two_peaks")
    flow = NormalizingFlow(layers=2, hidden=16, objective="reverse", init_seed=0)
    flow.attach_target(target)
    x = torch.zeros(64, 2)
    state = torch.get_rng_state()
    a = flow.loss(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(state, torch.get_rng_state())
    torch.manual_seed(99)
    torch.testing.assert_close(a, flow.loss(x, generator=torch.Generator().manual_seed(1)))
    assert not torch.equal(a, flow.loss(x, generator=torch.Generator().manual_seed(2)))


def test_rsample_is_differentiable_and_log_prob_consistent():
    flow = _random_flow("affine").float()
    x, log_q = flow.rsample_with_log_prob(64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(log_q, flow.log_prob(x), rtol=1e-4, atol=1e-4)
    flow.zero_grad()
    flow.rsample(64, generator=torch.Generator().manual_seed(0)).pow(2).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())
    assert not flow.sample(4).requires_grad


def test_reverse_kl_loss_and_training_hook():
    target = distributions.build("two_peaks")
    flow = NormalizingFlow(layers=2, hidden=16, objective="reverse")
    x = target.sample(64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match="attach_target"):
        flow.loss(x)
    # the estimator is E_q[log q − log p] on reparametrised samples
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    val = flow.loss_reverse_kl(target.log_prob, 256, generator=g1)
    y, log_q = flow.rsample_with_log_prob(256, generator=g2)
    torch.testing.assert_close(val, (log_q - target.log_prob(y)).mean())
    val.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())
    # the training loop attaches the target; reverse KL decreases
    res = train(
        flow,
        target,
        TrainConfig(steps=150, batch_size=256, lr=5e-3, log_every=50, data_size=256),
        device=CPU,
    )
    assert res.status == "ok" and res.losses[-1] < res.losses[0]


@pytest.mark.parametrize("name", ["8gaussians", "moons"])
def test_target_log_prob_is_differentiable_through_the_score(name):
    """Quadrature targets (moons) are not autograd-differentiable; the wrapper's gradient is the
    exact score, which for a mixture equals autograd of its closed-form log density."""
    target = distributions.build(name)
    x = target.sample(64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    lp = differentiable_log_prob(target)(x)
    torch.testing.assert_close(lp.detach(), target.log_prob(x.detach()))
    (grad,) = torch.autograd.grad((lp * torch.arange(64.0)).sum(), x)
    torch.testing.assert_close(grad, torch.arange(64.0)[:, None] * target.score(x.detach()))
    if name == "8gaussians":
        y = x.detach().clone().requires_grad_(True)
        (ref,) = torch.autograd.grad(target.log_prob(y).sum(), y)
        (g1,) = torch.autograd.grad(differentiable_log_prob(target)(x).sum(), x)
        torch.testing.assert_close(g1, ref, rtol=1e-4, atol=1e-4)


def test_options_are_validated():
    with pytest.raises(ValueError):
        NormalizingFlow(coupling="glow")
    with pytest.raises(ValueError):
        NormalizingFlow(objective="sideways")
    with pytest.raises(ValueError):
        NormalizingFlow(layers=0)


def test_seeded_init_and_state_dict_round_trip():
    a, b = NormalizingFlow(layers=3, init_seed=5), NormalizingFlow(layers=3, init_seed=5)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb)
    torch.manual_seed(1)  # without init_seed the global RNG (seeded by runs.run) decides
    c = NormalizingFlow(layers=3)
    torch.manual_seed(1)
    d = NormalizingFlow(layers=3)
    torch.manual_seed(2)
    e = NormalizingFlow(layers=3)
    net = "layers.1.net.net.0.weight"
    torch.testing.assert_close(c.state_dict()[net], d.state_dict()[net])
    assert not torch.equal(c.state_dict()[net], e.state_dict()[net])
    target = distributions.build("8gaussians")
    train(
        a, target, TrainConfig(steps=20, batch_size=128, log_every=10, data_size=1000), device=CPU
    )
    b.load_state_dict(a.state_dict())
    x = target.sample(32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(a.log_prob(x), b.log_prob(x))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["8gaussians", "moons"])
def test_fast_preset_reaches_small_exact_kl(target, monkeypatch):
    monkeypatch.setenv("GENLIB_CACHE", tempfile.mkdtemp())
    from genlib.runs import RunSpec, evaluate, run

    spec = RunSpec.from_preset("flow", target, preset="fast", seed=0, steps=1000)
    trained = run(spec, use_cache=False)
    kl = evaluate(trained, n=4000)["exact_kl"]
    assert kl < 0.15, kl


# -------------------------------------------------------------------- what the page asks of lab
def test_trained_warp_and_density_grid_are_the_lab_views_as_numpy():
    from genlib.device import make_generator
    from genlib.lab.flow import trained_density_grid, trained_warp
    from genlib.runs import RunSpec, run

    spec = RunSpec.from_preset(
        "flow", "8gaussians", seed=2, steps=10, batch_size=64, model_overrides={"layers": 2}
    )
    trained = run(spec, use_cache=False)
    w = trained_warp(trained, 40, substeps=2, n_lines=5, seed=7)
    ref = flow_warp(trained.model, 40, substeps=2, n_lines=5, generator=make_generator(7))
    assert isinstance(w.points, np.ndarray) and isinstance(w.lines, np.ndarray)
    np.testing.assert_allclose(w.points, ref.points.numpy())
    np.testing.assert_allclose(w.lines, ref.lines.numpy())
    assert w.layer_names == ref.layer_names and len(w.ts) == w.points.shape[0]
    bounds = (-3.0, 3.0, -2.0, 2.0)
    g = trained_density_grid(trained, bounds, 9)
    np.testing.assert_allclose(g.log_q, flow_density_grid(trained.model, bounds, 9).log_q)
