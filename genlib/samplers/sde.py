"""Reverse-time samplers of a forward SDE dx = f dt + g dw (lecture 4-4), driven by a score
function ``score_fn(x (N, 2), t (N,)) -> (N, 2)`` ≈ ∇ log p_t(x).

The λ-family. For every λ ≥ 0 the reverse-time SDE

    dx = [f(x, t) - (1 + λ²)/2 · g(t)² s(x, t)] dt + λ g(t) dw̄      (t runs from T down to 0)

has the same marginals p_t as the forward process (its Fokker–Planck equation is the forward one):
λ = 1 is Anderson's reverse SDE dx = [f - g² s] dt + g dw̄, λ = 0 the probability-flow ODE
dx = [f - ½ g² s] dt. ``reverse_sample`` integrates it with Euler–Maruyama (for λ = 0 this is the
Euler method of the PF-ODE); ``predictor_corrector`` adds Langevin corrector steps at every time.

Also ``marginal_score_fn``: the exact score ∇ log p_t of a target's diffused marginal, for samplers
driven by the true score. (The forward SDE's own simulation lives in ``genlib.processes.forward``.)
Recorded paths are ``Trajectory``s in generation order (frame 0 = prior at t = 1, ``time_label``
``"t"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genlib.distributions.base import Target2D
from genlib.processes.sde import SDE
from genlib.rng import randn_like
from genlib.samplers.langevin import langevin_step
from genlib.samplers.ode import ODEMethod, odeint, recorded_steps
from genlib.trajectory import Trajectory

__all__ = [
    "SDEScoreFn",
    "reverse_sample",
    "predictor_corrector",
    "langevin_correct",
    "pf_ode_sample",
    "marginal_score_fn",
    "MAX_SDE_STEPS",
]

SDEScoreFn = Callable[[Tensor, Tensor], Tensor]
MAX_SDE_STEPS = 5000


def _check_steps(steps: int) -> None:
    if not (1 <= steps <= MAX_SDE_STEPS):
        raise ValueError(f"SDE steps must be in [1, {MAX_SDE_STEPS}]")


def _reverse_grid(sde: SDE, steps: int, t_end: float | None, like: Tensor) -> Tensor:
    t_end = sde.eps if t_end is None else t_end
    return torch.linspace(1.0, t_end, steps + 1, dtype=torch.float64).to(like)


def langevin_correct(
    score_fn: SDEScoreFn,
    x: Tensor,
    t: Tensor,
    snr: float = 0.1,
    n_steps: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Langevin corrector at fixed t (Song et al. 2021, Alg. 4/5): the lecture's Langevin step
    x ← x + ε s + √(2ε) z (``genlib.samplers.langevin.langevin_step``) with the step
    ε = 2 (snr ‖z‖ / ‖s‖)² set from batch-mean norms, so the signal-to-noise ratio of the update is
    ``snr`` whatever the scale of p_t. The step stays a 0-dim tensor (no host sync per step)."""
    for _ in range(n_steps):
        s = score_fn(x, t)
        z = randn_like(x, generator)
        s_norm = s.norm(dim=-1).mean()
        z_norm = z.norm(dim=-1).mean()
        eps = 2 * (snr * z_norm / s_norm.clamp_min(1e-12)) ** 2  # () tensor
        x = langevin_step(x, s, eps, z)
    return x


def predictor_corrector(
    sde: SDE,
    score_fn: SDEScoreFn,
    x: Tensor,
    steps: int = 500,
    lam: float = 1.0,
    snr: float = 0.1,
    corrector_steps: int = 1,
    generator: torch.Generator | None = None,
    num_frames: int = 0,
    t_end: float | None = None,
    denoise: bool = True,
) -> Tensor | Trajectory:
    """Reverse sampling from ``x`` ~ p_1 down to ``t_end`` (default ``sde.eps``) with ``steps``
    Euler–Maruyama steps of the λ-family and ``corrector_steps`` Langevin corrector steps before
    each predictor step (0: plain predictor). ``denoise`` drops the noise of the last step (its mean
    is the sample, as in Song et al.). Returns ``(N, 2)`` or a ``Trajectory`` of ``num_frames``."""
    _check_steps(steps)
    if lam < 0 or not math.isfinite(lam):
        raise ValueError("lambda must be a finite number >= 0")
    ts = _reverse_grid(sde, steps, t_end, x)
    n = x.shape[0]
    keep = recorded_steps(steps, num_frames)
    frames, frame_ts = [x], [ts[0]]
    coef = 0.5 * (1.0 + lam * lam)
    for i in range(steps):
        t = ts[i].reshape(1).expand(n)  # (N,)
        dt = ts[i] - ts[i + 1]  # > 0: we step backwards in t
        if corrector_steps > 0:
            x = langevin_correct(score_fn, x, t, snr, corrector_steps, generator)
        g = sde.diffusion(t)[:, None]  # (N, 1)
        drift = sde.drift(x, t) - coef * g**2 * score_fn(x, t)  # (N, 2)
        x = x - drift * dt
        last = i == steps - 1
        if lam > 0 and not (last and denoise):
            z = randn_like(x, generator)
            x = x + lam * g * dt.sqrt() * z
        if i + 1 in keep:
            frames.append(x)
            frame_ts.append(ts[i + 1])
    if num_frames >= 2:
        return Trajectory(torch.stack(frames), torch.stack(frame_ts), "t")
    return x


def reverse_sample(
    sde: SDE,
    score_fn: SDEScoreFn,
    x: Tensor,
    steps: int = 500,
    lam: float = 1.0,
    generator: torch.Generator | None = None,
    num_frames: int = 0,
    t_end: float | None = None,
    denoise: bool = True,
) -> Tensor | Trajectory:
    """Euler–Maruyama integration of the λ-family of reverse SDEs (λ = 1: reverse SDE, λ = 0:
    PF-ODE by Euler), from ``x`` at t = 1 down to ``t_end``."""
    return predictor_corrector(
        sde, score_fn, x, steps, lam, 0.0, 0, generator, num_frames, t_end, denoise
    )


def pf_ode_sample(
    sde: SDE,
    score_fn: SDEScoreFn,
    x: Tensor,
    steps: int = 100,
    method: ODEMethod = "heun",
    num_frames: int = 0,
    t_end: float | None = None,
) -> Tensor | Trajectory:
    """Integrate the probability-flow ODE dx/dt = f - ½ g² s from t = 1 down to ``t_end`` with a
    higher-order fixed-step solver (``genlib.samplers.ode``). Returns ``(N, 2)`` or a ``Trajectory``."""
    t_end = sde.eps if t_end is None else t_end
    return odeint(
        lambda y, t: sde.pf_ode_drift(y, t, score_fn(y, t)),
        x,
        1.0,
        t_end,
        steps,
        method,
        num_frames,
        time_label="t",
    )


def marginal_score_fn(target: Target2D, sde: SDE) -> SDEScoreFn:
    """The exact score ∇ log p_t(x) of ``target`` diffused by ``sde`` (p_t = law of a(t) x_0 + s(t) ε),
    as a score function. Times in a batch may differ (grouped by value)."""

    def score(x: Tensor, t: Tensor) -> Tensor:
        t = t.reshape(-1)
        if t.numel() == 1 or t.stride(0) == 0 or bool((t == t[0]).all()):
            a, s = sde.marginal(t[:1])
            return target.score_t(x, a[0], s[0])
        out = torch.empty_like(x)
        for tv in torch.unique(t):
            m = t == tv
            a, s = sde.marginal(tv.reshape(1))
            out[m] = target.score_t(x[m], a[0], s[0])
        return out

    return score
