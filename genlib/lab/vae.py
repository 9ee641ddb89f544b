"""VAE experiments behind the page (lecture 3-2): the decoder manifold (the image of a latent line
or grid), data and latent space side by side (``VaeView``), and the bound table
ELBO ≤ IWAE_K ≤ log q_θ(x) (``BoundTable``).

Pure torch (no streamlit, no plotly); random draws use generators seeded from the caller's seed
or handed in, never the global RNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.geometry import Bounds
from genlib.models.vae import MAX_BOUND_POINTS, MAX_IWAE_K, VAE

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "LatentDim",
    "IWAE_KS",
    "BOUND_POINTS",
    "iwae_ks",
    "trained_view",
    "trained_bounds",
    "bound_rows",
    "generation",
    "live_extra",
    "LIVE_LINES",
    "LIVE_LINE_POINTS",
    "latent_lines",
    "decoder_manifold",
    "VaeView",
    "vae_view",
    "BoundTable",
    "bound_table",
    "MAX_VIEW_POINTS",
]

MAX_VIEW_POINTS = 5000
MAX_LINES = 41
MAX_LINE_POINTS = 2000
LatentDim = Literal[1, 2]  # the latent dimensions the page offers (a 2D latent is a plane)
#: the K of the importance-weighted bounds the page offers
IWAE_KS = tuple(k for k in (1, 3, 10, 30, 100, 300, 1000, 3000) if k <= MAX_IWAE_K)
BOUND_POINTS = (100, 200, 500, 1000)  # data points x per bound table
LIVE_LINES = 7  # latent grid lines per axis of the live manifold (2·7 = 14 lines for a 2D latent)
LIVE_LINE_POINTS = 40


def latent_lines(
    latent_dim: int,
    n_lines: int = 9,
    n_points: int = 200,
    extent: float = 3.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Latent points along lines ``(L, P, latent_dim)``: a 1D latent gives one line over
    [−extent, extent]; a 2D latent gives ``n_lines`` lines z₂ = const and ``n_lines`` lines
    z₁ = const (2·n_lines lines: a grid)."""
    n_lines = int(min(max(n_lines, 2), MAX_LINES))
    n_points = int(min(max(n_points, 2), MAX_LINE_POINTS))
    t = torch.linspace(-extent, extent, n_points, device=device, dtype=dtype)  # (P,)
    if latent_dim == 1:
        return t.reshape(1, -1, 1)
    c = torch.linspace(-extent, extent, n_lines, device=device, dtype=dtype)  # (L,)
    rows = torch.stack([torch.stack([t, ci.expand_as(t)], -1) for ci in c])  # (L, P, 2)
    return torch.cat([rows, rows.flip(-1)])  # (2L, P, 2)


@torch.no_grad()
def decoder_manifold(
    model: VAE, n_lines: int = 9, n_points: int = 200, extent: float = 3.0
) -> Tensor:
    """Decoder means μ_θ(z) along ``latent_lines``: (L, P, 2) — the image of the latent line
    (1D) or grid (2D) in data space."""
    dtype = next(model.parameters()).dtype
    lines = latent_lines(
        model.latent_dim, n_lines, n_points, extent, device=model.device, dtype=dtype
    )
    return model.decode(lines)[0]


# -------------------------------------------------------------------- data and latent space
@dataclass(frozen=True)
class VaeView:
    """Numpy arrays for the VAE page: data ``x (N, 2)`` with their encoder means/stds
    ``z_mean, z_std (N, d)``, the decoder manifold ``(L, P, 2)`` and the latent lines it is the
    image of ``(L, P, d)``, model samples ``(N, 2)`` and decoder means of fresh latents ``(N, 2)``."""

    x: np.ndarray
    z_mean: np.ndarray
    z_std: np.ndarray
    manifold: np.ndarray
    latent_lines: np.ndarray
    samples: np.ndarray
    means: np.ndarray


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


@torch.no_grad()
def vae_view(
    model: VAE, target: Target2D, n: int = 1500, seed: int = 0, n_lines: int = 13
) -> VaeView:
    """Encode ``n`` target samples, decode a latent grid, draw ``n`` samples (generators seeded
    from ``seed``: the data on the CPU, the model's draws on its device)."""
    n = int(min(max(n, 1), MAX_VIEW_POINTS))
    was_training = model.training
    model.eval()
    dev = model.device
    x = target.sample(n, generator=make_generator(seed)).to(dev)  # (n, 2)
    z_mean, z_std = model.encode(x)  # (n, d) each
    lines = latent_lines(model.latent_dim, n_lines=n_lines, n_points=200, device=dev)
    manifold = model.decode(lines)[0]  # (L, P, 2)
    g = make_generator(seed + 1, dev)
    samples = model.sample(n, generator=g)
    means = model.sample(n, generator=g, noise=False)
    model.train(was_training)
    return VaeView(
        _np(x), _np(z_mean), _np(z_std), _np(manifold), _np(lines), _np(samples), _np(means)
    )


