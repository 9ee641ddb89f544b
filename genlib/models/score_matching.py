"""Score matching + Langevin MC (lecture 4-1, Hyvärinen 2005).

A network s_θ(x) ≈ ∇_x log p(x) is fitted with Hyvärinen's objective, written as in the lecture

    ⟨(s_θ(x) − ∇_x log p(x))²⟩_p = ⟨ s_θ(x)² + 2 ∇_x·s_θ(x) ⟩_p + const,

i.e. twice the usual ½‖s‖² + ∇·s (same minimiser). The divergence is EXACT: in 2D two autograd
passes (∂s_1/∂x_1 + ∂s_2/∂x_2, ``create_graph=True`` so the loss can be differentiated).
Samples come from Langevin MC x ← x + ε s_θ(x) + √(2ε) z started from a broad initial
distribution — and that is where the lecture's warning bites: s_θ is only trained where the data
are, so chains that start far away follow an untrained field.

The module also holds the score-field helpers shared by the diffusion pages (NCSN, DDPM, SDE):
``field_grid`` and ``compare_score_fields`` evaluate a learned and a true field on a grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor

from genlib.distributions.base import Bounds, Target2D
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.nn import MLP, Activation
from genlib.samplers.langevin import langevin, langevin_record_steps

__all__ = [
    "ScoreMatching",
    "hyvarinen_terms",
    "hyvarinen_loss",
    "InitKind",
    "init_points",
    "field_grid",
    "ScoreFieldComparison",
    "compare_score_fields",
    "expand_bounds",
    "learned_vs_true",
    "LangevinDemo",
    "langevin_demo",
    "MAX_GRID",
    "MAX_CHAINS",
    "MAX_DEMO_STEPS",
]

InitKind = Literal["gaussian", "box", "far"]
MAX_GRID = 80  # grid points per axis for field pictures
MAX_CHAINS = 5000  # particles per sampling call from a page
MAX_DEMO_STEPS = 5000  # Langevin steps per page call


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


def expand_bounds(bounds: Bounds, factor: float) -> Bounds:
    """``bounds`` scaled by ``factor`` about their centre."""
    x0, x1, y0, y1 = bounds
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return (cx - factor * hx, cx + factor * hx, cy - factor * hy, cy + factor * hy)


def field_grid(bounds: Bounds, grid_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """A ``grid_size × grid_size`` grid over ``bounds``: ``xs (G,), ys (G,), points (G*G, 2)``
    (row-major: point k = (xs[k % G], ys[k // G]))."""
    g = int(min(max(grid_size, 2), MAX_GRID))
    xs = torch.linspace(bounds[0], bounds[1], g)
    ys = torch.linspace(bounds[2], bounds[3], g)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return xs, ys, torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


@dataclass(frozen=True)
class ScoreFieldComparison:
    """A learned and a true vector field on one grid (CPU tensors): ``xs, ys (G,)``,
    ``learned, true (G, G, 2)`` indexed [iy, ix], ``error (G, G)`` = ‖learned − true‖, and the
    true log-density ``log_p (G, G)`` (NaN where unavailable) for the background."""

    xs: Tensor
    ys: Tensor
    learned: Tensor
    true: Tensor
    error: Tensor
    log_p: Tensor

    @property
    def relative_error(self) -> Tensor:
        """‖learned − true‖ / (‖true‖ + 1): ``(G, G)``."""
        return self.error / (self.true.norm(dim=-1) + 1.0)


def compare_score_fields(
    learned_fn: Callable[[Tensor], Tensor],
    true_fn: Callable[[Tensor], Tensor],
    bounds: Bounds,
    grid_size: int = 25,
    log_p_fn: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | None = None,
) -> ScoreFieldComparison:
    """Evaluate ``learned_fn`` (on ``device``) and ``true_fn`` (on the CPU) over a grid."""
    xs, ys, pts = field_grid(bounds, grid_size)
    g = xs.shape[0]
    with torch.no_grad():
        learned = learned_fn(pts.to(device) if device is not None else pts).detach().float().cpu()
    true = true_fn(pts).detach().float().cpu()
    if log_p_fn is not None:
        try:
            log_p = log_p_fn(pts).detach().float().cpu().reshape(g, g)
        except NotImplementedError:
            log_p = torch.full((g, g), float("nan"))
    else:
        log_p = torch.full((g, g), float("nan"))
    learned, true = learned.reshape(g, g, 2), true.reshape(g, g, 2)
    return ScoreFieldComparison(xs, ys, learned, true, (learned - true).norm(dim=-1), log_p)


def learned_vs_true(
    model: torch.nn.Module,
    target: Target2D,
    level: float | int | None,
    bounds: Bounds | None = None,
    grid_size: int = 25,
) -> ScoreFieldComparison:
    """The model's score s_θ(x, level) against the TRUE score of the same marginal on a grid.

    ``model.marginal(level) -> (alpha, sigma)`` names the marginal the score is for: the target
    itself (1, 0) for score matching, p_σ (1, σ) for NCSN, p_t (√ᾱ_t, √(1−ᾱ_t)) for DDPM; the true
    field is ``target.score_t(x, alpha, sigma)`` (``target.score`` when sigma = 0)."""
    alpha, sigma = model.marginal(level)
    if sigma == 0.0 and alpha == 1.0:
        true_fn, log_p_fn = target.score, target.log_prob
    else:

        def true_fn(x: Tensor) -> Tensor:
            return target.score_t(x, alpha, sigma)

        def log_p_fn(x: Tensor) -> Tensor:
            return target.log_prob_t(x, alpha, sigma)

    def learned_fn(x: Tensor) -> Tensor:
        return model.score(x, level)

    return compare_score_fields(
        learned_fn,
        true_fn,
        bounds or target.bounds,
        grid_size,
        log_p_fn=log_p_fn,
        device=model.device,
    )


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
    """Initial Langevin states ``(n, 2)`` on the CPU: ``gaussian`` N(mean, diag std²) (the data's
    moments), ``box`` uniform on the data's bounding box [lo, hi], ``far`` uniform on the box
    scaled ``far_factor``× about its centre (mostly where no data were seen)."""
    if kind == "gaussian":
        return mean + std * torch.randn(n, 2, generator=generator)
    u = torch.rand(n, 2, generator=generator)
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
            model={"hidden": 64, "depth": 3, "langevin_steps": 2000, "step_size": 0.004},
            train={"steps": 3000, "batch_size": 1024, "lr": 2e-3, "ema": 0.995, "lr_decay": True},
            description="64-wide MLP, 3k steps; 2000 Langevin steps of ε = 0.004 from the data's moments",
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
        if not (1 <= langevin_steps <= 100_000):
            raise ValueError("langevin_steps must be in [1, 100000]")
        if not (0 < step_size <= 1.0):
            raise ValueError("step_size must be in (0, 1]")
        if init not in ("gaussian", "box", "far"):
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
    def score(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        """s_θ(x) ``(N, 2)`` (no time: ``t`` is ignored; score matching fits p itself, σ = 0)."""
        return self.net(x)

    def marginal(self, level: float | None = None) -> tuple[float, float]:
        """(alpha, sigma) of the distribution this score is for: p itself."""
        return 1.0, 0.0

    def loss(self, x: Tensor) -> Tensor:
        return hyvarinen_loss(self.net, x)

    def train_step(self, x: Tensor, optimizers, step: int) -> dict[str, Tensor]:
        self._update_data_stats(x)
        return super().train_step(x, optimizers, step)

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
        """``n`` initial Langevin states on the CPU (see ``init_points``)."""
        stats = [
            b.detach().float().cpu()
            for b in (self.data_lo, self.data_hi, self.data_mean, self.data_std)
        ]
        return init_points(n, kind or self.init, *stats, generator=generator)

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
        every = max(1, n_steps // max(num_frames - 1, 1)) if num_frames > 1 else 0
        xs = langevin(
            self.score,
            x0.to(self.device),
            self.step_size if step_size is None else float(step_size),
            n_steps,
            generator=_gen_for(generator, self.device),
            record_every=every,
        )
        ts = torch.tensor(langevin_record_steps(n_steps, every), dtype=torch.float32)
        return Trajectory(xs, ts, "Langevin step")

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        x0 = self.init_points(n, generator=_cpu_gen(generator))
        return self.langevin_chains(x0, num_frames=0, generator=generator).xs[-1]

    @torch.no_grad()
    def trajectory(
        self, n: int, num_frames: int = 60, *, generator: torch.Generator | None = None
    ) -> Trajectory:
        x0 = self.init_points(n, generator=_cpu_gen(generator))
        return self.langevin_chains(x0, num_frames=num_frames, generator=generator)


def _cpu_gen(generator: torch.Generator | None) -> torch.Generator | None:
    """A CPU generator derived from ``generator`` (for CPU-side initial states)."""
    if generator is None or generator.device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return torch.Generator().manual_seed(seed)


def _gen_for(generator: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """``generator`` if it lives on ``device``; else a generator on ``device`` seeded from it."""
    if generator is None or generator.device == device:
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


@dataclass(frozen=True)
class LangevinDemo:
    """Langevin chains from the same initial states with the learned and with the true score."""

    learned: Trajectory
    true: Trajectory


@torch.no_grad()
def langevin_demo(
    model: ScoreMatching,
    target: Target2D,
    init: InitKind = "far",
    n: int = 1000,
    n_steps: int | None = None,
    step_size: float | None = None,
    num_frames: int = 60,
    seed: int = 0,
) -> LangevinDemo:
    """The lecture's warning made visible: start ``n`` chains from ``init`` ("far": mostly where
    no data were seen) and run Langevin MC with s_θ and with the exact ∇ log p side by side."""
    n = int(min(max(n, 1), MAX_CHAINS))
    n_steps = model.langevin_steps if n_steps is None else int(min(max(n_steps, 1), MAX_DEMO_STEPS))
    step = model.step_size if step_size is None else float(step_size)
    g = torch.Generator().manual_seed(int(seed))
    x0 = model.init_points(n, init, generator=g)
    learned = model.langevin_chains(
        x0, n_steps, step, num_frames, generator=torch.Generator().manual_seed(seed + 1)
    )
    every = max(1, n_steps // max(num_frames - 1, 1))
    xs = langevin(
        target.score,
        x0,
        step,
        n_steps,
        generator=torch.Generator().manual_seed(seed + 1),
        record_every=every,
    )
    true = Trajectory(
        xs,
        torch.tensor(langevin_record_steps(n_steps, every), dtype=torch.float32),
        "Langevin step",
    )
    return LangevinDemo(learned.cpu(), true)
