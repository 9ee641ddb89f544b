"""Boltzmann machine (lecture 2-2, 2-3): a Gaussian–Bernoulli RBM trained by CD-k / PCD; free-energy
landscape, the exact 2^H-component mixture, block-Gibbs chains, positive vs negative phase."""

import streamlit as st
import torch

from genlib import ui, viz
from genlib.device import make_generator
from genlib.lab.rbm import gibbs_frames, negative_history, negative_phase, rbm_landscape
from genlib.metrics import mixture_mode_coverage
from genlib.models.rbm import MAX_EXACT_HIDDEN
from genlib.viz import rbm as rv

P = "rbm"
ui.setup_page(P)
ui.header(P)
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731
LABELS = {k: T(f"lab_{k}") for k in rv.LABELS}
RES = 110


def extra(preset: dict) -> dict:
    c1, c2, c3 = st.columns(3)
    hidden = c1.slider(
        T("hidden"),
        1,
        MAX_EXACT_HIDDEN,
        int(preset["hidden"]),
        key=f"{P}_hidden",
        help=T("hidden_help"),
    )
    sampler = c2.selectbox(
        T("sampler"), ["cd", "pcd", "exact"], format_func=lambda v: T(f"sampler_{v}"), key=f"{P}_sampler",
        help=T("sampler_help"),
    )  # fmt: skip
    k = c3.slider(T("k"), 1, 50, int(preset["k"]), key=f"{P}_k", help=T("k_help"))
    c4, c5 = st.columns(2)
    sigma = c4.number_input(T("sigma"), 0.05, 3.0, float(preset["sigma"]), 0.05, key=f"{P}_sigma")
    learn = c5.toggle(
        T("learn_sigma"), bool(preset.get("learn_sigma", False)), key=f"{P}_learn_sigma"
    )
    return {
        "hidden": int(hidden),
        "sampler": sampler,
        "k": int(k),
        "sigma": float(sigma),
        "learn_sigma": bool(learn),
    }


with ui.controls():
    spec = ui.run_form(P, default_target="8gaussians", extra=extra)
trained = ui.train_panel(spec, page=P)
if trained is None:
    ui.theory(P)
    st.stop()

model, target = trained.model, trained.target
rid = f"{spec.key()}:{trained.result.status}:{trained.result.steps_done}"
bounds = viz.pad_bounds(ui.target_bounds(spec.target), 0.05)


@st.cache_data(max_entries=16, show_spinner=False)
def grids(rid: str, _model):
    v = rbm_landscape(_model, bounds, RES)
    return v.xs, v.ys, v.energy, v.log_q, v.log_pi, v.means


@st.cache_data(max_entries=32, show_spinner=False)
def chains(rid: str, _model, start: str, n: int, steps: int, seed: int):
    g = make_generator(seed, _model.device)
    x0 = torch.as_tensor(ui.target_samples(spec.target, n, seed)) if start == "data" else None
    return gibbs_frames(_model, n, steps, x0=x0, generator=g).numpy()


@st.cache_data(max_entries=16, show_spinner=False)
def phases(rid: str, _model, _chains, n: int, seed: int):
    x = torch.as_tensor(ui.target_samples(spec.target, n, seed + 1), device=_model.device)
    neg = negative_phase(_model, x, chains=_chains, generator=make_generator(seed, _model.device))
    return x.cpu().numpy(), neg.cpu().numpy()


xs, ys, energy, log_q, log_pi, means = grids(rid, model)
samples = ui.sample_model(trained, 2000)
bg = [rv.energy_trace(energy, xs, ys, showscale=False, name=LABELS["energy"])]

# --- the landscape and the mixture ----------------------------------------------------------------------
c1, c2 = st.columns(2)
with c1:
    st.subheader(T("energy_title"))
    data = ui.target_samples(spec.target, 600)
    fig = rv.free_energy_figure(
        energy,
        xs,
        ys,
        bounds,
        points={T("lab_samples"): samples[:600], T("lab_data_short"): data},
        labels=LABELS,
    )
    ui.figure(fig, f"{P}_free_energy", data={"energy": energy})
    st.caption(T("energy_caption"))
