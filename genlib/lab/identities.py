"""The lecture's equivalence proofs as numbers: intractable objective = trained objective + const
(lecture 4-1, 4-2, 4-5 and their appendix derivations).

Each family trains on an objective it can compute and the lecture proves it equals the objective
it *wants* — a regression on the unknown ∇ log p, ∇ log p_σ or u_τ — up to a constant that does
not depend on θ. GenLab's targets have exact (noised) scores and exact marginal velocities, so both
sides can be evaluated on the same Monte-Carlo sample and the constant checked:

=================  =======================================  =====================================
family             trained (what the model minimises)       intractable (what it should minimise)
=================  =======================================  =====================================
score_matching     ⟨‖s_θ‖² + 2 ∇·s_θ⟩_p  (Hyvärinen)        ⟨‖s_θ − ∇log p‖²⟩_p  (Fisher)
ncsn (at σ)        σ² ⟨‖s_θ(x̃,σ) − ∇log p_σ(x̃|x)‖²⟩ (DSM)   σ² ⟨‖s_θ(x̃,σ) − ∇log p_σ(x̃)‖²⟩_{p_σ} (ESM)
flow_matching (τ)  ⟨‖v_θ(x̃,τ) − u_τ(x̃|x)‖²⟩  (CFM)         ⟨‖v_θ(x̃,τ) − u_τ(x̃)‖²⟩_{p_τ}  (FM)
=================  =======================================  =====================================

and in every case, exactly as the lecture writes it,

    intractable = trained + constant

    score matching:  constant = ⟨‖∇log p‖²⟩_p                                  (≥ 0)
    DSM at σ:        constant = σ² (⟨‖∇log p_σ(x̃)‖²⟩ − ⟨‖∇log p_σ(x̃|x)‖²⟩)    (≤ 0, = σ²⟨‖∇log p_σ‖²⟩ − 2)
    FM at τ:         constant = ⟨‖u_τ(x̃)‖²⟩ − ⟨‖u_τ(x̃|x)‖²⟩                    (≤ 0)

(the two last are ≤ 0 by Jensen: the marginal field is the posterior mean of the conditional one).

Scaling and units. Every value is the model's OWN objective at that level: the lecture's
score-matching objective ⟨s² + 2∇·s⟩ (twice the usual ½‖s‖² + ∇·s, so Fisher appears without the
½), NCSN's σ²-weighted DSM at one σ, flow matching's unweighted CFM at one τ. They are squared
norms of a 2D field summed over both coordinates and averaged over points — (1/length)² for the
score, dimensionless for σ²-weighted scores, (length/time)² for velocities — per 2D point; they
are not nats. All expectations are Monte-Carlo averages over ``n`` draws made with ``generator``
(the same draws for the three numbers); ``gap_stderr`` is the standard error of
intractable − trained − constant, whose expectation is exactly 0.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from genlib.distributions.base import Target2D
from genlib.models.base import GenerativeModel
from genlib.models.flow_matching import FlowMatching
from genlib.models.ncsn import NCSN
from genlib.models.score_matching import ScoreMatching, hyvarinen_terms
from genlib.rng import randn

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "GAP_FAMILIES",
    "GAP_KEYS",
    "objective_gap",
    "gap_family",
    "default_gap_level",
    "GapCurve",
    "gap_curve",
    "trained_gap_curve",
    "curve_from_frames",
    "live_gap",
    "with_live_gap",
    "LIVE_GAP_N",
    "CURVE_STEPS",
    "CURVE_POINTS",
    "CURVE_N",
]

GAP_FAMILIES = ("score_matching", "ncsn", "flow_matching")
GAP_KEYS = ("trained", "intractable", "constant")
LIVE_GAP_N = 256  # points per live-frame estimate (cheap: the job's frame budget is small)
CURVE_STEPS = 300  # steps of the short re-training behind a curve (results without live frames)
CURVE_POINTS = 16  # evaluations along it
CURVE_N = 2048  # Monte-Carlo points per evaluation
CURVE_BATCH = 256  # its mini-batch (the run's, capped: the curve must stay cheap)
MAX_N = 200_000


def gap_family(model: Any) -> str | None:
    """``"score_matching"``, ``"ncsn"``, ``"flow_matching"`` or None (no identity for this model)."""
    if isinstance(model, ScoreMatching):
        return "score_matching"
    if isinstance(model, NCSN):
        return "ncsn"
    if isinstance(model, FlowMatching):
        return "flow_matching"
    return None


def default_gap_level(model: Any) -> float | None:
    """The level a page (and the live frames) measure at: none (score matching), the ladder's σ
    nearest 0.5 (NCSN: p_σ still has the target's structure and both objectives move during
    training; a single-σ model: its σ), τ = 0.5 (flow matching)."""
    if isinstance(model, NCSN):
        return min(model.sigma_list, key=lambda s: abs(math.log(s / 0.5)))
    if isinstance(model, FlowMatching):
        return 0.5
    return None


def _result(trained: Tensor, intractable: Tensor, constant: Tensor) -> dict[str, float]:
    """Means of the per-point terms ``(N,)`` (float64) and the standard error of the gap."""
    resid = intractable - trained - constant  # (N,) expectation exactly 0
    n = resid.shape[0]
    se = float(resid.std() / math.sqrt(n)) if n > 1 else float("nan")
    return {
        "trained": float(trained.mean()),
        "intractable": float(intractable.mean()),
        "constant": float(constant.mean()),
        "gap_stderr": se,
    }


def _score_matching(model: ScoreMatching, target: Target2D, x: Tensor) -> dict[str, float]:
    x32 = x.float().to(model.device)
    sq, div = hyvarinen_terms(model.score, x32)  # the model's own loss terms (N,), (N,)
    with torch.no_grad():
        s = model.score(x32).double().cpu()  # (N, 2)
    trained = (sq + 2.0 * div).detach().double().cpu()  # (N,) the lecture's s² + 2∇·s
    true = target.score(x).double()  # (N, 2)
    intractable = ((s - true) ** 2).sum(-1)
    return _result(trained, intractable, (true**2).sum(-1))


def _ncsn(
    model: NCSN, target: Target2D, x: Tensor, sigma: float, g: torch.Generator
) -> dict[str, float]:
    if model.mode == "single" and not math.isclose(sigma, model.sigma_list[0], rel_tol=1e-6):
        raise ValueError(f"a single-σ NCSN is trained at σ = {model.sigma_list[0]:g} only")
    z = randn(tuple(x.shape), generator=g, dtype=torch.float64)  # (N, 2)
    x64 = x.double()
    xt = x64 + sigma * z  # x̃ ~ p_σ(x̃|x) p(x)
    with torch.no_grad():
        s = model.score(xt.float().to(model.device), sigma).double().cpu()  # (N, 2)
    cond = -z / sigma  # ∇ log p_σ(x̃|x) = −(x̃ − x)/σ²
    marg = target.score_t(xt, 1.0, sigma).double()  # ∇ log p_σ(x̃)
    w = sigma**2  # the model's weighting λ(σ) = σ²
    trained = w * ((s - cond) ** 2).sum(-1)
    intractable = w * ((s - marg) ** 2).sum(-1)
    constant = w * ((marg**2).sum(-1) - (cond**2).sum(-1))
    return _result(trained, intractable, constant)


def _flow_matching(
    model: FlowMatching, target: Target2D, x: Tensor, tau: float, g: torch.Generator
) -> dict[str, float]:
    if not (1e-3 <= tau <= model.tau_max):
        raise ValueError(f"τ must be in [0.001, {model.tau_max:g}] (σ_τ and a(τ) must be > 0)")
    a, s, da, ds = (
        float(c) for c in model.path.coefficients(torch.tensor([tau], dtype=torch.float64))
    )
    if not (a > 0 and s > 0):  # e.g. the straight path at τ = 1: no noise, no marginal score
        raise ValueError(f"τ = {tau:g} is outside this path's range (σ_τ and a(τ) must be > 0)")
    e = randn(tuple(x.shape), generator=g, dtype=torch.float64)  # x̃_0 (N, 2)
    x64 = x.double()
    xt = a * x64 + s * e  # x̃ ~ p_τ(x̃|x) p(x)
    with torch.no_grad():
        v = model.velocity(xt.float().to(model.device), tau).double().cpu()  # (N, 2)
    cond = da * x64 + ds * e  # u_τ(x̃|x)
    marg = model.path.marginal_velocity(target, xt, tau).double()  # u_τ(x̃) (exact)
    trained = ((v - cond) ** 2).sum(-1)
    intractable = ((v - marg) ** 2).sum(-1)
    constant = (marg**2).sum(-1) - (cond**2).sum(-1)
    return _result(trained, intractable, constant)


def objective_gap(
    model: GenerativeModel,
    target: Target2D,
    n: int,
    generator: torch.Generator,
    level: float | None = None,
) -> dict[str, float]:
    """The trained and the intractable objective of ``model`` on ``target`` and their constant
    difference (``intractable = trained + constant``; see the module doc for the three families,
    their scaling and units), from ``n`` draws of the target (and of the noise) with ``generator``
    (a CPU generator). ``level``: σ for NCSN, τ for flow matching (None: ``default_gap_level``),
    ignored for score matching. Returns floats ``{"trained", "intractable", "constant",
    "gap_stderr"}``."""
    family = gap_family(model)
    if family is None:
        raise ValueError(f"no objective identity for {type(model).__name__}")
    n = int(n)
    if not (2 <= n <= MAX_N):
        raise ValueError(f"n must be in [2, {MAX_N}]")
    x = target.sample(n, generator=generator).double()  # (N, 2)
    if family == "score_matching":
        return _score_matching(model, target, x)  # type: ignore[arg-type]
    lvl = default_gap_level(model) if level is None else float(level)
    if lvl is None or not math.isfinite(lvl):
        raise ValueError("the level must be a finite number")
    if family == "ncsn":
        if lvl <= 0:
            raise ValueError("the NCSN level is a noise scale σ > 0")
        return _ncsn(model, target, x, lvl, generator)  # type: ignore[arg-type]
    return _flow_matching(model, target, x, lvl, generator)  # type: ignore[arg-type]


# -- the identity over training ------------------------------------------------------------------
@dataclass(frozen=True)
class GapCurve:
    """The three objectives along a training run: ``steps (K,)`` and ``trained``, ``intractable``,
    ``constant`` ``(K,)`` (numpy float64); ``source`` is ``"live"`` (the job's own frames) or
    ``"replay"`` (a short re-training of the same model from its initial weights); ``level`` the
    σ/τ it was measured at (None for score matching)."""

    steps: np.ndarray
    trained: np.ndarray
    intractable: np.ndarray
    constant: np.ndarray
    source: str
    level: float | None
    gap_stderr: np.ndarray | None = None  # (K,) Monte-Carlo standard error of each residual

    @property
    def max_residual(self) -> float:
        """max |intractable − trained − constant| along the curve (0 up to Monte-Carlo error)."""
        return float(np.abs(self.intractable - self.trained - self.constant).max())

    @property
    def holds(self) -> bool:
        """Whether every residual is within 5 standard errors (+10⁻⁶): False where the lecture's
        assumptions fail — e.g. score matching on a density with jumps (checkerboard), where the
        surface term of the integration by parts does not vanish."""
        if self.gap_stderr is None:
            return True
        resid = np.abs(self.intractable - self.trained - self.constant)
        return bool(np.all(resid <= 5 * self.gap_stderr + 1e-6))


def live_gap(model: GenerativeModel, target: Target2D) -> dict[str, float] | None:
    """``objective_gap`` for a live frame at the default level, on a FIXED sample (seed 0), so the
    constant is the same number in every frame and the two curves move by θ alone; None when the
    target has no exact noised score."""
    from genlib.device import make_generator

    was_training = model.training
    model.eval()
    try:
        return objective_gap(model, target, LIVE_GAP_N, make_generator(0))
    except NotImplementedError:
        return None
    finally:
        model.train(was_training)


def with_live_gap(extra: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Wrap a live-view extra (``genlib.lab.live.LIVE_EXTRAS``) so each frame also carries
    ``extra["objective_gap"]`` (``live_gap`` plus its ``"level"``) for ``curve_from_frames``."""

    def fn(model: GenerativeModel, target: Target2D, generator: torch.Generator, bounds: Any):
        kw = dict(extra(model, target, generator, bounds))
        gap = live_gap(model, target)
        if gap is not None:
            gap = {**gap, "level": default_gap_level(model)}
            kw["extra"] = {**(kw.get("extra") or {}), "objective_gap": gap}
        return kw

    return fn


def curve_from_frames(frames: list[Any]) -> GapCurve | None:
    """A ``GapCurve`` from a job's live frames (``LiveFrame``s whose view's ``extra`` carries
    ``"objective_gap"``); None with fewer than two such frames."""
    rows = [
        (f.step, f.view.extra["objective_gap"])
        for f in frames
        if getattr(f.view, "extra", None) and f.view.extra.get("objective_gap")
    ]
    if len(rows) < 2:
        return None
    level = rows[-1][1].get("level")
    return _curve(rows, "live", None if level is None else float(level))


def _curve(rows: list[tuple[int, dict[str, float]]], source: str, level: float | None) -> GapCurve:
    """A ``GapCurve`` from ``(step, objective_gap dict)`` rows (a row without a standard error
    counts as unknown: ∞)."""
    return GapCurve(
        steps=np.array([r[0] for r in rows], dtype=np.float64),
        trained=np.array([r[1]["trained"] for r in rows]),
        intractable=np.array([r[1]["intractable"] for r in rows]),
        constant=np.array([r[1]["constant"] for r in rows]),
        source=source,
        level=level,
        gap_stderr=np.array([r[1].get("gap_stderr", np.inf) for r in rows]),
    )


def gap_curve(
    model: GenerativeModel,
    target: Target2D,
    lr: float,
    steps: int = CURVE_STEPS,
    points: int = CURVE_POINTS,
    n: int = CURVE_N,
    batch_size: int = CURVE_BATCH,
    level: float | None = None,
    seed: int = 0,
    train_seed: int | None = None,
    data_size: int = 20_000,
) -> GapCurve:
    """Train a COPY of ``model`` (in the state given: pass its initial weights) with its own loss
    (``genlib.training.train``: seed ``train_seed`` — default ``seed`` — for the ``data_size``
    training points, the mini-batches and the objective's noise) for ``steps`` Adam steps of
    ``batch_size`` and record ``objective_gap`` ``points`` times (step 0 included) on one fixed
    Monte-Carlo sample of ``n`` (seed ``seed``)."""
    from genlib.device import make_generator
    from genlib.training import TrainConfig, train

    steps = int(min(max(steps, 2), 20_000))
    every = max(1, steps // max(int(points) - 1, 1))
    work = copy.deepcopy(model).cpu()
    rows: list[tuple[int, dict[str, float]]] = []

    def measure(step: int) -> None:
        work.eval()
        rows.append((step, objective_gap(work, target, n, make_generator(seed), level)))
        work.train()

    measure(0)

    def on_step(step: int, logs: dict[str, float]) -> None:
        measure(step)

    cfg = TrainConfig(
        steps=steps, batch_size=int(batch_size), lr=float(lr),
        seed=seed if train_seed is None else int(train_seed), data_size=int(data_size),
        log_every=every,
    )  # fmt: skip
    train(work, target, cfg, on_step=on_step, device=torch.device("cpu"))
    lvl = default_gap_level(model) if level is None else float(level)
    return _curve(rows, "replay", lvl)


def trained_gap_curve(
    trained: Trained, level: float | None = None, steps: int = CURVE_STEPS, seed: int = 0
) -> GapCurve:
    """``gap_curve`` of a result's model family from the run's own seeded initial weights, with
    the run's seed (its training data, mini-batches and objective noise), data size and learning
    rate, its batch size capped at ``CURVE_BATCH``: what a page shows for a result that has no
    live frames (pretrained or loaded). With a batch ≤ ``CURVE_BATCH`` these are the run's own
    first ``steps`` steps (its raw weights: an EMA only replaces them at the end), up to its
    learning-rate decay (the rate 2 % lower by step 300 of a 3000-step run); ``seed`` is the
    Monte-Carlo sample's."""
    from genlib.runs import build_model

    init = build_model(trained.spec)
    cfg = trained.spec.train
    return gap_curve(
        init, trained.target, cfg.lr, steps=steps, batch_size=min(cfg.batch_size, CURVE_BATCH),
        level=level, seed=seed, train_seed=cfg.seed, data_size=cfg.data_size,
    )  # fmt: skip
