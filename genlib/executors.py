"""Where jobs train: the default thread executor (``genlib.jobs`` workers train in the server
process) or Ray (``GENLIB_EXECUTOR=ray``): each training runs in a Ray actor, a worker process of
a local Ray the server starts or of an existing cluster, so a class's trainings use every core
(or node) instead of one Python process.

The job object stays in the server: its queue thread drives the actor and mirrors it. The actor
runs a copy of the job (``Job.worker_factory()``: the same spec, live view and evaluation) on the
common training loop; every ``POLL_S`` the server thread sends the controls the page set (Stop,
Pause, Step, slow motion: ``Job.take_controls()``) and gets back the new steps, logged rows and live
frames (``Job.report``). A complete run is written to the checkpoint store by the worker
(``genlib.runs.finish``) and the server loads it from there (``GENLIB_CACHE`` must be shared by
the server and the cluster's nodes); a stopped or diverged run comes back with its weights. The
same seeded spec trains the same model on both executors (the worker gets the server's
``GENLIB_*`` settings, e.g. the thread count).

Environment:

- ``GENLIB_EXECUTOR``: ``thread`` (default) or ``ray``;
- ``GENLIB_RAY_ADDRESS``: an existing cluster (``ray://head:10001`` or ``auto``); unset: a local
  Ray is started with ``GENLIB_RAY_CPUS`` CPUs (default: every core);
- ``GENLIB_RAY_GPUS``: GPUs per training when the cluster has GPUs (default 0.25: small 2D models
  share a GPU; 0: train on CPUs only);
- ``GENLIB_RAY_WORKING_DIR``: ship this folder to the cluster's workers (``runtime_env``), when
  GenLab is not installed on the nodes.

Ray is imported only when this executor is used (the app and the tests do not pay for it).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from genlib.checkpoints import CheckpointError
from genlib.limits import env_float
from genlib.runs import (
    RunSpec,
    Trained,
    load_trained,
    prepare,
    result_meta,
    trained_from_state,
)
from genlib.training import TrainResult

__all__ = [
    "ThreadExecutor",
    "RayExecutor",
    "JobHandle",
    "executor_from_env",
    "ensure_ray",
    "POLL_S",
    "STOP_GRACE_S",
]

POLL_S = 0.1  # how often the server thread exchanges controls and progress with the actor
STOP_GRACE_S = 10.0  # a stopped job whose actor has not answered by then is killed
ROOT = Path(__file__).resolve().parent.parent
#: environment variables a worker takes from the server (seeded runs must match bit for bit)
PASSED_ENV_PREFIXES = ("GENLIB_", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class JobHandle(Protocol):
    """What an executor needs of a ``genlib.jobs.Job`` (the job lives in the server)."""

    spec: RunSpec | None

    def worker_factory(self) -> Callable[[], Any]: ...

    def take_controls(self) -> dict[str, Any]: ...

    def report(
        self, step: int, rows: list[Any], frames: list[Any], phase: str, message: str = ""
    ) -> None: ...


class ThreadExecutor:
    """The default: a job trains in the queue's worker thread (``genlib.jobs.Job.run``)."""

    name = "thread"

    def slots(self) -> int | None:
        return None  # GENLIB_MAX_TRAININGS (default 2)


def executor_from_env() -> RayExecutor | None:
    """The executor ``GENLIB_EXECUTOR`` names (``None``: train in the server's threads)."""
    name = os.environ.get("GENLIB_EXECUTOR", "thread").strip().lower()
    if name in ("", "thread", "threads", "local"):
        return None
    if name == "ray":
        return RayExecutor()
    raise ValueError(f"GENLIB_EXECUTOR must be 'thread' or 'ray', not {name!r}")


_RAY_LOCK = threading.Lock()


