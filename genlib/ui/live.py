"""Training on a page: the result at once when it exists, otherwise a Train button that submits a
background job (``genlib.jobs``) and a live panel that follows it.

The live panel is an ``st.fragment`` that reruns itself (``run_every``) while its job is queued or
running: queue position or progress/ETA, the family's live view moving over the exact density,
the loss, and Stop / Pause / Step / slow motion. The script never waits for training. When the
job ends the fragment reruns the whole page, so its result panels appear by themselves.

Where results live:
- a complete run (``done``) is shared: the job queue keeps it in memory for every session and
  ``genlib.runs.finish`` writes it to the checkpoint cache;
- a stopped or diverged run is kept for the sessions that watched that job (its
  ``st.session_state``), labelled with its status and steps; it is never cached or shown to
  other users (they get a Train button, and training attaches them to a new job).
"""

from __future__ import annotations

import binascii
import hashlib
import threading
from typing import Any

import pandas as pd
import streamlit as st

from genlib import viz
from genlib.checkpoints import CheckpointError, find_checkpoint
from genlib.jobs import (
    BudgetError,
    Job,
    JobLimitError,
    JobQueue,
    Progress,
    SessionLimitError,
    Work,
    default_queue,
)
from genlib.runs import RunSpec, Trained, load_trained
from genlib.ui.cached import log_density_grid
from genlib.ui.export import figure
from genlib.ui.i18n import has, lang, t
from genlib.ui.layout import section
from genlib.viz.live import live_figure, loss_spec, replay_figure

__all__ = [
    "train_panel",
    "train_many_panel",
    "work_panel",
    "forget_work",
    "cached_trained",
    "job_queue",
    "forget_loaded",
    "session_job",
    "watcher_id",
    "live_labels",
    "history_labels",
    "LIVE_REFRESH_S",
    "MAX_CACHED_RUNS",
]

LIVE_REFRESH_S = 1.0
LIVE_FIG_KEY = "_genlib_live_fig"  # session: (job, frame step, language) -> figure
JOBS_KEY = "_genlib_jobs"  # session: spec key -> Job (the jobs this session started or watched)
MAX_CACHED_RUNS = 32
_LOADED: dict[str, Trained] = {}  # checkpoints loaded from disk, shared by sessions (bounded)
_LOADED_LOCK = threading.Lock()


def forget_loaded() -> None:
    """Drop the checkpoints this process loaded (tests: each starts from its own cache dirs)."""
    with _LOADED_LOCK:
        _LOADED.clear()


def job_queue() -> JobQueue:
    """The server's job queue (one per process). A misconfigured executor (``GENLIB_EXECUTOR``,
    Ray missing or unreachable) stops the page with a clear message instead of a traceback."""
    try:
        return default_queue()
    except (ValueError, RuntimeError, ImportError, ConnectionError) as exc:
        st.error(t("common.queue_config_error", error=str(exc)), icon=":material/error:")
        st.stop()
        raise  # unreachable: st.stop() raises


XSRF_COOKIE = "_streamlit_xsrf"


def _browser_id() -> str | None:
    """An id of the browser (shared by its tabs): a hash of the token in Streamlit's XSRF
    cookie (``2|mask|masked token|time``; the mask changes per response, the token does not).
    ``None`` where there is no such cookie (AppTest, XSRF off)."""
    try:
        raw = st.context.cookies.get(XSRF_COOKIE)
    except Exception:  # no browser context (AppTest, bare mode)
        return None
    if not isinstance(raw, str) or not raw or len(raw) > 200:  # AppTest gives a mock object
        return None
    parts = str(raw).strip("\"'").split("|")
    try:
        if parts[0] == "2" and len(parts) == 4:
            mask, masked = binascii.a2b_hex(parts[1]), binascii.a2b_hex(parts[2])
            token = bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked))
        else:
            token = str(raw).encode()
    except (binascii.Error, ValueError, ZeroDivisionError):
        return None
    return "browser-" + hashlib.sha256(token).hexdigest()[:16]


def watcher_id() -> str:
    """Who is watching: the browser (all its tabs, from the XSRF cookie) where known, else this
    session's id. ``Job.touch`` records it and the queue's per-session cap counts jobs by it, so
    a second tab of the same user does not take a second training slot."""
    bid = _browser_id()
    if bid is not None:
        return bid
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return ctx.session_id if ctx is not None else "anon"
    except ImportError:
        return "anon"


def _refusal(exc: Exception) -> str:
    """The page's text for a refused submission (a server limit, or the queue's own message)."""
    if isinstance(exc, SessionLimitError):
        return t("common.limit_per_session", n=exc.limit)
    if isinstance(exc, BudgetError):
        return t("common.limit_budget", cost=f"{exc.cost:.3g}", budget=f"{exc.budget:.3g}")
    return t("common.train_error", error=str(exc))


