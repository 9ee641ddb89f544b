"""The fast paths equal the plain ones: blocked MMD vs the dense formula, the sampling-time network
evaluator (folded time bias, chunks, bf16) vs the modules, and each family's sampler vs its
unfolded network."""

from __future__ import annotations

import math

import pytest
import torch

from genlib import metrics, models
from genlib.nn import MLP, SAMPLING_CHUNK, FastMLP, TimeMLP, sampling_dtype
from genlib.processes.ddpm import DDPMSchedule
from genlib.samplers.ancestral import ddpm_ancestral


def dense_mmd(x: torch.Tensor, y: torch.Tensor, h2: float) -> float:
    """The unbiased MMD² with full N × N float64 kernels (the formula before blocking)."""
    x, y = x.double(), y.double()
    kxx = torch.exp(-torch.cdist(x, x).pow(2) / (2 * h2))
    kyy = torch.exp(-torch.cdist(y, y).pow(2) / (2 * h2))
    kxy = torch.exp(-torch.cdist(x, y).pow(2) / (2 * h2))
    n, m = x.shape[0], y.shape[0]
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(sxx + syy - 2 * kxy.mean())


@pytest.mark.parametrize("n,m", [(1200, 900), (37, 1100), (600, 600)])
def test_blocked_mmd_equals_the_dense_formula(n, m):
    g = torch.Generator().manual_seed(n + m)
    x = torch.randn(n, 2, generator=g)
    y = 0.8 * torch.randn(m, 2, generator=g) + torch.tensor([0.3, -0.2])
    for bw in (0.5, 1.7):
        got = metrics.mmd_rbf(x, y, bandwidth=bw)
        want = dense_mmd(x, y, bw**2)
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12), (got, want)
    # median bandwidth: same pooled subsample for the same generator state
    got = metrics.mmd_rbf(x, y, generator=torch.Generator().manual_seed(5))
    pooled = torch.cat([x, y]).double()
    gg = torch.Generator().manual_seed(5)
    if pooled.shape[0] > 1000:
        pooled = pooled[torch.randperm(pooled.shape[0], generator=gg)[:1000]]
    d = torch.pdist(pooled).pow(2)
    want = dense_mmd(x, y, float(d[d > 0].median()))
    assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12), (got, want)


def test_blocked_mmd_of_identical_samples_is_small_and_of_shifted_samples_large():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1500, 2, generator=g)
    y = torch.randn(1500, 2, generator=g)
    assert abs(metrics.mmd_rbf(x, y, bandwidth=1.0)) < 5e-3
    assert metrics.mmd_rbf(x, y + 2.0, bandwidth=1.0) > 0.3


