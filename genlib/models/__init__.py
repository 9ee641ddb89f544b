"""Model families, one module each, registered by stable name (``rbm``, ``ddpm``, ...)."""

from __future__ import annotations

import importlib
import pkgutil

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
]


def names() -> list[str]:
    return MODELS.names()


def build(name: str, **kwargs) -> GenerativeModel:
    return MODELS.build(name, **kwargs)


def preset(name: str, preset_name: str = "fast") -> Preset:
    """The preset ``preset_name`` of model ``name`` (KeyError with the known names if absent)."""
    cls = MODELS.get(name)
    presets = getattr(cls, "presets", {})
    if preset_name not in presets:
        raise KeyError(f"model {name!r} has no preset {preset_name!r}; known: {', '.join(presets)}")
    return presets[preset_name]