with c2:
    st.subheader(T("mixture_title", n=2**model.hidden))
    fig = rv.mixture_figure(log_q, xs, ys, bounds, log_pi, means, labels=LABELS)
    ui.figure(
        fig, f"{P}_mixture", data={"log_pi": log_pi, "mean_x1": means[:, 0], "mean_x2": means[:, 1]}
    )
    sig = model.log_sigma.detach().exp().cpu().numpy()
    st.caption(T("mixture_caption", n=2**model.hidden, s1=f"{sig[0]:.3f}", s2=f"{sig[1]:.3f}"))

# --- block Gibbs chains ----------------------------------------------------------------------------------
st.subheader(T("gibbs_title"))
cc = st.columns(4)
n = cc[0].slider(T("chains"), 50, 1000, 300, 50, key=f"{P}_n")
short = cc[1].slider(T("short_steps"), 1, 20, int(model.k), key=f"{P}_short", help=T("short_help"))
long = cc[2].select_slider(T("long_steps"), [20, 50, 100, 300, 1000, 3000], 300, key=f"{P}_long")
seed = cc[3].number_input(T("seed"), 0, 2**31 - 1, 0, key=f"{P}_chain_seed")
c1, c2 = st.columns(2)
for col, start, steps, title in (
    (c1, "data", short, "short_title"),
    (c2, "noise", long, "long_title"),
):
    with col:
        st.markdown(f"**{T(title, k=steps)}**")
        frames = chains(rid, model, start, int(n), int(steps), int(seed))
        labels = [str(i) for i in range(frames.shape[0])]
        fig = rv.chains_figure(
            frames, labels, bounds, background=bg, labels=LABELS, slider_prefix=T("sweep_prefix")
        )
        ui.figure(fig, f"{P}_chains_{start}", data=frames)
st.caption(T("gibbs_caption"))

# --- positive vs negative phase --------------------------------------------------------------------------
st.subheader(T("phases_title"))
c1, c2 = st.columns(2)
with c1:
    # PCD continues the run's persistent chains, kept in the training result
    pos, neg = phases(rid, model, trained.result.extras.get("pcd_chains"), 300, int(seed))
    ui.figure(
        rv.phases_figure(pos, neg, bounds, background=bg, labels=LABELS),
        f"{P}_phases",
        data={"positive": pos, "negative": neg},
    )
    st.caption(T("phases_caption", sampler=T(f"sampler_{model.sampler}")))
with c2:
    hist = negative_history(trained.result.extras)  # recorded during training, kept in the result
    if hist is not None:
        frames = hist.particles
        fig = rv.chains_figure(
            frames, [str(s) for s in hist.steps], bounds, background=bg, trails=0,
            labels={**LABELS, "chains": LABELS["negative"]}, slider_prefix=T("train_step_prefix"),
        )  # fmt: skip
        ui.figure(fig, f"{P}_negative_history", data=frames)
        st.caption(T("history_caption"))
    else:
        st.info(T("history_missing"), icon=":material/info:")

# --- modes and metrics -------------------------------------------------------------------------------------
rep = mixture_mode_coverage(torch.as_tensor(ui.sample_model(trained, 5000)), target)
if rep is not None:
    c1, c2 = st.columns(2)
    c1.metric(T("modes_covered"), f"{rep['modes_covered']:.0f} / {rep['modes_total']:.0f}")
    c2.metric(T("near_mode"), f"{100 * rep['fraction_near_mode']:.0f} %")
    st.caption(T("modes_caption", r=f"{rep['radius']:.2f}"))
ui.metrics_panel(trained)
ui.downloads(trained)
ui.theory(P)
