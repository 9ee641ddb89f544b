"""Sample-based and exact metrics between a model and a target, each with its noise floor.

Sample metrics compare two point clouds ``x (N, 2)``, ``y (M, 2)``. The *noise floor* of a metric is
its value between two independent target samples of the same sizes: a model "matches" the target
when its metric is within a small factor of the floor. Exact metrics use the target's density:
``exact_kl(p, log_q)`` = E_p[log p − log q] = NLL(q) − H(p), on the same samples of p.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genlib.distributions.base import GaussianMixture, Target2D

__all__ = [
    "sliced_wasserstein",
    "mmd_rbf",
    "energy_distance",
    "histogram_kl",
    "exact_kl",
    "nll",
    "grid_kl",
    "mode_coverage",
    "mode_radius",
    "mixture_mode_coverage",
    "noise_floor",
    "SAMPLE_METRICS",
]

_MAX_PAIRWISE = 1500  # points per side for O(N²) metrics (subsampled above this: 3 × 18 MB
# float64 kernels instead of 3 × 134 MB at 4096, and ~10× faster; the MMD² estimate's own noise
# at 1500 points is below the floors it is compared with)
_MEDIAN_POINTS = 1000  # pooled points for the RBF median bandwidth


def _sub(x: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
    if x.shape[0] <= n:
        return x
    idx = torch.randperm(x.shape[0], generator=generator)[:n]
    return x[idx]


def sliced_wasserstein(
    x: Tensor, y: Tensor, n_proj: int = 256, generator: torch.Generator | None = None
) -> float:
    """Sliced 2-Wasserstein distance: sqrt(mean over random directions of W2² of the projections).
    Unequal sizes are compared through matching quantiles."""
    x, y = x.double().cpu(), y.double().cpu()
    ang = torch.rand(n_proj, generator=generator, dtype=torch.float64) * math.pi
    dirs = torch.stack([ang.cos(), ang.sin()], 1)  # (P, 2)
    px = torch.sort(x @ dirs.T, dim=0).values  # (N, P)
    py = torch.sort(y @ dirs.T, dim=0).values  # (M, P)
    if px.shape[0] != py.shape[0]:
        q = torch.linspace(0, 1, max(px.shape[0], py.shape[0]), dtype=torch.float64)
        px = torch.quantile(px, q, dim=0)
        py = torch.quantile(py, q, dim=0)
    return float(((px - py) ** 2).mean().sqrt())


_KERNEL_BLOCK = 512  # rows per block of a pairwise kernel: 512 × 1500 float64 = 6 MB


def _rbf_sum(a: Tensor, b: Tensor, h2: float, same: bool) -> Tensor:
    """Σ_ij exp(−‖a_i − b_j‖² / (2 h2)) over all pairs (``same``: a is b, the diagonal i = j left
    out), accumulated over row blocks so memory stays O(block · M), never O(N · M)."""
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, a.shape[0], _KERNEL_BLOCK):
        d = torch.cdist(a[start : start + _KERNEL_BLOCK], b).pow_(2)  # (B, M)
        k = d.mul_(-0.5 / h2).exp_()
        total += k.sum()
        if same:  # the block's diagonal entries k_ii (cdist's ≈ 0, as the dense formula had)
            rows = torch.arange(k.shape[0])
            total -= k[rows, rows + start].sum()
    return total


def mmd_rbf(
    x: Tensor, y: Tensor, bandwidth: float | None = None, generator: torch.Generator | None = None
) -> float:
    """Unbiased MMD² with an RBF kernel; bandwidth by the median heuristic on the pooled sample.
    The kernel sums are accumulated in row blocks (``_rbf_sum``): no N × M matrix is held."""
    x = _sub(x.double().cpu(), _MAX_PAIRWISE, generator)
    y = _sub(y.double().cpu(), _MAX_PAIRWISE, generator)
    if bandwidth is None:
        # median heuristic on ≤ _MEDIAN_POINTS pooled points (the median of 10⁶+ distances costs
        # seconds and is no better an estimate)
        pooled_pts = _sub(torch.cat([x, y]), _MEDIAN_POINTS, generator)
        d = torch.pdist(pooled_pts).pow(2)
        h2 = float(d[d > 0].median()) if bool((d > 0).any()) else 1.0
    else:
        h2 = bandwidth**2
    n, m = x.shape[0], y.shape[0]
    sxx = _rbf_sum(x, x, h2, same=True) / (n * (n - 1))
    syy = _rbf_sum(y, y, h2, same=True) / (m * (m - 1))
    sxy = _rbf_sum(x, y, h2, same=False) / (n * m)
    return float(sxx + syy - 2 * sxy)


def energy_distance(x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> float:
    """Energy distance 2E|X−Y| − E|X−X'| − E|Y−Y'| (U-statistics within samples)."""
    x = _sub(x.double().cpu(), _MAX_PAIRWISE, generator)
    y = _sub(y.double().cpu(), _MAX_PAIRWISE, generator)
    n, m = x.shape[0], y.shape[0]
    exy = torch.cdist(x, y).mean()
    exx = torch.cdist(x, x).sum() / (n * (n - 1))
    eyy = torch.cdist(y, y).sum() / (m * (m - 1))
    return float(2 * exy - exx - eyy)


def histogram_kl(
    x: Tensor,
    y: Tensor,
    bounds: tuple[float, float, float, float],
    bins: int = 40,
    alpha: float = 0.5,
) -> float:
    """KL(hist_x ‖ hist_y) on a bins×bins grid over ``bounds`` with additive smoothing ``alpha``."""

    def hist(z: Tensor) -> Tensor:
        h = torch.histogramdd(z.double().cpu(), bins=[bins, bins], range=list(bounds)).hist
        h = h + alpha
        return h / h.sum()

    p, q = hist(x), hist(y)
    return float((p * (p / q).log()).sum())


def nll(log_q: Callable[[Tensor], Tensor], x: Tensor, chunk: int = 8192) -> float:
    """−mean log q(x) in nats, evaluated in chunks."""
    vals = [log_q(c) for c in torch.split(x, chunk)]
    return float(-torch.cat(vals).double().mean())


def exact_kl(
    target: Target2D,
    log_q: Callable[[Tensor], Tensor],
    n: int = 20_000,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """KL(p‖q) = NLL(q) − H(p) on the same n samples of p (the difference has low variance).
    Returns ``{"kl", "nll", "entropy", "stderr"}``; ``kl`` is +inf where q vanishes on p's support."""
    x = target.sample(n, generator=generator)
    log_p = target.log_prob(x).double()
    with torch.no_grad():
        lq = torch.cat([log_q(c).double().cpu() for c in torch.split(x, 8192)])
    diff = log_p - lq
    return {
        "kl": float(diff.mean()),
        "nll": float(-lq.mean()),
        "entropy": float(-log_p.mean()),
        "stderr": float(diff.std() / math.sqrt(n)),
    }


