"""Score SDE (lecture 4-4): reverse SDE vs probability-flow ODE, learned vs exact score, exact
PF-ODE likelihood, forward diffusion."""

import streamlit as st

from genlib import ui, viz
from genlib.device import make_generator
from genlib.lab.fields import compare_fields
from genlib.lab.forward import ForwardConfig
from genlib.viz.diffusion_forward import forward_diffusion_figure

P = "sde"
ui.setup_page(P)
ui.header(P)


def extra(defaults: dict) -> dict:
    c1, c2 = st.columns(2)
    kind = c1.radio(
        ui.t(f"{P}.sde_kind"),
        ["vp", "ve"],
        format_func=lambda v: ui.t(f"{P}.sde_{v}"),
        key=f"{P}_kind",
        horizontal=True,
    )
    sampler = c2.selectbox(
        ui.t(f"{P}.sampler"),
        ["em", "pc", "ode"],
        format_func=lambda v: ui.t(f"{P}.sampler_{v}"),
        key=f"{P}_sampler",
    )
    return {"sde": kind, "sampler": sampler}


with ui.controls():
    spec = ui.run_form(P, default_target="8gaussians", model="sde", extra=extra)
trained = ui.train_panel(spec, page=P)
if trained is None:
    ui.theory(P)
    st.stop()

model, target = trained.model, trained.target
rid = f"{spec.key()}:{trained.result.status}:{trained.result.steps_done}"
bounds = viz.pad_bounds(ui.target_bounds(spec.target), 0.1)


@st.cache_data(max_entries=32, show_spinner=False)
def trajectories(rid: str, _model, lam: float, n: int, frames: int, seed: int):
    tr = _model.trajectory(n, frames, generator=make_generator(seed), sampler="em", lam=lam)
    return tr.xs.cpu().numpy(), tr.ts.cpu().numpy()


@st.cache_data(max_entries=32, show_spinner=False)
def score_field(rid: str, _model, _target, t: float, res: int):
    return compare_fields(_model, _target, t, bounds, res)


# --- reverse-time sampling: the λ family ---------------------------------------------------------
st.subheader(ui.t(f"{P}.traj_title"))
c = st.columns(4)
lam = c[0].slider(ui.t(f"{P}.lam"), 0.0, 1.0, 1.0, 0.1, key=f"{P}_lam", help=ui.t(f"{P}.lam_help"))
n = c[1].slider(ui.t(f"{P}.particles"), 100, 2000, 600, 100, key=f"{P}_n")
trails = c[2].slider(ui.t(f"{P}.trails"), 0, 30, 8, key=f"{P}_trails")
seed = c[3].number_input(ui.t(f"{P}.traj_seed"), 0, 2**31 - 1, 0, key=f"{P}_traj_seed")
_, _, logp = ui.log_density_grid(spec.target, 100, bounds)
xs_g, ys_g, _ = viz.grid(bounds, 100)
bg = [viz.contour_trace(logp, xs_g, ys_g, color="#9aa4b2")]
with st.spinner(ui.t(f"{P}.sampling")):
    runs = {v: trajectories(rid, model, v, int(n), 60, int(seed)) for v in (float(lam), 0.0)}
cols = st.columns(2)
for col, v, name in ((cols[0], float(lam), "chosen"), (cols[1], 0.0, "ode")):
    xs, ts = runs[v]
    labels = [f"t = {x:.3f}" for x in ts]
    with col:
        st.markdown(ui.t(f"{P}.traj_{name}", lam=v))
        fig = viz.animated_scatter(
            xs, bounds, labels, trails=int(trails), background=bg, name="x_t", height=520
        )
        ui.figure(fig, f"sde_reverse_lambda{v:.1f}", data=viz.frame_table(xs, labels))
st.caption(ui.t(f"{P}.traj_caption"))
xs_c, ts_c = runs[float(lam)]
ui.gif_button(xs_c, bounds, f"sde_reverse_lambda{lam:.1f}", labels=[f"t = {x:.3f}" for x in ts_c])

# --- learned vs exact score ----------------------------------------------------------------------
st.subheader(ui.t(f"{P}.field_title"))
c = st.columns(3)
t_field = c[0].select_slider(
    ui.t(f"{P}.t_field"), [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0], 0.1, key=f"{P}_t"
)
res = c[1].slider(ui.t(f"{P}.res"), 9, 31, 19, 2, key=f"{P}_res")
normalise = c[2].toggle(ui.t(f"{P}.normalise"), value=True, key=f"{P}_normalise")
ui.field_panel(
    P,
    spec.target,
    score_field(rid, model, target, float(t_field), int(res)),
    bounds,
    names=("s_θ(x, t)", "∇ log p_t(x)", "error"),
    titles=(ui.t(f"{P}.field_learned"), ui.t(f"{P}.field_true"), ui.t(f"{P}.field_error")),
    normalise=normalise,
    name=f"sde_score_t{t_field}",
    points=False,
)

# --- exact likelihood by the PF-ODE ---------------------------------------------------------------
ui.likelihood_panel(P, trained, bounds, "sde_pf_ode_likelihood")

st.subheader(ui.t(f"{P}.metrics_title"))
ui.metrics_panel(trained)
st.caption(ui.t(f"{P}.metrics_caption"))

# --- forward diffusion of the same target ---------------------------------------------------------
with st.expander(ui.t(f"{P}.forward_title"), icon=":material/blur_on:"):
    proc = model.process
    if model.sde_kind == "vp":
        cfg = ForwardConfig(process="vp", schedule="linear", T=100, n=600, frames=41)
    else:
        cfg = ForwardConfig(
            process="ve", sigma_min=proc.sigma_min, sigma_max=proc.sigma_max, L=50, frames=41
        )
    fd = ui.forward_process(spec.target, cfg)
    ui.figure(forward_diffusion_figure(fd), f"sde_forward_{model.sde_kind}", key=f"{P}_forward")
    st.caption(ui.t(f"{P}.forward_caption"))

ui.downloads(trained)
ui.theory(P)
