"""Boltzmann-machine experiments behind the page (lecture 2-2, 2-3): the free-energy landscape and
the exact 2^H-component mixture on a grid (``RbmLandscape``), block-Gibbs chains as frames, the
positive vs negative phase of one update, and the negative-phase particles recorded during
training (``NegativeHistory``, read from the training result's extras so that it survives a
checkpoint), and the slide's sign as written against the correct one (``sign_comparison``: exact
KL(p‖q_θ) over two short runs).

Pure torch (no streamlit, no plotly); every draw uses the caller's generator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.geometry import Bounds, grid_tensor
from genlib.metrics import mixture_mode_coverage
from genlib.models.rbm import MAX_EXACT_HIDDEN, GaussianBernoulliRBM, UpdateSign
from genlib.runs import RunSpec, freeze, prepare
from genlib.training import train

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "ChainStart",
    "LONG_CHAIN_STEPS",
    "LIVE_GRID",
    "LIVE_PARTICLES",
    "trained_landscape",
    "trained_chains",
    "trained_phases",
    "trained_coverage",
    "negative_label",
    "live_extra",
    "RbmLandscape",
    "rbm_landscape",
    "gibbs_frames",
    "negative_phase",
    "NegativeHistory",
    "negative_history",
    "SignComparison",
    "sign_comparison",
    "trained_sign_comparison",
    "SIGN_STEPS",
    "SIGN_EVERY",
]

ChainStart = Literal["data", "noise"]  # where the page's Gibbs chains start
LONG_CHAIN_STEPS = (20, 50, 100, 300, 1000, 3000)  # sweeps of the long chains from noise
LIVE_GRID = 32  # resolution of the live view's log q_θ grid
LIVE_PARTICLES = 300  # negative-phase particles in the live view


@dataclass(frozen=True)
class RbmLandscape:
    """The RBM on a ``res × res`` grid (numpy, rows along y): free energy ``energy (res²,)``,
    exact ``log_q (res²,)`` (``None`` above ``MAX_EXACT_HIDDEN``), and the mixture form
    q_θ = Σ_h π_h N(b + W h, σ²): ``log_pi (2^H,)``, ``means (2^H, 2)`` (``None`` likewise)."""

    xs: np.ndarray
    ys: np.ndarray
    energy: np.ndarray
    log_q: np.ndarray | None
    log_pi: np.ndarray | None
    means: np.ndarray | None
    sigma: np.ndarray | None = None  # (2,) the visible σ
    hidden: int = 0  # H: the mixture has 2^H components

    @property
    def n_components(self) -> int:
        """2^H, the number of Gaussian components of q_θ."""
        return 2**self.hidden


@torch.no_grad()
def rbm_landscape(model: GaussianBernoulliRBM, bounds: Bounds, res: int = 110) -> RbmLandscape:
    """Free energy, exact density and mixture components of ``model`` over ``bounds``."""
    xs, ys, pts = grid_tensor(bounds, res, device=model.W.device, dtype=model.W.dtype)
    energy = model.energy(pts).cpu().numpy()  # (res²,)
    try:
        log_pi, means, _ = model.mixture()  # (2^H,), (2^H, 2)
        log_q = model.log_prob(pts).cpu().numpy()
        mix = (log_pi.cpu().numpy(), means.cpu().numpy())
    except NotImplementedError:  # too many hidden units to enumerate
        log_q, mix = None, (None, None)
    sigma = model.log_sigma.detach().exp().cpu().numpy()
    return RbmLandscape(
        xs.cpu().numpy(), ys.cpu().numpy(), energy, log_q, *mix, sigma=sigma, hidden=model.hidden
    )


def gibbs_frames(
    model: GaussianBernoulliRBM,
    n: int,
    steps: int,
    *,
    x0: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Block-Gibbs chains recorded sweep by sweep: (steps + 1, n, 2) on the CPU, started at
    ``x0 (n, 2)`` (e.g. data: CD's starts) or, by default, at noise ``model.init_chains``."""
    start = model.init_chains(n, generator) if x0 is None else x0.to(model.W.device)
    return model.gibbs_chain(start, steps, generator=generator, record=True).detach().cpu()