def ensure_ray() -> Any:
    """The ``ray`` module, connected: to ``GENLIB_RAY_ADDRESS`` or to a local Ray started now
    (``GENLIB_RAY_CPUS`` CPUs, no dashboard); a session already connected (a test's) is kept."""
    import ray  # lazy: only the Ray executor needs it

    with _RAY_LOCK:
        if not ray.is_initialized():
            path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
            runtime_env: dict[str, Any] = {
                "env_vars": {"PYTHONPATH": os.pathsep.join(p for p in path if p)}
            }
            wd = os.environ.get("GENLIB_RAY_WORKING_DIR")
            if wd:
                runtime_env["working_dir"] = wd
            kwargs: dict[str, Any] = {"runtime_env": runtime_env, "log_to_driver": False}
            address = os.environ.get("GENLIB_RAY_ADDRESS", "").strip()
            if address:
                kwargs["address"] = address
            else:
                cpus = os.environ.get("GENLIB_RAY_CPUS")
                kwargs["num_cpus"] = int(cpus) if cpus else None
                kwargs["include_dashboard"] = False
            _init_in_keeper(ray, kwargs)
    return ray


def _init_in_keeper(ray: Any, kwargs: dict[str, Any]) -> None:
    """``ray.init`` in a thread that lives as long as the process: a Ray driver connected from a
    thread that ends (a Streamlit script run) stops getting answers from its actors."""
    done = threading.Event()
    errors: list[BaseException] = []

    def keeper() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)
        finally:
            done.set()
        if not errors:
            threading.Event().wait()

    threading.Thread(target=keeper, name="genlib-ray", daemon=True).start()
    done.wait()
    if errors:
        raise errors[0]


