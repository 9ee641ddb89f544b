"""Samplers against their cost (lecture 4-3, 4-4): sample quality vs the number of function
evaluations (NFE), with the exact score of the target (the only error is the discretisation) or
with a trained model.

Every sampler starts from the same prior draw (common random numbers) and its NFE is *counted*
(the score/ε function is wrapped by a counter), not assumed. Quality is the sliced 2-Wasserstein
distance to an independent target sample of the same size; its noise floor (two independent target
samples) is returned with the curves, since no sampler can be seen to beat it.

Samplers (``SAMPLERS``): DDPM ancestral (on the SDE page σ_t² = β_t on the linear schedule with
T = NFE steps, the discretisation of the VP-SDE; on the DDPM page the model's schedule respaced,
i.e. DDIM with η = 1, σ_t² = β̃_t of the respaced chain), reverse SDE by Euler–Maruyama,
predictor–corrector (one Langevin corrector step), the probability-flow ODE by Euler, Heun and
RK4, DDIM (η = 0) and DPM-Solver-2. Ancestral, DDIM and DPM-Solver-2 need the VP process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.metrics import sliced_wasserstein
from genlib.models.ddpm import DDPM
from genlib.processes.ddpm import DDPMSchedule
from genlib.processes.sde import SDE, VPSDE
from genlib.rng import randn
from genlib.samplers.ancestral import ddpm_ancestral
from genlib.samplers.ddim import ddpm_ddim, vp_ddim, vp_eps_fn
from genlib.samplers.dpm_solver import ddpm_dpm_solver_2, vp_dpm_solver_2
from genlib.samplers.sde import marginal_score_fn, pf_ode_sample, predictor_corrector

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "SamplerName",
    "SAMPLERS",
    "DDPM_SAMPLERS",
    "EVALS_PER_STEP",
    "NFE_CHOICES",
    "NFE_DEFAULT",
    "DETERMINISTIC",
    "PATH_REF_STEPS",
    "NFEMetric",
    "ScoreSource",
    "NFECurve",
    "NFEStudy",
    "steps_for",
    "sde_sample",
    "sde_nfe_study",
    "ddpm_nfe_study",
    "trained_sde_nfe",
    "trained_ddpm_nfe",
    "exact_eps_fn",
    "MAX_NFE_POINTS",
]

SamplerName = Literal["ancestral", "em", "pc", "euler", "heun", "rk4", "ddim", "dpm2"]
SAMPLERS: tuple[SamplerName, ...] = (
    "ancestral",
    "em",
    "pc",
    "euler",
    "heun",
    "rk4",
    "ddim",
    "dpm2",
)
DDPM_SAMPLERS: tuple[str, ...] = ("ancestral", "ddim", "dpm2")
#: score evaluations per step of each sampler (the step count is NFE // this)
EVALS_PER_STEP: dict[str, int] = {
    "ancestral": 1, "em": 1, "pc": 2, "euler": 1, "heun": 2, "rk4": 4, "ddim": 1, "dpm2": 2,
}  # fmt: skip
NFE_CHOICES = (4, 8, 16, 32, 64, 128, 256)
NFE_DEFAULT = (4, 8, 16, 32, 64)
DETERMINISTIC: tuple[str, ...] = ("euler", "heun", "rk4", "ddim", "dpm2")
PATH_REF_STEPS = 128  # RK4 steps of the reference PF-ODE solution (512 evaluations)
ScoreSource = Literal["exact", "model"]
NFEMetric = Literal["sw", "path"]
MAX_NFE_POINTS = 5000
_VP_ONLY = ("ancestral", "ddim", "dpm2")


@dataclass(frozen=True)
class NFECurve:
    """One sampler's quality at each budget: ``nfe[i]`` counted evaluations, ``error[i]`` sliced
    W₂ to the reference sample."""

    sampler: str
    nfe: tuple[int, ...]
    error: tuple[float, ...]


@dataclass(frozen=True)
class NFEStudy:
    """The curves of every sampler run, with what drove them (``score``) and the metric's floor."""

    curves: tuple[NFECurve, ...]
    score: str
    floor: float  # sliced W₂ between two independent target samples of size n (0 for "path")
    n: int
    skipped: tuple[str, ...] = ()  # samplers not applicable to this process / metric
    metric: str = "sw"

    def curve(self, sampler: str) -> NFECurve:
        for c in self.curves:
            if c.sampler == sampler:
                return c
        raise KeyError(sampler)


def steps_for(sampler: str, nfe: int) -> int:
    """The number of steps of ``sampler`` that costs about ``nfe`` evaluations (at least 1)."""
    if sampler not in EVALS_PER_STEP:
        raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    return max(1, int(nfe) // EVALS_PER_STEP[sampler])


class _Counter:
    """Wraps an evaluation function and counts its calls."""

    def __init__(self, fn: Callable) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args):  # noqa: ANN002, ANN204
        self.calls += 1
        return self.fn(*args)


