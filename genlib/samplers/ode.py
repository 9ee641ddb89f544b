"""Fixed-step ODE integrators over a velocity function, and the exact log-likelihood of an ODE flow
(lectures 4-4 probability-flow ODE and 4-5 flow matching).

A velocity function maps ``(x (N, D), t (N,)) -> (N, D)``. Times are passed as an *expanded*
``(N,)`` tensor (``torch.full`` would also do), so a network can compute its time embedding once.
Integration may run forwards or backwards in time (``t0 > t1`` is fine).

Exact likelihood (instantaneous change of variables). Along a solution of ẋ = v(x, t) the density
of the transported distribution obeys the continuity equation, so

    d/dt log p_t(x(t)) = -∇·v(x(t), t)   ⇒   log p_{t0}(x(t0)) = log p_{t1}(x(t1)) + ∫_{t0}^{t1} ∇·v dt,

which for the PF-ODE v = f - ½ g² s from data t0 = 0 to the prior t1 = T is the lecture's
log p_0(x) = log p_T(x(T)) + ∫_0^T ∇·(f - ½ g² s) dt, and for flow matching (τ = 1 data, τ = 0
noise) log p_1(x) = log p_0(x(0)) - ∫_0^1 ∇·v dτ. In 2D the divergence is computed exactly (one
autograd pass per coordinate), not with Hutchinson's estimator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from genlib.processes.forward import frame_indices
from genlib.trajectory import Trajectory

__all__ = [
    "VelocityFn",
    "ODEMethod",
    "ODE_METHODS",
    "EVALS_PER_STEP",
    "recorded_steps",
    "divergence",
    "velocity_and_divergence",
    "odeint",
    "ode_log_likelihood",
    "time_grid",
    "MAX_ODE_STEPS",
]

VelocityFn = Callable[[Tensor, Tensor], Tensor]
ODEMethod = Literal["euler", "heun", "rk4"]
ODE_METHODS: tuple[ODEMethod, ...] = ("euler", "heun", "rk4")
#: network evaluations per step of each method
EVALS_PER_STEP: dict[str, int] = {"euler": 1, "heun": 2, "rk4": 4}
MAX_ODE_STEPS = 5000


def time_grid(t0: float, t1: float, steps: int, device=None, dtype=torch.float32) -> Tensor:
    """``steps + 1`` equally spaced times from t0 to t1 (float64 arithmetic): ``(steps + 1,)``."""
    if not (1 <= steps <= MAX_ODE_STEPS):
        raise ValueError(f"ODE steps must be in [1, {MAX_ODE_STEPS}]")
    return torch.linspace(t0, t1, steps + 1, dtype=torch.float64).to(device=device, dtype=dtype)


def _times(t: Tensor, n: int) -> Tensor:
    return t.reshape(1).expand(n)  # (N,) without a copy


def _step(v: VelocityFn, x: Tensor, t: Tensor, h: Tensor, method: ODEMethod) -> Tensor:
    n = x.shape[0]
    if method == "euler":
        return x + h * v(x, _times(t, n))
    if method == "heun":
        k1 = v(x, _times(t, n))
        k2 = v(x + h * k1, _times(t + h, n))
        return x + 0.5 * h * (k1 + k2)
    if method == "rk4":
        k1 = v(x, _times(t, n))
        k2 = v(x + 0.5 * h * k1, _times(t + 0.5 * h, n))
        k3 = v(x + 0.5 * h * k2, _times(t + 0.5 * h, n))
        k4 = v(x + h * k3, _times(t + h, n))
        return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    raise ValueError(f"unknown ODE method {method!r}; known: {', '.join(ODE_METHODS)}")


def odeint(
    velocity_fn: VelocityFn,
    x: Tensor,
    t0: float,
    t1: float,
    steps: int = 100,
    method: ODEMethod = "heun",
    num_frames: int = 0,
    time_label: str = "t",
) -> Tensor | Trajectory:
    """Integrate ẋ = v(x, t) from ``t0`` to ``t1`` with ``steps`` fixed steps.

    Returns the end point ``(N, D)``, or with ``num_frames >= 2`` (and D = 2) a ``Trajectory`` of
    that many frames (first = x(t0), last = x(t1); a generation path when t0 is the prior end),
    its times labelled ``time_label``. Autograd follows the caller's grad mode.
    """
    if method not in ODE_METHODS:
        raise ValueError(f"unknown ODE method {method!r}; known: {', '.join(ODE_METHODS)}")
    ts = time_grid(t0, t1, steps, device=x.device, dtype=x.dtype)
    keep = recorded_steps(steps, num_frames)
    frames, frame_ts = [x], [ts[0]]
    for i in range(steps):
        x = _step(velocity_fn, x, ts[i], ts[i + 1] - ts[i], method)
        if i + 1 in keep:
            frames.append(x)
            frame_ts.append(ts[i + 1])
    if num_frames >= 2:
        return Trajectory(torch.stack(frames), torch.stack(frame_ts), time_label)
    return x


def recorded_steps(steps: int, num_frames: int) -> set[int]:
    """The step indices 1..steps after which a fixed-step integrator records a frame (the start,
    step 0, is always frame 0): ``num_frames`` evenly spread frames in all, none below 2."""
    if num_frames < 2:
        return set()
    return set(frame_indices(steps, num_frames)) - {0}


def velocity_and_divergence(velocity_fn: VelocityFn, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """v(x, t) ``(N, D)`` and its exact divergence ∇·v ``(N,)``: one forward pass and D backward
    passes (row i of the Jacobian summed over the batch is ∂v_i/∂x for each point, because the
    points do not interact). The result is detached."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        v = velocity_fn(xg, t)
        div = torch.zeros(x.shape[0], dtype=v.dtype, device=v.device)
        d = x.shape[1]
        for i in range(d):
            (gi,) = torch.autograd.grad(v[:, i].sum(), xg, retain_graph=i < d - 1)
            div = div + gi[:, i]
    return v.detach(), div.detach()


