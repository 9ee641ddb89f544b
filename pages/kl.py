"""KL: forward vs reverse (lecture 2-5, 訓練の指針 (a)/(b)): mode covering vs mode seeking.
Both fits are one background job (``ui.work_panel``, key ``kl.job_key(cfg)``) with progress,
Stop, Pause and Step like every model page; the seed sweep is a second job (``kl_seeds_*``)."""

import math

import pandas as pd
import streamlit as st

from genlib import kl, ui, viz
from genlib.viz import kl as vkl

ui.setup_page("kl")
ui.header("kl")
T = lambda key, **kw: ui.t(f"kl.{key}", **kw)  # noqa: E731
LABELS = {k: T(v) for k, v in vkl.TEXT_KEYS.items()}
fmt = vkl.fmt_kl


def ended(k: int | None) -> str:
    return T("ended_na") if k is None else T("ended_several") if k < 0 else T("ended_mode", k=k + 1)


def stopped_note(text: str, key: str, page: str) -> None:
    """A stopped job's label and its "train again" button (drops this session's result)."""
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.info(text, icon=":material/stop_circle:")
    c2.button(ui.t("common.retrain"), key=f"{page}_retrain", on_click=ui.forget_work, args=(key,))


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
        q = c1.selectbox(T("q_family"), kl.Q_NAMES, format_func=lambda v: T(f"q_{v}"), key="kl_q", help=T("q_help"))
        comps = c2.number_input(T("components"), 1, kl.MAX_COMPONENTS, d.components, key="kl_components")
        opt = c3.selectbox(T("optimizer"), kl.OPTIMIZERS, format_func=lambda v: T(f"opt_{v}"), key="kl_optimizer")
        lr = c4.number_input(T("lr"), 1e-4, kl.MAX_LR, d.lr, step=0.01, format="%.4f", key="kl_lr")
        c1, c2, c3, c4 = st.columns(4)
        steps = c1.number_input(T("steps"), 1, kl.MAX_STEPS, d.steps, step=100, key="kl_steps")
        n_samples = c2.number_input(T("n_samples"), 2, kl.MAX_SAMPLES, d.n_samples, step=64, key="kl_n_samples", help=T("n_samples_help"))
        seed = c3.number_input(ui.t("common.seed"), 0, 2**31 - 1, d.seed, key="kl_seed")
        frames = c4.number_input(T("frames"), 2, kl.MAX_FRAMES, d.num_frames, step=10, key="kl_frames")
        c1, c2, c3, _ = st.columns(4)
        mx = c1.number_input(T("init_x"), -10.0, 10.0, d.init_mean[0], step=0.5, key="kl_init_x", help=T("init_help"))
        my = c2.number_input(T("init_y"), -10.0, 10.0, d.init_mean[1], step=0.5, key="kl_init_y")
        scale = c3.number_input(T("init_scale"), 0.05, 5.0, d.init_scale, step=0.1, key="kl_init_scale")
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


