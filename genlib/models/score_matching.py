"""Score matching + Langevin MC (lecture 4-1, Hyvärinen 2005).

A network s_θ(x) ≈ ∇_x log p(x) is fitted with Hyvärinen's objective, written as in the lecture

    ⟨(s_θ(x) − ∇_x log p(x))²⟩_p = ⟨ s_θ(x)² + 2 ∇_x·s_θ(x) ⟩_p + const,

i.e. twice the usual ½‖s‖² + ∇·s (same minimiser). The divergence is EXACT: in 2D two autograd
passes (∂s_1/∂x_1 + ∂s_2/∂x_2, ``create_graph=True`` so the loss can be differentiated).
Samples come from Langevin MC x ← x + ε s_θ(x) + √(2ε) z started from a broad initial
distribution — and that is where the lecture's warning bites: s_θ is only trained where the data
are, so chains that start far away follow an untrained field (``genlib.lab.langevin`` shows it).

Level convention: the score has no time; ``score(x, level)`` ignores ``level`` and
``marginal_at(level) = (1, 0)`` (p itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import torch
from torch import Tensor

from genlib.limits import check_model_size
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.nn import MLP, Activation, FastMLP
from genlib.rng import rand, randn
from genlib.samplers.langevin import langevin, record_every_for

__all__ = [
    "ScoreMatching",
    "hyvarinen_terms",
    "hyvarinen_loss",
    "InitKind",
    "INIT_KINDS",
    "init_points",
]

InitKind = Literal["gaussian", "box", "far"]
INIT_KINDS: tuple[InitKind, ...] = ("gaussian", "box", "far")


def hyvarinen_terms(score_fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """‖s(x)‖² and the exact divergence ∇·s(x) (two autograd passes, graph kept): ``(N,), (N,)``."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        s = score_fn(x)  # (N, 2)
        div = torch.zeros(x.shape[0], dtype=s.dtype, device=s.device)
        for i in range(x.shape[1]):
            (g,) = torch.autograd.grad(s[:, i].sum(), x, create_graph=True)  # ∇_x s_i (N, 2)
            div = div + g[:, i]
    return (s**2).sum(-1), div