def _is_default_vp(sde: SDE) -> bool:
    """The DDPM linear schedule with T steps is the discretisation of this VP-SDE (β 0.1 → 20)."""
    return isinstance(sde, VPSDE) and (sde.beta_min, sde.beta_max) == (0.1, 20.0)


def sde_sample(
    sampler: str,
    sde: SDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x1: Tensor,
    steps: int,
    generator: torch.Generator | None,
) -> Tensor:
    """Run one sampler of the SDE family from ``x1 (N, 2)`` ~ p_1 with ``steps`` steps: ``(N, 2)``."""
    if sampler == "em":
        return predictor_corrector(sde, score_fn, x1, steps, 1.0, 0.1, 0, generator)
    if sampler == "pc":
        return predictor_corrector(sde, score_fn, x1, steps, 1.0, 0.1, 1, generator)
    if sampler in ("euler", "heun", "rk4"):
        return pf_ode_sample(sde, score_fn, x1, steps, sampler)
    if sampler in _VP_ONLY and sde.kind != "vp":
        raise ValueError(f"{sampler} needs the VP process")
    if sampler == "ddim":
        return vp_ddim(sde, score_fn, x1, steps)
    if sampler == "dpm2":
        return vp_dpm_solver_2(sde, score_fn, x1, steps)
    if sampler == "ancestral":
        if not _is_default_vp(sde):
            raise ValueError("ancestral sampling here needs the VP-SDE with β from 0.1 to 20")
        sched = DDPMSchedule("linear", max(2, steps))

        vp_eps = vp_eps_fn(sde, score_fn)

        def eps_fn(x: Tensor, t: int) -> Tensor:  # the DDPM step t is the SDE time t / T
            return vp_eps(x, t / sched.T)

        return ddpm_ancestral(eps_fn, sched, x1, generator, 2, "beta").xs[-1]
    raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")


def _check(n: int, budgets: tuple[int, ...]) -> None:
    if not (16 <= n <= MAX_NFE_POINTS):
        raise ValueError(f"the NFE study uses 16..{MAX_NFE_POINTS} points")
    if not budgets or any(not (1 <= b <= 2000) for b in budgets):
        raise ValueError("NFE budgets must be in 1..2000")


def _floor(target: Target2D, n: int, seed: int) -> tuple[Tensor, float]:
    """A reference sample and the SW floor (two independent target samples), seeded."""
    ref = target.sample(n, generator=make_generator(seed + 101))
    other = target.sample(n, generator=make_generator(seed + 102))
    return ref, sliced_wasserstein(other, ref, 128, make_generator(seed + 103))


def _applicable(name: str, sde: SDE, metric: str) -> bool:
    if metric == "path" and name not in DETERMINISTIC:
        return False
    if name == "ancestral":
        return _is_default_vp(sde)
    return name not in _VP_ONLY or sde.kind == "vp"


@torch.no_grad()
def sde_nfe_study(
    sde: SDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    target: Target2D,
    n: int = 1000,
    budgets: tuple[int, ...] = NFE_DEFAULT,
    seed: int = 0,
    samplers: tuple[str, ...] = SAMPLERS,
    score: str = "exact",
    metric: NFEMetric = "sw",
    device: torch.device | str | None = None,
) -> NFEStudy:
    """Error vs counted NFE for each sampler of ``samplers`` at each budget, all from the same
    prior draw. ``metric="sw"``: sliced W₂ to an independent sample of ``target`` (every sampler;
    with its noise floor). ``"path"``: the mean distance ‖x − x*‖ per point to the converged
    PF-ODE solution x* from the same prior draw (RK4 with ``PATH_REF_STEPS`` steps; only the
    deterministic samplers, which all converge to x*). Samplers that need the VP process are
    skipped for VE (listed in ``skipped``)."""
    _check(n, budgets)
    if metric not in ("sw", "path"):
        raise ValueError("metric must be 'sw' or 'path'")
    x1 = sde.prior_sample(n, make_generator(seed), device)
    if metric == "sw":
        ref, floor = _floor(target, n, seed)
    else:
        ref, floor = pf_ode_sample(sde, score_fn, x1, PATH_REF_STEPS, "rk4").detach().cpu(), 0.0
    curves, skipped = [], []
    for name in samplers:
        if not _applicable(name, sde, metric):
            skipped.append(name)
            continue
        nfes, errs = [], []
        for b in budgets:
            fn = _Counter(score_fn)
            x = sde_sample(name, sde, fn, x1, steps_for(name, b), make_generator(seed + 1))
            x = x.detach().cpu()
            nfes.append(fn.calls)
            errs.append(_error(x, ref, metric, seed))
        curves.append(NFECurve(name, tuple(nfes), tuple(errs)))
    return NFEStudy(tuple(curves), score, floor, n, tuple(skipped), metric)


