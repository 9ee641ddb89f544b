"""DDPM (lecture 4-3): ᾱ_T and the schedule, ancestral sampling with x̂₀ per step, learned vs
exact score of p_t, forward diffusion with the model's schedule."""

from typing import get_args

import streamlit as st

from genlib import ui, viz
from genlib.lab import fields as lf
from genlib.lab import forward as lfw
from genlib.processes import ScheduleKind
from genlib.samplers.ancestral import VarianceKind
from genlib.ui import diffusion as ud
from genlib.ui import proofs_diffusion as pd_
from genlib.ui import state as ws
from genlib.viz.diffusion import schedule_curves

P = "ddpm"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731


def extra(preset: dict) -> dict:
    c1, c2 = st.columns(2)
    kinds, variances = get_args(ScheduleKind), get_args(VarianceKind)
    kind = ws.selectbox(
        c1, T("schedule"), kinds, index=kinds.index(preset.get("schedule", "linear")),
        format_func=lambda v: T(f"schedule_{v}"), key=f"{P}_schedule",
    )  # fmt: skip
    steps = ws.select_slider(c2, T("T"), lfw.T_CHOICES, value=int(preset.get("T", 200)), key=f"{P}_T")  # fmt: skip
    c3, c4 = st.columns(2)
    variance = ws.radio(
        c3, T("variance"), variances, format_func=lambda v: T(f"variance_{v}"), key=f"{P}_variance"
    )
    ud.alpha_bar_badge(c4, P, lfw.schedule_view(kind, int(steps)).alpha_bar_T)
    return {"schedule": kind, "T": int(steps), "variance": variance}


trained = ui.model_page(P, default_target="moons", extra=extra)
model, spec = trained.model, trained.spec
name = f"{P}_{spec.target.name}"

# --- ᾱ_T and the schedule ------------------------------------------------------------------------
sv = lfw.schedule_view(model.schedule.kind, model.T)
c1, c2 = st.columns([1, 3], gap="large")
ud.alpha_bar_badge(c1, P, sv.alpha_bar_T)
with c2:
    curves = {"ᾱ_t": sv.alpha_bar, "β_t": sv.beta, "β̃_t": sv.beta_tilde}
    fig = schedule_curves(sv.t, curves, markers={"ᾱ_T": (model.T, sv.alpha_bar_T)},
                          title=T("schedule_title"), height=260)  # fmt: skip
    data = {"t": sv.t, "alpha_bar": sv.alpha_bar, "beta": sv.beta, "beta_tilde": sv.beta_tilde}
    ui.figure(fig, f"{P}_schedule_{model.schedule.kind}_T{model.T}", data=data, key=f"{P}_sched_fig")  # fmt: skip

# --- ancestral sampling with x̂₀ ------------------------------------------------------------------
st.subheader(T("trajectory_title"))
n, trails, seed = ud.trajectory_controls(P)
tr = ui.derived(trained, lf.trained_trajectory, n, 60, seed)
labels = ud.frame_labels(tr, "{:.0f}")
vb = viz.union_bounds(ui.target_bounds(spec.target), (-3.5, 3.5, -3.5, 3.5))  # data ∪ prior
ud.trajectory_figure(
    tr, vb, labels, name=f"{name}_ancestral", key=f"{P}_traj_fig", trails=trails, x0=True,
    background=ud.density_background(spec.target, vb), titles=("x_t", "x̂₀(x_t, t)"),
    particle_name="x_t", pred_name="x̂₀",
)  # fmt: skip
st.caption(T("trajectory_caption"))
ud.trajectory_exports(P, tr, vb, labels, f"{name}_ancestral", preds=True)

# --- learned vs exact score of p_t ---------------------------------------------------------------
ud.field_section(
    P, trained,
    lambda c: ws.slider(c, T("t_pick"), 1, model.T, value=lf.default_level(model), key=f"{P}_t_pick"),
    names=("−ε_θ/√(1−ᾱ_t)", "∇ log p_t"),
)  # fmt: skip

# --- the variational bound in nats, samplers vs NFE ----------------------------------------------
pd_.ddpm_bound_panel(P, trained)
pd_.ddpm_nfe_panel(P, trained)

ud.forward_expander(P, trained)
ui.page_end(P, trained)
