"""Flow matching (lecture 4-5): conditional paths, learned vs exact velocity, ODE trajectories,
exact likelihood by the continuity equation."""

from typing import get_args

import streamlit as st

from genlib import ui, viz
from genlib.lab import fields as lf
from genlib.lab import flow_matching as lfm
from genlib.processes.paths import PATHS
from genlib.samplers.ode import ODEMethod
from genlib.ui import diffusion as ud
from genlib.ui import identities as ui_id
from genlib.ui import state as ws
from genlib.viz.sde import conditional_paths_figure

P = "flow_matching"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731


def extra(preset: dict) -> dict:
    c1, c2 = st.columns(2)
    paths, methods = PATHS.names(), get_args(ODEMethod)
    path = ws.radio(
        c1, T("path"), paths, index=paths.index(preset.get("path", "ot")),
        format_func=lambda v: T(f"path_{v}"), key=f"{P}_path", horizontal=True,
    )  # fmt: skip
    method = ws.selectbox(
        c2, T("method"), methods, index=methods.index(preset.get("method", "heun")),
        format_func=lambda v: T(f"method_{v}"), key=f"{P}_method",
    )  # fmt: skip
    return {"path": path, "method": method}


trained = ui.model_page(P, default_target="8gaussians", model="flow_matching", extra=extra)
model, spec = trained.model, trained.spec
bounds = viz.pad_bounds(ui.target_bounds(spec.target), 0.1)
bg = ud.density_background(spec.target, bounds, 100)

# --- the conditional probability path ------------------------------------------------------------
with st.expander(T("cond_title"), expanded=True, icon=":material/route:"):
    cond = ui.derived(trained, lfm.trained_conditional_paths, 40, 40, 0)
    labels = ud.frame_labels(cond, "{:.2f}", name="", sep="")
    c1, c2 = st.columns([3, 2], vertical_alignment="center")
    fig = conditional_paths_figure(cond.xs.numpy(), bounds, labels, background=bg, height=500)
    with c1:
        ui.figure(fig, f"{P}_conditional_{model.path_kind}", data=viz.frame_table(cond.xs.numpy(), labels), key=f"{P}_cond_fig")  # fmt: skip
    c2.caption(T(f"cond_caption_{model.path_kind}"))

# --- ODE trajectories: learned velocity vs the exact marginal velocity -----------------------------
st.subheader(T("traj_title"))
n, trails, seed = ud.trajectory_controls(P, n=(100, 2000, 600), trails=10, seed=("traj_seed", "traj_seed"))  # fmt: skip
runs = ui.derived(trained, lfm.trained_ode_runs, n, 50, seed)
for col, run, kind in zip(st.columns(2), (runs.learned, runs.exact), ("learned", "exact"), strict=True):  # fmt: skip
    with col:
        st.markdown(T(f"traj_{kind}"))
        if run is None:
            st.info(T("no_exact"))
            continue
        ud.trajectory_figure(run, bounds, ud.frame_labels(run, "{:.2f}"), name=f"{P}_ode_{kind}",
                             key=f"{P}_ode_{kind}_fig", trails=trails, background=bg,
                             particle_name="x_τ", height=520)  # fmt: skip
st.caption(T("traj_caption"))
ud.trajectory_exports(P, runs.learned, bounds, ud.frame_labels(runs.learned, "{:.2f}"), f"{P}_ode")

# --- learned vs exact velocity field --------------------------------------------------------------
ud.field_section(
    P, trained,
    lambda c: ws.slider(c, T("tau"), 0.0, 1.0, value=lf.default_level(model), step=0.05, key=f"{P}_tau"),
    names=("v_θ(x, τ)", "u_τ(x)", "‖v_θ − u_τ‖"),
    titles=(T("field_learned"), T("field_true"), T("field_error")), points=False,
)  # fmt: skip
ui_id.objective_gap_panel(P, trained)  # CFM = FM + const at a τ, over training

# --- exact likelihood ----------------------------------------------------------------------------
ui.likelihood_panel(P, trained, bounds, f"{P}_likelihood")
ui.page_end(P, trained)
