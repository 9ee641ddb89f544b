"""Training and results panels: train with live progress (or show a cached/pretrained result at
once), metrics with their noise floors, downloads.

Caching: a bounded ``st.cache_resource(max_entries=...)`` holds one slot per RunSpec key, shared by
every session of the server (a trained model is computed once per server); ``genlib.runs.run``
also persists finished runs in the checkpoint disk cache. Concurrent trainings per server are
bounded by a semaphore (``GENLIB_MAX_TRAININGS``, default 2). Runs that were stopped or diverged
stay in the user's session only."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from genlib import viz
from genlib.checkpoints import CheckpointError, checkpoint_bytes, find_checkpoint
from genlib.device import make_generator
from genlib.models.base import HasLogProb
from genlib.runs import RunSpec, Trained, evaluate, load_trained, run
from genlib.ui.export import csv_button, figure
from genlib.ui.i18n import t

__all__ = [
    "train_panel",
    "metrics_panel",
    "downloads",
    "sample_model",
    "cached_trained",
    "evaluate_cached",
    "likelihood_panel",
    "field_panel",
    "train_with_progress",
    "MAX_CACHED_RUNS",
    "MAX_TRAININGS",
]

MAX_CACHED_RUNS = int(os.environ.get("GENLIB_UI_CACHE_ENTRIES", "32"))
MAX_TRAININGS = max(1, int(os.environ.get("GENLIB_MAX_TRAININGS", "2")))
PARTIAL_KEY = "_genlib_partial"  # session: stopped/diverged runs by spec key


@dataclass
class _Slot:
    """One RunSpec's shared result (``trained``) and a lock so identical runs train once."""

    trained: Trained | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@st.cache_resource(max_entries=MAX_CACHED_RUNS, show_spinner=False)
def _slot(key: str) -> _Slot:
    return _Slot()


@st.cache_resource(show_spinner=False)
def _train_semaphore() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(MAX_TRAININGS)


def cached_trained(spec: RunSpec) -> Trained | None:
    """The result for ``spec`` if it exists anywhere: this session (stopped/diverged), the shared
    memory cache, or a pretrained/cached checkpoint on disk (loaded into the shared cache)."""
    key = spec.key()
    partial = st.session_state.get(PARTIAL_KEY, {}).get(key)
    if partial is not None:
        return partial
    slot = _slot(key)
    if slot.trained is not None:
        return slot.trained
    if find_checkpoint(key) is not None:
        try:
            with st.spinner(t("common.loading_checkpoint")):
                trained = load_trained(spec)
        except CheckpointError:
            return None
        slot.trained = trained
        return trained
    return None


def _source_badge(trained: Trained, fresh: bool) -> str:
    src = "trained_now" if fresh else trained.source
    if src == "trained":
        src = "memory"  # trained earlier on this server (shared cache)
    if trained.result.status != "ok":
        src = trained.result.status
    secs = trained.result.seconds
    steps = trained.result.steps_done
    return t(f"common.source_{src}", steps=steps, seconds=f"{secs:.1f}")


def train_with_progress(spec: RunSpec, page: str) -> Trained | None:
    """Train now with progress, live loss and a Stop button (see module doc)."""
    sem = _train_semaphore()
    if not sem.acquire(blocking=False):
        st.warning(t("common.server_busy", n=MAX_TRAININGS), icon=":material/hourglass_top:")
        return None
    key = spec.key()
    stop_flag = f"_genlib_stop_{key}"
    st.session_state[stop_flag] = False
    slot = _slot(key)
    try:
        if not slot.lock.acquire(timeout=0.01):
            with st.spinner(t("common.waiting_same_run")):
                slot.lock.acquire()
        try:
            if slot.trained is not None:  # another session finished it meanwhile
                return slot.trained
            total = spec.train.steps
            c1, c2 = st.columns([5, 1], vertical_alignment="center")
            bar = c1.progress(
                0.0, text=t("common.training_progress", step=0, total=total, loss="–")
            )
            c2.button(
                t("common.stop"),
                key=f"{page}_stop",
                icon=":material/stop_circle:",
                on_click=lambda: st.session_state.__setitem__(stop_flag, True),
            )
            chart = st.empty()
            rows: list[dict[str, float]] = []
            pending: list[BaseException] = []
            last_draw = [0.0]

            def on_step(step: int, logs: dict[str, float]) -> bool:
                rows.append(logs)
                if st.session_state.get(stop_flag):
                    return False
                try:
                    bar.progress(
                        min(step / total, 1.0),
                        text=t(
                            "common.training_progress",
                            step=step,
                            total=total,
                            loss=f"{logs.get('loss', float('nan')):.4g}",
                        ),
                    )
                    now = time.perf_counter()
                    if now - last_draw[0] > 0.25 or step == total:
                        last_draw[0] = now
                        df = pd.DataFrame(rows).set_index("step")
                        chart.line_chart(df[["loss"]] if "loss" in df else df, height=220)
                except ScriptControlException as exc:  # the user clicked Stop (or changed a widget)
                    pending.append(exc)
                    return False
                return True

            try:
                trained = run(spec, on_step=on_step)
            except (ValueError, RuntimeError) as exc:
                st.error(t("common.train_error", error=str(exc)))
                return None
            if trained.result.status == "ok":
                slot.trained = trained
            else:
                st.session_state.setdefault(PARTIAL_KEY, {})[key] = trained
            if pending:
                raise pending[0]  # let Streamlit rerun now that the partial model is saved
            bar.empty()
            chart.empty()
            return trained
        finally:
            slot.lock.release()
    finally:
        sem.release()


