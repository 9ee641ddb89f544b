"""Normalizing flow (lecture 2-5): a coupling flow x = f_θ(x₀), x₀ ~ p₀ = N(0, I).

The density follows from the change of variables (lecture notation)::

    q_θ(x) = det ∇f_θ⁻¹(x) · p₀(f_θ⁻¹(x))
    log q_θ(x) = log p₀(f_θ⁻¹(x)) + log|det ∇f_θ⁻¹(x)|

``f_θ`` is a stack of invertible layers, each with a cheap log-determinant (``ladj``):

- coupling layers that transform one coordinate conditioned on the other (alternating masks):
  ``coupling="affine"`` (RealNVP: x_b = z_b · e^{s(z_a)} + t(z_a)) or ``coupling="spline"``
  (rational-quadratic spline of z_b whose knots depend on z_a, Durkan et al. 2019, identity tails
  outside [−B, B]);
- ``actnorm``: a learned per-coordinate scale and shift (initialised to the identity, so reverse-KL
  training, which sees no data, starts from p₀ too);
- ``rotate``: a learned 2×2 rotation between couplings (ladj = 0), which lets the coupling
  directions turn away from the coordinate axes.

API (also used by the KL page for reverse-KL fitting)
- ``forward(z) -> (x, ladj)`` with ``ladj = log|det ∂f/∂z|``; ``inverse(x) -> (z, ladj)`` with
  ``ladj = log|det ∂f⁻¹/∂x|``;
- ``log_prob(x)``, ``sample(n, generator=)``, ``rsample(n, generator=)`` (differentiable) and
  ``rsample_with_log_prob``; ``layers_forward(z)`` = the points after every layer ``(L+1, N, 2)``;
  ``log_det_jacobian(x)`` = log|det ∇f⁻¹(x)| (the Jacobian heat map);
- ``loss(x)``: ``objective="forward"`` minimises KL(p‖q_θ) + S(p) = −⟨log q_θ(x)⟩_data (default);
  ``objective="reverse"`` minimises KL(q_θ‖p) = ⟨log q_θ(y) − log p(y)⟩_{q_θ} on reparametrised
  samples and needs the target density: ``genlib.training.train`` hands it over through
  ``attach_target(target)`` before the first step (the data batch then only sets the number of
  samples), or call ``loss_reverse_kl(target_log_prob, n)`` directly. The target's log density
  must be differentiable in y: ``differentiable_log_prob(target)`` wraps any ``Target2D`` with its
  exact ``score`` as the gradient (quadrature targets such as moons are not autograd-friendly).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlib import rng
from genlib.geometry import LOG_2PI
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.nn import MLP
from genlib.objectives import TargetLogProb, reverse_kl

__all__ = [
    "NormalizingFlow",
    "interpolate_layers",
    "AffineCoupling",
    "SplineCoupling",
    "ActNorm",
    "Rotation",
    "rq_spline",
    "standard_normal_log_prob",
    "differentiable_log_prob",
]

Coupling = Literal["affine", "spline"]
Objective = Literal["forward", "reverse"]
LogProbFn = Callable[[Tensor], Tensor]

MAX_LAYERS = 32
MAX_SUBSTEPS = 12


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log p₀(z) of N(0, I) in 2D: (N, 2) -> (N,)."""
    return -0.5 * (z**2).sum(-1) - LOG_2PI


def differentiable_log_prob(target: Any) -> LogProbFn:
    """``x -> log p(x)`` for a ``Target2D`` on any device, differentiable in ``x`` through the
    target's ``score`` (what reverse-KL training needs: ∇_θ log p(f_θ(z)))."""
    return lambda x: TargetLogProb.apply(x, target)


# ---------------------------------------------------------------------------------------------
# layers: forward(z) -> (x, ladj of f), inverse(x) -> (z, ladj of f⁻¹)
# ---------------------------------------------------------------------------------------------


