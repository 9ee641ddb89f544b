"""GAN (lecture 3-3): D_φ vs the optimal D* = log p/q, generator pushes, hand steps (D only /
G only / both) with slow motion, fakes over training, mode coverage."""

import pandas as pd
import streamlit as st

from genlib import ui
from genlib.lab.gan import (
    MAX_RECORD_FRAMES,
    MAX_SESSION_STEPS,
    GanSession,
    coverage_over_training,
    gan_view,
    model_coverage,
)
from genlib.viz import gan as vg

ui.setup_page("gan")
ui.header("gan")
T = lambda key, **kw: ui.t(f"gan.{key}", **kw)  # noqa: E731
LABELS = {k: T(f"lab_{k}") for k in vg.LABELS}
SESSION, SESSION_ID, SLOWMO = "gan_hand_session", "gan_hand_session_id", "gan_slowmo"


def extra(preset: dict) -> dict:
    c1, c2 = st.columns(2)
    z_dim = c1.number_input(T("z_dim"), 1, 16, int(preset["z_dim"]), key="gan_z_dim")
    loss = c2.selectbox(
        T("loss"),
        ["nonsaturating", "minimax"],
        format_func=lambda v: T(f"loss_{v}"),
        key="gan_gen_loss",
        help=T("loss_help"),
    )
    c3, c4 = st.columns(2)
    k_d = c3.number_input(T("k_d"), 1, 10, int(preset["k_d"]), key="gan_k_d", help=T("k_help"))
    k_g = c4.number_input(T("k_g"), 1, 10, int(preset["k_g"]), key="gan_k_g")
    return {"z_dim": int(z_dim), "loss": loss, "k_d": int(k_d), "k_g": int(k_g)}


def rid(trained) -> str:
    return f"{trained.spec.key()}:{trained.result.status}:{trained.result.steps_done}"


@st.cache_data(max_entries=16, show_spinner=False)
def trained_coverage(run_id: str, _trained):
    return model_coverage(_trained.model, _trained.target), coverage_over_training(
        _trained.result.snapshots, _trained.target
    )


with ui.controls():
    spec = ui.run_form("gan", default_target="8gaussians", extra=extra)
trained = ui.train_panel(spec, page="gan")

