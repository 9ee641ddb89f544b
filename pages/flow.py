"""Normalizing flow (lecture 2-5): layer-by-layer warp, exact density by the change of variables,
the Jacobian determinant, NLL against S(p)."""

from typing import get_args

import pandas as pd
import streamlit as st

from genlib import ui, viz
from genlib.lab import flow as lf
from genlib.models.flow import Coupling, Objective
from genlib.ui import state as ws
from genlib.viz import flow as fv

P = "flow"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731
RES = 120


def extra(preset: dict) -> dict:
    couplings, objectives = get_args(Coupling), get_args(Objective)
    coupling = ws.selectbox(
        st, T("coupling"), couplings, index=couplings.index(preset.get("coupling", "spline")),
        format_func=lambda v: T(f"coupling_{v}"), key=f"{P}_coupling",
    )  # fmt: skip
    c1, c2 = st.columns(2)
    layers = ws.slider(c1, T("layers"), 1, 16, value=int(preset["layers"]), key=f"{P}_layers")
    bins = ws.slider(c2, T("bins"), 2, 32, value=int(preset["bins"]), key=f"{P}_bins", help=T("bins_help"))  # fmt: skip
    objective = ws.selectbox(
        st, T("objective"), objectives, index=objectives.index(preset.get("objective", "forward")),
        format_func=lambda v: T(f"objective_{v}"), key=f"{P}_objective", help=T("objective_help"),
    )  # fmt: skip
    return {"coupling": coupling, "layers": int(layers), "bins": int(bins), "objective": objective}


trained = ui.model_page(P, default_target="8gaussians", extra=extra)
LABELS = {k: T(f"lab_{k}") for k in fv.LABELS}
spec = trained.spec
bounds = viz.pad_bounds(ui.target_bounds(spec.target), 0.05)
xs, ys, log_p = ui.log_density_grid(spec.target, RES, bounds)

st.subheader(T("warp_title"))
c = st.columns(4)
n = ws.slider(c[0], T("particles"), 200, 3000, value=1000, step=100, key=f"{P}_n")
substeps = ws.slider(c[1], T("substeps"), 1, 8, value=2, key=f"{P}_substeps", help=T("substeps_help"))  # fmt: skip
n_lines = ws.slider(c[2], T("grid_lines"), 5, 31, value=15, step=2, key=f"{P}_grid_lines")
seed = ws.number_input(c[3], T("seed"), 0, 2**31 - 1, value=0, key=f"{P}_warp_seed")
w = ui.derived(trained, lf.trained_warp, int(n), int(substeps), int(n_lines), int(seed))
labels = fv.layer_labels(w.ts, w.layer_names, T("lab_base"), labels=LABELS)
wb = viz.union_bounds(bounds, (-3.5, 3.5, -3.5, 3.5))
bg = [viz.contour_trace(log_p, xs, ys, color="#9aa4b2", name="p(x)")]
fig = fv.warp_figure(w.points, w.lines, labels, wb, background=bg, labels=LABELS)
ui.figure(fig, f"{P}_warp", data=w.points)
st.caption(T("warp_caption", layers=len(w.layer_names)))
ui.gif_button(w.points, wb, f"{P}_warp", labels=labels, key=f"{P}_warp_gif")

g = ui.derived(trained, lf.trained_density_grid, bounds, RES)
c1, c2 = st.columns([3, 2])
with c1:
    st.subheader(T("density_title"))
    fig = fv.density_pair(g.log_q, log_p, xs, ys, bounds, labels=LABELS)
    ui.figure(fig, f"{P}_density", data={"log_q": g.log_q})
    st.caption(T("density_caption"))
with c2:
    st.subheader(T("jacobian_title"))
    data_pts = ui.target_samples(spec.target, 600)
    fig = fv.jacobian_figure(g.log_det, xs, ys, bounds, samples=data_pts, labels=LABELS)
    ui.figure(fig, f"{P}_jacobian", data={"log_det": g.log_det})
    st.caption(T("jacobian_caption"))

st.subheader(T("nll_title"))
forward = getattr(trained.model, "objective", "forward") == "forward"
entropy = ui.target_entropy(spec.target) if forward else None
fig = fv.nll_figure(trained.result.history, entropy, labels=LABELS, names={"loss": T("lab_loss")})
ui.figure(fig, f"{P}_nll", data=pd.DataFrame(trained.result.history))
st.caption(T("nll_caption_forward" if forward else "nll_caption_reverse"))
ui.page_end(P, trained)
