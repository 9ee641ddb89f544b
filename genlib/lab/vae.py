"""VAE experiments behind the page (lecture 3-2): the decoder manifold (the image of a latent line
or grid), data and latent space side by side (``VaeView``), and the bound table
ELBO ≤ IWAE_K ≤ log q_θ(x) (``BoundTable``), and the true posterior q_θ(z|x) next to the encoder
r_φ(z|x) on a latent grid with the identity log q_θ(x) = ELBO(x) + KL(r_φ ‖ q_θ(·|x))
(``vae_posterior``, ``trained_posterior``).

Pure torch (no streamlit, no plotly); random draws use generators seeded from the caller's seed
or handed in, never the global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from genlib import rng
from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.geometry import Bounds
from genlib.models.vae import (
    MAX_BOUND_POINTS,
    MAX_IWAE_K,
    VAE,
    gaussian_kl_std_normal,
    gaussian_log_prob,
)

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
    "LatentGrid",
    "VaePosterior",
    "PosteriorReport",
    "posterior_window",
    "vae_posterior",
    "elbo_estimate",
    "posterior_points",
    "trained_posterior",
    "POSTERIOR_POINTS",
    "ELBO_SAMPLES",
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


# -------------------------------------------------------------------- the true posterior (3-2)
#: data points offered by the page's posterior panel (fixed target samples)
POSTERIOR_POINTS = 6
POSTERIOR_RES = {1: 1201, 2: 161}  # fine-grid nodes per axis of vae_posterior's default window
POSTERIOR_EXTENT = 6.0  # the coarse scan covers [−6, 6]^d (prior mass beyond it < 1e-8)
ELBO_SAMPLES = 16384  # reparametrised latents of the page's Monte-Carlo ELBO
_SCAN_RES = {1: 2401, 2: 121}
_SCAN_DROP = 30.0  # nats below the scan's maximum log joint still inside the window
_MAX_GRID_NODES = 1_000_000


@dataclass(frozen=True)
class LatentGrid:
    """A rectangular latent grid: per latent axis ``(lo, hi)`` in ``bounds`` (d pairs) with
    ``res`` nodes per axis; quadrature by the trapezoid rule on it."""

    bounds: tuple[tuple[float, float], ...]
    res: int

    def __post_init__(self) -> None:
        d = len(self.bounds)
        if d not in (1, 2):
            raise ValueError("a latent grid has 1 or 2 axes")
        if not (5 <= int(self.res) and int(self.res) ** d <= _MAX_GRID_NODES):
            raise ValueError(f"res must be ≥ 5 with at most {_MAX_GRID_NODES} nodes")
        if not all(hi > lo for lo, hi in self.bounds):
            raise ValueError("each latent axis needs lo < hi")

    def axes(self, device: torch.device | None = None) -> list[Tensor]:
        """One float64 node vector (res,) per axis."""
        return [
            torch.linspace(lo, hi, self.res, dtype=torch.float64, device=device)
            for lo, hi in self.bounds
        ]

    def nodes(self, device: torch.device | None = None) -> tuple[list[Tensor], Tensor, Tensor]:
        """The axes, the nodes ``(G, d)`` (2D: row-major with rows along z₂, as ``geometry.grid``)
        and their log trapezoid weights ``(G,)`` (Σ exp = the window's volume)."""
        axes = self.axes(device)
        logw = []
        for a in axes:
            w = torch.full_like(a, float(a[1] - a[0])).log()
            w[0] = w[-1] = w[0] - math.log(2.0)
            logw.append(w)
        if len(axes) == 1:
            return axes, axes[0].reshape(-1, 1), logw[0]
        g2, g1 = torch.meshgrid(axes[1], axes[0], indexing="ij")  # (R, R): rows along z₂
        pts = torch.stack([g1.reshape(-1), g2.reshape(-1)], dim=1)
        return axes, pts, (logw[1].reshape(-1, 1) + logw[0].reshape(1, -1)).reshape(-1)


@dataclass(frozen=True)
class VaePosterior:
    """The true posterior q_θ(z|x) ∝ q_Z(z) q_θ(x|z) and the encoder r_φ(z|x) of one data point
    ``x (2,)`` on a latent grid (numpy): ``axes`` one node vector per latent axis, ``log_post``
    and ``log_enc`` the two log densities on the nodes (2D latent: ``(R, R)``, rows along z₂;
    1D: ``(R,)``), ``kl`` = KL(r_φ(·|x) ‖ q_θ(·|x)) and ``log_q`` = log q_θ(x) = log ∫ q_Z q_θ(x|z)
    dz, both by quadrature on the grid; ``encoder_mass`` = ∫ r_φ over the grid (≈ 1 when the
    window holds the encoder). Unpacks as ``(log_post, log_enc, kl)``."""

    x: np.ndarray
    axes: tuple[np.ndarray, ...]
    log_post: np.ndarray
    log_enc: np.ndarray
    kl: float
    log_q: float
    encoder_mass: float
    enc_mean: np.ndarray
    enc_std: np.ndarray

    def __iter__(self):
        return iter((self.log_post, self.log_enc, self.kl))


def _as_point(x: Tensor | np.ndarray | tuple[float, float]) -> Tensor:
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1)
    if xt.numel() != 2 or not bool(torch.isfinite(xt).all()):
        raise ValueError("x must be one finite 2D point")
    return xt


