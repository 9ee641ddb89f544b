"""VAE (lecture 3-2): data vs latent space, decoder manifold, ELBO terms, ELBO ≤ IWAE_K ≤ log q."""

import pandas as pd
import streamlit as st
import torch

from genlib import ui, viz
from genlib.device import make_generator
from genlib.lab.vae import bound_table, vae_view
from genlib.models.vae import MAX_IWAE_K
from genlib.viz import vae as vv

ui.setup_page("vae")
ui.header("vae")
T = lambda key, **kw: ui.t(f"vae.{key}", **kw)  # noqa: E731
LABELS = {k: T(f"lab_{k}") for k in vv.LABELS}
K_CHOICES = [1, 3, 10, 30, 100, 300, 1000, 3000]


def extra(preset: dict) -> dict:
    c1, c2 = st.columns(2)
    latent = c1.selectbox(
        T("latent_dim"), [1, 2], index=int(preset["latent_dim"]) - 1, key="vae_latent_dim"
    )
    var = c2.selectbox(
        T("decoder_var"),
        ["shared", "learned", "fixed"],
        format_func=lambda v: T(f"var_{v}"),
        key="vae_decoder_var",
        help=T("decoder_var_help"),
    )
    c3, c4 = st.columns(2)
    std = c3.number_input(
        T("decoder_std"), 0.01, 2.0, float(preset["decoder_std"]), 0.01, key="vae_decoder_std"
    )
    beta = c4.number_input(
        T("beta"), 0.0, 10.0, float(preset["beta"]), 0.1, key="vae_beta", help=T("beta_help")
    )
    return {
        "latent_dim": int(latent),
        "decoder_var": var,
        "decoder_std": float(std),
        "beta": float(beta),
    }


def rid(trained) -> str:
    return f"{trained.spec.key()}:{trained.result.status}:{trained.result.steps_done}"


@st.cache_data(max_entries=16, show_spinner=False)
def view(run_id: str, _trained, n: int):
    return vae_view(_trained.model, _trained.target, n=n)


@st.cache_data(max_entries=32, show_spinner=False)
def bounds(run_id: str, _trained, n: int, ks: tuple[int, ...]) -> dict[str, float]:
    m, target = _trained.model, _trained.target
    x = target.sample(n, generator=make_generator(7)).to(m.device)
    return bound_table(m, x, ks, generator=make_generator(8, m.device)).as_dict()


@st.cache_data(max_entries=16, show_spinner=False)
def generation(run_id: str, _trained, n: int):
    with torch.no_grad():
        return _trained.model.trajectory(n, 40, generator=make_generator(3)).cpu()


with ui.controls():
    spec = ui.run_form("vae", default_target="moons", extra=extra)
trained = ui.train_panel(spec, page="vae")

if trained is not None:
    key = rid(trained)
    bnds = trained.target.bounds
    v = view(key, trained, 1500)

    st.subheader(T("spaces"))
    by = st.radio(
        T("colour_by"),
        ["angle", "x1", "x2"],
        format_func=lambda c: T(f"colour_{c}"),
        horizontal=True,
        key="vae_colour_by",
    )
    fig = vv.latent_data_figure(
        v.x, vv.colour_values(v.x, by), v.z_mean, v.manifold, bnds, z_std=v.z_std,
        latent_grid=v.latent_lines if v.z_mean.shape[1] == 2 else None, by=by,
        colour_title=T(f"cbar_{by}"), labels=LABELS,
    )  # fmt: skip
    ui.figure(fig, "vae_data_latent", data={"x": v.x, "z_mean": v.z_mean})
    st.caption(T("spaces_caption"))

    c1, c2 = st.columns(2)
    with c1:
        st.markdown(f"**{T('samples')}**")
        show_means = st.toggle(T("noise_toggle"), key="vae_show_means")
        show_manifold = st.toggle(T("manifold_toggle"), value=True, key="vae_show_manifold")
        xs, ys, lp = ui.log_density_grid(spec.target, 120)
        fig = vv.samples_figure(
            v.samples, lp, xs, ys, bnds, means=v.means if show_means else None,
            manifold=v.manifold if show_manifold else None, labels=LABELS,
        )  # fmt: skip
        ui.figure(fig, "vae_samples", data={"samples": v.samples, "decoder_means": v.means})
    with c2:
        st.markdown(f"**{T('elbo_terms')}**")
        ui.figure(
            vv.elbo_terms_figure(trained.result.history, labels=LABELS),
            "vae_elbo_terms",
            data=pd.DataFrame(trained.result.history),
        )
        st.caption(T("elbo_terms_caption"))

    st.subheader(T("bounds"))
    c1, c2 = st.columns([1, 3])
    n_pts = c1.select_slider(T("bounds_points"), [100, 200, 500, 1000], 200, key="vae_bound_n")
    ks = c1.multiselect(
        T("bounds_ks"), [k for k in K_CHOICES if k <= MAX_IWAE_K], [1, 10, 100, 1000], key="vae_ks"
    )
    ks = tuple(sorted(ks)) or (1,)
    with c2, st.spinner(T("bounds_running")):
        table = bounds(key, trained, int(n_pts), ks)
        fig = vv.bounds_figure(table, neg_entropy=-ui.target_entropy(spec.target), labels=LABELS)
        ui.figure(fig, "vae_bounds", data=pd.DataFrame([table]))
    rows = [{T("col_quantity"): LABELS["elbo"], T("col_value"): table["elbo"]}]
    rows += [{T("col_quantity"): f"IWAE K={k}", T("col_value"): table[f"iwae_{k}"]} for k in ks]
    rows += [{T("col_quantity"): LABELS["log_q"], T("col_value"): table["log_q"]}]
    df = pd.DataFrame(rows)
    df[T("col_gap")] = table["log_q"] - df[T("col_value")]
    c1.dataframe(df, hide_index=True)
    st.caption(T("bounds_caption", n=int(n_pts)))

    with st.expander(T("generation"), icon=":material/animation:"):
        traj = generation(key, trained, 600)
        fig = viz.animated_scatter(
            traj.xs, viz.union_bounds(bnds, (-3.0, 3.0, -3.0, 3.0)),
            [f"{float(t):.2f}" for t in traj.ts], marker_color=viz.MODEL_COLOR,
            background=[viz.density_trace(lp, xs, ys, showscale=False)],
            slider_prefix=T("frame_prefix"),
        )  # fmt: skip
        ui.figure(fig, "vae_generation", data=traj.xs.numpy())
        st.caption(T("generation_caption"))

    ui.metrics_panel(trained)
    ui.downloads(trained)
ui.theory("vae")
