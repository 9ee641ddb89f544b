"""Learned vs exact vector fields of the score-based families, on one grid (lecture 4-1 … 4-5).

One vocabulary for every family. A score model has ``score(x, level)`` ≈ ∇ log p_level(x), a
velocity model ``velocity(x, level)`` ≈ the marginal velocity u_level(x), and both declare

    ``marginal_at(level) -> (a, s)``:  p_level is the law of a·x₀ + s·ε  (x₀ ~ p, ε ~ N(0, I)),

so the exact field is always computed from the target's diffused marginal
``target.score_t(x, a, s)`` / ``target.log_prob_t(x, a, s)``. What ``level`` means per family:

==================  ===================  =====================================  ==============
family              level                marginal_at(level) = (a, s)            field
==================  ===================  =====================================  ==============
``score_matching``  ignored              (1, 0): p itself                       score
``ncsn``            noise scale σ        (1, σ)                                 score
``ddpm``            step t ∈ 1..T        (√ᾱ_t, √(1 − ᾱ_t))                     score
``sde``             time t ∈ [0, 1]      (a(t), s(t)) of the SDE's kernel       score
``flow_matching``   time τ ∈ [0, 1]      (a(τ), σ_τ) of the probability path    velocity
==================  ===================  =====================================  ==============

For a velocity model the exact field is the marginal velocity ``model.true_velocity(target, x,
level)`` (Tweedie's formula on ``target.score_t`` at the same (a, s)). Which kind a model has is
decided by the capability protocols ``HasVelocity`` / ``HasScore`` (``field_kind``), so a page shows
the field panel exactly when the model has one.

The ``trained_*`` adapters take a ``genlib.runs.Trained`` (what a page caches with
``genlib.ui.derived``): the field over the target's box and the model's own sampling path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.geometry import Bounds, expand_bounds, grid_tensor
from genlib.models.base import HasScore, HasVelocity
from genlib.models.ddpm import DDPM
from genlib.models.flow_matching import FlowMatching
from genlib.models.ncsn import NCSN
from genlib.models.sde import ScoreSDE
from genlib.trajectory import Trajectory

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "FieldKind",
    "FieldComparison",
    "compare_fields",
    "trained_field",
    "trained_trajectory",
    "field_kind",
    "default_level",
    "exact_log_prob",
    "exact_score",
    "MAX_FIELD_GRID",
]

FieldKind = Literal["score", "velocity"]
MAX_FIELD_GRID = 80  # grid points per axis of a field picture
MAX_TRAJECTORY_POINTS = 5000  # particles of one trajectory a page asks for
MAX_TRAJECTORY_FRAMES = 200


@dataclass(frozen=True)
class FieldComparison:
    """A learned and the exact vector field at one level on a ``G × G`` grid (CPU float32).

    ``xs, ys (G,)``; ``learned, exact (G, G, 2)`` indexed ``[iy, ix]`` (the field at
    ``(xs[ix], ys[iy])``); ``log_p (G, G)`` = log p_level there. ``exact`` and ``log_p`` are None
    when the target's diffused marginal is unknown. ``(a, s) = marginal_at(level)``.
    ``weight`` converts the raw difference to the units of the family's training loss: s for
    denoising-trained scores (‖s·(s_θ − ∇ log p)‖ = ‖ε_θ − ε*‖), 1 for score matching and
    velocities."""

    kind: FieldKind
    level: float | None
    a: float
    s: float
    xs: Tensor
    ys: Tensor
    learned: Tensor
    exact: Tensor | None
    log_p: Tensor | None
    weight: float = 1.0

    @property
    def points(self) -> Tensor:
        """The grid points ``(G*G, 2)`` in the fields' row-major order."""
        gy, gx = torch.meshgrid(self.ys, self.xs, indexing="ij")
        return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)

    @property
    def bounds(self) -> Bounds:
        """The box the grid spans ``(x0, x1, y0, y1)``."""
        return (float(self.xs[0]), float(self.xs[-1]), float(self.ys[0]), float(self.ys[-1]))

    @property
    def error(self) -> Tensor | None:
        """``weight · ‖learned − exact‖`` ``(G, G)``: the error in the units of the loss."""
        if self.exact is None:
            return None
        return self.weight * (self.learned - self.exact).norm(dim=-1)

    @property
    def relative_error(self) -> Tensor | None:
        """‖learned − exact‖ / (‖exact‖ + 1): ``(G, G)``."""
        if self.exact is None:
            return None
        return (self.learned - self.exact).norm(dim=-1) / (self.exact.norm(dim=-1) + 1.0)


def field_kind(model: Any) -> FieldKind | None:
    """``"velocity"`` (``HasVelocity``), ``"score"`` (``HasScore``) or None: which field panel a
    model gets (a model must also declare ``marginal_at``)."""
    if not hasattr(model, "marginal_at"):
        return None
    if isinstance(model, HasVelocity):
        return "velocity"
    if isinstance(model, HasScore):
        return "score"
    return None


