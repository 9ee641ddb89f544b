"""VAE (lecture 3-2): data vs latent space, decoder manifold, ELBO terms, ELBO ≤ IWAE_K ≤ log q."""

from typing import get_args

import pandas as pd
import streamlit as st

from genlib import ui, viz
from genlib.lab import vae as lv
from genlib.models.vae import DecoderVar
from genlib.ui import state as ws
from genlib.viz import vae as vv

P = "vae"
T = lambda key, **kw: ui.t(f"{P}.{key}", **kw)  # noqa: E731


def extra(preset: dict) -> dict:
    c1, c2 = st.columns(2)
    dims, variances = get_args(lv.LatentDim), get_args(DecoderVar)
    latent = ws.selectbox(
        c1, T("latent_dim"), dims, index=dims.index(preset["latent_dim"]), key=f"{P}_latent_dim"
    )
    beta = ws.number_input(
        c2, T("beta"), 0.0, 10.0, value=float(preset["beta"]), step=0.1, key=f"{P}_beta", help=T("beta_help")
    )  # fmt: skip
    var = ws.selectbox(
        st, T("decoder_var"), variances, index=variances.index(preset["decoder_var"]),
        format_func=lambda v: T(f"var_{v}"), key=f"{P}_decoder_var", help=T("decoder_var_help"),
    )  # fmt: skip
    std = ws.number_input(
        st, T("decoder_std"), 0.01, 2.0, value=float(preset["decoder_std"]), step=0.01, key=f"{P}_decoder_std"
    )  # fmt: skip
    return {"latent_dim": int(latent), "decoder_var": var, "decoder_std": float(std), "beta": float(beta)}  # fmt: skip


trained = ui.model_page(P, default_target="moons", extra=extra)
LABELS = {k: T(f"lab_{k}") for k in vv.LABELS}
spec, bnds = trained.spec, trained.target.bounds
v = ui.derived(trained, lv.trained_view, 1500)

st.subheader(T("spaces"))
by = ws.radio(
    st, T("colour_by"), get_args(vv.ColourBy), format_func=lambda c: T(f"colour_{c}"),
    horizontal=True, key=f"{P}_colour_by",
)  # fmt: skip
fig = vv.latent_data_figure(
    v.x, vv.colour_values(v.x, by), v.z_mean, v.manifold, bnds, z_std=v.z_std,
    latent_grid=v.latent_lines if v.z_mean.shape[1] == 2 else None, by=by,
    colour_title=T(f"cbar_{by}"), labels=LABELS,
)  # fmt: skip
ui.figure(fig, f"{P}_data_latent", data={"x": v.x, "z_mean": v.z_mean})
st.caption(T("spaces_caption"))

c1, c2 = st.columns(2)
xs, ys, lp = ui.log_density_grid(spec.target, 120)
with c1:
    st.markdown(f"**{T('samples')}**")
    show_means = ws.toggle(st, T("noise_toggle"), key=f"{P}_show_means")
    show_manifold = ws.toggle(st, T("manifold_toggle"), value=True, key=f"{P}_show_manifold")
    fig = vv.samples_figure(
        v.samples, lp, xs, ys, bnds, means=v.means if show_means else None,
        manifold=v.manifold if show_manifold else None, labels=LABELS,
    )  # fmt: skip
    ui.figure(fig, f"{P}_samples", data={"samples": v.samples, "decoder_means": v.means})
with c2:
    st.markdown(f"**{T('elbo_terms')}**")
    fig = vv.elbo_terms_figure(trained.result.history, labels=LABELS)
    ui.figure(fig, f"{P}_elbo_terms", data=pd.DataFrame(trained.result.history))
    st.caption(T("elbo_terms_caption"))

st.subheader(T("bounds"))
c1, c2 = st.columns([2, 3])
n_pts = ws.select_slider(c1, T("bounds_points"), lv.BOUND_POINTS, value=200, key=f"{P}_bound_n")
k_max = ws.select_slider(c1, T("bounds_kmax"), lv.IWAE_KS, value=1000, key=f"{P}_k_max")
with c2, st.spinner(T("bounds_running")):
    table = ui.derived(trained, lv.trained_bounds, int(n_pts), lv.iwae_ks(k_max))
    fig = vv.bounds_figure(table.as_dict(), entropy=ui.target_entropy(spec.target), labels=LABELS)
    ui.figure(fig, f"{P}_bounds", data=pd.DataFrame([table.as_dict()]))
columns = [T("col_quantity"), T("col_value"), T("col_gap")]
c1.dataframe(pd.DataFrame(lv.bound_rows(table, LABELS), columns=columns), hide_index=True)
st.caption(T("bounds_caption", n=int(n_pts)))

with ui.section(P, "generation", T("generation"), icon=":material/animation:") as shown:
    if shown:
        frames, ts = ui.derived(trained, lv.generation, 600)
        fig = viz.animated_scatter(
            frames, viz.union_bounds(bnds, (-3.0, 3.0, -3.0, 3.0)), [f"{t:.2f}" for t in ts],
            name=LABELS["samples"], marker_color=viz.MODEL_COLOR,
            background=[viz.density_trace(lp, xs, ys, showscale=False)],
            slider_prefix=T("frame_prefix"),
        )  # fmt: skip
        ui.figure(fig, f"{P}_generation", data=frames)
        st.caption(T("generation_caption"))
ui.vae_posterior_panel(P, trained)
ui.page_end(P, trained)
