"""DDPM: denoising diffusion probabilistic model (lecture 4-3, Ho et al. 2020).

Forward chain p(x_t | x_{t-1}) = N(√α_t x_{t-1}, β_t I) with the closed form
p(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) (``genlib.processes.DDPMSchedule``). The reverse model
q_θ(x_{t-1} | x_t) = N((x_t − β_t/√(1−ᾱ_t) ε_θ(x_t, t))/√α_t, σ_t² I) reduces the bound to the
ε-prediction loss  ⟨‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖²⟩  (t uniform on 1..T, the "simple" loss).
ε_θ is also a score: ∇ log p_t(x) ≈ −ε_θ(x, t)/√(1−ᾱ_t).

Speed (DESIGN §6): the schedule lives on the device as buffers; during training the time
embedding is computed for the T distinct steps once per batch and gathered; when sampling it is
folded into one per-step bias of the first layer (``TimeMLP.first_layer_bias``), precomputed for
all t before the loop.

Level convention: the level is the integer step t ∈ 1..T; ``score(x, t)`` ≈ ∇ log p_t and
``marginal_at(t) = (√ᾱ_t, √(1−ᾱ_t))`` (p_t is the law of √ᾱ_t x₀ + √(1−ᾱ_t) ε, i.e. q(x_t | x₀)).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from genlib.limits import check_model_size
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.nn import Activation, FastMLP, TimeMLP, sampling_dtype
from genlib.processes.ddpm import DDPMSchedule, ScheduleKind
from genlib.rng import randint, randn, randn_like
from genlib.samplers.ancestral import EpsFn, VarianceKind, ddpm_ancestral

__all__ = ["DDPM"]


@register("ddpm")
class DDPM(GenerativeModel):
    """ε_θ(x_t, t): a time-conditioned MLP; ancestral sampling from N(0, I)."""

    name: ClassVar[str] = "ddpm"
    section: ClassVar[str] = "4-3"
    presets: ClassVar[dict[str, Preset]] = {
        "fast": Preset(
            model={"hidden": 128, "depth": 3, "T": 200, "schedule": "linear"},
            train={"steps": 4000, "batch_size": 512, "lr": 2e-3, "ema": 0.999, "lr_decay": True},
            description="T = 200 linear schedule (ᾱ_T ≈ 4e-5), 128-wide MLP, 4k steps, EMA 0.999",
        ),
        "quality": Preset(
            model={"hidden": 128, "depth": 4, "T": 500, "schedule": "linear"},
            train={"steps": 20000, "batch_size": 1024, "lr": 1e-3, "ema": 0.999, "lr_decay": True},
            description="T = 500, deeper MLP, 20k steps, EMA 0.999",
        ),
    }

    def __init__(
        self,
        hidden: int = 128,
        depth: int = 3,
        embed_dim: int = 64,
        activation: Activation = "silu",
        schedule: ScheduleKind = "linear",
        T: int = 200,
        variance: VarianceKind = "beta",
    ) -> None:
        super().__init__()
        if variance not in ("beta", "beta_tilde"):
            raise ValueError("variance must be 'beta' or 'beta_tilde'")
        check_model_size(hidden=hidden, depth=depth, embed_dim=embed_dim, T=T)
        self.schedule = DDPMSchedule(schedule, int(T))
        self.T = int(T)
        self.variance = variance
        self.net = TimeMLP(
            2,
            2,
            hidden=hidden,
            depth=depth,
            embed_dim=embed_dim,
            time_scale=1000.0 / T,
            activation=activation,
        )
        # the schedule on the device (derived from the constructor: not saved in checkpoints)
        self.register_buffer(
            "sqrt_ab", self.schedule.alpha_bar.sqrt().float(), persistent=False
        )  # (T,)
        self.register_buffer(
            "sqrt_1mab", (1 - self.schedule.alpha_bar).sqrt().float(), persistent=False
        )
        self.register_buffer("steps", torch.arange(1, T + 1, dtype=torch.float32), persistent=False)
        self.sqrt_1mab_host: list[float] = (1 - self.schedule.alpha_bar).sqrt().tolist()

    @property
    def alpha_bar_T(self) -> float:
        """ᾱ_T (want ≈ 0: the chain's end must match the N(0, I) prior)."""
        return self.schedule.alpha_bar_T

    # -- network ------------------------------------------------------------------------------
    def _bias_table(self) -> Tensor:
        """First-layer time bias for every t = 1..T: ``(T, hidden)``."""
        return self.net.first_layer_bias(self.steps)

    def _eps_with_bias(self, x: Tensor, bias: Tensor) -> Tensor:
        h = self.net.inp(x) + bias  # (N, hidden)
        return self.net.body(self.net.act(h))

    def eps(self, x: Tensor, t: int | Tensor) -> Tensor:
        """ε_θ(x_t, t) ``(N, 2)`` for t in 1..T (an int or an ``(N,)`` tensor of ints)."""
        if isinstance(t, int):  # a fill kernel: no host-to-device copy
            return self.net(x, torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device))
        t = torch.as_tensor(t).to(x.device)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t.reshape(-1)
        return self.net(x, t.to(x.dtype))

    def score(self, x: Tensor, level: int | Tensor) -> Tensor:
        """∇ log p_t(x) ≈ −ε_θ(x, t)/√(1−ᾱ_t): ``(N, 2)``; ``level`` is the step t in 1..T (an
        int or an ``(N,)`` tensor)."""
        if isinstance(level, int):
            return -self.eps(x, level) / float(self.sqrt_1mab_host[level - 1])
        t = torch.as_tensor(level).to(x.device).long()
        s = self.sqrt_1mab[t - 1]
        return -self.eps(x, t) / (s[:, None] if s.ndim else s)

    def marginal_at(self, level: int | None = None) -> tuple[float, float]:
        """(a, s) = (√ᾱ_t, √(1−ᾱ_t)) of p_t = q(x_t | x₀) averaged over the data, at the step
        t = ``level`` in 0..T (0: the data, (1, 0); ``None``: t = 1)."""
        t = 1 if level is None else int(level)
        if not (0 <= t <= self.T):
            raise ValueError(f"the DDPM level is an integer step t in 0..{self.T}, got {level!r}")
        a, s = self.schedule.marginal(t)
        return float(a), float(s)

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The ε-prediction loss with t uniform on 1..T and ε drawn with ``generator``."""
        n = x.shape[0]
        t = randint(1, self.T + 1, (n,), generator=generator, device=x.device)  # (N,)
        eps = randn_like(x, generator)
        xt = self.sqrt_ab[t - 1, None] * x + self.sqrt_1mab[t - 1, None] * eps  # q(x_t | x_0)
        pred = self._eps_with_bias(xt, self._bias_table()[t - 1])  # T embeddings, gathered
        return ((eps - pred) ** 2).sum(-1).mean()

    # -- sampling -----------------------------------------------------------------------------
    def eps_fn(self, dtype: torch.dtype = torch.float32) -> EpsFn:
        """A sampling-time ε̂(x, t) with the time embedding folded into a precomputed bias (one
        ``(1, hidden)`` row per t, computed from the current weights) and the network evaluated
        by ``FastMLP`` (hidden layers in ``dtype``; float32: equal to ``eps`` to float rounding).
        An ``eps`` set on the instance (an exact predictor) is used as is."""
        if "eps" in self.__dict__:
            return self.__dict__["eps"]
        with torch.no_grad():
            table = self._bias_table()  # (T, hidden)
        fast = FastMLP.for_sampling(self.net, self.device, dtype)

        def fn(x: Tensor, t: int) -> Tensor:
            return fast(x, table[t - 1 : t])

        return fn

    @torch.no_grad()
    def trajectory(
        self, n: int, num_frames: int = 60, *, generator: torch.Generator | None = None
    ) -> Trajectory:
        """x_T ~ N(0, I) → x_0 by ancestral sampling, with x̂_0 per frame; ``ts`` are the t's."""
        x_T = randn(n, 2, generator=generator, device=self.device)
        return ddpm_ancestral(
            self.eps_fn(sampling_dtype(self.device)),
            self.schedule,
            x_T,
            generator,
            num_frames,
            self.variance,
        )

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return self.trajectory(n, num_frames=2, generator=generator).xs[-1]
