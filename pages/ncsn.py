"""Denoising score matching / NCSN (lecture 4-2): the σ ladder, learned vs exact score of p_σ,
annealed Langevin trajectories, plain vs annealed Langevin, forward (VE) noising."""

import pandas as pd
import streamlit as st

from genlib import ui, viz
from genlib.device import make_generator
from genlib.geometry import expand_bounds
from genlib.lab.fields import compare_fields
from genlib.lab.forward import ForwardConfig
from genlib.lab.ncsn import mode_weights, ncsn_langevin_demo
from genlib.viz.diffusion import (
    final_samples_figure,
    reverse_trajectory_figure,
    schedule_curves,
)
from genlib.viz.diffusion_forward import forward_diffusion_figure

P = "ncsn"
ui.setup_page(P)
ui.header(P)


def extra(defaults: dict) -> dict:
    c1, c2, c3 = st.columns(3)
    mode = c1.radio(
        ui.t(f"{P}.mode_label"),
        ["multi", "single"],
        format_func=lambda v: ui.t(f"{P}.mode_{v}"),
        key=f"{P}_mode",
    )
    if mode == "single":
        sigma = c2.select_slider(
            ui.t(f"{P}.sigma_single"), [0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0], 0.3, key=f"{P}_sigma"
        )
        return {"mode": "single", "sigma": float(sigma)}
    levels = c2.slider(
        ui.t(f"{P}.levels"), 2, 20, int(defaults.get("num_levels", 10)), key=f"{P}_levels"
    )
    smax = c3.select_slider(
        ui.t(f"{P}.sigma_max"), [1.0, 2.0, 5.0, 10.0, 20.0], 10.0, key=f"{P}_smax"
    )
    return {"mode": "multi", "num_levels": int(levels), "sigma_max": float(smax)}


with ui.controls():
    spec = ui.run_form(P, default_target="8gaussians", extra=extra)
trained = ui.train_panel(spec, page=P)
if trained is None:
    ui.theory(P)
    st.stop()
model, target = trained.model, trained.target
rid = f"{spec.key()}:{trained.result.status}:{trained.result.steps_done}"
tbounds = ui.target_bounds(spec.target)
sigmas = model.sigma_list  # σ_1 > … > σ_L


@st.cache_data(max_entries=32, show_spinner=False)
def field(rid: str, _model, _target, sigma: float, zoom: float, res: int):
    return compare_fields(_model, _target, sigma, expand_bounds(tbounds, zoom), res)


@st.cache_data(max_entries=16, show_spinner=False)
def trajectory(rid: str, _model, n: int, seed: int):
    tr = _model.trajectory(n, 60, generator=make_generator(seed, _model.device)).cpu()
    return tr.xs.numpy(), tr.ts.numpy(), tr.time_label


@st.cache_data(max_entries=16, show_spinner=False)
def comparison(rid: str, _model, _target, use_true: bool, n: int, plain_step: float, seed: int):
    cmp = ncsn_langevin_demo(_model, _target, use_true, n, plain_step, seed=seed)
    fr = mode_weights(_target, {"plain": cmp.plain_samples, "annealed": cmp.annealed_samples})
    return cmp.plain_samples.numpy(), cmp.annealed_samples.numpy(), fr


# --- the noise ladder ----------------------------------------------------------------------------
if model.mode == "multi":
    st.subheader(ui.t(f"{P}.ladder_title"))
    steps = model.level_steps
    fig = schedule_curves(
        range(1, len(sigmas) + 1), {"σ_i": sigmas, "α_i": steps}, xlabel="i", log_y=True
    )
    ui.figure(
        fig,
        f"{P}_ladder",
        data={"i": list(range(1, len(sigmas) + 1)), "sigma": sigmas, "alpha": steps},
        key=f"{P}_ladder_fig",
    )
    st.caption(ui.t(f"{P}.ladder_caption"))

# --- learned vs exact score of p_σ ---------------------------------------------------------------
st.subheader(ui.t(f"{P}.field_title"))
c = st.columns(4)
if len(sigmas) > 1:
    sigma = c[0].select_slider(
        ui.t(f"{P}.sigma_pick"),
        sigmas[::-1],
        sigmas[-1],
        format_func=lambda s: f"{s:.3g}",
        key=f"{P}_sigma_pick",
    )
else:  # single-σ DSM: the one σ it was trained at
    sigma = sigmas[0]
    c[0].metric(ui.t(f"{P}.sigma_pick"), f"{sigma:.3g}")