class ActNorm(nn.Module):
    """x = z · e^{log_scale} + loc per coordinate; ladj = Σ log_scale (identity at init)."""

    def __init__(self) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(2))
        self.log_scale = nn.Parameter(torch.zeros(2))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x = z * self.log_scale.exp() + self.loc
        return x, self.log_scale.sum().expand(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = (x - self.loc) * (-self.log_scale).exp()
        return z, (-self.log_scale.sum()).expand(x.shape[0])


class Rotation(nn.Module):
    """x = R(φ) z with a learned angle φ; volume preserving (ladj = 0)."""

    def __init__(self, angle: float = 0.0) -> None:
        super().__init__()
        self.angle = nn.Parameter(torch.tensor(float(angle)))

    def _matrix(self) -> Tensor:
        c, s = self.angle.cos(), self.angle.sin()
        return torch.stack([torch.stack([c, -s]), torch.stack([s, c])])  # (2, 2)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z @ self._matrix().T, z.new_zeros(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x @ self._matrix(), x.new_zeros(x.shape[0])


class AffineCoupling(nn.Module):
    """RealNVP coupling on coordinate ``d`` given the other one ``a``:
    x_d = z_d · e^{s(z_a)} + t(z_a), x_a = z_a; ladj = s(z_a).
    The log-scale is soft-clamped to (−scale_bound, scale_bound) for stability."""

    def __init__(self, d: int, hidden: int = 64, depth: int = 2, scale_bound: float = 3.0) -> None:
        super().__init__()
        self.d, self.a = d, 1 - d
        self.net = MLP(1, 2, hidden=hidden, depth=depth, zero_last=True)  # identity at init
        self.scale_bound = scale_bound

    def _params(self, za: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(za.unsqueeze(-1))  # (N, 2)
        s = self.scale_bound * torch.tanh(out[:, 0] / self.scale_bound)
        return s, out[:, 1]

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._params(z[:, self.a])
        xd = z[:, self.d] * s.exp() + t
        return _put(z, self.d, xd), s

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._params(x[:, self.a])
        zd = (x[:, self.d] - t) * (-s).exp()
        return _put(x, self.d, zd), -s


def _put(x: Tensor, d: int, value: Tensor) -> Tensor:
    """``x`` with column ``d`` replaced by ``value`` (out of place, differentiable)."""
    cols = [x[:, 0], value] if d == 1 else [value, x[:, 1]]
    return torch.stack(cols, dim=1)


def rq_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivs: Tensor,
    bound: float,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """Monotone rational-quadratic spline on [−B, B] with identity tails (Durkan et al. 2019).

    ``widths``, ``heights``: (N, K) positive, each row summing to 1 (fractions of 2B);
    ``derivs``: (N, K+1) positive slopes at the knots (1 at both ends keeps the tails C¹).
    Returns (y, log|dy/dx|) — or for ``inverse=True`` (x, log|dx/dy|) — both (N,).
    """
    inside = (x > -bound) & (x < bound)
    xc = x.clamp(-bound, bound)
    cw = F.pad(torch.cumsum(widths, -1), (1, 0)) * 2 * bound - bound  # (N, K+1) knot x's
    ch = F.pad(torch.cumsum(heights, -1), (1, 0)) * 2 * bound - bound  # (N, K+1) knot y's
    cw[:, -1], ch[:, -1] = bound, bound
    knots = ch if inverse else cw
    k = torch.searchsorted(knots.contiguous(), xc.unsqueeze(-1).contiguous(), right=True) - 1
    k = k.clamp(0, widths.shape[-1] - 1)  # (N, 1) bin index

    def g(t: Tensor) -> Tensor:
        return t.gather(-1, k).squeeze(-1)

    x_k, w_k = g(cw), g(cw[:, 1:] - cw[:, :-1])
    y_k, h_k = g(ch), g(ch[:, 1:] - ch[:, :-1])
    d_k, d_k1 = g(derivs[:, :-1]), g(derivs[:, 1:])
    s_k = h_k / w_k  # bin slope
    if not inverse:
        xi = ((xc - x_k) / w_k).clamp(0, 1)
        one = xi * (1 - xi)
        denom = s_k + (d_k1 + d_k - 2 * s_k) * one
        y = y_k + h_k * (s_k * xi**2 + d_k * one) / denom
        dydx = s_k**2 * (d_k1 * xi**2 + 2 * s_k * one + d_k * (1 - xi) ** 2) / denom**2
        ladj = torch.log(dydx)
    else:
        dy = xc - y_k
        a = h_k * (s_k - d_k) + dy * (d_k1 + d_k - 2 * s_k)
        b = h_k * d_k - dy * (d_k1 + d_k - 2 * s_k)
        c = -s_k * dy
        disc = (b**2 - 4 * a * c).clamp_min(0)
        xi = ((2 * c) / (-b - disc.sqrt())).clamp(0, 1)
        one = xi * (1 - xi)
        denom = s_k + (d_k1 + d_k - 2 * s_k) * one
        y = x_k + xi * w_k
        dydx = s_k**2 * (d_k1 * xi**2 + 2 * s_k * one + d_k * (1 - xi) ** 2) / denom**2
        ladj = -torch.log(dydx)
    y = torch.where(inside, y, x)
    ladj = torch.where(inside, ladj, torch.zeros_like(ladj))
    return y, ladj


class SplineCoupling(nn.Module):
    """Rational-quadratic spline coupling: x_d = RQS(z_d; θ(z_a)), x_a = z_a (K bins on [−B, B])."""

    MIN_BIN = 1e-3
    MIN_DERIV = 1e-3

    def __init__(
        self, d: int, bins: int = 8, bound: float = 5.0, hidden: int = 64, depth: int = 2
    ) -> None:
        super().__init__()
        self.d, self.a = d, 1 - d
        self.bins, self.bound = bins, bound
        self.net = MLP(
            1, 3 * bins - 1, hidden=hidden, depth=depth, zero_last=True
        )  # identity at init
        # softplus(raw + shift) = 1 - MIN_DERIV at raw = 0, so zero outputs give slope 1 everywhere
        self._shift = math.log(math.expm1(1 - self.MIN_DERIV))

    def _params(self, za: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.net(za.unsqueeze(-1))  # (N, 3K-1)
        k = self.bins
        uw, uh, ud = out[:, :k], out[:, k : 2 * k], out[:, 2 * k :]
        w = self.MIN_BIN + (1 - self.MIN_BIN * k) * torch.softmax(uw, -1)
        h = self.MIN_BIN + (1 - self.MIN_BIN * k) * torch.softmax(uh, -1)
        inner = self.MIN_DERIV + F.softplus(ud + self._shift)  # (N, K-1)
        ones = inner.new_ones(inner.shape[0], 1)
        return w, h, torch.cat([ones, inner, ones], -1)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        w, h, dv = self._params(z[:, self.a])
        xd, ladj = rq_spline(z[:, self.d], w, h, dv, self.bound)
        return _put(z, self.d, xd), ladj

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        w, h, dv = self._params(x[:, self.a])
        zd, ladj = rq_spline(x[:, self.d], w, h, dv, self.bound, inverse=True)
        return _put(x, self.d, zd), ladj


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


@register("flow")
class NormalizingFlow(GenerativeModel):
    """Coupling flow x = f_θ(x₀) = f_L ∘ … ∘ f_1(x₀) with x₀ ~ N(0, I); see the module doc."""

    name: ClassVar[str] = "flow"
    section: ClassVar[str] = "2-5"
    presets: ClassVar[dict[str, Preset]] = {
        "fast": Preset(
            model={"coupling": "spline", "layers": 6, "bins": 8, "hidden": 64, "depth": 2},
            # 1000 steps (was 1500): SW/floor 0.65 / 1.52 on moons / 8 gaussians, exact KL 0.012 /
            # 0.024 (benchmarks/bench_models.py), in two thirds of the time
            train={"steps": 1000, "batch_size": 512, "lr": 3e-3, "lr_decay": True},
            description="6 spline couplings (8 bins), 1000 steps: seconds on a CPU",
        ),
        "quality": Preset(
            model={"coupling": "spline", "layers": 8, "bins": 16, "hidden": 128, "depth": 2},
            train={"steps": 4000, "batch_size": 1024, "lr": 2e-3, "lr_decay": True},
            description="8 spline couplings (16 bins), 4000 steps (minutes on a CPU, seconds on a GPU)",
        ),
    }

    def __init__(
        self,
        coupling: Coupling = "spline",
        layers: int = 6,
        hidden: int = 64,
        depth: int = 2,
        bins: int = 8,
        bound: float = 5.0,
        actnorm: bool = True,
        rotate: bool = True,
        objective: Objective = "forward",
        init_seed: int | None = None,
    ) -> None:
        super().__init__()
        if coupling not in ("affine", "spline"):
            raise ValueError(f"coupling must be 'affine' or 'spline', got {coupling!r}")
        if objective not in ("forward", "reverse"):
            raise ValueError(f"objective must be 'forward' or 'reverse', got {objective!r}")
        if not 1 <= int(layers) <= MAX_LAYERS:
            raise ValueError(f"layers must be in [1, {MAX_LAYERS}]")
        if not 2 <= int(bins) <= 64:
            raise ValueError("bins must be in [2, 64]")
        if not 1 <= int(hidden) <= 1024 or not 1 <= int(depth) <= 8:
            raise ValueError("hidden must be in [1, 1024] and depth in [1, 8]")
        if not 0.5 <= float(bound) <= 50:
            raise ValueError("bound must be in [0.5, 50]")
        self.coupling, self.objective = coupling, objective
        args = (int(layers), coupling, hidden, depth, bins, bound, actnorm, rotate)
        # init from the global RNG (``runs.build_model`` seeds it under ``rng.seeded_init``), or
        # from ``init_seed`` for a flow built outside a run
        if init_seed is None:
            mods, names = self._build(*args)
        else:
            mods, names = rng.seeded_init(init_seed, lambda: self._build(*args))
        self.layers = nn.ModuleList(mods)
        self.layer_names: list[str] = names
        self._target_log_prob: LogProbFn | None = None

    @staticmethod
    def _build(
        layers: int,
        coupling: Coupling,
        hidden: int,
        depth: int,
        bins: int,
        bound: float,
        actnorm: bool,
        rotate: bool,
    ) -> tuple[list[nn.Module], list[str]]:
        mods: list[nn.Module] = []
        names: list[str] = []
        for i in range(layers):
            if actnorm:
                mods.append(ActNorm())
                names.append("actnorm")
            if coupling == "affine":
                mods.append(AffineCoupling(i % 2, hidden=hidden, depth=depth))
            else:
                mods.append(
                    SplineCoupling(i % 2, bins=bins, bound=bound, hidden=hidden, depth=depth)
                )
            names.append(f"{coupling} coupling (x{i % 2 + 1} | x{2 - i % 2})")
            if rotate and i < layers - 1:
                # deterministic, varied starting angles; learned afterwards
                mods.append(Rotation(angle=math.pi / 4 + 0.3 * i))
                names.append("rotation")
        if actnorm:
            mods.append(ActNorm())
            names.append("actnorm")
        return mods, names

    # -- change of variables -------------------------------------------------------------------

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """x = f_θ(z) and ladj = log|det ∂f_θ/∂z|: (N, 2) -> (N, 2), (N,)."""
        ladj = z.new_zeros(z.shape[0])
        for layer in self.layers:
            z, l_i = layer(z)
            ladj = ladj + l_i
        return z, ladj

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = f_θ⁻¹(x) and ladj = log|det ∇f_θ⁻¹(x)|: (N, 2) -> (N, 2), (N,)."""
        ladj = x.new_zeros(x.shape[0])
        for layer in reversed(self.layers):
            x, l_i = layer.inverse(x)
            ladj = ladj + l_i
        return x, ladj

    def log_prob(self, x: Tensor) -> Tensor:
        """log q_θ(x) = log p₀(f⁻¹(x)) + log|det ∇f⁻¹(x)|: (N, 2) -> (N,)."""
        z, ladj = self.inverse(x)
        return standard_normal_log_prob(z) + ladj

    def log_det_jacobian(self, x: Tensor) -> Tensor:
        """log|det ∇f_θ⁻¹(x)| (the density factor of the change of variables): (N, 2) -> (N,)."""
        return self.inverse(x)[1]

    # -- sampling --------------------------------------------------------------------------------

    def base_sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """x₀ ~ p₀ = N(0, I): (n, 2) on the flow's device and dtype, drawn with ``generator``."""
        ref = next(self.parameters())
        return rng.randn(n, 2, generator=generator, device=ref.device, dtype=ref.dtype)

    def rsample_with_log_prob(
        self, n: int, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Reparametrised samples x = f(z) and their log q(x) = log p₀(z) − ladj_f(z)."""
        z = self.base_sample(n, generator=generator)  # (n, 2)
        x, ladj = self.forward(z)
        return x, standard_normal_log_prob(z) - ladj

    def rsample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Differentiable samples (gradients flow to θ): (n, 2)."""
        return self.forward(self.base_sample(n, generator=generator))[0]

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            return self.rsample(n, generator=generator)

    def layers_forward(self, z: Tensor) -> Tensor:
        """The points after each layer, starting from ``z``: (N, 2) -> (L+1, N, 2)."""
        out = [z]
        with torch.no_grad():
            for layer in self.layers:
                z, _ = layer(z)
                out.append(z)
        return torch.stack(out)

    def trajectory(
        self, n: int, num_frames: int = 60, *, generator: torch.Generator | None = None
    ) -> Trajectory:
        """Base samples pushed layer by layer (linear interpolation within a layer for smoothness).
        ``ts`` counts layers (frame 0 = N(0, I), last = data); at most ``num_frames`` frames."""
        num_frames = max(int(num_frames), 2)
        pts = self.layers_forward(self.base_sample(n, generator=generator))  # (L+1, n, 2)
        frames, ts = interpolate_layers(pts, max(1, (num_frames - 1) // (pts.shape[0] - 1)))
        if frames.shape[0] > num_frames:  # more layers than frames: every few layers
            keep = torch.linspace(0, frames.shape[0] - 1, num_frames).round().long().unique()
            frames, ts = frames[keep.to(frames.device)], ts[keep]
        return Trajectory(frames, ts, "layer")

    # -- training ----------------------------------------------------------------------------------

    def attach_target(self, target: Any) -> None:
        """Give the model the target density (needed by ``objective="reverse"``). ``target`` is a
        ``Target2D`` (wrapped by ``differentiable_log_prob``) or a callable log density that
        autograd can differentiate; the training loop calls this before step 1."""
        if hasattr(target, "log_prob"):
            self._target_log_prob = differentiable_log_prob(target)
        elif callable(target):
            self._target_log_prob = target
        else:
            raise TypeError("attach_target needs a Target2D or a log-density function")

    def loss_forward_kl(self, x: Tensor) -> Tensor:
        """KL(p‖q_θ) + S(p) ≈ −(1/N) Σ log q_θ(x_i) on data samples."""
        return -self.log_prob(x).mean()

    def loss_reverse_kl(
        self, target_log_prob: LogProbFn, n: int, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """KL(q_θ‖p) ≈ (1/n) Σ [log q_θ(y_j) − log p(y_j)], y_j = f_θ(z_j) reparametrised
        (an unnormalised ``target_log_prob`` shifts it by log Z only; ``genlib.objectives``)."""
        y, log_q = self.rsample_with_log_prob(n, generator=generator)
        return reverse_kl(y, log_q, target_log_prob)

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Forward KL on the data batch, or reverse KL on ``x.shape[0]`` reparametrised samples
        drawn with ``generator``."""
        if self.objective == "forward":
            return self.loss_forward_kl(x)
        if self._target_log_prob is None:
            raise RuntimeError(
                "objective='reverse' needs the target density: call model.attach_target(target) "
                "(genlib.training.train does this) or use loss_reverse_kl(target_log_prob, n)"
            )
        return self.loss_reverse_kl(self._target_log_prob, x.shape[0], generator=generator)


# ---------------------------------------------------------------------------------------------
# frames between layers (the trajectory; ``genlib.lab.flow`` builds the page's warp on it)
# ---------------------------------------------------------------------------------------------


def interpolate_layers(pts: Tensor, substeps: int = 1) -> tuple[Tensor, Tensor]:
    """Frames between the per-layer points ``pts (L+1, N, 2)``: ``substeps`` linear steps per
    layer. Returns frames ``(L·substeps + 1, N, 2)`` and their layer coordinate ``ts``."""
    sub = int(min(max(substeps, 1), MAX_SUBSTEPS))
    frames, ts = [pts[0]], [0.0]
    for i in range(pts.shape[0] - 1):
        for j in range(1, sub + 1):
            a = j / sub
            frames.append((1 - a) * pts[i] + a * pts[i + 1])
            ts.append(i + a)
    return torch.stack(frames), torch.tensor(ts)
