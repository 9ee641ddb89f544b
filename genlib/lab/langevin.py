"""Langevin demos of the score pages (lecture 4-1, 4-2): chains with the learned and the exact
score from the same initial states and the same noise, and plain vs annealed Langevin.

- ``langevin_demo``: the lecture's warning made visible: s_θ is trained only where the data are,
  so chains started far away (``init="far"``) follow an untrained field, while the same chains with
  the exact ∇ log p reach the target.
- ``compare_plain_annealed``: plain Langevin with the score at the smallest noise vs annealed
  Langevin over a σ ladder (Song & Ermon's far-mixture demo), with any noise-conditional score.
- ``langevin_bias``: the appendix's "equilibrium is p only as ε → 0" as a number: KL(p‖chain) per
  step size ε with the exact score, unadjusted (ULA) or Metropolis-adjusted (MALA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.models.score_matching import InitKind, ScoreMatching
from genlib.samplers.langevin import (
    NoiseScoreFn,
    annealed_langevin,
    langevin,
    record_every_for,
)
from genlib.samplers.mala import mala as run_mala
from genlib.trajectory import Trajectory

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "LangevinDemo",
    "langevin_demo",
    "trained_langevin_demo",
    "LangevinComparison",
    "compare_plain_annealed",
    "LangevinBias",
    "langevin_bias",
    "histogram_kl",
    "BIAS_FACTORS",
    "fisher_length2",
    "bias_step_sizes",
    "bias_cost_seconds",
    "BIAS_BINS",
    "MAX_CHAINS",
    "MAX_DEMO_STEPS",
    "STEP_SIZE_CHOICES",
    "STEP_COUNT_CHOICES",
]

MAX_CHAINS = 5000  # particles per demo call from a page
MAX_DEMO_STEPS = 5000  # Langevin steps per demo call
#: the Langevin step sizes ε and step counts a page offers
STEP_SIZE_CHOICES = (0.0005, 0.001, 0.002, 0.004, 0.005, 0.01, 0.02, 0.05)
STEP_COUNT_CHOICES = (50, 100, 200, 300, 500, 1000, 1500, 2000, 3000, 5000)


@dataclass(frozen=True)
class LangevinDemo:
    """Langevin chains from the same initial states and noise with the learned score
    (``learned``) and with the exact ∇ log p (``exact``): CPU trajectories in generation order."""

    learned: Trajectory
    exact: Trajectory

    @property
    def start_bounds(self) -> tuple[float, float, float, float]:
        """The box of the initial states ``(x0, x1, y0, y1)`` (to frame a picture of the chains)."""
        x = self.learned.xs[0]
        lo, hi = x.min(0).values, x.max(0).values
        return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


@torch.no_grad()
def langevin_demo(
    model: ScoreMatching,
    target: Target2D,
    init: InitKind = "far",
    n: int = 1000,
    n_steps: int | None = None,
    step_size: float | None = None,
    num_frames: int = 60,
    seed: int = 0,
) -> LangevinDemo:
    """Start ``n`` chains from ``init`` (the model's data statistics: ``"far"`` is mostly where no
    data were seen) and run Langevin MC with s_θ and with the exact ∇ log p, side by side. Both
    runs draw the same noise (two generators seeded ``seed + 1``)."""
    n = int(min(max(n, 1), MAX_CHAINS))
    n_steps = model.langevin_steps if n_steps is None else int(min(max(n_steps, 1), MAX_DEMO_STEPS))
    step = model.step_size if step_size is None else float(step_size)
    x0 = model.init_points(n, init, generator=make_generator(seed))
    learned = model.langevin_chains(
        x0, n_steps, step, num_frames, generator=make_generator(seed + 1)
    )
    exact = langevin(
        target.score,
        x0,
        step,
        n_steps,
        generator=make_generator(seed + 1),
        record_every=record_every_for(n_steps, num_frames),
    )
    return LangevinDemo(learned.cpu(), exact.cpu())


def trained_langevin_demo(
    trained: Trained,
    init: InitKind = "far",
    n: int = 1000,
    n_steps: int | None = None,
    step_size: float | None = None,
    seed: int = 0,
) -> LangevinDemo:
    """``langevin_demo`` of a trained score-matching result on its own target (60 frames)."""
    return langevin_demo(
        trained.model, trained.target, init, n, n_steps, step_size, num_frames=60, seed=seed
    )


@dataclass(frozen=True)
class LangevinComparison:
    """Plain Langevin with the score at σ_L vs annealed Langevin over the ladder, from the same
    initial states: their trajectories (``plain`` labelled by step, ``annealed`` by σ)."""

    plain: Trajectory
    annealed: Trajectory

    @property
    def plain_samples(self) -> Tensor:
        return self.plain.xs[-1]

    @property
    def annealed_samples(self) -> Tensor:
        return self.annealed.xs[-1]

    def cpu(self) -> LangevinComparison:
        return LangevinComparison(self.plain.cpu(), self.annealed.cpu())


@torch.no_grad()
def compare_plain_annealed(
    score_fn: NoiseScoreFn,
    x0: Tensor,
    sigmas: list[float],
    step_ratio: float = 0.1,
    steps_per_level: int = 100,
    plain_step: float = 0.05,
    num_frames: int = 40,
    generator: torch.Generator | None = None,
) -> LangevinComparison:
    """Run both samplers from ``x0 (N, 2)`` with ``score_fn(x, σ)`` (learned or analytic).

    Plain Langevin: the lecture's x + ε s(x, σ_L) + √(2ε) z with ε = ``plain_step`` (a step on
    the scale of the data, so chains do reach the modes) for the same number of score
    evaluations L·T; annealed: Song & Ermon with ε = step_ratio·σ_L², no final denoising."""
    if not (0 < plain_step <= 10):
        raise ValueError("the plain Langevin step must be in (0, 10]")
    sigma_L = sigmas[-1]
    n_steps = len(sigmas) * steps_per_level
    plain = langevin(
        lambda x: score_fn(x, sigma_L),
        x0,
        plain_step,
        n_steps,
        generator=generator,
        record_every=record_every_for(n_steps, max(num_frames, 2)),
    )
    annealed = annealed_langevin(
        score_fn,
        x0,
        sigmas,
        step_ratio * sigma_L**2,
        steps_per_level,
        generator=generator,
        num_frames=num_frames,
        denoise=False,
    )
    return LangevinComparison(plain, annealed)


# -- Langevin's equilibrium and its bias (lecture 4-1 appendix) -----------------------------------
#: default ε's of the bias curve as multiples of the target's Fisher length² v_F = d/⟨‖∇log p‖²⟩
#: (a Gaussian of variance v has v_F = v, and ULA diverges on it beyond ε = 2v); on 8gaussians
#: (v_F ≈ 0.129) they are ε ≈ 0.02, 0.05, 0.1, 0.2
BIAS_FACTORS = (0.16, 0.4, 0.8, 1.6)
BIAS_BINS = 48  # histogram bins per axis over the target's box
_SUB = 4  # quadrature points per bin and axis for p's bin masses


@dataclass(frozen=True)
class LangevinBias:
    """KL(p‖chain) in nats per 2D point for each step size ``step_sizes (K,)``: ``kl (K,)``,
    the mean acceptance rate ``acceptance (K,)`` (1 for ULA), ``outside (K,)`` the fraction of
    chain states outside the histogram's box, and ``floor`` the same histogram estimator's KL for
    as many i.i.d. exact samples (what Monte-Carlo noise alone gives). numpy float64 arrays."""

    step_sizes: np.ndarray
    kl: np.ndarray
    acceptance: np.ndarray
    outside: np.ndarray
    floor: float
    mala: bool
    samples_per_step: int


def _bin_masses(target: Target2D, bins: int) -> Tensor:
    """p's mass in each bin of the box (midpoint quadrature with ``_SUB``² points per bin),
    normalised within the box: ``(bins*bins,)`` float64, row-major [iy, ix]."""
    x0, x1, y0, y1 = (float(b) for b in target.bounds)
    m = bins * _SUB
    xs = x0 + (torch.arange(m, dtype=torch.float64) + 0.5) * (x1 - x0) / m
    ys = y0 + (torch.arange(m, dtype=torch.float64) + 0.5) * (y1 - y0) / m
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)  # (m*m, 2)
    with torch.no_grad():
        dens = target.log_prob(pts.float()).double().exp().reshape(bins, _SUB, bins, _SUB)
    mass = dens.sum((1, 3)).reshape(-1)
    return mass / mass.sum()


def histogram_kl(target: Target2D, x: Tensor, bins: int = BIAS_BINS) -> tuple[float, float]:
    """KL(p‖q̂) in nats with q̂ the histogram of ``x (M, 2)`` on a ``bins × bins`` grid over the
    target's box (½ pseudo-count per bin so empty bins stay finite) and p's exact bin masses;
    also the fraction of ``x`` outside the box."""
    p = _bin_masses(target, bins)
    x0, x1, y0, y1 = (float(b) for b in target.bounds)
    x = x.double()
    ok = torch.isfinite(x).all(1)
    ix = torch.floor((x[:, 0] - x0) / (x1 - x0) * bins)
    iy = torch.floor((x[:, 1] - y0) / (y1 - y0) * bins)
    inside = ok & (ix >= 0) & (ix < bins) & (iy >= 0) & (iy < bins)
    idx = (iy[inside] * bins + ix[inside]).long()
    counts = torch.bincount(idx, minlength=bins * bins).double()
    q = (counts + 0.5) / (counts.sum() + 0.5 * bins * bins)
    pos = p > 0
    kl = float((p[pos] * (p[pos].log() - q[pos].log())).sum())
    return kl, 1.0 - float(inside.double().mean())


def _finite_only(fn, fill: float, radius: float):
    """``fn`` evaluated only on the rows of ``x`` that are finite and within ``radius`` (diverged
    chains get ``fill``): a chain that blew up at a large ε must not crash a target whose density
    code needs moderate input."""

    def wrapped(x: Tensor) -> Tensor:
        ok = torch.isfinite(x).all(1) & (x.abs().amax(1) < radius)
        if bool(ok.all()):
            return fn(x)
        good = fn(x[ok])
        out = torch.full((x.shape[0], *good.shape[1:]), fill, dtype=good.dtype, device=x.device)
        out[ok] = good
        return out

    return wrapped


def fisher_length2(
    target: Target2D, n: int = 4096, generator: torch.Generator | None = None
) -> float:
    """v_F = d / ⟨‖∇log p‖²⟩_p (d = 2), the target's local length² (its variance for a Gaussian);
    for a density whose score vanishes almost everywhere (uniform pieces) the box's (width/40)²."""
    x = target.sample(n, generator=generator if generator is not None else make_generator(7))
    with torch.no_grad():
        s = target.score(x).double()
    fisher = float((s**2).sum(-1).mean())
    x0, x1, y0, y1 = (float(b) for b in target.bounds)
    fallback = (max(x1 - x0, y1 - y0) / 40.0) ** 2
    v = 2.0 / fisher if math.isfinite(fisher) and fisher > 0 else fallback
    return min(v, 100 * fallback)


