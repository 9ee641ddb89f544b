"""Cached target computations shared by the pages (samples, density and score grids, entropy,
the forward diffusion), keyed by the frozen ``TargetSpec`` and bounded in size."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from genlib.device import make_generator
from genlib.lab.forward import ForwardConfig, ForwardDiffusion, forward_diffusion
from genlib.runs import TargetSpec
from genlib.viz.core import Bounds
from genlib.viz.fields import grid

__all__ = [
    "MAX_SAMPLES",
    "target_samples",
    "sample_mean",
    "log_density_grid",
    "score_grid",
    "target_entropy",
    "target_bounds",
    "forward_process",
]

MAX_SAMPLES = 50_000


@st.cache_resource(max_entries=32, show_spinner=False)
def _target(spec: TargetSpec):
    return spec.build()


def target_bounds(spec: TargetSpec) -> Bounds:
    return tuple(float(b) for b in _target(spec).bounds)  # type: ignore[return-value]


@st.cache_data(max_entries=64, show_spinner=False)
def target_samples(spec: TargetSpec, n: int, seed: int = 0) -> np.ndarray:
    """``n`` (≤ 50k) exact samples of the target, ``(n, 2)``."""
    n = int(min(max(n, 1), MAX_SAMPLES))
    return _target(spec).sample(n, generator=make_generator(seed)).numpy()


def sample_mean(spec: TargetSpec, n: int, seed: int = 0) -> tuple[float, float]:
    """The mean of ``target_samples(spec, n, seed)``."""
    m = target_samples(spec, n, seed).mean(0)
    return float(m[0]), float(m[1])


@st.cache_data(max_entries=64, show_spinner=False)
def log_density_grid(
    spec: TargetSpec,
    res: int = 120,
    bounds: Bounds | None = None,
    alpha: float = 1.0,
    sigma: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``xs (res,)``, ``ys (res,)``, ``log p (res*res,)`` on ``grid(bounds, res)``; with ``sigma > 0``
    the diffused marginal of ``alpha x0 + sigma eps``."""
    target = _target(spec)
    xs, ys, pts = grid(bounds or target.bounds, res)
    x = torch.as_tensor(pts, dtype=torch.float32)
    with torch.no_grad():
        lp = (
            target.log_prob(x)
            if sigma == 0.0 and alpha == 1.0
            else target.log_prob_t(x, alpha, sigma)
        )
    return xs, ys, lp.double().numpy()


@st.cache_data(max_entries=64, show_spinner=False)
def score_grid(
    spec: TargetSpec, res: int = 21, bounds: Bounds | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Grid points ``(res*res, 2)`` and the exact score ∇ log p there ``(res*res, 2)``."""
    target = _target(spec)
    _, _, pts = grid(bounds or target.bounds, res)
    s = target.score(torch.as_tensor(pts, dtype=torch.float32))
    return pts, s.double().numpy()


@st.cache_data(max_entries=64, show_spinner=False)
def target_entropy(spec: TargetSpec) -> float:
    """S(p) in nats (Monte Carlo with the exact density, seeded)."""
    return float(_target(spec).entropy())


@st.cache_data(max_entries=32, show_spinner=False)
def forward_process(spec: TargetSpec, cfg: ForwardConfig) -> ForwardDiffusion:
    """The forward diffusion view (``genlib.lab.forward``: simulation + exact marginals)."""
    return forward_diffusion(_target(spec), cfg)
