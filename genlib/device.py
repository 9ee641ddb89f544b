"""Device and thread selection: cuda > mps > cpu, overridable by environment variables.

- ``GENLIB_DEVICE``: force a device (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
- ``GENLIB_THREADS``: torch intra-op threads per training session (default 1: with two threads and
  the other core busy, torch's OpenMP spin-waiting slows small-MLP training 10-80x).
"""

from __future__ import annotations

import os

import torch

__all__ = ["get_device", "make_generator", "configure_threads", "device_info"]


def get_device() -> torch.device:
    """The device GenLab computes on: ``GENLIB_DEVICE`` if set, else cuda > mps > cpu."""
    forced = os.environ.get("GENLIB_DEVICE", "").strip()
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_generator(seed: int, device: torch.device | str | None = None) -> torch.Generator:
    """A seeded ``torch.Generator`` on ``device`` (default: the CPU)."""
    g = torch.Generator(device=torch.device(device) if device is not None else "cpu")
    g.manual_seed(int(seed))
    return g


def configure_threads() -> int:
    """Set torch's intra-op thread count from ``GENLIB_THREADS`` (default 1); return it."""
    try:
        n = max(1, int(os.environ.get("GENLIB_THREADS", "1")))
    except ValueError:
        n = 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def device_info() -> dict[str, str]:
    """A small description of the compute device, for the Home page and benchmarks."""
    dev = get_device()
    info = {"device": str(dev), "torch": torch.__version__, "threads": str(torch.get_num_threads())}
    if dev.type == "cuda":
        info["name"] = torch.cuda.get_device_name(dev)
    return info
