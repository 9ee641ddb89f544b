"""Score SDE (lecture 4-4): reverse SDE vs probability-flow ODE (and the λ family between them),
learned vs exact score, exact PF-ODE likelihood, forward diffusion."""

from typing import get_args

import streamlit as st

from genlib import ui, viz
from genlib.lab import fields as lf
from genlib.models.sde import SDESampler
from genlib.processes.sde import SDEKind
from genlib.ui import diffusion as ud
from genlib.ui import proofs_diffusion as pd_
from genlib.ui import state as ws

P = "sde"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731
FIELD_TIMES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def extra(preset: dict) -> dict:
    c1, c2 = st.columns(2)
    kinds, samplers = get_args(SDEKind), get_args(SDESampler)
    kind = ws.radio(
        c1, T("sde_kind"), kinds, index=kinds.index(preset.get("sde", "vp")),
        format_func=lambda v: T(f"sde_{v}"), key=f"{P}_kind", horizontal=True,
    )  # fmt: skip
    sampler = ws.selectbox(
        c2, T("sampler"), samplers, index=samplers.index(preset.get("sampler", "em")),
        format_func=lambda v: T(f"sampler_{v}"), key=f"{P}_sampler", help=T("metrics_caption"),
    )  # fmt: skip
    return {"sde": kind, "sampler": sampler}


trained = ui.model_page(P, default_target="8gaussians", model="sde", extra=extra)
model, spec = trained.model, trained.spec
bounds = viz.pad_bounds(ui.target_bounds(spec.target), 0.1)

# --- reverse-time sampling: the λ family ---------------------------------------------------------
st.subheader(T("traj_title"))
c = st.columns(4)
lam = float(ws.slider(c[0], T("lam"), 0.0, 1.0, value=1.0, step=0.1, key=f"{P}_lam", help=T("lam_help")))  # fmt: skip
n, trails, seed = ud.trajectory_controls(P, c[1:], n=(100, 2000, 600), seed=("traj_seed", "traj_seed"))  # fmt: skip
bg = ud.density_background(spec.target, bounds, 100)
runs = {}
for col, v, kind in zip(st.columns(2), (lam, 0.0), ("chosen", "ode"), strict=True):
    with col:
        st.markdown(T(f"traj_{kind}", lam=v))
        runs[v] = ui.derived(trained, lf.trained_trajectory, n, 60, seed, sampler="em", lam=v)
        labels = ud.frame_labels(runs[v], "{:.3f}")
        ud.trajectory_figure(runs[v], bounds, labels, name=f"{P}_reverse_lambda{v:.1f}",
                             key=f"{P}_traj_{kind}_fig", trails=trails, background=bg,
                             particle_name="x_t", height=520)  # fmt: skip
st.caption(T("traj_caption"))
ud.trajectory_exports(P, runs[lam], bounds, ud.frame_labels(runs[lam], "{:.3f}"), f"{P}_reverse_lambda{lam:.1f}")  # fmt: skip

# --- learned vs exact score ----------------------------------------------------------------------
ud.field_section(
    P, trained,
    lambda c: ws.select_slider(c, T("t_field"), FIELD_TIMES, value=lf.default_level(model), key=f"{P}_t"),
    names=("s_θ(x, t)", "∇ log p_t(x)", T("field_error")),
    titles=(T("field_learned"), T("field_true"), T("field_error")), normalise=True, points=False,
)  # fmt: skip

# --- exact likelihood by the PF-ODE ---------------------------------------------------------------
ui.likelihood_panel(P, trained, bounds, f"{P}_pf_ode_likelihood")

# --- samplers vs NFE ------------------------------------------------------------------------------
pd_.sde_nfe_panel(P, trained)

ud.forward_expander(P, trained)
ui.page_end(P, trained)
