"""Training as background jobs: a FIFO queue, a bounded pool of worker threads, live frames.

Training never runs inside a Streamlit script run. A page submits its ``RunSpec``; a worker trains
it on the common loop (``genlib.training.train``) while the page polls the job::

    q = default_queue()                      # one per process; GENLIB_MAX_TRAININGS workers
    job = q.submit(spec, watcher="session-1")
    job.progress()                           # state, step/total, steps/s, ETA, queue position
    job.latest_frame()                       # the family's live view (genlib.lab.live), every k steps
    job.pause(); job.step(10); job.resume(); job.set_rate(20.0); job.stop()
    job.wait(5.0); job.result                # a ``genlib.runs.Trained`` (also when stopped)

- **States**: ``queued → running → done | stopped | diverged | failed``. Pausing is a flag of a
  running job (its slot stays taken).
- **Same spec, one job**: submitting a spec whose job is queued or running attaches to that job
  (the same object is returned) and takes no second slot.
- **Stop keeps the model**: ``stop()`` ends a run before its next step (well within a second),
  and the partial model is the job's ``result`` (status ``stopped``, its steps and loss history).
  Only complete runs with finite weights go to the checkpoint cache (``genlib.runs.finish``).
- **Live frames**: every so often the job evaluates the family's live view on the current model
  (``live_fn(model, target, generator)``), with a time budget: frames take at most
  ``live_fraction`` (default 6 %) of the training time. A bounded ring keeps the last frames.
- **Nobody watching**: pages call ``touch(watcher)`` while they show a job; a queued or running
  job not touched for ``idle_timeout_s`` (``GENLIB_JOB_IDLE_S``, default 120 s) is stopped, so a
  closed tab frees its slot.
- **Randomness**: every job has its own generators (the run's seeds; frames use a generator of
  their own), never the global RNG.

- **Limits of a shared server** (``default_queue``): one queued or running job per session
  (``GENLIB_JOBS_PER_SESSION``, default 1; ``SessionLimitError``), a per-job compute budget in
  sample-steps, steps x batch x max(1, hidden/128) (``GENLIB_JOB_BUDGET``, default 1e8:
  100,000 steps at batch 1,024;
  ``BudgetError`` before it is queued), and a wall-clock cap after which a running job is
  stopped keeping its model (``GENLIB_JOB_MAX_S``, default 1800 s; ``stop_reason == "limit"``).
  With a per-session cap a free worker takes the oldest job whose session has nothing running.

Environment: ``GENLIB_MAX_TRAININGS`` (workers, default 2), ``GENLIB_JOB_IDLE_S``,
``GENLIB_LIVE_FRACTION``, ``GENLIB_LIVE_FRAMES`` (ring size, default 120), ``GENLIB_EXECUTOR``
(``ray``: jobs train in Ray actors, ``genlib.executors``; default: in the worker threads).
"""

from __future__ import annotations

import functools
import math
import os
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch

from genlib.device import make_generator
from genlib.distributions.base import Target2D
from genlib.limits import env_float, env_int
from genlib.models.base import GenerativeModel
from genlib.runs import EVAL_N, RunSpec, Trained, cached_run, finish, prepare
from genlib.training import Control, OnStep, train

__all__ = [
    "JobState",
    "StopReason",
    "ACTIVE_STATES",
    "Progress",
    "LiveFrame",
    "LiveFn",
    "Work",
    "Job",
    "JobQueue",
    "default_queue",
    "reset_default_queue",
    "env_int",
    "env_float",
    "JobLimitError",
    "SessionLimitError",
    "BudgetError",
    "job_cost",
    "Executor",
    "executor_from_env",
]

JobState = Literal["queued", "running", "done", "stopped", "diverged", "failed"]
StopReason = Literal["user", "idle", "shutdown", "limit"]
ACTIVE_STATES: tuple[JobState, ...] = ("queued", "running")
LiveFn = Callable[[GenerativeModel, Target2D, torch.Generator], Any]
Work = Callable[[OnStep, Control], Any]
MIN_FRAME_INTERVAL_S = 0.15  # frames closer than this add nothing a viewer can see
LIVE_ALLOWANCE_S = 0.1  # frame time allowed on top of the fraction (the first frames)
MAX_RATE = 10_000.0