def _error(x: Tensor, ref: Tensor, metric: str, seed: int) -> float:
    if not bool(torch.isfinite(x).all()):
        return math.inf
    if metric == "path":
        return float((x.double() - ref.double()).norm(dim=-1).mean())
    return sliced_wasserstein(x.float(), ref, 128, make_generator(seed + 2))


def exact_eps_fn(target: Target2D, schedule: DDPMSchedule) -> Callable[[Tensor, int], Tensor]:
    """The exact ε(x, t) = −√(1−ᾱ_t) ∇ log p_t(x) of ``target`` on a DDPM schedule."""
    ab = schedule.alpha_bar.tolist()

    def eps(x: Tensor, t: int) -> Tensor:
        a, s = math.sqrt(ab[t - 1]), math.sqrt(1.0 - ab[t - 1])
        return -s * target.score_t(x, a, s)

    return eps


@torch.no_grad()
def ddpm_nfe_study(
    eps_fn: Callable[[Tensor, int], Tensor],
    schedule: DDPMSchedule,
    target: Target2D,
    n: int = 1000,
    budgets: tuple[int, ...] = (5, 10, 20, 50, 100, 200),
    seed: int = 0,
    score: str = "model",
    device: torch.device | str | None = None,
) -> NFEStudy:
    """Ancestral (the schedule respaced to the budget: DDIM with η = 1, i.e. σ² = β̃ of the
    respaced chain; at NFE = T the model's own ancestral sampler with β̃), DDIM (η = 0) and
    DPM-Solver-2 on a DDPM schedule: sliced W₂ vs counted NFE (budgets above T are capped)."""
    _check(n, budgets)
    ref, floor = _floor(target, n, seed)
    x_T = randn(n, 2, generator=make_generator(seed), device=device)  # (N, 2)
    T = schedule.T
    runs = {
        "ancestral": lambda f, k, g: ddpm_ddim(f, schedule, x_T, k, 1.0, g),
        "ddim": lambda f, k, g: ddpm_ddim(f, schedule, x_T, k, 0.0, g),
        "dpm2": lambda f, k, g: ddpm_dpm_solver_2(f, schedule, x_T, k),
    }
    curves = []
    for name, run in runs.items():
        seen: dict[int, float] = {}
        for b in budgets:
            k = min(T, steps_for(name, b))
            fn = _Counter(eps_fn)
            x = run(fn, k, make_generator(seed + 1)).detach().float().cpu()
            if fn.calls in seen:
                continue
            seen[fn.calls] = _error(x, ref, "sw", seed)
        nfes = tuple(sorted(seen))
        curves.append(NFECurve(name, nfes, tuple(seen[m] for m in nfes)))
    return NFEStudy(tuple(curves), score, floor, n)


def trained_sde_nfe(
    trained: Trained,
    score: ScoreSource = "exact",
    n: int = 1000,
    budgets: tuple[int, ...] = NFE_DEFAULT,
    seed: int = 0,
    metric: NFEMetric = "sw",
) -> NFEStudy:
    """``sde_nfe_study`` of a trained score-SDE model's process with the exact score of its
    target (``score="exact"``) or the model's s_θ (``"model"``)."""
    model = trained.model
    sde = model.process  # type: ignore[attr-defined]
    if score == "exact":
        fn = marginal_score_fn(trained.target, sde)
    elif score == "model":
        fn = model.score  # type: ignore[attr-defined]
    else:
        raise ValueError("score must be 'exact' or 'model'")
    return sde_nfe_study(
        sde, fn, trained.target, n, budgets, seed, score=score, metric=metric, device=model.device
    )


def trained_ddpm_nfe(
    trained: Trained,
    score: ScoreSource = "model",
    n: int = 1000,
    budgets: tuple[int, ...] = (5, 10, 20, 50, 100, 200),
    seed: int = 0,
) -> NFEStudy:
    """``ddpm_nfe_study`` of a trained DDPM: its ε_θ (``score="model"``) or the exact ε of its
    target on the same schedule (``"exact"``)."""
    model = trained.model
    if not isinstance(model, DDPM):
        raise TypeError("needs a DDPM model")
    if score == "exact":
        fn = exact_eps_fn(trained.target, model.schedule)
    elif score == "model":
        fn = model.eps_fn()
    else:
        raise ValueError("score must be 'exact' or 'model'")
    return ddpm_nfe_study(
        fn, model.schedule, trained.target, n, budgets, seed, score=score, device=model.device
    )
