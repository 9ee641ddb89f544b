"""Flow matching (lecture 4-5), registered as ``flow_matching``. τ ∈ [0, 1], τ = 0 noise, τ = 1 data.

A network v_θ(x̃, τ) is regressed on the conditional velocity of a Gaussian conditional path
(``genlib.processes.paths``): the conditional flow-matching (CFM) objective

    E_{τ ~ U[0, 1], x ~ p, x̃ ~ p_τ(x̃|x)} ‖ v_θ(x̃, τ) - u_τ(x̃ | x) ‖²

has the same gradient as regressing on the (unknown) marginal velocity u_τ(x̃) (lecture). Samples
solve ẋ = v_θ(x, τ) from x(0) ~ N(0, I) to τ = 1 (Heun / RK4 / Euler, fixed steps), and the
density is exact by the continuity equation: log q_θ(x) = log N(x(0); 0, I) - ∫_0^1 ∇·v_θ dτ.

Level convention: the level is the path time τ ∈ [0, 1] (τ = 1 data); ``velocity(x, τ)`` ≈ the
marginal velocity u_τ and ``marginal_at(τ) = (a(τ), σ_τ)``, the path's coefficients (p_τ is the
law of a(τ) x₀ + σ_τ ε). Page demos (conditional paths, the exact-velocity ODE) live in
``genlib.lab.flow_matching``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genlib.distributions.base import Target2D
from genlib.geometry import LOG_2PI
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.models.sde import single_time, stratified_times, time_net
from genlib.nn import FastMLP, TimeMLP
from genlib.processes.paths import PathKind, ProbabilityPath, make_path
from genlib.rng import randn, randn_like
from genlib.samplers.ode import (
    ODE_METHODS,
    ODEMethod,
    VelocityFn,
    ode_log_likelihood,
    odeint,
)

__all__ = ["FlowMatching", "PATH_KINDS", "standard_normal_log_prob"]

PATH_KINDS: tuple[PathKind, ...] = ("ot", "straight", "vp")
MAX_STEPS = 2000
MAX_LIKELIHOOD_STEPS = 400


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(msg)


def standard_normal_log_prob(x: Tensor) -> Tensor:
    """log N(x; 0, I) in 2D: ``(N,)``."""
    return -LOG_2PI - 0.5 * (x**2).sum(-1)


@register("flow_matching")
class FlowMatching(GenerativeModel):
    """Conditional flow matching with an OT, straight (rectified) or VP probability path."""

    name = "flow_matching"
    section = "4-5"
    presets = {
        "fast": Preset(
            model={"path": "ot", "hidden": 128, "depth": 3, "method": "heun", "steps": 50},
            train={"steps": 3000, "batch_size": 512, "lr": 2e-3, "ema": 0.995, "lr_decay": True},
            description="OT path, 3000 steps: trains in ~15 s on one CPU thread",
        ),
        "quality": Preset(
            model={"path": "ot", "hidden": 256, "depth": 4, "method": "rk4", "steps": 50},
            train={"steps": 20000, "batch_size": 1024, "lr": 1e-3, "ema": 0.999, "lr_decay": True},
            description="OT path, wider network, 20k steps (GPU or a few minutes of CPU)",
        ),
    }

    def __init__(
        self,
        path: PathKind = "ot",
        sigma_min: float = 0.01,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        hidden: int = 128,
        depth: int = 3,
        embed_dim: int = 64,
        time_scale: float = 1000.0,
        method: ODEMethod = "heun",
        steps: int = 50,
        likelihood_steps: int = 20,
        likelihood_method: ODEMethod = "rk4",
    ) -> None:
        super().__init__()
        _check(path in PATH_KINDS, f"path must be one of {', '.join(PATH_KINDS)}, got {path!r}")
        _check(method in ODE_METHODS and likelihood_method in ODE_METHODS, "unknown ODE method")
        _check(1 <= steps <= MAX_STEPS, f"steps must be in [1, {MAX_STEPS}]")
        _check(
            1 <= likelihood_steps <= MAX_LIKELIHOOD_STEPS,
            f"likelihood_steps must be in [1, {MAX_LIKELIHOOD_STEPS}]",
        )
        _check(1 <= hidden <= 1024 and 1 <= depth <= 8, "hidden in 1..1024, depth in 1..8")
        self.path_kind = path
        self.path: ProbabilityPath = make_path(
            path, sigma_min=sigma_min, beta_min=beta_min, beta_max=beta_max
        )
        self.method: ODEMethod = method
        self.steps = steps
        self.likelihood_steps = likelihood_steps
        self.likelihood_method: ODEMethod = likelihood_method
        self.net = TimeMLP(
            2, 2, hidden=hidden, depth=depth, embed_dim=embed_dim, time_scale=time_scale
        )

    @property
    def tau_max(self) -> float:
        """The data end of the path (1, or 1 - 10⁻³ for the VP path whose σ_τ vanishes at 1)."""
        return self.path.tau_max

    def velocity(self, x: Tensor, level: Tensor | float) -> Tensor:
        """v_θ(x, τ): ``(N, 2)``; ``level`` is the path time τ (a float or ``(N,)``)."""
        t = torch.as_tensor(level, dtype=x.dtype, device=x.device)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t.reshape(x.shape[0])
        return time_net(self.net, x, t)

    def sampling_velocity(self, dtype: torch.dtype | None = None) -> VelocityFn:
        """``velocity`` for the ODE solver, from the current weights: one folded first-layer bias
        per step (the batch shares one τ) and the network evaluated by ``FastMLP`` (hidden layers
        in ``dtype``, default ``sampling_dtype``); other batches, or a ``velocity`` set on the
        instance, fall back to ``velocity``."""
        if "velocity" in self.__dict__:
            return self.velocity
        fast = FastMLP.for_sampling(self.net, self.device, dtype)

        def velocity(x: Tensor, t: Tensor) -> Tensor:
            t1 = single_time(t)
            if t1 is None:
                return self.velocity(x, t)
            return fast(x, self.net.first_layer_bias(t1))  # (N, 2)

        return velocity

    def marginal_at(self, level: float) -> tuple[float, float]:
        """(a(τ), σ_τ) of p_τ = law of a(τ) x₀ + σ_τ ε, at the path time τ = ``level`` in [0, 1]."""
        tau = float(level)
        _check(0.0 <= tau <= 1.0, f"the flow-matching level is a time τ in [0, 1], got {level!r}")
        a, s, _, _ = self.path.coefficients(torch.tensor([tau], dtype=torch.float64))
        return float(a[0]), float(s[0])

    def true_velocity(self, target: Target2D, x: Tensor, level: float) -> Tensor:
        """The exact marginal velocity u_τ(x) of ``target`` under this path, from
        ``target.score_t`` at the path's coefficients (Tweedie): ``(N, 2)``."""
        return self.path.marginal_velocity(target, x, level)

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The CFM loss with stratified τ ~ U[0, τ_max]; τ and x̃_0 drawn with ``generator``."""
        tau = stratified_times(x.shape[0], generator, x.device) * self.tau_max
        xt, target = self.path.target_velocity(x, tau, randn_like(x, generator))
        return ((self.velocity(xt, tau) - target) ** 2).sum(-1).mean()

    def _solve(
        self, n: int, generator, num_frames: int, steps: int | None, method: ODEMethod | None
    ):
        steps = steps or self.steps
        method = method or self.method
        _check(1 <= n <= 200_000, "number of samples must be in [1, 200000]")
        _check(1 <= steps <= MAX_STEPS, f"steps must be in [1, {MAX_STEPS}]")
        _check(method in ODE_METHODS, "unknown ODE method")
        x = randn(n, 2, generator=generator, device=self.device)
        with torch.no_grad():
            return odeint(
                self.sampling_velocity(),
                x,
                0.0,
                self.tau_max,
                steps,
                method,
                num_frames,
                time_label="τ",
            )

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        method: ODEMethod | None = None,
    ) -> Tensor:
        return self._solve(n, generator, 0, steps, method)

    def trajectory(
        self,
        n: int,
        num_frames: int = 60,
        *,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        method: ODEMethod | None = None,
    ) -> Trajectory:
        """ODE paths from noise (frame 0, τ = 0) to data (last frame, τ = τ_max)."""
        return self._solve(n, generator, max(2, int(num_frames)), steps, method)

    def log_prob(
        self, x: Tensor, steps: int | None = None, method: ODEMethod | None = None
    ) -> Tensor:
        """Exact log q_θ(x) by the continuity equation (ODE from τ = τ_max back to 0): ``(N,)``."""
        steps = steps or self.likelihood_steps
        _check(1 <= steps <= MAX_LIKELIHOOD_STEPS, "too many likelihood steps")
        return ode_log_likelihood(
            self.velocity,
            x.to(self.device),
            self.tau_max,
            0.0,
            standard_normal_log_prob,
            steps=steps,
            method=method or self.likelihood_method,
        )

    def extra_repr(self) -> str:
        return f"path={self.path_kind}, method={self.method}, steps={self.steps}"
