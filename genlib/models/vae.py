"""Variational autoencoder (lecture 3-2).

Latent-variable model ``q_θ(x) = ∫ q_θ(x|z) q_Z(z) dz`` with

- prior ``q_Z = N(0, I)`` on a latent of dimension 1 or 2 (``latent_dim``),
- Gaussian decoder ``q_θ(x|z) = N(μ_θ(z), diag σ_θ(z)²)``; ``decoder_var="learned"`` lets the
  network output σ_θ(z) (floored at ``min_std``), ``decoder_var="fixed"`` uses the constant
  ``decoder_std`` for every z (then the reconstruction term is a scaled squared error),
- Gaussian encoder (the lecture's reverse model) ``r_φ(z|x) = N(μ_φ(x), diag σ_φ(x)²)``.

Training minimises the negative variational bound of the lecture,

    −ELBO(x) = −⟨log q_θ(x|z) q_Z(z) / r_φ(z|x)⟩_{r_φ(z|x)}
             = ⟨−log q_θ(x|z)⟩_{r_φ(z|x)}  +  KL(r_φ(z|x) ‖ q_Z)      ("recon" + "kl"),

with the KL term in closed form and the reconstruction term by one reparametrised sample
``z = μ_φ(x) + σ_φ(x) ⊙ ε``, ε ~ N(0, I) (the reparametrisation trick: ∇_φ moves inside the
expectation over ε). ``beta`` weights the KL term in the *training loss* only (β-VAE; default 1,
the lecture's bound); ``elbo`` is always the true bound.

Capabilities: ``elbo(x)`` (HasElbo — a lower bound of log q_θ(x), never called log_prob),
``iwae(x, K)`` (the importance-weighted bound log mean_k q(x|z_k) q_Z(z_k) / r(z_k|x), which
tightens towards log q_θ(x) as K grows) and ``log_marginal(x)`` (log q_θ(x) by quadrature over the
latent — exact up to grid error for these 1D/2D latents; the reference the bounds are compared to).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genlib import rng
from genlib.geometry import LOG_2PI
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.nn import MLP, Activation

__all__ = [
    "VAE",
    "DecoderVar",
    "gaussian_log_prob",
    "gaussian_kl_std_normal",
    "MAX_IWAE_K",
    "MAX_BOUND_POINTS",
]

MAX_IWAE_K = 5000  # importance samples per point (bounded: the page lets the user pick K)
MAX_BOUND_POINTS = 20_000  # points x per bound evaluation
_MAX_PAIRS = 4_000_000  # (points × latent samples) evaluated at once

DecoderVar = Literal["learned", "shared", "fixed"]


def gaussian_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """log N(x; mean, diag std²) summed over the last axis: (..., D) -> (...)."""
    return (-0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * LOG_2PI).sum(-1)


def gaussian_kl_std_normal(mean: Tensor, std: Tensor) -> Tensor:
    """KL(N(mean, diag std²) ‖ N(0, I)) = ½ Σ (mean² + std² − 1 − log std²): (..., D) -> (...)."""
    return 0.5 * (mean**2 + std**2 - 1.0 - 2.0 * std.log()).sum(-1)


@register("vae")
class VAE(GenerativeModel):
    """Gaussian VAE on 2D points (see the module docstring)."""

    name = "vae"
    section = "3-2"
    presets = {
        "fast": Preset(
            model={
                "latent_dim": 2,
                "hidden": 128,
                "depth": 3,
                "decoder_var": "shared",
                "decoder_std": 0.1,
                "beta": 1.0,
            },
            # 4000 steps at lr 3e-3 match 10000 at 1e-3 (SW/floor 1.32 vs 1.23 on moons, 2.34 vs
            # 2.39 on 8 gaussians; benchmarks/bench_models.py) in 40 % of the steps
            train={"steps": 4000, "batch_size": 256, "lr": 3e-3, "lr_decay": True},
            description="2D latent, one learned decoder σ, 4000 steps: about 12 s on one CPU thread",
        ),
        "quality": Preset(
            model={
                "latent_dim": 2,
                "hidden": 128,
                "depth": 3,
                "decoder_var": "shared",
                "decoder_std": 0.1,
                "beta": 1.0,
            },
            train={"steps": 30000, "batch_size": 512, "lr": 1e-3, "lr_decay": True},
            description="longer training on larger batches (a few minutes on a CPU)",
        ),
    }

    def __init__(
        self,
        latent_dim: int = 2,
        hidden: int = 128,
        depth: int = 3,
        activation: Activation = "silu",
        decoder_var: DecoderVar = "shared",
        decoder_std: float = 0.1,
        min_std: float = 0.01,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        if latent_dim not in (1, 2):
            raise ValueError("latent_dim must be 1 or 2")
        if decoder_var not in ("learned", "shared", "fixed"):
            raise ValueError("decoder_var must be 'learned', 'shared' or 'fixed'")
        if not (1 <= hidden <= 1024 and 1 <= depth <= 8):
            raise ValueError("hidden must be in [1, 1024] and depth in [1, 8]")
        if not (1e-3 <= decoder_std <= 10.0):
            raise ValueError("decoder_std must be in [0.001, 10]")
        if not (1e-4 <= min_std <= 1.0):
            raise ValueError("min_std must be in [0.0001, 1]")
        if not (0.0 <= beta <= 100.0):
            raise ValueError("beta must be in [0, 100]")
        self.latent_dim = latent_dim
        self.decoder_var: DecoderVar = decoder_var
        self.decoder_std = float(decoder_std)
        self.min_std = float(min_std)
        self.beta = float(beta)
        d = latent_dim
        self.encoder = MLP(
            2, 2 * d, hidden=hidden, depth=depth, activation=activation
        )  # x -> (μ_φ, σ_φ)
        dec_out = 4 if decoder_var == "learned" else 2
        self.decoder = MLP(
            d, dec_out, hidden=hidden, depth=depth, activation=activation
        )  # z -> (μ_θ, σ_θ)
        # "shared": one learned isotropic σ_θ for every z (initialised at decoder_std)
        init = math.log(math.expm1(max(self.decoder_std - self.min_std, 1e-4)))
        self.raw_shared_std = nn.Parameter(torch.tensor(init)) if decoder_var == "shared" else None

    # ---------------------------------------------------------------- encoder / decoder
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """r_φ(z|x): mean and std, each (N, latent_dim)."""
        h = self.encoder(x)
        mu, raw = h.split(self.latent_dim, dim=-1)
        return mu, F.softplus(raw) + 1e-4

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """q_θ(x|z): mean and std, each (..., 2)."""
        h = self.decoder(z)
        if self.decoder_var == "learned":
            mu, raw = h.split(2, dim=-1)
            return mu, F.softplus(raw) + self.min_std
        if self.raw_shared_std is not None:
            return h, (F.softplus(self.raw_shared_std) + self.min_std).expand_as(h)
        return h, torch.full_like(h, self.decoder_std)

    def reparametrise(
        self, mu: Tensor, std: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """z = μ + σ ⊙ ε with ε ~ N(0, I): differentiable in (μ, σ), hence in φ."""
        return mu + std * rng.randn_like(mu, generator)

    # ---------------------------------------------------------------- the bound
    def elbo_terms(
        self, x: Tensor, *, generator: torch.Generator | None = None, n_samples: int = 1
    ) -> dict[str, Tensor]:
        """Per-point terms (N,): ``recon`` = −⟨log q_θ(x|z)⟩_r (MC, ``n_samples`` reparametrised
        samples), ``kl`` = KL(r_φ(z|x) ‖ q_Z) (closed form), ``elbo`` = −recon − kl."""
        mu, std = self.encode(x)  # (N, d)
        eps = rng.randn(n_samples, *mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu.unsqueeze(0) + std.unsqueeze(0) * eps  # (S, N, d)
        dec_mu, dec_std = self.decode(z)  # (S, N, 2)
        recon = -gaussian_log_prob(x.unsqueeze(0), dec_mu, dec_std).mean(0)  # (N,)
        kl = gaussian_kl_std_normal(mu, std)  # (N,)
        return {"recon": recon, "kl": kl, "elbo": -recon - kl}

    def elbo(
        self, x: Tensor, *, generator: torch.Generator | None = None, n_samples: int = 1
    ) -> Tensor:
        """Monte-Carlo estimate of the variational lower bound of log q_θ(x): (N, 2) -> (N,)."""
        return self.elbo_terms(x, generator=generator, n_samples=n_samples)["elbo"]

    def iwae(self, x: Tensor, k: int = 10, *, generator: torch.Generator | None = None) -> Tensor:
        """Importance-weighted bound log (1/K) Σ_k q_θ(x|z_k) q_Z(z_k) / r_φ(z_k|x), z_k ~ r_φ(·|x):
        (N, 2) -> (N,). K = 1 is the ELBO (with a sampled KL); E[iwae_K] ↑ log q_θ(x) as K grows."""
        if not (1 <= k <= MAX_IWAE_K):
            raise ValueError(f"K must be in [1, {MAX_IWAE_K}]")
        if x.shape[0] > MAX_BOUND_POINTS:
            raise ValueError(f"at most {MAX_BOUND_POINTS} points per bound evaluation")
        chunk = max(1, _MAX_PAIRS // k)
        return torch.cat([self._iwae_chunk(c, k, generator) for c in torch.split(x, chunk)])

    def _iwae_chunk(self, x: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        mu, std = self.encode(x)  # (N, d)
        eps = rng.randn(k, *mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + std * eps  # (K, N, d)
        dec_mu, dec_std = self.decode(z)  # (K, N, 2)
        log_w = (
            gaussian_log_prob(x, dec_mu, dec_std)  # log q_θ(x|z)
            + gaussian_log_prob(z, torch.zeros_like(z), torch.ones_like(z))  # log q_Z(z)
            - gaussian_log_prob(z, mu, std)  # log r_φ(z|x)
        )  # (K, N)
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    def log_marginal(
        self, x: Tensor, n_grid: int | None = None, extent: float | None = None
    ) -> Tensor:
        """log q_θ(x) = log ∫ q_θ(x|z) q_Z(z) dz by the trapezoid rule on a latent grid over
        [−extent, extent]^d (default 10 with 8001 nodes for a 1D latent, 7 with 301² nodes for a
        2D latent): (N, 2) -> (N,). Accurate when the grid resolves the decoder; a point whose
        posterior lies beyond the grid (prior mass < 1e-11 there) is underestimated."""
        d = self.latent_dim
        n_grid = n_grid or (8001 if d == 1 else 301)
        extent = extent or (10.0 if d == 1 else 7.0)
        if not (11 <= n_grid <= (20001 if d == 1 else 801)):
            raise ValueError("n_grid out of range")
        if x.shape[0] > MAX_BOUND_POINTS:
            raise ValueError(f"at most {MAX_BOUND_POINTS} points per evaluation")
        axis = torch.linspace(-extent, extent, n_grid, device=x.device, dtype=x.dtype)
        h = float(axis[1] - axis[0])
        z = axis.reshape(-1, 1) if d == 1 else torch.cartesian_prod(axis, axis)  # (G, d)
        w = torch.full((n_grid,), math.log(h), device=x.device, dtype=x.dtype)
        w[0] = w[-1] = math.log(h / 2)  # trapezoid end weights
        log_w = w if d == 1 else (w.reshape(-1, 1) + w.reshape(1, -1)).reshape(-1)  # (G,)
        log_prior = gaussian_log_prob(z, torch.zeros_like(z), torch.ones_like(z))  # (G,)
        dec_mu, dec_std = self.decode(z)  # (G, 2)
        out = []
        chunk = max(1, _MAX_PAIRS // z.shape[0])
        for xc in torch.split(x, chunk):
            ll = gaussian_log_prob(
                xc.unsqueeze(1), dec_mu.unsqueeze(0), dec_std.unsqueeze(0)
            )  # (n, G)
            out.append(torch.logsumexp(ll + log_prior + log_w, dim=1))
        return torch.cat(out)

    # ---------------------------------------------------------------- training
    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """recon + β·kl (batch mean), the reparametrised latents drawn with ``generator``."""
        terms = self.elbo_terms(x, generator=generator)
        return (terms["recon"] + self.beta * terms["kl"]).mean()

    def train_step(
        self,
        x: Tensor,
        optimizers: list[torch.optim.Optimizer],
        step: int,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """One Adam step on −ELBO (latents drawn with ``generator``); logs ``loss``
        (= recon + β·kl), ``recon``, ``kl`` (batch means)."""
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        terms = self.elbo_terms(x, generator=generator)
        recon, kl = terms["recon"].mean(), terms["kl"].mean()
        loss = recon + self.beta * kl
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip)
        opt.step()
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}

    # ---------------------------------------------------------------- sampling
    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """z ~ q_Z = N(0, I): (n, latent_dim)."""
        return rng.randn(n, self.latent_dim, generator=generator, device=self.device)

    @torch.no_grad()
    def sample(
        self, n: int, *, generator: torch.Generator | None = None, noise: bool = True
    ) -> Tensor:
        """x ~ q_θ: z ~ N(0, I), x = μ_θ(z) + σ_θ(z) ⊙ ε (``noise=False``: the decoder mean μ_θ(z))."""
        z = self.sample_latent(n, generator=generator)
        mu, std = self.decode(z)
        if not noise:
            return mu
        return mu + std * rng.randn_like(mu, generator)

    @torch.no_grad()
    def trajectory(
        self, n: int, num_frames: int = 60, *, generator: torch.Generator | None = None
    ) -> Trajectory:
        """Generation as an animation: the latent sample z (shown in the plane; a 1D latent on the
        x₁ axis) moves to the decoder mean μ_θ(z) (first half), then decoder noise is added
        (second half). ``ts`` runs over [0, 1]."""
        num_frames = max(3, int(num_frames))
        z = self.sample_latent(n, generator=generator)
        mu, std = self.decode(z)
        x = mu + std * rng.randn_like(mu, generator)
        z_plane = (
            z if self.latent_dim == 2 else torch.cat([z, torch.zeros_like(z)], dim=1)
        )  # (n, 2)
        ts = torch.linspace(0, 1, num_frames, device=mu.device)
        a = (2 * ts).clamp(max=1).reshape(-1, 1, 1)  # latent -> decoder mean
        b = (2 * ts - 1).clamp(min=0).reshape(-1, 1, 1)  # decoder mean -> sample
        xs = (1 - a) * z_plane + a * mu + b * (x - mu)  # (F, n, 2)
        return Trajectory(xs, ts, "decode")