class TrainerActor:
    """Runs one job in a Ray worker (``ray.remote`` is applied by ``RayExecutor``; threaded:
    ``run`` trains while ``poll`` answers)."""

    def __init__(
        self, env: dict[str, str], factory: Callable[[], Any], controls: dict[str, Any]
    ) -> None:
        os.environ.update(env)
        os.environ["GENLIB_EXECUTOR"] = "thread"  # the copy trains here, in this process
        self.job = factory()
        self.rows_sent = 0
        self.last_frame: Any = None
        # the controls set before the actor started (a job paused before its first step): a
        # threaded actor may start ``run`` before the first ``poll``, so they apply here
        self._apply(controls)

    def run(self) -> dict[str, Any]:
        """Train (the copy's ``run``: cache check, training, evaluation, cache write) and return
        the outcome: the state and, unless it failed, the weights and the stored metadata."""
        job = self.job
        job.run()
        out: dict[str, Any] = {"state": job.state, "error": job.error}
        trained = job.result
        if trained is not None:
            meta = result_meta(trained.result)
            if trained.metrics is not None:
                meta["metrics"] = dict(trained.metrics)
            out["source"] = trained.source
            out["meta"] = meta
            out["state_dict"] = {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
        return out

    def _apply(self, controls: dict[str, Any]) -> None:
        job = self.job
        if controls.get("stop"):
            job.stop(controls.get("message", ""), reason=controls.get("reason") or "user")
        if "rate" in controls:
            job.set_rate(controls["rate"])
        if controls.get("paused"):
            job.pause()
            if controls.get("budget", 0) > 0:
                job.step(int(controls["budget"]))
        elif "paused" in controls:
            job.resume()

    def poll(self, controls: dict[str, Any]) -> dict[str, Any]:
        """Apply the server's controls; return the progress and the rows and frames that are
        new since the last poll."""
        job = self.job
        self._apply(controls)
        p = job.progress()
        history = job.history
        rows = history[self.rows_sent :]
        self.rows_sent = len(history)
        frames = job.frames()  # the ring drops old frames: new ones follow the last one sent
        last = next((i for i, f in enumerate(frames) if f is self.last_frame), None)
        new = frames if last is None else frames[last + 1 :]
        if new:
            self.last_frame = new[-1]
        return {
            "state": p.state,
            "step": p.step,
            "phase": p.phase,
            "rows": rows,
            "frames": new,
            "message": p.message,
        }


class RayExecutor:
    """Train jobs in Ray actors (see the module doc). One actor per job, removed when it ends."""

    name = "ray"

    def __init__(self, gpus_per_job: float | None = None) -> None:
        self.ray = ensure_ray()
        self._actor_cls: Any = None
        gpus = self.ray.cluster_resources().get("GPU", 0.0)
        want = (
            env_float("GENLIB_RAY_GPUS", 0.25, 0.0, 1.0) if gpus_per_job is None else gpus_per_job
        )
        self.gpus_per_job = max(0.0, min(float(want), 1.0)) if gpus > 0 else 0.0

    def slots(self) -> int | None:
        """Trainings at once by default: the cluster's CPUs (one per training), or fewer when
        each takes a GPU share (more would wait for a GPU while their jobs look running)."""
        res = self.ray.cluster_resources()
        n = int(res.get("CPU", 1))
        if self.gpus_per_job > 0:
            n = min(n, int(res.get("GPU", 0.0) / self.gpus_per_job + 1e-9))
        return max(1, n)

    def _actor(self) -> Any:
        if self._actor_cls is None:
            self._actor_cls = self.ray.remote(max_concurrency=2)(TrainerActor)
        return self._actor_cls

    def train(self, job: JobHandle) -> Trained:
        """Train ``job`` in an actor while mirroring it (blocks the queue's worker thread)."""
        ray = self.ray
        spec = job.spec
        assert spec is not None
        env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV_PREFIXES)}
        actor = (
            self._actor()
            .options(num_cpus=1, num_gpus=self.gpus_per_job)
            .remote(env, job.worker_factory(), job.take_controls())
        )
        try:
            return self._drive(job, spec, actor)
        except ray.exceptions.RayError as exc:  # a worker died (killed, out of memory, ...)
            raise RuntimeError(f"the Ray worker failed: {_last_line(exc)}") from None
        finally:
            with contextlib.suppress(Exception):  # never hide the outcome above
                ray.kill(actor)

    def _drive(self, job: JobHandle, spec: RunSpec, actor: Any) -> Trained:
        ray = self.ray
        run_ref = actor.run.remote()
        stop_asked: float | None = None
        carry = 0  # single steps asked while a poll was on its way
        while True:
            controls = job.take_controls()
            controls["budget"] = controls.get("budget", 0) + carry
            carry = 0
            if controls.get("stop") and stop_asked is None:
                stop_asked = time.monotonic()
            poll_ref = actor.poll.remote(controls)
            t_sent = time.monotonic()
            while True:
                ready, _ = ray.wait([poll_ref], timeout=POLL_S)
                if ready:
                    break
                now = time.monotonic()
                if stop_asked is not None and now - stop_asked > STOP_GRACE_S:
                    # still waiting for a worker (a full cluster): the job never started
                    return _unstarted(spec, "stopped before a worker was free")
                c = job.take_controls()
                carry += c.get("budget", 0)
                if c.get("stop") and stop_asked is None:
                    stop_asked = now
                    break  # send the stop at once
            if not ready:
                continue
            update = ray.get(poll_ref)
            job.report(**_report(update))
            wait = max(0.0, POLL_S - (time.monotonic() - t_sent))
            done, _ = ray.wait([run_ref], timeout=wait)
            if done:
                break
        out = ray.get(run_ref)
        update = ray.get(actor.poll.remote({}))
        job.report(**_report(update))
        return self._result(spec, out)

    @staticmethod
    def _result(spec: RunSpec, out: dict[str, Any]) -> Trained:
        if "state_dict" not in out and out["state"] == "stopped":
            return _unstarted(spec, "stopped before it started")  # stopped as the actor began
        if out["state"] == "failed" or "state_dict" not in out:
            raise RuntimeError(out.get("error") or "the training worker failed")
        source = out.get("source", "trained")
        if out["state"] == "done":
            try:  # the complete run is in the shared store: load it from there
                trained = load_trained(spec)
                trained.source = source
                return trained
            except CheckpointError:
                pass  # a store the cluster does not share (or a read-only one): use the copy
        trained = trained_from_state(spec, out["state_dict"], out["meta"], source, strict=False)
        return trained


def _last_line(exc: BaseException) -> str:
    """The last non-empty line of an exception's text, without terminal colours."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def _report(update: dict[str, Any]) -> dict[str, Any]:
    keys = ("step", "rows", "frames", "phase", "message")
    return {k: update[k] for k in keys if k in update}


def _unstarted(spec: RunSpec, message: str) -> Trained:
    model, target = prepare(spec)
    result = TrainResult(steps_done=0, status="stopped", message=message)
    return Trained(spec, model, target, result)