def train_panel(
    spec: RunSpec, *, page: str | None = None, show_loss: bool = True
) -> Trained | None:
    """Show the trained model of ``spec`` at once when it is cached or pretrained (labelled with
    its source); otherwise a Train button. Returns the ``Trained`` or ``None``.
    Widget keys: ``{page}_train``, ``{page}_stop``, ``{page}_retrain``."""
    page = page or spec.model
    trained = cached_trained(spec)
    fresh = False
    if trained is None:
        st.info(t("common.not_trained"), icon=":material/model_training:")
        if st.button(
            t("common.train"), type="primary", key=f"{page}_train", icon=":material/play_arrow:"
        ):
            trained = train_with_progress(spec, page)
            fresh = trained is not None
        if trained is None:
            return None
    res = trained.result
    if res.status == "diverged":
        st.warning(res.message, icon=":material/warning:")
    elif res.status == "stopped":
        st.info(res.message, icon=":material/stop_circle:")
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.success(_source_badge(trained, fresh), icon=":material/check_circle:")
    if res.status != "ok" and c2.button(t("common.retrain"), key=f"{page}_retrain"):
        st.session_state.get(PARTIAL_KEY, {}).pop(spec.key(), None)
        st.rerun()
    if show_loss and res.history:
        with st.expander(t("common.loss_curve"), expanded=False, icon=":material/show_chart:"):
            keys = [k for k in res.history[0] if k != "step"]
            fig = viz.loss_curve(res.history, keys)
            figure(fig, f"{page}_loss", data=pd.DataFrame(res.history), key=f"{page}_loss")
    return trained


def _result_id(trained: Trained) -> str:
    r = trained.result
    return f"{trained.spec.key()}:{r.status}:{r.steps_done}"


@st.cache_data(max_entries=256, show_spinner=False)
def _evaluate(result_id: str, _trained: Trained, n: int) -> dict[str, float]:
    return evaluate(_trained, n=n)


@st.cache_data(max_entries=64, show_spinner=False)
def _samples(result_id: str, _trained: Trained, n: int, seed: int) -> np.ndarray:
    model = _trained.model
    with torch.no_grad():
        x = model.sample(n, generator=make_generator(seed, model.device))
    return x.detach().cpu().float().numpy()


def sample_model(trained: Trained, n: int = 2000, seed: int = 0) -> np.ndarray:
    """``n`` model samples ``(n, 2)`` as numpy (cached per trained model, n and seed)."""
    n = int(min(max(n, 1), 50_000))
    return _samples(_result_id(trained), trained, n, seed)


@st.cache_data(max_entries=16, show_spinner=False)
def _model_log_density(result_id: str, _trained: Trained, bounds: tuple, res: int) -> np.ndarray:
    _, _, pts = viz.grid(bounds, res)
    model = _trained.model
    with torch.no_grad():
        x = torch.as_tensor(pts, dtype=torch.float32, device=model.device)
        return model.log_prob(x).detach().cpu().numpy()  # (res*res,)


def likelihood_panel(page_key: str, trained: Trained, bounds: tuple, name: str) -> None:
    """The model's exact log-density on a grid next to the target's, and their ratio (models
    with ``log_prob``). Texts: ``{page_key}.lik_title/lik_res/lik_computing/lik_exact/lik_model/
    lik_ratio/lik_caption``."""
    from genlib.ui.cached import log_density_grid
    from genlib.viz.sde import likelihood_figure

    st.subheader(t(f"{page_key}.lik_title"))
    res = int(
        st.select_slider(t(f"{page_key}.lik_res"), [24, 32, 40, 48, 64], 40, key=f"{page_key}_lres")
    )
    with st.spinner(t(f"{page_key}.lik_computing")):
        log_q = _model_log_density(_result_id(trained), trained, tuple(bounds), res)
    xs, ys, log_p = log_density_grid(trained.spec.target, res, bounds)
    fig = likelihood_figure(
        xs,
        ys,
        log_p,
        log_q,
        bounds,
        titles=[t(f"{page_key}.lik_exact"), t(f"{page_key}.lik_model"), t(f"{page_key}.lik_ratio")],
    )
    figure(fig, name, data={"log_p": log_p, "log_q": log_q})
    st.caption(t(f"{page_key}.lik_caption"))