def _session_jobs() -> dict[str, Job]:
    return st.session_state.setdefault(JOBS_KEY, {})


def session_job(spec: RunSpec) -> Job | None:
    """The job this session started or watched for ``spec`` (active or finished), if any."""
    return _session_jobs().get(spec.key())


def touch_session_jobs() -> None:
    """Tell the queue this session still watches its active jobs (every script run, any page)."""
    me = watcher_id()
    for job in _session_jobs().values():
        if job.active:
            job.touch(me)


def _load(spec: RunSpec) -> Trained | None:
    key = spec.key()
    with _LOADED_LOCK:
        hit = _LOADED.get(key)
    if hit is not None:
        return hit
    if find_checkpoint(key) is None:
        return None
    try:
        with st.spinner(t("common.loading_checkpoint")):
            trained = load_trained(spec)
    except CheckpointError:
        return None
    with _LOADED_LOCK:
        _LOADED[key] = trained
        while len(_LOADED) > MAX_CACHED_RUNS:
            _LOADED.pop(next(iter(_LOADED)))
    return trained


def cached_trained(spec: RunSpec) -> Trained | None:
    """The result for ``spec`` if it exists anywhere: this session's job (also stopped or
    diverged), a finished job of the server, or a pretrained/cached checkpoint."""
    job = session_job(spec)
    if job is not None and not job.active and job.result is not None:
        return job.result
    shared = job_queue().get(spec.key())
    if shared is not None and shared.state == "done" and shared.result is not None:
        return shared.result
    return _load(spec)


def live_labels() -> dict[str, str]:
    """Translated legend names of the live figures."""
    return {
        k: t(f"common.live_{k}")
        for k in (
            "samples",
            "target",
            "log_q",
            "D",
            "field",
            "field_true",
            "lines",
            "particles",
            "dstar",
            "step",
        )
    }


def history_labels(keys: Any) -> dict[str, str]:
    """Legend names of logged training values (``common.hist.<key>``; unknown keys as they are)."""
    return {k: t(f"common.hist.{k}") if has(f"common.hist.{k}") else k for k in keys if k != "step"}


def _status_line(p: Progress) -> str:
    if p.state == "queued":
        return t("common.job_queued", position=p.position or 1)
    if p.phase == "evaluating":
        return t("common.job_evaluating", step=p.step, total=p.total)
    eta = f"{p.eta_s:.0f}" if p.eta_s is not None else "–"
    loss = f"{p.loss:.4g}" if p.loss is not None else "–"
    key = "common.job_paused" if p.paused else "common.job_running"
    return t(key, step=p.step, total=p.total, sps=f"{p.steps_per_s:.0f}", eta=eta, loss=loss)


def _controls(job: Job, page: str, p: Progress) -> None:
    c = st.columns([1, 1, 1, 1.4], vertical_alignment="bottom")
    if c[0].button(t("common.stop"), key=f"{page}_stop", icon=":material/stop_circle:"):
        job.stop(t("common.stopped_by_user"))
    if p.state != "running":
        return
    if p.paused:
        if c[1].button(t("common.resume"), key=f"{page}_resume", icon=":material/play_arrow:"):
            job.resume()
    elif c[1].button(t("common.pause"), key=f"{page}_pause", icon=":material/pause:"):
        job.pause()
    if c[2].button(t("common.step_k", k=10), key=f"{page}_step", icon=":material/skip_next:"):
        job.step(10)
    speeds = [0.0, 200.0, 50.0, 10.0]
    rate = c[3].selectbox(
        t("common.speed"),
        speeds,
        index=speeds.index(p.rate) if p.rate in speeds else 0,
        format_func=lambda v: (
            t("common.speed_full") if v == 0 else t("common.speed_rate", r=int(v))
        ),
        key=f"{page}_speed",
    )
    if (rate or None) != p.rate:
        job.set_rate(rate or None)


