"""GAN (lecture 3-3): D_φ vs the optimal D* = log p/q, generator pushes, hand steps (D only /
G only / both) with slow motion, fakes over training, mode coverage."""

from typing import get_args

import pandas as pd
import streamlit as st

from genlib import ui
from genlib.lab import gan as lg
from genlib.models.gan import MAX_K, GanLoss
from genlib.ui import state as ws
from genlib.viz import gan as vg

P = "gan"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731
SESSION, SLOWMO = f"{P}_hand_session", f"{P}_slowmo"  # session: (result id, GanSession), frames


def extra(preset: dict) -> dict:
    losses = get_args(GanLoss)
    loss = ws.selectbox(
        st, T("loss"), losses, index=losses.index(preset["loss"]), key=f"{P}_gen_loss",
        format_func=lambda v: T(f"loss_{v}"), help=T("loss_help"),
    )  # fmt: skip
    z_dim = ws.number_input(st, T("z_dim"), 1, 16, value=int(preset["z_dim"]), key=f"{P}_z_dim")
    c3, c4 = st.columns(2)
    k_d = ws.number_input(c3, T("k_d"), 1, MAX_K, value=int(preset["k_d"]), key=f"{P}_k_d", help=T("k_help"))  # fmt: skip
    k_g = ws.number_input(c4, T("k_g"), 1, MAX_K, value=int(preset["k_g"]), key=f"{P}_k_g")
    return {"z_dim": int(z_dim), "loss": loss, "k_d": int(k_d), "k_g": int(k_g)}


trained = ui.model_page(P, default_target="8gaussians", extra=extra)
LABELS = {k: T(f"lab_{k}") for k in vg.LABELS}
spec, target, bnds, rid = trained.spec, trained.target, trained.target.bounds, ui.result_id(trained)
if st.session_state.get(SESSION, (None,))[0] != rid:  # a fresh hand-stepped copy per result
    st.session_state[SESSION] = (rid, lg.session_for(trained))
    st.session_state.pop(SLOWMO, None)
sess: lg.GanSession = st.session_state[SESSION][1]

st.subheader(T("controls"))
st.caption(T("controls_caption"))
c1, c2, c3, c4 = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
mode = ws.radio(
    c1, T("mode"), get_args(lg.StepMode), index=2, format_func=lambda m: T(f"mode_{m}"),
    horizontal=True, key=f"{P}_mode",
)  # fmt: skip
n_steps = ws.number_input(c2, T("n_steps"), 1, lg.MAX_SESSION_STEPS, value=10, key=f"{P}_n_steps")
if c3.button(T("step"), type="primary", key=f"{P}_hand_step", icon=":material/skip_next:"):
    sess.step(mode, int(n_steps))
    st.session_state.pop(SLOWMO, None)
if c4.button(T("reset"), key=f"{P}_hand_reset", icon=":material/restart_alt:"):
    st.session_state.pop(SESSION, None)
    st.rerun()
if sess.history:
    st.info(T("session_state", steps=sess.steps_done, **lg.loss_summary(sess)))
else:
    st.caption(T("session_fresh"))

st.subheader(T("duel"))
c1, c2, c3, _ = st.columns(4)
n_arrows = ws.slider(c1, T("arrows"), 0, 500, value=150, step=10, key=f"{P}_arrows")
zmax = ws.select_slider(c2, T("zmax"), lg.ZMAX_CHOICES, value=5.0, key=f"{P}_zmax")
bw = ws.select_slider(c3, T("bandwidth"), lg.BANDWIDTH_SCALES, value=1.0, key=f"{P}_bandwidth", help=T("bandwidth_help"))  # fmt: skip
view = lg.gan_view(sess.model, target, sess.z, bnds, res=70, bandwidth_scale=bw)
real = ui.target_samples(spec.target, 1000, seed=1)
fig = vg.discriminator_figure(view, bnds, real=real, arrows=n_arrows, zmax=zmax, labels=LABELS)
ui.figure(fig, f"{P}_discriminator", data={"fakes": view.fakes, "push": view.push})
st.caption(T("duel_caption", h=view.bandwidth, zmax=zmax))

with st.expander(T("slowmo"), icon=":material/slow_motion_video:"):
    st.caption(T("slowmo_caption"))
    c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
    frames = ws.number_input(c1, T("frames"), 2, lg.MAX_RECORD_FRAMES, value=20, key=f"{P}_frames")
    per_frame = ws.number_input(c2, T("steps_per_frame"), 1, 50, value=2, key=f"{P}_per_frame")
    if c3.button(T("record"), key=f"{P}_record", icon=":material/fiber_manual_record:"):
        with st.spinner(T("recording")):
            st.session_state[SLOWMO] = lg.slow_motion(sess, mode, int(frames), int(per_frame), bnds)
    if SLOWMO in st.session_state:
        views, steps = st.session_state[SLOWMO]
        fig = vg.slow_motion_figure(
            views, bnds, steps, real=real[:300], arrows=min(n_arrows, 300), zmax=zmax, labels=LABELS
        )
        ui.figure(fig, f"{P}_slow_motion")

st.subheader(T("coverage"))
cov_trained, cov_rows = ui.derived(trained, lg.trained_coverage)
if cov_trained is None:
    st.caption(T("coverage_none"))
else:
    cov_now, total = lg.model_coverage(sess.model, target), int(cov_trained["modes_total"])
    c1, c2, c3 = st.columns(3)
    c1.metric(T("modes_trained"), f"{int(cov_trained['modes_covered'])} / {total}")
    c2.metric(T("modes_now"), f"{int(cov_now['modes_covered'])} / {total}")
    c3.metric(T("fraction_now"), f"{cov_now['fraction_near_mode']:.1%}")
    if cov_rows:
        fig = vg.coverage_figure(cov_rows, labels=LABELS)
        ui.figure(fig, f"{P}_coverage", data=pd.DataFrame(cov_rows))
    st.caption(T("coverage_caption", radius=cov_trained["radius"]))

st.subheader(T("evolution"))
if trained.result.snapshots:
    xs, ys, lp = ui.log_density_grid(spec.target, 120)
    fig = vg.evolution_figure(trained.result.snapshots, bnds, lp, xs, ys, labels=LABELS)
    ui.figure(fig, f"{P}_evolution")
    st.caption(T("evolution_caption"))
else:
    st.caption(T("no_snapshots"))

st.subheader(T("curves"))
losses, probs = vg.gan_curves(trained.result.history, labels=LABELS)
c1, c2 = st.columns(2)
with c1:
    ui.figure(losses, f"{P}_losses", data=pd.DataFrame(trained.result.history))
with c2:
    ui.figure(probs, f"{P}_d_probabilities")
st.caption(T("curves_caption"))
ui.gan_correction_panel(P, trained)
ui.page_end(P, trained)