def hyvarinen_loss(score_fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """The lecture's objective ⟨s_θ(x)² + 2 ∇·s_θ(x)⟩ over the batch (a scalar)."""
    sq, div = hyvarinen_terms(score_fn, x)
    return (sq + 2.0 * div).mean()


def init_points(
    n: int,
    kind: InitKind,
    lo: Tensor,
    hi: Tensor,
    mean: Tensor,
    std: Tensor,
    generator: torch.Generator | None = None,
    far_factor: float = 3.0,
) -> Tensor:
    """Initial Langevin states ``(n, 2)`` on the device of ``lo``: ``gaussian`` N(mean, diag std²)
    (the data's moments), ``box`` uniform on the data's bounding box [lo, hi], ``far`` uniform on
    the box scaled ``far_factor``× about its centre (mostly where no data were seen)."""
    if kind == "gaussian":
        return mean + std * randn(n, 2, generator=generator, device=lo.device)
    u = rand(n, 2, generator=generator, device=lo.device)
    if kind == "box":
        return lo + (hi - lo) * u
    if kind == "far":
        c, h = (lo + hi) / 2, (hi - lo) / 2
        return c + far_factor * h * (2 * u - 1)
    raise ValueError(f"unknown Langevin initialisation {kind!r}")


@register("score_matching")
class ScoreMatching(GenerativeModel):
    """s_θ(x): an MLP (2 → 2) trained by exact (Hyvärinen) score matching; Langevin sampling.

    The model keeps running statistics of the training data it saw (bounding box, mean, std) as
    buffers, so it can start its Langevin chains from a broad distribution matched to the data
    (``init``) without being told the target.
    """

    name: ClassVar[str] = "score_matching"
    section: ClassVar[str] = "4-1"
    presets: ClassVar[dict[str, Preset]] = {
        "fast": Preset(
            model={"hidden": 64, "depth": 3, "langevin_steps": 300, "step_size": 0.01},
            # batch 512 (was 1024): SW/floor 1.63 / 1.31 on moons / 8 gaussians (was 1.15 / 1.34)
            # at ~⅔ of the CPU time (benchmarks/bench_models.py), within the 15 s budget
            train={"steps": 3000, "batch_size": 512, "lr": 2e-3, "ema": 0.995, "lr_decay": True},
            description="64-wide MLP, 3k steps; 300 Langevin steps of ε = 0.01 from the data's moments",
        ),
        "quality": Preset(
            model={"hidden": 128, "depth": 3, "langevin_steps": 3000, "step_size": 0.002},
            train={"steps": 10000, "batch_size": 1024, "lr": 1e-3, "ema": 0.999, "lr_decay": True},
            description="128-wide MLP, 10k steps; 3000 Langevin steps of ε = 0.002",
        ),
    }

    def __init__(
        self,
        hidden: int = 64,
        depth: int = 3,
        activation: Activation = "silu",
        langevin_steps: int = 2000,
        step_size: float = 0.004,
        init: InitKind = "gaussian",
    ) -> None:
        super().__init__()
        check_model_size(hidden=hidden, depth=depth)
        if not (1 <= langevin_steps <= 100_000):
            raise ValueError("langevin_steps must be in [1, 100000]")
        if not (0 < step_size <= 1.0):
            raise ValueError("step_size must be in (0, 1]")
        if init not in INIT_KINDS:
            raise ValueError("init must be 'gaussian', 'box' or 'far'")
        self.net = MLP(2, 2, hidden=hidden, depth=depth, activation=activation)
        self.langevin_steps = int(langevin_steps)
        self.step_size = float(step_size)
        self.init = init
        # running statistics of the training data (persistent: they travel with checkpoints)
        self.register_buffer("data_lo", torch.full((2,), -4.0))
        self.register_buffer("data_hi", torch.full((2,), 4.0))
        self.register_buffer("data_mean", torch.zeros(2))
        self.register_buffer("data_m2", torch.ones(2))
        self.register_buffer("data_count", torch.zeros(()))

    # -- the score and its objective -------------------------------------------------------
    def score(self, x: Tensor, level: Tensor | float | None = None) -> Tensor:
        """s_θ(x) ``(N, 2)`` (no time: ``level`` is ignored; score matching fits p itself)."""
        return self.net(x)

    def marginal_at(self, level: float | None = None) -> tuple[float, float]:
        """(a, s) of the law this score is for, a·x₀ + s·ε: p itself, (1, 0), at every level."""
        return 1.0, 0.0

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Hyvärinen's objective (exact divergence): deterministic, ``generator`` is unused."""
        return hyvarinen_loss(self.net, x)

    def train_step(
        self,
        x: Tensor,
        optimizers: list[torch.optim.Optimizer],
        step: int,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        self._update_data_stats(x)
        return super().train_step(x, optimizers, step, generator=generator)

    @torch.no_grad()
    def _update_data_stats(self, x: Tensor) -> None:
        """Bounding box and Chan/Welford running mean & variance (no host sync)."""
        first = self.data_count == 0
        lo, hi = x.min(0).values, x.max(0).values
        self.data_lo.copy_(torch.where(first, lo, torch.minimum(self.data_lo, lo)))
        self.data_hi.copy_(torch.where(first, hi, torch.maximum(self.data_hi, hi)))
        n_a, n_b = self.data_count, float(x.shape[0])
        mean_b = x.mean(0)
        m2_b = ((x - mean_b) ** 2).sum(0)
        delta = mean_b - self.data_mean
        tot = n_a + n_b
        self.data_mean.add_(delta * n_b / tot)
        self.data_m2.copy_(
            torch.where(first, m2_b, self.data_m2 + m2_b + delta**2 * n_a * n_b / tot)
        )
        self.data_count.add_(n_b)

    @property
    def data_std(self) -> Tensor:
        n = self.data_count.clamp(min=2.0)
        return torch.where(
            self.data_count > 1, (self.data_m2 / (n - 1)).sqrt(), torch.ones_like(self.data_m2)
        )

    # -- sampling ---------------------------------------------------------------------------
    def init_points(
        self, n: int, kind: InitKind | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` initial Langevin states on the CPU (see ``init_points``), drawn with
        ``generator`` on its own device."""
        stats = [
            b.detach().float().cpu()
            for b in (self.data_lo, self.data_hi, self.data_mean, self.data_std)
        ]
        return init_points(n, kind or self.init, *stats, generator=generator)

    def sampling_score(self, dtype: torch.dtype | None = None) -> Callable[[Tensor], Tensor]:
        """``score`` for the Langevin sampler, from the current weights: the network evaluated by
        ``FastMLP`` (cache-sized chunks, in place activations), float32 by default: unlike the
        time-conditioned families, bf16 hidden layers measurably worsen the samples here (the
        chain's stationary law is set by the score's small systematic error: SW/floor on
        8 gaussians 1.49 -> 1.72, mean of 4 seeds), so ``sampling_dtype`` is not used.
        A ``score`` set on the instance (e.g. an exact score for a side-by-side demo) is used as is."""
        if "score" in self.__dict__:
            return self.__dict__["score"]
        return FastMLP.for_sampling(
            self.net, self.device, torch.float32 if dtype is None else dtype
        )

    def langevin_chains(
        self,
        x0: Tensor,
        n_steps: int | None = None,
        step_size: float | None = None,
        num_frames: int = 60,
        generator: torch.Generator | None = None,
    ) -> Trajectory:
        """Langevin MC with the learned score from ``x0 (N, 2)``: frames in generation order."""
        n_steps = self.langevin_steps if n_steps is None else int(n_steps)
        return langevin(
            self.sampling_score(),
            x0.to(self.device),
            self.step_size if step_size is None else float(step_size),
            n_steps,
            generator=generator,
            record_every=record_every_for(n_steps, num_frames),
        )

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        x0 = self.init_points(n, generator=generator)
        return self.langevin_chains(x0, num_frames=0, generator=generator).xs[-1]

    @torch.no_grad()
    def trajectory(
        self, n: int, num_frames: int = 60, *, generator: torch.Generator | None = None
    ) -> Trajectory:
        x0 = self.init_points(n, generator=generator)
        return self.langevin_chains(x0, num_frames=num_frames, generator=generator)
