"""Forward vs reverse KL fitting (lecture 2-5, 訓練の指針 (a) / (b)): mode covering vs mode seeking.

A simple model q_θ (a Gaussian — the lecture's case —, a Gaussian mixture, or a small coupling flow)
is fitted to a target p with an exact density by plain gradient steps on one of

    (a) forward KL   D_KL(p‖q_θ) = −⟨log q_θ(x)⟩_p − S(p)          (maximum likelihood on samples of p)
    (b) reverse KL   D_KL(q_θ‖p) = ⟨log q_θ(y) − log p(y)⟩_{q_θ}    (reparametrised y = f_θ(ε), ε ~ N(0, I))

(a) needs samples of p and the density of q_θ; (b) needs samples of q_θ and the density of p (up to
a constant). Every frame records q_θ's parameters, its samples (the same ε in every frame, so the
animation is smooth), its density on the display grid and the two exact KL values computed on a grid
(``grid_kls``). ``fit_pair`` runs both directions from the same start; ``seed_sweep`` tallies which
mode reverse KL picks per seed.

    cfg = KLConfig(target="two_peaks", divergence="reverse", seed=3)
    res = fit(cfg)                        # KLFit: frames, trace(), final
    fwd, rev = fit_pair(cfg)              # same init, both directions

Also the ``python -m genlib kl`` subcommand (``configure`` + ``run_cli`` below).
"""

from __future__ import annotations

import abc
import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import numpy as np
import torch
from torch import Tensor, nn

from genlib import distributions
from genlib.device import configure_threads, get_device, make_generator
from genlib.distributions.base import LOG_2PI, Bounds, GaussianMixture, Target2D
from genlib.metrics import grid_kl
from genlib.registry import Registry

__all__ = [
    "QFamily",
    "Divergence",
    "OptimizerName",
    "KLConfig",
    "KLFrame",
    "KLFit",
    "KLGrid",
    "SeedSweep",
    "QDist",
    "GaussianQ",
    "MixtureQ",
    "FlowQ",
    "Q_FAMILIES",
    "build_q",
    "make_grid",
    "grid_kls",
    "GridCache",
    "exact_kls",
    "target_modes",
    "mode_fractions",
    "picked_mode",
    "DOMINANT",
    "moment_matched",
    "frame_steps",
    "fit",
    "fit_pair",
    "seed_sweep",
    "configure",
    "run_cli",
    "MAX_STEPS",
    "MAX_SAMPLES",
    "MAX_FRAMES",
    "MAX_GRID",
    "MAX_SEEDS",
    "MAX_COMPONENTS",
    "MC_SAMPLES",
    "FlowCoupling",
]

QFamily = Literal["gaussian", "mixture", "flow"]
Divergence = Literal["forward", "reverse"]
OptimizerName = Literal["adam", "sgd"]
FlowCoupling = Literal["affine", "spline"]
Status = Literal["ok", "diverged", "infinite"]

MAX_STEPS = 5000
MAX_SAMPLES = 4096
MAX_FRAMES = 200
MAX_GRID = 256
MAX_SHOW = 2000
MAX_SEEDS = 32
MAX_COMPONENTS = 8
MAX_FLOW_LAYERS = 8
_MAX_SPAN = 60.0  # the KL / display grid never spans more than this per axis
MC_SAMPLES = 20_000  # Monte-Carlo fallback of exact_kls when a grid cannot hold q

Params = tuple[tuple[str, Any], ...]


def _freeze(kw: dict[str, Any] | Params | None) -> Params:
    if kw is None:
        return ()
    items = kw.items() if isinstance(kw, dict) else kw

    def fz(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return tuple(fz(e) for e in v)
        return v

    return tuple(sorted((str(k), fz(v)) for k, v in items))


# ----------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class KLConfig:
    """One KL fit (frozen and hashable: the page's cache key). Bounds are checked on creation.

    ``n_samples`` is the forward-KL minibatch (fresh samples of p each step) or the number of
    reverse-KL Monte-Carlo samples of q_θ per step. ``init_mean``/``init_scale`` fix the start
    q_θ = N(init_mean, init_scale² I) (the mixture jitters its component means around it by
    ``init_scale``/2, the flow starts as exactly that Gaussian)."""

    target: str = "two_peaks"
    target_params: Params = ()
    q: QFamily = "gaussian"
    divergence: Divergence = "reverse"
    steps: int = 800
    lr: float = 0.03
    optimizer: OptimizerName = "adam"
    n_samples: int = 256
    init_mean: tuple[float, float] = (0.0, 0.0)
    init_scale: float = 0.5
    seed: int = 0
    num_frames: int = 60
    components: int = 2
    flow_layers: int = 4
    flow_hidden: int = 32
    flow_coupling: FlowCoupling = "affine"
    grid_res: int = 160
    n_show: int = 400

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_params", _freeze(self.target_params))
        object.__setattr__(self, "init_mean", tuple(float(v) for v in self.init_mean))
        if self.q not in get_args(QFamily):
            raise ValueError(
                f"unknown q family {self.q!r}; choose one of {', '.join(get_args(QFamily))}"
            )
        if self.divergence not in get_args(Divergence):
            raise ValueError(f"divergence must be 'forward' or 'reverse', got {self.divergence!r}")
        if self.flow_coupling not in get_args(FlowCoupling):
            raise ValueError(
                f"flow_coupling must be 'affine' or 'spline', got {self.flow_coupling!r}"
            )
        if self.optimizer not in get_args(OptimizerName):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        _check_int("steps", self.steps, 1, MAX_STEPS)
        _check_int("n_samples", self.n_samples, 2, MAX_SAMPLES)
        _check_int("num_frames", self.num_frames, 2, MAX_FRAMES)
        _check_int("components", self.components, 1, MAX_COMPONENTS)
        _check_int("flow_layers", self.flow_layers, 1, MAX_FLOW_LAYERS)
        _check_int("flow_hidden", self.flow_hidden, 4, 128)
        _check_int("grid_res", self.grid_res, 16, MAX_GRID)
        _check_int("n_show", self.n_show, 1, MAX_SHOW)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        if not (math.isfinite(self.lr) and 0.0 < self.lr <= 10.0):
            raise ValueError(f"lr must be in (0, 10], got {self.lr}")
        if len(self.init_mean) != 2 or not all(
            math.isfinite(v) and abs(v) <= 20 for v in self.init_mean
        ):
            raise ValueError("init_mean must be two numbers in [-20, 20]")
        if not (math.isfinite(self.init_scale) and 0.01 <= self.init_scale <= 10.0):
            raise ValueError(f"init_scale must be in [0.01, 10], got {self.init_scale}")

    def build_target(self) -> Target2D:
        """The target p; unknown names or bad parameters raise ``ValueError`` with a clear text."""
        if self.target not in distributions.names():
            raise ValueError(
                f"unknown target {self.target!r}; known: {', '.join(distributions.names())}"
            )
        try:
            return distributions.build(self.target, **dict(self.target_params))
        except TypeError as exc:
            raise ValueError(f"bad parameters for target {self.target!r}: {exc}") from None

    def with_(self, **changes: Any) -> KLConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_params"] = {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in self.target_params
        }
        d["init_mean"] = list(self.init_mean)
        return d


