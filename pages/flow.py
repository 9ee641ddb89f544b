"""Normalizing flow (lecture 2-5): layer-by-layer warp, exact density by the change of variables,
the Jacobian determinant, NLL against S(p)."""

import pandas as pd
import streamlit as st

from genlib import ui, viz
from genlib.device import make_generator
from genlib.lab.flow import flow_density_grid, flow_warp
from genlib.viz import flow as fv

P = "flow"
ui.setup_page(P)
ui.header(P)
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731
LABELS = {k: T(f"lab_{k}") for k in fv.LABELS}


def extra(preset: dict) -> dict:
    c1, c2 = st.columns(2)
    coupling = c1.selectbox(
        T("coupling"),
        ["spline", "affine"],
        format_func=lambda v: T(f"coupling_{v}"),
        key=f"{P}_coupling",
    )
    layers = c2.slider(T("layers"), 1, 16, int(preset["layers"]), key=f"{P}_layers")
    c3, c4 = st.columns(2)
    bins = c3.slider(T("bins"), 2, 32, int(preset["bins"]), key=f"{P}_bins", help=T("bins_help"))
    objective = c4.selectbox(
        T("objective"), ["forward", "reverse"], format_func=lambda v: T(f"objective_{v}"),
        key=f"{P}_objective", help=T("objective_help"),
    )  # fmt: skip
    return {"coupling": coupling, "layers": int(layers), "bins": int(bins), "objective": objective}


with ui.controls():
    spec = ui.run_form(P, default_target="8gaussians", extra=extra)
trained = ui.train_panel(spec, page=P)
if trained is None:
    ui.theory(P)
    st.stop()

model = trained.model
rid = f"{spec.key()}:{trained.result.status}:{trained.result.steps_done}"
bounds = viz.pad_bounds(ui.target_bounds(spec.target), 0.05)
RES = 120


@st.cache_data(max_entries=16, show_spinner=False)
def warp(rid: str, _model, n: int, substeps: int, n_lines: int, seed: int):
    w = flow_warp(_model, n, substeps=substeps, n_lines=n_lines, generator=make_generator(seed))
    return w.points.numpy(), w.lines.numpy(), fv.layer_labels(w.ts, w.layer_names, T("lab_base"))


@st.cache_data(max_entries=16, show_spinner=False)
def model_grids(rid: str, _model, res: int):
    g = flow_density_grid(_model, bounds, res)
    return g.log_q, g.log_det


# --- the warp, layer by layer ---------------------------------------------------------------------
st.subheader(T("warp_title"))
c = st.columns(4)
n = c[0].slider(T("particles"), 200, 3000, 1000, 100, key=f"{P}_n")
substeps = c[1].slider(T("substeps"), 1, 8, 2, key=f"{P}_substeps", help=T("substeps_help"))
n_lines = c[2].slider(T("grid_lines"), 5, 31, 15, 2, key=f"{P}_grid_lines")
seed = c[3].number_input(T("seed"), 0, 2**31 - 1, 0, key=f"{P}_warp_seed")
pts, lines, labels = warp(rid, model, int(n), int(substeps), int(n_lines), int(seed))
wb = viz.union_bounds(bounds, (-3.5, 3.5, -3.5, 3.5))
xs, ys, log_p = ui.log_density_grid(spec.target, RES, bounds)
bg = [viz.contour_trace(log_p, xs, ys, color="#9aa4b2", name="p(x)")]
ui.figure(
    fv.warp_figure(pts, lines, labels, wb, background=bg, labels=LABELS), f"{P}_warp", data=pts
)
st.caption(T("warp_caption", layers=len(model.layer_names)))
ui.gif_button(pts, wb, f"{P}_warp", labels=labels, key=f"{P}_warp_gif")

# --- exact density and Jacobian ---------------------------------------------------------------------
log_q, log_det = model_grids(rid, model, RES)
c1, c2 = st.columns([3, 2])
with c1:
    st.subheader(T("density_title"))
    ui.figure(
        fv.density_pair(log_q, log_p, xs, ys, bounds, labels=LABELS),
        f"{P}_density",
        data={"log_q": log_q},
    )
    st.caption(T("density_caption"))
with c2:
    st.subheader(T("jacobian_title"))
    data_pts = ui.target_samples(spec.target, 600)
    fig = fv.jacobian_figure(log_det, xs, ys, bounds, samples=data_pts, labels=LABELS)
    ui.figure(fig, f"{P}_jacobian", data={"log_det": log_det})
    st.caption(T("jacobian_caption"))

# --- NLL against the entropy floor ------------------------------------------------------------------
st.subheader(T("nll_title"))
forward = getattr(model, "objective", "forward") == "forward"
entropy = ui.target_entropy(spec.target) if forward else None
fig = fv.nll_figure(trained.result.history, entropy, labels=LABELS, names={"loss": T("lab_loss")})
ui.figure(fig, f"{P}_nll", data=pd.DataFrame(trained.result.history))
st.caption(T("nll_caption_forward" if forward else "nll_caption_reverse"))

ui.metrics_panel(trained)
ui.downloads(trained)
ui.theory(P)