def field_panel(
    page_key: str,
    target: Any,
    xs: np.ndarray,
    ys: np.ndarray,
    learned: np.ndarray,
    true: np.ndarray,
    bounds: tuple,
    *,
    log_p: np.ndarray | None,
    names: tuple[str, str],
    normalise: bool,
    name: str,
) -> None:
    """Learned vs true vector field side by side with their error (score-based pages), data
    points of ``target`` (a ``TargetSpec``) overlaid, exports with the field values as CSV.
    Text: ``{page_key}.field_caption``."""
    from genlib.ui.cached import target_samples
    from genlib.viz.diffusion import field_comparison_figure

    fig = field_comparison_figure(
        xs,
        ys,
        learned,
        true,
        bounds,
        log_p=log_p,
        points=target_samples(target, 2000),
        normalise=normalise,
        names=names,
    )
    data = {
        "s1": learned[..., 0].ravel(),
        "s2": learned[..., 1].ravel(),
        "true1": true[..., 0].ravel(),
        "true2": true[..., 1].ravel(),
    }
    figure(fig, name, data=data, key=f"{page_key}_field_fig")
    st.caption(t(f"{page_key}.field_caption"))


def evaluate_cached(trained: Trained, n: int = 5000) -> dict[str, float]:
    """``genlib.runs.evaluate`` cached per trained model (no rendering)."""
    return _evaluate(_result_id(trained), trained, int(min(n, 20_000)))


def metrics_panel(trained: Trained, n: int = 5000) -> dict[str, float]:
    """Metrics table: sample metrics with their noise floors (the value for two samples of p
    itself) and, for models with a density, exact KL(p‖q) = NLL − H(p)."""
    with st.spinner(t("common.evaluating")):
        m = _evaluate(_result_id(trained), trained, int(min(n, 20_000)))
    rows: list[dict[str, Any]] = [
        {
            t("common.metric"): t("common.m_sw"),
            t("common.value"): m.get("sliced_wasserstein"),
            t("common.floor"): m.get("sliced_wasserstein_floor"),
        },
        {
            t("common.metric"): t("common.m_mmd"),
            t("common.value"): m.get("mmd"),
            t("common.floor"): m.get("mmd_floor"),
        },
    ]
    if "exact_kl" in m:
        rows += [
            {
                t("common.metric"): t("common.m_kl"),
                t("common.value"): m["exact_kl"],
                t("common.floor"): 0.0,
            },
            {
                t("common.metric"): t("common.m_nll"),
                t("common.value"): m["exact_nll"],
                t("common.floor"): m["exact_entropy"],
            },
            {
                t("common.metric"): t("common.m_entropy"),
                t("common.value"): m["exact_entropy"],
                t("common.floor"): None,
            },
        ]
    df = pd.DataFrame(rows)
    st.dataframe(
        df,
        hide_index=True,
        column_config={
            t("common.value"): st.column_config.NumberColumn(format="%.4f"),
            t("common.floor"): st.column_config.NumberColumn(format="%.4f"),
        },
    )
    notes = [t("common.floor_note")]
    if "exact_kl" in m:
        notes.append(t("common.kl_note", stderr=f"{m.get('exact_stderr', float('nan')):.3f}"))
        if m["exact_nll"] < 0:
            notes.append(t("common.negative_nll_note"))
    elif not isinstance(trained.model, HasLogProb):
        notes.append(t("common.no_density_note"))
    if m.get("non_finite", 0) > 0:
        notes.append(t("common.non_finite_note", n=int(m["non_finite"])))
    st.caption("  \n".join(notes))
    return m


def downloads(trained: Trained, n: int = 5000) -> None:
    """Download buttons: model samples (CSV) and the checkpoint (weights_only ``.pt``)."""
    stem = f"{trained.spec.model}_{trained.spec.target.name}_{trained.spec.key()[:8]}"
    c1, c2 = st.columns(2)
    with c1:
        samples = sample_model(trained, n)
        csv_button(
            samples, f"{stem}_samples", t("common.download_samples"), key=f"dl_samples_{stem}"
        )
    r = trained.result

    def ckpt() -> bytes:
        meta = {
            "steps_done": r.steps_done,
            "status": r.status,
            "message": r.message,
            "seconds": r.seconds,
            "history": r.history,
        }
        return checkpoint_bytes(trained.model.state_dict(), trained.spec.to_dict(), meta)

    c2.download_button(
        t("common.download_checkpoint"),
        ckpt,
        file_name=f"{stem}.pt",
        mime="application/octet-stream",
        key=f"dl_ckpt_{stem}",
        on_click="ignore",
        icon=":material/save:",
    )
