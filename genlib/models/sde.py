"""Score-based generative modelling with SDEs (lecture 4-4), registered as ``sde``.

Forward SDE dx = f dt + g dw on t ∈ [0, 1] (t = 0 data), VE or VP (``genlib.processes.sde``), with
the closed-form kernel p(x_t | x_0) = N(a(t) x_0, s(t)² I). The network gives a noise prediction
ε_θ(x, t) (directly, or from a v-prediction, the default: see ``ScoreSDE.epsilon``),
s_θ(x, t) = -ε_θ(x, t) / s(t), trained by continuous-time denoising score matching with the
weighting λ(t) = s(t)²:

    E_{t ~ U[ε, 1], x_0, ε} ‖ s(t) s_θ(a x_0 + s ε, t) + ε ‖² = E ‖ ε_θ - ε ‖².

Sampling integrates the reverse-time λ-family dx = [f - (1+λ²)/2 g² s_θ] dt + λ g dw̄ (λ = 1
reverse SDE, λ = 0 probability-flow ODE), optionally with Langevin corrector steps (PC), or the
PF-ODE with Heun/RK4. ``log_prob`` is the exact log-likelihood of the PF-ODE,
log p_0(x) = log p_T(x(T)) + ∫ ∇·(f - ½ g² s_θ) dt, with the exact 2D divergence.

Level convention: the level is the SDE time t ∈ [0, 1] (t = 0 data); ``score(x, t)`` ≈ ∇ log p_t
and ``marginal_at(t) = (a(t), s(t))``, the kernel's mean coefficient and standard deviation.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from genlib.distributions.base import Target2D
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.nn import FastMLP, TimeMLP
from genlib.processes.sde import SDE, VESDE, VPSDE, SDEKind
from genlib.rng import rand, randn_like
from genlib.samplers.ode import ODE_METHODS, ODEMethod, ode_log_likelihood
from genlib.samplers.sde import (
    SDEScoreFn,
    marginal_score_fn,
    pf_ode_sample,
    predictor_corrector,
)

__all__ = [
    "ScoreSDE",
    "SDESampler",
    "SDE_SAMPLERS",
    "Parametrization",
    "time_net",
    "single_time",
    "stratified_times",
]

SDESampler = Literal["em", "pc", "ode"]
Parametrization = Literal["eps", "v"]
SDE_SAMPLERS: tuple[SDESampler, ...] = ("em", "pc", "ode")
MAX_SAMPLER_STEPS = 2000
MAX_LIKELIHOOD_STEPS = 400


def time_net(net: TimeMLP, x: Tensor, t: Tensor) -> Tensor:
    """``net(x, t)``; when ``t`` is one time expanded over the batch (stride 0, as the samplers pass
    it) the time embedding is computed once and broadcast (≈2x faster sampling)."""
    if t.ndim == 1 and t.shape[0] > 1 and t.stride(0) == 0:
        h = net.inp(x) + net.first_layer_bias(t[:1])  # (N, hidden) + (1, hidden)
        return net.body(net.act(h))
    return net(x, t)


def single_time(t: Tensor) -> Tensor | None:
    """``t[:1]`` when the times ``t (N,)`` are one time broadcast over the batch (stride 0, as the
    samplers pass them, or N = 1), else ``None``."""
    if t.ndim == 1 and t.shape[0] >= 1 and (t.shape[0] == 1 or t.stride(0) == 0):
        return t[:1]
    return None


def stratified_times(
    n: int, generator: torch.Generator | None, device: torch.device | str
) -> Tensor:
    """``n`` stratified uniforms on [0, 1): one uniform offset, evenly spread, ``(n,)`` (a
    lower-variance draw of the time of a continuous-time loss)."""
    u0 = rand(1, generator=generator, device=device)
    return (u0 + torch.arange(n, device=device) / n) % 1.0


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(msg)


@register("sde")
class ScoreSDE(GenerativeModel):
    """Score SDE (Song et al. 2021) on 2D points: VE or VP, ε-prediction network."""

    name = "sde"
    section = "4-4"
    presets = {
        "fast": Preset(
            model={"sde": "vp", "hidden": 128, "depth": 3, "sampler": "em", "steps": 200},
            train={"steps": 3000, "batch_size": 512, "lr": 2e-3, "ema": 0.995, "lr_decay": True},
            description="VP-SDE, 3000 steps: trains in ~15 s on one CPU thread",
        ),
        "quality": Preset(
            model={"sde": "vp", "hidden": 256, "depth": 4, "sampler": "em", "steps": 500},
            train={"steps": 20000, "batch_size": 1024, "lr": 1e-3, "ema": 0.999, "lr_decay": True},
            description="VP-SDE, wider network, 20k steps (GPU or a few minutes of CPU)",
        ),
    }

    def __init__(
        self,
        sde: SDEKind = "vp",
        hidden: int = 128,
        depth: int = 3,
        embed_dim: int = 64,
        time_scale: float = 1000.0,
        param: Parametrization = "v",
        sampler: SDESampler = "em",
        steps: int = 500,
        lam: float = 1.0,
        snr: float = 0.1,
        corrector_steps: int = 1,
        ode_method: ODEMethod = "heun",
        ode_steps: int = 100,
        likelihood_steps: int = 20,
        likelihood_method: ODEMethod = "rk4",
        sigma_min: float = 0.01,
        sigma_max: float = 10.0,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
    ) -> None:
        super().__init__()
        _check(sde in ("ve", "vp"), f"sde must be 've' or 'vp', got {sde!r}")
        _check(param in ("eps", "v"), f"param must be 'eps' or 'v', got {param!r}")
        _check(sampler in SDE_SAMPLERS, f"sampler must be one of {', '.join(SDE_SAMPLERS)}")
        _check(ode_method in ODE_METHODS and likelihood_method in ODE_METHODS, "unknown ODE method")
        _check(1 <= steps <= MAX_SAMPLER_STEPS, f"steps must be in [1, {MAX_SAMPLER_STEPS}]")
        _check(
            1 <= ode_steps <= MAX_SAMPLER_STEPS, f"ode_steps must be in [1, {MAX_SAMPLER_STEPS}]"
        )
        _check(
            1 <= likelihood_steps <= MAX_LIKELIHOOD_STEPS,
            f"likelihood_steps must be in [1, {MAX_LIKELIHOOD_STEPS}]",
        )
        _check(0.0 <= lam <= 1.0, "lam (λ) must be in [0, 1]")
        _check(
            0.0 < snr <= 1.0 and 0 <= corrector_steps <= 10,
            "snr in (0, 1], corrector_steps in 0..10",
        )
        _check(1 <= hidden <= 1024 and 1 <= depth <= 8, "hidden in 1..1024, depth in 1..8")
        if sde == "ve":
            _check(0 < sigma_min < sigma_max, "need 0 < sigma_min < sigma_max")
            self.process: SDE = VESDE(sigma_min, sigma_max)
        else:
            _check(0 < beta_min < beta_max, "need 0 < beta_min < beta_max")
            self.process = VPSDE(beta_min, beta_max)
        self.sde_kind = sde
        self.param = param
        self.sampler = sampler
        self.steps = steps
        self.lam = lam
        self.snr = snr
        self.corrector_steps = corrector_steps
        self.ode_method: ODEMethod = ode_method
        self.ode_steps = ode_steps
        self.likelihood_steps = likelihood_steps
        self.likelihood_method: ODEMethod = likelihood_method
        self.net = TimeMLP(
            2, 2, hidden=hidden, depth=depth, embed_dim=embed_dim, time_scale=time_scale
        )

    # --- the network and the score -------------------------------------------------------------
    @property
    def t_min(self) -> float:
        """ε: the smallest time used (the score is singular at t = 0)."""
        return self.process.eps

    def epsilon(self, x: Tensor, t: Tensor) -> Tensor:
        """ε_θ(x, t): ``(N, 2)``. The network sees x / r(t), r² = a² + s² (keeps VE inputs O(1)).

        ``param="eps"``: the network output is ε_θ. ``param="v"`` (default): it predicts
        v = (a ε - s x_0) / r (Salimans & Ho's v for VP, where r = 1), and
        ε_θ = s x / r² + (a / r) v_θ — the same DSM loss, but much better conditioned: measured
        exact KL on 8gaussians (fast preset) 0.02-0.03 nats instead of 0.17-0.33 with ε."""
        a, s = self.process.marginal(t)
        r2 = (a * a + s * s)[:, None]  # (N, 1)
        r_inv = torch.rsqrt(r2)
        out = time_net(self.net, x * r_inv, t)
        if self.param == "eps":
            return out
        return s[:, None] * x / r2 + a[:, None] * r_inv * out

    def score(self, x: Tensor, level: Tensor | float) -> Tensor:
        """s_θ(x, t) = -ε_θ(x, t) / s(t) ≈ ∇ log p_t(x): ``(N, 2)``; ``level`` is the SDE time t
        (a float or ``(N,)``)."""
        t = torch.as_tensor(level, dtype=x.dtype, device=x.device)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t.reshape(x.shape[0])
        _, s = self.process.marginal(t)
        return -self.epsilon(x, t) / s[:, None]

    def sampling_score(self, dtype: torch.dtype | None = None) -> SDEScoreFn:
        """``score`` for the samplers, from the current weights: when the batch shares one time
        (as in every sampler step) the time embedding is folded into one first-layer bias and
        a(t), s(t) are computed once; the network is evaluated by ``FastMLP`` (hidden layers in
        ``dtype``, default ``sampling_dtype``). Other batches fall back to ``score``, and so does
        everything when ``score`` or ``epsilon`` is set on the instance (an exact predictor)."""
        if "score" in self.__dict__ or "epsilon" in self.__dict__:
            return self.score
        fast = FastMLP.for_sampling(self.net, self.device, dtype)

        def score(x: Tensor, t: Tensor) -> Tensor:
            t1 = single_time(t)
            if t1 is None:
                return self.score(x, t)
            a, s = self.process.marginal(t1)  # (1,), (1,)
            r2 = (a * a + s * s)[:, None]  # (1, 1)
            r_inv = torch.rsqrt(r2)
            out = fast(x * r_inv, self.net.first_layer_bias(t1))  # (N, 2)
            eps = out if self.param == "eps" else s[:, None] * x / r2 + a[:, None] * r_inv * out
            return -eps / s[:, None]

        return score

    def marginal_at(self, level: float) -> tuple[float, float]:
        """(a(t), s(t)) of p_t = law of a(t) x₀ + s(t) ε, at the SDE time t = ``level`` in [0, 1]."""
        t = float(level)
        _check(0.0 <= t <= 1.0, f"the SDE level is a time t in [0, 1], got {level!r}")
        a, s = self.process.marginal(torch.tensor([t], dtype=torch.float64))
        return float(a[0]), float(s[0])

    def true_score_fn(self, target: Target2D) -> SDEScoreFn:
        """The exact ∇ log p_t of ``target`` under this model's SDE (for comparison figures)."""
        return marginal_score_fn(target, self.process)

    # --- training ------------------------------------------------------------------------------
    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Continuous-time DSM with stratified t ~ U[ε, 1]; t and ε drawn with ``generator``."""
        t = self.t_min + (1.0 - self.t_min) * stratified_times(x.shape[0], generator, x.device)
        eps = randn_like(x, generator)
        xt = self.process.perturb(x, t, eps)
        return ((self.epsilon(xt, t) - eps) ** 2).sum(-1).mean()

    # --- sampling ------------------------------------------------------------------------------
    def _run_sampler(
        self,
        n: int,
        generator: torch.Generator | None,
        num_frames: int,
        sampler: SDESampler | None,
        lam: float | None,
        steps: int | None,
    ):
        sampler = sampler or self.sampler
        lam = self.lam if lam is None else float(lam)
        _check(sampler in SDE_SAMPLERS, f"sampler must be one of {', '.join(SDE_SAMPLERS)}")
        _check(0.0 <= lam <= 1.0, "lam (λ) must be in [0, 1]")
        _check(1 <= n <= 200_000, "number of samples must be in [1, 200000]")
        x = self.process.prior_sample(n, generator, device=self.device)
        score = self.sampling_score()
        with torch.no_grad():
            if sampler == "ode":
                steps = steps or self.ode_steps
                _check(1 <= steps <= MAX_SAMPLER_STEPS, "too many ODE steps")
                return pf_ode_sample(self.process, score, x, steps, self.ode_method, num_frames)
            steps = steps or self.steps
            _check(1 <= steps <= MAX_SAMPLER_STEPS, "too many sampler steps")
            return predictor_corrector(
                self.process,
                score,
                x,
                steps,
                lam=lam,
                snr=self.snr,
                corrector_steps=self.corrector_steps if sampler == "pc" else 0,
                generator=generator,
                num_frames=num_frames,
            )

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        sampler: SDESampler | None = None,
        lam: float | None = None,
        steps: int | None = None,
    ) -> Tensor:
        """``n`` samples ``(n, 2)``: reverse SDE (``em``), predictor–corrector (``pc``) or the PF-ODE
        (``ode``); ``lam`` interpolates reverse SDE (1) ↔ PF-ODE by Euler–Maruyama (0)."""
        return self._run_sampler(n, generator, 0, sampler, lam, steps)

    def trajectory(
        self,
        n: int,
        num_frames: int = 60,
        *,
        generator: torch.Generator | None = None,
        sampler: SDESampler | None = None,
        lam: float | None = None,
        steps: int | None = None,
    ) -> Trajectory:
        """Reverse-time paths from the prior (frame 0, t = 1) to the data end (last, t = ε)."""
        return self._run_sampler(n, generator, max(2, int(num_frames)), sampler, lam, steps)

    # --- exact likelihood ----------------------------------------------------------------------
    def pf_ode_velocity(self, x: Tensor, t: Tensor) -> Tensor:
        """The probability-flow drift f - ½ g² s_θ: ``(N, 2)``."""
        return self.process.pf_ode_drift(x, t, self.score(x, t))

    def log_prob(
        self, x: Tensor, steps: int | None = None, method: ODEMethod | None = None
    ) -> Tensor:
        """Exact log q_θ(x) of the PF-ODE model (density at t = ε): ``(N,)``."""
        steps = steps or self.likelihood_steps
        _check(1 <= steps <= MAX_LIKELIHOOD_STEPS, "too many likelihood steps")
        return ode_log_likelihood(
            self.pf_ode_velocity,
            x.to(self.device),
            self.t_min,
            1.0,
            self.process.prior_log_prob,
            steps=steps,
            method=method or self.likelihood_method,
        )

    def extra_repr(self) -> str:
        return f"sde={self.sde_kind}, sampler={self.sampler}, steps={self.steps}, lam={self.lam}"
