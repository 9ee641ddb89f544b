"""Shared machinery of the non-mixture targets.

- ``check_alpha_sigma``: validation of the ``x_t = alpha x0 + sigma eps`` coefficients.
- ``log_diff_ndtr``: a stable ``log(Φ(hi) - Φ(lo))``.
- ``curve_panels``: composite Gauss–Legendre nodes along a parametrised curve, with panels of equal
  arc length (so every panel is equally short compared with the kernel width).
- ``CurveMixture``: a "quadrature mixture" p(x) = Σ_k w_k K(x - c_k), one node per curve point, with
  a kernel K = (uniform box of half-width h) ⊗ N(0, σ² I) (h = 0: a plain isotropic Gaussian).
  Diffusing it keeps the form (centres a c_k, half-width a h, variance a² σ² + s²), so ``log_prob_t``
  and ``score_t`` are exact up to the (very accurate) quadrature. Evaluation is fast: on a grid the
  kernels factorise (p = (E₁ w) E₂ᵀ with per-coordinate kernel tables, one matrix product);
  scattered points only visit the blocks of nodes that can matter (rigorous bounds, see
  ``_select``); and the node set is coarsened when the diffused kernel is wide (the spacing/width
  ratio never exceeds its value at t = 0, so the accuracy never drops below that of ``log_prob``).

Everything is computed in float64 and returned in the input's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from genlib.distributions.base import LOG_2PI, Target2D, check_alpha_sigma
from genlib.limits import MAX_SAMPLES

__all__ = [
    "check_alpha_sigma",
    "log_diff_ndtr",
    "curve_panels",
    "NodeSet",
    "CurveMixture",
    "gaussian_log_prob",
    "as_points",
    "check_positive",
    "check_n",
]

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * LOG_2PI
#: Nodes whose contribution is provably below exp(-PRUNE) times the largest one are skipped.
PRUNE = 34.0
MIN_SCALE = 1e-3  # the smallest noise / standard deviation a target takes
#: Rows whose linear-space density falls below this are recomputed in log space.
_TINY = 1e-280
_CHUNK = 4096
_MAX_GRID_SIDE = 4096


def check_positive(
    name: str, value: float, lo: float = 0.0, hi: float = math.inf, tiny: float = MIN_SCALE
) -> float:
    """``float(value)`` if ``lo < value <= hi``, finite and at least ``tiny`` (a scale of
    1e-300 would underflow every density), else ``ValueError``."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise ValueError(f"{name} must be a number, got {value!r}") from err
    if isinstance(value, bool) or not (math.isfinite(v) and lo < v <= hi and v >= tiny):
        raise ValueError(f"{name} must be in [{max(lo, tiny):g}, {hi:g}], got {value!r}")
    return v


def check_n(n: int) -> int:
    """Validate a sample count."""
    try:
        ok = not isinstance(n, bool) and int(n) == n and 0 <= int(n) <= MAX_SAMPLES
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"sample count must be an integer in [0, {MAX_SAMPLES}], got {n!r}")
    return int(n)


def as_points(x: Tensor) -> Tensor:
    """``x`` as float64 ``(N, 2)`` (``ValueError`` for another shape)."""
    if x.ndim != 2 or x.shape[-1] != 2:
        raise ValueError(f"expected points of shape (N, 2), got {tuple(x.shape)}")
    return x.double()


def gaussian_log_prob(x: Tensor, var: float) -> Tensor:
    """log N(x; 0, var I) for ``(N, 2)`` float64 points: ``(N,)``."""
    return -LOG_2PI - math.log(var) - 0.5 * (x * x).sum(-1) / var


def log_diff_ndtr(lo: Tensor, hi: Tensor) -> Tensor:
    """log(Φ(hi) - Φ(lo)) for ``hi > lo`` elementwise, accurate in both tails (reflects to the
    side where the CDFs are small)."""
    flip = lo > 0  # both in the upper tail: Φ(hi) - Φ(lo) = Φ(-lo) - Φ(-hi)
    a = torch.where(flip, -lo, hi)  # the larger argument after reflection
    b = torch.where(flip, -hi, lo)
    la = torch.special.log_ndtr(a)
    lb = torch.special.log_ndtr(b)
    d = (lb - la).clamp(max=-1e-300)  # log(Φ(b)/Φ(a)) < 0
    return la + torch.log(-torch.expm1(d))


