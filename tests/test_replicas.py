"""Replicas on one checkpoint store (``GENLIB_CACHE`` on a shared volume): a model trained by one
server is served by another without retraining; concurrent writers of one key never leave a
corrupt file (atomic replace, checksum verified on load); a bad file is discarded and retrained,
never loaded, and nothing in it executes; stale temp files are swept."""

from __future__ import annotations

import io
import math
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genlib import checkpoints as ck
from genlib.checkpoints import (
    CheckpointError,
    cache_path,
    discard,
    file_identity,
    load_checkpoint,
    meta_digest,
    save_checkpoint,
    sweep_stale_temp,
    weights_digest,
)
from genlib.jobs import JobQueue
from genlib.runs import RunSpec, build_model, cached_run, load_trained, result_meta, run
from genlib.training import TrainResult

#: a snapshot whose values are all distinct (a byte of it is found, and flipped, below)
SNAPSHOT = torch.linspace(-2.0, 2.0, 128).reshape(64, 2)
GOOD_META = result_meta(
    TrainResult(steps_done=20, history=[{"step": 20.0, "loss": 1.0}], snapshots=[(20, SNAPSHOT)])
)


def spec(seed: int, steps: int = 20) -> RunSpec:
    return RunSpec.from_preset("autoregressive", "moons", seed=seed, steps=steps, data_size=500)


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """A private store for the test (the replicas' shared volume)."""
    d = tmp_path / "store"
    monkeypatch.setenv("GENLIB_CACHE", str(d))
    return d


