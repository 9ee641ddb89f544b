"""Checkpoints: save/load with ``weights_only=True`` and a content-addressed cache directory.

A checkpoint is a plain dict of tensors and primitives (never pickled objects):
``{"format": 1, "spec": {...}, "state_dict": {...}, "meta": {...}, "sha256": "...",
"meta_sha256": "..."}``. The cache file of a run is ``<cache_dir>/<spec key>.pt``; shipped pretrained presets live in
``assets/pretrained/`` under the same key, so looking one up is a file-exists check.

The cache may be shared by several servers (replicas on one volume) and written by several
processes at once:

- **atomic writes**: a checkpoint is written to a temp file in the same folder (``tmp*.tmp``),
  flushed to disk and renamed over the target (``os.replace``), so a reader sees the old file or
  the new one, never half of one; concurrent writers of one key leave one complete file;
- **checksums**: ``sha256`` is the digest of the weights (names, dtypes, shapes, bytes) and the
  spec, ``meta_sha256`` that of the metadata (history, snapshots, metrics: ``torch.load`` checks
  no CRC, so a flipped byte there would otherwise pass); ``load_checkpoint`` verifies each when
  present and cache files must carry both (shipped presets written before need not);
- **nothing executes**: files are read with ``torch.load(weights_only=True)`` only;
- **corrupt files are discarded** (``discard``: cache files only, and only if nobody replaced
  the file meanwhile), so the next run retrains and writes a good one;
- **crash leftovers**: temp files older than ``GENLIB_TMP_MAX_AGE_S`` (default 600 s) are
  removed on the first use of a cache folder in a process (``sweep_stale_temp``; at least
  60 s, so a replica never removes the file another one is writing).

``GENLIB_CACHE`` sets the cache directory (default ``~/.cache/genlab``); ``GENLIB_PRETRAINED`` the
folder of shipped presets.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_bytes",
    "weights_digest",
    "meta_digest",
    "cache_dir",
    "cache_path",
    "pretrained_dir",
    "checkpoint_candidates",
    "find_checkpoint",
    "is_cache_file",
    "file_identity",
    "discard",
    "sweep_stale_temp",
    "MAX_CHECKPOINT_BYTES",
    "TMP_PREFIX",
    "TMP_SUFFIX",
]

FORMAT = 1
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024
TMP_PREFIX = "tmp"
TMP_SUFFIX = ".tmp"
DEFAULT_TMP_MAX_AGE_S = 600.0
MIN_TMP_MAX_AGE_S = 60.0  # a write takes seconds: a younger temp file may be in progress
MAX_META_DEPTH = 64

_SWEPT: set[str] = set()  # cache folders swept by this process
_SWEPT_LOCK = threading.Lock()


class CheckpointError(RuntimeError):
    """A checkpoint is missing, malformed, too large, fails its checksum or is for another
    model."""


def cache_dir() -> Path:
    d = Path(os.environ.get("GENLIB_CACHE", Path.home() / ".cache" / "genlab"))
    _sweep_once(d)
    return d


def pretrained_dir() -> Path:
    """Shipped pretrained presets (``GENLIB_PRETRAINED`` overrides, e.g. an empty folder in tests)."""
    override = os.environ.get("GENLIB_PRETRAINED")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "assets" / "pretrained"


def cache_path(key: str) -> Path:
    return cache_dir() / f"{key}.pt"


def checkpoint_candidates(key: str) -> list[Path]:
    """The existing files that may hold ``key``: the shipped preset first, then the cache."""
    return [p for p in (pretrained_dir() / f"{key}.pt", cache_path(key)) if p.is_file()]


def find_checkpoint(key: str) -> Path | None:
    """The shipped pretrained checkpoint or the cached one for ``key``, if any."""
    found = checkpoint_candidates(key)
    return found[0] if found else None


def is_cache_file(path: str | Path) -> bool:
    """Whether ``path`` lies in the (writable) cache folder, not among the shipped presets."""
    try:
        return Path(path).resolve().parent == cache_dir().resolve()
    except OSError:
        return False


# --- checksum -------------------------------------------------------------------------------------
def weights_digest(state_dict: dict[str, torch.Tensor], spec: dict[str, Any]) -> str:
    """sha256 of the weights (sorted names, dtypes, shapes and raw bytes) and the spec's JSON."""
    h = hashlib.sha256()
    h.update(json.dumps(spec, sort_keys=True, default=str).encode())
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _feed(h: Any, v: Any, depth: int) -> None:
    """Hash a metadata value canonically (the same before ``torch.save`` and after
    ``torch.load``: tuples and lists alike, dict keys sorted, tensors by dtype, shape, bytes)."""
    if depth > MAX_META_DEPTH:
        raise ValueError("metadata nested too deeply")
    if isinstance(v, torch.Tensor):
        t = v.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(v, dict):
        h.update(f"D{len(v)}:".encode())
        for k in sorted(v, key=repr):
            _feed(h, k, depth + 1)
            _feed(h, v[k], depth + 1)
    elif isinstance(v, (list, tuple)):
        h.update(f"L{len(v)}:".encode())
        for x in v:
            _feed(h, x, depth + 1)
    elif isinstance(v, str):
        b = v.encode("utf-8", "surrogatepass")
        h.update(f"S{len(b)}:".encode() + b)
    else:  # None, bool, int, float (repr is exact and tells True from 1, -0.0 from 0.0)
        r = repr(v).encode()
        h.update(f"P{type(v).__name__}{len(r)}:".encode() + r)


