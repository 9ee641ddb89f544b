"""Model families, one module each, registered by stable name (``rbm``, ``ddpm``, ...)."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace

import torch

from genlib.device import scaled_batch
from genlib.limits import check_kwargs
from genlib.models.base import (
    MODELS,
    GenerativeModel,
    HasElbo,
    HasEnergy,
    HasLogProb,
    HasScore,
    HasVelocity,
    Preset,
    Trajectory,
    capabilities,
    register,
)
from genlib.training import TrainConfig

for _mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _mod.name != "base" and not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "MODELS",
    "GenerativeModel",
    "HasElbo",
    "HasEnergy",
    "HasLogProb",
    "HasScore",
    "HasVelocity",
    "Preset",
    "Trajectory",
    "capabilities",
    "register",
    "names",
    "build",
    "preset",
    "GPU_SCALED_PRESETS",
]


#: the presets whose batch widens on a CUDA device (``preset``)
GPU_SCALED_PRESETS: tuple[str, ...] = ("fast",)


def names() -> list[str]:
    return MODELS.names()


def build(name: str, **kwargs) -> GenerativeModel:
    """Model ``name`` with keyword arguments checked first (``genlib.limits``: unknown names,
    types, sizes; one ``ValueError`` line) so that nothing absurd is ever allocated."""
    check_kwargs(MODELS.get(name), kwargs, name)
    return MODELS.build(name, **kwargs)


def preset(
    name: str, preset_name: str = "fast", device: torch.device | str | None = None
) -> Preset:
    """The preset ``preset_name`` of model ``name`` as it runs on ``device`` (default: the
    compute device, ``genlib.device.get_device()``): on CUDA the ``fast`` preset's batch is
    widened to the GPU's (``genlib.device.scaled_batch``); every other preset, and every preset
    elsewhere, is as written (``quality`` already trains at a wide batch, and widening it would
    take it over a shared server's per-job budget, ``genlib.jobs``). KeyError with the known
    names if absent."""
    cls = MODELS.get(name)
    presets = getattr(cls, "presets", {})
    if preset_name not in presets:
        raise KeyError(f"model {name!r} has no preset {preset_name!r}; known: {', '.join(presets)}")
    p = presets[preset_name]
    if preset_name not in GPU_SCALED_PRESETS:
        return p
    base = int(p.train.get("batch_size", TrainConfig.batch_size))
    batch = scaled_batch(base, device)
    if batch == base:
        return p
    return replace(p, train={**p.train, "batch_size": batch})
