"""Server-side bounds: one table of every size a widget, a URL, the CLI or an API call can request.

A class shares one server, so no request may ask for hours of compute or gigabytes of memory. The
pages' widgets, ``genlib.runs.RunSpec`` validation, the model constructors, the target factories
and the command line all check against this table, and every check raises ``ValueError`` with one
clear line (``"hidden must be an integer in [1, 1024], got 30000"``)::

    from genlib import limits
    limits.check_int("hidden", 30000)          # ValueError: hidden must be an integer in [1, 1024]
    limits.check_kwargs(models.MODELS.get("ddpm"), {"activation": "nope"}, "ddpm")
    limits.check_model_size(hidden=128, depth=3, embed_dim=64)

``check_kwargs`` checks keyword arguments against a constructor's signature: unknown names, the
types of the defaults and annotations (``Literal`` choices, ``int``, ``float``, ``bool``), finite
numbers, and the bounds below for names listed in ``SIZE_LIMITS``.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "SIZE_LIMITS",
    "MAX_SEED",
    "MAX_SAMPLES",
    "MAX_PARTICLES",
    "MAX_GRID",
    "MAX_HIDDEN",
    "MAX_DEPTH",
    "MAX_EMBED",
    "MAX_T",
    "MAX_ABS_PARAM",
    "MAX_PATH_CHARS",
    "check_int",
    "check_float",
    "check_bool",
    "check_choice",
    "check_seed",
    "check_model_size",
    "check_kwargs",
    "env_int",
    "env_float",
]

MAX_SEED = 2**31 - 1  # seeds are in [0, MAX_SEED] (the pages' seed widget has the same range)
MAX_SAMPLES = 1_000_000  # samples drawn in one call (CLI -n, sample counts of the API)
MAX_PARTICLES = 20_000  # particles / trajectories a page simulates at once
MAX_GRID = 400  # grid points per axis of a density / field grid
MAX_HIDDEN = 1024  # hidden units of one layer (every family)
MAX_DEPTH = 8  # hidden layers of one network
MAX_EMBED = 1024  # time / noise-level embedding width
MAX_T = 1000  # DDPM steps (the page offers 10 ... 1000)
MAX_ABS_PARAM = 1e6  # any other finite number a parameter may take (|x|)
MAX_PATH_CHARS = 1024  # an output path of the CLI

#: name -> (lo, hi): bounds of integer sizes, wherever a constructor or factory takes them
SIZE_LIMITS: dict[str, tuple[int, int]] = {
    "hidden": (1, MAX_HIDDEN),
    "depth": (1, MAX_DEPTH),
    "embed_dim": (1, MAX_EMBED),
    "T": (2, MAX_T),
    "num_levels": (1, 1000),
    "components": (1, 64),
    "layers": (1, 32),
    "bins": (2, 64),
    "z_dim": (1, 64),
    "latent_dim": (1, 64),
    "langevin_steps": (1, 10_000),
    "steps_per_level": (1, 10_000),
    "gibbs_steps": (1, 10_000),
    "record_every": (1, 10_000),
    "corrector_steps": (0, 100),
    "ode_steps": (1, 2000),
    "likelihood_steps": (1, 400),
    "k": (1, 1000),
    "k_d": (1, 20),
    "k_g": (1, 20),
    "num_classes": (1, 32),
    "n_nodes": (32, 20_000),
    "n": (1, MAX_SAMPLES),
    "num_samples": (1, MAX_SAMPLES),
    "particles": (1, MAX_PARTICLES),
    "grid": (2, MAX_GRID),
    "grid_res": (2, MAX_GRID),
    "seed": (0, MAX_SEED),
    "init_seed": (0, MAX_SEED),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an ``int`` in ``[lo, hi]`` (default: ``SIZE_LIMITS[name]``), else
    ``ValueError``. Booleans, ``1.5`` and strings are refused; ``3.0`` is taken as ``3``."""
    if lo is None or hi is None:
        dlo, dhi = SIZE_LIMITS.get(name, (-(2**63), 2**63 - 1))
        lo = dlo if lo is None else lo
        hi = dhi if hi is None else hi
    v: int | None = None
    if _is_int(value):
        v = int(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        v = int(value)
    if v is None or not (lo <= v <= hi):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {_show(value)}")
    return v


def check_float(
    name: str,
    value: Any,
    lo: float = -MAX_ABS_PARAM,
    hi: float = MAX_ABS_PARAM,
    *,
    open_lo: bool = False,
) -> float:
    """``value`` as a finite ``float`` in ``[lo, hi]`` (``(lo, hi]`` with ``open_lo``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    inside = (lo < v if open_lo else lo <= v) and v <= hi
    if not (math.isfinite(v) and inside):
        left = "(" if open_lo else "["
        raise ValueError(f"{name} must be a finite number in {left}{lo:g}, {hi:g}], got {_show(value)}")  # fmt: skip
    return v


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {_show(value)}")
    return value


def check_choice(name: str, value: Any, options: Sequence[Any]) -> Any:
    if not any(value == o and type(value) is type(o) for o in options):
        raise ValueError(f"{name} must be one of {', '.join(map(str, options))}, got {_show(value)}")  # fmt: skip
    return value


def check_seed(value: Any, name: str = "seed") -> int:
    return check_int(name, value, 0, MAX_SEED)


def env_int(name: str, default: int, lo: int, hi: int) -> int:
    """An integer setting from the environment, clamped to ``[lo, hi]`` (bad values: default)."""
    try:
        v = int(os.environ.get(name, default))
    except ValueError:
        v = default
    return max(lo, min(hi, v))


def env_float(name: str, default: float, lo: float, hi: float) -> float:
    """A float setting from the environment, clamped to ``[lo, hi]`` (bad values: default)."""
    try:
        v = float(os.environ.get(name, default))
    except ValueError:
        v = default
    return max(lo, min(hi, v)) if math.isfinite(v) else default


def check_model_size(**sizes: Any) -> None:
    """Bounds of a network's sizes (``hidden=``, ``depth=``, ``embed_dim=``, ``T=`` ...): the
    model constructors call this before allocating anything."""
    for name, value in sizes.items():
        check_int(name, value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_typed(name: str, value: Any, tp: Any) -> None:
    """``value`` against a resolved annotation (Literal, Optional/Union, int, float, bool, str,
    tuples/sequences of numbers); unknown annotations are left to the constructor."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        check_choice(name, value, typing.get_args(tp))
        return
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                _check_typed(name, value, a)
                return
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{name}: unexpected value {_show(value)}")
    if tp is bool:
        check_bool(name, value)
    elif tp is int:
        check_int(name, value)
    elif tp is float:
        check_float(name, value)
    elif tp is str:
        if not isinstance(value, str) or len(value) > 200:
            raise ValueError(f"{name} must be a short text, got {_show(value)}")
    elif origin in (tuple, list, Sequence, typing.Sequence) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)) or len(value) > 10_000:
            raise ValueError(f"{name} must be a list, got {_show(value)}")
        _check_nested_numbers(name, value)


