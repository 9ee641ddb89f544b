"""Exact KL values both ways on a grid (midpoint rule, exact densities of p and q_θ).

``exact_kls(target, q)`` evaluates KL(p‖q_θ) and KL(q_θ‖p) on a square grid that holds both
distributions (``GridCache`` picks and caches it), falling back to Monte Carlo with the exact
densities for a direction whose distribution the grid cannot hold."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from genlib import geometry
from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.geometry import Bounds
from genlib.kl.config import MAX_GRID
from genlib.kl.families import QDist
from genlib.metrics import grid_kl

__all__ = [
    "KLGrid",
    "make_grid",
    "grid_kls",
    "eval_log_q",
    "GridCache",
    "exact_kls",
    "KLMethod",
    "MAX_SPAN",
    "MC_SAMPLES",
]

KLMethod = Literal["grid", "mc"]
MAX_SPAN = 60.0  # the KL / display grid never spans more than this per axis
MC_SAMPLES = 20_000  # Monte-Carlo fallback of exact_kls when a grid cannot hold q
_CHUNK = 16384  # points per density evaluation


@dataclass(frozen=True)
class KLGrid:
    """A res×res midpoint grid over ``bounds``: points (res², 2) float64, row-major in y then x
    (``points.reshape(res, res, 2)[i, j] = (xs[j], ys[i])``), ``log_p`` of the target there."""

    bounds: Bounds
    res: int
    xs: np.ndarray  # (res,) cell centres
    ys: np.ndarray  # (res,)
    points: Tensor  # (res², 2) float64, CPU
    log_p: Tensor  # (res²,) float64
    cell_area: float


def make_grid(target: Target2D, bounds: Bounds, res: int) -> KLGrid:
    """The midpoint grid over ``bounds`` (2 ≤ res ≤ ``MAX_GRID``) with the target's log density:
    ``geometry.grid`` through the cell centres."""
    res = int(min(max(res, 2), MAX_GRID))
    x0, x1, y0, y1 = bounds
    hx, hy = (x1 - x0) / res, (y1 - y0) / res
    xs, ys, pts = geometry.grid((x0 + hx / 2, x1 - hx / 2, y0 + hy / 2, y1 - hy / 2), res)
    points = torch.from_numpy(pts)  # (res², 2) float64
    with torch.no_grad():
        log_p = torch.cat([target.log_prob(c.float()).double() for c in points.split(_CHUNK)])
    return KLGrid(bounds, res, xs, ys, points, log_p, hx * hy)


def grid_kls(log_p: Tensor, log_q: Tensor, cell_area: float) -> tuple[float, float]:
    """``(KL(p‖q), KL(q‖p))`` from log densities ``(M,)`` on the same grid (midpoint rule). Cells
    where the first argument's density is 0 add nothing; KL(q‖p) is +inf when q > 0 on a cell
    with p = 0 (log p = −inf), and likewise KL(p‖q) where q = 0 under p."""
    return grid_kl(log_p, log_q, cell_area), grid_kl(log_q, log_p, cell_area)


def eval_log_q(q: QDist, points: Tensor) -> Tensor:
    """log q_θ at CPU float64 ``points (M, 2)``, evaluated on q's device in chunks: ``(M,)``
    float64 on the CPU."""
    dev = q.device
    with torch.no_grad():
        return torch.cat(
            [q.log_prob(c.to(dev, torch.float32)).double().cpu() for c in points.split(_CHUNK)]
        )


class GridCache:
    """KL grids that always hold both p and q: square boxes centred on the target's box, of
    half-widths h₀·1.5ᵏ (h₀ the target box's), the smallest holding q's ±6σ box (at most
    ``MAX_SPAN`` wide). log p is computed once per level; a fit touches a handful of levels."""

    def __init__(self, target: Target2D, res: int) -> None:
        self.target = target
        self.res = int(min(max(res, 2), MAX_GRID))
        x0, x1, y0, y1 = target.bounds
        self.cx, self.cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.h0 = max(x1 - x0, y1 - y0) / 2
        self._levels: dict[int, KLGrid] = {}

    def level_for(self, mean: Sequence[float], cov: Any) -> int:
        """The smallest level whose box holds N(mean, cov)'s ±6σ box."""
        sd = np.sqrt(np.maximum(np.diag(np.asarray(cov, dtype=np.float64)), 0.0))
        m = np.asarray(mean, dtype=np.float64)
        need = max(abs(m[0] - self.cx) + 6 * sd[0], abs(m[1] - self.cy) + 6 * sd[1], self.h0)
        if not math.isfinite(need):
            need = MAX_SPAN
        k = 0
        while self.h0 * 1.5**k < need and self.h0 * 1.5**k < MAX_SPAN / 2:
            k += 1
        return k

    def grid(self, level: int) -> KLGrid:
        if level not in self._levels:
            h = min(self.h0 * 1.5**level, max(MAX_SPAN / 2, self.h0))
            b = (self.cx - h, self.cx + h, self.cy - h, self.cy + h)
            self._levels[level] = make_grid(self.target, b, self.res)
        return self._levels[level]

    def for_q(self, mean: Sequence[float], cov: Any) -> KLGrid:
        return self.grid(self.level_for(mean, cov))


def exact_kls(
    target: Target2D, q: QDist, res: int = 160, cache: GridCache | None = None
) -> dict[str, Any]:
    """KL(p‖q_θ) and KL(q_θ‖p) on a grid holding both (midpoint rule; ``grid_kls``), with the
    masses of p and q on that grid. When the grid cannot hold a distribution (mass < 0.995: q far
    wider than ``MAX_SPAN``), that direction falls back to a Monte-Carlo estimate with the exact
    densities (``MC_SAMPLES`` samples; ``method_pq``/``method_qp`` say which was used).

    Returns ``{"kl_pq", "kl_qp", "p_mass", "q_mass", "half_width", "method_pq", "method_qp"}``."""
    cache = cache if cache is not None else GridCache(target, res)
    m, c = q.moments()
    g = cache.for_q(m.tolist(), c.numpy())
    lq = eval_log_q(q, g.points)
    kl_pq, kl_qp = grid_kls(g.log_p, lq, g.cell_area)
    p_mass = float(g.log_p.exp().sum() * g.cell_area)
    q_mass = float(lq.exp().sum() * g.cell_area)
    method_pq: KLMethod = "grid"
    method_qp: KLMethod = "grid"
    if not abs(q_mass - 1.0) < 5e-3:
        with torch.no_grad():
            y, log_q = q.rsample(MC_SAMPLES, make_generator(2024, q.device))
            log_p = target.log_prob(y.cpu()).double()
        kl_qp, method_qp = float((log_q.double().cpu() - log_p).mean()), "mc"
    if not abs(p_mass - 1.0) < 5e-3:
        x = target.sample(MC_SAMPLES, generator=make_generator(2024))
        kl_pq = float((target.log_prob(x).double() - eval_log_q(q, x.double())).mean())
        method_pq = "mc"
    return {
        "kl_pq": kl_pq,
        "kl_qp": kl_qp,
        "p_mass": p_mass,
        "q_mass": q_mass,
        "half_width": (g.bounds[1] - g.bounds[0]) / 2,
        "method_pq": method_pq,
        "method_qp": method_qp,
    }