zoom = c[1].select_slider(ui.t(f"{P}.zoom"), [1.0, 1.5, 2.0, 3.0], 1.0, key=f"{P}_zoom")
res = c[2].slider(ui.t(f"{P}.grid"), 9, 35, 21, 2, key=f"{P}_grid")
normalise = c[3].toggle(ui.t(f"{P}.normalise"), value=False, key=f"{P}_normalise")
fb = expand_bounds(tbounds, float(zoom))
ui.field_panel(
    P,
    spec.target,
    field(rid, model, target, float(sigma), float(zoom), int(res)),
    fb,
    names=("s_θ(x, σ)", "∇ log p_σ"),
    normalise=normalise,
    name=f"{P}_{spec.target.name}_field_sigma{sigma:.3g}",
)

# --- annealed Langevin trajectories --------------------------------------------------------------
st.subheader(ui.t(f"{P}.trajectory_title"))
c = st.columns(3)
n = c[0].slider(ui.t(f"{P}.particles"), 100, 5000, 1000, 100, key=f"{P}_n")
trails = c[1].slider(ui.t(f"{P}.trails"), 0, 30, 8, key=f"{P}_trails")
seed = c[2].number_input(ui.t(f"{P}.seed"), 0, 2**31 - 1, 0, key=f"{P}_sample_seed")
with st.spinner():
    txs, tts, tlabel = trajectory(rid, model, int(n), int(seed))
labels = [f"{tlabel} = {v:.3g}" for v in tts]
vb = viz.pad_bounds(tbounds, 0.1)
gx, gy, lp = ui.log_density_grid(spec.target, 80, vb)
bg = [viz.contour_trace(lp, gx, gy, color="#9aa4b2")]
fig = reverse_trajectory_figure(
    txs, vb, labels, trails=int(trails), background=bg, particle_name="x"
)
ui.figure(
    fig, f"{P}_{spec.target.name}_annealed", data=viz.frame_table(txs, labels), key=f"{P}_traj_fig"
)
st.caption(ui.t(f"{P}.trajectory_caption"))

# --- plain vs annealed Langevin ------------------------------------------------------------------
st.subheader(ui.t(f"{P}.compare_title"))
c = st.columns(3)
single = model.mode == "single"  # one σ: only the exact score can be annealed
# default: the exact score, so the demo is about the sampler alone (the toggle tries s_θ)
use_true = c[0].toggle(ui.t(f"{P}.use_true"), value=True, disabled=single, key=f"{P}_use_true")
plain_step = c[1].select_slider(
    ui.t(f"{P}.plain_step"), [0.001, 0.005, 0.01, 0.05, 0.1, 0.2], 0.05, key=f"{P}_plain_step"
)
nc = c[2].slider(ui.t(f"{P}.particles"), 200, 5000, 1000, 100, key=f"{P}_nc")
with st.spinner():
    plain, annealed, fracs = comparison(
        rid, model, target, bool(use_true), int(nc), float(plain_step), int(seed)
    )
names = (ui.t(f"{P}.plain"), ui.t(f"{P}.annealed"))
fig = final_samples_figure({names[0]: plain, names[1]: annealed}, vb, background=bg)
ui.figure(
    fig,
    f"{P}_{spec.target.name}_plain_vs_annealed",
    data={"plain": plain, "annealed": annealed},
    key=f"{P}_cmp_fig",
)
if fracs is not None and len(fracs["target"]) <= 30:
    st.markdown(ui.t(f"{P}.weights"))
    rows = {
        ui.t(f"{P}.weights_target"): fracs["target"],
        names[0]: fracs["plain"],
        names[1]: fracs["annealed"],
    }
    cols = [f"{ui.t(f'{P}.component')} {k + 1}" for k in range(len(fracs["target"]))]
    st.dataframe(pd.DataFrame(rows, index=cols).T.round(3))
st.caption(ui.t(f"{P}.compare_caption"))

# --- metrics, forward noising, downloads ---------------------------------------------------------
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
    cfg = ForwardConfig(
        process="ve", sigma_min=model.sigma_min, sigma_max=model.sigma_max, L=50, n=600
    )
    ui.figure(
        forward_diffusion_figure(ui.forward_process(spec.target, cfg)),
        f"{P}_{spec.target.name}_forward",
        key=f"{P}_forward_fig",
    )
    st.caption(ui.t(f"{P}.forward_caption"))
st.markdown(f"**{ui.t(f'{P}.downloads')}**")
ui.downloads(trained)
ui.csv_button(
    viz.frame_table(txs, labels), f"{P}_frames", ui.t(f"{P}.download_frames"), key=f"{P}_csv_frames"
)
ui.gif_button(txs, vb, f"{P}_{spec.target.name}_annealed", labels=labels, key=f"{P}_gif")
ui.theory(P)