def _check_int(name: str, v: Any, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not (lo <= int(v) <= hi):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")


# ----------------------------------------------------------------------------------------------
# the q families


def _chol(raw_diag: Tensor, off: Tensor) -> Tensor:
    """Lower-triangular Cholesky factors with a positive diagonal: (..., 2), (...,) -> (..., 2, 2)."""
    d = raw_diag.exp()
    zero = torch.zeros_like(off)
    row0 = torch.stack([d[..., 0], zero], -1)
    row1 = torch.stack([off, d[..., 1]], -1)
    return torch.stack([row0, row1], -2)


def _gauss_log_prob(x: Tensor, mean: Tensor, raw_diag: Tensor, off: Tensor) -> Tensor:
    """log N(x; μ, L Lᵀ) for x (N, 2) and one or K Gaussians: returns (N,) or (N, K)."""
    d = raw_diag.exp()  # (..., 2)
    r = x.unsqueeze(-2) - mean if mean.ndim == 2 else x - mean  # (N, K, 2) or (N, 2)
    z0 = r[..., 0] / d[..., 0]  # forward substitution: z = L⁻¹ (x − μ)
    z1 = (r[..., 1] - off * z0) / d[..., 1]
    return -LOG_2PI - raw_diag.sum(-1) - 0.5 * (z0**2 + z1**2)


class QDist(nn.Module, abc.ABC):
    """A model q_θ with an exact density and reparametrised samples y = f_θ(ε)."""

    family: ClassVar[str] = "q"

    @abc.abstractmethod
    def log_prob(self, x: Tensor) -> Tensor:
        """log q_θ(x): (N, 2) -> (N,)."""

    @abc.abstractmethod
    def push(self, noise: Tensor) -> Tensor:
        """y = f_θ(noise) for display noise from ``display_noise``: (N, 3) -> (N, 2)."""

    @abc.abstractmethod
    def rsample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Reparametrised samples and their log density: ``(y (n, 2), log q_θ(y) (n,))``."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """The parameters as plain lists (JSON-able)."""

    def display_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Noise (n, 3): ε (n, 2) and a uniform u (n,) (the mixture's component choice)."""
        eps = torch.randn(n, 2, generator=generator, device=self.device)
        u = torch.rand(n, 1, generator=generator, device=self.device)
        return torch.cat([eps, u], 1)

    def forward_kl(self, x: Tensor) -> Tensor:
        """(a) −⟨log q_θ(x)⟩ over samples x of p = D_KL(p‖q_θ) + S(p): scalar."""
        return -self.log_prob(x).mean()

    def reverse_kl(
        self, log_p: Callable[[Tensor], Tensor], n: int, generator: torch.Generator | None
    ) -> Tensor:
        """(b) ⟨log q_θ(y) − log p(y)⟩ over reparametrised y ~ q_θ = D_KL(q_θ‖p): scalar."""
        y, log_q = self.rsample(n, generator)
        return (log_q - log_p(y)).mean()

    def moments(self) -> tuple[Tensor, Tensor]:
        """Mean (2,) and covariance (2, 2) of q_θ (float64, detached)."""
        with torch.no_grad():
            g = make_generator(777, self.device)
            y, _ = self.rsample(8192, g)
            y = y.double()
            m = y.mean(0)
            c = (y - m).T @ (y - m) / (y.shape[0] - 1)
        return m.cpu(), c.cpu()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


Q_FAMILIES: Registry[QDist] = Registry("q family")


@Q_FAMILIES.register("gaussian")
class GaussianQ(QDist):
    """q_θ = N(μ, L Lᵀ) with L lower triangular, L_ii = exp(·) > 0 (θ = μ, log L_ii, L_21)."""

    family = "gaussian"

    def __init__(self, init_mean: Sequence[float] = (0.0, 0.0), init_scale: float = 1.0) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.tensor(list(init_mean), dtype=torch.float32))
        self.raw_diag = nn.Parameter(torch.full((2,), math.log(init_scale)))
        self.off = nn.Parameter(torch.zeros(()))

    @classmethod
    def from_moments(cls, mean: Sequence[float], cov: Any) -> GaussianQ:
        """N(mean, cov) as a ``GaussianQ`` (cov symmetric positive definite)."""
        q = cls((0.0, 0.0), 1.0)
        L = torch.linalg.cholesky(torch.as_tensor(np.asarray(cov), dtype=torch.float64))
        with torch.no_grad():
            q.mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
            q.raw_diag.copy_(L.diagonal().log().float())
            q.off.copy_(L[1, 0].float())
        return q

    @property
    def L(self) -> Tensor:  # (2, 2)
        return _chol(self.raw_diag, self.off)

    def log_prob(self, x: Tensor) -> Tensor:
        return _gauss_log_prob(x, self.mean, self.raw_diag, self.off)

    def push(self, noise: Tensor) -> Tensor:
        return self.mean + noise[:, :2] @ self.L.T

    def rsample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        eps = torch.randn(n, 2, generator=generator, device=self.device)  # (n, 2)
        y = self.mean + eps @ self.L.T
        # log q(μ + Lε) = −log 2π − log det L − |ε|²/2 (its θ-gradient is exactly −∇ log det L)
        return y, -LOG_2PI - self.raw_diag.sum() - 0.5 * (eps**2).sum(1)

    def moments(self) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            L = self.L.double()
            return self.mean.detach().double().cpu(), (L @ L.T).cpu()

    def describe(self) -> dict[str, Any]:
        m, c = self.moments()
        return {
            "mean": m.tolist(),
            "cov": c.tolist(),
            "chol": self.L.detach().double().cpu().tolist(),
        }


