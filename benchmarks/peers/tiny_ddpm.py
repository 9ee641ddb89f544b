"""A DDPM in the configuration tiny-diffusion ships (tanelp/tiny-diffusion, ``ddpm.py`` defaults as
its README describes them), written from Ho et al. (2020):

- data: a fixed set of 8,000 target points, reshuffled every epoch, batch 32, last partial batch
  dropped;
- forward process: T = 50, β linear from 1e-4 to 0.02 (so ᾱ_T ≈ 0.6: the chain ends far from
  N(0, I), which the sampler's N(0, I) start does not know);
- network ε_θ(x, t): sinusoidal embeddings of x₁ and x₂ (128 each, frequencies scaled by 25) and of
  t (128), concatenated (384) → Linear 128 + GELU → 3 residual blocks h + GELU(Linear(h)) → 2;
- loss: ‖ε − ε_θ(√ᾱ_t x + √(1−ᾱ_t) ε, t)‖², t uniform on {0, …, T−1};
- AdamW (torch defaults: weight decay 0.01), lr 1e-3, gradient norm clipped at 1, no EMA, no
  learning-rate schedule;
- sampling: ancestral, x̂₀ = (x_t − √(1−ᾱ_t) ε_θ)/√ᾱ_t, then the posterior mean
  μ̃(x̂₀, x_t) plus √β̃_t z with β̃_t = β_t (1−ᾱ_{t−1})/(1−ᾱ_t) (no noise at t = 0, no clipping).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from benchmarks.peers.base import Peer
from genlib.distributions.base import Target2D
from genlib.rng import randint, randn, seeded_init

__all__ = ["TinyDiffusionDDPM", "sinusoidal"]


def sinusoidal(v: Tensor, size: int, scale: float = 1.0) -> Tensor:
    """Transformer-style embedding of a scalar per row: ``(N,)`` -> ``(N, size)`` = [sin, cos] of
    ``scale·v`` times geometric frequencies 1 … 1/10000."""
    half = size // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=v.device) / (half - 1))
    arg = (scale * v.float())[:, None] * freqs[None, :]  # (N, half)
    return torch.cat([arg.sin(), arg.cos()], dim=-1)


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lin = nn.Linear(width, width)
        self.act = nn.GELU()

    def forward(self, h: Tensor) -> Tensor:
        return h + self.act(self.lin(h))


class _EpsNet(nn.Module):
    def __init__(self, width: int = 128, blocks: int = 3, emb: int = 128) -> None:
        super().__init__()
        self.emb = emb
        self.net = nn.Sequential(
            nn.Linear(3 * emb, width),
            nn.GELU(),
            *[_Residual(width) for _ in range(blocks)],
            nn.Linear(width, 2),
        )

    def forward(self, x: Tensor, t: Tensor) -> Tensor:  # x (N, 2), t (N,) integer steps
        h = torch.cat(
            [
                sinusoidal(x[:, 0], self.emb, 25.0),
                sinusoidal(x[:, 1], self.emb, 25.0),
                sinusoidal(t, self.emb),
            ],
            dim=-1,
        )  # (N, 384)
        return self.net(h)


class TinyDiffusionDDPM(Peer):
    config = (
        "T = 50, β linear 1e-4…0.02, batch 32 from a fixed 8,000-point set, ε-net: sinusoidal "
        "x (scale 25) + t embeddings → 128 → 3 residual GELU blocks of 128 → 2, AdamW lr 1e-3, "
        "clip 1, no EMA; ancestral sampling over the 50 steps"
    )

    def __init__(
        self,
        target: Target2D,
        seed: int = 0,
        T: int = 50,
        batch_size: int = 32,
        data_size: int = 8000,
        lr: float = 1e-3,
    ) -> None:
        self.T, self.batch_size = T, batch_size
        self.g = torch.Generator().manual_seed(seed + 1)
        self.data = target.sample(data_size, generator=torch.Generator().manual_seed(seed))
        self.net = seeded_init(seed, _EpsNet)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=lr)
        self.beta = torch.linspace(1e-4, 0.02, T)  # (T,)
        self.alpha = 1.0 - self.beta
        self.alpha_bar = torch.cumprod(self.alpha, 0)
        self.alpha_bar_prev = torch.cat([torch.ones(1), self.alpha_bar[:-1]])
        self._order = torch.empty(0, dtype=torch.long)
        self._pos = 0

    def _batch(self) -> Tensor:
        if self._pos + self.batch_size > self._order.numel():  # a new epoch (drop_last)
            self._order = torch.randperm(self.data.shape[0], generator=self.g)
            self._pos = 0
        idx = self._order[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return self.data[idx]  # (B, 2)

    def step(self) -> None:
        x0 = self._batch()
        t = randint(0, self.T, (x0.shape[0],), generator=self.g)  # (B,)
        eps = randn(*x0.shape, generator=self.g)
        ab = self.alpha_bar[t][:, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        loss = ((self.net(xt, t) - eps) ** 2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        x = randn(n, 2, generator=generator)
        for t in range(self.T - 1, -1, -1):
            tt = torch.full((n,), t, dtype=torch.long)
            eps = self.net(x, tt)
            ab, abp = self.alpha_bar[t], self.alpha_bar_prev[t]
            x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
            mean = (self.beta[t] * abp.sqrt() * x0 + (1 - abp) * self.alpha[t].sqrt() * x) / (
                1 - ab
            )
            if t > 0:
                var = (self.beta[t] * (1 - abp) / (1 - ab)).clamp_min(1e-20)
                x = mean + var.sqrt() * randn(n, 2, generator=generator)
            else:
                x = mean
        return x
