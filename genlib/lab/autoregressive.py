"""Autoregressive-model experiments behind the page (lecture 2-4): the two factors q_θ(x¹) and
q_θ(x² | x¹ = c) against the *true* p(x¹) and p(x² | x¹ = c) of the target, computed from its
exact density by 1D quadrature over x² (``FactorCurves``).

Pure torch (no streamlit, no plotly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.geometry import Bounds, grid_tensor
from genlib.models.autoregressive import Autoregressive

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "HIDDEN_CHOICES",
    "SLICE_POINTS",
    "slice_range",
    "trained_log_q",
    "trained_marginal",
    "trained_conditional",
    "sequential_frames",
    "target_marginal_x1",
    "target_conditional_x2",
    "model_marginal_x1",
    "model_conditional_x2",
    "FactorCurves",
    "marginal_curves",
    "conditional_curves",
    "MAX_QUAD",
]

MAX_QUAD = 4096  # quadrature nodes per 1D integral
HIDDEN_CHOICES = (16, 32, 64, 128, 256)  # widths of the conditioner network the page offers
SLICE_POINTS = 241  # points of the 1D curves


def _x2_nodes(
    target: Target2D, x2_range: tuple[float, float] | None, n: int
) -> tuple[Tensor, float]:
    """Quadrature nodes over x² (default: the target's y-range padded by 50 % on each side)."""
    if x2_range is None:
        lo, hi = float(target.bounds[2]), float(target.bounds[3])
        pad = 0.5 * (hi - lo)
        x2_range = (lo - pad, hi + pad)
    n = int(min(max(n, 16), MAX_QUAD))
    x2 = torch.linspace(x2_range[0], x2_range[1], n)  # (Q,)
    return x2, float(x2[1] - x2[0])


def target_marginal_x1(
    target: Target2D,
    x1: Tensor,
    x2_range: tuple[float, float] | None = None,
    n_quad: int = 1024,
) -> Tensor:
    """p(x¹) = ∫ p(x¹, x²) dx² by trapezoidal quadrature over x² (exact target density):
    ``x1 (M,)`` -> (M,) densities. The x² range defaults to the target's bounds padded by 50%."""
    x2, dx = _x2_nodes(target, x2_range, n_quad)
    m = x1.shape[0]
    pts = torch.stack([x1.cpu().repeat_interleave(x2.shape[0]), x2.repeat(m)], 1)  # (M·Q, 2)
    dens = torch.cat([target.log_prob(c).double().exp() for c in torch.split(pts, 65536)])
    return torch.trapezoid(dens.reshape(m, -1), dx=dx, dim=1).float()


def target_conditional_x2(
    target: Target2D,
    c: float,
    x2: Tensor,
    x2_range: tuple[float, float] | None = None,
    n_quad: int = 1024,
) -> Tensor:
    """p(x² | x¹ = c) = p(c, x²) / p(c) on the points ``x2 (M,)``: (M,) densities (zero when
    p(c) = 0, i.e. x¹ = c is outside the support)."""
    x2 = x2.cpu()
    joint = target.log_prob(torch.stack([torch.full_like(x2, float(c)), x2], 1)).double().exp()
    marg = float(target_marginal_x1(target, torch.tensor([float(c)]), x2_range, n_quad)[0])
    if marg <= 0.0:
        return torch.zeros_like(x2)
    return (joint / marg).float()


@torch.no_grad()
def model_marginal_x1(model: Autoregressive, x1: Tensor) -> Tensor:
    """The first factor q_θ(x¹) on the points ``x1 (M,)``: (M,) densities on the CPU."""
    return model.log_prob_x1(x1.to(model.x1_means)).exp().cpu()


@torch.no_grad()
def model_conditional_x2(model: Autoregressive, c: float, x2: Tensor) -> Tensor:
    """The second factor q_θ(x² | x¹ = c) on the points ``x2 (M,)``: (M,) densities on the CPU."""
    x2 = x2.to(model.x1_means)
    return model.log_prob_x2_given_x1(x2, torch.full_like(x2, float(c))).exp().cpu()


@dataclass(frozen=True)
class FactorCurves:
    """One factor of the model against the truth on a 1D grid (numpy): ``grid (M,)``, the model
    ``q (M,)`` and the target ``p (M,)``."""

    grid: np.ndarray
    q: np.ndarray
    p: np.ndarray


def marginal_curves(model: Autoregressive, target: Target2D, x1: Tensor) -> FactorCurves:
    """q_θ(x¹) and the true p(x¹) on the grid ``x1 (M,)``."""
    q = model_marginal_x1(model, x1)
    p = target_marginal_x1(target, x1)
    return FactorCurves(x1.cpu().numpy(), q.numpy(), p.numpy())


def conditional_curves(
    model: Autoregressive, target: Target2D, c: float, x2: Tensor
) -> FactorCurves:
    """q_θ(x² | x¹ = c) and the true p(x² | x¹ = c) on the grid ``x2 (M,)``."""
    q = model_conditional_x2(model, c, x2)
    p = target_conditional_x2(target, c, x2)
    return FactorCurves(x2.cpu().numpy(), q.numpy(), p.numpy())


# -------------------------------------------------------------------- a trained model on the page
def slice_range(bounds: Bounds) -> tuple[float, float, float]:
    """The range of the slice position x¹ = c over ``bounds``: (low, high, the middle rounded to
    one decimal)."""
    lo, hi = float(bounds[0]), float(bounds[1])
    return lo, hi, round(0.5 * (lo + hi), 1)


@torch.no_grad()
def trained_log_q(trained: Trained, bounds: Bounds, res: int = 120) -> np.ndarray:
    """The exact log q_θ(x) of a trained model on the ``res × res`` grid over ``bounds``
    (``genlib.geometry.grid`` order): (res²,) numpy."""
    model = trained.model
    _, _, pts = grid_tensor(tuple(bounds), int(res), device=model.device)
    return model.log_prob(pts).cpu().double().numpy()


def trained_marginal(trained: Trained, bounds: Bounds, n: int = SLICE_POINTS) -> FactorCurves:
    """``marginal_curves`` on ``n`` points over the x¹ range of ``bounds``."""
    x1 = torch.linspace(float(bounds[0]), float(bounds[1]), int(n))
    return marginal_curves(trained.model, trained.target, x1)


def trained_conditional(
    trained: Trained, bounds: Bounds, c: float, n: int = SLICE_POINTS
) -> FactorCurves:
    """``conditional_curves`` at x¹ = ``c`` on ``n`` points over the x² range of ``bounds``."""
    x2 = torch.linspace(float(bounds[2]), float(bounds[3]), int(n))
    return conditional_curves(trained.model, trained.target, float(c), x2)


@torch.no_grad()
def sequential_frames(
    trained: Trained, n: int = 800, seed: int = 0, frames: int = 41
) -> tuple[np.ndarray, np.ndarray]:
    """Sequential sampling x¹ then x² as an animation (``Autoregressive.trajectory``): frames
    ``(F, n, 2)`` and their times ``(F,)``, numpy; drawn with a generator seeded by ``seed``."""
    model = trained.model
    tr = model.trajectory(int(n), int(frames), generator=make_generator(seed, model.device))
    return tr.xs.detach().cpu().numpy(), tr.ts.detach().cpu().numpy()
