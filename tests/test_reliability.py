"""Crashes and bad checkpoints: ``kill -9`` of a process while it writes checkpoints or trains
leaves no corrupt or partial checkpoint (at most a temp file that the sweep removes) and the next
run succeeds; a truncated, random or code-carrying checkpoint planted under the key a page uses is
refused (nothing executes), replaced, and the page shows a result.

``GENLIB_KILL_LOOPS`` scales the kill loops (the slow variants run more)."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genlib import checkpoints
from genlib.checkpoints import cache_path, load_checkpoint, save_checkpoint, sweep_stale_temp
from genlib.runs import RunSpec, build_model, load_trained, result_meta, run
from genlib.training import TrainResult
from tests.test_replicas import KINDS, bad_files

PAGE = "pages/autoregressive.py"
P = "autoregressive"
SEED = 91_001  # the page tests' own runs (other tests' checkpoints share the session cache)
META = result_meta(TrainResult(steps_done=20, history=[{"step": 20.0, "loss": 1.0}]))


def loops(default: int) -> int:
    return max(1, int(os.environ.get("GENLIB_KILL_LOOPS", default)))


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "store"
    d.mkdir()
    monkeypatch.setenv("GENLIB_CACHE", str(d))
    return d


def check_store(store: Path) -> tuple[int, int]:
    """Every ``*.pt`` in the store is a complete checkpoint with a valid checksum; returns
    (checkpoints, temp leftovers)."""
    pts = sorted(store.glob("*.pt"))
    for p in pts:
        load_checkpoint(p, require_checksum=True)
    return len(pts), len(list(store.glob("tmp*.tmp")))


# --- kill -9 during checkpoint writes ----------------------------------------------------------
def _write_forever(path: Path, s: RunSpec, ready: int) -> None:
    """A child that writes checkpoints of ``s`` (different weights each time) until killed; it
    writes a byte to the pipe ``ready`` once its first checkpoint is complete."""
    try:
        base = build_model(s).state_dict()
        i = 0
        while True:
            i += 1
            state = {k: v * (1 + i % 7) if v.is_floating_point() else v for k, v in base.items()}
            save_checkpoint(path, state, s.to_dict(), META)
            if i == 1:
                os.write(ready, b"1")
                os.close(ready)
    finally:
        os._exit(0)


def fork_writer(path: Path, s: RunSpec) -> int:
    """A writing child, once it has written one checkpoint (however loaded the machine is):
    a kill after that lands in its write loop."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _write_forever(path, s, w)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 120)
        if not ready or os.read(r, 1) != b"1":
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the writing child did not write a checkpoint within 120 s")
    finally:
        os.close(r)
    return pid


def kill_writes(store: Path, n: int, seed: int = 0) -> dict[str, int]:
    s = RunSpec.from_preset("autoregressive", "moons", seed=11, steps=20, data_size=500)
    path = cache_path(s.key())
    rnd = random.Random(seed)
    counts = {"kills": 0, "mid_write": 0, "files": 0}
    for _ in range(n):
        pid = fork_writer(path, s)
        time.sleep(rnd.uniform(0.0, 0.1))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        counts["kills"] += 1
        files, temps = check_store(store)  # never a corrupt or partial .pt
        counts["files"] = files
        counts["mid_write"] += temps > 0  # the kill landed inside a write
        if files:
            assert load_trained(s).source == "cache"
        sweep_stale_temp(store, max_age_s=0)
    assert check_store(store)[1] == 0  # the sweep removed every leftover
    fresh = run(s)  # the next run succeeds (from the store)
    assert fresh.result.status == "ok"
    return counts


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kill_9_during_checkpoint_writes(store, capsys):
    counts = kill_writes(store, loops(12))
    with capsys.disabled():
        print(f"\nkill -9 during checkpoint writes: {counts}")
    assert counts["kills"] >= 1 and counts["files"] == 1


