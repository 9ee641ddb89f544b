"""Live views: what a page shows while a model learns (computed inside the job, every k steps).

Every family shows its current samples over the target's exact density (the page draws the
contours once). On top of that, by capability:

- density models (flow, autoregressive, RBM): log q_θ on a coarse grid;
- GAN: the discriminator D_φ on the grid (D* = log p/q̂ is drawn from the same grid, q̂ a KDE
  of the generator's samples);
- VAE: the decoded manifold (decoder means along latent grid lines);
- score-based and flow-matching families: the learned field at one level next to the exact one;
- RBM: the Gibbs negative particles of the current model.

``live_view_for(spec)`` returns the function the job calls (``fn(model, target, generator)``);
each view is a frozen ``LiveView`` of numpy arrays, cheap enough to compute every few hundred
milliseconds (the job keeps the cost under its time budget).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genlib.distributions.base import Target2D
from genlib.geometry import Bounds, grid_tensor
from genlib.lab import gan as lab_gan
from genlib.lab import identities as lab_identities
from genlib.lab import rbm as lab_rbm
from genlib.lab import vae as lab_vae
from genlib.models.base import GenerativeModel
from genlib.runs import RunSpec

__all__ = [
    "LiveView",
    "LIVE_SAMPLES",
    "LIVE_GRID",
    "live_view",
    "live_view_for",
    "LIVE_EXTRAS",
]

LIVE_SAMPLES = 600
LIVE_GRID = 32
DENSITY_FAMILIES = ("flow", "autoregressive", "rbm")
FIELD_FAMILIES = ("score_matching", "ncsn", "ddpm", "sde", "flow_matching")
#: fewer samples for families whose sampler runs many network evaluations per point
LIVE_SAMPLES_BY_FAMILY = {"score_matching": 300, "ncsn": 300, "sde": 300, "ddpm": 400}


@dataclass(frozen=True)
class LiveView:
    """One live picture of a model. ``grid`` holds ``grid_res²`` values over ``bounds`` in
    ``geometry.grid`` order (``grid_kind`` says what: ``"log_q"``, ``"D"``); ``field``/
    ``field_true`` are ``(G*G, 2)`` vectors at ``field_pts``; ``lines`` are polylines
    ``(L, P, 2)`` (a decoded manifold); ``particles`` extra points (Gibbs negatives)."""

    samples: np.ndarray  # (n, 2)
    bounds: Bounds
    grid: np.ndarray | None = None  # (R*R,)
    grid_res: int = 0
    grid_kind: str = ""
    field_pts: np.ndarray | None = None  # (G*G, 2)
    field: np.ndarray | None = None  # (G*G, 2)
    field_true: np.ndarray | None = None  # (G*G, 2)
    level_label: str = ""
    lines: np.ndarray | None = None  # (L, P, 2)
    particles: np.ndarray | None = None  # (m, 2)
    particles_label: str = ""
    extra: dict[str, Any] | None = None


Extra = Callable[[GenerativeModel, Target2D, torch.Generator, Bounds], dict[str, Any]]
#: family name -> a function adding family-specific fields to the view (filled below and by
#: the family lab modules)
LIVE_EXTRAS: dict[str, Extra] = {}


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def _density_extra(model, target, generator, bounds) -> dict[str, Any]:
    _, _, pts = grid_tensor(bounds, LIVE_GRID, device=model.device)
    with torch.no_grad():
        lq = model.log_prob(pts)
    return {"grid": _np(lq), "grid_res": LIVE_GRID, "grid_kind": "log_q"}


LIVE_FIELD_GRID = 15


def _field_extra(model, target, generator, bounds) -> dict[str, Any]:
    """The learned score/velocity at the family's default level next to the exact one."""
    from genlib.lab.fields import compare_fields, default_level

    level = default_level(model)
    cmp = compare_fields(model, target, level, bounds, grid_size=LIVE_FIELD_GRID)
    sym = "v_θ vs u_τ" if cmp.kind == "velocity" else "s_θ vs ∇log p"
    label = f"{sym} · a = {cmp.a:.3g}, s = {cmp.s:.3g}" + (
        "" if level is None else f" (level {level:g})"
    )
    return {
        "field_pts": _np(cmp.points),
        "field": _np(cmp.learned.reshape(-1, 2)),
        "field_true": None if cmp.exact is None else _np(cmp.exact.reshape(-1, 2)),
        "level_label": label,
    }


LIVE_EXTRAS.update({name: _density_extra for name in DENSITY_FAMILIES if name != "rbm"})
LIVE_EXTRAS.update({name: _field_extra for name in FIELD_FAMILIES})
# families whose lab module draws its own layer (the RBM's includes its log q grid)
LIVE_EXTRAS.update(gan=lab_gan.live_extra, vae=lab_vae.live_extra, rbm=lab_rbm.live_extra)
# score matching, NCSN, flow matching: frames also carry the objective identity (issue 11)
LIVE_EXTRAS.update(
    {f: lab_identities.with_live_gap(LIVE_EXTRAS[f]) for f in lab_identities.GAP_FAMILIES}
)


def live_view(
    family: str,
    model: GenerativeModel,
    target: Target2D,
    generator: torch.Generator,
    n: int = LIVE_SAMPLES,
) -> LiveView:
    """The live view of ``model`` (a family of ``genlib.models``) on ``target``."""
    bounds: Bounds = tuple(float(b) for b in target.bounds)  # type: ignore[assignment]
    n = min(n, LIVE_SAMPLES_BY_FAMILY.get(family, n))
    with torch.no_grad():
        x = model.sample(n, generator=generator)
    x = _np(x)
    x = x[np.isfinite(x).all(1)]
    kw: dict[str, Any] = {}
    extra = LIVE_EXTRAS.get(family)
    if extra is not None:
        kw = extra(model, target, generator, bounds)
    return LiveView(samples=x, bounds=bounds, **kw)


def live_view_for(
    spec: RunSpec,
) -> Callable[[GenerativeModel, Target2D, torch.Generator], LiveView]:
    """The job's live-view function for ``spec``'s family."""
    family = spec.model

    def fn(model: GenerativeModel, target: Target2D, generator: torch.Generator) -> LiveView:
        return live_view(family, model, target, generator)

    return fn