def negative_phase(
    model: GaussianBernoulliRBM,
    x: Tensor,
    *,
    chains: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The negative-phase particles ``(N, 2)`` the model's sampler would use for the data batch
    ``x (N, 2)``, without touching the model: CD-k from ``x``; exact samples for "exact"; PCD
    continues ``chains`` (the run's persistent chains, ``extras["pcd_chains"]``, else the
    model's current ones) by k sweeps, or runs long chains from noise when there are none."""
    with torch.no_grad():
        if model.sampler == "cd":
            return model.gibbs_chain(x, model.k, generator=generator)
        if model.sampler == "exact":
            return model.sample_exact(x.shape[0], generator=generator)
        chains = model.persistent_chains if chains is None else chains
        if chains is None:
            return model.sample(x.shape[0], generator=generator)
        start = chains.clone()[: x.shape[0]].to(device=x.device, dtype=x.dtype)
        return model.gibbs_chain(start, model.k, generator=generator)


@dataclass(frozen=True)
class NegativeHistory:
    """The negative-phase particles recorded during training: ``steps`` (F training steps) and
    ``particles (F, P, 2)`` (numpy)."""

    steps: tuple[int, ...]
    particles: np.ndarray


def negative_history(extras: Mapping[str, Any]) -> NegativeHistory | None:
    """The recorded negative phase from a training result's ``extras``
    (``GaussianBernoulliRBM.result_extras``); ``None`` when nothing was recorded."""
    steps, parts = extras.get("negative_steps"), extras.get("negative_particles")
    if not steps or parts is None:
        return None
    particles = torch.as_tensor(parts).detach().cpu().double().numpy()
    if particles.ndim != 3 or particles.shape[0] != len(steps) or particles.shape[-1] != 2:
        raise ValueError("negative_particles must be (F, P, 2) with one step per frame")
    return NegativeHistory(tuple(int(s) for s in steps), particles)


# -------------------------------------------------------------------- a trained RBM on the page
def trained_landscape(trained: Trained, bounds: Bounds, res: int = 110) -> RbmLandscape:
    """``rbm_landscape`` of a trained RBM."""
    return rbm_landscape(trained.model, tuple(bounds), int(res))


def trained_chains(
    trained: Trained, start: ChainStart, n: int, steps: int, seed: int = 0
) -> np.ndarray:
    """Block-Gibbs chains of a trained RBM, ``(steps + 1, n, 2)`` numpy, started at ``n`` target
    samples (``"data"``: what CD does) or at noise (``"noise"``); seeded by ``seed``."""
    model = trained.model
    g = make_generator(seed, model.W.device)
    x0 = trained.target.sample(int(n), generator=make_generator(seed)) if start == "data" else None
    return gibbs_frames(model, int(n), int(steps), x0=x0, generator=g).numpy()


def trained_phases(trained: Trained, n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The positive phase (``n`` data points, seeded by ``seed + 1``) and the negative phase the
    model's sampler would use for them (``negative_phase``; PCD continues the run's persistent
    chains kept in the training result): two ``(n, 2)`` arrays."""
    model = trained.model
    x = trained.target.sample(int(n), generator=make_generator(seed + 1)).to(model.W.device)
    chains = trained.result.extras.get("pcd_chains")
    neg = negative_phase(model, x, chains=chains, generator=make_generator(seed, model.W.device))
    return x.cpu().numpy(), neg.detach().cpu().numpy()


@torch.no_grad()
def trained_coverage(trained: Trained, n: int = 5000, seed: int = 0) -> dict[str, float] | None:
    """``mixture_mode_coverage`` of ``n`` samples of a trained RBM (``None`` for targets that are
    not Gaussian mixtures)."""
    model = trained.model
    x = model.sample(int(n), generator=make_generator(seed, model.W.device)).cpu()
    return mixture_mode_coverage(x, trained.target)


# -------------------------------------------------------------------- the live view
def negative_label(model: GaussianBernoulliRBM) -> str:
    """A language-neutral legend name of the model's negative particles: ``y ~ CD-k``,
    ``y ~ PCD-k`` or ``y ~ q_θ`` (exact sampling)."""
    if model.sampler == "exact":
        return "y ~ q_θ"
    return f"y ~ {model.sampler.upper()}-{model.k}"


@torch.no_grad()
def live_extra(
    model: GaussianBernoulliRBM, target: Target2D, generator: torch.Generator, bounds: Bounds
) -> dict[str, Any]:
    """The RBM's part of the live view (``genlib.lab.live.LiveView`` fields): the current Gibbs
    negative particles (the last update's negative phase, else the persistent chains; at most
    ``LIVE_PARTICLES``) as ``particles`` with ``particles_label``, and the exact log q_θ on a
    ``LIVE_GRID²`` grid (``grid_kind="log_q"``) when 2^H is small enough to enumerate."""
    out: dict[str, Any] = {}
    neg = model.last_negative if model.last_negative is not None else model.persistent_chains
    if neg is not None:
        out["particles"] = neg[:LIVE_PARTICLES].detach().float().cpu().numpy()
        out["particles_label"] = negative_label(model)
    if model.hidden <= MAX_EXACT_HIDDEN:
        _, _, pts = grid_tensor(bounds, LIVE_GRID, device=model.W.device, dtype=model.W.dtype)
        lq = model.log_prob(pts)  # (R²,)
        out.update(grid=lq.detach().float().cpu().numpy(), grid_res=LIVE_GRID, grid_kind="log_q")
    return out


# -------------------------------------------------------------------- the slide's sign (2-3)
SIGN_STEPS = 200  # default length of each short run of ``sign_comparison``
SIGN_EVERY = 10  # steps between two exact-KL evaluations
SIGN_KL_POINTS = 2000  # target samples of the exact KL(p‖q_θ) estimate (the same at every step)
MAX_SIGN_STEPS = 3000


@dataclass(frozen=True)
class SignComparison:
    """Exact KL(p‖q_θ) over training for each update sign: ``steps (S,)`` (0 = the shared
    initial weights) and ``kl`` sign -> ``(S,)`` (NaN after a run stopped on a non-finite loss,
    +inf where q_θ vanished on p's samples); ``status`` sign -> the run's status."""

    steps: np.ndarray
    kl: dict[str, np.ndarray]
    status: dict[str, str]


def _kl_on(model: GaussianBernoulliRBM, x: Tensor, log_p: Tensor) -> float:
    """KL(p‖q_θ) ≈ mean(log p(x) − log q_θ(x)) on fixed samples ``x`` of p (exact log q_θ)."""
    with torch.no_grad():
        lq = model.log_prob(x.to(model.W.device, model.W.dtype)).double().cpu()
    kl = float((log_p - lq).mean())
    return kl if math.isfinite(kl) else float("inf")


def sign_comparison(
    spec: RunSpec,
    steps: int = SIGN_STEPS,
    every: int = SIGN_EVERY,
    n_kl: int = SIGN_KL_POINTS,
) -> SignComparison:
    """Train ``spec``'s RBM twice for ``steps`` steps from the same seeded initial weights and the
    same mini-batches — once with the correct update, once with the slide's sign as written
    (``update_sign``) — and record the exact KL(p‖q_θ) every ``every`` steps on ``n_kl`` fixed
    target samples (seeded). Needs H ≤ MAX_EXACT_HIDDEN (the exact density)."""
    if int(dict(spec.model_params).get("hidden", 0)) > MAX_EXACT_HIDDEN:
        raise ValueError(f"the exact KL needs hidden <= {MAX_EXACT_HIDDEN}")
    steps = int(min(max(steps, 1), MAX_SIGN_STEPS))
    every = int(min(max(every, 1), steps))
    cfg = replace(spec.train, steps=steps, log_every=every, snapshot_every=0)
    target = spec.target.build()
    x = target.sample(int(n_kl), generator=make_generator(spec.train.seed + 101))  # (n, 2)
    log_p = target.log_prob(x).double()
    grid = np.arange(0, steps + 1, every)
    grid = grid if grid[-1] == steps else np.append(grid, steps)
    kl: dict[str, np.ndarray] = {}
    status: dict[str, str] = {}
    for sign in get_args(UpdateSign):
        params = {**dict(spec.model_params), "update_sign": sign}
        run_spec = RunSpec(spec.model, spec.target, freeze(params), cfg)
        model, _ = prepare(run_spec)
        curve = {0: _kl_on(model, x, log_p)}

        def record(
            step: int,
            logs: dict[str, float],
            m: GaussianBernoulliRBM = model,
            c: dict[int, float] = curve,
        ) -> None:
            c[int(step)] = _kl_on(m, x, log_p)

        res = train(model, target, cfg, on_step=record, device=torch.device("cpu"))
        kl[sign] = np.array([curve.get(int(s), np.nan) for s in grid], dtype=np.float64)
        status[sign] = res.status
    return SignComparison(grid.astype(np.int64), kl, status)


def trained_sign_comparison(
    trained: Trained, steps: int = SIGN_STEPS, every: int = SIGN_EVERY
) -> SignComparison:
    """``sign_comparison`` of a trained RBM's spec (its parameters, target and training config;
    ``steps`` short)."""
    return sign_comparison(trained.spec, steps, every)
