"""DDPM (lecture 4-3): ᾱ_T and the schedule, ancestral sampling with x̂0 per step, learned vs
exact score of p_t, forward diffusion with the model's schedule."""

import streamlit as st

from genlib import ui, viz
from genlib.device import make_generator
from genlib.geometry import expand_bounds
from genlib.lab.fields import compare_fields
from genlib.lab.forward import ForwardConfig
from genlib.processes import DDPMSchedule
from genlib.viz.diffusion import reverse_trajectory_figure, schedule_curves
from genlib.viz.diffusion_forward import forward_diffusion_figure

P = "ddpm"
ui.setup_page(P)
ui.header(P)


def extra(defaults: dict) -> dict:
    c1, c2, c3 = st.columns(3)
    kind = c1.selectbox(
        ui.t(f"{P}.schedule"),
        ["linear", "cosine"],
        format_func=lambda v: ui.t(f"{P}.schedule_{v}"),
        key=f"{P}_schedule",
    )
    T = c2.select_slider(
        ui.t(f"{P}.T"), [10, 20, 50, 100, 200, 500, 1000], int(defaults.get("T", 100)), key=f"{P}_T"
    )
    variance = c3.radio(
        ui.t(f"{P}.variance"),
        ["beta", "beta_tilde"],
        format_func=lambda v: ui.t(f"{P}.variance_{v}"),
        key=f"{P}_variance",
    )
    ab = DDPMSchedule(kind, int(T)).alpha_bar_T
    c1.metric(ui.t(f"{P}.alpha_bar_T"), f"{ab:.2e}", help=ui.t(f"{P}.alpha_bar_T_help"))
    if ab > 0.05:
        st.warning(ui.t(f"{P}.alpha_bar_warn", value=ab))
    return {"schedule": kind, "T": int(T), "variance": variance}


with ui.controls():
    spec = ui.run_form(P, default_target="moons", extra=extra)
trained = ui.train_panel(spec, page=P)
if trained is None:
    ui.theory(P)
    st.stop()
model, target = trained.model, trained.target
rid = f"{spec.key()}:{trained.result.status}:{trained.result.steps_done}"
tbounds = ui.target_bounds(spec.target)
sched = model.schedule


@st.cache_data(max_entries=16, show_spinner=False)
def trajectory(rid: str, _model, n: int, seed: int):
    tr = _model.trajectory(n, 60, generator=make_generator(seed, _model.device)).cpu()
    return tr.xs.numpy(), tr.ts.numpy(), tr.x0_preds.numpy()


@st.cache_data(max_entries=32, show_spinner=False)
def field(rid: str, _model, _target, t: int, zoom: float, res: int):
    return compare_fields(_model, _target, t, expand_bounds(tbounds, zoom), res)


# --- ᾱ_T and the schedule ------------------------------------------------------------------------
c1, c2 = st.columns([1, 3], gap="large")
c1.metric(ui.t(f"{P}.alpha_bar_T"), f"{model.alpha_bar_T:.2e}", help=ui.t(f"{P}.alpha_bar_T_help"))
if model.alpha_bar_T > 0.05:
    c1.warning(ui.t(f"{P}.alpha_bar_warn", value=model.alpha_bar_T))
with c2:
    ts_all = list(range(1, sched.T + 1))
    fig = schedule_curves(
        ts_all,
        {
            "ᾱ_t": sched.alpha_bar.numpy(),
            "β_t": sched.betas.numpy(),
            "β̃_t": sched.posterior_var.numpy(),
        },
        markers={"ᾱ_T": (sched.T, model.alpha_bar_T)},
        title=ui.t(f"{P}.schedule_title"),
        height=260,
    )
    ui.figure(
        fig,
        f"{P}_schedule_{sched.kind}_T{sched.T}",
        data={"t": ts_all, "alpha_bar": sched.alpha_bar.numpy(), "beta": sched.betas.numpy()},
        key=f"{P}_sched_fig",
    )

