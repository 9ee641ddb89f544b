"""genlib: the core of GenLab (no streamlit here; only ``genlib.ui`` touches it).

Conventions (stated once, used everywhere)
- Points are float32 tensors of shape ``(N, 2)``; densities are natural logs; entropies in nats.
- Target p (the data distribution), model q_θ, as in the lecture; KL(p‖q) = NLL(q) − H(p).
- Device: ``genlib.device.get_device()`` (cuda > mps > cpu, ``GENLIB_DEVICE`` overrides).
- Randomness: every random function takes an optional ``torch.Generator``.
- Time: DDPM steps t = 1..T with x_0 data; SDEs t ∈ [0, 1] with t = 0 data, t = 1 prior; flow
  matching τ ∈ [0, 1] with τ = 0 noise, τ = 1 data (the lecture's conventions).
  ``Trajectory`` frames are always in generation order (frame 0 = noise, last = data).
"""

from genlib import distributions, metrics, models, processes
from genlib.device import get_device, make_generator
from genlib.models.base import GenerativeModel, Trajectory
from genlib.runs import RunSpec, TargetSpec, Trained, evaluate, run
from genlib.training import TrainConfig, TrainResult, train

__all__ = [
    "distributions",
    "metrics",
    "models",
    "processes",
    "get_device",
    "make_generator",
    "GenerativeModel",
    "Trajectory",
    "RunSpec",
    "TargetSpec",
    "Trained",
    "evaluate",
    "run",
    "TrainConfig",
    "TrainResult",
    "train",
]
