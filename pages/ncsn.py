"""Denoising score matching / NCSN (lecture 4-2): the σ ladder, learned vs exact score of p_σ,
annealed Langevin trajectories, plain vs annealed Langevin, forward (VE) noising."""

from typing import get_args

import pandas as pd
import streamlit as st

from genlib import ui, viz
from genlib.lab import fields as lf
from genlib.lab import ncsn as ln
from genlib.models.ncsn import NCSNMode
from genlib.ui import diffusion as ud
from genlib.ui import identities as ui_id
from genlib.ui import state as ws
from genlib.viz.diffusion import final_samples_figure, schedule_curves

P = "ncsn"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731


def extra(preset: dict) -> dict:
    modes = get_args(NCSNMode)
    mode = ws.radio(
        st, T("mode_label"), modes, index=modes.index(preset.get("mode", "multi")),
        format_func=lambda v: T(f"mode_{v}"), key=f"{P}_mode",
    )  # fmt: skip
    c2, c3 = st.columns(2)
    if mode == "single":
        sigma = ws.select_slider(
            c2, T("sigma_single"), ln.SIGMA_CHOICES, value=0.3, key=f"{P}_sigma"
        )
        return {"mode": "single", "sigma": float(sigma)}
    levels = ws.slider(c2, T("levels"), 2, 20, value=int(preset.get("num_levels", 10)), key=f"{P}_levels")  # fmt: skip
    smax = ws.select_slider(c3, T("sigma_max"), ln.SIGMA_MAX_CHOICES, value=10.0, key=f"{P}_smax")
    return {"mode": "multi", "num_levels": int(levels), "sigma_max": float(smax)}


trained = ui.model_page(P, default_target="8gaussians", extra=extra)
model, spec = trained.model, trained.spec
name, vb = f"{P}_{spec.target.name}", viz.pad_bounds(ui.target_bounds(spec.target), 0.1)
bg = ud.density_background(spec.target, vb)

# --- the noise ladder ----------------------------------------------------------------------------
if model.mode == "multi":
    st.subheader(T("ladder_title"))
    lad = ln.noise_ladder(model)
    fig = schedule_curves(lad.i, {"σ_i": lad.sigma, "α_i": lad.alpha}, xlabel="i", log_y=True)
    data = {"i": lad.i.numpy(), "sigma": lad.sigma.numpy(), "alpha": lad.alpha.numpy()}
    ui.figure(fig, f"{P}_ladder", data=data, key=f"{P}_ladder_fig")
    st.caption(T("ladder_caption"))

# --- learned vs exact score of p_σ ---------------------------------------------------------------


def pick_sigma(col):
    if len(model.sigma_list) == 1:  # single-σ DSM: the one σ it was trained at
        col.metric(T("sigma_pick"), f"{model.sigma_list[0]:.3g}")
        return model.sigma_list[0]
    return ws.select_slider(
        col, T("sigma_pick"), model.sigma_list[::-1], value=lf.default_level(model),
        format_func=lambda s: f"{s:.3g}", key=f"{P}_sigma_pick",
    )  # fmt: skip


ud.field_section(P, trained, pick_sigma, names=("s_θ(x, σ)", "∇ log p_σ"))
ui_id.objective_gap_panel(P, trained)  # DSM = ESM + const at a σ, over training

# --- annealed Langevin trajectories --------------------------------------------------------------
st.subheader(T("trajectory_title"))
n, trails, seed = ud.trajectory_controls(P)
tr = ui.derived(trained, lf.trained_trajectory, n, 60, seed)
labels = ud.frame_labels(tr)
ud.trajectory_figure(tr, vb, labels, name=f"{name}_annealed", key=f"{P}_traj_fig", trails=trails,
                     background=bg, particle_name="x")  # fmt: skip
st.caption(T("trajectory_caption"))
ud.trajectory_exports(P, tr, vb, labels, f"{name}_annealed")

# --- plain vs annealed Langevin ------------------------------------------------------------------
st.subheader(T("compare_title"))
c = st.columns(3)
single = model.mode == "single"  # one σ: only the exact score can be annealed
# default: the exact score, so the demo is about the sampler alone (the toggle tries s_θ)
use_true = ws.toggle(c[0], T("use_true"), value=True, disabled=single, key=f"{P}_use_true")
plain_step = ws.select_slider(c[1], T("plain_step"), ln.PLAIN_STEP_CHOICES, value=0.05, key=f"{P}_plain_step")  # fmt: skip
nc = ws.slider(c[2], T("particles"), 200, 5000, value=1000, step=100, key=f"{P}_nc")
demo = ui.derived(trained, ln.trained_plain_vs_annealed, use_true, int(nc), float(plain_step), seed)
names = (T("plain"), T("annealed"))
fig = final_samples_figure({names[0]: demo.plain, names[1]: demo.annealed}, vb, background=bg)
data = {"plain": demo.plain.numpy(), "annealed": demo.annealed.numpy()}
ui.figure(fig, f"{name}_plain_vs_annealed", data=data, key=f"{P}_cmp_fig")
if demo.weights is not None and len(demo.weights["target"]) <= 30:
    st.markdown(T("weights"))
    w = demo.weights
    rows = {T("weights_target"): w["target"], names[0]: w["plain"], names[1]: w["annealed"]}
    cols = [f"{T('component')} {k + 1}" for k in range(len(w["target"]))]
    st.dataframe(pd.DataFrame(rows, index=cols).T.round(3))
st.caption(T("compare_caption"))

ud.forward_expander(P, trained)
ui.page_end(P, trained)
