"""Normalizing-flow experiments behind the page (lecture 2-5): the layer-by-layer warp of base
samples and of a base-space grid (``FlowWarp``), and the exact density with the log-determinant of
the change of variables on a grid (``FlowDensityGrid``).

Pure torch (no streamlit, no plotly); base samples are drawn with the caller's generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.geometry import Bounds, grid_tensor
from genlib.models.flow import NormalizingFlow, interpolate_layers, standard_normal_log_prob

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "WarpView",
    "trained_warp",
    "trained_density_grid",
    "grid_lines",
    "FlowWarp",
    "flow_warp",
    "FlowDensityGrid",
    "flow_density_grid",
    "MAX_WARP_POINTS",
    "MAX_WARP_LINES",
]

MAX_WARP_POINTS = 5000
MAX_WARP_LINES = 41
MAX_LINE_POINTS = 400


def grid_lines(half_width: float = 3.0, n_lines: int = 13, n_pts: int = 80) -> Tensor:
    """A square grid of ``n_lines`` vertical and ``n_lines`` horizontal lines over
    [−w, w]² (the base space), each sampled at ``n_pts`` points: (2·n_lines, n_pts, 2)."""
    n_lines = int(min(max(n_lines, 2), MAX_WARP_LINES))
    n_pts = int(min(max(n_pts, 2), MAX_LINE_POINTS))
    pos = torch.linspace(-half_width, half_width, n_lines)
    along = torch.linspace(-half_width, half_width, n_pts)
    vertical = torch.stack(
        [pos[:, None].expand(n_lines, n_pts), along[None, :].expand(n_lines, n_pts)], -1
    )  # (n_lines, n_pts, 2)
    horizontal = vertical.flip(-1)
    return torch.cat([vertical, horizontal])


@dataclass(frozen=True)
class FlowWarp:
    """The warp animation data (CPU tensors): ``points (F, N, 2)`` base samples and
    ``lines (F, M, P, 2)`` grid lines pushed through the layers, ``ts (F,)`` the layer coordinate
    of each frame, ``layer_names`` (one per layer) and the base-space grid half width."""

    points: Tensor
    lines: Tensor
    ts: Tensor
    layer_names: tuple[str, ...]
    half_width: float


def flow_warp(
    model: NormalizingFlow,
    n: int = 1000,
    *,
    substeps: int = 4,
    n_lines: int = 13,
    half_width: float = 3.0,
    generator: torch.Generator | None = None,
) -> FlowWarp:
    """Push base samples z ~ N(0, I) (drawn with ``generator``) and a grid of the base space
    through the flow, layer by layer (frame 0 = base space, last frame = data space;
    ``substeps`` interpolated frames per layer)."""
    n = int(min(max(n, 1), MAX_WARP_POINTS))
    z = model.base_sample(n, generator=generator)  # (n, 2)
    lines = grid_lines(half_width, n_lines, n_pts=50).to(device=z.device, dtype=z.dtype)
    m, p = lines.shape[:2]  # (M, P, 2)
    pts = model.layers_forward(torch.cat([z, lines.reshape(-1, 2)]))  # (L+1, n + M·P, 2)
    frames, ts = interpolate_layers(pts, substeps)
    frames = frames.detach().cpu()
    return FlowWarp(
        frames[:, :n],
        frames[:, n:].reshape(-1, m, p, 2),
        ts,
        tuple(model.layer_names),
        float(half_width),
    )


@dataclass(frozen=True)
class WarpView:
    """``FlowWarp`` as numpy for the page: ``points (F, N, 2)``, ``lines (F, M, P, 2)``,
    ``ts (F,)``, ``layer_names``."""

    points: np.ndarray
    lines: np.ndarray
    ts: np.ndarray
    layer_names: tuple[str, ...]


def trained_warp(
    trained: Trained, n: int = 1000, substeps: int = 2, n_lines: int = 15, seed: int = 0
) -> WarpView:
    """``flow_warp`` of a trained flow, base samples drawn with a generator seeded by ``seed``."""
    model = trained.model
    w = flow_warp(
        model, n, substeps=substeps, n_lines=n_lines, generator=make_generator(seed, model.device)
    )
    return WarpView(w.points.numpy(), w.lines.numpy(), w.ts.cpu().numpy(), w.layer_names)


@dataclass(frozen=True)
class FlowDensityGrid:
    """The flow on a ``res × res`` grid (numpy, rows along y): ``log_q (res²,)`` the exact
    log q_θ(x) and ``log_det (res²,)`` = log|det ∇f_θ⁻¹(x)|, the density factor of the change
    of variables; ``xs, ys (res,)`` the grid axes."""

    xs: np.ndarray
    ys: np.ndarray
    log_q: np.ndarray
    log_det: np.ndarray


@torch.no_grad()
def flow_density_grid(model: NormalizingFlow, bounds: Bounds, res: int = 120) -> FlowDensityGrid:
    """Evaluate log q_θ and log|det ∇f_θ⁻¹| on the grid over ``bounds`` (one inverse pass)."""
    dtype = next(model.parameters()).dtype
    xs, ys, pts = grid_tensor(bounds, res, device=model.device, dtype=dtype)  # pts (res², 2)
    z, log_det = model.inverse(pts)  # (res², 2), (res²,)
    log_q = standard_normal_log_prob(z) + log_det  # = model.log_prob(pts)
    return FlowDensityGrid(
        xs.cpu().numpy(),
        ys.cpu().numpy(),
        log_q.cpu().double().numpy(),
        log_det.cpu().double().numpy(),
    )


def trained_density_grid(trained: Trained, bounds: Bounds, res: int = 120) -> FlowDensityGrid:
    """``flow_density_grid`` of a trained flow."""
    return flow_density_grid(trained.model, tuple(bounds), int(res))
