"""Autoregressive model (lecture 2-4): q(x¹)·q(x²|x¹) with mixture-density factors; marginal and
conditional slices against the true ones, sequential sampling, exact NLL against S(p)."""

import pandas as pd
import streamlit as st

from genlib import ui, viz
from genlib.lab import autoregressive as la
from genlib.ui import state as ws
from genlib.viz import autoregressive as av
from genlib.viz.flow import nll_figure

P = "autoregressive"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731
RES = 120


def extra(preset: dict) -> dict:
    c1, c2 = st.columns(2)
    k = ws.slider(
        c1, T("components"), 1, 32, value=int(preset["components"]), key=f"{P}_components",
        help=T("components_help"),
    )  # fmt: skip
    hidden = ws.select_slider(
        st, T("hidden"), la.HIDDEN_CHOICES, value=int(preset["hidden"]), key=f"{P}_hidden"
    )
    depth = ws.slider(c2, T("depth"), 1, 5, value=int(preset["depth"]), key=f"{P}_depth")
    return {"components": int(k), "hidden": int(hidden), "depth": int(depth)}


trained = ui.model_page(P, default_target="moons", extra=extra)
LABELS = {k: T(f"lab_{k}") for k in av.LABELS}
spec = trained.spec
bounds = viz.pad_bounds(ui.target_bounds(spec.target), 0.05)
xs, ys, log_p = ui.log_density_grid(spec.target, RES, bounds)
log_q = ui.derived(trained, la.trained_log_q, bounds, RES)

st.subheader(T("slices_title"))
lo, hi, mid = la.slice_range(bounds)
c = ws.slider(st, T("slice_c"), lo, hi, value=mid, step=0.1, key=f"{P}_c")
fig = av.joint_figure(log_q, log_p, xs, ys, bounds, c, labels=LABELS)
ui.figure(fig, f"{P}_joint", data={"log_q": log_q})
c1, c2 = st.columns(2)
with c1:
    st.markdown(f"**{T('marginal_title')}**")
    m = ui.derived(trained, la.trained_marginal, bounds)
    fig = av.marginal_figure(m.grid, m.q, m.p, labels=LABELS)
    ui.figure(fig, f"{P}_marginal", data={"x1": m.grid, "q": m.q, "p": m.p})
    st.caption(T("marginal_caption"))
with c2:
    st.markdown(f"**{T('conditional_title', c=f'{c:.1f}')}**")
    cond = ui.derived(trained, la.trained_conditional, bounds, float(c))
    fig = av.conditional_figure(cond.grid, cond.q, cond.p, labels=LABELS)
    ui.figure(fig, f"{P}_conditional", data={"x2": cond.grid, "q": cond.q, "p": cond.p})
    st.caption(T("conditional_caption") if cond.p.max() > 0 else T("conditional_outside"))

st.subheader(T("sequential_title"))
cc = st.columns(2)
n = ws.slider(cc[0], T("particles"), 100, 3000, value=800, step=100, key=f"{P}_n")
seed = ws.number_input(cc[1], T("seed"), 0, 2**31 - 1, value=0, key=f"{P}_sample_seed")
frames, ts = ui.derived(trained, la.sequential_frames, int(n), int(seed))
bg = [viz.contour_trace(log_p, xs, ys, color="#9aa4b2", name="p(x)")]
fig = av.sequential_figure(
    frames, [f"{t:.2f}" for t in ts], bounds, background=bg, labels=LABELS,
    slider_prefix=T("step_prefix"),
)  # fmt: skip
ui.figure(fig, f"{P}_sequential", data=frames)
st.caption(T("sequential_caption"))

st.subheader(T("nll_title"))
names = {"loss": T("lab_nll_total"), "nll_x1": T("lab_nll_x1"), "nll_x2_given_x1": T("lab_nll_x2")}
fig = nll_figure(
    trained.result.history, ui.target_entropy(spec.target), tuple(names), names=names,
    labels={"entropy": T("lab_entropy"), "step": T("lab_step")},
)  # fmt: skip
ui.figure(fig, f"{P}_nll", data=pd.DataFrame(trained.result.history))
st.caption(T("nll_caption"))
ui.page_end(P, trained)
