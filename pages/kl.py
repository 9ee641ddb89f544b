"""KL: forward vs reverse (lecture 2-5, 訓練の指針 (a)/(b)): mode covering vs mode seeking.
Both fits are one background job (``ui.work_panel``, key ``kl.job_key(cfg)``) with progress,
Stop, Pause and Step like every model page; the seed sweep is a second job (``kl_seeds_*``)."""

import streamlit as st

from genlib import kl, ui
from genlib.ui import state as ws
from genlib.ui.kl import kl_pair_panel, kl_sweep_panel

ui.setup_page("kl")
ui.header("kl")
T = lambda key, **kw: ui.t(f"kl.{key}", **kw)  # noqa: E731

left, right = st.columns(2, gap="large")
for col, key in ((left, "why_forward"), (right, "why_reverse")):
    col.markdown(T(key))
    col.latex(T(f"{key}_latex"))
st.markdown(T("moment"))
st.latex(T("moment_latex"))

d = kl.KLConfig()
# fmt: off
with ui.controls():
    spec = ui.target_picker("kl", default="two_peaks")
    with st.form("kl_form", border=True):
        c1, c2, c3, c4 = st.columns(4)
        q = ws.selectbox(c1, T("q_family"), kl.Q_NAMES, format_func=lambda v: T(f"q_{v}"), key="kl_q", help=T("q_help"))
        comps = ws.number_input(c2, T("components"), 1, kl.MAX_COMPONENTS, value=d.components, key="kl_components")
        opt = ws.selectbox(c3, T("optimizer"), kl.OPTIMIZERS, format_func=lambda v: T(f"opt_{v}"), key="kl_optimizer")
        lr = ws.number_input(c4, T("lr"), 1e-4, kl.MAX_LR, value=d.lr, step=0.01, format="%.4f", key="kl_lr")
        c1, c2, c3, c4 = st.columns(4)
        steps = ws.number_input(c1, T("steps"), 1, kl.MAX_STEPS, value=d.steps, step=100, key="kl_steps")
        n_samples = ws.number_input(c2, T("n_samples"), 2, kl.MAX_SAMPLES, value=d.n_samples, step=64, key="kl_n_samples", help=T("n_samples_help"))
        seed = ws.number_input(c3, ui.t("common.seed"), 0, 2**31 - 1, value=d.seed, key="kl_seed")
        frames = ws.number_input(c4, T("frames"), 2, kl.MAX_FRAMES, value=d.num_frames, step=10, key="kl_frames")
        c1, c2, c3, _ = st.columns(4)
        mx = ws.number_input(c1, T("init_x"), -10.0, 10.0, value=d.init_mean[0], step=0.5, key="kl_init_x", help=T("init_help"))
        my = ws.number_input(c2, T("init_y"), -10.0, 10.0, value=d.init_mean[1], step=0.5, key="kl_init_y")
        scale = ws.number_input(c3, T("init_scale"), 0.05, 5.0, value=d.init_scale, step=0.1, key="kl_init_scale")
        st.form_submit_button(ui.t("common.apply"), key="kl_apply", icon=":material/check:")
try:
    cfg = kl.KLConfig(
        target=spec.name, target_params=spec.params, q=q, components=int(comps), optimizer=opt,
        lr=float(lr), steps=int(steps), n_samples=int(n_samples), seed=int(seed),
        num_frames=int(frames), init_mean=(float(mx), float(my)), init_scale=float(scale),
    )
except ValueError as exc:
    st.error(T("config_error", error=str(exc)))
    cfg = d
# fmt: on

key = kl.job_key(cfg)  # content hash of the settings: equal settings share one job
work = lambda on_step, ctl: kl.fit_pair(cfg, on_step=on_step, control=ctl)  # noqa: E731
if (pair := ui.work_panel(key, 2 * cfg.steps, work, page="kl")) is not None:
    kl_pair_panel(pair, key)

st.subheader(T("seeds"))
st.caption(T("seeds_intro"))
n_seeds = ws.slider(st, T("n_seeds"), 2, 16, value=8, key="kl_n_seeds")
scfg, seeds = cfg.with_(divergence="reverse"), list(range(int(n_seeds)))
skey = kl.job_key(scfg, "sweep", seeds=len(seeds))
work = lambda on_step, ctl: kl.seed_sweep(scfg, seeds, on_step=on_step, control=ctl)  # noqa: E731
if (sw := ui.work_panel(skey, len(seeds) * scfg.steps, work, page="kl_seeds")) is not None:
    kl_sweep_panel(sw, skey)
ui.url_notice()
ui.theory("kl")
