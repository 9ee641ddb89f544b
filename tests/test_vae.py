"""VAE (lecture 3-2): closed-form KL, the bound ordering ELBO ≤ IWAE_K ≤ log q(x) against
quadrature and a linear-Gaussian closed form, reparametrisation gradients, contract, quality."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from genlib import distributions, models
from genlib.device import make_generator
from genlib.lab.vae import BoundTable, bound_table, decoder_manifold, latent_lines, vae_view
from genlib.models.vae import VAE, gaussian_kl_std_normal, gaussian_log_prob
from genlib.training import TrainConfig, train


def _trained_a_little(latent_dim: int, steps: int = 400, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    m = VAE(latent_dim=latent_dim, hidden=32, depth=2)
    cfg = TrainConfig(steps=steps, batch_size=128, lr=3e-3, seed=seed, data_size=4000, log_every=50)
    train(m, distributions.build("8gaussians"), cfg, device=torch.device("cpu"))
    return m.double()


class _Linear(nn.Module):
    """A linear decoder z -> W z + b (for the closed-form marginal)."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(w), nn.Parameter(b)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.w.T + self.b


class _ExactPosterior(nn.Module):
    """Encoder that outputs the exact posterior of the linear-Gaussian model with a 1D latent."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor, s: float) -> None:
        super().__init__()
        self.w, self.b, self.s = w, b, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.w[:, 0]  # (2,)
        var = 1.0 / (1.0 + (w @ w) / self.s**2)
        mean = var * ((x - self.b) @ w) / self.s**2  # (N,)
        std = torch.full_like(mean, math.sqrt(var))
        raw = torch.log(torch.expm1(std - 1e-4))  # inverse of softplus(raw) + 1e-4
        return torch.stack([mean, raw], -1)


def _linear_gaussian_vae(latent_dim: int, s: float = 0.4) -> tuple[VAE, torch.Tensor, torch.Tensor]:
    m = VAE(latent_dim=latent_dim, hidden=16, depth=1, decoder_var="fixed", decoder_std=s).double()
    g = torch.Generator().manual_seed(3)
    w = torch.randn(2, latent_dim, generator=g, dtype=torch.float64)
    b = torch.randn(2, generator=g, dtype=torch.float64)
    m.decoder = _Linear(w, b)
    return m, w, b


def test_kl_closed_form_matches_torch_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(5, 2, generator=g, dtype=torch.float64)
    std = torch.rand(5, 2, generator=g, dtype=torch.float64) + 0.2
    kl = gaussian_kl_std_normal(mu, std)
    r = torch.distributions.Normal(mu, std)
    ref = torch.distributions.kl_divergence(r, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl, ref)
    z = mu + std * torch.randn(200_000, 5, 2, generator=g, dtype=torch.float64)  # (S, 5, 2)
    mc = (
        gaussian_log_prob(z, mu, std)
        - gaussian_log_prob(z, torch.zeros_like(z), torch.ones_like(z))
    ).mean(0)
    torch.testing.assert_close(mc, kl, atol=0.03, rtol=0.0)
    # the model's KL term is this closed form of its encoder's output
    m = VAE(latent_dim=2, hidden=16, depth=1).double()
    x = torch.randn(7, 2, generator=g, dtype=torch.float64)
    e_mu, e_std = m.encode(x)
    torch.testing.assert_close(m.elbo_terms(x)["kl"], gaussian_kl_std_normal(e_mu, e_std))


def test_gaussian_log_prob_matches_torch():
    g = torch.Generator().manual_seed(1)
    x, mu = torch.randn(2, 9, 2, generator=g, dtype=torch.float64)
    std = torch.rand(9, 2, generator=g, dtype=torch.float64) + 0.1
    ref = torch.distributions.Normal(mu, std).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_log_prob(x, mu, std), ref)


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_log_marginal_quadrature_matches_linear_gaussian_closed_form(latent_dim):
    s = 0.4
    m, w, b = _linear_gaussian_vae(latent_dim, s)
    cov = w @ w.T + s**2 * torch.eye(2, dtype=torch.float64)  # q(x) = N(b, W Wᵀ + s² I)
    q = torch.distributions.MultivariateNormal(b, cov)
    torch.manual_seed(4)
    x = torch.cat(
        [q.sample((50,)), b + 1.5 * torch.randn(10, 2, dtype=torch.float64)]
    )  # typical + spread
    ref = q.log_prob(x)
    with torch.no_grad():
        got = m.log_marginal(x)
    torch.testing.assert_close(got, ref, atol=2e-3, rtol=0.0)


def test_elbo_equals_log_q_at_the_exact_posterior():
    """Lecture: when r(z|x) is the model's posterior q(z|x), the bound is an equality: every
    importance weight equals q(x), so a one-sample bound (IWAE with K = 1) is already exact; the
    closed-form-KL ELBO estimator is exact in expectation."""
    s = 0.4
    m, w, b = _linear_gaussian_vae(1, s)
    m.encoder = _ExactPosterior(w, b, s)
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        log_q = m.log_marginal(x)
        elbo = m.elbo(x, generator=make_generator(0), n_samples=20_000)
        iwae_1 = m.iwae(x, 1, generator=make_generator(1))
        iwae_7 = m.iwae(x, 7, generator=make_generator(2))
    torch.testing.assert_close(iwae_1, log_q, atol=2e-3, rtol=0.0)
    torch.testing.assert_close(iwae_7, log_q, atol=2e-3, rtol=0.0)
    torch.testing.assert_close(elbo, log_q, atol=0.05, rtol=0.0)


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_bounds_are_ordered_and_tighten(latent_dim):
    """E[ELBO] ≤ E[IWAE_10] ≤ E[IWAE_100] ≤ log q(x) (quadrature, exact for these latents)."""
    m = _trained_a_little(latent_dim)
    x = distributions.build("8gaussians").sample(200, generator=make_generator(7)).double()
    g = make_generator(8)
    with torch.no_grad():
        log_q = m.log_marginal(x, n_grid=201).mean()  # converged to 1e-6 at 151 nodes
        elbo = torch.stack([m.elbo(x, generator=g).mean() for _ in range(10)]).mean()
        iw10 = torch.stack([m.iwae(x, 10, generator=g).mean() for _ in range(3)]).mean()
        iw100 = m.iwae(x, 100, generator=g).mean()
        iw1000 = m.iwae(x, 1000, generator=g).mean()
    tol = 0.01
    assert elbo < iw10 - 0.005 < iw100 < log_q + tol, (elbo, iw10, iw100, log_q)
    assert abs(iw1000 - log_q) < abs(iw100 - log_q) + 0.005  # tightens towards log q(x)
    assert abs(iw1000 - log_q) < 0.5 * abs(elbo - log_q)
    assert log_q - elbo > 0.01  # a trained-a-little VAE has a visible gap


def test_reparametrisation_trick_gradients():
    # d/dμ ⟨(μ + σε)²⟩ = 2μ and d/dσ ⟨(μ + σε)²⟩ = 2σ through the reparametrised sample
    m = VAE(latent_dim=1, hidden=8, depth=1)
    mu = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    std = torch.tensor([1.3], dtype=torch.float64, requires_grad=True)
    z = m.reparametrise(mu.expand(400_000), std.expand(400_000), generator=make_generator(0))
    (z**2).mean().backward()
    assert abs(float(mu.grad) - 1.4) < 0.02 and abs(float(std.grad) - 2.6) < 0.03
    # and the loss reaches the encoder φ through z (not only through the KL term)
    m = VAE(latent_dim=2, hidden=16, depth=2, beta=0.0)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    m.loss(x).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.decoder.parameters())


def test_train_step_and_loss_draw_only_from_the_given_generator():
    torch.manual_seed(0)
    m = VAE(latent_dim=2, hidden=16, depth=1)
    twin = VAE(latent_dim=2, hidden=16, depth=1)
    twin.load_state_dict(m.state_dict())
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    state = torch.get_rng_state()
    logs = m.train_step(x, m.configure_optimizers(1e-3), 1, generator=make_generator(5))
    loss = m.loss(x, generator=make_generator(6))
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is never drawn from
    torch.manual_seed(123)
    logs2 = twin.train_step(x, twin.configure_optimizers(1e-3), 1, generator=make_generator(5))
    for k in logs:
        torch.testing.assert_close(logs[k], logs2[k], rtol=0, atol=0)
    torch.testing.assert_close(loss, twin.loss(x, generator=make_generator(6)), rtol=0, atol=0)
    assert not torch.equal(loss, twin.loss(x, generator=make_generator(7)))  # noise is used


def test_decoder_manifold_is_the_image_of_the_latent_lines():
    m = VAE(latent_dim=2, hidden=16, depth=1)
    lines = latent_lines(2, n_lines=4, n_points=7, extent=2.0)
    assert lines.shape == (8, 7, 2)
    torch.testing.assert_close(lines[0, :, 0], torch.linspace(-2.0, 2.0, 7))  # z₂ = const rows
    torch.testing.assert_close(lines[0, :, 1], torch.full((7,), -2.0))
    torch.testing.assert_close(lines[4], lines[0].flip(-1))  # then z₁ = const columns
    with torch.no_grad():
        ref = m.decode(lines)[0]
    torch.testing.assert_close(decoder_manifold(m, n_lines=4, n_points=7, extent=2.0), ref)
    assert latent_lines(1, n_points=5).shape == (1, 5, 1)


def test_view_and_bound_table():
    m = _trained_a_little(2, steps=100).float()
    target = distributions.build("8gaussians")
    v = vae_view(m, target, n=50, seed=1, n_lines=5)
    assert v.x.shape == (50, 2) and v.z_mean.shape == (50, 2) and v.z_std.shape == (50, 2)
    assert v.manifold.shape == (10, 200, 2) and v.latent_lines.shape == (10, 200, 2)
    assert v.samples.shape == (50, 2) and v.means.shape == (50, 2)
    v2 = vae_view(m, target, n=50, seed=1, n_lines=5)
    assert (v.samples == v2.samples).all()  # seeded: the same picture twice
    x = target.sample(100, generator=make_generator(3))
    t = bound_table(m, x, (1, 30), generator=make_generator(4))
    assert isinstance(t, BoundTable) and set(t.iwae) == {1, 30} and t.log_q is not None
    # ELBO ≤ IWAE_30 ≤ log q (+ Monte-Carlo slack)
    assert t.elbo < t.iwae[30] <= t.log_q + 0.02, t
    assert set(t.as_dict()) == {"elbo", "iwae_1", "iwae_30", "log_q"}
    assert bound_table(m, x, (1,), with_quadrature=False).log_q is None
    same = bound_table(m, x, (1, 30), generator=make_generator(4))
    assert same == t  # every latent comes from the generator


def test_train_step_logs_recon_kl_and_their_sum():
    m = VAE(latent_dim=2, hidden=16, depth=1)
    opts = m.configure_optimizers(1e-3)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    logs = m.train_step(x, opts, 1)
    assert set(logs) >= {"loss", "recon", "kl"}
    assert all(v.ndim == 0 and not v.requires_grad for v in logs.values())
    torch.testing.assert_close(logs["loss"], logs["recon"] + logs["kl"])
    assert float(logs["kl"]) >= 0


@pytest.mark.parametrize("decoder_var", ["learned", "shared", "fixed"])
def test_contract_shapes_finite_and_round_trip(decoder_var):
    kw = {"latent_dim": 2, "hidden": 16, "depth": 2, "decoder_var": decoder_var}
    m = models.build("vae", **kw)
    assert isinstance(m, models.HasElbo) and not isinstance(m, models.HasLogProb)
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(m.loss(x))
    assert m.sample(11, generator=make_generator(0)).shape == (11, 2)
    assert m.sample(11, generator=make_generator(0), noise=False).shape == (11, 2)
    assert m.elbo(x).shape == (20,) and m.iwae(x, 5).shape == (20,)
    tr = m.trajectory(6, num_frames=9, generator=make_generator(1))
    assert tr.xs.shape == (9, 6, 2) and tr.ts.shape == (9,)
    # the last frame is a sample, the middle frame the decoder mean of the same latents
    g1, g2 = make_generator(2), make_generator(2)
    tr = m.trajectory(5, num_frames=3, generator=g1)
    z = m.sample_latent(5, generator=g2)
    torch.testing.assert_close(tr.xs[1], m.decode(z)[0].detach())
    assert decoder_manifold(m, n_lines=5, n_points=30).shape == (10, 30, 2)
    m2 = models.build("vae", **kw)
    m2.load_state_dict(m.state_dict())
    torch.testing.assert_close(
        m2.sample(7, generator=make_generator(3)), m.sample(7, generator=make_generator(3))
    )


def test_one_dimensional_latent_manifold_is_one_curve():
    m = VAE(latent_dim=1, hidden=16, depth=1)
    assert decoder_manifold(m, n_points=50).shape == (1, 50, 2)
    tr = m.trajectory(4, num_frames=5, generator=make_generator(0))
    assert torch.all(tr.xs[0, :, 1] == 0)  # a 1D latent is drawn on the x₁ axis


def test_seeded_training_is_deterministic():
    target = distributions.build("8gaussians")
    cfg = TrainConfig(steps=30, batch_size=64, seed=5, data_size=500, log_every=10)
    states = []
    for _ in range(2):
        torch.manual_seed(99)  # the same initial weights; the run's own seed does the rest
        m = VAE(latent_dim=2, hidden=16, depth=1)
        train(m, target, cfg, device=torch.device("cpu"))
        states.append(m.state_dict())
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k])


def test_invalid_options_raise_clear_errors():
    with pytest.raises(ValueError, match="latent_dim"):
        VAE(latent_dim=3)
    with pytest.raises(ValueError, match="decoder_var"):
        VAE(decoder_var="bogus")  # type: ignore[arg-type]
    m = VAE(hidden=8, depth=1)
    with pytest.raises(ValueError, match="K must be"):
        m.iwae(torch.zeros(2, 2), 0)


def test_shared_decoder_std_starts_at_decoder_std():
    m = VAE(decoder_var="shared", decoder_std=0.3, hidden=8, depth=1)
    _, std = m.decode(torch.zeros(3, 2))
    torch.testing.assert_close(std, torch.full((3, 2), 0.3), atol=1e-5, rtol=0)
    assert F.softplus(m.raw_shared_std).requires_grad


@pytest.mark.slow
def test_fast_preset_quality_on_moons(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLIB_CACHE", str(tmp_path))
    from genlib.runs import RunSpec, evaluate, run

    # the fast preset's recipe on a reduced budget (6000 of its 10000 steps)
    trained = run(RunSpec.from_preset("vae", "moons", preset="fast", seed=0, steps=6000))
    ev = evaluate(trained, n=5000)
    assert ev["sliced_wasserstein"] < 4 * ev["sliced_wasserstein_floor"], ev


# -------------------------------------------------------------------- what the page asks of lab
def _tiny_trained(latent_dim: int = 2, steps: int = 40):
    from genlib.runs import RunSpec, run

    spec = RunSpec.from_preset(
        "vae",
        "8gaussians",
        seed=1,
        steps=steps,
        batch_size=64,
        model_overrides={"latent_dim": latent_dim},
    )
    return run(spec, use_cache=False)


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_live_extra_is_the_decoded_latent_grid(latent_dim):
    from genlib.lab.vae import LIVE_LINE_POINTS, LIVE_LINES, live_extra

    m = _trained_a_little(latent_dim, steps=20)
    target = distributions.build("moons")
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    out = live_extra(m, target, g, target.bounds)
    assert set(out) == {"lines"}
    n_lines = 2 * LIVE_LINES if latent_dim == 2 else 1
    assert out["lines"].shape == (n_lines, LIVE_LINE_POINTS, 2) and n_lines <= 15
    z = latent_lines(latent_dim, LIVE_LINES, LIVE_LINE_POINTS, dtype=torch.float64)
    with torch.no_grad():
        expected = m.decode(z)[0].numpy()
    np.testing.assert_allclose(out["lines"], expected, atol=1e-6)
    assert torch.equal(g.get_state(), state)  # draws nothing


def test_bound_rows_gaps_and_iwae_ks():
    from genlib.lab.vae import IWAE_KS, bound_rows, iwae_ks

    table = BoundTable(-3.0, {1: -2.9, 10: -2.5}, -2.0)
    rows = bound_rows(table, {"elbo": "E", "log_q": "L"})
    assert [r[0] for r in rows] == ["E", "IWAE K=1", "IWAE K=10", "L"]
    assert [r[2] for r in rows] == pytest.approx([1.0, 0.9, 0.5, 0.0])
    assert all(r[2] is None for r in bound_rows(BoundTable(-3.0, {1: -2.9}, None), {}))
    assert iwae_ks(10) == (1, 3, 10) and iwae_ks(0) == (1,) and iwae_ks(10**9) == IWAE_KS


def test_trained_bounds_view_and_generation():
    from genlib.lab.vae import generation, trained_bounds, trained_view

    trained = _tiny_trained()
    a = trained_bounds(trained, 50, (1, 10))
    assert a == trained_bounds(trained, 50, (1, 10))  # seeded: the same table twice
    assert set(a.iwae) == {1, 10} and a.log_q is not None
    v = trained_view(trained, 100)
    assert v.x.shape == (100, 2) and v.z_mean.shape == (100, 2) and v.manifold.shape[-1] == 2
    frames, ts = generation(trained, 30, frames=5)
    assert frames.shape == (5, 30, 2) and ts[0] == 0.0 and ts[-1] == 1.0
    np.testing.assert_allclose(frames, generation(trained, 30, frames=5)[0])
