"""Training jobs: queue order and positions, one job per spec, stop keeps the partial model,
pause / single steps / slow motion, idle jobs stopped, live frames, determinism."""

from __future__ import annotations

import time

import pytest
import torch

from genlib.jobs import JobQueue
from genlib.lab.live import LiveView, live_view_for
from genlib.runs import RunSpec, TargetSpec, run

FAMILY = "autoregressive"  # the fastest family: hundreds of steps per second on one CPU thread


def spec(steps: int = 400, seed: int = 0, **kw) -> RunSpec:
    return RunSpec.from_preset(FAMILY, "moons", steps=steps, seed=seed, data_size=2000, **kw)


@pytest.fixture
def queue():
    made: list[JobQueue] = []

    def make(workers: int = 2, **kw) -> JobQueue:
        q = JobQueue(workers, use_cache=False, live_fn=live_view_for, **kw)
        made.append(q)
        return q

    yield make
    for q in made:
        q.shutdown()


def wait_until(cond, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.02)


def test_same_spec_attaches_to_one_job(queue):
    q = queue(2)
    a = q.submit(spec(), "alice")
    b = q.submit(spec(), "bob")
    assert a is b
    assert q.stats()["running"] + q.stats()["queued"] == 1
    assert a.wait(120)
    assert a.state == "done" and a.result.result.steps_done == 400


def test_fifo_queue_positions_and_bounded_workers(queue):
    q = queue(1)
    jobs = [q.submit(spec(steps=300, seed=s), f"user{s}") for s in range(3)]
    wait_until(lambda: jobs[0].state == "running")
    assert q.stats() == {"workers": 1, "running": 1, "queued": 2, "kept": 3}
    assert [q.position(j) for j in jobs] == [None, 1, 2]
    assert q.progress(jobs[2]).position == 2
    for j in jobs:
        assert j.wait(120)
    assert [j.state for j in jobs] == ["done"] * 3
    # FIFO: each started after the previous one finished
    assert jobs[0]._finished <= jobs[1]._started <= jobs[1]._finished <= jobs[2]._started


def test_stop_keeps_the_partial_model_and_is_quick(queue):
    q = queue(1)
    j = q.submit(spec(steps=200_000))
    wait_until(lambda: j.progress().step >= 120)
    t0 = time.monotonic()
    j.stop("stopped in a test")
    assert j.wait(5)
    assert time.monotonic() - t0 < 1.0
    assert j.state == "stopped"
    res = j.result.result
    assert res.status == "stopped" and 120 <= res.steps_done < 200_000
    assert "stopped in a test" in res.message and j.stop_reason == "user"
    with torch.no_grad():
        x = j.result.model.sample(500, generator=torch.Generator().manual_seed(0))
    assert x.shape == (500, 2) and torch.isfinite(x).all()


def test_stopping_a_queued_job_frees_its_place(queue):
    q = queue(1)
    first = q.submit(spec(steps=200_000, seed=1))
    second = q.submit(spec(steps=300, seed=2))
    wait_until(lambda: first.state == "running")
    assert q.position(second) == 1
    second.stop()
    assert second.state == "stopped" and second.result is None
    assert q.position(second) is None and q.stats()["queued"] == 0
    first.stop()
    assert first.wait(5)


def test_pause_step_resume(queue):
    q = queue(1)
    j = q.submit(spec(steps=100_000))
    wait_until(lambda: j.progress().step >= 60)
    j.pause()
    time.sleep(0.3)
    s0 = j.progress().step
    time.sleep(0.4)
    assert j.progress().step == s0 and j.progress().paused
    frames_before = len(j.frames())
    j.step(7)
    wait_until(lambda: j.progress().step == s0 + 7, timeout=10)
    time.sleep(0.3)
    assert j.progress().step == s0 + 7  # exactly k more steps, then paused again
    wait_until(lambda: len(j.frames()) > frames_before, timeout=10)  # a frame of where it got
    assert j.frames()[-1].step == s0 + 7
    j.resume()
    wait_until(lambda: j.progress().step > s0 + 50, timeout=20)
    j.stop()
    assert j.wait(5)


def test_slow_motion_caps_the_rate(queue):
    q = queue(1)
    j = q.submit(spec(steps=100_000))
    wait_until(lambda: j.progress().step >= 20)
    j.set_rate(25.0)
    s0, t0 = j.progress().step, time.monotonic()
    time.sleep(1.2)
    rate = (j.progress().step - s0) / (time.monotonic() - t0)
    assert rate <= 35.0
    j.set_rate(None)
    j.stop()
    assert j.wait(5)


def test_unwatched_jobs_are_stopped(queue):
    q = queue(1, idle_timeout_s=1.0)
    running = q.submit(spec(steps=200_000, seed=3))
    waiting = q.submit(spec(steps=200_000, seed=4))
    assert running.wait(6) and running.state == "stopped"
    assert "nobody watched" in running.result.result.message
    assert running.stop_reason == "idle" and waiting.stop_reason in (None, "idle")
    wait_until(lambda: waiting.state == "stopped", timeout=6)
    assert q.stats()["running"] == 0 and q.stats()["queued"] == 0


def test_watched_jobs_keep_running(queue):
    q = queue(1, idle_timeout_s=1.0)
    j = q.submit(spec(steps=200_000, seed=5))
    for _ in range(12):
        j.touch("viewer")
        time.sleep(0.2)
    assert j.state == "running"
    j.stop()
    assert j.wait(5)


def test_live_frames_show_the_current_model(queue):
    q = queue(1)
    j = q.submit(spec(steps=600))
    assert j.wait(120)
    frames = j.frames()
    assert len(frames) >= 2
    assert frames[0].step == 0 and frames[-1].step == 600
    steps = [f.step for f in frames]
    assert steps == sorted(steps)
    v = frames[-1].view
    assert isinstance(v, LiveView) and v.samples.shape[1] == 2 and len(v.samples) > 100
    assert v.grid_kind == "log_q" and v.grid.shape == (v.grid_res**2,)


def test_live_frames_do_not_change_the_trained_model(queue):
    """Frames draw with their own generator: the job trains exactly what ``run`` trains."""
    q = queue(1)
    s = spec(steps=300, seed=11)
    j = q.submit(s)
    assert j.wait(120) and len(j.frames()) >= 2
    ref = run(s, use_cache=False)
    for a, b in zip(
        j.result.model.state_dict().values(), ref.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_a_failing_job_says_why(queue):
    q = queue(1)
    # the spec's types are valid; the target's factory refuses std = -1 when the job builds it
    bad = RunSpec.from_preset(FAMILY, TargetSpec("two_peaks", (("std", -1.0),)), steps=50)
    j = q.submit(bad)
    assert j.wait(30)
    assert j.state == "failed" and j.error
    assert q.stats()["running"] == 0