if trained is not None:
    key = rid(trained)
    target, bnds = trained.target, trained.target.bounds
    if st.session_state.get(SESSION_ID) != key:
        st.session_state[SESSION] = GanSession(
            trained.model, target, batch_size=min(spec.train.batch_size, 4096), seed=spec.train.seed, lr=spec.train.lr
        )  # fmt: skip
        st.session_state[SESSION_ID] = key
        st.session_state.pop(SLOWMO, None)
    sess: GanSession = st.session_state[SESSION]

    st.subheader(T("controls"))
    st.caption(T("controls_caption"))
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
    mode = c1.radio(
        T("mode"), ["d", "g", "both"], index=2, format_func=lambda m: T(f"mode_{m}"),
        horizontal=True, key="gan_mode",
    )  # fmt: skip
    n_steps = c2.number_input(T("n_steps"), 1, MAX_SESSION_STEPS, 10, key="gan_n_steps")
    if c3.button(T("step"), type="primary", key="gan_step", icon=":material/skip_next:"):
        sess.step(mode, int(n_steps))
        st.session_state.pop(SLOWMO, None)
    if c4.button(T("reset"), key="gan_reset", icon=":material/restart_alt:"):
        st.session_state.pop(SESSION_ID, None)
        st.rerun()
    if sess.history:
        last = sess.history[-1]
        fmt = lambda k: f"{last[k]:.4f}" if k in last else "–"  # noqa: E731
        st.info(
            T("session_state", steps=sess.steps_done, d_loss=fmt("d_loss"), g_loss=fmt("g_loss"))
        )
    else:
        st.caption(T("session_fresh"))

    st.subheader(T("duel"))
    c1, c2, c3, _ = st.columns([1, 1, 1, 1])
    n_arrows = c1.slider(T("arrows"), 0, 500, 150, 10, key="gan_arrows")
    zmax = c2.select_slider(T("zmax"), [1.0, 2.0, 3.0, 5.0, 8.0], 5.0, key="gan_zmax")
    bw = c3.select_slider(
        T("bandwidth"), [0.5, 1.0, 2.0, 4.0], 1.0, key="gan_bandwidth", help=T("bandwidth_help")
    )
    view = gan_view(sess.model, target, sess.z, bnds, res=70, bandwidth_scale=bw)
    real = ui.target_samples(spec.target, 1000, seed=1)
    fig = vg.discriminator_figure(view, bnds, real=real, arrows=n_arrows, zmax=zmax, labels=LABELS)
    ui.figure(fig, "gan_discriminator", data={"fakes": view.fakes, "push": view.push})
    st.caption(T("duel_caption", h=view.bandwidth, zmax=zmax))

    with st.expander(T("slowmo"), icon=":material/slow_motion_video:"):
        st.caption(T("slowmo_caption"))
        c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
        frames = c1.number_input(T("frames"), 2, MAX_RECORD_FRAMES, 20, key="gan_frames")
        per_frame = c2.number_input(T("steps_per_frame"), 1, 50, 2, key="gan_per_frame")
        if c3.button(T("record"), key="gan_record", icon=":material/fiber_manual_record:"):
            start = sess.steps_done
            with st.spinner(T("recording")):
                views = sess.record(mode, int(frames), int(per_frame), sess.z[:300], bnds, res=40)
            steps = [start + i * int(per_frame) for i in range(len(views))]
            st.session_state[SLOWMO] = (views, steps)
        if SLOWMO in st.session_state:
            views, steps = st.session_state[SLOWMO]
            fig = vg.slow_motion_figure(
                views,
                bnds,
                steps,
                real=real[:300],
                arrows=min(n_arrows, 300),
                zmax=zmax,
                labels=LABELS,
            )
            ui.figure(fig, "gan_slow_motion")

    st.subheader(T("coverage"))
    cov_trained, cov_rows = trained_coverage(key, trained)
    if cov_trained is None:
        st.caption(T("coverage_none"))
    else:
        cov_now = model_coverage(sess.model, target)
        total = int(cov_trained["modes_total"])
        c1, c2, c3 = st.columns(3)
        c1.metric(T("modes_trained"), f"{int(cov_trained['modes_covered'])} / {total}")
        c2.metric(T("modes_now"), f"{int(cov_now['modes_covered'])} / {total}")
        c3.metric(T("fraction_now"), f"{cov_now['fraction_near_mode']:.1%}")
        if cov_rows:
            ui.figure(
                vg.coverage_figure(cov_rows, labels=LABELS),
                "gan_coverage",
                data=pd.DataFrame(cov_rows),
            )
        st.caption(T("coverage_caption", radius=cov_trained["radius"]))

    st.subheader(T("evolution"))
    if trained.result.snapshots:
        xs, ys, lp = ui.log_density_grid(spec.target, 120)
        fig = vg.evolution_figure(trained.result.snapshots, bnds, lp, xs, ys, labels=LABELS)
        ui.figure(fig, "gan_evolution")
        st.caption(T("evolution_caption"))
    else:
        st.caption(T("no_snapshots"))

    st.subheader(T("curves"))
    losses, probs = vg.gan_curves(trained.result.history, labels=LABELS)
    c1, c2 = st.columns(2)
    with c1:
        ui.figure(losses, "gan_losses", data=pd.DataFrame(trained.result.history))
    with c2:
        ui.figure(probs, "gan_d_probabilities")
    st.caption(T("curves_caption"))

    ui.metrics_panel(trained)
    ui.downloads(trained)
ui.theory("gan")
