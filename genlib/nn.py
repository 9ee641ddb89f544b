"""Small networks shared by every family: an MLP, time embeddings and a time-conditioned MLP.

Shapes: points ``x`` are ``(N, D)``; times ``t`` are ``(N,)`` or a scalar (broadcast to ``(N,)``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["MLP", "SinusoidalEmbedding", "FourierFeatures", "TimeMLP", "make_activation"]

Activation = Literal["silu", "relu", "gelu", "tanh", "leaky_relu", "softplus"]


def make_activation(name: Activation) -> nn.Module:
    return {
        "silu": nn.SiLU,
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "tanh": nn.Tanh,
        "leaky_relu": lambda: nn.LeakyReLU(0.2),
        "softplus": nn.Softplus,
    }[name]()


class MLP(nn.Module):
    """``depth`` hidden layers of width ``hidden``: (N, dim_in) -> (N, dim_out)."""

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        hidden: int = 128,
        depth: int = 3,
        activation: Activation = "silu",
        zero_last: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim_in
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), make_activation(activation)]
            width = hidden
        last = nn.Linear(width, dim_out)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _as_batch_times(t: Tensor | float, n: int, like: Tensor) -> Tensor:
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    return t.expand(n) if t.ndim == 0 else t.reshape(n)


class SinusoidalEmbedding(nn.Module):
    """Transformer-style embedding of a scalar time: (N,) -> (N, dim).

    ``scale`` maps the time range onto roughly [0, 1000] (DDPM convention), e.g. ``scale=1000`` for
    t in [0, 1] and ``scale=1000/T`` for integer steps t in {0..T}."""

    def __init__(self, dim: int = 64, scale: float = 1000.0) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half) / max(half - 1, 1))
        self.register_buffer("freqs", freqs, persistent=False)
        self.scale = scale
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        arg = (t.reshape(-1, 1) * self.scale) * self.freqs  # (N, dim/2)
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class FourierFeatures(nn.Module):
    """Random Fourier features of a scalar (Gaussian frequencies, fixed): (N,) -> (N, dim)."""

    def __init__(self, dim: int = 64, std: float = 16.0, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", torch.randn(dim // 2, generator=g) * std, persistent=True)
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        arg = 2 * math.pi * t.reshape(-1, 1) * self.w  # (N, dim/2)
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class TimeMLP(nn.Module):
    """A time-conditioned MLP f(x, t): (N, dim_in), (N,) -> (N, dim_out).

    The time embedding is projected and added to the first hidden layer's pre-activation, so a
    fixed t costs one bias (``first_layer_bias(t)``) when sampling.
    """

    def __init__(
        self,
        dim_in: int = 2,
        dim_out: int = 2,
        hidden: int = 128,
        depth: int = 3,
        embed_dim: int = 64,
        time_scale: float = 1000.0,
        activation: Activation = "silu",
        embedding: Literal["sinusoidal", "fourier"] = "sinusoidal",
    ) -> None:
        super().__init__()
        if embedding == "sinusoidal":
            self.embed: nn.Module = SinusoidalEmbedding(embed_dim, scale=time_scale)
        else:
            self.embed = FourierFeatures(embed_dim)
        self.inp = nn.Linear(dim_in, hidden)
        self.temb = nn.Sequential(nn.Linear(embed_dim, hidden), make_activation(activation))
        self.temb_out = nn.Linear(hidden, hidden)
        self.act = make_activation(activation)
        self.body = MLP(
            hidden, dim_out, hidden=hidden, depth=max(depth - 1, 0), activation=activation
        )

    def first_layer_bias(self, t: Tensor) -> Tensor:
        """The time-dependent part of the first hidden pre-activation: (N,) -> (N, hidden)."""
        return self.temb_out(self.temb(self.embed(t)))

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        tt = _as_batch_times(t, x.shape[0], x)
        h = self.inp(x) + self.first_layer_bias(tt)  # (N, hidden)
        return self.body(self.act(h))
