"""Distributions: samples over the exact density, the score field, the forward diffusion."""

from typing import get_args

import streamlit as st

from genlib import ui, viz
from genlib.lab import forward as lfw
from genlib.processes import ScheduleKind
from genlib.ui import diffusion as ud
from genlib.ui import state as ws
from genlib.ui.cached import sample_mean
from genlib.viz.diffusion_forward import schedule_figure

P = "distributions"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731

ui.setup_page(P)
ui.header(P)
with ui.controls():
    c1, c2, c3 = st.columns([3, 1, 1])
    with c1:
        spec = ui.target_picker(P, default="moons")
    n = ws.number_input(c2, T("n_samples"), 100, ui.MAX_SAMPLES, value=2000, step=500, key=f"{P}_n")
    seed = ws.number_input(c3, T("seed"), 0, 2**31 - 1, value=0, key=f"{P}_seed")

bounds = ui.target_bounds(spec)
x = ui.target_samples(spec, int(n), int(seed))  # (n, 2)
xs, ys, logp = ui.log_density_grid(spec, 140)

# --- samples over the exact density --------------------------------------------------------------
st.subheader(T("samples_title"))
left, right = st.columns([3, 1], gap="large")
with right:
    contours = ws.toggle(st, T("show_contours"), value=False, key=f"{P}_contours")
    st.metric(T("entropy"), f"{ui.target_entropy(spec):.3f} nats", help=T("entropy_help"))
    mean = sample_mean(spec, int(n), int(seed))
    st.metric(T("mean"), f"({mean[0]:.2f}, {mean[1]:.2f})")
    st.metric(T("n_shown"), f"{len(x):,}")
with left:
    bg = [viz.density_trace(logp, xs, ys)] + ([viz.contour_trace(logp, xs, ys)] if contours else [])
    fig = viz.scatter({"x ~ p": x}, bounds, background=bg, size=4.0 if len(x) <= 5000 else 2.5, opacity=0.55)  # fmt: skip
    fig.update_traces(marker_color=viz.MODEL_COLOR, selector={"mode": "markers"})
    ui.figure(fig, f"{spec.name}_samples", data=x)
    st.caption(T("samples_caption"))

# --- the score field -----------------------------------------------------------------------------
st.subheader(T("score_title"))
left, right = st.columns([3, 1], gap="large")
with right:
    normalise = ws.toggle(st, T("score_normalise"), value=True, key=f"{P}_normalise")
    res = ws.slider(st, T("score_res"), 9, 35, value=21, step=2, key=f"{P}_score_res")
    st.caption(T("score_caption"))
with left:
    pts, score = ui.score_grid(spec, int(res))
    fig = viz.quiver(pts, score, bounds, normalise=normalise, name="∇ log p",
                     background=[viz.contour_trace(logp, xs, ys, color="#9aa4b2")])  # fmt: skip
    data = {"x1": pts[:, 0], "x2": pts[:, 1], "s1": score[:, 0], "s2": score[:, 1]}
    ui.figure(fig, f"{spec.name}_score", data=data)

# --- forward diffusion ---------------------------------------------------------------------------
st.subheader(T("forward_title"))
c = st.columns(5)
process = ws.radio(c[0], T("process"), get_args(lfw.ProcessKind), format_func=lambda v: T(f"process_{v}"), key=f"{P}_process")  # fmt: skip
if process == "vp":
    kind = ws.selectbox(c[1], T("schedule"), get_args(ScheduleKind), format_func=lambda v: T(f"schedule_{v}"), key=f"{P}_schedule")  # fmt: skip
    steps = ws.select_slider(c[2], T("T"), lfw.T_CHOICES, value=100, key=f"{P}_T")
    kw = {"process": "vp", "schedule": kind, "T": int(steps)}
else:
    smin = ws.number_input(c[1], T("sigma_min"), 0.001, 1.0, value=0.01, step=0.01, format="%.3f", key=f"{P}_smin")  # fmt: skip
    smax = ws.number_input(c[2], T("sigma_max"), 0.1, 50.0, value=3.0, step=0.5, key=f"{P}_smax")
    levels = ws.slider(c[3], T("L"), 2, 200, value=50, key=f"{P}_L")
    kw = {"process": "ve", "sigma_min": float(smin), "sigma_max": float(smax), "L": int(levels)}
n_part = ws.slider(c[4], T("particles"), 50, lfw.MAX_FORWARD_PARTICLES, value=600, step=50, key=f"{P}_particles")  # fmt: skip
frames = ws.slider(c[4], T("frames"), 10, lfw.MAX_FORWARD_FRAMES, value=41, key=f"{P}_frames")
try:
    cfg = lfw.ForwardConfig(n=int(n_part), frames=int(frames), res=60, seed=int(seed), **kw)
except ValueError as exc:
    st.error(str(exc))
    st.stop()
with st.spinner(ui.t("common.computing")):
    fd = ui.forward_process(spec, cfg)
if fd.alpha_bar_T is not None:
    ud.alpha_bar_badge(c[3], P, fd.alpha_bar_T)
else:
    st.caption(T("sigma_max_note"))
if fd.marginal is None:
    st.info(T("no_marginal"))
frame_data = viz.frame_table(fd.xs, fd.labels)
ui.figure(ud.forward_figure(fd), f"{spec.name}_{process}_forward", data=frame_data, key=f"{P}_forward")  # fmt: skip
st.caption(T("forward_caption"))
g1, g2 = st.columns([3, 1], gap="large")
with g1:
    fig = schedule_figure(fd, title=T("schedule_title"))
    ui.figure(fig, f"{process}_schedule", key=f"{P}_schedule_fig")
with g2:
    st.markdown(f"**{T('downloads')}**")
    colors = [viz.MODEL_COLOR] + [viz.DATA_COLOR] * (fd.xs.shape[1] - 1)
    ui.gif_button(fd.xs, fd.bounds, f"{spec.name}_{process}_forward", labels=fd.labels,
                  colors=colors, backgrounds=fd.marginal, key=f"{P}_gif")  # fmt: skip
    ui.csv_button(x, f"{spec.name}_samples", T("download_samples"), key=f"{P}_csv_samples")
    ui.csv_button(frame_data, f"{spec.name}_{process}_frames", T("download_frames"), key=f"{P}_csv_frames")  # fmt: skip

ws.url_notice()
ui.theory(P)
