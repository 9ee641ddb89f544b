"""The VAE's true posterior on a latent grid (lecture 3-2, ``genlib.lab.vae.vae_posterior``):
against the closed forms of a linear-Gaussian decoder, and on a trained VAE the identity
log q_θ(x) = ELBO(x) + KL(r_φ ‖ q_θ(·|x)) with the ELBO by a large independent Monte Carlo and
log q_θ(x) by the model's own quadrature on another grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlib.lab import vae as lv
from genlib.models.vae import VAE
from genlib.runs import RunSpec, TargetSpec, freeze, run
from genlib.training import TrainConfig

A = torch.tensor([[1.2, 0.4], [-0.3, 0.8]], dtype=torch.float64)
C = torch.tensor([0.3, -0.2], dtype=torch.float64)
SIGMA = 0.35
ENC_MEAN = torch.tensor([0.5, -0.4], dtype=torch.float64)
ENC_STD = torch.tensor([0.3, 0.25], dtype=torch.float64)


def _linear_vae() -> VAE:
    """A VAE whose decoder is x|z ~ N(A z + c, σ² I) and whose encoder is a fixed Gaussian: the
    posterior, log q(x) and every KL have closed forms."""
    m = VAE(latent_dim=2, hidden=8, depth=1).double()

    def decode(z):
        z = z.double()
        mu = z @ A.T + C
        return mu, torch.full_like(mu, SIGMA)

    def encode(x):
        n = x.shape[0]
        return ENC_MEAN.expand(n, 2).clone(), ENC_STD.expand(n, 2).clone()

    m.decode, m.encode = decode, encode  # instance attributes shadow the networks
    return m


def _closed_forms(x: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor, float]:
    """log q(x), posterior mean and covariance, KL(r ‖ posterior) of the linear-Gaussian model."""
    cov_x = A @ A.T + SIGMA**2 * torch.eye(2, dtype=torch.float64)
    d = x - C
    log_q = float(
        -0.5 * d @ torch.linalg.solve(cov_x, d) - 0.5 * torch.logdet(cov_x) - math.log(2 * math.pi)
    )
    prec = torch.eye(2, dtype=torch.float64) + A.T @ A / SIGMA**2
    cov = torch.linalg.inv(prec)
    mean = cov @ A.T @ d / SIGMA**2
    s_r = torch.diag(ENC_STD**2)
    dm = mean - ENC_MEAN
    kl = 0.5 * float(
        torch.trace(prec @ s_r) + dm @ prec @ dm - 2 + torch.logdet(cov) - torch.logdet(s_r)
    )
    return log_q, mean, cov, kl


@pytest.mark.parametrize("x", [(0.8, -0.5), (-1.5, 1.0)])
def test_linear_gaussian_posterior_matches_the_closed_forms(x):
    m = _linear_vae()
    xt = torch.tensor(x, dtype=torch.float64)
    log_q, mean, cov, kl = _closed_forms(xt)
    post = lv.vae_posterior(m, xt)
    assert post.log_q == pytest.approx(log_q, abs=1e-5)
    assert post.kl == pytest.approx(kl, abs=1e-4)
    # the grid posterior is the closed-form Gaussian at every node where it has mass
    z1, z2 = (torch.as_tensor(a) for a in post.axes)
    g2, g1 = torch.meshgrid(z2, z1, indexing="ij")
    z = torch.stack([g1, g2], -1)  # (R, R, 2)
    dz = z - mean
    exact = (
        -0.5 * torch.einsum("...i,ij,...j->...", dz, torch.linalg.inv(cov), dz)
        - 0.5 * torch.logdet(cov)
        - math.log(2 * math.pi)
    )
    lp = torch.as_tensor(post.log_post)
    near = lp > lp.max() - 10
    assert torch.allclose(lp[near], exact[near], atol=1e-5)
    # integrates to 1 by an independent rule (numpy's trapezoid over the two axes)
    total = np.trapezoid(np.trapezoid(np.exp(post.log_post), post.axes[0], axis=1), post.axes[1])
    assert total == pytest.approx(1.0, abs=1e-6)
    assert post.encoder_mass == pytest.approx(1.0, abs=1e-6)
    # the Monte-Carlo ELBO closes the identity: ELBO = log q − KL (exact here)
    elbo, se = lv.elbo_estimate(m, xt, 200_000, generator=torch.Generator().manual_seed(0))
    assert abs(elbo - (log_q - kl)) < 4 * se + 1e-4
    # unpacks as the triple
    log_post, log_enc, kl2 = post
    assert log_post.shape == log_enc.shape == (len(post.axes[1]), len(post.axes[0]))
    assert kl2 == post.kl


def test_a_wrong_posterior_is_caught():
    """The closed-form check can fail: a decoder variance off by 10 % moves log q and the KL."""
    m = _linear_vae()
    xt = torch.tensor((0.8, -0.5), dtype=torch.float64)
    log_q, _, _, kl = _closed_forms(xt)
    m.decode = lambda z: ((z.double() @ A.T + C), torch.full((z.shape[0], 2), SIGMA * 1.1))
    post = lv.vae_posterior(m, xt)
    assert abs(post.log_q - log_q) > 1e-2 or abs(post.kl - kl) > 1e-2


#: a small VAE trained in the test (seeded, ~1 s on one thread): independent of the presets and of
#: the shipped checkpoints, which change with them
SMALL_VAE = RunSpec(
    "vae",
    TargetSpec("moons", freeze({})),
    freeze({"latent_dim": 2, "hidden": 64, "depth": 2, "decoder_var": "shared",
            "decoder_std": 0.1}),
    TrainConfig(steps=600, batch_size=256, lr=3e-3, seed=0, data_size=5000, lr_decay=True),
)  # fmt: skip


@pytest.fixture(scope="module")
def trained_vae():
    """A VAE trained on moons for a few hundred seeded steps (no cache, no shipped checkpoint),
    evaluated on the CPU like the test's inputs."""
    trained = run(SMALL_VAE, use_cache=False)
    assert trained.result.status == "ok", trained.result.message
    trained.model.cpu().eval()
    return trained