def _log_joint(model: VAE, z: Tensor, x: Tensor) -> Tensor:
    """log q_Z(z) + log q_θ(x|z) in float64 for latent nodes ``z (G, d)`` and one ``x (2,)``."""
    dtype = next(model.parameters()).dtype
    parts = []
    for zc in torch.split(z, 65_536):
        mu, std = model.decode(zc.to(model.device, dtype))  # (g, 2) each
        parts.append(
            gaussian_log_prob(x.to(mu.device), mu.double(), std.double()).cpu()
            + gaussian_log_prob(zc, torch.zeros_like(zc), torch.ones_like(zc))
        )
    return torch.cat(parts)  # (G,)


@torch.no_grad()
def posterior_window(
    model: VAE, x: Tensor | np.ndarray, res: int | None = None, extent: float = POSTERIOR_EXTENT
) -> LatentGrid:
    """The grid ``vae_posterior`` uses by default: a coarse scan of [−extent, extent]^d finds where
    the joint q_Z(z) q_θ(x|z) is within ``_SCAN_DROP`` nats of its maximum; the window covers
    those nodes and the encoder's mean ± 6σ, padded by one scan cell, with ``res`` nodes per axis
    (default ``POSTERIOR_RES``)."""
    d = model.latent_dim
    xt = _as_point(x)
    scan = LatentGrid(((-extent, extent),) * d, _SCAN_RES[d])
    axes, z, _ = scan.nodes()
    lj = _log_joint(model, z, xt)
    keep = z[lj > lj.max() - _SCAN_DROP]  # (K, d)
    mu, std = model.encode(xt.reshape(1, 2).to(model.device, next(model.parameters()).dtype))
    mu, std = mu[0].double().cpu(), std[0].double().cpu()
    step = float(axes[0][1] - axes[0][0])
    lo = torch.minimum(keep.min(0).values, mu - 6 * std) - step
    hi = torch.maximum(keep.max(0).values, mu + 6 * std) + step
    bounds = tuple((float(a), float(b)) for a, b in zip(lo, hi, strict=True))
    return LatentGrid(bounds, int(res or POSTERIOR_RES[d]))


