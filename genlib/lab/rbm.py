"""Boltzmann-machine experiments behind the page (lecture 2-2, 2-3): the free-energy landscape and
the exact 2^H-component mixture on a grid (``RbmLandscape``), block-Gibbs chains as frames, the
positive vs negative phase of one update, and the negative-phase particles recorded during
training (``NegativeHistory``, read from the training result's extras so that it survives a
checkpoint).

Pure torch (no streamlit, no plotly); every draw uses the caller's generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlib.geometry import Bounds, grid_tensor
from genlib.models.rbm import GaussianBernoulliRBM

__all__ = [
    "RbmLandscape",
    "rbm_landscape",
    "gibbs_frames",
    "negative_phase",
    "NegativeHistory",
    "negative_history",
]


@dataclass(frozen=True)
class RbmLandscape:
    """The RBM on a ``res × res`` grid (numpy, rows along y): free energy ``energy (res²,)``,
    exact ``log_q (res²,)`` (``None`` above ``MAX_EXACT_HIDDEN``), and the mixture form
    q_θ = Σ_h π_h N(b + W h, σ²): ``log_pi (2^H,)``, ``means (2^H, 2)`` (``None`` likewise)."""

    xs: np.ndarray
    ys: np.ndarray
    energy: np.ndarray
    log_q: np.ndarray | None
    log_pi: np.ndarray | None
    means: np.ndarray | None


@torch.no_grad()
def rbm_landscape(model: GaussianBernoulliRBM, bounds: Bounds, res: int = 110) -> RbmLandscape:
    """Free energy, exact density and mixture components of ``model`` over ``bounds``."""
    xs, ys, pts = grid_tensor(bounds, res, device=model.W.device, dtype=model.W.dtype)
    energy = model.energy(pts).cpu().numpy()  # (res²,)
    try:
        log_pi, means, _ = model.mixture()  # (2^H,), (2^H, 2)
        log_q = model.log_prob(pts).cpu().numpy()
        mix = (log_pi.cpu().numpy(), means.cpu().numpy())
    except NotImplementedError:  # too many hidden units to enumerate
        log_q, mix = None, (None, None)
    return RbmLandscape(xs.cpu().numpy(), ys.cpu().numpy(), energy, log_q, *mix)


def gibbs_frames(
    model: GaussianBernoulliRBM,
    n: int,
    steps: int,
    *,
    x0: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Block-Gibbs chains recorded sweep by sweep: (steps + 1, n, 2) on the CPU, started at
    ``x0 (n, 2)`` (e.g. data: CD's starts) or, by default, at noise ``model.init_chains``."""
    start = model.init_chains(n, generator) if x0 is None else x0.to(model.W.device)
    return model.gibbs_chain(start, steps, generator=generator, record=True).detach().cpu()


def negative_phase(
    model: GaussianBernoulliRBM,
    x: Tensor,
    *,
    chains: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The negative-phase particles ``(N, 2)`` the model's sampler would use for the data batch
    ``x (N, 2)``, without touching the model: CD-k from ``x``; exact samples for "exact"; PCD
    continues ``chains`` (the run's persistent chains, ``extras["pcd_chains"]``, else the
    model's current ones) by k sweeps, or runs long chains from noise when there are none."""
    with torch.no_grad():
        if model.sampler == "cd":
            return model.gibbs_chain(x, model.k, generator=generator)
        if model.sampler == "exact":
            return model.sample_exact(x.shape[0], generator=generator)
        chains = model.persistent_chains if chains is None else chains
        if chains is None:
            return model.sample(x.shape[0], generator=generator)
        start = chains.clone()[: x.shape[0]].to(device=x.device, dtype=x.dtype)
        return model.gibbs_chain(start, model.k, generator=generator)


@dataclass(frozen=True)
class NegativeHistory:
    """The negative-phase particles recorded during training: ``steps`` (F training steps) and
    ``particles (F, P, 2)`` (numpy)."""

    steps: tuple[int, ...]
    particles: np.ndarray


def negative_history(extras: Mapping[str, Any]) -> NegativeHistory | None:
    """The recorded negative phase from a training result's ``extras``
    (``GaussianBernoulliRBM.result_extras``); ``None`` when nothing was recorded."""
    steps, parts = extras.get("negative_steps"), extras.get("negative_particles")
    if not steps or parts is None:
        return None
    particles = torch.as_tensor(parts).detach().cpu().double().numpy()
    if particles.ndim != 3 or particles.shape[0] != len(steps) or particles.shape[-1] != 2:
        raise ValueError("negative_particles must be (F, P, 2) with one step per frame")
    return NegativeHistory(tuple(int(s) for s in steps), particles)
