"""Score matching + Langevin (lecture 4-1): learned vs exact score, Langevin chains started far
from the data with the learned and the exact score, forward diffusion of the same target."""

from typing import get_args

import streamlit as st

from genlib import ui, viz
from genlib.lab import langevin as ll
from genlib.models.score_matching import InitKind
from genlib.ui import diffusion as ud
from genlib.ui import identities as ui_id
from genlib.ui import state as ws
from genlib.viz.diffusion import final_samples_figure

P = "score_matching"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731


def extra(preset: dict) -> dict:
    c1, c2 = st.columns(2)
    steps = ws.select_slider(
        c1, T("model_lsteps"), ll.STEP_COUNT_CHOICES, value=int(preset.get("langevin_steps", 300)),
        key=f"{P}_m_steps",
    )  # fmt: skip
    eps = ws.select_slider(
        c2, T("model_eps"), ll.STEP_SIZE_CHOICES, value=float(preset.get("step_size", 0.01)),
        key=f"{P}_m_eps",
    )  # fmt: skip
    return {"langevin_steps": int(steps), "step_size": float(eps)}


trained = ui.model_page(P, default_target="8gaussians", extra=extra)
st.caption(T("loss_note"))
model, spec = trained.model, trained.spec
name = f"{P}_{spec.target.name}"

# --- learned vs exact score ----------------------------------------------------------------------
ud.field_section(P, trained, names=("s_θ", "∇ log p"), zoom=2.0)
ui_id.objective_gap_panel(P, trained)  # Hyvärinen = Fisher − const, over training

# --- Langevin chains far from the data -----------------------------------------------------------
st.subheader(T("langevin_title"))
c = st.columns(5)
inits = get_args(InitKind)
init = ws.selectbox(
    c[0], T("init"), inits, index=inits.index("far"), format_func=lambda v: T(f"init_{v}"),
    key=f"{P}_init",
)  # fmt: skip
n = ws.slider(c[1], T("chains"), 100, ll.MAX_CHAINS, value=300, step=100, key=f"{P}_chains")
steps = ws.slider(
    c[2], T("lsteps"), 10, ll.MAX_DEMO_STEPS, value=min(max(model.langevin_steps, 10), ll.MAX_DEMO_STEPS),
    step=10, key=f"{P}_lsteps",
)  # fmt: skip
eps = ws.select_slider(c[3], T("step_size"), ll.STEP_SIZE_CHOICES, value=model.step_size, key=f"{P}_eps")  # fmt: skip
seed = ws.number_input(c[4], T("seed"), 0, 2**31 - 1, value=0, key=f"{P}_sample_seed")
demo = ui.derived(trained, ll.trained_langevin_demo, init, int(n), int(steps), float(eps), int(seed))  # fmt: skip
learned, exact_final = demo.learned, demo.exact.samples.numpy()
vb = viz.union_bounds(ui.target_bounds(spec.target), demo.start_bounds)
bg = ud.density_background(spec.target, vb)
labels = ud.frame_labels(learned, "{:.0f}", name=T("lsteps"), sep=": ")
left, right = st.columns([2, 3], gap="medium")
with left:
    st.markdown(f"**{T('trajectory_title')}**")
    ud.trajectory_figure(learned, vb, labels, name=f"{name}_chains", key=f"{P}_chains_fig",
                         background=bg, particle_name="x")  # fmt: skip
with right:
    finals = {T("final_learned"): learned.samples.numpy(), T("final_true"): exact_final}
    fig = final_samples_figure(finals, vb, background=bg)
    data = {"learned": finals[T("final_learned")], "true": exact_final}
    ui.figure(fig, f"{name}_final", data=data, key=f"{P}_final_fig")
st.caption(T("langevin_caption"))
ud.trajectory_exports(P, learned, vb, labels, f"{name}_chains", csv_label="download_chains")
ui_id.langevin_bias_panel(P, trained)  # ULA's bias vs ε, removed by MALA

ud.forward_expander(P, trained)
ui.page_end(P, trained)
