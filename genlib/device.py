"""Device and thread selection: cuda > mps > cpu, overridable by environment variables.

- ``GENLIB_DEVICE``: force a device (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
- ``GENLIB_THREADS``: torch intra-op threads per training session (default 1: with two threads and
  the other core busy, torch's OpenMP spin-waiting slows small-MLP training 10-80x).
- ``GENLIB_GPU_BATCH``: the smallest training batch a preset uses on a CUDA device (default
  4096; 0 keeps the presets' CPU batches). A step of a 2D MLP costs about the same on a GPU at
  batch 512 and 4096 (it is launch-bound), so the GPU's width buys a less noisy gradient for free.
"""

from __future__ import annotations

import os

import torch

from genlib.limits import env_int

__all__ = [
    "get_device",
    "make_generator",
    "configure_threads",
    "device_info",
    "gpu_batch",
    "scaled_batch",
    "GPU_BATCH",
]

#: default smallest training batch of a preset on a CUDA device (``GENLIB_GPU_BATCH``)
GPU_BATCH = 4096
_MAX_BATCH = 65_536  # = genlib.training.MAX_BATCH (not imported: training imports this module)


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


def gpu_batch() -> int:
    """The smallest preset batch on a CUDA device: ``GENLIB_GPU_BATCH`` (0 = no scaling), else
    ``GPU_BATCH``; an unreadable value falls back to the default."""
    return env_int("GENLIB_GPU_BATCH", GPU_BATCH, 0, _MAX_BATCH)


def scaled_batch(batch: int, device: torch.device | str | None = None) -> int:
    """A preset's training batch on ``device`` (default: ``get_device()``): unchanged on a CPU
    (or MPS), at least ``gpu_batch()`` on CUDA, where a wider batch costs no more per step."""
    dev = torch.device(device) if device is not None else get_device()
    if dev.type != "cuda":
        return int(batch)
    return max(int(batch), gpu_batch())


def device_info() -> dict[str, str]:
    """A small description of the compute device, for the Home page and benchmarks."""
    dev = get_device()
    info = {"device": str(dev), "torch": torch.__version__, "threads": str(torch.get_num_threads())}
    if dev.type == "cuda":
        info["name"] = torch.cuda.get_device_name(dev)
    return info