class Executor(Protocol):
    """Where a job trains when not in the queue's thread (``genlib.executors.RayExecutor``)."""

    def slots(self) -> int | None: ...

    def train(self, job: Job) -> Trained: ...


def executor_from_env() -> Executor | None:
    """``GENLIB_EXECUTOR=ray``: the Ray executor (Ray imported only then); else ``None``."""
    if os.environ.get("GENLIB_EXECUTOR", "thread").strip().lower() in ("", "thread"):
        return None
    from genlib.executors import executor_from_env as make

    return make()


class JobLimitError(ValueError):
    """A submission refused by a limit of the shared server (the page shows ``kind``'s text)."""

    kind = "limit"


class SessionLimitError(JobLimitError):
    """The session already has its allowed number of queued or running jobs."""

    kind = "per_session"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"this session already has {limit} training(s) queued or running; "
            "stop it or wait until it ends"
        )


class BudgetError(JobLimitError):
    """The job's compute (steps x batch x width) is over the per-job budget."""

    kind = "budget"

    def __init__(self, cost: float, budget: float) -> None:
        self.cost, self.budget = cost, budget
        super().__init__(
            f"this training needs {cost:.3g} sample-steps (steps x batch x width/128); "
            f"a job may use at most {budget:.3g}: lower the steps, the batch size or the width"
        )


def job_cost(spec: RunSpec) -> float:
    """Compute of a training in sample-steps: ``steps x batch_size x max(1, hidden / 128)``
    (the per-job budget, ``GENLIB_JOB_BUDGET``, is in these units)."""
    hidden = dict(spec.model_params).get("hidden", 128)
    width = float(hidden) / 128 if isinstance(hidden, (int, float)) else 1.0
    return float(spec.train.steps) * float(spec.train.batch_size) * max(1.0, width)


@dataclass(frozen=True)
class Progress:
    """A snapshot of a job for display."""

    state: JobState
    step: int
    total: int
    steps_per_s: float
    eta_s: float | None  # None while queued or when unknown
    position: int | None  # 1-based place in the queue while queued
    paused: bool
    elapsed_s: float  # training time so far (paused time excluded)
    loss: float | None  # the last logged loss
    rate: float | None  # slow-motion cap in steps/s (None: full speed)
    message: str = ""
    phase: Literal["training", "evaluating"] = "training"

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0


@dataclass(frozen=True)
class LiveFrame:
    """One live frame: the family's view of the model after ``step`` steps."""

    step: int
    seconds: float  # training time when it was taken
    loss: float | None
    view: Any