# --- ancestral sampling with x̂0 ------------------------------------------------------------------
st.subheader(ui.t(f"{P}.trajectory_title"))
c = st.columns(3)
n = c[0].slider(ui.t(f"{P}.particles"), 100, 5000, 1000, 100, key=f"{P}_n")
trails = c[1].slider(ui.t(f"{P}.trails"), 0, 30, 8, key=f"{P}_trails")
seed = c[2].number_input(ui.t(f"{P}.seed"), 0, 2**31 - 1, 0, key=f"{P}_sample_seed")
with st.spinner():
    txs, tts, preds = trajectory(rid, model, int(n), int(seed))
labels = [f"t = {int(v)}" for v in tts]
vb = viz.union_bounds(tbounds, (-3.5, 3.5, -3.5, 3.5))
gx, gy, lp = ui.log_density_grid(spec.target, 80, vb)
bg = [viz.contour_trace(lp, gx, gy, color="#9aa4b2")]
fig = reverse_trajectory_figure(
    txs,
    vb,
    labels,
    x0_preds=preds,
    trails=int(trails),
    background=bg,
    titles=("x_t", "x̂₀(x_t, t)"),
    particle_name="x_t",
    pred_name="x̂₀",
)
ui.figure(
    fig, f"{P}_{spec.target.name}_ancestral", data=viz.frame_table(txs, labels), key=f"{P}_traj_fig"
)
st.caption(ui.t(f"{P}.trajectory_caption"))

# --- learned vs exact score of p_t ---------------------------------------------------------------
st.subheader(ui.t(f"{P}.field_title"))
c = st.columns(4)
t_pick = c[0].slider(ui.t(f"{P}.t_pick"), 1, sched.T, max(1, sched.T // 10), key=f"{P}_t_pick")
zoom = c[1].select_slider(ui.t(f"{P}.zoom"), [1.0, 1.5, 2.0, 3.0], 1.0, key=f"{P}_zoom")
res = c[2].slider(ui.t(f"{P}.grid"), 9, 35, 21, 2, key=f"{P}_grid")
normalise = c[3].toggle(ui.t(f"{P}.normalise"), value=False, key=f"{P}_normalise")
ui.field_panel(
    P,
    spec.target,
    field(rid, model, target, int(t_pick), float(zoom), int(res)),
    expand_bounds(tbounds, float(zoom)),
    names=("−ε_θ/√(1−ᾱ_t)", "∇ log p_t"),
    normalise=normalise,
    name=f"{P}_{spec.target.name}_field_t{t_pick}",
)

# --- metrics, forward diffusion, downloads -------------------------------------------------------
st.subheader(ui.t(f"{P}.metrics_title"))
left, right = st.columns([3, 2], gap="large")
with left:
    st.markdown(f"**{ui.t(f'{P}.samples_title')}**")
    q = ui.sample_model(trained, 2000)
    fig = viz.scatter(
        {"x ~ p": ui.target_samples(spec.target, 2000), "x ~ q_θ": q}, tbounds, size=3.5
    )
    ui.figure(fig, f"{P}_{spec.target.name}_samples", data=q, key=f"{P}_samples_fig")
with right:
    ui.metrics_panel(trained)
with st.expander(ui.t(f"{P}.forward_title"), icon=":material/blur_on:"):
    cfg = ForwardConfig(process="vp", schedule=sched.kind, T=min(sched.T, 2000), n=600)
    ui.figure(
        forward_diffusion_figure(ui.forward_process(spec.target, cfg)),
        f"{P}_{spec.target.name}_forward",
        key=f"{P}_forward_fig",
    )
    st.caption(ui.t(f"{P}.forward_caption"))
st.markdown(f"**{ui.t(f'{P}.downloads')}**")
ui.downloads(trained)
c1, c2 = st.columns(2)
with c1:
    ui.csv_button(
        viz.frame_table(txs, labels),
        f"{P}_frames",
        ui.t(f"{P}.download_frames"),
        key=f"{P}_csv_frames",
    )
with c2:
    ui.csv_button(
        viz.frame_table(preds, labels),
        f"{P}_x0_preds",
        ui.t(f"{P}.download_preds"),
        key=f"{P}_csv_preds",
    )
ui.gif_button(txs, vb, f"{P}_{spec.target.name}_ancestral", labels=labels, key=f"{P}_gif")
ui.theory(P)