def divergence(velocity_fn: VelocityFn, x: Tensor, t: Tensor) -> Tensor:
    """Exact ∇·v(x, t): ``(N,)``."""
    return velocity_and_divergence(velocity_fn, x, t)[1]


def ode_log_likelihood(
    velocity_fn: VelocityFn,
    x: Tensor,
    t_data: float,
    t_prior: float,
    prior_log_prob: Callable[[Tensor], Tensor],
    steps: int = 50,
    method: ODEMethod = "rk4",
    chunk: int = 4096,
) -> Tensor:
    """Exact log-density of the flow's data-end distribution at ``x (N, D)``: ``(N,)``.

    Integrates the augmented ODE d/dt [x, ℓ] = [v, ∇·v] from ``t_data`` to ``t_prior`` and returns
    log p_prior(x(t_prior)) + ℓ(t_prior), i.e. log p(x) = log p_T(x(T)) + ∫ ∇·v dt. Points are
    processed in chunks of ``chunk`` to bound memory.
    """
    if method not in ODE_METHODS:
        raise ValueError(f"unknown ODE method {method!r}; known: {', '.join(ODE_METHODS)}")
    out = [
        _log_likelihood_chunk(velocity_fn, c, t_data, t_prior, prior_log_prob, steps, method)
        for c in torch.split(x, chunk)
    ]
    return torch.cat(out) if out else x.new_zeros(0)


def _log_likelihood_chunk(velocity_fn, x, t_data, t_prior, prior_log_prob, steps, method) -> Tensor:
    ts = time_grid(t_data, t_prior, steps, device=x.device, dtype=x.dtype)
    n = x.shape[0]

    def aug(z: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        return velocity_and_divergence(velocity_fn, z, _times(t, n))

    x = x.detach()
    ell = torch.zeros(n, dtype=x.dtype, device=x.device)
    for i in range(steps):
        t, h = ts[i], ts[i + 1] - ts[i]
        if method == "euler":
            v1, d1 = aug(x, t)
            x, ell = x + h * v1, ell + h * d1
        elif method == "heun":
            v1, d1 = aug(x, t)
            v2, d2 = aug(x + h * v1, t + h)
            x, ell = x + 0.5 * h * (v1 + v2), ell + 0.5 * h * (d1 + d2)
        else:  # rk4
            v1, d1 = aug(x, t)
            v2, d2 = aug(x + 0.5 * h * v1, t + 0.5 * h)
            v3, d3 = aug(x + 0.5 * h * v2, t + 0.5 * h)
            v4, d4 = aug(x + h * v3, t + h)
            x = x + h / 6 * (v1 + 2 * v2 + 2 * v3 + v4)
            ell = ell + h / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
    return prior_log_prob(x) + ell
