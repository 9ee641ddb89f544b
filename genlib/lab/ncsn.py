"""NCSN page views (lecture 4-2): the noise ladder, plain vs annealed Langevin on a mixture, and
the mixture weights each sampler recovers (Song & Ermon's far-mixture demo)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from genlib.device import make_generator
from genlib.distributions.base import GaussianMixture, Target2D
from genlib.geometry import LOG_2PI
from genlib.lab.langevin import LangevinComparison, compare_plain_annealed
from genlib.models.ncsn import NCSN, geometric_ladder
from genlib.rng import rand

if TYPE_CHECKING:
    from genlib.runs import Trained

__all__ = [
    "NoiseLadder",
    "noise_ladder",
    "component_fractions",
    "mode_weights",
    "ncsn_langevin_demo",
    "PlainVsAnnealed",
    "trained_plain_vs_annealed",
    "MAX_DEMO_PARTICLES",
    "DEMO_LEVELS",
    "SIGMA_CHOICES",
    "SIGMA_MAX_CHOICES",
    "PLAIN_STEP_CHOICES",
]

MAX_DEMO_PARTICLES = 5000
DEMO_LEVELS = 10  # the ladder a single-σ model's demo anneals over (exact score only)
#: what a page offers: the single-σ noise, the top of the ladder σ₁, the plain Langevin step
SIGMA_CHOICES = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
SIGMA_MAX_CHOICES = (1.0, 2.0, 5.0, 10.0, 20.0)
PLAIN_STEP_CHOICES = (0.001, 0.005, 0.01, 0.05, 0.1, 0.2)


@dataclass(frozen=True)
class NoiseLadder:
    """The model's ladder: level index ``i (L,)`` = 1..L, ``sigma (L,)`` σ_1 > … > σ_L and the
    annealed Langevin step of each level ``alpha (L,)`` = ε σ_i²/σ_L² (float64)."""

    i: Tensor
    sigma: Tensor
    alpha: Tensor


def noise_ladder(model: NCSN) -> NoiseLadder:
    """σ_i and α_i of ``model`` (one level in single-σ mode)."""
    sig = torch.tensor(model.sigma_list, dtype=torch.float64)
    return NoiseLadder(
        torch.arange(1, len(sig) + 1),
        sig,
        torch.tensor(model.level_steps, dtype=torch.float64),
    )


def component_fractions(target: Target2D, x: Tensor) -> Tensor | None:
    """For a Gaussian-mixture target: the fraction of samples whose most responsible component
    is k, ``(K,)`` float64; ``None`` for other targets."""
    if not isinstance(target, GaussianMixture):
        return None
    comp = target.comp
    x64 = x.detach().cpu().double().unsqueeze(1)  # (N, 1, 2)
    quad = ((x64 - comp.means) ** 2 / comp.variances).sum(-1)  # (N, K)
    log_norm = -LOG_2PI - 0.5 * torch.log(comp.variances).sum(-1)  # (K,)
    lp = comp.log_weights + log_norm - 0.5 * quad  # log w_k N(x; μ_k, v_k)
    k = lp.shape[1]
    return torch.bincount(lp.argmax(1), minlength=k).double() / max(x.shape[0], 1)


def mode_weights(target: Target2D, clouds: dict[str, Tensor]) -> dict[str, list[float]] | None:
    """Exact mixture weights of a Gaussian-mixture target (key ``"target"``) next to the fraction
    of each cloud assigned to each component; ``None`` for other targets."""
    if not isinstance(target, GaussianMixture):
        return None
    out = {"target": target.weights.double().tolist()}
    for name, x in clouds.items():
        out[name] = component_fractions(target, x).tolist()  # type: ignore[union-attr]
    return out


@torch.no_grad()
def ncsn_langevin_demo(
    model: NCSN,
    target: Target2D,
    use_true_score: bool = False,
    n: int = 2000,
    plain_step: float = 0.05,
    num_frames: int = 40,
    seed: int = 0,
) -> LangevinComparison:
    """Plain vs annealed Langevin from the same uniform initial states over the target's box,
    with the model's s_θ(x, σ) or with the exact diffused score ∇ log p_σ (``use_true_score``).
    A single-σ model has no ladder: its demo anneals the exact score over ``DEMO_LEVELS`` levels
    from sigma_max to sigma_min. CPU trajectories."""
    n = int(min(max(n, 1), MAX_DEMO_PARTICLES))
    x0b, x1b, y0b, y1b = (float(b) for b in target.bounds)
    u = rand(n, 2, generator=make_generator(seed))
    x0 = torch.stack([x0b + (x1b - x0b) * u[:, 0], y0b + (y1b - y0b) * u[:, 1]], 1)
    ladder = (
        model.sigma_list
        if model.mode == "multi"
        else geometric_ladder(model.sigma_max, model.sigma_min, DEMO_LEVELS).tolist()
    )
    if use_true_score:

        def score_fn(x: Tensor, s: float) -> Tensor:
            return target.score_t(x, 1.0, s)

        dev = torch.device("cpu")
    else:
        dev = model.device
        score_fn = model.score
    cmp = compare_plain_annealed(
        score_fn,
        x0.to(dev),
        ladder,
        step_ratio=model.step_ratio,
        steps_per_level=model.steps_per_level,
        plain_step=plain_step,
        num_frames=num_frames,
        generator=make_generator(int(seed) + 1, dev),
    )
    return cmp.cpu()


@dataclass(frozen=True)
class PlainVsAnnealed:
    """The final clouds of plain and annealed Langevin ``(N, 2)`` (CPU) and, for a
    Gaussian-mixture target, ``weights``: the exact mixture weights (``"target"``) next to the
    fraction of each cloud per component (``"plain"``, ``"annealed"``), else None."""

    plain: Tensor
    annealed: Tensor
    weights: dict[str, list[float]] | None


def trained_plain_vs_annealed(
    trained: Trained,
    use_true_score: bool = True,
    n: int = 1000,
    plain_step: float = 0.05,
    seed: int = 0,
) -> PlainVsAnnealed:
    """``ncsn_langevin_demo`` of a trained NCSN on its own target, with the mixture weights each
    sampler recovers. A single-σ model has no ladder to anneal its s_θ over: it always uses the
    exact score."""
    model, target = trained.model, trained.target
    use_true = bool(use_true_score) or model.mode == "single"
    cmp = ncsn_langevin_demo(model, target, use_true, n, plain_step, seed=seed)
    plain, annealed = cmp.plain_samples, cmp.annealed_samples
    return PlainVsAnnealed(
        plain, annealed, mode_weights(target, {"plain": plain, "annealed": annealed})
    )
