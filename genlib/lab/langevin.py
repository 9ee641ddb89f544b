"""Langevin demos of the score pages (lecture 4-1, 4-2): chains with the learned and the exact
score from the same initial states and the same noise, and plain vs annealed Langevin.

- ``langevin_demo``: the lecture's warning made visible: s_θ is trained only where the data are,
  so chains started far away (``init="far"``) follow an untrained field, while the same chains with
  the exact ∇ log p reach the target.
- ``compare_plain_annealed``: plain Langevin with the score at the smallest noise vs annealed
  Langevin over a σ ladder (Song & Ermon's far-mixture demo), with any noise-conditional score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.models.score_matching import InitKind, ScoreMatching
from genlib.samplers.langevin import (
    NoiseScoreFn,
    annealed_langevin,
    langevin,
    record_every_for,
)
from genlib.trajectory import Trajectory

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "LangevinDemo",
    "langevin_demo",
    "trained_langevin_demo",
    "LangevinComparison",
    "compare_plain_annealed",
    "MAX_CHAINS",
    "MAX_DEMO_STEPS",
    "STEP_SIZE_CHOICES",
    "STEP_COUNT_CHOICES",
]

MAX_CHAINS = 5000  # particles per demo call from a page
MAX_DEMO_STEPS = 5000  # Langevin steps per demo call
#: the Langevin step sizes ε and step counts a page offers
STEP_SIZE_CHOICES = (0.0005, 0.001, 0.002, 0.004, 0.005, 0.01, 0.02, 0.05)
STEP_COUNT_CHOICES = (50, 100, 200, 500, 1000, 1500, 2000, 3000, 5000)


@dataclass(frozen=True)
class LangevinDemo:
    """Langevin chains from the same initial states and noise with the learned score
    (``learned``) and with the exact ∇ log p (``exact``): CPU trajectories in generation order."""

    learned: Trajectory
    exact: Trajectory

    @property
    def start_bounds(self) -> tuple[float, float, float, float]:
        """The box of the initial states ``(x0, x1, y0, y1)`` (to frame a picture of the chains)."""
        x = self.learned.xs[0]
        lo, hi = x.min(0).values, x.max(0).values
        return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


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
    """Start ``n`` chains from ``init`` (the model's data statistics: ``"far"`` is mostly where no
    data were seen) and run Langevin MC with s_θ and with the exact ∇ log p, side by side. Both
    runs draw the same noise (two generators seeded ``seed + 1``)."""
    n = int(min(max(n, 1), MAX_CHAINS))
    n_steps = model.langevin_steps if n_steps is None else int(min(max(n_steps, 1), MAX_DEMO_STEPS))
    step = model.step_size if step_size is None else float(step_size)
    x0 = model.init_points(n, init, generator=make_generator(seed))
    learned = model.langevin_chains(
        x0, n_steps, step, num_frames, generator=make_generator(seed + 1)
    )
    exact = langevin(
        target.score,
        x0,
        step,
        n_steps,
        generator=make_generator(seed + 1),
        record_every=record_every_for(n_steps, num_frames),
    )
    return LangevinDemo(learned.cpu(), exact.cpu())


def trained_langevin_demo(
    trained: Trained,
    init: InitKind = "far",
    n: int = 1000,
    n_steps: int | None = None,
    step_size: float | None = None,
    seed: int = 0,
) -> LangevinDemo:
    """``langevin_demo`` of a trained score-matching result on its own target (60 frames)."""
    return langevin_demo(
        trained.model, trained.target, init, n, n_steps, step_size, num_frames=60, seed=seed
    )


@dataclass(frozen=True)
class LangevinComparison:
    """Plain Langevin with the score at σ_L vs annealed Langevin over the ladder, from the same
    initial states: their trajectories (``plain`` labelled by step, ``annealed`` by σ)."""

    plain: Trajectory
    annealed: Trajectory

    @property
    def plain_samples(self) -> Tensor:
        return self.plain.xs[-1]

    @property
    def annealed_samples(self) -> Tensor:
        return self.annealed.xs[-1]

    def cpu(self) -> LangevinComparison:
        return LangevinComparison(self.plain.cpu(), self.annealed.cpu())


@torch.no_grad()
def compare_plain_annealed(
    score_fn: NoiseScoreFn,
    x0: Tensor,
    sigmas: list[float],
    step_ratio: float = 0.1,
    steps_per_level: int = 100,
    plain_step: float = 0.05,
    num_frames: int = 40,
    generator: torch.Generator | None = None,
) -> LangevinComparison:
    """Run both samplers from ``x0 (N, 2)`` with ``score_fn(x, σ)`` (learned or analytic).

    Plain Langevin: the lecture's x + ε s(x, σ_L) + √(2ε) z with ε = ``plain_step`` (a step on
    the scale of the data, so chains do reach the modes) for the same number of score
    evaluations L·T; annealed: Song & Ermon with ε = step_ratio·σ_L², no final denoising."""
    if not (0 < plain_step <= 10):
        raise ValueError("the plain Langevin step must be in (0, 10]")
    sigma_L = sigmas[-1]
    n_steps = len(sigmas) * steps_per_level
    plain = langevin(
        lambda x: score_fn(x, sigma_L),
        x0,
        plain_step,
        n_steps,
        generator=generator,
        record_every=record_every_for(n_steps, max(num_frames, 2)),
    )
    annealed = annealed_langevin(
        score_fn,
        x0,
        sigmas,
        step_ratio * sigma_L**2,
        steps_per_level,
        generator=generator,
        num_frames=num_frames,
        denoise=False,
    )
    return LangevinComparison(plain, annealed)
