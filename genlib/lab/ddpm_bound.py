"""The DDPM variational bound in nats per 2D point (lecture 4-3 and the appendix "拡散バウンドの証明").

With the forward chain p(x_1..x_T | x_0) and the model q_θ(x_{t−1} | x_t) = N(μ_θ(x_t, t), σ_t² I),
μ_θ = (x_t − β_t/√(1−ᾱ_t) ε_θ(x_t, t))/√α_t, the bound of the lecture decomposes as

    D_KL(p‖q_θ) + S(p) ≤ L_T + Σ_{t=2}^T L_{t−1} + L_0,
    L_T     = ⟨D_KL(p(x_T | x_0) ‖ N(0, I))⟩_{p(x_0)}                              (no θ)
    L_{t−1} = ⟨D_KL(p(x_{t−1} | x_t, x_0) ‖ q_θ(x_{t−1} | x_t))⟩_{p(x_t | x_0) p(x_0)}
    L_0     = −⟨log q_θ(x_0 | x_1)⟩_{p(x_1 | x_0) p(x_0)}

where p(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I) is the exact posterior (``DDPMSchedule.posterior``),
so every KL is between two Gaussians in closed form (d = 2):

    D_KL(N(μ̃, β̃ I) ‖ N(μ_θ, σ² I)) = d/2 (β̃/σ² − 1 − log(β̃/σ²)) + ‖μ̃ − μ_θ‖²/(2σ²).

Only x_t (one draw per data point and t) and x_0 are sampled; the KLs are exact.

The data x_0 are continuous 2D points, so the decoder q_θ(x_0 | x_1) is the same Gaussian
N(μ_θ(x_1, 1), σ_1² I) as the other steps (no discretised decoder as in Ho et al. for images), and
L_0 is a differential negative log-density: the total is an upper bound on the model's NLL in nats
per 2D point, hence ≥ S(p), the differential entropy of the target (``grid_entropy``), and
comparable with the PF-ODE NLL of the SDE page. For σ_t² = β̃_t the decoder variance would be
β̃_1 = 0; it is clipped to β̃_2, as in Ho et al.'s code ("posterior_log_variance_clipped").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.models.ddpm import DDPM
from genlib.rng import randn

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "Sigma2Kind",
    "SIGMA2_KINDS",
    "DDPMBound",
    "BoundView",
    "ddpm_bound",
    "ddpm_bounds",
    "gaussian_kl",
    "prior_kl",
    "reverse_variances",
    "grid_entropy",
    "trained_bound_view",
    "MAX_BOUND_POINTS",
]

Sigma2Kind = Literal["beta", "beta_tilde"]
SIGMA2_KINDS: tuple[Sigma2Kind, ...] = ("beta", "beta_tilde")
MAX_BOUND_POINTS = 20_000
D = 2  # the data dimension


@dataclass(frozen=True)
class DDPMBound:
    """The bound's terms in nats per 2D point (means over the data; also readable as
    ``bound["total"]``). ``L_t[t − 1]`` is the term of the reverse step t (x_t → x_{t−1}):
    L_{t−1} for t ≥ 2 and L_0 for t = 1, so ``total = L_T + L_t.sum()``."""

    sigma2: Sigma2Kind
    L_T: float
    L_t: Tensor  # (T,) float64
    L_0: float
    total: float
    stderr: float  # Monte-Carlo standard error of ``total`` (over the data points)
    n: int

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def keys(self) -> tuple[str, ...]:
        return ("L_T", "L_t", "L_0", "total")


def gaussian_kl(mu_q: Tensor, var_q: float, mu_p: Tensor, var_p: float) -> Tensor:
    """D_KL(N(μ_q, v_q I) ‖ N(μ_p, v_p I)) per row of ``(N, d)`` means: ``(N,)``."""
    d = mu_q.shape[-1]
    r = var_q / var_p
    return 0.5 * d * (r - 1.0 - math.log(r)) + ((mu_q - mu_p) ** 2).sum(-1) / (2.0 * var_p)


def prior_kl(x0: Tensor, alpha_bar_T: float) -> Tensor:
    """L_T per point: D_KL(N(√ᾱ_T x_0, (1−ᾱ_T) I) ‖ N(0, I)), ``(N, d) -> (N,)``."""
    d = x0.shape[-1]
    v = 1.0 - alpha_bar_T
    return 0.5 * (d * (v - 1.0 - math.log(v)) + alpha_bar_T * (x0**2).sum(-1))


def reverse_variances(model: DDPM, sigma2: Sigma2Kind) -> list[float]:
    """σ_t² for t = 1..T (index t − 1) as used by the bound; for ``beta_tilde`` σ_1² = β̃_2."""
    s = model.schedule
    if sigma2 == "beta":
        return s.betas.tolist()
    if sigma2 == "beta_tilde":
        v = s.posterior_var.tolist()
        v[0] = v[1] if len(v) > 1 else s.betas.tolist()[0]
        return v
    raise ValueError(f"σ_t² must be 'beta' or 'beta_tilde', got {sigma2!r}")


@torch.no_grad()
def ddpm_bounds(
    model: DDPM,
    target: Target2D,
    n: int,
    generator: torch.Generator | None,
    sigma2s: tuple[Sigma2Kind, ...] = SIGMA2_KINDS,
) -> dict[str, DDPMBound]:
    """The bound for several σ_t² choices from the same draws (x_0 from ``target``, one x_t per
    point and step, all with ``generator``): ``{sigma2: DDPMBound}``."""
    if not (1 <= n <= MAX_BOUND_POINTS):
        raise ValueError(f"the bound uses 1..{MAX_BOUND_POINTS} data points")
    s = model.schedule
    T = s.T
    var = {k: reverse_variances(model, k) for k in sigma2s}
    dev = model.device
    x0 = target.sample(n, generator=generator).double()  # (N, 2)
    betas, alphas, ab = s.betas.tolist(), s.alphas.tolist(), s.alpha_bar.tolist()
    per_point = {k: torch.zeros(T, n, dtype=torch.float64) for k in sigma2s}  # (T, N)
    eps_fn = model.eps_fn()  # ε_θ(x, t) for an int step t (sampling-time evaluation)
    for t in range(1, T + 1):
        i = t - 1
        eps = randn(n, 2, generator=generator, dtype=torch.float64)  # (N, 2)
        xt = math.sqrt(ab[i]) * x0 + math.sqrt(1.0 - ab[i]) * eps  # p(x_t | x_0)
        eps_hat = eps_fn(xt.float().to(dev), t).double().cpu()
        mu_theta = (xt - betas[i] / math.sqrt(1.0 - ab[i]) * eps_hat) / math.sqrt(alphas[i])
        if t >= 2:
            mu_tilde, var_tilde = s.posterior(x0, xt, t)  # p(x_{t-1} | x_t, x_0)
            for k in sigma2s:
                per_point[k][i] = gaussian_kl(mu_tilde, var_tilde, mu_theta, var[k][i])
        else:  # the decoder: −log N(x_0; μ_θ(x_1, 1), σ_1² I)
            for k in sigma2s:
                v = var[k][0]
                nll = 0.5 * D * math.log(2 * math.pi * v) + ((x0 - mu_theta) ** 2).sum(-1) / (2 * v)
                per_point[k][0] = nll
    l_T = prior_kl(x0, ab[-1])  # (N,)
    out: dict[str, DDPMBound] = {}
    for k in sigma2s:
        totals = l_T + per_point[k].sum(0)  # (N,)
        out[k] = DDPMBound(
            sigma2=k,
            L_T=float(l_T.mean()),
            L_t=per_point[k].mean(1),
            L_0=float(per_point[k][0].mean()),
            total=float(totals.mean()),
            stderr=float(totals.std() / math.sqrt(n)) if n > 1 else float("nan"),
            n=n,
        )
    return out


def ddpm_bound(
    model: DDPM,
    target: Target2D,
    n: int,
    generator: torch.Generator | None,
    sigma2: Sigma2Kind = "beta",
) -> DDPMBound:
    """The DDPM bound L_T + Σ_{t≥2} L_{t−1} + L_0 in nats per 2D point for σ_t² = ``sigma2``
    (``"beta"``: β_t, ``"beta_tilde"``: β̃_t), estimated on ``n`` draws of ``target``."""
    return ddpm_bounds(model, target, n, generator, (sigma2,))[sigma2]


@torch.no_grad()
def grid_entropy(target: Target2D, res: int = 200, pad: float = 0.25) -> tuple[float, float]:
    """S(p) = −∫ p log p by the midpoint rule on a ``res × res`` grid over the target's box
    padded by ``pad`` on each side (of the grid density normalised to mass 1), and the grid's
    mass ∫ p (≈ 1 when the box holds p and the rule resolves it)."""
    if not (16 <= res <= 1000):
        raise ValueError("grid resolution must be in [16, 1000]")
    x0, x1, y0, y1 = (float(b) for b in target.bounds)
    dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
    xs = torch.linspace(x0 - dx, x1 + dx, res + 1, dtype=torch.float64)
    ys = torch.linspace(y0 - dy, y1 + dy, res + 1, dtype=torch.float64)
    cx, cy = 0.5 * (xs[1:] + xs[:-1]), 0.5 * (ys[1:] + ys[:-1])
    area = float((xs[1] - xs[0]) * (ys[1] - ys[0]))
    gx, gy = torch.meshgrid(cx, cy, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)  # (res², 2)
    logp = torch.cat([target.log_prob(c.float()).double() for c in torch.split(pts, 16384)])
    p = logp.exp()
    plogp = torch.where(p > 0, p * logp, torch.zeros_like(p))
    mass = float(p.sum() * area)
    # the entropy of the grid density normalised to mass 1 (corrects cells cut by sharp edges)
    return float(-plogp.sum() * area) / mass + math.log(mass), mass


@dataclass(frozen=True)
class BoundView:
    """What the DDPM page shows: the bound for both σ_t² choices and S(p) on a grid."""

    bounds: dict[str, DDPMBound]
    entropy: float  # S(p), nats per 2D point
    entropy_mass: float  # ∫ p over the quadrature grid (≈ 1)
    T: int


def trained_bound_view(trained: Trained, n: int = 1000, seed: int = 0, res: int = 200) -> BoundView:
    """``ddpm_bounds`` of a trained DDPM on its target (seeded) and S(p) by quadrature."""
    model = trained.model
    if not isinstance(model, DDPM):
        raise TypeError("the DDPM bound needs a DDPM model")
    g = make_generator(seed)
    bounds = ddpm_bounds(model, trained.target, n, g)
    h, mass = grid_entropy(trained.target, res)
    return BoundView(bounds, h, mass, model.T)