@Q_FAMILIES.register("mixture")
class MixtureQ(QDist):
    """q_θ = Σ_k w_k N(μ_k, L_k L_kᵀ), w = softmax(logits). Reverse KL without sampling the
    component: ⟨f⟩_q = Σ_k w_k ⟨f(μ_k + L_k ε)⟩_ε, so the weights get exact gradients."""

    family = "mixture"

    def __init__(
        self,
        init_mean: Sequence[float] = (0.0, 0.0),
        init_scale: float = 1.0,
        components: int = 2,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        k = components
        jitter = (
            torch.randn(k, 2, generator=generator) * (0.5 * init_scale)
            if k > 1
            else torch.zeros(1, 2)
        )
        self.logits = nn.Parameter(torch.zeros(k))
        self.means = nn.Parameter(torch.tensor(list(init_mean), dtype=torch.float32) + jitter)
        self.raw_diag = nn.Parameter(torch.full((k, 2), math.log(init_scale)))
        self.off = nn.Parameter(torch.zeros(k))

    @property
    def weights(self) -> Tensor:
        return torch.softmax(self.logits, 0)

    def log_prob(self, x: Tensor) -> Tensor:
        comp = _gauss_log_prob(x, self.means, self.raw_diag, self.off)  # (N, K)
        return torch.logsumexp(comp + torch.log_softmax(self.logits, 0), dim=1)

    def _transform(self, eps: Tensor) -> Tensor:
        """Every component applied to ε: (..., 2) -> (K, ..., 2)."""
        L = _chol(self.raw_diag, self.off)  # (K, 2, 2)
        return self.means[:, None, :] + torch.einsum("kij,nj->kni", L, eps.reshape(-1, 2))

    def push(self, noise: Tensor) -> Tensor:
        y_all = self._transform(noise[:, :2])  # (K, N, 2)
        cdf = torch.cumsum(self.weights, 0)
        idx = torch.searchsorted(cdf.detach().contiguous(), noise[:, 2].contiguous()).clamp(
            max=len(cdf) - 1
        )
        return y_all[idx, torch.arange(noise.shape[0], device=noise.device)]

    def rsample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        noise = self.display_noise(n, generator)
        y = self.push(noise)
        return y, self.log_prob(y)

    def reverse_kl(
        self, log_p: Callable[[Tensor], Tensor], n: int, generator: torch.Generator | None
    ) -> Tensor:
        k = self.logits.shape[0]
        m = max(1, math.ceil(n / k))
        eps = torch.randn(m, 2, generator=generator, device=self.device)
        y = self._transform(eps).reshape(k * m, 2)  # (K·m, 2)
        diff = (self.log_prob(y) - log_p(y)).reshape(k, m)
        return (self.weights * diff.mean(1)).sum()

    def moments(self) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            w = self.weights.double()
            mu = self.means.double()
            L = _chol(self.raw_diag, self.off).double()
            mean = (w[:, None] * mu).sum(0)
            d = mu - mean
            cov = (w[:, None, None] * (L @ L.transpose(1, 2) + d[:, :, None] * d[:, None, :])).sum(
                0
            )
        return mean.cpu(), cov.cpu()

    def describe(self) -> dict[str, Any]:
        m, c = self.moments()
        with torch.no_grad():
            L = _chol(self.raw_diag, self.off).double()
            covs = L @ L.transpose(1, 2)
        return {
            "mean": m.tolist(),
            "cov": c.tolist(),
            "weights": self.weights.detach().double().cpu().tolist(),
            "means": self.means.detach().double().cpu().tolist(),
            "covs": covs.cpu().tolist(),
        }


@Q_FAMILIES.register("flow")
class FlowQ(QDist):
    """A small normalizing flow q_θ(y) = p_0(f_θ⁻¹(y)) |det ∇f_θ⁻¹(y)|, p_0 = N(0, I), with
    f_θ(ε) = μ + L g(ε): g is the flow family's coupling stack (``genlib.models.flow``; identity at
    the start, so the flow starts as the same Gaussian as the ``gaussian`` family) and μ + L· the
    Gaussian's affine map."""

    family = "flow"

    def __init__(
        self,
        init_mean: Sequence[float] = (0.0, 0.0),
        init_scale: float = 1.0,
        layers: int = 4,
        hidden: int = 32,
        coupling: FlowCoupling = "affine",
    ) -> None:
        super().__init__()
        from genlib.models.flow import NormalizingFlow

        self.mean = nn.Parameter(torch.tensor(list(init_mean), dtype=torch.float32))
        self.raw_diag = nn.Parameter(torch.full((2,), math.log(init_scale)))
        self.off = nn.Parameter(torch.zeros(()))
        self.g = NormalizingFlow(
            coupling=coupling,
            layers=layers,
            hidden=hidden,
            depth=2,
            bins=8,
            actnorm=False,
            rotate=True,
        )

    def _f(self, eps: Tensor) -> tuple[Tensor, Tensor]:
        """y = f_θ(ε) and log|det ∇f_θ(ε)| (ladj)."""
        z, ladj = self.g(eps)
        L = _chol(self.raw_diag, self.off)
        return self.mean + z @ L.T, ladj + self.raw_diag.sum()

    def log_prob(self, x: Tensor) -> Tensor:
        d = self.raw_diag.exp()
        r = x - self.mean
        z0 = r[:, 0] / d[0]  # L⁻¹ (x − μ)
        z1 = (r[:, 1] - self.off * z0) / d[1]
        eps, ladj = self.g.inverse(torch.stack([z0, z1], 1))
        return -LOG_2PI - 0.5 * (eps**2).sum(1) + ladj - self.raw_diag.sum()

    def push(self, noise: Tensor) -> Tensor:
        return self._f(noise[:, :2])[0]

    def rsample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        eps = torch.randn(n, 2, generator=generator, device=self.device)
        y, ladj = self._f(eps)
        return y, -LOG_2PI - 0.5 * (eps**2).sum(1) - ladj

    def describe(self) -> dict[str, Any]:
        m, c = self.moments()
        L = _chol(self.raw_diag, self.off).detach().double().cpu()
        return {
            "mean": m.tolist(),
            "cov": c.tolist(),
            "affine_mean": self.mean.detach().double().cpu().tolist(),
            "affine_chol": L.tolist(),
        }


def build_q(cfg: KLConfig, device: torch.device | str | None = None) -> QDist:
    """The start q_θ of ``cfg`` (deterministic under ``cfg.seed``), on ``device``."""
    dev = torch.device(device) if device is not None else get_device()
    if cfg.q == "gaussian":
        q: QDist = GaussianQ(cfg.init_mean, cfg.init_scale)
    elif cfg.q == "mixture":
        q = MixtureQ(cfg.init_mean, cfg.init_scale, cfg.components, make_generator(cfg.seed + 17))
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + 29)
            q = FlowQ(
                cfg.init_mean, cfg.init_scale, cfg.flow_layers, cfg.flow_hidden, cfg.flow_coupling
            )
    return q.to(dev)


