"""Flow-matching page demos (lecture 4-5): the conditional paths x̃_τ(x) of a probability path (no
training needed) and the ODE driven by the target's EXACT marginal velocity u_τ (what v_θ should
learn), from the same noise as the model's own trajectory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.models.flow_matching import MAX_STEPS, FlowMatching
from genlib.processes.paths import ProbabilityPath, conditional_trajectories
from genlib.rng import randn, randn_like
from genlib.samplers.ode import odeint
from genlib.trajectory import Trajectory

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "conditional_paths",
    "target_conditional_paths",
    "exact_trajectory",
    "OdeRuns",
    "trained_ode_runs",
    "trained_conditional_paths",
    "MAX_PATHS",
    "MAX_EXACT_POINTS",
]

MAX_PATHS = 2000  # conditional paths per call
MAX_EXACT_POINTS = 20_000  # particles of the exact-velocity ODE per call


def conditional_paths(
    path: ProbabilityPath,
    x: Tensor,
    num_frames: int = 30,
    *,
    generator: torch.Generator | None = None,
) -> Trajectory:
    """The conditional flows x̃_τ(x) = μ_τ(x) + σ_τ x̃_0 of data points ``x (N, 2)`` with fresh
    noise x̃_0 (drawn with ``generator``), from τ = 0 (noise, frame 0) to τ_max (data)."""
    frames, taus = conditional_trajectories(path, x, randn_like(x, generator), num_frames)
    return Trajectory(frames, taus, "τ")


def target_conditional_paths(
    path: ProbabilityPath, target: Target2D, n: int = 40, num_frames: int = 40, seed: int = 0
) -> Trajectory:
    """``conditional_paths`` of ``n`` target samples; one generator seeded ``seed`` draws the data
    points, then the noise."""
    if not (1 <= n <= MAX_PATHS):
        raise ValueError(f"the number of conditional paths must be in [1, {MAX_PATHS}]")
    g = make_generator(seed)
    x = target.sample(n, generator=g)
    return conditional_paths(path, x, num_frames, generator=g)


@torch.no_grad()
def exact_trajectory(
    model: FlowMatching,
    target: Target2D,
    n: int,
    num_frames: int = 60,
    *,
    generator: torch.Generator | None = None,
    steps: int | None = None,
) -> Trajectory:
    """The ODE ẋ = u_τ(x) with the target's exact marginal velocity under ``model``'s path, from
    the same noise as ``model.trajectory`` with an equally seeded generator, with the model's
    solver: a CPU ``Trajectory`` ``(F, n, 2)`` labelled τ. ``NotImplementedError`` when the
    target has no diffused marginal."""
    steps = steps or model.steps
    if not (1 <= n <= MAX_EXACT_POINTS and 1 <= steps <= MAX_STEPS):
        raise ValueError(f"need 1 <= n <= {MAX_EXACT_POINTS} and 1 <= steps <= {MAX_STEPS}")
    x = randn(n, 2, generator=generator, device="cpu").double()

    def u(y: Tensor, t: Tensor) -> Tensor:
        return model.true_velocity(target, y, float(t.reshape(-1)[0]))

    out = odeint(
        u, x, 0.0, model.tau_max, steps, model.method, max(2, int(num_frames)), time_label="τ"
    )
    return Trajectory(out.xs.float(), out.ts.float(), "τ")


def trained_conditional_paths(
    trained: Trained, n: int = 40, num_frames: int = 40, seed: int = 0
) -> Trajectory:
    """``target_conditional_paths`` under a trained model's probability path."""
    return target_conditional_paths(trained.model.path, trained.target, n, num_frames, seed)


@dataclass(frozen=True)
class OdeRuns:
    """The ODE with the learned v_θ and with the exact u_τ from the same noise (CPU
    trajectories, τ = 0 first); ``exact`` is None when the target has no diffused marginal."""

    learned: Trajectory
    exact: Trajectory | None


def trained_ode_runs(
    trained: Trained, n: int = 600, num_frames: int = 50, seed: int = 0
) -> OdeRuns:
    """Learned and exact ODE trajectories of a trained flow-matching model, both from the noise of
    a CPU generator seeded ``seed``."""
    model, target = trained.model, trained.target
    with torch.no_grad():
        learned = model.trajectory(n, num_frames, generator=make_generator(seed)).cpu()
    try:
        exact = exact_trajectory(model, target, n, num_frames, generator=make_generator(seed))
    except NotImplementedError:
        exact = None
    return OdeRuns(learned, exact)