def _live_body(key: str, page: str, spec: RunSpec | None = None) -> None:
    job = _session_jobs().get(key)
    if job is None:
        return
    job.touch(watcher_id())
    if not job.active:
        st.rerun()  # the job ended: show the result panels (whole page)
    p = job_queue().progress(job)
    st.progress(p.fraction, text=_status_line(p))
    _controls(job, page, p)
    frame = job.latest_frame()
    left, right = st.columns([3, 2], gap="medium")
    with left:
        if frame is not None and spec is not None:
            # one figure per frame, reused while the frame is unchanged (reruns are 1 s apart,
            # frames often slower): no rebuilding and validating on every rerun
            cache = st.session_state.get(LIVE_FIG_KEY)
            if cache is None or cache[0] != (job.key, frame.step, lang()):
                bounds = tuple(float(b) for b in frame.view.bounds)
                fig = live_figure(
                    frame.view,
                    target_grid=log_density_grid(spec.target, 60, bounds),
                    labels=live_labels(),
                    title=t("common.live_title", step=frame.step)
                    + (f" · {frame.view.level_label}" if frame.view.level_label else ""),
                    height=440,
                )
                cache = ((job.key, frame.step, lang()), fig)
                st.session_state[LIVE_FIG_KEY] = cache
            st.plotly_chart(cache[1], key=f"{page}_live_fig", config={"displayModeBar": False})
        elif spec is not None:
            st.caption(t("common.live_waiting"))
    with right:
        hist = job.history
        if hist:  # a plain dict figure: no Altair/Plotly validation on every rerun (GIL time)
            st.plotly_chart(
                loss_spec(
                    hist,
                    t("common.loss_curve"),
                    names=history_labels(hist[0]),
                    xlabel=t("common.live_step"),
                ),  # fmt: skip
                key=f"{page}_live_loss",
                config={"displayModeBar": False},
            )
        st.caption(t("common.live_caption"))


def _live_panel(spec: RunSpec, page: str) -> None:
    st.fragment(run_every=LIVE_REFRESH_S)(_live_body)(spec.key(), page, spec)


def work_panel(key: str, total: int, work: Work, *, page: str) -> Any | None:
    """``train_panel`` for a step-wise computation that is not a model training (a KL fit): the
    result of ``work(on_step, control)`` once this session's job (or a finished shared one)
    has it; otherwise a Train button, or the live progress with Stop / Pause / Step."""
    touch_session_jobs()
    jobs = _session_jobs()
    job = jobs.get(key)
    if job is not None and job.active:
        st.fragment(run_every=LIVE_REFRESH_S)(_live_body)(key, page)
        return None
    if job is not None and job.state == "failed":
        st.error(t("common.train_error", error=job.error))
        jobs.pop(key, None)
        job = None
    if job is not None and job.result is not None:
        return job.result
    shared = job_queue().get(key)
    if shared is not None and shared.state == "done" and shared.result is not None:
        return shared.result

    def submit() -> None:
        try:
            jobs[key] = job_queue().submit_work(key, total, work, watcher_id())
        except (RuntimeError, ValueError) as exc:
            st.session_state["_genlib_submit_error"] = _refusal(exc)

    err = st.session_state.pop("_genlib_submit_error", None)
    if err:
        st.error(err, icon=":material/block:")
    st.button(
        t("common.train"),
        type="primary",
        key=f"{page}_train",
        icon=":material/play_arrow:",
        on_click=submit,
    )
    return None


def forget_work(key: str) -> None:
    """Drop this session's result for ``key`` (a "train again" button)."""
    _session_jobs().pop(key, None)


def _submit(spec: RunSpec, group: str | None = None) -> None:
    try:
        job = job_queue().submit(spec, watcher_id(), group=group)
    except (RuntimeError, ValueError) as exc:
        prev = st.session_state.get("_genlib_submit_error")
        if not (prev and isinstance(exc, JobLimitError)):  # one notice for a batch's refusals
            st.session_state["_genlib_submit_error"] = _refusal(exc)
        return
    _session_jobs()[spec.key()] = job


def _forget(spec: RunSpec) -> None:
    _session_jobs().pop(spec.key(), None)


def _source_badge(trained: Trained, fresh: bool) -> str:
    src = "trained_now" if fresh else trained.source
    if src == "trained":
        src = "memory"  # trained earlier on this server (shared)
    if trained.result.status != "ok":
        src = trained.result.status
    return t(
        f"common.source_{src}",
        steps=trained.result.steps_done,
        seconds=f"{trained.result.seconds:.1f}",
    )


def replay_panel(job: Job, spec: RunSpec, page: str) -> None:
    """The job's live frames as an animation ("watch it learn"), exportable."""
    frames = job.frames()
    if len(frames) < 2:
        return
    with section(
        page, "replay", t("common.replay_title", n=len(frames)), icon=":material/replay:"
    ) as shown:
        if not shown:
            return
        bounds = tuple(float(b) for b in frames[0].view.bounds)
        fig = replay_figure(
            [f.view for f in frames],
            [f.step for f in frames],
            target_grid=log_density_grid(spec.target, 60, bounds),
            labels=live_labels(),
        )
        figure(fig, f"{page}_{spec.target.name}_replay", key=f"{page}_replay_fig")
        st.caption(t("common.replay_caption"))