# ----------------------------------------------------------------------------------------------
# grids and exact KL values


@dataclass(frozen=True)
class KLGrid:
    """A res×res midpoint grid over ``bounds``: points (res², 2) float64, row-major in y then x
    (``points.reshape(res, res, 2)[i, j] = (xs[j], ys[i])``), ``log_p`` of the target there."""

    bounds: Bounds
    res: int
    xs: np.ndarray  # (res,)
    ys: np.ndarray  # (res,)
    points: Tensor  # (res², 2) float64, CPU
    log_p: Tensor  # (res²,) float64
    cell_area: float


def make_grid(target: Target2D, bounds: Bounds, res: int) -> KLGrid:
    """The midpoint grid over ``bounds`` (res ≤ ``MAX_GRID``) with the target's log density."""
    res = int(min(max(res, 2), MAX_GRID))
    x0, x1, y0, y1 = bounds
    hx, hy = (x1 - x0) / res, (y1 - y0) / res
    xs = x0 + hx * (np.arange(res) + 0.5)
    ys = y0 + hy * (np.arange(res) + 0.5)
    gx, gy = np.meshgrid(xs, ys)  # (res, res) each, [i, j] = (xs[j], ys[i])
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))  # (res², 2) float64
    with torch.no_grad():
        log_p = torch.cat([target.log_prob(c.float()).double() for c in torch.split(pts, 16384)])
    return KLGrid(bounds, res, xs, ys, pts, log_p, hx * hy)


def grid_kls(log_p: Tensor, log_q: Tensor, cell_area: float) -> tuple[float, float]:
    """``(KL(p‖q), KL(q‖p))`` from log densities on the same grid (midpoint rule). Cells where
    the first argument's density is 0 add nothing; KL(q‖p) is +inf when q > 0 on a cell with
    p = 0 (log p = −inf), and likewise KL(p‖q) where q = 0 under p."""
    return grid_kl(log_p, log_q, cell_area), grid_kl(log_q, log_p, cell_area)


def _eval_log_q(q: QDist, points: Tensor) -> Tensor:
    """log q on CPU float64 points, evaluated on q's device in chunks: (M,)."""
    dev = q.device
    with torch.no_grad():
        return torch.cat(
            [
                q.log_prob(c.to(dev, torch.float32)).double().cpu()
                for c in torch.split(points, 16384)
            ]
        )


def _box(mean: Sequence[float], scale: float, k: float = 4.0) -> Bounds:
    return (mean[0] - k * scale, mean[0] + k * scale, mean[1] - k * scale, mean[1] + k * scale)