class Job:
    """One training run of a ``RunSpec`` (see the module doc). Thread-safe."""

    def __init__(
        self,
        spec: RunSpec | None,
        *,
        live_fn: LiveFn | None = None,
        live_fraction: float = 0.06,
        max_frames: int = 120,
        use_cache: bool = True,
        evaluate_n: int = 0,
        work: Work | None = None,
        key: str | None = None,
        total: int | None = None,
        executor: Executor | None = None,
    ) -> None:
        if spec is None and (work is None or key is None or total is None):
            raise ValueError("a job needs a RunSpec, or work with a key and a step total")
        self.spec = spec
        self.key = key if key is not None else spec.key()
        self.total = int(total if total is not None else spec.train.steps)
        self._work = work
        self._executor = executor  # None: train in this thread
        self._phase: Literal["training", "evaluating"] = "training"
        self._cv = threading.Condition()
        self._state: JobState = "queued"
        self._message = ""
        self._live_fn = live_fn
        self._live_fraction = live_fraction
        self._use_cache = use_cache
        self._eval_n = int(evaluate_n)
        self._frames: deque[LiveFrame] = deque(maxlen=max(2, max_frames))
        self._history: list[dict[str, float]] = []
        self._result: Trained | None = None
        self._error = ""
        self._stop = False
        #: why a stopped job stopped: the user's Stop, nobody watching, or a server shutdown
        self.stop_reason: StopReason | None = None
        self._paused = False
        self._budget = 0  # single steps allowed while paused
        self._rate: float | None = None
        self._step = 0
        self._watchers: dict[str, float] = {}
        self._created = time.monotonic()
        self._started: float | None = None
        self._finished: float | None = None
        self._paused_total = 0.0
        self._paused_since: float | None = None
        self._frame_time = 0.0
        self._last_frame_at = -math.inf
        self._last_frame_step = -1
        self._last_step_at = 0.0
        self._model: GenerativeModel | None = None
        self._target: Target2D | None = None
        self._g_live = make_generator((spec.train.seed if spec is not None else 0) + 17)
        #: the session that submitted the job (``JobQueue`` per-session caps count by it)
        self.owner: str = "anon"
        self.group: str | None = None  # jobs of one submission that count as one
        self.touch("submitter")

    # --- state ----------------------------------------------------------------------------------
    @property
    def state(self) -> JobState:
        with self._cv:
            return self._state

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def result(self) -> Trained | None:
        """The trained model once the job ended (``done``, ``stopped`` or ``diverged``)."""
        with self._cv:
            return self._result

    @property
    def error(self) -> str:
        with self._cv:
            return self._error

    @property
    def history(self) -> list[dict[str, float]]:
        """Logged rows so far (``step`` + losses), a copy."""
        with self._cv:
            return list(self._history)

    @property
    def frame_seconds(self) -> float:
        """Time spent computing live frames so far (the overhead the budget bounds)."""
        with self._cv:
            return self._frame_time

    def frames(self) -> list[LiveFrame]:
        """The ring of live frames, oldest first (a copy)."""
        with self._cv:
            return list(self._frames)

    def latest_frame(self) -> LiveFrame | None:
        with self._cv:
            return self._frames[-1] if self._frames else None

    def _elapsed(self, now: float) -> float:
        if self._started is None:
            return 0.0
        end = self._finished if self._finished is not None else now
        paused = self._paused_total + (
            (now - self._paused_since) if self._paused_since is not None else 0.0
        )
        return max(0.0, end - self._started - paused)

    def progress(self, position: int | None = None) -> Progress:
        with self._cv:
            now = time.monotonic()
            elapsed = self._elapsed(now)
            sps = self._step / elapsed if elapsed > 0 and self._step > 0 else 0.0
            eta = (self.total - self._step) / sps if sps > 0 and self._state == "running" else None
            loss = self._history[-1].get("loss") if self._history else None
            return Progress(
                state=self._state,
                step=self._step,
                total=self.total,
                steps_per_s=sps,
                eta_s=eta,
                position=position if self._state == "queued" else None,
                paused=self._paused and self._state == "running",
                elapsed_s=elapsed,
                loss=loss,
                rate=self._rate,
                message=self._message,
                phase=self._phase,
            )

    # --- controls -------------------------------------------------------------------------------
    def stop(self, message: str = "", reason: StopReason = "user") -> None:
        """End the run before its next step; the partial model is kept as the result."""
        with self._cv:
            if not self._stop:
                self.stop_reason = reason
            self._stop = True
            if message:
                self._message = message
            if self._state == "queued":  # never started: it ends now and frees its place
                self._state = "stopped"
                self._message = self._message or "cancelled before it started"
                self._finished = time.monotonic()
            self._cv.notify_all()

    def pause(self) -> None:
        with self._cv:
            if not self._paused:
                self._paused = True
                self._budget = 0
                if self._state == "running":
                    self._paused_since = time.monotonic()
            self._cv.notify_all()

    def resume(self) -> None:
        with self._cv:
            if self._paused:
                self._paused = False
                self._budget = 0
                if self._paused_since is not None:
                    self._paused_total += time.monotonic() - self._paused_since
                    self._paused_since = None
            self._cv.notify_all()

    def step(self, k: int = 1) -> None:
        """While paused: advance ``k`` more steps, then wait again (GAN Lab's step button)."""
        with self._cv:
            if not self._paused:
                self.pause()
            self._budget += max(0, int(k))
            self._cv.notify_all()

    def set_rate(self, steps_per_s: float | None) -> None:
        """Slow motion: at most ``steps_per_s`` steps per second (``None``: full speed)."""
        with self._cv:
            if steps_per_s is None or not math.isfinite(float(steps_per_s)) or steps_per_s <= 0:
                self._rate = None
            else:
                self._rate = min(float(steps_per_s), MAX_RATE)
            self._cv.notify_all()

    def touch(self, watcher: str = "anon") -> None:
        """A viewer is still looking at this job (resets its idle clock)."""
        with self._cv:
            self._watchers[watcher] = time.monotonic()

    def running_for(self) -> float:
        """Wall-clock seconds since the job started (pauses included: a paused job holds its
        slot); 0 while queued."""
        with self._cv:
            if self._started is None:
                return 0.0
            end = self._finished if self._finished is not None else time.monotonic()
            return end - self._started

    def idle_for(self) -> float:
        """Seconds since anyone touched the job."""
        with self._cv:
            last = max(self._watchers.values(), default=self._created)
            return time.monotonic() - last

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (or ``timeout`` s); returns whether it ended."""
        with self._cv:
            return self._cv.wait_for(lambda: self._state not in ACTIVE_STATES, timeout)

    # --- the training side ----------------------------------------------------------------------
    def before_step(self, step: int) -> bool:
        """``genlib.training.Control``: pause, single steps, slow motion and stop."""
        want_frame = False
        with self._cv:
            self._step = step - 1
            while True:
                if self._stop:
                    return False
                if not self._paused:
                    break
                if self._budget > 0:
                    self._budget -= 1
                    break
                if self._live_fn is not None and self._last_frame_step != self._step:
                    want_frame = True  # show where the single steps led before waiting
                    break
                self._cv.wait(0.5)
            rate = self._rate
        if want_frame:
            self._emit_frame(step - 1, force=True)
            return self.before_step(step)
        if rate is not None:
            wait = self._last_step_at + 1.0 / rate - time.monotonic()
            if wait > 0:
                with self._cv:  # wakes early on stop / pause / rate change
                    self._cv.wait(min(wait, 1.0))
                    if self._stop:
                        return False
        self._last_step_at = time.monotonic()
        return True

    def _on_step(self, step: int, row: dict[str, float]) -> bool:
        with self._cv:
            self._step = step
            self._history.append(dict(row))
        self._emit_frame(step)
        return True

    def _emit_frame(self, step: int, force: bool = False) -> None:
        if self._live_fn is None or self._model is None or self._target is None:
            return
        now = time.monotonic()
        with self._cv:
            elapsed = self._elapsed(now)
            loss = self._history[-1].get("loss") if self._history else None
        if not force:
            if now - self._last_frame_at < MIN_FRAME_INTERVAL_S:
                return
            if self._frame_time > self._live_fraction * elapsed + LIVE_ALLOWANCE_S:
                return
        t0 = time.perf_counter()
        model = self._model
        was_training = model.training
        model.eval()
        try:
            view = self._live_fn(model, self._target, self._g_live)
        except Exception as exc:  # a live view must never kill a training
            with self._cv:
                self._message = f"live view unavailable: {exc}"
            self._last_frame_step = step  # a paused job must not retry it forever
            return
        finally:
            model.train(was_training)
        self._frame_time += time.perf_counter() - t0
        self._last_frame_at = time.monotonic()
        self._last_frame_step = step
        with self._cv:
            self._frames.append(LiveFrame(step, elapsed, loss, view))

    def _run_work(self) -> None:
        """A job that is not a ``RunSpec`` training (e.g. a KL fit): ``work(on_step, control)``
        returns a result whose ``status`` ("ok" | "stopped" | "diverged") names the end state."""
        out = self._work(self._on_step, self)
        status = getattr(out, "status", "ok")
        with self._cv:
            self._result = out
            self._state = {"ok": "done", "stopped": "stopped", "diverged": "diverged"}.get(
                status, "done"
            )
            if self._state == "stopped" and self._stop:
                self._message = self._message or "stopped by the user"

    # --- an executor's side (genlib.executors: the job trains in another process) --------------
    def worker_factory(self) -> Callable[[], Job]:
        """A picklable recipe for a copy of this job that trains where it is called."""
        return functools.partial(
            type(self),
            self.spec,
            live_fn=self._live_fn,
            live_fraction=self._live_fraction,
            max_frames=self._frames.maxlen or 120,
            use_cache=self._use_cache,
            evaluate_n=self._eval_n,
        )

    def take_controls(self) -> dict[str, Any]:
        """The controls set on this job, for its remote copy (single steps are handed over)."""
        with self._cv:
            budget, self._budget = self._budget, 0
            return {
                "stop": self._stop,
                "message": self._message if self._stop else "",
                "reason": self.stop_reason,
                "paused": self._paused,
                "budget": budget,
                "rate": self._rate,
            }

    def report(
        self,
        step: int,
        rows: list[dict[str, float]],
        frames: list[LiveFrame],
        phase: str,
        message: str = "",
    ) -> None:
        """Progress of the remote copy: its step, new logged rows and live frames, its note."""
        with self._cv:
            self._step = int(step)
            if message and not self._stop:
                self._message = message
            self._history.extend(dict(r) for r in rows)
            self._frames.extend(frames)
            if phase in ("training", "evaluating"):
                self._phase = phase  # type: ignore[assignment]
            self._cv.notify_all()

    def run(self) -> None:
        """Train the job (called by a worker)."""
        with self._cv:
            if self._state != "queued":  # stopped while it waited
                return
            self._state = "running"
            self._started = time.monotonic()
            if self._paused:
                self._paused_since = self._started
            self._cv.notify_all()
        try:
            if self._work is not None:
                self._run_work()
                return
            hit = cached_run(self.spec) if self._use_cache else None
            if hit is not None:  # finished meanwhile (another replica or the CLI)
                trained = hit
            elif self._executor is not None:  # in a worker process (genlib.executors)
                trained = self._executor.train(self)
            else:
                model, target = prepare(self.spec)
                self._model, self._target = model, target
                self._emit_frame(0, force=True)
                result = train(model, target, self.spec.train, on_step=self._on_step, control=self)
                self._emit_frame(result.steps_done, force=True)
                with self._cv:
                    self._phase = "evaluating"
                    self._step = result.steps_done
                trained = finish(
                    self.spec, model, target, result, self._use_cache, evaluate_n=self._eval_n
                )
            res = trained.result
            with self._cv:
                self._result = trained
                self._step = res.steps_done
                self._history = list(res.history) or self._history
                self._state = "done" if res.status == "ok" else res.status
                if self._state == "stopped" and self._message:
                    res.message = f"{self._message} (step {res.steps_done})"
                self._message = self._message or res.message
        except Exception as exc:  # bad spec, out of memory, a bug: say it, keep the server up
            with self._cv:
                self._state = "failed"
                self._error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._cv:
                self._finished = time.monotonic()
                if self._paused_since is not None:
                    self._paused_total += self._finished - self._paused_since
                    self._paused_since = None
                self._model = None  # the result holds the model; drop the training handle
                self._cv.notify_all()


class JobQueue:
    """FIFO queue of jobs with ``max_workers`` worker threads (see the module doc)."""

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        idle_timeout_s: float | None = None,
        live_fn: Callable[[RunSpec], LiveFn | None] | None = None,
        live_fraction: float | None = None,
        max_frames: int | None = None,
        keep_finished: int = 64,
        use_cache: bool = True,
        evaluate_n: int = 0,
        executor: Executor | None = None,
        per_session: int | None = None,
        budget: float | None = None,
        max_seconds: float | None = None,
    ) -> None:
        #: queued or running jobs one session may own (``None``: no cap); with a cap, a worker
        #: takes the oldest queued job whose session has no running job (fair turns)
        self.per_session = per_session
        #: the most sample-steps (``job_cost``) one job may ask for (``None``: no budget)
        self.budget = budget
        #: wall-clock seconds after which a running job is stopped, keeping its model
        self.max_seconds = max_seconds
        #: where jobs train (``None``: in the worker threads; see ``genlib.executors``)
        self.executor = executor
        slots = (executor.slots() if executor is not None else None) or 2
        self.max_workers = max_workers or env_int("GENLIB_MAX_TRAININGS", slots, 1, 64)
        self.idle_timeout_s = (
            idle_timeout_s
            if idle_timeout_s is not None
            else env_float("GENLIB_JOB_IDLE_S", 120.0, 1.0, 86_400.0)
        )
        self.live_fraction = (
            live_fraction
            if live_fraction is not None
            else env_float("GENLIB_LIVE_FRACTION", 0.06, 0.0, 1.0)
        )
        self.max_frames = max_frames or env_int("GENLIB_LIVE_FRAMES", 120, 2, 2000)
        self._live_for = live_fn
        #: evaluate finished models inside the job (n samples; 0: never), so a page shows the
        #: metrics at once instead of computing them after the job
        self.evaluate_n = int(evaluate_n)
        self._keep_finished = keep_finished
        self._use_cache = use_cache
        self._cv = threading.Condition()
        self._queue: deque[Job] = deque()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._running: set[str] = set()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._worker, name=f"genlib-job-{i}", daemon=True)
            for i in range(self.max_workers)
        ]
        self._threads.append(
            threading.Thread(target=self._reaper, name="genlib-reaper", daemon=True)
        )
        for t in self._threads:
            t.start()

    def submit(self, spec: RunSpec, watcher: str = "anon", group: str | None = None) -> Job:
        """Queue ``spec`` (or attach to its queued/running job); returns the job. Raises
        ``BudgetError`` over the per-job budget and ``SessionLimitError`` when ``watcher``
        already owns ``per_session`` active jobs (attaching to a running job is always free;
        jobs submitted with the same ``group``, e.g. one click that queues several models, count
        as one and run one after another)."""
        if self.budget is not None:
            with self._cv:
                running = self._jobs.get(spec.key())
            if running is None or not running.active:
                cost = job_cost(spec)
                if cost > self.budget:
                    raise BudgetError(cost, self.budget)

        def make() -> Job:
            return Job(
                spec,
                live_fn=self._live_for(spec) if self._live_for is not None else None,
                live_fraction=self.live_fraction,
                max_frames=self.max_frames,
                use_cache=self._use_cache,
                evaluate_n=self.evaluate_n,
                executor=self.executor,
            )

        return self._enqueue(spec.key(), make, watcher, group)

    def submit_work(self, key: str, total: int, work: Work, watcher: str = "anon") -> Job:
        """Queue any step-wise computation on the common loop (``work(on_step, control)``, e.g.
        a KL fit) under ``key``; same rules as ``submit`` (attach, FIFO, stop, pause, idle)."""
        return self._enqueue(
            key,
            lambda: Job(None, work=work, key=key, total=total, max_frames=self.max_frames),
            watcher,
        )

    def _enqueue(
        self, key: str, make: Callable[[], Job], watcher: str, group: str | None = None
    ) -> Job:
        """The active job of ``key`` (attached), or a new one from ``make`` at the queue's end."""
        with self._cv:
            if self._closed:
                raise RuntimeError("the job queue is shut down")
            job = self._jobs.get(key)
            if job is not None and job.active:
                job.touch(watcher)
                return job
            if self.per_session is not None:
                owned = {
                    j.group or j.key for j in self._jobs.values() if j.active and j.owner == watcher
                }
                if len(owned) >= self.per_session and (group is None or group not in owned):
                    raise SessionLimitError(self.per_session)
            job = make()
            job.owner, job.group = watcher, group
            job.touch(watcher)
            self._jobs[key] = job
            self._jobs.move_to_end(key)
            self._queue.append(job)
            self._trim()
            self._cv.notify_all()
            return job

    def get(self, key: str) -> Job | None:
        """The newest job of a spec key (active or recently finished), if any."""
        with self._cv:
            return self._jobs.get(key)

    def position(self, job: Job) -> int | None:
        """1-based place of a queued job in the queue (``None`` once it runs)."""
        with self._cv:
            waiting = [j for j in self._queue if j.state == "queued"]
            return waiting.index(job) + 1 if job in waiting else None

    def progress(self, job: Job) -> Progress:
        return job.progress(self.position(job))

    def stats(self) -> dict[str, int]:
        with self._cv:
            return {
                "workers": self.max_workers,
                "running": len(self._running),
                "queued": sum(j.state == "queued" for j in self._queue),
                "kept": len(self._jobs),
            }

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every job and the workers (tests; server exit)."""
        with self._cv:
            self._closed = True
            jobs = list(self._jobs.values())
            self._cv.notify_all()
        for j in jobs:
            j.stop("the server is shutting down", reason="shutdown")
        for t in self._threads:
            t.join(timeout)

    # --- internals ------------------------------------------------------------------------------
    def _trim(self) -> None:
        finished = [k for k, j in self._jobs.items() if not j.active]
        for k in finished[: max(0, len(finished) - self._keep_finished)]:
            del self._jobs[k]

    def _worker(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._closed or self._next() is not None)
                if self._closed:
                    return
                job = self._next()
                self._queue.remove(job)
                if job.state != "queued":  # stopped while it waited: no slot needed
                    continue
                self._running.add(job.key)
            try:
                job.run()
            finally:
                with self._cv:
                    self._running.discard(job.key)
                    self._trim()
                    self._cv.notify_all()

    def _next(self) -> Job | None:
        """The job a free worker takes: the oldest queued one, or with per-session caps the
        oldest whose owner has no running job (one session's batch cannot fill every slot)."""
        if not self._queue:
            return None
        if self.per_session is None:
            return self._queue[0]
        busy = {j.owner for j in self._jobs.values() if j.key in self._running}
        for j in self._queue:
            if j.state != "queued" or j.owner not in busy:
                return j
        return None

    def _reaper(self) -> None:
        while True:
            with self._cv:
                self._cv.wait(min(1.0, self.idle_timeout_s / 4))
                if self._closed:
                    return
                jobs = [j for j in self._jobs.values() if j.active]
            for j in jobs:
                if self.max_seconds is not None and j.running_for() > self.max_seconds:
                    j.stop(
                        f"stopped: a training may run for at most {self.max_seconds:.0f} s "
                        "on this server",
                        reason="limit",
                    )
                    continue
                if j.idle_for() > self.idle_timeout_s:
                    j.stop(
                        f"stopped: nobody watched it for {self.idle_timeout_s:.0f} s",
                        reason="idle",
                    )
                    with self._cv:
                        if j in self._queue:  # never started: free its place at once
                            self._queue.remove(j)


_DEFAULT: JobQueue | None = None
_DEFAULT_LOCK = threading.Lock()


def default_queue() -> JobQueue:
    """The process-wide queue (created on first use, with the live views of ``genlib.lab``)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            # Training threads run many small torch ops, each needing the GIL back from the
            # script threads (figures, JSON); at Python's default 5 ms switch interval a busy page
            # slows a watched training several-fold. 0.5 ms keeps it near full speed.
            sys.setswitchinterval(env_float("GENLIB_SWITCH_INTERVAL_S", 0.0005, 1e-5, 0.1))
            from genlib.lab.live import live_view_for

            _DEFAULT = JobQueue(
                live_fn=live_view_for,
                evaluate_n=EVAL_N,
                executor=executor_from_env(),
                per_session=env_int("GENLIB_JOBS_PER_SESSION", 1, 1, 1000),
                budget=env_float("GENLIB_JOB_BUDGET", 1e8, 1.0, 1e15),
                max_seconds=env_float("GENLIB_JOB_MAX_S", 1800.0, 1.0, 7 * 86_400.0),
            )
        return _DEFAULT


def reset_default_queue() -> None:
    """Stop the process-wide queue's jobs and forget it (tests; a server never needs this)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        old, _DEFAULT = _DEFAULT, None
    if old is not None:
        old.shutdown(timeout=5.0)