@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "gelu"])
def test_fast_mlp_float32_equals_the_module(activation):
    torch.manual_seed(0)
    net = MLP(2, 2, hidden=48, depth=3, activation=activation).eval()
    x = 3 * torch.randn(SAMPLING_CHUNK * 2 + 17, 2)  # three chunks, the last one short
    with torch.no_grad():
        want = net(x)
        for chunk in (None, SAMPLING_CHUNK, 100):
            got = FastMLP.of_mlp(net, torch.float32, chunk)(x)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_fast_mlp_of_depth_one_and_no_hidden_layer():
    net = MLP(2, 3, hidden=16, depth=1).eval()
    x = torch.randn(50, 2)
    with torch.no_grad():
        torch.testing.assert_close(FastMLP.of_mlp(net)(x), net(x), rtol=1e-5, atol=1e-6)
        lin = MLP(2, 3, depth=0).eval()
        torch.testing.assert_close(FastMLP.of_mlp(lin)(x), lin(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("embedding", ["sinusoidal", "fourier"])
def test_bias_fold_equals_the_unfolded_time_network(embedding):
    torch.manual_seed(1)
    net = TimeMLP(2, 2, hidden=64, depth=3, embedding=embedding).eval()
    x = 2 * torch.randn(SAMPLING_CHUNK + 300, 2)
    fast = FastMLP.of_time_mlp(net, torch.float32)
    with torch.no_grad():
        for tv in (0.0, 0.37, 1.0):
            t = torch.full((x.shape[0],), tv)
            want = net(x, t)
            got = fast(x, net.first_layer_bias(t[:1]))  # one (1, hidden) bias for the batch
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        t = torch.rand(x.shape[0])  # a time per row: per-row biases, split with the chunks
        torch.testing.assert_close(
            fast(x, net.first_layer_bias(t)), net(x, t), rtol=1e-5, atol=1e-5
        )


def test_bf16_hidden_layers_stay_close():
    torch.manual_seed(2)
    net = MLP(2, 2, hidden=128, depth=3).eval()
    x = 2 * torch.randn(4000, 2)
    with torch.no_grad():
        want = net(x)
        got = FastMLP.of_mlp(net, torch.bfloat16)(x)
    assert got.dtype == torch.float32
    assert float((got - want).abs().max() / want.abs().max()) < 3e-2


def test_sampling_dtype_switch(monkeypatch):
    monkeypatch.setenv("GENLIB_SAMPLING_BF16", "0")
    assert sampling_dtype("cpu") == torch.float32
    monkeypatch.setenv("GENLIB_SAMPLING_BF16", "1")
    assert sampling_dtype("cpu") == torch.bfloat16
    assert sampling_dtype("meta") == torch.float32  # only the CPU path ever uses bf16


def test_ddpm_sampler_equals_ancestral_sampling_with_the_plain_network(monkeypatch):
    monkeypatch.setenv("GENLIB_SAMPLING_BF16", "0")
    torch.manual_seed(3)
    m = models.build("ddpm", hidden=32, depth=2, T=30).eval()
    with torch.no_grad():
        for p in m.parameters():  # a non-trivial network (its last layer starts near zero)
            p.add_(0.1 * torch.randn_like(p))
        got = m.sample(SAMPLING_CHUNK + 50, generator=torch.Generator().manual_seed(4))
        g = torch.Generator().manual_seed(4)
        x_T = torch.randn(SAMPLING_CHUNK + 50, 2, generator=g)
        want = ddpm_ancestral(
            lambda x, t: m.eps(x, t), DDPMSchedule("linear", 30), x_T, g, 2, m.variance
        ).xs[-1]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_ncsn_sde_and_flow_matching_sampling_functions_equal_their_networks():
    torch.manual_seed(5)
    x = 2 * torch.randn(700, 2)
    with torch.no_grad():
        ncsn = models.build("ncsn", hidden=32, depth=2, num_levels=4).eval()
        fast = ncsn.sampling_score(torch.float32)
        for sigma in ncsn.sigma_list:
            torch.testing.assert_close(fast(x, sigma), ncsn.score(x, sigma), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fast(x), ncsn.score(x), rtol=1e-5, atol=1e-5)
        for kind in ("vp", "ve"):
            sde = models.build("sde", sde=kind, hidden=32, depth=2).eval()
            fast = sde.sampling_score(torch.float32)
            for tv in (1e-3, 0.4, 1.0):
                t = torch.tensor([tv]).expand(x.shape[0])
                torch.testing.assert_close(fast(x, t), sde.score(x, t), rtol=1e-4, atol=1e-4)
            t = torch.rand(x.shape[0])  # distinct times: the fallback
            torch.testing.assert_close(fast(x, t), sde.score(x, t))
        fm = models.build("flow_matching", hidden=32, depth=2).eval()
        fast = fm.sampling_velocity(torch.float32)
        for tv in (0.0, 0.5, 1.0):
            t = torch.tensor([tv]).expand(x.shape[0])
            torch.testing.assert_close(fast(x, t), fm.velocity(x, t), rtol=1e-5, atol=1e-5)


def test_score_matching_sampler_uses_the_fast_score_and_stays_reproducible():
    m = models.build("score_matching", hidden=32, depth=2, langevin_steps=20).eval()
    a = m.sample(3000, generator=torch.Generator().manual_seed(6))
    b = m.sample(3000, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    with torch.no_grad():
        x = torch.randn(300, 2)
        torch.testing.assert_close(m.sampling_score(torch.float32)(x), m.score(x))