def _fit_bounds(target: Target2D, cfg: KLConfig, t_mean: Tensor, t_cov: Tensor) -> Bounds:
    """The display box, fixed for the whole animation: the union of the target's box, the start
    q's ±3σ box and the moment-matched Gaussian's ±2.2σ box (where forward KL ends), square,
    padded by 4 %, at most ``_MAX_SPAN`` wide."""
    tb = target.bounds
    ib = _box(cfg.init_mean, cfg.init_scale * (1.5 if cfg.q == "mixture" else 1.0), 3.0)
    sd = t_cov.diagonal().clamp_min(0).sqrt().tolist()
    mm = t_mean.tolist()
    mb = (mm[0] - 2.2 * sd[0], mm[0] + 2.2 * sd[0], mm[1] - 2.2 * sd[1], mm[1] + 2.2 * sd[1])
    x0, x1 = min(tb[0], ib[0], mb[0]), max(tb[1], ib[1], mb[1])
    y0, y1 = min(tb[2], ib[2], mb[2]), max(tb[3], ib[3], mb[3])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = min(1.04 * max(x1 - x0, y1 - y0), _MAX_SPAN) / 2
    return (cx - half, cx + half, cy - half, cy + half)


class GridCache:
    """KL grids that always hold both p and q: square boxes centred on the target's box, of
    half-widths h₀·1.5ᵏ (h₀ the target box's), the smallest holding q's ±6σ box (at most
    ``_MAX_SPAN`` wide). log p is computed once per level; a fit touches a handful of levels."""

    def __init__(self, target: Target2D, res: int) -> None:
        self.target = target
        self.res = int(min(max(res, 2), MAX_GRID))
        x0, x1, y0, y1 = target.bounds
        self.cx, self.cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.h0 = max(x1 - x0, y1 - y0) / 2
        self._levels: dict[int, KLGrid] = {}

    def level_for(self, mean: Sequence[float], cov: Any) -> int:
        sd = np.sqrt(np.maximum(np.diag(np.asarray(cov, dtype=np.float64)), 0.0))
        m = np.asarray(mean, dtype=np.float64)
        need = max(abs(m[0] - self.cx) + 6 * sd[0], abs(m[1] - self.cy) + 6 * sd[1], self.h0)
        if not math.isfinite(need):
            need = _MAX_SPAN
        k = 0
        while self.h0 * 1.5**k < need and self.h0 * 1.5**k < _MAX_SPAN / 2:
            k += 1
        return k

    def grid(self, level: int) -> KLGrid:
        if level not in self._levels:
            h = min(self.h0 * 1.5**level, max(_MAX_SPAN / 2, self.h0))
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
    wider than ``_MAX_SPAN``), that direction falls back to a Monte-Carlo estimate with the exact
    densities (``MC_SAMPLES`` samples; ``method_pq``/``method_qp`` say which was used)."""
    cache = cache if cache is not None else GridCache(target, res)
    m, c = q.moments()
    g = cache.for_q(m.tolist(), c.numpy())
    lq = _eval_log_q(q, g.points)
    kl_pq, kl_qp = grid_kls(g.log_p, lq, g.cell_area)
    p_mass = float(g.log_p.exp().sum() * g.cell_area)
    q_mass = float(lq.exp().sum() * g.cell_area)
    method_pq = method_qp = "grid"
    gen = make_generator(2024)
    if not abs(q_mass - 1.0) < 5e-3:
        with torch.no_grad():
            y, log_q = q.rsample(MC_SAMPLES, make_generator(2024, q.device))
            log_p = target.log_prob(y.cpu()).double()
        kl_qp, method_qp = float((log_q.double().cpu() - log_p).mean()), "mc"
    if not abs(p_mass - 1.0) < 5e-3:
        x = target.sample(MC_SAMPLES, generator=gen)
        kl_pq = float((target.log_prob(x).double() - _eval_log_q(q, x.double())).mean())
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


def target_modes(target: Target2D) -> tuple[np.ndarray, np.ndarray] | None:
    """Mode centres (K, 2) and weights (K,) of a Gaussian-mixture target, else None."""
    if isinstance(target, GaussianMixture):
        return target.means.double().numpy(), target.weights.double().numpy()
    return None


def mode_fractions(samples: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Fraction of the samples nearest each centre: (N, 2), (K, 2) -> (K,)."""
    d = ((samples[:, None, :] - centres[None, :, :]) ** 2).sum(-1)  # (N, K)
    return np.bincount(d.argmin(1), minlength=centres.shape[0]) / max(samples.shape[0], 1)


DOMINANT = 0.75


def picked_mode(fractions: np.ndarray) -> int:
    """argmax of the mode fractions when it holds ≥ ``DOMINANT`` of q's samples, else −1."""
    k = int(np.argmax(fractions))
    return k if fractions[k] >= DOMINANT else -1


def moment_matched(target: Target2D) -> tuple[np.ndarray, np.ndarray]:
    """The forward-KL optimum over Gaussians: q* = N(E_p[x], Cov_p[x]) (moment matching)."""
    m, c = target.moments()
    return m.double().numpy(), c.double().numpy()


# ----------------------------------------------------------------------------------------------
# fitting


