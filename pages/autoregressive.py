"""Autoregressive model (lecture 2-4): q(x¹)·q(x²|x¹) with mixture-density factors; marginal and
conditional slices against the true ones, sequential sampling, exact NLL against S(p)."""

import pandas as pd
import streamlit as st
import torch

from genlib import ui, viz
from genlib.device import make_generator
from genlib.lab.autoregressive import conditional_curves, marginal_curves
from genlib.viz import autoregressive as av
from genlib.viz.flow import nll_figure

P = "autoregressive"
ui.setup_page(P)
ui.header(P)
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731
LABELS = {k: T(f"lab_{k}") for k in av.LABELS}
RES = 120


def extra(preset: dict) -> dict:
    c1, c2, c3 = st.columns(3)
    k = c1.slider(
        T("components"),
        1,
        32,
        int(preset["components"]),
        key=f"{P}_components",
        help=T("components_help"),
    )
    hidden = c2.select_slider(
        T("hidden"), [16, 32, 64, 128, 256], int(preset["hidden"]), key=f"{P}_hidden"
    )
    depth = c3.slider(T("depth"), 1, 5, int(preset["depth"]), key=f"{P}_depth")
    return {"components": int(k), "hidden": int(hidden), "depth": int(depth)}


with ui.controls():
    spec = ui.run_form(P, default_target="moons", extra=extra)
trained = ui.train_panel(spec, page=P)
if trained is None:
    ui.theory(P)
    st.stop()

model, target = trained.model, trained.target
rid = f"{spec.key()}:{trained.result.status}:{trained.result.steps_done}"
bounds = viz.pad_bounds(ui.target_bounds(spec.target), 0.05)
x1_grid = torch.linspace(bounds[0], bounds[1], 241)
x2_grid = torch.linspace(bounds[2], bounds[3], 241)


@st.cache_data(max_entries=16, show_spinner=False)
def model_grid(rid: str, _model, res: int):
    _, _, pts = viz.grid(bounds, res)
    with torch.no_grad():
        return (
            _model.log_prob(torch.as_tensor(pts, dtype=torch.float32, device=_model.device))
            .cpu()
            .numpy()
        )


@st.cache_data(max_entries=16, show_spinner=False)
def marginals(rid: str, _model, _target):
    v = marginal_curves(_model, _target, x1_grid)
    return v.q, v.p


@st.cache_data(max_entries=64, show_spinner=False)
def conditionals(rid: str, _model, _target, c: float):
    v = conditional_curves(_model, _target, c, x2_grid)
    return v.q, v.p


@st.cache_data(max_entries=16, show_spinner=False)
def sequential(rid: str, _model, n: int, seed: int):
    with torch.no_grad():
        tr = _model.trajectory(n, 41, generator=make_generator(seed)).cpu()
    return tr.xs.numpy(), tr.ts.numpy()


xs, ys, log_p = ui.log_density_grid(spec.target, RES, bounds)
log_q = model_grid(rid, model, RES)

# --- the joint and a slice x¹ = c -------------------------------------------------------------------
st.subheader(T("slices_title"))
mid = float(0.5 * (bounds[0] + bounds[1]))
c = st.slider(T("slice_c"), float(bounds[0]), float(bounds[1]), round(mid, 1), 0.1, key=f"{P}_c")
ui.figure(
    av.joint_figure(log_q, log_p, xs, ys, bounds, c, labels=LABELS),
    f"{P}_joint",
    data={"log_q": log_q},
)
c1, c2 = st.columns(2)
with c1:
    st.markdown(f"**{T('marginal_title')}**")
    q1, p1 = marginals(rid, model, target)
    ui.figure(
        av.marginal_figure(x1_grid, q1, p1, labels=LABELS),
        f"{P}_marginal",
        data={"x1": x1_grid, "q": q1, "p": p1},
    )
    st.caption(T("marginal_caption"))
with c2:
    st.markdown(f"**{T('conditional_title', c=f'{c:.1f}')}**")
    q2, p2 = conditionals(rid, model, target, float(c))
    fig = av.conditional_figure(x2_grid, q2, p2, labels=LABELS)
    ui.figure(fig, f"{P}_conditional", data={"x2": x2_grid, "q": q2, "p": p2})
    st.caption(T("conditional_caption") if p2.max() > 0 else T("conditional_outside"))

# --- sequential sampling ----------------------------------------------------------------------------
st.subheader(T("sequential_title"))
cc = st.columns(2)
n = cc[0].slider(T("particles"), 100, 3000, 800, 100, key=f"{P}_n")
seed = cc[1].number_input(T("seed"), 0, 2**31 - 1, 0, key=f"{P}_sample_seed")
frames, ts = sequential(rid, model, int(n), int(seed))
flabels = [f"{t:.2f}" for t in ts]
bg = [viz.contour_trace(log_p, xs, ys, color="#9aa4b2", name="p(x)")]
fig = av.sequential_figure(
    frames, flabels, bounds, background=bg, labels=LABELS, slider_prefix=T("step_prefix")
)
ui.figure(fig, f"{P}_sequential", data=frames)
st.caption(T("sequential_caption"))

# --- NLL against the entropy floor ------------------------------------------------------------------
st.subheader(T("nll_title"))
names = {"loss": T("lab_nll_total"), "nll_x1": T("lab_nll_x1"), "nll_x2_given_x1": T("lab_nll_x2")}
fig = nll_figure(
    trained.result.history, ui.target_entropy(spec.target), tuple(names), names=names,
    labels={"entropy": T("lab_entropy"), "step": T("lab_step")},
)  # fmt: skip
ui.figure(fig, f"{P}_nll", data=pd.DataFrame(trained.result.history))
st.caption(T("nll_caption"))

ui.metrics_panel(trained)
ui.downloads(trained)
ui.theory(P)
