"""Forward simulation of the noising processes, recorded at F frames (for the forward-diffusion
animation and for the Monte-Carlo checks of the closed-form marginals).

These are noising paths, not generation paths: each returns ``(frames (F, N, 2), times)`` in
FORWARD order (frame 0 = the data x_0), where a ``Trajectory`` would be in generation order.
Noise is drawn with the caller's generator on its own device (``genlib.rng``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genlib.processes.ddpm import DDPMSchedule
from genlib.processes.sde import SDE
from genlib.rng import randn_like

__all__ = [
    "simulate_ddpm_chain",
    "simulate_ve_ladder",
    "simulate_forward_sde",
    "ve_sigma_ladder",
    "frame_indices",
    "MAX_FORWARD_SDE_STEPS",
]

MAX_FORWARD_SDE_STEPS = 5000


def frame_indices(num_steps: int, num_frames: int) -> list[int]:
    """Evenly spread step indices 0..num_steps (inclusive), at most ``num_frames`` of them."""
    num_frames = max(2, min(num_frames, num_steps + 1))
    return sorted({round(i * num_steps / (num_frames - 1)) for i in range(num_frames)})


def simulate_ddpm_chain(
    x0: Tensor,
    schedule: DDPMSchedule,
    num_frames: int = 50,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, list[int]]:
    """Run x_{t-1} -> x_t = √α_t x_{t-1} + √β_t z for t = 1..T; return frames ``(F, N, 2)`` and
    the t of each frame (frame 0 is the data, t = 0)."""
    keep = frame_indices(schedule.T, num_frames)
    frames = [x0]
    x = x0
    for t in range(1, schedule.T + 1):
        x = schedule.q_step(x, t, randn_like(x, generator))
        if t in keep:
            frames.append(x)
    return torch.stack(frames), keep


def ve_sigma_ladder(sigma_min: float, sigma_max: float, L: int) -> Tensor:
    """Geometric σ_1 < ... < σ_L (NCSN's ladder), float64 ``(L,)``."""
    if not (0 < sigma_min < sigma_max):
        raise ValueError("need 0 < sigma_min < sigma_max")
    return torch.exp(
        torch.linspace(math.log(sigma_min), math.log(sigma_max), L, dtype=torch.float64)
    )


def simulate_ve_ladder(
    x0: Tensor, sigmas: Tensor, num_frames: int = 50, generator: torch.Generator | None = None
) -> tuple[Tensor, list[int]]:
    """Add independent noise up the ladder: x_i = x_{i-1} + √(σ_i² - σ_{i-1}²) z (σ_0 = 0), so that
    x_i = x_0 + σ_i ε exactly in distribution. Frames ``(F, N, 2)`` and the ladder index of each
    (0 = data; index i means σ_i)."""
    keep = frame_indices(len(sigmas), num_frames)
    frames = [x0]
    x = x0
    prev = 0.0
    for i, s in enumerate(sigmas.tolist(), start=1):
        x = x + math.sqrt(s * s - prev * prev) * randn_like(x, generator)
        prev = s
        if i in keep:
            frames.append(x)
    return torch.stack(frames), keep


def simulate_forward_sde(
    sde: SDE,
    x0: Tensor,
    steps: int = 1000,
    t_end: float = 1.0,
    generator: torch.Generator | None = None,
    num_frames: int = 2,
) -> tuple[Tensor, Tensor]:
    """Euler–Maruyama of the forward SDE x ← x + f Δt + g √Δt z from t = 0 to ``t_end``:
    frames ``(F, N, 2)`` (frame 0 = the data, the last = x(t_end)) and their times ``(F,)``."""
    if not (1 <= steps <= MAX_FORWARD_SDE_STEPS):
        raise ValueError(f"SDE steps must be in [1, {MAX_FORWARD_SDE_STEPS}]")
    ts = torch.linspace(0.0, t_end, steps + 1, dtype=torch.float64).to(x0)
    n = x0.shape[0]
    keep = set(frame_indices(steps, num_frames))
    x = x0
    frames, frame_ts = [x], [ts[0]]
    for i in range(steps):
        t = ts[i].reshape(1).expand(n)
        dt = ts[i + 1] - ts[i]
        z = randn_like(x, generator)
        x = x + sde.drift(x, t) * dt + sde.diffusion(t)[:, None] * dt.sqrt() * z
        if i + 1 in keep:
            frames.append(x)
            frame_ts.append(ts[i + 1])
    return torch.stack(frames), torch.stack(frame_ts)