def bias_step_sizes(
    target: Target2D, factors: tuple[float, ...] = BIAS_FACTORS
) -> tuple[float, ...]:
    """The default ε's of ``langevin_bias``: ``factors`` × ``fisher_length2(target)``."""
    v = fisher_length2(target)
    return tuple(float(f * v) for f in factors)


def bias_cost_seconds(target: Target2D, n: int = 700, steps: int = 240, k: int = 4) -> float:
    """A rough forecast of ``langevin_bias`` for ULA and MALA together on this target: one score
    and one log p call on ``k·n`` points, timed, × 2 runs × ``steps`` × 1.5 (to decide whether a
    page computes it at once)."""
    import time

    x = target.sample(k * n, generator=make_generator(3))
    best = math.inf
    for _ in range(3):  # the best of three: the first call pays one-off costs
        t0 = time.perf_counter()
        with torch.no_grad():
            target.score(x)
            target.log_prob(x)
        best = min(best, time.perf_counter() - t0)
    return 1.5 * best * steps * 2


@torch.no_grad()
def langevin_bias(
    target: Target2D,
    step_sizes: tuple[float, ...] | list[float] | None = None,
    n: int = 700,
    steps: int = 240,
    generator: torch.Generator | None = None,
    mala: bool = False,
    bins: int = BIAS_BINS,
    thin: int = 2,
) -> LangevinBias:
    """KL(p‖chain) per ε with the target's EXACT score (and log density for MALA's correction).

    ``n`` chains per ε start from exact samples of p, so what is measured is the drift AWAY from
    p — the bias of the chain's equilibrium — not the time to reach it. All ε run in one batch
    from the same starting states (``step_sizes`` None: ``bias_step_sizes(target)``); ULA and MALA
    called with equally seeded generators draw the same proposal noise and uniforms. After
    ``steps // 2`` burn-in steps the states of the second half are pooled (every ``thin``-th
    step) into the histogram of ``histogram_kl`` (chains that left the target's box are dropped
    from it and counted in ``outside``). ``floor``: the estimator's KL for as many i.i.d. samples
    of p (pooled chain states are correlated, so MALA may sit slightly above it)."""
    eps = [float(e) for e in (bias_step_sizes(target) if step_sizes is None else step_sizes)]
    if not eps or any(not (0 < e <= 10 and math.isfinite(e)) for e in eps):
        raise ValueError("the step sizes must be numbers in (0, 10]")
    n = int(min(max(n, 10), 20_000))
    steps = int(min(max(steps, 8), 5000))
    k = len(eps)
    g = generator if generator is not None else make_generator(0)
    x0 = target.sample(n, generator=g).float().repeat(k, 1)  # (K*n, 2): the same starts per ε
    col = torch.tensor(eps, dtype=torch.float32).repeat_interleave(n)[:, None]  # (K*n, 1)
    burn = steps // 2
    thin = int(min(max(thin, 1), steps))
    record = list(range(burn + thin, steps + 1, thin)) or [steps]
    radius = 50.0 * max(abs(float(b)) for b in target.bounds)  # beyond: diverged
    log_prob = _finite_only(target.log_prob, -math.inf, radius)
    score = _finite_only(target.score, 0.0, radius)
    run = run_mala(log_prob, score, x0, col, steps, generator=g, record=record, adjust=mala)
    xs = run.xs.reshape(len(run.steps), k, n, 2)  # (F, K, n, 2)
    kls, outs, accs = [], [], []
    for i in range(k):
        kl, out = histogram_kl(target, xs[:, i].reshape(-1, 2), bins)
        kls.append(kl)
        outs.append(out)
        accs.append(float(run.acceptance[i * n : (i + 1) * n].mean()))
    m = len(run.steps) * n
    floor, _ = histogram_kl(target, target.sample(m, generator=g), bins)
    return LangevinBias(
        step_sizes=np.array(eps),
        kl=np.array(kls),
        acceptance=np.array(accs),
        outside=np.array(outs),
        floor=floor,
        mala=bool(mala),
        samples_per_step=m,
    )