@torch.no_grad()
def vae_posterior(
    model: VAE, x: Tensor | np.ndarray, grid: LatentGrid | None = None
) -> VaePosterior:
    """The true posterior q_θ(z|x) = q_Z(z) q_θ(x|z) / q_θ(x) and the encoder r_φ(z|x) of one
    point ``x (2,)`` on ``grid`` (default ``posterior_window``): log q_θ(x) by the trapezoid rule
    of the joint, the posterior normalised by it, and KL(r_φ ‖ q_θ(·|x)) = ∫ r_φ log(r_φ/q_θ(·|x))
    by the same rule. float64 throughout; no random draw."""
    xt = _as_point(x)
    grid = grid or posterior_window(model, xt)
    if len(grid.bounds) != model.latent_dim:
        raise ValueError("the grid must have one axis per latent dimension")
    axes, z, logw = grid.nodes()
    lj = _log_joint(model, z, xt)  # (G,)
    log_q = torch.logsumexp(lj + logw, 0)
    log_post = lj - log_q
    mu, std = model.encode(xt.reshape(1, 2).to(model.device, next(model.parameters()).dtype))
    log_enc = gaussian_log_prob(z, mu.double().cpu(), std.double().cpu())  # (G,)
    r_w = (log_enc + logw).exp()  # r_φ(z) × weight
    kl = float((r_w * (log_enc - log_post)).sum())
    shape = (grid.res,) * model.latent_dim
    return VaePosterior(
        x=xt.numpy(),
        axes=tuple(a.numpy() for a in axes),
        log_post=log_post.reshape(shape).numpy(),
        log_enc=log_enc.reshape(shape).numpy(),
        kl=kl,
        log_q=float(log_q),
        encoder_mass=float(r_w.sum()),
        enc_mean=_np(mu[0]),
        enc_std=_np(std[0]),
    )


@torch.no_grad()
def elbo_estimate(
    model: VAE, x: Tensor | np.ndarray, n: int = ELBO_SAMPLES, *, generator: torch.Generator
) -> tuple[float, float]:
    """ELBO(x) = ⟨log q_θ(x|z)⟩_{r_φ(z|x)} − KL(r_φ(z|x) ‖ q_Z) of one point: the KL term in
    closed form, the reconstruction term by ``n`` reparametrised latents drawn with
    ``generator``. Returns (estimate, its Monte-Carlo standard error)."""
    n = int(min(max(n, 2), MAX_IWAE_K * 100))
    xt = _as_point(x)
    dtype = next(model.parameters()).dtype
    mu, std = model.encode(xt.reshape(1, 2).to(model.device, dtype))  # (1, d)
    eps = rng.randn(n, model.latent_dim, generator=generator, device=model.device, dtype=dtype)
    dec_mu, dec_std = model.decode(mu + std * eps)  # (n, 2)
    ll = gaussian_log_prob(xt.to(dec_mu.device), dec_mu.double(), dec_std.double())  # (n,)
    kl = float(gaussian_kl_std_normal(mu.double(), std.double())[0])
    return float(ll.mean()) - kl, float(ll.std() / math.sqrt(n))


@dataclass(frozen=True)
class PosteriorReport:
    """What the page shows for one data point: the grid posteriors (``post``) and the identity
    log q_θ(x) = ELBO(x) + KL(r_φ ‖ q_θ(·|x)) as numbers — ``elbo`` by Monte Carlo over
    ``elbo_samples`` encoder latents (± ``elbo_se``), ``post.log_q`` and ``post.kl`` by quadrature;
    ``gap`` = log q_θ(x) − ELBO − KL (zero up to the Monte-Carlo and grid errors)."""

    post: VaePosterior
    elbo: float
    elbo_se: float
    elbo_samples: int

    @property
    def gap(self) -> float:
        return self.post.log_q - self.elbo - self.post.kl


def posterior_points(trained: Trained, n: int = POSTERIOR_POINTS) -> np.ndarray:
    """The data points the page offers: ``n`` fixed target samples (seeded), ``(n, 2)``."""
    return _np(trained.target.sample(int(n), generator=make_generator(21)))


def trained_posterior(
    trained: Trained, index: int = 0, n: int = ELBO_SAMPLES, seed: int = 0
) -> PosteriorReport:
    """``vae_posterior`` and the Monte-Carlo ELBO of ``posterior_points(trained)[index]``."""
    model = trained.model
    x = posterior_points(trained)[int(index) % POSTERIOR_POINTS]
    post = vae_posterior(model, x)
    elbo, se = elbo_estimate(model, x, n, generator=make_generator(seed, model.device))
    return PosteriorReport(post, elbo, se, int(n))