@dataclass
class KLFrame:
    """q_θ at one recorded step."""

    step: int
    params: dict[str, Any]  # describe(): always "mean" (2,) and "cov" (2, 2)
    kl_pq: float  # KL(p‖q_θ) on the grid
    kl_qp: float  # KL(q_θ‖p) on the grid (inf when q > 0 where p = 0)
    loss: float  # the Monte-Carlo objective at this step (nan at step 0)
    q_mass: float  # ∫ q over the grid (close to 1 when the grid holds q)
    samples: np.ndarray  # (n_show, 2): f_θ of the same display noise in every frame
    log_q: np.ndarray  # (R, R) float32 on the display grid (fit.xs, fit.ys)
    kl_method: str = "grid"  # "grid", or "mc" where a direction fell back to Monte Carlo


@dataclass
class KLFit:
    """The result of ``fit``: frames in step order, the target's log density on the display grid."""

    cfg: KLConfig
    frames: list[KLFrame]
    status: Status
    message: str
    seconds: float
    bounds: Bounds
    xs: np.ndarray  # (R,) display grid
    ys: np.ndarray  # (R,)
    log_p: np.ndarray  # (R, R) float32
    entropy_p: float  # S(p) on the KL grid
    target_mean: list[float] = field(default_factory=list)
    target_cov: list[list[float]] = field(default_factory=list)
    modes: list[list[float]] | None = None  # GMM target: mode centres
    mode_weights: list[float] | None = None
    #: exact KLs of reference Gaussians on the same grids: "moment" (the forward-KL optimum
    #: N(E_p x, Cov_p x)) and, for a GMM target, "modes" (q = component k: KL(q‖p) ≈ log 1/w_k)
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> KLFrame:
        return self.frames[-1]

    def trace(self) -> list[dict[str, float]]:
        """One row per frame: step, kl_pq, kl_qp, loss, mean_x, mean_y."""
        return [
            {
                "step": f.step,
                "kl_pq": f.kl_pq,
                "kl_qp": f.kl_qp,
                "loss": f.loss,
                "mean_x": f.params["mean"][0],
                "mean_y": f.params["mean"][1],
            }
            for f in self.frames
        ]

    def picked_mode(self) -> int | None:
        """The mode holding most (≥ ``DOMINANT``) of q's final samples; −1 when q_θ spreads over
        several modes; None for targets without listed modes."""
        if self.modes is None:
            return None
        return picked_mode(mode_fractions(self.final.samples, np.asarray(self.modes)))

    def to_json(self) -> dict[str, Any]:
        """The CLI's result.json: config, status, final mean/cov and parameters, per-frame trace."""
        fin = self.final
        return _jsonable(
            {
                "config": self.cfg.to_dict(),
                "status": self.status,
                "message": self.message,
                "seconds": self.seconds,
                "q": self.cfg.q,
                "divergence": self.cfg.divergence,
                "mean": fin.params["mean"],
                "cov": fin.params["cov"],
                "params": fin.params,
                "kl_pq": fin.kl_pq,
                "kl_qp": fin.kl_qp,
                "entropy_p": self.entropy_p,
                "target_mean": self.target_mean,
                "target_cov": self.target_cov,
                "modes": self.modes,
                "mode_weights": self.mode_weights,
                "picked_mode": self.picked_mode(),
                "reference": self.reference,
                "trace": [
                    {"step": r["step"], "kl_pq": r["kl_pq"], "kl_qp": r["kl_qp"], "loss": r["loss"]}
                    for r in self.trace()
                ],
            }
        )


def _jsonable(v: Any) -> Any:
    """Non-finite floats become the strings "inf", "-inf", "nan" (valid JSON; float() reads them)."""
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf"))
    if isinstance(v, np.integer):
        return int(v)
    return v