class Evil:
    """A pickle that would create ``marker`` when unpickled by an unrestricted loader."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def bad_files(s: RunSpec, marker: Path) -> dict[str, bytes]:
    """Every kind of bad file a store can hold under ``s``'s key, as bytes."""
    model = build_model(s)
    state = model.state_dict()
    good = ck.checkpoint_bytes(state, s.to_dict(), GOOD_META)
    nan_state = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v
                 for k, v in state.items()}  # fmt: skip
    flipped = bytearray(good)
    # a bit flip inside the first weight's bytes (the zip stores tensors uncompressed)
    big = max(state.values(), key=lambda v: v.numel()).reshape(-1)
    chunk = big[big.numel() // 2 :][:8].numpy().tobytes()  # 32 bytes of random weights
    at = bytes(flipped).find(chunk)
    assert at > 0 and bytes(flipped).count(chunk) == 1
    flipped[at] ^= 0x40
    meta_flipped = bytearray(good)  # a bit flip in the metadata (a training snapshot)
    chunk = SNAPSHOT.reshape(-1)[60:68].numpy().tobytes()
    at = bytes(meta_flipped).find(chunk)
    assert at > 0 and bytes(meta_flipped).count(chunk) == 1
    meta_flipped[at] ^= 0x01
    sparse = io.BytesIO()  # loadable with weights_only, but no digest can read its bytes
    torch.save(
        {"format": 1, "spec": s.to_dict(), "meta": GOOD_META, "sha256": "0", "meta_sha256": "0",
         "state_dict": {k: v.to_sparse() if v.ndim == 2 else v for k, v in state.items()}},
        sparse,
    )  # fmt: skip
    buf = io.BytesIO()  # a well-formed checkpoint of an older version: no checksum
    torch.save({"format": 1, "spec": s.to_dict(), "state_dict": state, "meta": GOOD_META}, buf)
    code = io.BytesIO()
    torch.save({"format": 1, "state_dict": {}, "meta": Evil(marker)}, code)
    return {
        "truncated": good[: len(good) // 2],
        "random": os.urandom(4096),
        "empty": b"",
        "raw_pickle_with_code": pickle.dumps(Evil(marker)),
        "torch_zip_with_code": code.getvalue(),
        "steps_done_abc": ck.checkpoint_bytes(
            state, s.to_dict(), {**GOOD_META, "steps_done": "abc"}
        ),
        "steps_done_list": ck.checkpoint_bytes(
            state, s.to_dict(), {**GOOD_META, "steps_done": [1, 2]}
        ),
        "meta_not_a_dict": ck.checkpoint_bytes(state, s.to_dict(), [1, 2, 3]),  # type: ignore[arg-type]
        "nan_weights": ck.checkpoint_bytes(nan_state, s.to_dict(), GOOD_META),
        "bit_flip": bytes(flipped),
        "meta_bit_flip": bytes(meta_flipped),
        "sparse_weights": sparse.getvalue(),
        "no_checksum": buf.getvalue(),
    }


KINDS = [
    "truncated",
    "random",
    "empty",
    "raw_pickle_with_code",
    "torch_zip_with_code",
    "steps_done_abc",
    "steps_done_list",
    "meta_not_a_dict",
    "nan_weights",
    "bit_flip",
    "meta_bit_flip",
    "sparse_weights",
    "no_checksum",
]


def test_every_kind_of_bad_file_is_made(tmp_path):
    assert list(bad_files(spec(0), tmp_path / "m")) == KINDS


#: what the refusal says, where it is not simply "not a valid GenLab checkpoint"
WHY = {
    "bit_flip": "checksum mismatch",
    "meta_bit_flip": "checksum mismatch",
    "sparse_weights": "checksum unreadable",
    "no_checksum": "no checksum",
    "nan_weights": "non-finite",
    "steps_done_abc": "steps_done",
    "steps_done_list": "steps_done",
    "meta_not_a_dict": "metadata",
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_file_is_refused_discarded_and_retrained(store, tmp_path, kind):
    s = spec(100 + KINDS.index(kind))
    marker = tmp_path / "marker"
    path = cache_path(s.key())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bad_files(s, marker)[kind])
    with pytest.raises(CheckpointError, match=WHY.get(kind, "not a valid GenLab checkpoint")):
        load_trained(s)
    assert not path.exists()  # discarded: the next visitor retrains instead of failing again
    path.write_bytes(bad_files(s, marker)[kind])
    assert cached_run(s) is None and not path.exists()
    fresh = run(s)
    assert fresh.result.status == "ok" and fresh.source == "trained"
    again = load_trained(s)  # the replacement is good, with its checksum
    assert again.source == "cache" and again.result.steps_done == 20
    assert not marker.exists()  # nothing in any file ever executed


def test_a_checkpoint_carries_a_checksum_of_its_weights(store):
    s = spec(1)
    model = build_model(s)
    path = save_checkpoint(cache_path(s.key()), model.state_dict(), s.to_dict(), GOOD_META)
    obj = load_checkpoint(path, require_checksum=True)
    # independent recomputation: sha256 over the spec JSON and each tensor's bytes
    import hashlib
    import json

    h = hashlib.sha256(json.dumps(s.to_dict(), sort_keys=True, default=str).encode())
    for name in sorted(obj["state_dict"]):
        t = obj["state_dict"][name].contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.numpy().tobytes())
    assert obj["sha256"] == h.hexdigest() == weights_digest(model.state_dict(), s.to_dict())
    # the metadata has its own digest: the same after the round trip through the file, and
    # another one for other metadata (a snapshot value, a tuple for a list is the same)
    assert obj["meta_sha256"] == meta_digest(GOOD_META) == meta_digest(obj["meta"])
    other = {**GOOD_META, "snapshots": [(20, SNAPSHOT + 1e-6)]}
    assert meta_digest(other) != obj["meta_sha256"]
    assert (
        meta_digest({"a": (1, 2.0)}) == meta_digest({"a": [1, 2.0]}) != meta_digest({"a": [1, 2]})
    )
    assert oct(path.stat().st_mode & 0o777) == "0o644"  # other replicas may read it


def test_shipped_presets_need_no_checksum_and_are_never_removed(tmp_path, monkeypatch, store):
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    monkeypatch.setenv("GENLIB_PRETRAINED", str(shipped))
    s, bad = spec(2), spec(3)
    model = build_model(s)
    torch.save(
        {"format": 1, "spec": s.to_dict(), "state_dict": model.state_dict(), "meta": GOOD_META},
        shipped / f"{s.key()}.pt",
    )
    assert load_trained(s).source == "pretrained"  # an older preset without a checksum
    (shipped / f"{bad.key()}.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        load_trained(bad)
    assert (shipped / f"{bad.key()}.pt").exists()  # a shipped file is never deleted


def test_a_damaged_shipped_preset_does_not_hide_a_good_cache_file(tmp_path, monkeypatch, store):
    """The preset is tried first; when it is damaged the cache file (trained once) is served,
    instead of a retrain on every visit."""
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    monkeypatch.setenv("GENLIB_PRETRAINED", str(shipped))
    s = spec(4)
    trained = run(s)
    assert trained.result.status == "ok" and ck.cache_path(s.key()).is_file()
    (shipped / f"{s.key()}.pt").write_bytes(b"garbage")
    again = cached_run(s)
    assert again is not None and again.source == "cache"
    for a, b in zip(
        again.model.state_dict().values(), trained.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert (shipped / f"{s.key()}.pt").read_bytes() == b"garbage"  # never deleted


def test_discard_keeps_a_file_another_replica_replaced_meanwhile(store):
    s = spec(4)
    path = cache_path(s.key())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"bad")
    seen = file_identity(path)
    model = build_model(s)
    save_checkpoint(path, model.state_dict(), s.to_dict(), GOOD_META)  # the other replica
    assert not discard(path, seen) and path.exists()
    # no file when the reader looked (another replica discarded it): the new one is kept too
    assert not discard(path, None) and path.exists()
    assert load_trained(s).source == "cache"
    assert discard(path, file_identity(path)) and not path.exists()


def test_stale_temp_files_are_swept_on_first_use(tmp_path, monkeypatch):
    d = tmp_path / "fresh-store"
    d.mkdir()
    old = [d / "tmpa1b2.tmp", d / "tmpzz.tmp"]
    young = d / "tmpyoung.tmp"
    other = d / "notes.tmp"
    for p in [*old, young, other]:
        p.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    for p in [*old, other]:
        os.utime(p, (hour_ago, hour_ago))
    monkeypatch.setenv("GENLIB_CACHE", str(d))
    ck.cache_dir()  # the first use of this folder in the process sweeps it
    assert [p.exists() for p in old] == [False, False]
    assert young.exists() and other.exists()  # a write in progress; not ours
    assert sweep_stale_temp(d, max_age_s=0) == 1 and not young.exists()


def test_two_servers_share_one_store(store, repo_root):
    """Server A (another process) trains; server B (this one, its own queue) serves the result
    from the shared store without training."""
    s = spec(5, steps=60)
    code = (
        "import sys; from genlib.jobs import JobQueue; from genlib.runs import RunSpec\n"
        "s = RunSpec.from_preset('autoregressive', 'moons', seed=5, steps=60, data_size=500)\n"
        "q = JobQueue(1); j = q.submit(s); assert j.wait(120), 'timeout'\n"
        "assert j.state == 'done' and j.result.source == 'trained', (j.state, j.error)\n"
        "print(s.key())\n"
    )
    env = {**os.environ, "GENLIB_CACHE": str(store)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, env=env, capture_output=True, timeout=180
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert out.stdout.decode().split()[-1] == s.key()
    q = JobQueue(1)
    try:
        t0 = time.monotonic()
        job = q.submit(s)
        assert job.wait(30) and job.state == "done"
        assert job.result.source == "cache" and job.result.result.steps_done == 60
        assert time.monotonic() - t0 < 10  # loaded, not trained again
        stored = load_checkpoint(cache_path(s.key()))
        assert job.result.result.seconds == stored["meta"]["seconds"]  # the stored run
        w = job.result.model.state_dict()
        assert all(torch.equal(stored["state_dict"][k], w[k].cpu()) for k in w)
    finally:
        q.shutdown()


def _writer(path: Path, s: RunSpec, wid: int, n: int, seconds: float) -> None:
    """A replica writing its own weights (all equal to ``wid``) to one key, at least ``n`` times
    and for at least ``seconds`` (the reader overlaps the writes however fast they are)."""
    try:
        model = build_model(s)
        state = {k: torch.full_like(v, float(wid)) for k, v in model.state_dict().items()}
        end, i = time.monotonic() + seconds, 0
        while i < n or time.monotonic() < end:
            save_checkpoint(path, state, s.to_dict(), GOOD_META)
            i += 1
    finally:
        os._exit(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_concurrent_writers_of_one_key_never_leave_a_corrupt_file(store):
    s = spec(6)
    path = cache_path(s.key())
    path.parent.mkdir(parents=True, exist_ok=True)
    model = build_model(s)
    save_checkpoint(path, {k: torch.zeros_like(v) for k, v in model.state_dict().items()},
                    s.to_dict(), GOOD_META)  # fmt: skip
    pids = []
    for wid in (1, 2, 3):
        pid = os.fork()
        if pid == 0:
            _writer(path, s, wid, 40, 1.5)
        pids.append(pid)
    loads, seen, alive = 0, set(), set(pids)
    while alive:
        alive = {p for p in alive if os.waitpid(p, os.WNOHANG) == (0, 0)}
        obj = load_checkpoint(path, require_checksum=True)  # never half a file
        values = {float(v.reshape(-1)[0]) for v in obj["state_dict"].values() if v.numel()}
        assert len(values) == 1  # one writer's complete weights, never a mix
        seen |= values
        loads += 1
    obj = load_checkpoint(path, require_checksum=True)
    assert {float(v.reshape(-1)[0]) for v in obj["state_dict"].values()} <= {1.0, 2.0, 3.0}
    assert loads > 5 and len(seen) >= 2, (loads, seen)
    assert not list(path.parent.glob("tmp*.tmp"))  # every writer cleaned up after itself