def show_pair(pair: kl.KLPair, key: str) -> None:
    """The two fits: animation, final values, references, frame explorer and exports."""
    fwd, rev, fits = pair.forward, pair.reverse, pair.fits
    if pair.status == "stopped":
        steps = {"fwd": fwd.steps_done, "rev": rev.steps_done, "total": 2 * fwd.cfg.steps}
        stopped_note(T("stopped", step=pair.steps_done, **steps), key, "kl")
    for name, res in fits.items():
        if res.status == "infinite":
            st.error(T("status_infinite", which=T(name)))
        elif res.status == "diverged":
            st.warning(T("status_diverged", which=T(name), message=res.message))
    table = vkl.trace_table(fits)
    fig = vkl.kl_pair_figure([fwd, rev], [T("panel_forward"), T("panel_reverse")], labels=LABELS)
    ui.figure(fig, "kl_forward_vs_reverse", data=table)
    st.subheader(T("results"))
    rows = pd.DataFrame(vkl.results_rows(fits))
    rows["fit"] = rows["fit"].map(T)
    rows["where"] = rows["where"].map(ended)
    st.dataframe(rows.rename(columns=lambda c: T(f"col_{c}")), hide_index=True, width="stretch")
    ref = fwd.reference
    if "moment" in ref:
        st.caption(T("ref_moment", **{k: fmt(v) for k, v in ref["moment"].items()}))
    if 0 < len(ref.get("modes", [])) <= 8:
        vals, logs = (", ".join(fmt(m[c]) for m in ref["modes"]) for c in ("kl_qp", "log_inv_w"))
        st.caption(T("ref_modes", values=vals, logs=logs))
    if any(math.isinf(v) for v in table[["kl_pq", "kl_qp"]].to_numpy().ravel()):
        st.caption(T("inf_note"))
    if (table["kl_method"] == "mc").any():
        st.caption(T("mc_note"))
    with st.expander(T("explore"), icon=":material/photo_library:"):
        steps_list = [f.step for f in max(fwd, rev, key=lambda r: len(r.frames)).frames]
        pick = st.select_slider(
            T("explore_frame"), options=list(range(len(steps_list))), value=len(steps_list) - 1,
            format_func=lambda i: str(steps_list[i]), key="kl_frame",
        ) if len(steps_list) > 1 else 0  # fmt: skip
        for col, (name, res) in zip(st.columns(2), fits.items(), strict=True):
            with col:
                f = min(pick, len(res.frames) - 1)
                step = res.frames[f].step
                title = f"{T('panel_' + name)} · {LABELS['frame']}{step}"
                snap = vkl.kl_snapshot(res, f, title=title, labels=LABELS)
                ui.figure(snap, f"kl_{name}_step{step}")
                chart = vkl.kl_curves_chart(res, frame=f, title=T(f"curves_{name}"), labels=LABELS)
                ui.figure(chart, f"kl_{name}_curves", data=vkl.trace_table({name: res}))
                ui.gif_button(
                    vkl.sample_frames(res), res.bounds, f"kl_{name}", colors=viz.MODEL_COLOR,
                    labels=[f"{LABELS['frame']}{fr.step}" for fr in res.frames],
                    backgrounds=vkl.gif_background(res), key=f"kl_gif_{name}",
                )  # fmt: skip
        ui.csv_button(table, "kl_trace", label=T("csv_trace"), key="kl_csv_trace")


key = kl.job_key(cfg)  # content hash of the settings: equal settings share one job
work = lambda on_step, ctl: kl.fit_pair(cfg, on_step=on_step, control=ctl)  # noqa: E731
if (pair := ui.work_panel(key, 2 * cfg.steps, work, page="kl")) is not None:
    show_pair(pair, key)

st.subheader(T("seeds"))
st.caption(T("seeds_intro"))
n_seeds = st.slider(T("n_seeds"), 2, 16, 8, key="kl_n_seeds")
scfg, seeds = cfg.with_(divergence="reverse"), list(range(int(n_seeds)))
skey = kl.job_key(scfg, "sweep", seeds=len(seeds))
work = lambda on_step, ctl: kl.seed_sweep(scfg, seeds, on_step=on_step, control=ctl)  # noqa: E731
sw = ui.work_panel(skey, len(seeds) * scfg.steps, work, page="kl_seeds")
if sw is not None and sw.status == "stopped":
    stopped_note(T("seeds_stopped", done=len(sw.rows), total=sw.seeds_total), skey, "kl_seeds")
if sw is not None and sw.rows:
    data = pd.DataFrame(sw.rows).drop(columns=["fractions"])
    ui.figure(vkl.seed_sweep_chart(sw, labels=LABELS), "kl_seed_sweep", data=data)
    if sw.tally:
        st.markdown(T("tally", text=", ".join(f"{ended(k)}: {n}" for k, n in sw.tally.items())))

ui.theory("kl")
