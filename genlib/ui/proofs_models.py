"""Panels that make the lecture's claims about the classic families visible (issue 11): the VAE's
true posterior against its encoder with log q_θ(x) = ELBO(x) + KL(r_φ ‖ q_θ(·|x)) (3-2), the
GAN's discriminator as a density ratio correcting its samples (3-3), and the RBM trained with the
slide's sign as written next to the correct one (2-3). A page calls each with one line.

Every widget is bound to the URL (``genlib.ui.state``) under the page's key, every result comes
from ``derived`` (cached per trained result), and texts come from the page's own file.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from genlib.lab import gan as lg
from genlib.lab import rbm as lr
from genlib.lab import vae as lv
from genlib.models.rbm import MAX_EXACT_HIDDEN
from genlib.runs import Trained
from genlib.ui import state as ws
from genlib.ui.cached import log_density_grid, target_bounds
from genlib.ui.export import figure
from genlib.ui.i18n import t
from genlib.ui.layout import lazy_panel
from genlib.ui.panels import derived
from genlib.viz import contour_trace
from genlib.viz.gan_correction import CORRECTION_KEYS, CORRECTION_LABELS, correction_figure
from genlib.viz.posterior import POSTERIOR_LABELS, posterior_figure
from genlib.viz.rbm import SIGN_LABELS, sign_figure

__all__ = ["vae_posterior_panel", "gan_correction_panel", "rbm_sign_panel"]


def _texts(page: str) -> Callable[..., str]:
    return lambda key, **kw: t(f"{page}.{key}", **kw)


@lazy_panel("post", "post_title", icon=":material/functions:")
def vae_posterior_panel(page: str, trained: Trained) -> None:
    """Pick a data point; its true posterior q_θ(z|x) next to the encoder r_φ(z|x) on a latent
    grid, and log q_θ(x) = ELBO(x) + KL(r_φ ‖ q_θ(·|x)) as numbers (texts ``{page}.post_*``)."""
    T = _texts(page)
    pts = derived(trained, lv.posterior_points)
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    idx = ws.selectbox(
        c1, T("post_point"), list(range(len(pts))), key=f"{page}_post_point",
        format_func=lambda i: f"x = ({pts[i, 0]:.2f}, {pts[i, 1]:.2f})",
    )  # fmt: skip
    c2.caption(T("post_point_help"))
    rep = derived(trained, lv.trained_posterior, int(idx))
    post = rep.post
    labels = {k: T(f"lab_post_{k}") for k in POSTERIOR_LABELS}
    data = {f"z{i + 1}": a for i, a in enumerate(post.axes)}
    figure(posterior_figure(post, labels=labels), f"{page}_posterior", data=data)
    cols = st.columns(5)
    values = (
        (T("post_log_q"), f"{post.log_q:.4f}"),
        (T("post_elbo"), f"{rep.elbo:.4f} ± {rep.elbo_se:.4f}"),
        (T("post_kl"), f"{post.kl:.4f}"),
        (T("post_sum"), f"{rep.elbo + post.kl:.4f}"),
        (T("post_gap"), f"{rep.gap:+.4f}"),
    )
    for col, (name, value) in zip(cols, values, strict=True):
        col.metric(name, value)
    window = " × ".join(f"[{a[0]:.2f}, {a[-1]:.2f}]" for a in post.axes)
    st.caption(
        T("post_caption", n=rep.elbo_samples, res=len(post.axes[0]), window=window,
          mass=f"{post.encoder_mass:.4f}")
    )  # fmt: skip


@lazy_panel("corr", "corr_title", icon=":material/tune:")
def gan_correction_panel(page: str, trained: Trained) -> None:
    """G's samples before and after discriminator rejection sampling and the Metropolis–Hastings
    correction with D ≈ log p/q_θ, SW / floor and acceptance rates (texts ``{page}.corr_*``)."""
    T = _texts(page)
    c1, c2 = st.columns(2)
    steps = ws.select_slider(c1, T("corr_mh_steps"), lg.MH_STEPS, value=20, key=f"{page}_mh_steps")
    gamma = ws.select_slider(
        c2, T("corr_gamma"), lg.DRS_GAMMAS, value=0.0, key=f"{page}_drs_gamma", help=T("corr_gamma_help")
    )  # fmt: skip
    corr = derived(trained, lg.trained_correction, lg.CORRECTION_N, int(steps), float(gamma))
    spec = trained.spec
    bounds = target_bounds(spec.target)
    xs, ys, lp = log_density_grid(spec.target, 80, bounds)
    bg = [contour_trace(lp, xs, ys, color="#9aa4b2", name=T("lab_corr_density"))]
    labels = {k: T(f"lab_corr_{k}") for k in CORRECTION_LABELS}
    fig = correction_figure(corr, bounds, background=bg, labels=labels)
    figure(fig, f"{page}_{spec.target.name}_correction", data={k: getattr(corr, k) for k in CORRECTION_KEYS})  # fmt: skip
    rows = [
        {T("corr_col_method"): labels[k], T("corr_col_sw"): corr.sw[k],
         T("corr_col_ratio"): corr.sw[k] / corr.floor if corr.floor > 0 else None,
         T("corr_col_acceptance"): {"before": 1.0, "drs": corr.drs_acceptance, "mh": corr.mh_acceptance}[k]}
        for k in CORRECTION_KEYS
    ]  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(
        T("corr_caption", n=len(corr.before), floor=f"{corr.floor:.4f}", log_m=f"{corr.log_m:.2f}",
          steps=corr.mh_steps)
    )  # fmt: skip


@lazy_panel("sign", "sign_title", icon=":material/functions:")
def rbm_sign_panel(page: str, trained: Trained) -> None:
    """Two short runs from the same initial weights — the correct update and the slide's sign as
    written — and the exact KL(p‖q_θ) of each over the steps (texts ``{page}.sign_*``)."""
    T = _texts(page)
    if trained.model.hidden > MAX_EXACT_HIDDEN:
        st.info(T("sign_no_exact", h=MAX_EXACT_HIDDEN), icon=":material/info:")
        return
    if not ws.toggle(st, T("sign_toggle"), value=True, key=f"{page}_sign_show"):
        st.caption(T("sign_caption_off"))
        return
    cmp = derived(trained, lr.trained_sign_comparison, lr.SIGN_STEPS, lr.SIGN_EVERY)
    labels = {k: T(f"lab_sign_{k}") for k in SIGN_LABELS}
    fig = sign_figure(cmp.steps, cmp.kl, labels=labels)
    data = pd.DataFrame({"step": cmp.steps, **{f"kl_{k}": v for k, v in cmp.kl.items()}})
    figure(fig, f"{page}_{trained.spec.target.name}_sign", data=data)
    c1, c2 = st.columns(2)
    for col, sign in zip((c1, c2), ("correct", "slide"), strict=True):
        kl = cmp.kl[sign]
        col.metric(labels[sign], f"{kl[-1]:.3g}", f"{kl[-1] - kl[0]:+.3g}", delta_color="inverse")
    st.caption(T("sign_caption", steps=int(cmp.steps[-1])))