# -------------------------------------------------------------------- the bounds
@dataclass(frozen=True)
class BoundTable:
    """Means over the points of the ELBO, the IWAE bound for each K (``iwae``: K -> value) and
    the quadrature log q_θ(x) (``None`` when not computed); ELBO ≤ IWAE_K ≤ log q_θ(x) in
    expectation."""

    elbo: float
    iwae: dict[int, float]
    log_q: float | None

    def as_dict(self) -> dict[str, float]:
        """Flat keys ``elbo``, ``iwae_<K>``, ``log_q`` (what ``viz.vae.bounds_figure`` reads)."""
        out = {"elbo": self.elbo, **{f"iwae_{k}": v for k, v in self.iwae.items()}}
        if self.log_q is not None:
            out["log_q"] = self.log_q
        return out


@torch.no_grad()
def bound_table(
    model: VAE,
    x: Tensor,
    ks: tuple[int, ...] = (1, 10, 100, 1000),
    *,
    generator: torch.Generator | None = None,
    with_quadrature: bool = True,
    elbo_samples: int = 64,
) -> BoundTable:
    """Mean over the points ``x (N, 2)`` of the ELBO (closed-form KL, reconstruction averaged
    over ``elbo_samples`` latents per point so the estimate is not noisier than the bounds), the
    IWAE bound for each K and (optionally) the quadrature log q_θ(x); every latent is drawn with
    ``generator``."""
    if x.shape[0] > MAX_BOUND_POINTS:
        raise ValueError(f"at most {MAX_BOUND_POINTS} points per bound evaluation")
    elbo = [
        model.elbo(c, generator=generator, n_samples=elbo_samples) for c in torch.split(x, 1024)
    ]
    iwae = {int(k): float(model.iwae(x, int(k), generator=generator).mean()) for k in ks}
    log_q = float(model.log_marginal(x).mean()) if with_quadrature else None
    return BoundTable(float(torch.cat(elbo).mean()), iwae, log_q)


def iwae_ks(k_max: int) -> tuple[int, ...]:
    """The offered K (``IWAE_KS``) up to ``k_max`` (at least K = 1)."""
    return tuple(k for k in IWAE_KS if k <= int(k_max)) or (1,)


def trained_bounds(
    trained: Trained, n: int = 200, ks: tuple[int, ...] = (1, 10, 100)
) -> BoundTable:
    """``bound_table`` of a trained VAE on ``n`` fresh target samples (data and latents drawn
    with fixed seeds, so the table is reproducible)."""
    model = trained.model
    x = trained.target.sample(int(n), generator=make_generator(7)).to(model.device)
    return bound_table(model, x, tuple(ks), generator=make_generator(8, model.device))


def bound_rows(
    table: BoundTable, names: Mapping[str, str]
) -> list[tuple[str, float, float | None]]:
    """The bound table as rows ``(quantity, value, gap to log q_θ(x))``: the ELBO, IWAE_K for
    each K, and log q_θ(x) (named by ``names["elbo"]``, ``names["log_q"]``); the gap is
    ``None`` without the quadrature."""
    rows = [(names.get("elbo", "ELBO"), table.elbo)]
    rows += [(f"IWAE K={k}", v) for k, v in sorted(table.iwae.items())]
    if table.log_q is not None:
        rows.append((names.get("log_q", "log q"), table.log_q))
    return [(q, v, None if table.log_q is None else table.log_q - v) for q, v in rows]


def trained_view(trained: Trained, n: int = 1500, seed: int = 0) -> VaeView:
    """``vae_view`` of a trained VAE on its target."""
    return vae_view(trained.model, trained.target, n=n, seed=seed)


@torch.no_grad()
def generation(
    trained: Trained, n: int = 600, frames: int = 40, seed: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """The model's generation animation (``VAE.trajectory``: latent -> decoder mean -> sample):
    frames ``(F, n, 2)`` and their times ``(F,)`` in [0, 1], as numpy."""
    model = trained.model
    tr = model.trajectory(int(n), int(frames), generator=make_generator(seed, model.device))
    return _np(tr.xs), _np(tr.ts)


# -------------------------------------------------------------------- the live view
@torch.no_grad()
def live_extra(
    model: VAE, target: Target2D, generator: torch.Generator, bounds: Bounds
) -> dict[str, Any]:
    """The VAE's part of the live view (``genlib.lab.live.LiveView`` fields): the decoded
    manifold as ``lines (L, P, 2)``, the decoder means along ``LIVE_LINES`` latent grid lines
    per axis (one line for a 1D latent), ``LIVE_LINE_POINTS`` points each. No random draw."""
    lines = decoder_manifold(model, n_lines=LIVE_LINES, n_points=LIVE_LINE_POINTS)
    return {"lines": lines.detach().float().cpu().numpy()}
