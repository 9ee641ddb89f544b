"""Checkpoints: save/load with ``weights_only=True`` and a content-addressed cache directory.

A checkpoint is a plain dict of tensors and primitives (never pickled objects):
``{"format": 1, "spec": {...}, "state_dict": {...}, "meta": {...}}``. The cache file of a run is
``<cache_dir>/<spec key>.pt``; shipped pretrained presets live in ``assets/pretrained/`` under the
same key, so looking one up is a file-exists check.

``GENLIB_CACHE`` sets the cache directory (default ``~/.cache/genlab``); ``GENLIB_PRETRAINED`` the
folder of shipped presets.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_bytes",
    "cache_dir",
    "cache_path",
    "pretrained_dir",
    "find_checkpoint",
    "MAX_CHECKPOINT_BYTES",
]

FORMAT = 1
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024


class CheckpointError(RuntimeError):
    """A checkpoint is missing, malformed, too large or for another model."""


def cache_dir() -> Path:
    d = Path(os.environ.get("GENLIB_CACHE", Path.home() / ".cache" / "genlab"))
    return d


def pretrained_dir() -> Path:
    """Shipped pretrained presets (``GENLIB_PRETRAINED`` overrides, e.g. an empty folder in tests)."""
    override = os.environ.get("GENLIB_PRETRAINED")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "assets" / "pretrained"


def cache_path(key: str) -> Path:
    return cache_dir() / f"{key}.pt"


def find_checkpoint(key: str) -> Path | None:
    """The shipped pretrained checkpoint or the cached one for ``key``, if any."""
    for p in (pretrained_dir() / f"{key}.pt", cache_path(key)):
        if p.is_file():
            return p
    return None


def _payload(
    state_dict: dict[str, torch.Tensor], spec: dict[str, Any], meta: dict[str, Any]
) -> dict:
    return {
        "format": FORMAT,
        "spec": spec,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "meta": meta,
    }


def checkpoint_bytes(
    state_dict: dict[str, torch.Tensor], spec: dict[str, Any], meta: dict[str, Any]
) -> bytes:
    """The checkpoint as bytes (for a download button)."""
    buf = io.BytesIO()
    torch.save(_payload(state_dict, spec, meta), buf)
    return buf.getvalue()


def save_checkpoint(
    path: str | Path, state_dict, spec: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Write atomically (temp file + rename) so concurrent sessions never read half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(_payload(state_dict, spec, meta), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(source: str | Path | bytes | io.BytesIO) -> dict[str, Any]:
    """Load with ``weights_only=True`` (no code runs); validate the structure."""
    try:
        if isinstance(source, (str, Path)):
            p = Path(source)
            if not p.is_file():
                raise CheckpointError(f"checkpoint not found: {p}")
            if p.stat().st_size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError("checkpoint is larger than 64 MiB")
            obj = torch.load(p, map_location="cpu", weights_only=True)
        else:
            data = source.getvalue() if isinstance(source, io.BytesIO) else source
            if len(data) > MAX_CHECKPOINT_BYTES:
                raise CheckpointError("checkpoint is larger than 64 MiB")
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as exc:  # malformed file, pickle with code, truncated zip, ...
        raise CheckpointError(
            f"not a valid GenLab checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if (
        not isinstance(obj, dict)
        or obj.get("format") != FORMAT
        or not isinstance(obj.get("state_dict"), dict)
    ):
        raise CheckpointError("not a GenLab checkpoint (missing format/state_dict)")
    if not all(isinstance(v, torch.Tensor) for v in obj["state_dict"].values()):
        raise CheckpointError("checkpoint state_dict must hold tensors only")
    return obj
