"""Random draws with an explicit ``torch.Generator`` on any device (the one home of this helper).

Every random function of GenLab takes a generator (jobs run side by side in threads, so the global
RNG is never used for results). A generator lives on one device; these helpers draw on the
generator's device and move the result to the requested one, so a CPU generator can feed a CUDA
model and vice versa.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import Tensor

__all__ = ["randn", "randn_like", "rand", "randint", "seeded_init"]

T = TypeVar("T")
_INIT_LOCK = threading.RLock()  # re-entrant: a builder may seed a sub-module itself


def _where(generator: torch.Generator | None, device: torch.device | str | None):
    dev = torch.device(device) if device is not None else torch.device("cpu")
    gen_dev = generator.device if generator is not None else dev
    return dev, gen_dev


def _draw(
    fn: Callable[..., Tensor],
    shape: tuple,
    generator: torch.Generator | None,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
        shape = tuple(shape[0])
    dev, gen_dev = _where(generator, device)
    z = fn(shape, generator=generator, device=gen_dev, dtype=dtype)
    return z if gen_dev == dev else z.to(dev)


def randn(
    *shape: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Standard normal noise ``shape`` on ``device``, drawn with ``generator`` on its own device."""
    return _draw(torch.randn, shape, generator, device, dtype)


def randn_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise shaped like ``x`` (its device and dtype)."""
    return randn(tuple(x.shape), generator=generator, device=x.device, dtype=x.dtype)


def rand(
    *shape: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Uniform [0, 1) draws ``shape`` on ``device`` with ``generator``."""
    return _draw(torch.rand, shape, generator, device, dtype)


def randint(
    low: int,
    high: int,
    shape: tuple[int, ...],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Integers uniform in ``[low, high)`` of ``shape`` on ``device`` with ``generator``."""
    dev, gen_dev = _where(generator, device)
    i = torch.randint(low, high, shape, generator=generator, device=gen_dev)
    return i if gen_dev == dev else i.to(dev)


@contextmanager
def _seeded_global(seed: int) -> Iterator[None]:
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def seeded_init(seed: int, build: Callable[[], T]) -> T:
    """``build()`` with torch's default module initialisers seeded by ``seed``.

    ``nn.Linear`` and friends initialise from the global RNG and take no generator. This runs
    ``build`` under a process-wide lock, inside ``torch.random.fork_rng`` (the global state is
    restored afterwards), so two threads building models at once cannot interleave their draws:
    a run's initial weights depend on its seed only. Nothing else in GenLab draws from the global
    RNG (every loss, sampler and target takes a generator)."""
    with _seeded_global(seed):
        return build()