def train_panel(
    spec: RunSpec, *, page: str | None = None, show_loss: bool = True
) -> Trained | None:
    """The trained model of ``spec`` when it exists (labelled with its source); otherwise the
    Train button, or the live panel of this session's job. Never blocks on training.
    Widget keys: ``{page}_train``, ``{page}_stop``, ``{page}_pause``, ``{page}_resume``,
    ``{page}_step``, ``{page}_speed``, ``{page}_retrain``."""
    page = page or spec.model
    touch_session_jobs()
    err = st.session_state.pop("_genlib_submit_error", None)
    if err:
        st.error(err, icon=":material/block:")
    job = session_job(spec)
    if job is not None and job.active:
        _live_panel(spec, page)
        return None
    if job is not None and job.state == "failed":
        st.error(t("common.train_error", error=job.error))
        _forget(spec)
        job = None
    trained = cached_trained(spec)
    if trained is None:
        st.info(t("common.not_trained"), icon=":material/model_training:")
        st.button(
            t("common.train"),
            type="primary",
            key=f"{page}_train",
            icon=":material/play_arrow:",
            on_click=_submit,
            args=(spec,),
        )
        return None
    res = trained.result
    fresh = job is not None and job.result is trained
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    if res.status == "diverged":
        c1.warning(f"{_source_badge(trained, fresh)} {res.message}", icon=":material/warning:")
    elif res.status == "stopped":
        reason = job.stop_reason if job is not None else None
        if reason == "idle":
            text = t("common.source_stopped_idle", steps=res.steps_done)
        elif reason == "limit":
            minutes = f"{(job_queue().max_seconds or 0) / 60:.0f}"
            text = t("common.source_stopped_limit", steps=res.steps_done, minutes=minutes)
        else:
            text = _source_badge(trained, fresh)
        c1.info(text, icon=":material/stop_circle:")
    else:
        c1.success(_source_badge(trained, fresh), icon=":material/check_circle:")
    if res.status != "ok":
        c2.button(t("common.retrain"), key=f"{page}_retrain", on_click=_forget, args=(spec,))
    if job is not None:
        replay_panel(job, spec, page)
    if show_loss and res.history:
        with section(page, "loss", t("common.loss_curve"), icon=":material/show_chart:") as shown:
            if shown:
                keys = [k for k in res.history[0] if k != "step"]
                fig = viz.loss_curve(res.history, keys, key_names=history_labels(keys),
                                     xlabel=t("common.live_step"))  # fmt: skip
                figure(fig, f"{page}_loss", data=pd.DataFrame(res.history), key=f"{page}_loss")
    return trained


def _many_body(specs: dict[str, RunSpec], page: str) -> None:
    jobs = {name: session_job(spec) for name, spec in specs.items()}
    jobs = {name: j for name, j in jobs.items() if j is not None}
    me = watcher_id()
    for j in jobs.values():
        j.touch(me)
    if not any(j.active for j in jobs.values()):
        st.rerun()
    q = job_queue()
    cols = st.columns(2)
    for i, (name, job) in enumerate(jobs.items()):
        p = q.progress(job)
        text = f"**{name}** · " + (
            _status_line(p) if job.active else t(f"common.job_state_{p.state}", step=p.step)
        )
        cols[i % 2].progress(p.fraction if p.state != "queued" else 0.0, text=text)
    if st.button(t("common.stop_all"), key=f"{page}_stop_all", icon=":material/stop_circle:"):
        for j in jobs.values():
            j.stop(t("common.stopped_by_user"))


def train_many_panel(specs: dict[str, RunSpec], *, page: str) -> dict[str, Trained | None]:
    """Results for several specs (the Leaderboard): the missing ones can be trained through the
    queue in one click, each with its own progress; returns name -> result (or ``None``)."""
    touch_session_jobs()
    err = st.session_state.pop("_genlib_submit_error", None)
    if err:
        st.error(err, icon=":material/block:")
    found = {name: cached_trained(spec) for name, spec in specs.items()}
    active = {n: s for n, s in specs.items() if (j := session_job(s)) is not None and j.active}
    if active:
        st.fragment(run_every=LIVE_REFRESH_S)(_many_body)(
            {n: specs[n] for n in specs if session_job(specs[n]) is not None}, page
        )
        return found
    missing = [name for name, tr in found.items() if tr is None]
    for name, spec in specs.items():
        job = session_job(spec)
        if job is not None and job.state == "failed":
            st.error(f"{name}: " + t("common.train_error", error=job.error))
            _forget(spec)
    if missing:

        def submit_all() -> None:
            # one click, one slot of this session: the jobs run one after another
            group = f"{page}:" + ",".join(specs[name].key() for name in missing)
            for name in missing:
                _submit(specs[name], group)

        st.button(
            t("common.train_missing", n=len(missing)),
            type="primary",
            key=f"{page}_train",
            icon=":material/play_arrow:",
            on_click=submit_all,
            help=", ".join(missing),
        )
    return found
