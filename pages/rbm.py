"""Boltzmann machine (lecture 2-2, 2-3): a Gaussian–Bernoulli RBM trained by CD-k / PCD; free-energy
landscape, the exact 2^H-component mixture, block-Gibbs chains, positive vs negative phase."""

from typing import get_args

import streamlit as st

from genlib import ui, viz
from genlib.lab import rbm as lr
from genlib.models.rbm import MAX_EXACT_HIDDEN, Sampler, UpdateSign
from genlib.ui import state as ws
from genlib.viz import rbm as rv

P = "rbm"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731
RES = 110


def extra(preset: dict) -> dict:
    c1, c2 = st.columns(2)
    hidden = ws.slider(
        c1, T("hidden"), 1, MAX_EXACT_HIDDEN, value=int(preset["hidden"]), key=f"{P}_hidden", help=T("hidden_help")
    )  # fmt: skip
    samplers = get_args(Sampler)
    sampler = ws.selectbox(
        st, T("sampler"), samplers, index=samplers.index(preset["sampler"]),
        format_func=lambda v: T(f"sampler_{v}"), key=f"{P}_sampler", help=T("sampler_help"),
    )  # fmt: skip
    k = ws.slider(c2, T("k"), 1, 50, value=int(preset["k"]), key=f"{P}_k", help=T("k_help"))
    c4, c5 = st.columns(2)
    sigma = ws.number_input(c4, T("sigma"), 0.05, 3.0, value=float(preset["sigma"]), step=0.05, key=f"{P}_sigma")  # fmt: skip
    learn = ws.toggle(c5, T("learn_sigma"), value=bool(preset.get("learn_sigma", False)), key=f"{P}_learn_sigma")  # fmt: skip
    sign = ws.selectbox(st, T("update_sign"), get_args(UpdateSign), format_func=lambda v: T(f"update_sign_{v}"), key=f"{P}_update_sign", help=T("update_sign_help"))  # fmt: skip
    return {"hidden": int(hidden), "sampler": sampler, "k": int(k), "sigma": float(sigma), "learn_sigma": bool(learn), "update_sign": sign}  # fmt: skip


trained = ui.model_page(P, default_target="8gaussians", extra=extra)
LABELS = {k: T(f"lab_{k}") for k in rv.LABELS}
spec, model = trained.spec, trained.model
bounds = viz.pad_bounds(ui.target_bounds(spec.target), 0.05)
land = ui.derived(trained, lr.trained_landscape, bounds, RES)
bg = [rv.energy_trace(land.energy, land.xs, land.ys, showscale=False, name=LABELS["energy"])]

c1, c2 = st.columns(2)
with c1:
    st.subheader(T("energy_title"))
    points = {T("lab_samples"): ui.sample_model(trained, 600), T("lab_data_short"): ui.target_samples(spec.target, 600)}  # fmt: skip
    fig = rv.free_energy_figure(land.energy, land.xs, land.ys, bounds, points=points, labels=LABELS)
    ui.figure(fig, f"{P}_free_energy", data={"energy": land.energy})
    st.caption(T("energy_caption"))
with c2:
    st.subheader(T("mixture_title", n=land.n_components))
    if land.log_q is not None:
        fig = rv.mixture_figure(land.log_q, land.xs, land.ys, bounds, land.log_pi, land.means, labels=LABELS)  # fmt: skip
        ui.figure(fig, f"{P}_mixture", data={"log_pi": land.log_pi, "mean_x1": land.means[:, 0], "mean_x2": land.means[:, 1]})  # fmt: skip
    s1, s2 = (f"{s:.3f}" for s in land.sigma)
    st.caption(T("mixture_caption", n=land.n_components, s1=s1, s2=s2))

st.subheader(T("gibbs_title"))
cc = st.columns(4)
n = ws.slider(cc[0], T("chains"), 50, 1000, value=300, step=50, key=f"{P}_n")
short = ws.slider(cc[1], T("short_steps"), 1, 20, value=min(model.k, 20), key=f"{P}_short", help=T("short_help"))  # fmt: skip
long = ws.select_slider(cc[2], T("long_steps"), lr.LONG_CHAIN_STEPS, value=300, key=f"{P}_long")
seed = ws.number_input(cc[3], T("seed"), 0, 2**31 - 1, value=0, key=f"{P}_chain_seed")
c1, c2 = st.columns(2)
runs = zip((c1, c2), get_args(lr.ChainStart), (short, long), ("short_title", "long_title"), strict=True)  # fmt: skip
for col, start, steps, title in runs:
    with col:
        st.markdown(f"**{T(title, k=steps)}**")
        frames = ui.derived(trained, lr.trained_chains, start, int(n), int(steps), int(seed))
        fig = rv.chains_figure(
            frames, [str(i) for i in range(len(frames))], bounds, background=bg, labels=LABELS,
            slider_prefix=T("sweep_prefix"),
        )  # fmt: skip
        ui.figure(fig, f"{P}_chains_{start}", data=frames)
st.caption(T("gibbs_caption"))

with ui.section(P, "phases", T("phases_title"), icon=":material/compare_arrows:") as shown:
    if shown:
        c1, c2 = st.columns(2)
        with c1:
            pos, neg = ui.derived(trained, lr.trained_phases, 300, int(seed))
            fig = rv.phases_figure(pos, neg, bounds, background=bg, labels=LABELS)
            ui.figure(fig, f"{P}_phases", data={"positive": pos, "negative": neg})
            st.caption(T("phases_caption", sampler=T(f"sampler_{model.sampler}")))
        with c2:
            hist = lr.negative_history(
                trained.result.extras
            )  # recorded during training, kept in the result
            if hist is not None:
                fig = rv.chains_figure(
                    hist.particles, [str(s) for s in hist.steps], bounds, background=bg, trails=0,
                    labels={**LABELS, "chains": LABELS["negative"]}, slider_prefix=T("train_step_prefix"),
                )  # fmt: skip
                ui.figure(fig, f"{P}_negative_history", data=hist.particles)
                st.caption(T("history_caption"))
            else:
                st.info(T("history_missing"), icon=":material/info:")

rep = ui.derived(trained, lr.trained_coverage)
if rep is not None:
    c1, c2 = st.columns(2)
    c1.metric(T("modes_covered"), f"{rep['modes_covered']:.0f} / {rep['modes_total']:.0f}")
    c2.metric(T("near_mode"), f"{rep['fraction_near_mode']:.0%}")
    st.caption(T("modes_caption", r=f"{rep['radius']:.2f}"))
ui.rbm_sign_panel(P, trained)
ui.page_end(P, trained)