def meta_digest(meta: Any) -> str:
    """sha256 of the metadata (nested dicts, lists, primitives and tensors, canonically)."""
    h = hashlib.sha256()
    _feed(h, meta, 0)
    return h.hexdigest()


def _payload(
    state_dict: dict[str, torch.Tensor], spec: dict[str, Any], meta: dict[str, Any]
) -> dict:
    weights = {k: v.detach().cpu() for k, v in state_dict.items()}
    return {
        "format": FORMAT,
        "spec": spec,
        "state_dict": weights,
        "meta": meta,
        "sha256": weights_digest(weights, spec),
        "meta_sha256": meta_digest(meta),
    }


def checkpoint_bytes(
    state_dict: dict[str, torch.Tensor], spec: dict[str, Any], meta: dict[str, Any]
) -> bytes:
    """The checkpoint as bytes (for a download button)."""
    buf = io.BytesIO()
    torch.save(_payload(state_dict, spec, meta), buf)
    return buf.getvalue()


# --- writing --------------------------------------------------------------------------------------
def _fsync_dir(d: Path) -> None:
    """Make a rename durable (best effort: not every platform or volume can open a folder)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    path: str | Path, state_dict, spec: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Write atomically: a temp file in the same folder, flushed and fsynced, then renamed over
    ``path`` (readers and concurrent writers never see half a file; a crash leaves at most a
    ``tmp*.tmp`` that ``sweep_stale_temp`` removes later)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = checkpoint_bytes(state_dict, spec, meta)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # other replicas (other users) read the shared cache
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return path


# --- reading --------------------------------------------------------------------------------------
def file_identity(path: str | Path) -> tuple[int, int, int, int] | None:
    """(device, inode, size, mtime ns) of a file, or ``None`` if it is gone: a replaced file
    (``os.replace``) has a new identity."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def load_checkpoint(
    source: str | Path | bytes | io.BytesIO, require_checksum: bool = False
) -> dict[str, Any]:
    """Load with ``weights_only=True`` (no code runs); validate the structure and the checksums
    of the weights and of the metadata (when present; ``require_checksum``: both must be
    present, as in cache files)."""
    try:
        if isinstance(source, (str, Path)):
            p = Path(source)
            if not p.is_file():
                raise CheckpointError(f"checkpoint not found: {p}")
            if p.stat().st_size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError("checkpoint is larger than 64 MiB")
            data = p.read_bytes()
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
    if not all(isinstance(k, str) for k in obj["state_dict"]) or not all(
        isinstance(v, torch.Tensor) for v in obj["state_dict"].values()
    ):
        raise CheckpointError("checkpoint state_dict must hold tensors only")
    digest, mdigest = obj.get("sha256"), obj.get("meta_sha256")
    if require_checksum and (digest is None or mdigest is None):
        raise CheckpointError("checkpoint has no checksum")
    try:  # a crafted file may hold tensors or nesting the digests cannot read: corrupt too
        spec = obj.get("spec")
        bad = digest is not None and (
            not isinstance(spec, dict) or digest != weights_digest(obj["state_dict"], spec)
        )
        bad = bad or (mdigest is not None and mdigest != meta_digest(obj.get("meta")))
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint checksum unreadable ({type(exc).__name__}: {exc})"
        ) from None
    if bad:
        raise CheckpointError("checkpoint checksum mismatch (the file is corrupt)")
    return obj


# --- cleaning -------------------------------------------------------------------------------------
_ANY: Any = object()  # ``discard`` without an identity: whatever file is there


def discard(path: str | Path, identity: tuple[int, int, int, int] | None = _ANY) -> bool:
    """Remove a corrupt cache file so the next run retrains it. Shipped presets are never
    removed, nor a file that changed since ``identity`` was taken (another process replaced it
    with a good one meanwhile; ``None``: there was no file then, so a file there now is
    another process's and is kept). Returns whether it was removed."""
    p = Path(path)
    if not is_cache_file(p):
        return False
    if identity is not _ANY and (identity is None or file_identity(p) != identity):
        return False
    try:
        p.unlink()
    except OSError:
        return False
    return True


def sweep_stale_temp(directory: str | Path | None = None, max_age_s: float | None = None) -> int:
    """Remove ``tmp*.tmp`` files older than ``max_age_s`` (default ``GENLIB_TMP_MAX_AGE_S``,
    600 s, at least 60 s: younger ones may be another process's write in progress) from the
    cache folder: leftovers of writers killed mid-write. Returns how many."""
    d = Path(directory) if directory is not None else cache_dir()
    if max_age_s is None:
        try:
            max_age_s = float(os.environ.get("GENLIB_TMP_MAX_AGE_S", DEFAULT_TMP_MAX_AGE_S))
        except ValueError:
            max_age_s = DEFAULT_TMP_MAX_AGE_S
        if not max_age_s >= MIN_TMP_MAX_AGE_S:  # NaN too
            max_age_s = MIN_TMP_MAX_AGE_S
    now = time.time()
    removed = 0
    try:
        candidates = list(d.glob(f"{TMP_PREFIX}*{TMP_SUFFIX}"))
    except OSError:
        return 0
    for p in candidates:
        with contextlib.suppress(OSError):
            if p.is_file() and now - p.stat().st_mtime >= max_age_s:
                p.unlink()
                removed += 1
    return removed


def _sweep_once(d: Path) -> None:
    key = str(d)
    with _SWEPT_LOCK:
        if key in _SWEPT:
            return
        _SWEPT.add(key)
    sweep_stale_temp(d)