def grid_kl(log_p: Tensor, log_q: Tensor, cell_area: float) -> float:
    """KL(p‖q) = Σ p log(p/q) ΔA on a grid of log densities (same shape); p = 0 cells add 0."""
    p = log_p.double().exp()
    term = torch.where(p > 0, p * (log_p.double() - log_q.double()), torch.zeros_like(p))
    return float(term.sum() * cell_area)


def mode_coverage(
    samples: Tensor,
    centres: Tensor,
    radius: float,
    min_fraction: float = 0.2,
    weights: Tensor | None = None,
) -> dict[str, float]:
    """Modes hit by ``samples (N, 2)``, for mode centres ``centres (K, 2)``: each sample is
    assigned to its nearest centre when it lies within ``radius`` of it, and a mode counts as
    covered when it holds at least ``min_fraction`` of its fair share of the samples (N·w_k for
    mode weights ``weights (K,)``, default equal: N/K). Returns ``modes_covered``,
    ``modes_total``, ``fraction_near_mode`` (samples within ``radius`` of a centre) and
    ``radius``."""
    d = torch.cdist(samples.detach().double().cpu(), centres.detach().double().cpu())  # (N, K)
    k = centres.shape[0]
    nearest = d.argmin(1)
    close = d.min(1).values <= radius
    counts = torch.bincount(nearest[close], minlength=k).double()  # (K,)
    w = (
        torch.full((k,), 1.0 / k, dtype=torch.float64)
        if weights is None
        else weights.detach().double().cpu() / weights.detach().double().sum().cpu()
    )
    covered = int((counts >= min_fraction * samples.shape[0] * w).sum())
    return {
        "modes_covered": float(covered),
        "modes_total": float(k),
        "fraction_near_mode": float(close.double().mean()) if samples.shape[0] else 0.0,
        "radius": float(radius),
    }


def mode_radius(target: GaussianMixture) -> float:
    """The one radius rule of mode coverage: three standard deviations of the widest component
    (a 2D Gaussian holds 98.9 % of its mass within 3σ), capped at half the smallest distance
    between two distinct centres, so that the discs around the modes never overlap."""
    centres = torch.unique(target.comp.means.double(), dim=0)  # (K', 2), duplicates merged
    radius = 3.0 * float(target.comp.variances.sqrt().max())
    if centres.shape[0] > 1:
        dist = torch.cdist(centres, centres)
        dist.fill_diagonal_(float("inf"))
        radius = min(radius, 0.5 * float(dist.min()))
    return radius


def mixture_mode_coverage(
    samples: Tensor,
    target: Target2D,
    radius: float | None = None,
    min_fraction: float = 0.2,
) -> dict[str, float] | None:
    """``mode_coverage`` of ``samples (N, 2)`` against a Gaussian-mixture target: its centres,
    its weights and (by default) ``mode_radius(target)``; ``None`` for targets that are not
    Gaussian mixtures (no modes to count). This is the mode coverage every page and test uses."""
    if not isinstance(target, GaussianMixture):
        return None
    r = mode_radius(target) if radius is None else float(radius)
    # components sharing a centre are one mode (their weights add up)
    centres, inv = torch.unique(target.comp.means.double(), dim=0, return_inverse=True)
    w = torch.zeros(centres.shape[0], dtype=torch.float64).index_add_(
        0, inv, target.comp.log_weights.exp()
    )
    return mode_coverage(samples, centres, r, min_fraction, weights=w)


SAMPLE_METRICS: dict[str, Callable[..., float]] = {
    "sliced_wasserstein": sliced_wasserstein,
    "mmd": mmd_rbf,
    "energy": energy_distance,
}


def noise_floor(
    target: Target2D,
    n: int,
    metric: str = "sliced_wasserstein",
    repeats: int = 3,
    seed: int = 12345,
) -> float:
    """Mean of ``metric`` between pairs of independent target samples of size ``n`` each."""
    fn = SAMPLE_METRICS[metric]
    g = torch.Generator().manual_seed(seed)
    vals = [
        fn(target.sample(n, generator=g), target.sample(n, generator=g), generator=g)
        for _ in range(repeats)
    ]
    return float(sum(vals) / len(vals))
