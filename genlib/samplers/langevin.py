"""Langevin Monte Carlo (lecture 4-1) and annealed Langevin dynamics (lecture 4-2, Song & Ermon 2019).

Both take a score FUNCTION, never a model, so they run the same with an analytic score
(``target.score``) as with a network:

    x_t = x_{t-1} + ε ∇_x log p(x_{t-1}) + √(2ε) z_t,   z_t ~ N(0, I)        (lecture 4-1)

and, for a noise ladder σ_1 > … > σ_L with T steps per level (Song & Ermon, Algorithm 1),

    α_i = ε σ_i² / σ_L²,   x ← x + (α_i / 2) s(x, σ_i) + √α_i z

which is the lecture's Langevin step with step size α_i / 2. Frames are recorded every
``record_every`` steps (never every step), so sampling stays whole-batch tensor code with no host
sync inside the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from genlib.rng import randn_like
from genlib.trajectory import Trajectory

__all__ = [
    "ScoreFn",
    "NoiseScoreFn",
    "langevin_step",
    "langevin",
    "langevin_record_steps",
    "record_every_for",
    "annealed_langevin",
    "annealed_record_points",
    "MAX_LANGEVIN_STEPS",
]

ScoreFn = Callable[[Tensor], Tensor]  # x (N, 2) -> ∇ log p (N, 2)
NoiseScoreFn = Callable[[Tensor, float], Tensor]  # x (N, 2), σ -> ∇ log p_σ (N, 2)

MAX_LANGEVIN_STEPS = 200_000  # bound on the total number of score evaluations of one call


def langevin_step(x: Tensor, score: Tensor, step_size: float | Tensor, z: Tensor) -> Tensor:
    """One Langevin update x + ε s + √(2ε) z (all ``(N, 2)``; ε a float or a 0-dim tensor, which
    stays on the device: no host sync)."""
    if isinstance(step_size, Tensor):
        return x + step_size * score + (2.0 * step_size).sqrt() * z
    return x + step_size * score + math.sqrt(2.0 * step_size) * z


def langevin_record_steps(n_steps: int, record_every: int) -> list[int]:
    """The step indices ``langevin`` records: 0, k, 2k, … and always ``n_steps``
    (``record_every <= 0``: only the start and the end)."""
    if record_every <= 0:
        return [0, n_steps] if n_steps > 0 else [0]
    steps = list(range(0, n_steps + 1, record_every))
    if steps[-1] != n_steps:
        steps.append(n_steps)
    return steps


def record_every_for(n_steps: int, num_frames: int) -> int:
    """The ``record_every`` that gives about ``num_frames`` frames over ``n_steps`` Langevin steps
    (0 when ``num_frames <= 1``: only the start and the end are kept)."""
    if num_frames <= 1:
        return 0
    return max(1, n_steps // max(num_frames - 1, 1))


@torch.no_grad()
def langevin(
    score_fn: ScoreFn,
    x0: Tensor,
    step_size: float,
    n_steps: int,
    generator: torch.Generator | None = None,
    record_every: int = 0,
) -> Trajectory:
    """Unadjusted Langevin MC from ``x0 (N, 2)``: a ``Trajectory`` of the frames ``(F, N, 2)``
    recorded at ``langevin_record_steps(n_steps, record_every)`` (``ts``, labelled
    ``"Langevin step"``; frame 0 is ``x0``, the last frame the final state)."""
    if not (step_size > 0 and math.isfinite(step_size)):
        raise ValueError("Langevin step size must be a positive number")
    if not (0 <= n_steps <= MAX_LANGEVIN_STEPS):
        raise ValueError(f"Langevin steps must be in [0, {MAX_LANGEVIN_STEPS}]")
    keep = set(langevin_record_steps(n_steps, record_every))
    x = x0.clone()
    frames = [x.clone()]  # (N, 2) each
    for step in range(1, n_steps + 1):
        x = langevin_step(x, score_fn(x), step_size, randn_like(x, generator))
        if step in keep:
            frames.append(x.clone())
    ts = torch.tensor(langevin_record_steps(n_steps, record_every), dtype=torch.float32)
    return Trajectory(torch.stack(frames), ts, "Langevin step")  # xs (F, N, 2)


def _as_sigma_list(sigmas: Tensor | Sequence[float]) -> list[float]:
    vals = [float(s) for s in (sigmas.tolist() if isinstance(sigmas, Tensor) else sigmas)]
    if not vals:
        raise ValueError("the noise ladder needs at least one σ")
    if any(not (s > 0 and math.isfinite(s)) for s in vals):
        raise ValueError("every σ of the noise ladder must be positive")
    if any(a <= b for a, b in zip(vals, vals[1:], strict=False)):
        raise ValueError("the noise ladder must be strictly decreasing: σ_1 > σ_2 > … > σ_L")
    return vals


def annealed_record_points(num_levels: int, steps_per_level: int, num_frames: int) -> list[int]:
    """Global step indices (0 .. L·T) at which ``annealed_langevin`` records a frame: the start
    and ``num_frames − 1`` more (at least the final step). The ends of the levels come first (all
    of them when the budget allows, else an even subset), then evenly spread steps."""
    total = num_levels * steps_per_level
    budget = max(num_frames - 1, 1)  # frames after the start
    ends = [(i + 1) * steps_per_level for i in range(num_levels)]
    if budget <= num_levels:
        pick = {round(k * (num_levels - 1) / max(budget - 1, 1)) for k in range(budget)}
        chosen = {ends[i] for i in pick} | {total}
        return sorted({0} | set(sorted(chosen)[-budget:]))
    extra = budget - num_levels
    spread = {round(k * total / (extra + 1)) for k in range(1, extra + 1)}
    return sorted({0} | set(ends) | spread)


@torch.no_grad()
def annealed_langevin(
    score_fn: NoiseScoreFn,
    x0: Tensor,
    sigmas: Tensor | Sequence[float],
    eps: float,
    steps_per_level: int,
    generator: torch.Generator | None = None,
    num_frames: int = 0,
    denoise: bool = True,
) -> Trajectory:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1) from ``x0 (N, 2)``.

    For each σ_i of the strictly decreasing ladder ``sigmas``, ``steps_per_level`` steps of
    x ← x + (α_i/2) s(x, σ_i) + √α_i z with α_i = ε σ_i²/σ_L². ``denoise``: finish with the
    Tweedie step x + σ_L² s(x, σ_L) (the posterior mean E[x_0 | x_σL], removing the last noise).

    Returns a ``Trajectory`` with ``xs (F, N, 2)`` and ``ts (F,)`` = the σ of each frame
    (``time_label`` ``"σ"``): frame 0 is ``x0`` (labelled σ_1), then the states at
    ``annealed_record_points`` labelled by the level they were sampled at, and, with ``denoise``,
    one final denoised frame labelled 0.
    """
    ladder = _as_sigma_list(sigmas)
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError("the annealed Langevin step ε must be positive")
    if steps_per_level < 1 or len(ladder) * steps_per_level > MAX_LANGEVIN_STEPS:
        raise ValueError(f"need 1 <= L·T <= {MAX_LANGEVIN_STEPS} annealed Langevin steps")
    keep = set(annealed_record_points(len(ladder), steps_per_level, num_frames))
    sigma_L = ladder[-1]
    x = x0.clone()
    frames, labels = [x.clone()], [ladder[0]]
    step = 0
    for sigma in ladder:
        alpha = eps * (sigma / sigma_L) ** 2
        for _ in range(steps_per_level):
            # lecture's step with ε = α/2: x + (α/2) s + √α z
            x = langevin_step(x, score_fn(x, sigma), 0.5 * alpha, randn_like(x, generator))
            step += 1
            if step in keep:
                frames.append(x.clone())
                labels.append(sigma)
    if denoise:
        x = x + sigma_L**2 * score_fn(x, sigma_L)
        frames.append(x.clone())
        labels.append(0.0)
    return Trajectory(torch.stack(frames), torch.tensor(labels, dtype=torch.float32), "σ")
