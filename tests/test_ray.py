"""The Ray executor (``GENLIB_EXECUTOR=ray``) on a real local Ray with one CPU, started and
stopped by this module: the same seeded run trains the same model as the thread executor, the
result lands in the shared checkpoint store, and progress, live frames, Pause / Step / slow
motion / Stop work through the actor."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from genlib.checkpoints import cache_path, load_checkpoint
from genlib.jobs import JobQueue
from genlib.runs import RunSpec

ray = pytest.importorskip("ray", reason="Ray is a dependency (requirements.txt)")
# the live views below are defined here: ship them to the workers by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def ray_executor():
    """The app's own start path (``ensure_ray``: a local Ray, ``GENLIB_RAY_CPUS=1``, no
    dashboard), from a thread that ends (as a page's script run does); shut down after the
    module."""
    from genlib.executors import RayExecutor

    old = os.environ.get("GENLIB_RAY_CPUS")
    os.environ["GENLIB_RAY_CPUS"] = "1"
    made: list[RayExecutor] = []
    # started from a thread that ends, like a Streamlit script run
    starter = threading.Thread(target=lambda: made.append(RayExecutor()))
    starter.start()
    starter.join(120)
    try:
        assert made, "Ray did not start"
        yield made[0]
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("GENLIB_RAY_CPUS", None)
        else:
            os.environ["GENLIB_RAY_CPUS"] = old


def live(model, target, generator):  # a small live view: the current samples
    with torch.no_grad():
        return model.sample(50, generator=generator).cpu()


def until(cond, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "condition not reached"
        time.sleep(0.02)


def test_ray_trains_the_same_model_and_stores_it(ray_executor, genlib_cache):
    spec = RunSpec.from_preset("autoregressive", "moons", seed=5, steps=100, data_size=500)
    threads = JobQueue(1, use_cache=False, live_fn=lambda s: live)
    remote = JobQueue(1, live_fn=lambda s: live, executor=ray_executor)
    try:
        assert remote.max_workers == 1  # one training per Ray CPU
        jt = threads.submit(spec)
        jr = remote.submit(spec)
        assert jt.wait(60) and jr.wait(60)
        assert (jt.state, jr.state) == ("done", "done"), (jt.error, jr.error)
        a, b = jt.result.model.state_dict(), jr.result.model.state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k].to(a[k].device)) for k in a)
        assert jr.result.result.steps_done == 100 and jr.result.source == "trained"
        # progress, history and live frames came back from the worker
        assert [r["step"] for r in jr.history] == [r["step"] for r in jt.history]
        assert jr.progress().step == 100 and jr.frames()
        assert all(f.view.shape == (50, 2) for f in jr.frames())
        # the worker wrote the complete run to the shared store, with its checksum
        ck = load_checkpoint(cache_path(spec.key()), require_checksum=True)
        assert all(torch.equal(ck["state_dict"][k], a[k].cpu()) for k in a)
        # a second submit is served from the store, without a worker
        again = JobQueue(1, executor=ray_executor)
        try:
            j2 = again.submit(spec)
            assert j2.wait(30) and j2.state == "done" and j2.result.source == "cache"
        finally:
            again.shutdown()
    finally:
        threads.shutdown()
        remote.shutdown()


def broken_view(spec):
    def view(model, target, generator):
        raise RuntimeError("no view")

    return view


def test_pause_step_rate_and_stop_through_ray(ray_executor):
    spec = RunSpec.from_preset("autoregressive", "moons", seed=6, steps=20_000, data_size=1000)
    q = JobQueue(1, use_cache=False, live_fn=broken_view, executor=ray_executor)
    try:
        job = q.submit(spec)
        job.pause()
        until(lambda: job.state == "running")
        # the job's actor holds the local Ray's only CPU while it lives
        until(lambda: ray.available_resources().get("CPU", 0.0) == 0.0)
        time.sleep(1.0)
        assert job.progress().step == 0  # paused before the first step
        # a live view that fails in the worker is reported, and the training goes on
        until(lambda: "live view unavailable: no view" in job.progress().message)
        job.step(7)
        until(lambda: job.progress().step == 7)
        time.sleep(0.5)
        assert job.progress().step == 7  # exactly the single steps asked for
        job.set_rate(40.0)
        job.resume()
        until(lambda: job.progress().step > 7)  # resumed
        t0, s0 = time.monotonic(), job.progress().step
        time.sleep(2.0)
        rate = (job.progress().step - s0) / (time.monotonic() - t0)
        assert 2 < rate < 80, rate  # slow motion: about 40 steps/s, not thousands
        job.set_rate(None)
        t_stop = time.monotonic()
        job.stop()
        assert job.wait(30)
        assert time.monotonic() - t_stop < 10  # the stop reaches the worker quickly
        assert job.state == "stopped" and job.stop_reason == "user"
        res = job.result
        assert 7 < res.result.steps_done < 20_000 and res.result.status == "stopped"
        assert all(torch.isfinite(p).all() for p in res.model.parameters())
        # the actor is gone with its job: its CPU is free again
        until(lambda: ray.available_resources().get("CPU", 0.0) == 1.0)
    finally:
        q.shutdown()


def test_a_job_stopped_as_its_actor_starts_ends_stopped(ray_executor):
    """A Stop that reaches the actor before its training began (its copy of the job is still
    queued) ends the job as stopped, not failed, and frees the actor."""
    spec = RunSpec.from_preset("autoregressive", "moons", seed=8, steps=20_000, data_size=500)
    q = JobQueue(1, use_cache=False, executor=ray_executor)
    try:
        job = q.submit(spec)
        until(lambda: job.state == "running")  # the server's job runs: the actor is starting
        job.stop()
        assert job.wait(60)
        assert job.state == "stopped", (job.state, job.error)
        assert job.result is not None and job.result.result.status == "stopped"
        until(lambda: ray.available_resources().get("CPU", 0.0) == 1.0)
    finally:
        q.shutdown()


def test_the_thread_executor_does_not_import_ray(repo_root):
    code = (
        "import sys, genlib.jobs, genlib.runs, genlib.checkpoints; "
        "q = genlib.jobs.default_queue(); assert q.executor is None; "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    env = {**os.environ, "GENLIB_EXECUTOR": "thread"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, env=env, capture_output=True, timeout=120
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]


def test_a_page_trains_through_ray(ray_executor, monkeypatch, app_test, train_in_app, chart_keys):
    """The app with ``GENLIB_EXECUTOR=ray``: the server's queue drives a Ray actor and the page
    shows the live panel, then the result."""
    from genlib.jobs import default_queue, reset_default_queue

    monkeypatch.setenv("GENLIB_EXECUTOR", "ray")
    reset_default_queue()
    at = app_test(page="pages/autoregressive.py")
    at.number_input(key="autoregressive_steps").set_value(60)
    at.number_input(key="autoregressive_seed").set_value(77_001)
    at.button(key="autoregressive_apply").click().run()
    assert type(default_queue().executor).__name__ == "RayExecutor"
    train_in_app(at, "autoregressive")
    assert not at.exception and not at.error
    assert "autoregressive_result_fig" in chart_keys(at)
    (job,) = at.session_state["_genlib_jobs"].values()
    assert job.state == "done" and job.result.source == "trained" and job.history
