"""Score matching + Langevin (lecture 4-1): learned vs exact score, Langevin chains started far
from the data with the learned and the exact score, forward diffusion of the same target."""

import streamlit as st

from genlib import ui, viz
from genlib.geometry import expand_bounds
from genlib.lab.fields import compare_fields
from genlib.lab.forward import ForwardConfig
from genlib.lab.langevin import MAX_CHAINS, langevin_demo
from genlib.viz.diffusion import (
    final_samples_figure,
    reverse_trajectory_figure,
)
from genlib.viz.diffusion_forward import forward_diffusion_figure

P = "score_matching"
ui.setup_page(P)
ui.header(P)


def extra(defaults: dict) -> dict:
    c1, c2 = st.columns(2)
    steps = c1.select_slider(
        ui.t(f"{P}.model_lsteps"),
        [50, 100, 200, 500, 1000, 1500, 2000, 3000, 5000],
        int(defaults.get("langevin_steps", 1500)),
        key=f"{P}_m_steps",
    )
    eps = c2.select_slider(
        ui.t(f"{P}.model_eps"),
        [0.0005, 0.001, 0.002, 0.004, 0.005, 0.01, 0.02],
        float(defaults.get("step_size", 0.004)),
        key=f"{P}_m_eps",
    )
    return {"langevin_steps": int(steps), "step_size": float(eps)}


with ui.controls():
    spec = ui.run_form(P, default_target="8gaussians", extra=extra)
trained = ui.train_panel(spec, page=P)
if trained is None:
    ui.theory(P)
    st.stop()
st.caption(ui.t(f"{P}.loss_note"))
model, target = trained.model, trained.target
rid = f"{spec.key()}:{trained.result.status}:{trained.result.steps_done}"
tbounds = ui.target_bounds(spec.target)


@st.cache_data(max_entries=32, show_spinner=False)
def field(rid: str, _model, _target, zoom: float, res: int):
    return compare_fields(_model, _target, None, expand_bounds(tbounds, zoom), res)


@st.cache_data(max_entries=16, show_spinner=False)
def chains(rid: str, _model, _target, init: str, n: int, steps: int, eps: float, seed: int):
    demo = langevin_demo(_model, _target, init, n, steps, eps, num_frames=60, seed=seed)
    return demo.learned.xs.numpy(), demo.learned.ts.numpy(), demo.exact.xs[-1].numpy()


# --- learned vs exact score ----------------------------------------------------------------------
st.subheader(ui.t(f"{P}.field_title"))
c = st.columns(3)
zoom = c[0].select_slider(ui.t(f"{P}.zoom"), [1.0, 1.5, 2.0, 3.0], 2.0, key=f"{P}_zoom")
res = c[1].slider(ui.t(f"{P}.grid"), 9, 35, 21, 2, key=f"{P}_grid")
normalise = c[2].toggle(ui.t(f"{P}.normalise"), value=False, key=f"{P}_normalise")
fb = expand_bounds(tbounds, float(zoom))
ui.field_panel(
    P,
    spec.target,
    field(rid, model, target, float(zoom), int(res)),
    fb,
    names=("s_θ", "∇ log p"),
    normalise=normalise,
    name=f"{P}_{spec.target.name}_field",
)

# --- Langevin chains far from the data -----------------------------------------------------------
st.subheader(ui.t(f"{P}.langevin_title"))
c = st.columns(5)
init = c[0].selectbox(
    ui.t(f"{P}.init"),
    ["far", "box", "gaussian"],
    format_func=lambda v: ui.t(f"{P}.init_{v}"),
    key=f"{P}_init",
)
n = c[1].slider(ui.t(f"{P}.chains"), 100, MAX_CHAINS, 300, 100, key=f"{P}_chains")
steps = c[2].slider(
    ui.t(f"{P}.lsteps"),
    10,
    5000,
    int(min(max(model.langevin_steps, 10), 5000)),
    10,
    key=f"{P}_lsteps",
)
eps = c[3].select_slider(
    ui.t(f"{P}.step_size"),
    [0.0005, 0.001, 0.002, 0.004, 0.005, 0.01, 0.02, 0.05],
    float(model.step_size),
    key=f"{P}_eps",
)
seed = c[4].number_input(ui.t(f"{P}.seed"), 0, 2**31 - 1, 0, key=f"{P}_sample_seed")
with st.spinner():
    cx, cts, true_final = chains(
        rid, model, target, init, int(n), int(steps), float(eps), int(seed)
    )
vb = viz.union_bounds(
    tbounds, (cx[0, :, 0].min(), cx[0, :, 0].max(), cx[0, :, 1].min(), cx[0, :, 1].max())
)
gx, gy, lp = ui.log_density_grid(spec.target, 80, vb)
bg = [viz.contour_trace(lp, gx, gy, color="#9aa4b2")]
labels = [f"{ui.t(f'{P}.lsteps')}: {int(s)}" for s in cts]
fig = reverse_trajectory_figure(cx, vb, labels, trails=8, background=bg, particle_name="x")
st.markdown(f"**{ui.t(f'{P}.trajectory_title')}**")
ui.figure(
    fig, f"{P}_{spec.target.name}_chains", data=viz.frame_table(cx, labels), key=f"{P}_chains_fig"
)
fig = final_samples_figure(
    {ui.t(f"{P}.final_learned"): cx[-1], ui.t(f"{P}.final_true"): true_final}, vb, background=bg
)
ui.figure(
    fig,
    f"{P}_{spec.target.name}_final",
    data={"learned": cx[-1], "true": true_final},
    key=f"{P}_final_fig",
)
st.caption(ui.t(f"{P}.langevin_caption"))

# --- metrics, samples, forward diffusion, downloads ----------------------------------------------
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
    fd = ui.forward_process(
        spec.target, ForwardConfig(process="ve", sigma_min=0.01, sigma_max=3.0, L=50, n=600)
    )
    ui.figure(
        forward_diffusion_figure(fd), f"{P}_{spec.target.name}_forward", key=f"{P}_forward_fig"
    )
    st.caption(ui.t(f"{P}.forward_caption"))
st.markdown(f"**{ui.t(f'{P}.downloads')}**")
ui.downloads(trained)
ui.csv_button(
    viz.frame_table(cx, labels), f"{P}_chains", ui.t(f"{P}.download_chains"), key=f"{P}_csv_chains"
)
ui.gif_button(cx, vb, f"{P}_{spec.target.name}_chains", labels=labels, key=f"{P}_gif")
ui.theory(P)
