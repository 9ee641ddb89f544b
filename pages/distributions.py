"""Distributions: samples over the exact density, the score field, the forward diffusion."""

import streamlit as st

from genlib import ui, viz
from genlib.lab.forward import MAX_FORWARD_FRAMES, MAX_FORWARD_PARTICLES, ForwardConfig
from genlib.viz.diffusion_forward import forward_diffusion_figure, schedule_figure

P = "distributions"
ui.setup_page(P)
ui.header(P)

with ui.controls():
    c1, c2, c3 = st.columns([3, 1, 1])
    with c1:
        spec = ui.target_picker(P, default="moons")
    n = c2.number_input(ui.t(f"{P}.n_samples"), 100, ui.MAX_SAMPLES, 2000, step=500, key=f"{P}_n")
    seed = c3.number_input(ui.t(f"{P}.seed"), 0, 2**31 - 1, 0, key=f"{P}_seed")

bounds = ui.target_bounds(spec)
x = ui.target_samples(spec, int(n), int(seed))  # (n, 2)
xs, ys, logp = ui.log_density_grid(spec, 140)

# --- samples over the exact density --------------------------------------------------------------
st.subheader(ui.t(f"{P}.samples_title"))
left, right = st.columns([3, 1], gap="large")
with right:
    contours = st.toggle(ui.t(f"{P}.show_contours"), value=False, key=f"{P}_contours")
    st.metric(
        ui.t(f"{P}.entropy"), f"{ui.target_entropy(spec):.3f} nats", help=ui.t(f"{P}.entropy_help")
    )
    mean = x.mean(0)
    st.metric(ui.t(f"{P}.mean"), f"({mean[0]:.2f}, {mean[1]:.2f})")
    st.metric(ui.t(f"{P}.n_shown"), f"{len(x):,}")
with left:
    bg = [viz.density_trace(logp, xs, ys)] + ([viz.contour_trace(logp, xs, ys)] if contours else [])
    size = 4.0 if len(x) <= 5000 else 2.5
    fig = viz.scatter({"x ~ p": x}, bounds, background=bg, size=size, opacity=0.55)
    fig.update_traces(marker_color=viz.MODEL_COLOR, selector={"mode": "markers"})
    ui.figure(fig, f"{spec.name}_samples", data=x)
    st.caption(ui.t(f"{P}.samples_caption"))

# --- the score field -----------------------------------------------------------------------------
st.subheader(ui.t(f"{P}.score_title"))
left, right = st.columns([3, 1], gap="large")
with right:
    normalise = st.toggle(ui.t(f"{P}.score_normalise"), value=True, key=f"{P}_normalise")
    res = st.slider(ui.t(f"{P}.score_res"), 9, 35, 21, 2, key=f"{P}_score_res")
    st.caption(ui.t(f"{P}.score_caption"))
with left:
    pts, score = ui.score_grid(spec, int(res))
    fig = viz.quiver(
        pts,
        score,
        bounds,
        normalise=normalise,
        background=[viz.contour_trace(logp, xs, ys, color="#9aa4b2")],
        name="∇ log p",
    )
    ui.figure(
        fig,
        f"{spec.name}_score",
        data={"x1": pts[:, 0], "x2": pts[:, 1], "s1": score[:, 0], "s2": score[:, 1]},
    )

# --- forward diffusion ---------------------------------------------------------------------------
st.subheader(ui.t(f"{P}.forward_title"))
c = st.columns([2, 2, 2, 2, 2])
process = c[0].radio(
    ui.t(f"{P}.process"),
    ["vp", "ve"],
    format_func=lambda v: ui.t(f"{P}.process_{v}"),
    key=f"{P}_process",
)
if process == "vp":
    kind = c[1].selectbox(
        ui.t(f"{P}.schedule"),
        ["linear", "cosine"],
        format_func=lambda v: ui.t(f"{P}.schedule_{v}"),
        key=f"{P}_schedule",
    )
    T = c[2].select_slider(
        ui.t(f"{P}.T"), [10, 20, 50, 100, 200, 500, 1000], value=100, key=f"{P}_T"
    )
    kw = {"process": "vp", "schedule": kind, "T": int(T)}
else:
    smin = c[1].number_input(
        ui.t(f"{P}.sigma_min"), 0.001, 1.0, 0.01, step=0.01, format="%.3f", key=f"{P}_smin"
    )
    smax = c[2].number_input(ui.t(f"{P}.sigma_max"), 0.1, 50.0, 3.0, step=0.5, key=f"{P}_smax")
    L = c[3].slider(ui.t(f"{P}.L"), 2, 200, 50, key=f"{P}_L")
    kw = {"process": "ve", "sigma_min": float(smin), "sigma_max": float(smax), "L": int(L)}
n_part = c[4].slider(
    ui.t(f"{P}.particles"), 50, MAX_FORWARD_PARTICLES, 600, 50, key=f"{P}_particles"
)
frames = c[4].slider(ui.t(f"{P}.frames"), 10, MAX_FORWARD_FRAMES, 41, key=f"{P}_frames")
try:
    cfg = ForwardConfig(n=int(n_part), frames=int(frames), res=60, seed=int(seed), **kw)
except ValueError as exc:
    st.error(str(exc))
    st.stop()
with st.spinner():
    fd = ui.forward_process(spec, cfg)
if fd.alpha_bar_T is not None:
    c[3].metric(
        ui.t(f"{P}.alpha_bar_T"), f"{fd.alpha_bar_T:.2e}", help=ui.t(f"{P}.alpha_bar_T_help")
    )
    if fd.alpha_bar_T > 0.05:
        st.warning(ui.t(f"{P}.alpha_bar_warn", value=fd.alpha_bar_T))
else:
    st.caption(ui.t(f"{P}.sigma_max_note"))
if fd.marginal is None:
    st.info(ui.t(f"{P}.no_marginal"))
fig = forward_diffusion_figure(fd)
ui.figure(
    fig,
    f"{spec.name}_{process}_forward",
    data=viz.frame_table(fd.xs, fd.labels),
    key=f"{P}_forward",
)
st.caption(ui.t(f"{P}.forward_caption"))
g1, g2 = st.columns([3, 1], gap="large")
with g1:
    ui.figure(
        schedule_figure(fd, title=ui.t(f"{P}.schedule_title")),
        f"{process}_schedule",
        key=f"{P}_schedule_fig",
    )
with g2:
    st.markdown(f"**{ui.t(f'{P}.downloads')}**")
    colors = [viz.MODEL_COLOR] + [viz.DATA_COLOR] * (fd.xs.shape[1] - 1)
    ui.gif_button(
        fd.xs,
        fd.bounds,
        f"{spec.name}_{process}_forward",
        labels=fd.labels,
        colors=colors,
        backgrounds=fd.marginal,
        key=f"{P}_gif",
    )
    ui.csv_button(x, f"{spec.name}_samples", ui.t(f"{P}.download_samples"), key=f"{P}_csv_samples")
    ui.csv_button(
        viz.frame_table(fd.xs, fd.labels),
        f"{spec.name}_{process}_frames",
        ui.t(f"{P}.download_frames"),
        key=f"{P}_csv_frames",
    )

ui.theory(P)