class _LogProbViaScore(torch.autograd.Function):
    """log p(y) with the gradient ∇_y log p = ``target.score(y)``, for targets whose ``log_prob``
    is not differentiable by autograd (1D-quadrature targets return detached values and give
    their exact score separately)."""

    @staticmethod
    def forward(ctx: Any, y: Tensor, target: Target2D) -> Tensor:  # type: ignore[override]
        ctx.target = target
        ctx.save_for_backward(y)
        return target.log_prob(y.detach()).to(y.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return grad[:, None] * ctx.target.score(y.detach()).to(y.dtype), None


def _target_log_prob(target: Target2D, device: torch.device) -> Callable[[Tensor], Tensor]:
    """log p as a differentiable function on ``device``: autograd through ``log_prob`` where it is
    differentiable, else the target's exact score as the gradient; targets keep their tables on
    the CPU, so off the CPU the points make a differentiable round trip."""
    probe = torch.zeros(2, 2, requires_grad=True)
    differentiable = bool(target.log_prob(probe).requires_grad)

    def base(y: Tensor) -> Tensor:
        return target.log_prob(y) if differentiable else _LogProbViaScore.apply(y, target)

    if device.type == "cpu":
        return lambda y: base(y).to(y.dtype)
    try:
        base(torch.zeros(1, 2, device=device))
        return lambda y: base(y).to(y.dtype)
    except (RuntimeError, TypeError):
        return lambda y: base(y.cpu()).to(y.device, y.dtype)


def frame_steps(steps: int, num_frames: int) -> list[int]:
    """The recorded steps: 0 (the start), ``steps`` (the end), evenly in between (≤ num_frames)."""
    return sorted({int(round(s)) for s in np.linspace(0, steps, num_frames)})


def fit(
    cfg: KLConfig,
    *,
    device: torch.device | str | None = None,
    on_frame: Callable[[int, KLFrame], None] | None = None,
    display_res: int = 96,
) -> KLFit:
    """Fit q_θ to p by plain gradient steps on ``cfg.divergence``; record ``cfg.num_frames`` frames.

    Deterministic under ``cfg.seed`` on a given device. Stops early with ``status="diverged"`` when
    the parameters or the loss become NaN/inf (the last finite frame is kept), and with
    ``status="infinite"`` when the reverse-KL objective is +inf at the start (q_θ puts mass where
    p = 0: KL(q‖p) = ∞ and its gradient does not exist)."""
    configure_threads()
    t_start = time.perf_counter()
    dev = torch.device(device) if device is not None else get_device()
    target = cfg.build_target()
    t_mean, t_cov = target.moments()
    bounds = _fit_bounds(target, cfg, t_mean.double(), t_cov.double())
    cache = GridCache(target, cfg.grid_res)
    grid = cache.grid(0)
    disp = make_grid(target, bounds, min(max(display_res, 16), 128))
    p_grid = grid.log_p.exp()
    entropy_p = float(
        -(torch.where(p_grid > 0, p_grid * grid.log_p, torch.zeros_like(p_grid))).sum()
        * grid.cell_area
    )
    modes = target_modes(target)
    reference = _references(target, t_mean, t_cov, cache)

    q = build_q(cfg, dev)
    params = list(q.parameters())
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(params, lr=cfg.lr, foreach=True)
        if cfg.optimizer == "adam"
        else torch.optim.SGD(params, lr=cfg.lr, foreach=True)
    )
    g_cpu = make_generator(cfg.seed)  # samples of p (forward KL)
    g_dev = make_generator(cfg.seed + 1, dev)  # ε of q (reverse KL)
    noise = q.display_noise(cfg.n_show, make_generator(cfg.seed + 2, dev))  # (n_show, 3), fixed
    log_p = _target_log_prob(target, dev)
    record = set(frame_steps(cfg.steps, cfg.num_frames))
    frames: list[KLFrame] = []
    status: Status = "ok"
    message = ""

    def snapshot(step: int, loss: float) -> KLFrame | None:
        with torch.no_grad():
            ys = q.push(noise).double().cpu().numpy()
        desc = q.describe()
        if not (np.isfinite(ys).all() and np.isfinite(np.asarray(desc["cov"])).all()):
            return None
        kls = exact_kls(target, q, cache=cache)
        lq_disp = _eval_log_q(q, disp.points).reshape(disp.res, disp.res).float().numpy()
        method = "grid" if kls["method_pq"] == kls["method_qp"] == "grid" else "mc"
        return KLFrame(
            step, desc, kls["kl_pq"], kls["kl_qp"], loss, kls["q_mass"], ys, lq_disp, method
        )

    first = snapshot(0, float("nan"))
    assert first is not None  # the start is a finite Gaussian
    frames.append(first)
    if on_frame is not None:
        on_frame(0, first)
    good_state = {k: v.detach().clone() for k, v in q.state_dict().items()}
    for step in range(1, cfg.steps + 1):
        opt.zero_grad(set_to_none=True)
        if cfg.divergence == "forward":
            x = target.sample(cfg.n_samples, generator=g_cpu).to(dev)  # (n, 2)
            loss = q.forward_kl(x)
        else:
            loss = q.reverse_kl(log_p, cfg.n_samples, g_dev)
        if step == 1 and not bool(torch.isfinite(loss)):
            status = "infinite" if cfg.divergence == "reverse" else "diverged"
            message = (
                "KL(q‖p) = +inf: q_θ puts mass where p = 0, so reverse KL has no gradient on this target"
                if cfg.divergence == "reverse"
                else "KL(p‖q) = +inf at the start: q_θ vanishes where p has mass"
            )
            break
        loss.backward()
        opt.step()
        if step in record:
            lval = float(loss.detach())
            fr = snapshot(step, lval) if math.isfinite(lval) else None
            if fr is None:
                q.load_state_dict(good_state)
                status = "diverged"
                message = f"the fit diverged before step {step} (loss or parameters not finite); try a smaller learning rate"
                break
            frames.append(fr)
            good_state = {k: v.detach().clone() for k, v in q.state_dict().items()}
            if on_frame is not None:
                on_frame(step, fr)
    return KLFit(
        cfg=cfg,
        frames=frames,
        status=status,
        message=message,
        seconds=time.perf_counter() - t_start,
        bounds=bounds,
        xs=disp.xs,
        ys=disp.ys,
        log_p=disp.log_p.reshape(disp.res, disp.res).float().numpy(),
        entropy_p=entropy_p,
        target_mean=t_mean.double().tolist(),
        target_cov=t_cov.double().tolist(),
        modes=None if modes is None else modes[0].tolist(),
        mode_weights=None if modes is None else modes[1].tolist(),
        reference=reference,
    )


MAX_REFERENCE_MODES = 32


def _references(
    target: Target2D, t_mean: Tensor, t_cov: Tensor, cache: GridCache
) -> dict[str, Any]:
    """Exact KL values of the moment-matched Gaussian and (GMM targets, ≤ 32 components) of a q
    sitting exactly on each component."""
    ref: dict[str, Any] = {}
    try:
        mm = exact_kls(target, GaussianQ.from_moments(t_mean.tolist(), t_cov.numpy()), cache=cache)
        ref["moment"] = {"kl_pq": mm["kl_pq"], "kl_qp": mm["kl_qp"]}
    except RuntimeError:  # a degenerate covariance (Cholesky failed)
        pass
    if isinstance(target, GaussianMixture) and target.comp.means.shape[0] <= MAX_REFERENCE_MODES:
        rows = []
        for mu, var, lw in zip(
            target.comp.means, target.comp.variances, target.comp.log_weights, strict=True
        ):
            kls = exact_kls(
                target, GaussianQ.from_moments(mu.tolist(), np.diag(var.numpy())), cache=cache
            )
            rows.append({"kl_pq": kls["kl_pq"], "kl_qp": kls["kl_qp"], "log_inv_w": float(-lw)})
        ref["modes"] = rows
    return ref


