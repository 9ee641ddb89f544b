"""Flow matching (lecture 4-5): conditional paths, learned vs exact velocity, ODE trajectories,
exact likelihood by the continuity equation."""

import streamlit as st

from genlib import ui, viz
from genlib.device import make_generator
from genlib.lab.fields import compare_fields
from genlib.lab.flow_matching import exact_trajectory, target_conditional_paths
from genlib.processes import make_path
from genlib.viz.sde import conditional_paths_figure

P = "flow_matching"
ui.setup_page(P)
ui.header(P)


def extra(defaults: dict) -> dict:
    c1, c2 = st.columns(2)
    path = c1.radio(
        ui.t(f"{P}.path"),
        ["ot", "straight", "vp"],
        format_func=lambda v: ui.t(f"{P}.path_{v}"),
        key=f"{P}_path",
        horizontal=True,
    )
    method = c2.selectbox(
        ui.t(f"{P}.method"),
        ["heun", "rk4", "euler"],
        format_func=lambda v: ui.t(f"{P}.method_{v}"),
        key=f"{P}_method",
    )
    return {"path": path, "method": method}


with ui.controls():
    spec = ui.run_form(P, default_target="8gaussians", model="flow_matching", extra=extra)
bounds = viz.pad_bounds(ui.target_bounds(spec.target), 0.1)
_, _, logp = ui.log_density_grid(spec.target, 100, bounds)
xs_g, ys_g, _ = viz.grid(bounds, 100)
bg = [viz.contour_trace(logp, xs_g, ys_g, color="#9aa4b2")]
path_kind = dict(spec.model_params).get("path", "ot")


@st.cache_data(max_entries=16, show_spinner=False)
def conditional(target_key: str, _spec, kind: str, n: int, seed: int):
    tr = target_conditional_paths(make_path(kind), _spec.build(), n, 40, seed)
    return tr.xs.numpy(), tr.ts.numpy()


# --- the conditional probability path (no training needed) ---------------------------------------
with st.expander(ui.t(f"{P}.cond_title"), expanded=True, icon=":material/route:"):
    frames, taus = conditional(str(spec.target), spec.target, path_kind, 40, 0)
    labels = [f"{v:.2f}" for v in taus]
    fig = conditional_paths_figure(frames, bounds, labels, background=bg, height=500)
    ui.figure(fig, f"fm_conditional_{path_kind}", data=viz.frame_table(frames, labels))
    st.caption(ui.t(f"{P}.cond_caption_{path_kind}"))

trained = ui.train_panel(spec, page=P)
if trained is None:
    ui.theory(P)
    st.stop()
model, target = trained.model, trained.target
rid = f"{spec.key()}:{trained.result.status}:{trained.result.steps_done}"


@st.cache_data(max_entries=32, show_spinner=False)
def trajectories(rid: str, _model, _target, n: int, seed: int, exact: bool):
    g = make_generator(seed)
    if exact:
        tr = exact_trajectory(_model, _target, n, 50, generator=g)
    else:
        tr = _model.trajectory(n, 50, generator=g)
    return tr.xs.cpu().numpy(), tr.ts.cpu().numpy()


@st.cache_data(max_entries=32, show_spinner=False)
def velocity_field(rid: str, _model, _target, tau: float, res: int):
    return compare_fields(_model, _target, tau, bounds, res)


# --- ODE trajectories: learned velocity vs the exact marginal velocity -----------------------------
st.subheader(ui.t(f"{P}.traj_title"))
c = st.columns(3)
n = c[0].slider(ui.t(f"{P}.particles"), 100, 2000, 600, 100, key=f"{P}_n")
trails = c[1].slider(ui.t(f"{P}.trails"), 0, 30, 10, key=f"{P}_trails")
seed = c[2].number_input(ui.t(f"{P}.traj_seed"), 0, 2**31 - 1, 0, key=f"{P}_traj_seed")
with st.spinner(ui.t(f"{P}.sampling")):
    learned_run = trajectories(rid, model, target, int(n), int(seed), False)
    try:
        exact_run = trajectories(rid, model, target, int(n), int(seed), True)
    except NotImplementedError:
        exact_run = None
cols = st.columns(2)
for col, run_, name in ((cols[0], learned_run, "learned"), (cols[1], exact_run, "exact")):
    with col:
        st.markdown(ui.t(f"{P}.traj_{name}"))
        if run_ is None:
            st.info(ui.t(f"{P}.no_exact"))
            continue
        xs, ts = run_
        labels = [f"τ = {v:.2f}" for v in ts]
        fig = viz.animated_scatter(
            xs, bounds, labels, trails=int(trails), background=bg, height=520
        )
        ui.figure(fig, f"fm_ode_{name}", data=viz.frame_table(xs, labels))
st.caption(ui.t(f"{P}.traj_caption"))
ui.gif_button(learned_run[0], bounds, "fm_ode", labels=[f"τ = {v:.2f}" for v in learned_run[1]])

# --- learned vs exact velocity field --------------------------------------------------------------
st.subheader(ui.t(f"{P}.field_title"))
c = st.columns(3)
tau = c[0].slider(ui.t(f"{P}.tau"), 0.0, 1.0, 0.5, 0.05, key=f"{P}_tau")
res = c[1].slider(ui.t(f"{P}.res"), 9, 31, 19, 2, key=f"{P}_res")
normalise = c[2].toggle(ui.t(f"{P}.normalise"), value=False, key=f"{P}_normalise")
ui.field_panel(
    P,
    spec.target,
    velocity_field(rid, model, target, float(tau), int(res)),
    bounds,
    names=("v_θ(x, τ)", "u_τ(x)", "‖v_θ − u_τ‖"),
    titles=(ui.t(f"{P}.field_learned"), ui.t(f"{P}.field_true"), ui.t(f"{P}.field_error")),
    normalise=normalise,
    name=f"fm_velocity_tau{tau:.2f}",
    points=False,
)

# --- exact likelihood -----------------------------------------------------------------------------
ui.likelihood_panel(P, trained, bounds, "fm_likelihood")

st.subheader(ui.t(f"{P}.metrics_title"))
ui.metrics_panel(trained)
ui.downloads(trained)
ui.theory(P)