def curve_panels(
    curve: Callable[[np.ndarray], np.ndarray],
    t0: float,
    t1: float,
    n_panels: int,
    m: int,
    density: Callable[[np.ndarray], np.ndarray] | None = None,
    n_fine: int = 20001,
) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss–Legendre rule on ``[t0, t1]`` with ``n_panels`` panels of equal arc length of
    ``curve`` (``(T,) -> (T, 2)``) and ``m`` nodes each. Returns nodes ``(P, m)`` and weights
    ``(P, m)`` for ∫ f(t) density(t) dt (``density`` defaults to 1)."""
    tf = np.linspace(t0, t1, n_fine)
    pts = curve(tf)  # (T, 2)
    seg = np.sqrt((np.diff(pts, axis=0) ** 2).sum(-1))  # (T-1,)
    arc = np.concatenate([[0.0], np.cumsum(seg)])  # (T,)
    edges = np.interp(np.linspace(0.0, arc[-1], n_panels + 1), arc, tf)  # (P+1,)
    edges[0], edges[-1] = t0, t1
    xi, om = np.polynomial.legendre.leggauss(m)  # (m,)
    half = 0.5 * np.diff(edges)[:, None]  # (P, 1)
    mid = 0.5 * (edges[1:] + edges[:-1])[:, None]
    t = mid + half * xi[None, :]  # (P, m)
    w = half * om[None, :]
    if density is not None:
        w = w * density(t)
    return t, w


@dataclass(frozen=True)
class NodeSet:
    """Quadrature nodes (t = 0 geometry), grouped for pruning in blocks of ``BLOCK`` consecutive
    nodes (the last block padded with zero-weight copies)."""

    centres: Tensor  # (B, BLOCK, 2) kernel centres
    log_w: Tensor  # (B, BLOCK) normalised log weights (-inf for padding)
    block_centre: Tensor  # (B, 2)
    block_radius: Tensor  # (B,) max distance of a centre from its block centre
    lw_max: Tensor  # (B,)
    lw_min: Tensor  # (B,) over the real (finite-weight) nodes

    BLOCK = 8

    @classmethod
    def from_arrays(cls, centres: np.ndarray, weights: np.ndarray) -> NodeSet:
        """From centres ``(..., 2)`` and non-negative weights ``(...)`` (flattened in order, so
        that consecutive nodes are neighbours on the curve; normalised here)."""
        c = torch.as_tensor(np.asarray(centres), dtype=torch.float64).reshape(-1, 2)  # (K, 2)
        w = torch.as_tensor(np.asarray(weights), dtype=torch.float64).reshape(-1)  # (K,)
        if c.shape[0] != w.shape[0] or bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
            raise ValueError("quadrature weights must be finite, non-negative and one per node")
        k = c.shape[0]
        pad = (-k) % cls.BLOCK
        c = torch.cat([c, c[-1:].expand(pad, 2)])
        lw = torch.log(torch.cat([w / w.sum(), torch.zeros(pad, dtype=torch.float64)]))
        c = c.reshape(-1, cls.BLOCK, 2)
        lw = lw.reshape(-1, cls.BLOCK)
        bc = 0.5 * (c.amax(1) + c.amin(1))  # (B, 2)
        br = (c - bc[:, None, :]).norm(dim=-1).amax(1)  # (B,)
        fin = torch.where(torch.isfinite(lw), lw, torch.full_like(lw, math.inf))
        return cls(c, lw, bc, br, lw.amax(1), fin.amin(1))

    @property
    def weights(self) -> Tensor:
        return self.log_w.exp().reshape(-1)  # (K,) incl. zero-weight padding

    @property
    def flat_centres(self) -> Tensor:
        return self.centres.reshape(-1, 2)  # (K, 2)


def _grid_structure(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """Unique coordinate values and inverse indices when the points lie on a (near-)Cartesian grid
    (``U1 * U2 <= 2 N``), else None."""
    n = x.shape[0]
    u1, i1 = torch.unique(x[:, 0], return_inverse=True)
    if u1.shape[0] > min(n, _MAX_GRID_SIDE):
        return None
    u2, i2 = torch.unique(x[:, 1], return_inverse=True)
    if u1.shape[0] * u2.shape[0] > 2 * n or u2.shape[0] > _MAX_GRID_SIDE:
        return None
    return u1, i1, u2, i2


def _box_factor(u: Tensor, h: float, sd: float, want_score: bool) -> tuple[Tensor, Tensor | None]:
    """2(Φ((u+h)/sd) - Φ((u-h)/sd)) = erfc(lo) - erfc(hi) with the arguments reflected to the side
    where erfc is small (no cancellation in either tail), and its u-derivative."""
    zl = (u - h) / sd
    zh = (u + h) / sd
    flip = zl > 0
    lo = torch.where(flip, zl, -zh) / _SQRT2
    hi = torch.where(flip, zh, -zl) / _SQRT2
    k = torch.special.erfc(lo) - torch.special.erfc(hi)
    dk = None
    if want_score:
        dk = (torch.exp(-0.5 * zh * zh) - torch.exp(-0.5 * zl * zl)) * (
            2 / (sd * math.sqrt(2 * math.pi))
        )
    return k, dk


class CurveMixture(Target2D):
    """Σ_k w_k [U(box(c_k, h)) ⊗ N(0, σ² I)](x) over quadrature nodes ``c_k`` along curves.

    Subclasses set ``std`` (σ at t = 0) and ``half_width`` (h at t = 0; 0 for a Gaussian kernel),
    call ``_set_levels`` with a node builder ``panels_per_arc -> NodeSet`` and the base panel count,
    and implement ``sample``.
    """

    std: float = 0.1
    half_width: float = 0.0
    #: Coarsest panel count per arc used for wide (diffused) kernels.
    min_panels: int = 2

    def _set_levels(self, build: Callable[[int], NodeSet], panels: int) -> None:
        self._build = build
        self._levels: dict[int, NodeSet] = {}
        self._base_panels = int(panels)
        self.nodes = self._level(0)

    def _level(self, level: int) -> NodeSet:
        panels = max(self.min_panels, math.ceil(self._base_panels / 2**level))
        if panels not in self._levels:
            self._levels[panels] = self._build(panels)
        return self._levels[panels]

    def _pick_level(self, a: float, var: float) -> int:
        """The coarsest level whose spacing/width ratio a·Δ/√var stays ≤ that of t = 0 (Δ/σ)."""
        ratio = math.sqrt(var) / (a * self.std) if a > 0 else math.inf
        level = 0
        while (
            2 ** (level + 1) <= ratio and math.ceil(self._base_panels / 2**level) > self.min_panels
        ):
            level += 1
        return level

    # -- density ------------------------------------------------------------------------------

    def log_prob(self, x: Tensor) -> Tensor:
        return self._eval(x, 1.0, 0.0, False)[0].to(x.dtype)

    def score(self, x: Tensor) -> Tensor:
        return self._eval(x, 1.0, 0.0, True)[1].to(x.dtype)

    def log_prob_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        a, s = check_alpha_sigma(alpha, sigma)
        return self._eval(x, a, s, False)[0].to(x.dtype)

    def score_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        a, s = check_alpha_sigma(alpha, sigma)
        return self._eval(x, a, s, True)[1].to(x.dtype)

    def moments(self, n: int = 0) -> tuple[Tensor, Tensor]:
        """Mean ``(2,)`` and covariance ``(2, 2)``, exact up to the quadrature."""
        w = self.nodes.weights  # (K,)
        c = self.nodes.flat_centres  # (K, 2)
        mean = (w[:, None] * c).sum(0)
        d = c - mean
        kernel_var = self.std**2 + self.half_width**2 / 3.0
        cov = (w[:, None, None] * d[:, :, None] * d[:, None, :]).sum(0)
        return mean, cov + kernel_var * torch.eye(2, dtype=torch.float64)

    # -- evaluation engine --------------------------------------------------------------------

    def _eval(
        self, x: Tensor, a: float, s: float, want_score: bool
    ) -> tuple[Tensor, Tensor | None]:
        x64 = as_points(x).detach()
        var = a * a * self.std**2 + s * s
        if a == 0.0:  # every centre at 0: x_t = sigma * eps
            return gaussian_log_prob(x64, var), (-x64 / var if want_score else None)
        h = a * self.half_width
        if 0 < h < 1e-6 * math.sqrt(var):  # box negligible: fold its variance into σ²
            var, h = var + h * h / 3.0, 0.0
        nodes = self._level(self._pick_level(a, var))
        n = x64.shape[0]
        logp = torch.empty(n, dtype=torch.float64)
        score = torch.empty_like(x64) if want_score else None
        grid = _grid_structure(x64) if n > 0 else None
        if grid is not None:
            lp, sc = self._eval_grid(grid, nodes, a, var, h, want_score)
            logp.copy_(lp)
            if want_score:
                score.copy_(sc)
            rows = (~torch.isfinite(lp)).nonzero()[:, 0]  # underflow: redo those points
        else:
            rows = torch.arange(n)
        for start in range(0, rows.shape[0], _CHUNK):
            r = rows[start : start + _CHUNK]
            lp, sc = self._eval_points(x64[r], nodes, a, var, h, want_score)
            logp[r] = lp
            if want_score:
                score[r] = sc
        return logp, score

    @staticmethod
    def _coord_kernel(
        u: Tensor, c: Tensor, var: float, h: float, want_score: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Per-coordinate log kernel log k(u - c) ``(U, K)`` and its u-derivative."""
        d = u[:, None] - c[None, :]  # (U, K)
        if h == 0.0:
            lk = -d * d / (2 * var) - 0.5 * (LOG_2PI + math.log(var))
            return lk, (-d / var if want_score else None)
        sd = math.sqrt(var)
        zl, zh = (d - h) / sd, (d + h) / sd
        ld = log_diff_ndtr(zl, zh)  # log(Φ(zh) - Φ(zl))
        dl = None
        if want_score:
            dl = (
                torch.exp(-0.5 * zh * zh - _LOG_SQRT_2PI - ld)
                - torch.exp(-0.5 * zl * zl - _LOG_SQRT_2PI - ld)
            ) / sd
        return ld - math.log(2 * h), dl

    def _eval_grid(
        self,
        grid: tuple[Tensor, Tensor, Tensor, Tensor],
        nodes: NodeSet,
        a: float,
        var: float,
        h: float,
        want_score: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Separable kernels on a grid: p = (E1 · w) @ E2ᵀ with per-coordinate kernels E (U, K)."""
        u1, i1, u2, i2 = grid
        c = a * nodes.flat_centres  # (K, 2)
        w = nodes.weights  # (K,)
        l1, d1 = self._coord_kernel(u1, c[:, 0], var, h, want_score)  # (U1, K)
        l2, d2 = self._coord_kernel(u2, c[:, 1], var, h, want_score)  # (U2, K)
        m1 = l1.amax(1, keepdim=True)  # (U1, 1)
        m2 = l2.amax(1, keepdim=True)
        e1 = torch.exp(l1 - m1) * w  # (U1, K)
        e2 = torch.exp(l2 - m2)  # (U2, K)
        dens = (e1 @ e2.T)[i1, i2]  # (N,)
        ok = dens > _TINY
        logp = torch.where(ok, torch.log(dens.clamp(min=_TINY)) + m1[i1, 0] + m2[i2, 0], -math.inf)
        if not want_score:
            return logp, None
        g1 = ((e1 * d1) @ e2.T)[i1, i2]
        g2 = (e1 @ (e2 * d2).T)[i1, i2]
        return logp, torch.stack([g1, g2], 1) / dens.clamp(min=_TINY)[:, None]

    def _select(
        self, x: Tensor, nodes: NodeSet, a: float, var: float, h: float
    ) -> tuple[Tensor, Tensor]:
        """(point, block) pairs that can matter: ``(S,), (S,)`` indices.

        For a node at distance r from x (centre to x), with q = √2 h (box half-diagonal):
        log K ≤ min(2A, 2B - (r - q)₊² / 2σ²) and log K ≥ 2B - (r + q)² / 2σ², where
        A = -log 2h, B = -½ log 2πσ². A block (centre C, radius R) is dropped for x when its upper
        bound is below the best lower bound of any block minus ``PRUNE``.
        """
        d = torch.cdist(x, a * nodes.block_centre)  # (n, B)
        rad = a * nodes.block_radius  # (B,)
        q = _SQRT2 * h
        two_b = -LOG_2PI - math.log(var)
        peak = two_b if h == 0 else min(two_b, -2.0 * math.log(2.0 * h))
        far = (d - rad - q).clamp(min=0.0)
        ub = nodes.lw_max + torch.clamp(two_b - far * far / (2 * var), max=peak)  # (n, B)
        near = d + rad + q
        lb = nodes.lw_min + two_b - near * near / (2 * var)  # (n, B)
        keep = ub >= lb.amax(1, keepdim=True) - PRUNE
        idx = keep.nonzero()
        return idx[:, 0], idx[:, 1]

    def _eval_points(
        self, x: Tensor, nodes: NodeSet, a: float, var: float, h: float, want_score: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Scattered points: linear-space sums over the selected blocks (log-space fallback)."""
        n = x.shape[0]
        pi, pb = self._select(x, nodes, a, var, h)
        xs = x[pi]  # (S, 2)
        c = nodes.centres[pb]  # (S, BLOCK, 2)
        u1 = xs[:, 0:1] - a * c[..., 0]  # (S, BLOCK)
        u2 = xs[:, 1:2] - a * c[..., 1]
        ones = torch.ones(NodeSet.BLOCK, dtype=torch.float64)
        g1 = g2 = None
        if h == 0.0:
            lw = nodes.log_w[pb] - LOG_2PI - math.log(var)  # (S, BLOCK)
            wk = torch.exp(lw - (u1 * u1 + u2 * u2) / (2 * var))  # (S, BLOCK)
            if want_score:
                g1, g2 = -(u1 * wk) @ ones / var, -(u2 * wk) @ ones / var  # (S,)
        else:
            sd = math.sqrt(var)
            w = nodes.log_w[pb].exp() / (16 * h * h)  # (S, BLOCK)  w / (2h)²
            k1, dk1 = _box_factor(u1, h, sd, want_score)  # (S, BLOCK) 2h k_1, 2h k_1'
            k2, dk2 = _box_factor(u2, h, sd, want_score)
            wk = w * k1 * k2
            if want_score:
                g1, g2 = (w * dk1 * k2) @ ones, (w * k1 * dk2) @ ones
        dens = torch.zeros(n, dtype=torch.float64).index_add_(0, pi, wk @ ones)  # (n,)
        logp = torch.log(dens)
        score = None
        if want_score:
            grad = torch.stack([g1, g2], 1)  # (S, 2)
            score = (
                torch.zeros(n, 2, dtype=torch.float64).index_add_(0, pi, grad)
                / dens.clamp(min=1e-300)[:, None]
            )
        bad = dens < _TINY
        if bool(bad.any()):
            rows = bad.nonzero()[:, 0]
            lp_b, sc_b = self._eval_logspace(x[rows], nodes, a, var, h, want_score)
            logp[rows] = lp_b
            if want_score:
                score[rows] = sc_b
        return logp, score

    def _eval_logspace(
        self, x: Tensor, nodes: NodeSet, a: float, var: float, h: float, want_score: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Dense log-space evaluation over all nodes (for the rare far-away points)."""
        c = a * nodes.flat_centres  # (K, 2)
        lw = nodes.log_w.reshape(-1)  # (K,)

        def f(y: Tensor) -> Tensor:
            u = y[:, None, :] - c  # (n, K, 2)
            if h == 0.0:
                lk = -(u * u).sum(-1) / (2 * var) - LOG_2PI - math.log(var)
            else:
                sd = math.sqrt(var)
                lk = (log_diff_ndtr((u - h) / sd, (u + h) / sd) - math.log(2 * h)).sum(-1)
            return torch.logsumexp(lw + lk, dim=1)

        if not want_score:
            return f(x), None
        with torch.enable_grad():
            y = x.clone().requires_grad_(True)
            lp = f(y)
            (g,) = torch.autograd.grad(lp.sum(), y)
        return lp.detach(), g
