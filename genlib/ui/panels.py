"""Result panels of a trained model: metrics with their noise floors, samples, likelihood and
field panels, downloads, and ``derived``: the one cache of results computed from a trained model
(keyed by the trained result, never by hand). Training itself is ``genlib.ui.live``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from genlib import viz
from genlib.checkpoints import checkpoint_bytes
from genlib.device import make_generator
from genlib.models.base import HasLogProb
from genlib.runs import EVAL_N, Trained, evaluate
from genlib.ui.export import csv_button, figure
from genlib.ui.i18n import t
from genlib.ui.layout import lazy_panel

__all__ = [
    "derived",
    "result_id",
    "metrics_panel",
    "downloads",
    "sample_model",
    "evaluate_cached",
    "likelihood_panel",
    "field_panel",
]


def result_id(trained: Trained) -> str:
    """What identifies a trained result: its spec key, status and steps (a stopped run of the
    same spec at another step is another result)."""
    r = trained.result
    return f"{trained.spec.key()}:{r.status}:{r.steps_done}"


@st.cache_data(max_entries=256, show_spinner=False)
def _derived(rid: str, fn_id: str, args: tuple, kw: tuple, _fn: Callable, _trained: Trained) -> Any:
    return _fn(_trained, *args, **dict(kw))


def derived(trained: Trained, fn: Callable[..., Any], /, *args: Any, **kw: Any) -> Any:
    """``fn(trained, *args, **kw)`` cached per trained result (shared by sessions, bounded): the
    one cache of what a page computes from a model (trajectories, fields, views). ``fn`` should be
    a module-level function (of ``genlib.lab``); ``args``/``kw`` are hashed by value. A spinner
    shows when it takes longer than half a second."""
    code = getattr(fn, "__code__", None)
    where = f"@{code.co_filename}:{code.co_firstlineno}" if code is not None else ""
    fn_id = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}{where}"
    with st.spinner(t("common.computing")):
        return _derived(result_id(trained), fn_id, args, tuple(sorted(kw.items())), fn, trained)


@st.cache_data(max_entries=256, show_spinner=False)
def _evaluate(rid: str, _trained: Trained, n: int) -> dict[str, float]:
    return evaluate(_trained, n=n)


@st.cache_data(max_entries=64, show_spinner=False)
def _samples(rid: str, _trained: Trained, n: int, seed: int) -> np.ndarray:
    model = _trained.model
    with torch.no_grad():
        x = model.sample(n, generator=make_generator(seed, model.device))
    return x.detach().cpu().float().numpy()


def sample_model(trained: Trained, n: int = 2000, seed: int = 0) -> np.ndarray:
    """``n`` model samples ``(n, 2)`` as numpy (cached per trained model, n and seed)."""
    n = int(min(max(n, 1), 50_000))
    return _samples(result_id(trained), trained, n, seed)


@st.cache_data(max_entries=16, show_spinner=False)
def _model_log_density(rid: str, _trained: Trained, bounds: tuple, res: int) -> np.ndarray:
    _, _, pts = viz.grid(bounds, res)
    model = _trained.model
    with torch.no_grad():
        x = torch.as_tensor(pts, dtype=torch.float32, device=model.device)
        return model.log_prob(x).detach().cpu().numpy()  # (res*res,)


@lazy_panel("likelihood", "lik_title", icon=":material/grid_on:")
def likelihood_panel(page_key: str, trained: Trained, bounds: tuple, name: str) -> None:
    """The model's exact log-density on a grid next to the target's, and their ratio (models
    with ``log_prob``). Texts: ``{page_key}.lik_title/lik_res/lik_computing/lik_exact/lik_model/
    lik_ratio/lik_caption``."""
    from genlib.ui.cached import log_density_grid
    from genlib.viz.sde import likelihood_figure

    res = int(
        st.select_slider(t(f"{page_key}.lik_res"), [24, 32, 40, 48, 64], 40, key=f"{page_key}_lres")
    )
    with st.spinner(t(f"{page_key}.lik_computing")):
        log_q = _model_log_density(result_id(trained), trained, tuple(bounds), res)
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
    cmp: Any,
    bounds: tuple,
    *,
    names: tuple[str, ...],
    normalise: bool,
    name: str,
    titles: tuple[str, ...] | None = None,
    points: bool = True,
) -> None:
    """Learned vs exact vector field (a ``genlib.lab.fields.FieldComparison``) with the error in
    the units of the loss, data points of ``target`` (a ``TargetSpec``) overlaid unless
    ``points=False``, exports with the field values as CSV. Texts: ``{page_key}.field_caption``,
    and ``{page_key}.field_no_exact`` when the target has no known marginal."""
    from genlib.ui.cached import target_samples
    from genlib.viz.diffusion import field_comparison_figure

    error = cmp.error
    fig = field_comparison_figure(
        cmp.xs,
        cmp.ys,
        cmp.learned,
        cmp.exact,
        bounds,
        error=error,
        log_p=cmp.log_p,
        points=target_samples(target, 2000) if points else None,
        normalise=normalise,
        names=names,
        points_name=t("distributions.fig.data"),
        **({"titles": titles} if titles is not None else {}),
    )
    pts = cmp.points.numpy()
    learned = cmp.learned.reshape(-1, 2).numpy()
    data = {"x1": pts[:, 0], "x2": pts[:, 1], "learned1": learned[:, 0], "learned2": learned[:, 1]}
    if cmp.exact is not None:
        exact = cmp.exact.reshape(-1, 2).numpy()
        data.update({"exact1": exact[:, 0], "exact2": exact[:, 1]})
        data["error"] = error.reshape(-1).numpy()
    figure(fig, name, data=data, key=f"{page_key}_field_fig")
    st.caption(
        t(f"{page_key}.field_caption" if cmp.exact is not None else f"{page_key}.field_no_exact")
    )


def evaluate_cached(trained: Trained, n: int = EVAL_N) -> dict[str, float]:
    """``genlib.runs.evaluate`` cached per trained model (no rendering); the metrics a job or a
    checkpoint already holds are used as they are."""
    n = int(min(n, 20_000))
    if trained.metrics is not None and int(trained.metrics.get("n", -1)) == n:
        return dict(trained.metrics)
    return _evaluate(result_id(trained), trained, n)


def metrics_panel(trained: Trained, n: int = EVAL_N) -> dict[str, float]:
    """Metrics table: sample metrics with their noise floors (the value for two samples of p
    itself) and, for models with a density, exact KL(p‖q) = NLL − H(p)."""
    with st.spinner(t("common.evaluating")):
        m = evaluate_cached(trained, n)
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


def downloads(trained: Trained, n: int = EVAL_N) -> None:
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
