"""Metropolis-adjusted Langevin (MALA): the lecture's Langevin step as a proposal, corrected to
leave p exactly invariant (lecture 4-1 appendix: the unadjusted chain satisfies detailed balance
only up to O(ε), so its equilibrium is p only as ε → 0).

Proposal (the lecture's step, ``genlib.samplers.langevin``):

    y = x + ε ∇log p(x) + √(2ε) z,      q(y|x) = N(y; x + ε ∇log p(x), 2ε I)

accepted with probability min(1, p(y) q(x|y) / (p(x) q(y|x))), else the chain stays at x.
``adjust=False`` always accepts: the unadjusted Langevin algorithm (ULA) with the SAME proposals,
so the two chains differ only by the correction. ``step_size`` may be one float or a column
``(N, 1)`` (one ε per chain: several step sizes in one batch). Takes functions, never models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from genlib.rng import rand, randn_like

__all__ = ["LogProbFn", "MALARun", "mala_step", "mala", "MAX_MALA_STEPS"]

LogProbFn = Callable[[Tensor], Tensor]  # x (N, 2) -> log p(x) (N,) (up to a constant)
MAX_MALA_STEPS = 100_000


def _log_q(y: Tensor, x: Tensor, score_x: Tensor, eps: Tensor) -> Tensor:
    """log q(y|x) up to a constant shared by both directions: −‖y − x − ε s(x)‖²/(4ε): ``(N,)``."""
    return -((y - x - eps * score_x) ** 2).sum(-1) / (4.0 * eps[:, 0])


def mala_step(
    x: Tensor,
    log_p: Tensor,
    score: Tensor,
    log_prob_fn: LogProbFn,
    score_fn: Callable[[Tensor], Tensor],
    eps: Tensor,
    z: Tensor,
    u: Tensor,
    adjust: bool = True,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One step from ``x (N, 2)`` with its ``log_p (N,)`` and ``score (N, 2)``, ``eps (N, 1)``,
    proposal noise ``z (N, 2)`` and uniforms ``u (N,)``: the new ``(x, log_p, score, accepted)``
    (``accepted`` a bool ``(N,)``; all True when ``adjust`` is False)."""
    y = x + eps * score + torch.sqrt(2.0 * eps) * z  # the lecture's Langevin step
    score_y = score_fn(y)
    if not adjust:
        ones = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        return y, log_p, score_y, ones
    log_p_y = log_prob_fn(y)
    log_alpha = log_p_y + _log_q(x, y, score_y, eps) - log_p - _log_q(y, x, score, eps)
    acc = torch.log(u) < log_alpha  # NaN proposals are rejected
    keep = acc[:, None]
    return (
        torch.where(keep, y, x),
        torch.where(acc, log_p_y, log_p),
        torch.where(keep, score_y, score),
        acc,
    )


@dataclass(frozen=True)
class MALARun:
    """The recorded states ``xs (F, N, 2)`` at ``steps (F,)`` and the acceptance rate of each
    chain ``acceptance (N,)`` (1 for ULA)."""

    xs: Tensor
    steps: list[int]
    acceptance: Tensor


@torch.no_grad()
def mala(
    log_prob_fn: LogProbFn,
    score_fn: Callable[[Tensor], Tensor],
    x0: Tensor,
    step_size: float | Tensor,
    n_steps: int,
    generator: torch.Generator | None = None,
    record: list[int] | None = None,
    adjust: bool = True,
) -> MALARun:
    """MALA (``adjust=True``) or ULA (``adjust=False``) from ``x0 (N, 2)`` for ``n_steps`` steps of
    ``step_size`` (a float or ``(N, 1)``), recording the states after the steps listed in ``record``
    (default: only the last; 0 is the start)."""
    if not (0 <= n_steps <= MAX_MALA_STEPS):
        raise ValueError(f"MALA steps must be in [0, {MAX_MALA_STEPS}]")
    n = x0.shape[0]
    eps = torch.as_tensor(step_size, dtype=x0.dtype, device=x0.device)
    eps = eps.reshape(-1, 1).expand(n, 1) if eps.numel() > 1 else eps.reshape(1, 1).expand(n, 1)
    if not bool(torch.isfinite(eps).all()) or bool((eps <= 0).any()):
        raise ValueError("the MALA step sizes must be positive numbers")
    keep = set([n_steps] if record is None else [int(r) for r in record])
    x = x0.clone()
    log_p = log_prob_fn(x) if adjust else torch.zeros(n, dtype=x.dtype, device=x.device)
    score = score_fn(x)
    accepted = torch.zeros(n, dtype=torch.float64, device=x.device)
    frames, steps = ([x.clone()], [0]) if 0 in keep else ([], [])
    for step in range(1, n_steps + 1):
        z = randn_like(x, generator)
        u = rand(n, generator=generator, device=x.device, dtype=x.dtype)
        x, log_p, score, acc = mala_step(x, log_p, score, log_prob_fn, score_fn, eps, z, u, adjust)
        accepted += acc.double()
        if step in keep:
            frames.append(x.clone())
            steps.append(step)
    rate = accepted / max(n_steps, 1) if n_steps > 0 else torch.ones(n, dtype=torch.float64)
    xs = torch.stack(frames) if frames else x[None].clone()
    return MALARun(xs, steps if frames else [n_steps], rate)
