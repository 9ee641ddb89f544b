"""The KL objectives shared by every density model fitted to a target (lecture 2-5, 訓練の指針):

    (a) forward KL   D_KL(p‖q_θ) + S(p) = −⟨log q_θ(x)⟩_p              (samples of p, density of q)
    (b) reverse KL   D_KL(q_θ‖p)        = ⟨log q_θ(y) − log p(y)⟩_{q_θ}  (samples of q, density of p)

(b) is estimated on reparametrised samples y = f_θ(ε), so its θ-gradient runs through log p(y):
``target_log_prob(target)`` makes any ``Target2D`` differentiable in y with its exact ``score`` as
the gradient (targets evaluated by 1D quadrature, such as moons, are not differentiable by
autograd, but every target has an exact score). Used by the normalizing flow
(``genlib.models.flow``, ``objective="reverse"``) and by the KL page's q families (``genlib.kl``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["LogProbFn", "TargetLogProb", "target_log_prob", "forward_kl", "reverse_kl"]

#: a log density ``(N, 2) -> (N,)``
LogProbFn = Callable[[Tensor], Tensor]


class TargetLogProb(torch.autograd.Function):
    """``log p(y)`` with the target's exact score ``∇_y log p(y)`` as its gradient:
    ``TargetLogProb.apply(y (N, 2), target) -> (N,)``.

    Targets keep their tables on the CPU, so both are evaluated there and the results come back
    on ``y``'s device and dtype (a reverse-KL step on a GPU makes one round trip)."""

    @staticmethod
    def forward(ctx: Any, y: Tensor, target: Any) -> Tensor:  # type: ignore[override]
        ctx.target = target
        ctx.save_for_backward(y)
        with torch.no_grad():
            return target.log_prob(y.detach().cpu()).to(device=y.device, dtype=y.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        score = ctx.target.score(y.detach().cpu()).to(device=y.device, dtype=y.dtype)  # (N, 2)
        return grad.unsqueeze(-1) * score, None


def target_log_prob(target: Any) -> LogProbFn:
    """``y -> log p(y)`` for a ``Target2D``, on any device, differentiable in ``y`` through the
    target's exact ``score`` (what the reverse-KL gradient ∇_θ log p(f_θ(ε)) needs)."""
    return lambda y: TargetLogProb.apply(y, target)


def forward_kl(log_q: LogProbFn, x: Tensor) -> Tensor:
    """(a) −⟨log q_θ(x)⟩ over samples ``x (N, 2)`` of p = D_KL(p‖q_θ) + S(p): a scalar."""
    return -log_q(x).mean()


def reverse_kl(y: Tensor, log_q: Tensor, log_p: LogProbFn, weights: Tensor | None = None) -> Tensor:
    """(b) D_KL(q_θ‖p) ≈ ⟨log q_θ(y) − log p(y)⟩ on reparametrised samples of q_θ: a scalar.

    ``y (n, 2)`` with ``log_q (n,)`` (their log density under q_θ, differentiable in θ); or,
    stratified over the K components of a mixture q_θ = Σ_k w_k q_k, ``y (K, m, 2)`` (m draws of
    each component), ``log_q (K, m)`` (log q_θ, the whole mixture's density) and ``weights (K,)``:
    then ⟨f⟩_q = Σ_k w_k ⟨f⟩_{q_k}, so the weights get exact gradients. An unnormalised ``log_p``
    shifts the value by log Z only."""
    diff = log_q - log_p(y.reshape(-1, 2)).reshape(log_q.shape)
    if weights is None:
        return diff.mean()
    return (weights * diff.mean(-1)).sum()
