"""Small networks shared by every family: an MLP, time embeddings and a time-conditioned MLP.

Shapes: points ``x`` are ``(N, D)``; times ``t`` are ``(N,)`` or a scalar (broadcast to ``(N,)``).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "MLP",
    "SinusoidalEmbedding",
    "FourierFeatures",
    "TimeMLP",
    "make_activation",
    "FastMLP",
    "sampling_dtype",
    "SAMPLING_CHUNK",
]

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


# -- sampling-time evaluation ------------------------------------------------------------------

#: rows per chunk of a sampling-time network evaluation on the CPU: a (2500, 128) float32
#: activation (1.3 MB) stays in the L2 cache; measured 1.5-3x faster than 10k rows at once
SAMPLING_CHUNK = 2500


@functools.cache
def _cpu_has_native_bf16() -> bool:
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool((check is not None and check()) or (amx is not None and amx()))
    except RuntimeError:  # pragma: no cover - exotic builds
        return False


def sampling_dtype(device: torch.device | str) -> torch.dtype:
    """The dtype of the hidden layers of a sampling-time network evaluation on ``device``:
    bfloat16 on a CPU with native bf16 instructions (AVX512-BF16 or AMX; ≈2-3x faster matmuls,
    samplers' SW/floor measured unchanged, see benchmarks/bench_samplers.py), else float32.
    ``GENLIB_SAMPLING_BF16=0`` forces float32, ``=1`` forces bf16 on the CPU. A capability check,
    never a timing, so the same machine always draws the same samples for a seed."""
    if torch.device(device).type != "cpu":
        return torch.float32
    flag = os.environ.get("GENLIB_SAMPLING_BF16", "auto").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return torch.float32
    if flag in ("1", "true", "yes", "on"):
        return torch.bfloat16
    return torch.bfloat16 if _cpu_has_native_bf16() else torch.float32


def _inplace_activation(act: nn.Module) -> Callable[[Tensor], Tensor]:
    if isinstance(act, nn.SiLU):
        return lambda h: nn.functional.silu(h, inplace=True)
    if isinstance(act, nn.ReLU):
        return torch.relu_
    if isinstance(act, nn.Tanh):
        return torch.tanh_
    return act


class FastMLP:
    """A no-autograd evaluator of a chain of ``nn.Linear`` layers with one activation between
    them, built from a network's CURRENT weights at sampling time (nothing is stored on the
    model, no state_dict changes): (N, dim_in) [+ a first-layer bias] -> (N, dim_out).

    - the first layer (dim_in -> hidden, with the folded time bias added to its pre-activation)
      and the last layer (hidden -> dim_out) run in float32, so inputs and outputs keep float32
      precision; the hidden × hidden layers run in ``dtype`` (``sampling_dtype``: bf16 on CPUs
      with native bf16) with float32 accumulation;
    - rows are processed in chunks of ``chunk`` (cache-sized; ``None``: all at once, e.g. on a
      GPU); chunking does not change the result beyond float rounding (rows do not interact);
    - activations are applied in place.
    """

    def __init__(
        self,
        linears: list[nn.Linear],
        activation: nn.Module,
        dtype: torch.dtype = torch.float32,
        chunk: int | None = SAMPLING_CHUNK,
    ) -> None:
        if not linears:
            raise ValueError("FastMLP needs at least one linear layer")
        self.dtype = dtype
        self.chunk = chunk
        self.act = _inplace_activation(activation)
        with torch.no_grad():
            params = [(lin.weight.detach().T, lin.bias.detach()) for lin in linears]
            # (in, out) weights; hidden × hidden layers cast once here
            self.first = (params[0][0].contiguous(), params[0][1])
            self.middle = [(w.to(dtype).contiguous(), b.to(dtype)) for w, b in params[1:-1]]
            self.last = (params[-1][0].contiguous(), params[-1][1]) if len(params) > 1 else None

    @classmethod
    def of_mlp(
        cls, mlp: MLP, dtype: torch.dtype = torch.float32, chunk: int | None = SAMPLING_CHUNK
    ):
        """The evaluator of an ``MLP``."""
        layers = list(mlp.net)
        linears = [m for m in layers if isinstance(m, nn.Linear)]
        acts = [m for m in layers if not isinstance(m, nn.Linear)]
        return cls(linears, acts[0] if acts else nn.Identity(), dtype, chunk)

    @classmethod
    def of_time_mlp(
        cls, net: TimeMLP, dtype: torch.dtype = torch.float32, chunk: int | None = SAMPLING_CHUNK
    ):
        """The evaluator of a ``TimeMLP`` without its time path: call it with
        ``bias=net.first_layer_bias(t)`` (``(1, hidden)`` for one t, or ``(N, hidden)``)."""
        body = [m for m in net.body.net if isinstance(m, nn.Linear)]
        return cls([net.inp, *body], net.act, dtype, chunk)

    @staticmethod
    def default_chunk(device: torch.device | str) -> int | None:
        """``SAMPLING_CHUNK`` rows on the CPU, all rows at once elsewhere (a GPU wants width)."""
        return SAMPLING_CHUNK if torch.device(device).type == "cpu" else None

    @classmethod
    def for_sampling(
        cls, net: MLP | TimeMLP, device: torch.device | str, dtype: torch.dtype | None = None
    ):
        """The evaluator of ``net`` (``of_time_mlp`` for a ``TimeMLP``, else ``of_mlp``) as the
        samplers use it on ``device``: hidden layers in ``dtype`` (default ``sampling_dtype``),
        rows in ``default_chunk`` chunks."""
        dtype = sampling_dtype(device) if dtype is None else dtype
        chunk = cls.default_chunk(device)
        if isinstance(net, TimeMLP):
            return cls.of_time_mlp(net, dtype, chunk)
        return cls.of_mlp(net, dtype, chunk)

    def __call__(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        n = x.shape[0]
        if self.chunk is None or n <= self.chunk:
            return self._run(x, bias)
        per_row = bias is not None and bias.ndim == 2 and bias.shape[0] == n and n > 1
        outs = []
        for start in range(0, n, self.chunk):
            stop = min(start + self.chunk, n)
            outs.append(self._run(x[start:stop], bias[start:stop] if per_row else bias))
        return torch.cat(outs)

    def _run(self, x: Tensor, bias: Tensor | None) -> Tensor:
        w, b = self.first
        h = torch.addmm(b, x, w)  # (n, hidden) float32
        if bias is not None:
            h += bias
        if self.last is None:
            return h
        h = self.act(h)
        if self.middle:
            h = h.to(self.dtype)
            for w, b in self.middle:
                h = self.act(torch.addmm(b, h, w))
            h = h.float()
        w, b = self.last
        return torch.addmm(b, h, w)  # (n, dim_out) float32
