"""Panels of the lecture's equivalence proofs (issue 11), one line each on a page:

    ui_id.objective_gap_panel(P, trained)   # score matching, NCSN, flow matching
    ui_id.langevin_bias_panel(P, trained)   # score matching

Texts: ``<page>.gap_*`` and ``<page>.bias_*`` keys of the page's own toml.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from genlib.distributions.base import Target2D
from genlib.lab import identities as lid
from genlib.lab import langevin as ll
from genlib.runs import Trained
from genlib.ui import state as ws
from genlib.ui.export import figure
from genlib.ui.i18n import t
from genlib.ui.layout import lazy_panel
from genlib.ui.live import session_job
from genlib.ui.panels import derived
from genlib.viz.identities import langevin_bias_figure, objective_gap_figure

__all__ = ["objective_gap_panel", "langevin_bias_panel", "gap_curve_for"]


def _level_widget(page: str, trained: Trained) -> float | None:
    """σ (NCSN, one of its ladder) or τ (flow matching) to measure at; None for score matching."""
    model = trained.model
    default = lid.default_gap_level(model)
    if default is None:
        return None
    T = lambda k: t(f"{page}.{k}")  # noqa: E731
    if lid.gap_family(model) == "ncsn":
        if len(model.sigma_list) == 1:
            return float(model.sigma_list[0])
        return float(ws.select_slider(
            st, T("gap_level"), model.sigma_list[::-1], value=default,
            format_func=lambda s: f"{s:.3g}", key=f"{page}_gap_level",
        ))  # fmt: skip
    taus = (0.1, 0.25, 0.5, 0.75, 0.9)
    return float(ws.select_slider(st, T("gap_level"), taus, value=default, key=f"{page}_gap_level"))


def gap_curve_for(page: str, trained: Trained, level: float | None) -> lid.GapCurve:
    """The job's live frames when this session trained the result (at the default level), else
    the cached short re-training from the run's initial weights."""
    if level == lid.default_gap_level(trained.model):
        job = session_job(trained.spec)
        if job is not None and job.result is trained:
            curve = lid.curve_from_frames(job.frames())
            if curve is not None:
                return curve
    return derived(trained, lid.trained_gap_curve, level)


@lazy_panel("gap", "gap_title", icon=":material/functions:")
def objective_gap_panel(page: str, trained: Trained) -> None:
    """Both objectives over training and the constant between them (widget ``{page}_gap_level``,
    figure ``{page}_gap_fig``)."""
    T = lambda k, **kw: t(f"{page}.{k}", **kw)  # noqa: E731
    level = _level_widget(page, trained)
    try:
        curve = gap_curve_for(page, trained, level)
    except NotImplementedError:
        st.info(T("gap_no_exact"))
        return
    except ValueError as err:
        st.warning(str(err))
        return
    names = {"trained": T("gap_trained"), "intractable": T("gap_intractable"),
             "shifted": T("gap_shifted")}  # fmt: skip
    fig = objective_gap_figure(curve.steps, curve.trained, curve.intractable, curve.constant,
                               names=names, xlabel=t("common.live_step"),
                               const_label=T("gap_const_short"))  # fmt: skip
    data = pd.DataFrame({"step": curve.steps, "trained": curve.trained,
                         "intractable": curve.intractable, "constant": curve.constant})  # fmt: skip
    tag = "" if level is None else f"_{level:g}"
    figure(fig, f"{page}_{trained.spec.target.name}_objective_gap{tag}", data=data,
           key=f"{page}_gap_fig")  # fmt: skip
    c = st.columns(3)
    c[0].metric(T("gap_constant"), f"{float(np.mean(curve.constant)):+.4g}")
    c[1].metric(T("gap_residual"), f"{curve.max_residual:.3g}")
    c[2].metric(T("gap_source"), T(f"gap_source_{curve.source}"))
    st.caption(T("gap_caption"))
    if not curve.holds:
        st.warning(T("gap_broken"), icon=":material/warning:")


BIAS_AUTO_S = 5.0  # the Langevin-bias panel computes at once when forecast to take at most this


@st.cache_data(max_entries=64, show_spinner=False)
def _bias_cost(target_key: str, _target: Target2D) -> float:
    return ll.bias_cost_seconds(_target)


@st.cache_data(max_entries=32, show_spinner=False)
def _bias(target_key: str, _target: Target2D, mala: bool) -> ll.LangevinBias:
    """``langevin_bias`` per target (it uses the exact score only, never the model)."""
    from genlib.device import make_generator

    return ll.langevin_bias(_target, None, generator=make_generator(0), mala=mala)


@lazy_panel("bias", "bias_title", icon=":material/functions:")
def langevin_bias_panel(page: str, trained: Trained) -> None:
    """KL(p‖chain) against ε for ULA and MALA with the exact score (figure ``{page}_bias_fig``)."""
    T = lambda k, **kw: t(f"{page}.{k}", **kw)  # noqa: E731
    key = repr(trained.spec.target.to_dict())
    asked = f"_genlib_bias_asked_{key}"  # the session asked for it on this target
    if not st.session_state.get(asked):
        cost = _bias_cost(key, trained.target)
        if cost > BIAS_AUTO_S:  # a slow density (quadrature, root finding): only on request
            st.caption(T("bias_slow", seconds=f"{cost:.0f}"))
            st.button(T("bias_compute"), key=f"{page}_bias_go",
                      on_click=lambda: st.session_state.update({asked: True}))  # fmt: skip
            return
    try:
        with st.spinner(t("common.computing")):
            ula = _bias(key, trained.target, False)
            mala = _bias(key, trained.target, True)
    except (ValueError, RuntimeError) as err:  # a target whose density code rejects the chains
        st.warning(f"{T('bias_failed')} ({err})")
        return
    fig = langevin_bias_figure(
        ula.step_sizes, {T("bias_ula"): ula.kl, T("bias_mala"): mala.kl}, ula.floor,
        floor_name=T("bias_floor"), guide_name=T("bias_guide"), ylabel=T("bias_ylabel"),
    )  # fmt: skip
    data = pd.DataFrame({"eps": ula.step_sizes, "kl_ula": ula.kl, "kl_mala": mala.kl,
                         "acceptance_mala": mala.acceptance, "floor": ula.floor})  # fmt: skip
    left, right = st.columns([3, 2], vertical_alignment="center")
    with left:
        figure(fig, f"{page}_{trained.spec.target.name}_langevin_bias", data=data,
               key=f"{page}_bias_fig")  # fmt: skip
    right.dataframe(data.rename(columns={"eps": "ε"}).round(4), hide_index=True)
    st.caption(T("bias_caption", n=ula.samples_per_step))
    if ula.kl[0] > 4 * max(ula.floor, mala.kl[0]):  # biased already at the smallest ε
        st.info(T("bias_nonsmooth"), icon=":material/info:")