def _check_nested_numbers(name: str, value: Any, depth: int = 0) -> None:
    if depth > 3:
        raise ValueError(f"{name} is nested too deeply")
    for v in value:
        if isinstance(v, (list, tuple)):
            _check_nested_numbers(name, v, depth + 1)
        else:
            check_float(f"{name} entries", v)


def check_kwargs(factory: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> None:
    """Keyword arguments for ``factory`` (a model class or a target factory): unknown names,
    wrong types (by annotation, or by the default's type when there is none), non-finite numbers
    and the ``SIZE_LIMITS`` bounds give ``ValueError``; the factory checks the rest."""
    init = factory.__init__ if inspect.isclass(factory) else factory
    sig = inspect.signature(factory)
    params = {
        n: p
        for n, p in sig.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n != "self"
    }
    takes_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = sorted(set(kwargs) - set(params))
    if unknown and not takes_any:
        raise ValueError(
            f"unknown {what} parameter {unknown[0]!r}; known: {', '.join(params) or 'none'}"
        )
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        hints = {}
    for name, value in kwargs.items():
        if name not in params:
            continue
        try:
            _check_one(name, value, hints.get(name), params[name].default)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None


def _check_one(name: str, value: Any, tp: Any, default: Any) -> None:
    """One keyword argument: finite, of its annotation's (or default's) type, in bounds."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if abs(float(value)) > MAX_ABS_PARAM:
            raise ValueError(f"{name} must be at most {MAX_ABS_PARAM:g} in size, got {_show(value)}")  # fmt: skip
    if tp is not None:
        _check_typed(name, value, tp)
    elif isinstance(default, bool):
        check_bool(name, value)
    elif isinstance(default, int):
        check_int(name, value)
    elif isinstance(default, float):
        check_float(name, value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{name} must be a text, got {_show(value)}")
    if name in SIZE_LIMITS and value is not None:
        check_int(name, value)