def _write_stuck(path: Path, s: RunSpec) -> None:
    """A child whose write stops after the bytes are in the temp file, before the rename."""
    try:
        checkpoints.os.fsync = lambda fd: time.sleep(3600)  # this (forked) process only
        state = {k: v + 1 for k, v in build_model(s).state_dict().items()}
        save_checkpoint(path, state, s.to_dict(), META)
    finally:
        os._exit(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kill_9_inside_a_checkpoint_write(store):
    """Deterministic: the kill lands between the temp file's bytes and the rename; the old
    checkpoint stays, complete, and the leftover is swept only once it is old."""
    s = RunSpec.from_preset("autoregressive", "moons", seed=13, steps=20, data_size=500)
    path = save_checkpoint(cache_path(s.key()), build_model(s).state_dict(), s.to_dict(), META)
    before = path.read_bytes()
    pid = os.fork()
    if pid == 0:
        _write_stuck(path, s)
    try:
        t0 = time.monotonic()
        while not [p for p in store.glob("tmp*.tmp") if p.stat().st_size > 0]:
            assert time.monotonic() - t0 < 120, "the child never started its write"
            time.sleep(0.02)
        time.sleep(0.1)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert path.read_bytes() == before  # the target was never touched
    assert check_store(store) == (1, 1)  # complete, checksum ok; one leftover temp file
    assert sweep_stale_temp(store) == 0  # young: it could be another replica's write
    assert sweep_stale_temp(store, max_age_s=0) == 1 and check_store(store) == (1, 0)
    assert load_trained(s).source == "cache"


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kill_9_during_checkpoint_writes_many(store, capsys):
    counts = kill_writes(store, loops(200), seed=1)
    with capsys.disabled():
        print(f"\nkill -9 during checkpoint writes (long loop): {counts}")
    assert counts["mid_write"] >= 1  # some kills hit a write and still left a good file


# --- kill -9 during training (the command line) ------------------------------------------------
def cli_train(store: Path, out: Path, steps: int, repo_root: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "genlib", "train", P, "moons", "--steps", str(steps)]
    cmd += ["--seed", "3", "--out", str(out)]
    env = {**os.environ, "GENLIB_CACHE": str(store)}
    return subprocess.Popen(
        cmd, cwd=repo_root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def kill_training(store: Path, tmp_path: Path, repo_root: Path, n: int) -> int:
    rnd = random.Random(2)
    for i in range(n):
        out = tmp_path / f"out{i}"
        proc = cli_train(store, out, 5000, repo_root)
        if not select.select([proc.stderr], [], [], 300)[0]:
            proc.kill()
            pytest.fail("the CLI printed no progress within 300 s")
        line = proc.stderr.readline()  # "step 500 loss ...": it is training now
        assert line.startswith(b"step"), line + proc.stderr.read()
        time.sleep(rnd.uniform(0.0, 1.0))
        assert proc.poll() is None  # still training when killed
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        assert not out.exists()  # --out appears only complete (atomic output folder)
        check_store(store)
        sweep_stale_temp(store, max_age_s=0)
    done = cli_train(store, tmp_path / "out-final", 30, repo_root)  # the next run succeeds
    _, err = done.communicate(timeout=180)
    assert done.returncode == 0, err.decode()[-2000:]
    files, temps = check_store(store)
    assert files >= 1 and temps == 0
    return n


def test_kill_9_during_training(store, tmp_path, repo_root):
    kill_training(store, tmp_path, repo_root, loops(1))


@pytest.mark.slow
def test_kill_9_during_training_many(store, tmp_path, repo_root, capsys):
    n = kill_training(store, tmp_path, repo_root, loops(6))
    with capsys.disabled():
        print(f"\nkill -9 during training: {n} kills, store clean, next run ok")


# --- a bad checkpoint under the key a page uses ------------------------------------------------
def open_page(app_test, seed: int):
    """The page with a short run of its default model under ``seed`` (a key of this test's)."""
    at = app_test(page=PAGE)
    at.number_input(key=f"{P}_steps").set_value(40)
    at.number_input(key=f"{P}_seed").set_value(seed)
    at.button(key=f"{P}_apply").click().run()
    assert not at.exception, at.exception
    return at


def restart_server() -> None:
    """What a restarted server forgets: loaded checkpoints and jobs."""
    from genlib.jobs import reset_default_queue
    from genlib.ui.live import forget_loaded

    forget_loaded()
    reset_default_queue()


def page_key(app_test, train_in_app, seed: int) -> tuple[str, RunSpec]:
    at = train_in_app(open_page(app_test, seed), P)
    (key, job), *_ = at.session_state["_genlib_jobs"].items()
    assert job.state == "done" and cache_path(key).is_file()
    return key, job.spec


def shows_result(at, chart_keys) -> bool:
    return f"{P}_result_fig" in chart_keys(at)


def test_a_code_carrying_checkpoint_on_a_page_is_refused_and_replaced(
    app_test, train_in_app, chart_keys, genlib_cache, tmp_path
):
    key, s = page_key(app_test, train_in_app, SEED)
    marker = tmp_path / "marker"
    cache_path(key).write_bytes(bad_files(s, marker)["torch_zip_with_code"])
    restart_server()
    at = open_page(app_test, SEED)
    assert not at.exception and not at.error
    assert not shows_result(at, chart_keys) and at.button(key=f"{P}_train")
    assert not cache_path(key).exists()  # discarded when the page tried it
    train_in_app(at, P)  # retrained and replaced
    assert shows_result(at, chart_keys) and not at.exception
    assert load_trained(s).source == "cache"
    restart_server()
    assert shows_result(open_page(app_test, SEED), chart_keys)  # served from the replacement
    assert not marker.exists()


@pytest.mark.slow
def test_every_bad_checkpoint_on_a_page_is_refused(
    app_test, train_in_app, chart_keys, genlib_cache, tmp_path
):
    key, s = page_key(app_test, train_in_app, SEED + 1)
    good = cache_path(key).read_bytes()
    marker = tmp_path / "marker"
    for kind, data in bad_files(s, marker).items():
        cache_path(key).write_bytes(data)
        restart_server()
        at = open_page(app_test, SEED + 1)
        assert not at.exception and not at.error, kind
        assert not shows_result(at, chart_keys), kind
        assert not cache_path(key).exists(), kind
        cache_path(key).write_bytes(good)  # a good file is served again
        restart_server()
        assert shows_result(open_page(app_test, SEED + 1), chart_keys), kind
    assert not marker.exists()
    assert KINDS == list(bad_files(s, marker))  # every kind was tried


# --- a paused job's single steps (thread executor) -------------------------------------------
@pytest.mark.parametrize("live", ["none", "failing"])
def test_single_steps_of_a_paused_job_without_a_working_live_view(live):
    """Pausing after single steps shows a frame of where they led; with no live view, or one
    that raises, that must not recurse until the job dies."""
    from genlib.jobs import JobQueue

    def failing(spec):
        def view(model, target, generator):
            raise RuntimeError("no view")

        return view

    s = RunSpec.from_preset("autoregressive", "moons", seed=12, steps=5000, data_size=500)
    q = JobQueue(1, use_cache=False, live_fn=failing if live == "failing" else None)
    try:
        job = q.submit(s)
        job.pause()
        job.step(5)
        t0 = time.monotonic()
        while job.progress().step < 5 and job.active:
            assert time.monotonic() - t0 < 30
            time.sleep(0.02)
        time.sleep(0.3)
        assert job.state == "running" and job.progress().step == 5, job.error
        job.stop()
        assert job.wait(10) and job.state == "stopped" and job.result.result.steps_done == 5
    finally:
        q.shutdown()
