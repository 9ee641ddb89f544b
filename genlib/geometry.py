"""Plane geometry shared by every layer: constants, bounding boxes and evaluation grids
(the one home of each; ``viz`` re-exports the numpy grid for drawing)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "LOG_2PI",
    "Bounds",
    "MAX_GRID_RES",
    "expand_bounds",
    "union_bounds",
    "grid",
    "grid_tensor",
    "cell_area",
]

LOG_2PI = math.log(2 * math.pi)
MAX_GRID_RES = 300

Bounds = tuple[float, float, float, float]  # (x0, x1, y0, y1)


def expand_bounds(bounds: Bounds, factor: float) -> Bounds:
    """``bounds`` scaled by ``factor`` about their centre."""
    x0, x1, y0, y1 = (float(b) for b in bounds)
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return (cx - factor * hx, cx + factor * hx, cy - factor * hy, cy + factor * hy)


def union_bounds(*bounds: Bounds) -> Bounds:
    """The smallest box holding every box, made square (equal aspect without empty strips)."""
    b = np.array(bounds, dtype=np.float64).reshape(-1, 4)
    x0, x1, y0, y1 = b[:, 0].min(), b[:, 1].max(), b[:, 2].min(), b[:, 3].max()
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / 2
    return (float(cx - half), float(cx + half), float(cy - half), float(cy + half))


def _check_res(res: int) -> int:
    res = int(res)
    if not (2 <= res <= MAX_GRID_RES):
        raise ValueError(f"grid resolution must be in [2, {MAX_GRID_RES}]")
    return res


def grid(bounds: Bounds, res: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``res × res`` grid over ``bounds``: ``xs (res,)``, ``ys (res,)`` and the points
    ``pts (res*res, 2)`` in row-major order (``pts.reshape(res, res, 2)[i, j] = (xs[j], ys[i])``,
    so ``values.reshape(res, res)`` is a heatmap ``z`` with rows along y)."""
    res = _check_res(res)
    x0, x1, y0, y1 = (float(b) for b in bounds)
    xs = np.linspace(x0, x1, res)
    ys = np.linspace(y0, y1, res)
    gx, gy = np.meshgrid(xs, ys)  # (res, res): gx[i, j] = xs[j], gy[i, j] = ys[i]
    return xs, ys, np.stack([gx.ravel(), gy.ravel()], axis=1)


def grid_tensor(
    bounds: Bounds,
    res: int = 100,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor, Tensor]:
    """``grid`` as tensors: ``xs (res,)``, ``ys (res,)``, ``pts (res*res, 2)`` (same order)."""
    res = _check_res(res)
    xs = torch.linspace(float(bounds[0]), float(bounds[1]), res, dtype=dtype, device=device)
    ys = torch.linspace(float(bounds[2]), float(bounds[3]), res, dtype=dtype, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (res, res): gx[i, j] = xs[j]
    return xs, ys, torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def cell_area(bounds: Bounds, res: int) -> float:
    """Area of one cell of ``grid(bounds, res)`` (for Riemann sums over the grid)."""
    x0, x1, y0, y1 = (float(b) for b in bounds)
    return (x1 - x0) / (res - 1) * (y1 - y0) / (res - 1)