def test_trained_vae_log_q_equals_elbo_plus_kl(trained_vae):
    """log q_θ(x) (grid) = ELBO (400k-sample Monte Carlo, independent) + KL (grid) within 1e-2
    nats, and log q_θ(x) agrees with the model's own quadrature on a finer, fixed grid."""
    m = trained_vae.model
    pts = lv.posterior_points(trained_vae)
    for i in (1, 2):
        x = pts[i]
        post = lv.vae_posterior(m, x)
        with torch.no_grad():
            ref = float(m.log_marginal(torch.tensor(x[None], dtype=torch.float32), n_grid=601))
        assert post.log_q == pytest.approx(ref, abs=2e-3)
        elbo, se = lv.elbo_estimate(m, x, 400_000, generator=torch.Generator().manual_seed(i))
        assert se < 3e-3
        assert abs(post.log_q - elbo - post.kl) < 1e-2, (post.log_q, elbo, post.kl)
        # the KL is well above the tolerance, so the identity fails without it
        assert post.kl > 3e-2 and post.encoder_mass == pytest.approx(1.0, abs=1e-4)
        total = np.trapezoid(
            np.trapezoid(np.exp(post.log_post), post.axes[0], axis=1), post.axes[1]
        )
        assert total == pytest.approx(1.0, abs=1e-9)


def test_one_dimensional_latent_and_bad_input():
    torch.manual_seed(0)
    m = VAE(latent_dim=1, hidden=16, depth=2).eval()
    x = np.array([0.3, -0.7])
    post = lv.vae_posterior(m, x)
    assert post.log_post.shape == (lv.POSTERIOR_RES[1],)
    with torch.no_grad():
        ref = float(m.log_marginal(torch.tensor(x[None], dtype=torch.float32)))
    assert post.log_q == pytest.approx(ref, abs=1e-3)
    assert np.trapezoid(np.exp(post.log_post), post.axes[0]) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(ValueError):
        lv.vae_posterior(m, np.array([np.nan, 0.0]))
    with pytest.raises(ValueError):
        lv.LatentGrid(((0.0, 1.0), (1.0, 0.0)), 50)