def fit_pair(cfg: KLConfig, **kw: Any) -> tuple[KLFit, KLFit]:
    """(forward fit, reverse fit) of ``cfg`` from the same start (same init and seed)."""
    return fit(cfg.with_(divergence="forward"), **kw), fit(cfg.with_(divergence="reverse"), **kw)


@dataclass
class SeedSweep:
    """Which mode reverse KL (or ``cfg.divergence``) ends in, per seed."""

    cfg: KLConfig
    rows: list[
        dict[str, Any]
    ]  # seed, picked (mode index or None), fractions, mean_x, mean_y, kl_qp, kl_pq, status
    tally: dict[int, int]  # mode index (−1: several modes) -> number of seeds
    modes: list[list[float]] | None
    mode_weights: list[float] | None
    bounds: Bounds = (-4.0, 4.0, -4.0, 4.0)  # the fits' display box
    xs: np.ndarray | None = None  # (R,) display grid and log p there (R, R)
    ys: np.ndarray | None = None
    log_p: np.ndarray | None = None


def seed_sweep(cfg: KLConfig, seeds: Sequence[int], **kw: Any) -> SeedSweep:
    """Fit ``cfg`` once per seed (≤ ``MAX_SEEDS``; two frames each) and tally the mode q_θ picks:
    the mode nearest to most of q_θ's final samples."""
    seeds = [int(s) for s in seeds]
    if not (1 <= len(seeds) <= MAX_SEEDS):
        raise ValueError(f"seed_sweep takes 1 to {MAX_SEEDS} seeds")
    rows: list[dict[str, Any]] = []
    tally: dict[int, int] = {}
    modes: list[list[float]] | None = None
    weights: list[float] | None = None
    res: KLFit | None = None
    for s in seeds:
        res = fit(cfg.with_(seed=s, num_frames=2), **kw)
        modes, weights = res.modes, res.mode_weights
        fin = res.final
        fr = None if modes is None else mode_fractions(fin.samples, np.asarray(modes))
        picked = None if fr is None else picked_mode(fr)
        if picked is not None:
            tally[picked] = tally.get(picked, 0) + 1
        rows.append(
            {
                "seed": s,
                "picked": picked,
                "fractions": None if fr is None else fr.tolist(),
                "mean_x": fin.params["mean"][0],
                "mean_y": fin.params["mean"][1],
                "kl_qp": fin.kl_qp,
                "kl_pq": fin.kl_pq,
                "status": res.status,
            }
        )
    assert res is not None
    return SeedSweep(
        cfg,
        rows,
        dict(sorted(tally.items())),
        modes,
        weights,
        res.bounds,
        res.xs,
        res.ys,
        res.log_p,
    )


# ----------------------------------------------------------------------------------------------
# command line: python -m genlib kl TARGET --q gaussian --divergence reverse --out DIR


def _kv(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        return k, json.loads(v)
    except json.JSONDecodeError:
        return k, v


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m genlib kl``."""
    d = KLConfig()
    p.add_argument("target", help="registered target name (two_peaks, 8gaussians, banana, ...)")
    p.add_argument("--q", default=d.q, help="q family: gaussian | mixture | flow")
    p.add_argument(
        "--divergence", default=d.divergence, help="forward (KL(p‖q)) | reverse (KL(q‖p))"
    )
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--optimizer", default=d.optimizer, help="adam | sgd")
    p.add_argument(
        "--n-samples",
        type=int,
        default=d.n_samples,
        help="minibatch / Monte-Carlo samples per step",
    )
    p.add_argument(
        "--init-mean", type=float, nargs=2, default=list(d.init_mean), metavar=("X", "Y")
    )
    p.add_argument("--init-scale", type=float, default=d.init_scale)
    p.add_argument("--components", type=int, default=d.components, help="mixture components")
    p.add_argument("--frames", type=int, default=d.num_frames, help="recorded frames")
    p.add_argument("--grid-res", type=int, default=d.grid_res)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--target-param", type=_kv, action="append", default=[], help="target parameter KEY=VALUE"
    )
    p.add_argument("--out", required=True, help="output folder (result.json)")


def run_cli(a: argparse.Namespace) -> int:
    """``python -m genlib kl``: exit 0 ok, 2 bad arguments, 3 the fit diverged."""
    try:
        cfg = KLConfig(
            target=a.target,
            target_params=dict(a.target_param),
            q=a.q,
            divergence=a.divergence,
            steps=a.steps,
            lr=a.lr,
            optimizer=a.optimizer,
            n_samples=a.n_samples,
            init_mean=tuple(a.init_mean),
            init_scale=a.init_scale,
            seed=a.seed,
            num_frames=a.frames,
            components=a.components,
            grid_res=a.grid_res,
        )
        cfg.build_target()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res = fit(cfg)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(res.to_json(), indent=2))
    fin = res.final
    print(
        json.dumps(
            _jsonable(
                {
                    "status": res.status,
                    "step": fin.step,
                    "kl_pq": fin.kl_pq,
                    "kl_qp": fin.kl_qp,
                    "mean": fin.params["mean"],
                }
            )
        )
    )
    if res.status != "ok":
        print(f"error: {res.message}", file=sys.stderr)
        return 3
    return 0


def _register_cli() -> None:
    from genlib.cli import subcommand

    subcommand(
        "kl", "fit a Gaussian / mixture / flow q to a target by forward or reverse KL", configure
    )(run_cli)


_register_cli()
