"""DPM-Solver-2: a second-order exponential integrator of the probability-flow ODE of the VP
process (Lu et al. 2022, Algorithm 1 "DPM-Solver-2" with r = ½).

Write the VP marginal as x_t = α_t x_0 + σ_t ε (α_t = √ᾱ_t, σ_t = √(1−ᾱ_t)) and
λ_t = log(α_t/σ_t) (half the log-SNR). The PF-ODE in the ε-prediction is semi-linear, and its exact
solution from s to t (λ_t > λ_s, h = λ_t − λ_s) is

    x_t = (α_t/α_s) x_s − α_t ∫_{λ_s}^{λ_t} e^{−λ} ε̂(x_λ, λ) dλ.

The linear part is integrated exactly; the integral with ε̂ Taylor-expanded to first order in λ
about λ_s and evaluated at one intermediate point s₁ (λ_{s₁} = λ_s + r h):

    u   = (α_{s₁}/α_s) x_s − σ_{s₁}(e^{r h} − 1) ε̂(x_s, s)
    x_t = (α_t/α_s) x_s − σ_t(e^h − 1) ε̂(x_s, s) − σ_t(e^h − 1)/(2r) (ε̂(u, s₁) − ε̂(x_s, s))

(local error O(h³), global O(h²); two network evaluations per step). σ_t(e^h − 1) is computed as
α_t σ_s/α_s − σ_t, which stays finite when t is the data (σ_t = 0); a step without a usable
intermediate point is the first-order one (DDIM with η = 0, = DPM-Solver-1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from genlib.processes.ddpm import DDPMSchedule
from genlib.processes.sde import SDE
from genlib.samplers.ddim import AnyEpsFn, ddim_timesteps, vp_eps_fn

__all__ = [
    "dpm_solver_2",
    "ddpm_dpm_solver_2",
    "vp_dpm_solver_2",
    "vp_half_log_snr",
    "vp_time_of_half_log_snr",
]

Coeffs = Callable[[Any], tuple[float, float]]  # a time -> (α, σ)


@torch.no_grad()
def dpm_solver_2(
    eps_fn: AnyEpsFn,
    coeffs: Coeffs,
    times: Sequence[Any],
    mids: Sequence[Any | None],
    x: Tensor,
) -> Tensor:
    """Integrate the PF-ODE from ``x (N, 2)`` at ``times[0]`` through ``times[1:]`` (towards the
    data): step i goes from ``times[i]`` to ``times[i+1]`` via the intermediate time ``mids[i]``
    (``None``: a first-order step). ``coeffs(t) = (α_t, σ_t)``. Returns ``(N, 2)``."""
    if len(mids) != len(times) - 1:
        raise ValueError("one intermediate time per step")
    for i in range(len(times) - 1):
        ts, tt, tm = times[i], times[i + 1], mids[i]
        a_s, s_s = coeffs(ts)
        a_t, s_t = coeffs(tt)
        e_s = eps_fn(x, ts)  # (N, 2)
        phi = a_t * s_s / a_s - s_t  # σ_t (e^h − 1)
        x_lin = (a_t / a_s) * x
        if tm is None or s_t <= 0.0:
            x = x_lin - phi * e_s
            continue
        a_m, s_m = coeffs(tm)
        lam_s, lam_t, lam_m = (math.log(a / s) for a, s in ((a_s, s_s), (a_t, s_t), (a_m, s_m)))
        r = (lam_m - lam_s) / (lam_t - lam_s)
        u = (a_m / a_s) * x - (a_m * s_s / a_s - s_m) * e_s
        e_m = eps_fn(u, tm)
        x = x_lin - phi * e_s - phi / (2.0 * r) * (e_m - e_s)
    return x


def vp_half_log_snr(sde: SDE, t: Tensor) -> Tensor:
    """λ(t) = log(a(t)/s(t)) of a VP-SDE: ``(K,) -> (K,)``."""
    a, s = sde.marginal(t)
    return a.log() - s.log()


def vp_time_of_half_log_snr(sde: SDE, lam: Tensor) -> Tensor:
    """The inverse of λ(t) for the linear-β VP-SDE: with L = log(1 + e^{−2λ}) = −2 log a,
    t = 2L / (β_min + √(β_min² + 2 (β_max − β_min) L))."""
    b0 = float(sde.beta_min)  # type: ignore[attr-defined]
    db = float(sde.beta_max) - b0  # type: ignore[attr-defined]
    L = torch.nn.functional.softplus(-2.0 * lam)
    return 2.0 * L / (b0 + (b0 * b0 + 2.0 * db * L).sqrt())


def vp_dpm_solver_2(
    sde: SDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    steps: int,
    t_end: float | None = None,
    grid: Literal["logsnr", "time"] = "logsnr",
) -> Tensor:
    """DPM-Solver-2 for a VP-SDE with a score function, from t = 1 to ``t_end`` (default
    ``sde.eps``): ``steps`` steps uniform in λ (``grid="logsnr"``, DPM-Solver's default) or in t
    (``"time"``), midpoints in λ, ``2 · steps`` score evaluations. Returns ``(N, 2)``."""
    if sde.kind != "vp":
        raise ValueError("DPM-Solver here is for the VP process")
    if steps < 1:
        raise ValueError("DPM-Solver needs at least one step")
    t_end = sde.eps if t_end is None else t_end
    ends = torch.tensor([1.0, t_end], dtype=torch.float64)
    lam = vp_half_log_snr(sde, ends)
    if grid == "logsnr":
        lams = torch.linspace(float(lam[0]), float(lam[1]), steps + 1, dtype=torch.float64)
    elif grid == "time":
        lams = vp_half_log_snr(sde, torch.linspace(1.0, t_end, steps + 1, dtype=torch.float64))
    else:
        raise ValueError("grid must be 'logsnr' or 'time'")
    ts = vp_time_of_half_log_snr(sde, lams)
    ms = vp_time_of_half_log_snr(sde, 0.5 * (lams[:-1] + lams[1:]))
    ts[0], ts[-1] = 1.0, t_end  # exact ends

    def coeffs(t: float) -> tuple[float, float]:
        a, s = sde.marginal(torch.tensor([t], dtype=torch.float64))
        return float(a[0]), float(s[0])

    return dpm_solver_2(vp_eps_fn(sde, score_fn), coeffs, ts.tolist(), ms.tolist(), x)


def ddpm_dpm_solver_2(
    eps_fn: Callable[[Tensor, int], Tensor],
    schedule: DDPMSchedule,
    x_T: Tensor,
    steps: int,
    grid: Literal["logsnr", "time"] = "logsnr",
) -> Tensor:
    """DPM-Solver-2 on a DDPM schedule (integer steps): ``steps`` steps through integer steps
    from T to 1 (``grid="logsnr"``: those nearest to a grid uniform in λ; ``"time"``:
    ``ddim_timesteps(T, steps)``) and finally t = 0 (x̂_0). The intermediate point of each step is
    the integer step nearest to the λ-midpoint (so r is not exactly ½); a step with no integer
    between its ends, and the last one into the data, are first order. At most ``2 · steps − 1``
    evaluations. Returns ``(N, 2)``."""
    ab = schedule.alpha_bar.tolist()
    ts = [*(ddim_timesteps(schedule.T, steps) if grid == "time" else _lambda_steps(ab, steps)), 0]

    def coeffs(t: int) -> tuple[float, float]:
        a = 1.0 if t == 0 else ab[t - 1]
        return math.sqrt(a), math.sqrt(1.0 - a)

    def lam(t: int) -> float:
        a, s = coeffs(t)
        return math.log(a / s)

    mids: list[int | None] = []
    for s, t in zip(ts[:-1], ts[1:], strict=True):
        if t == 0 or s - t < 2:
            mids.append(None)
            continue
        target = 0.5 * (lam(s) + lam(t))
        m = min(range(t + 1, s), key=lambda k: abs(lam(k) - target))
        mids.append(m)
    return dpm_solver_2(eps_fn, coeffs, ts, mids, x_T)


def _lambda_steps(alpha_bar: list[float], steps: int) -> list[int]:
    """``steps`` distinct integer steps T..1 (descending), nearest to a grid uniform in λ."""
    T = len(alpha_bar)
    if not (1 <= steps <= T):
        raise ValueError(f"DPM-Solver steps must be in [1, T = {T}]")
    lam = torch.tensor([0.5 * math.log(a / (1.0 - a)) for a in alpha_bar], dtype=torch.float64)
    if steps == 1:
        return [T]
    grid = torch.linspace(float(lam[-1]), float(lam[0]), steps, dtype=torch.float64)
    out: list[int] = []
    for g in grid.tolist():
        t = int(torch.argmin((lam - g).abs())) + 1
        t = min(t, out[-1] - 1) if out else T
        out.append(t)
    # keep them distinct and ≥ 1, ending at step 1
    out[-1] = 1
    for i in range(len(out) - 2, -1, -1):
        out[i] = max(out[i], out[i + 1] + 1)
    return out
