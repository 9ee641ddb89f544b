"""2D targets with exact densities (see ``../shared/TARGETS.md``): a registry by stable name.

>>> from genlib import distributions
>>> distributions.names()            # ['8gaussians', '25gaussians', 'moons', ...]
>>> p = distributions.build("moons")
>>> x = p.sample(1000, generator=torch.Generator().manual_seed(0)); p.log_prob(x)
"""

from __future__ import annotations

import importlib
import pkgutil

from genlib.distributions.base import TARGETS, Bounds, GaussianMixture, Target2D, register
from genlib.limits import check_kwargs

# Every module in this package registers its targets on import (adding a target is one file or
# one decorated definition).
for _mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _mod.name != "base" and not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "TARGETS",
    "Bounds",
    "GaussianMixture",
    "Target2D",
    "register",
    "names",
    "build",
    "ORDER",
]

#: Display order of the built-in targets (modules register in alphabetical order); targets not
#: listed here follow in registration order.
ORDER = (
    "8gaussians",
    "25gaussians",
    "moons",
    "swissroll",
    "circles",
    "rings",
    "checkerboard",
    "pinwheel",
    "2spirals",
    "two_peaks",
    "far_mixture",
    "banana",
    "custom_gmm",
)


def names() -> list[str]:
    """The registered target names, in display order (``ORDER`` first)."""
    registered = TARGETS.names()
    return [n for n in ORDER if n in TARGETS] + [n for n in registered if n not in ORDER]


def build(name: str, **kwargs) -> Target2D:
    """Instantiate target ``name`` with its keyword parameters, checked first
    (``genlib.limits.check_kwargs``: unknown names, types, finite numbers; one ``ValueError``
    line); the factory checks the ranges."""
    check_kwargs(TARGETS.get(name), kwargs, f"{name} target")
    return TARGETS.build(name, **kwargs)