def default_level(model: Any) -> float | int | None:
    """The level a page (or a live view) shows first: where the learned field is interesting and
    the comparison meaningful — σ_L (NCSN), t = T/10 (DDPM), t = 0.1 (SDE), τ = 0.5 (flow
    matching), None (score matching, no level)."""
    if isinstance(model, NCSN):
        return model.sigma_list[-1]
    if isinstance(model, DDPM):
        return max(1, model.T // 10)
    if isinstance(model, ScoreSDE):
        return 0.1
    if isinstance(model, FlowMatching):
        return 0.5
    return None


def _is_data(a: float, s: float) -> bool:
    return s == 0.0 and a == 1.0


def exact_score(target: Target2D, x: Tensor, a: float, s: float) -> Tensor:
    """∇ log p of the law of a·x₀ + s·ε at ``x (N, 2)`` (the target's own score when (1, 0))."""
    return target.score(x) if _is_data(a, s) else target.score_t(x, a, s)


def exact_log_prob(target: Target2D, x: Tensor, a: float, s: float) -> Tensor:
    """log p of the law of a·x₀ + s·ε at ``x (N, 2)``: ``(N,)``."""
    return target.log_prob(x) if _is_data(a, s) else target.log_prob_t(x, a, s)


def _or_none(fn: Callable[[], Tensor]) -> Tensor | None:
    try:
        with torch.no_grad():
            return fn().detach().float().cpu()
    except NotImplementedError:  # the target has no diffused marginal
        return None


def compare_fields(
    model: Any,
    target: Target2D | None,
    level: float | int | None,
    bounds: Bounds,
    grid_size: int = 25,
) -> FieldComparison:
    """The model's field at ``level`` next to the exact one of ``target`` on a
    ``grid_size × grid_size`` grid over ``bounds`` (``geometry.grid_tensor`` order).

    The learned field is evaluated on the model's device, the exact one on the CPU from
    ``target.score_t``/``log_prob_t`` at ``model.marginal_at(level)`` (or, for a velocity model,
    ``model.true_velocity``). ``target=None`` or a target without a diffused marginal gives
    ``exact = log_p = None``."""
    kind = field_kind(model)
    if kind is None:
        raise TypeError(f"{type(model).__name__} has no score or velocity field with marginal_at")
    if not (2 <= int(grid_size) <= MAX_FIELD_GRID):
        raise ValueError(f"the field grid must have 2..{MAX_FIELD_GRID} points per axis")
    a, s = model.marginal_at(level)
    xs, ys, pts = grid_tensor(bounds, int(grid_size))
    g = xs.shape[0]
    with torch.no_grad():
        x_dev = pts.to(model.device)
        raw = model.velocity(x_dev, level) if kind == "velocity" else model.score(x_dev, level)
    learned = raw.detach().float().cpu().reshape(g, g, 2)
    exact = log_p = None
    if target is not None:
        if kind == "velocity":
            ex = _or_none(lambda: model.true_velocity(target, pts, level))
        else:
            ex = _or_none(lambda: exact_score(target, pts, a, s))
        exact = None if ex is None else ex.reshape(g, g, 2)
        lp = _or_none(lambda: exact_log_prob(target, pts, a, s))
        log_p = None if lp is None else lp.reshape(g, g)
    weight = s if kind == "score" and s > 0.0 else 1.0
    return FieldComparison(
        kind=kind,
        level=None if level is None else float(level),
        a=float(a),
        s=float(s),
        xs=xs,
        ys=ys,
        learned=learned,
        exact=exact,
        log_p=log_p,
        weight=float(weight),
    )


def trained_field(
    trained: Trained, level: float | int | None, zoom: float = 1.0, grid_size: int = 21
) -> FieldComparison:
    """``compare_fields`` of a trained result at ``level`` over its target's box scaled ``zoom``×
    about its centre (``FieldComparison.bounds`` is the box drawn)."""
    if not (0.25 <= float(zoom) <= 10.0):
        raise ValueError("the field zoom must be in [0.25, 10]")
    bounds = expand_bounds(tuple(trained.target.bounds), float(zoom))
    return compare_fields(trained.model, trained.target, level, bounds, int(grid_size))


def trained_trajectory(
    trained: Trained, n: int = 1000, num_frames: int = 60, seed: int = 0, **sampler: Any
) -> Trajectory:
    """The model's own generation path of ``n`` particles at ``num_frames`` frames (noise first),
    drawn with a CPU generator seeded ``seed`` (the same noise on every device); ``sampler``
    goes to ``model.trajectory`` (e.g. ``lam=`` for the score SDE). A CPU ``Trajectory``."""
    if not (1 <= int(n) <= MAX_TRAJECTORY_POINTS):
        raise ValueError(f"particles must be in [1, {MAX_TRAJECTORY_POINTS}]")
    if not (2 <= int(num_frames) <= MAX_TRAJECTORY_FRAMES):
        raise ValueError(f"frames must be in [2, {MAX_TRAJECTORY_FRAMES}]")
    model = trained.model
    with torch.no_grad():
        tr = model.trajectory(int(n), int(num_frames), generator=make_generator(seed), **sampler)
    return tr.cpu()
