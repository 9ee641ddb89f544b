"""The KL page's result panels (forward vs reverse fits and the seed sweep): the figures,
results table, references, frame explorer and exports of a ``genlib.kl`` result."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from genlib import kl, viz
from genlib.ui.export import csv_button, figure, gif_button
from genlib.ui.i18n import t
from genlib.ui.live import forget_work
from genlib.viz import kl as vkl

__all__ = ["kl_labels", "kl_pair_panel", "kl_sweep_panel", "stopped_note"]


def T(key: str, **kw) -> str:  # noqa: N802 - the page's text helper, as on the page
    return t(f"kl.{key}", **kw)


def kl_labels() -> dict[str, str]:
    """Translated labels of the KL figures."""
    return {k: T(v) for k, v in vkl.TEXT_KEYS.items()}


def ended(k: int | None) -> str:
    return T("ended_na") if k is None else T("ended_several") if k < 0 else T("ended_mode", k=k + 1)


def stopped_note(text: str, key: str, page: str) -> None:
    """A stopped job's label and its "train again" button (drops this session's result)."""
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.info(text, icon=":material/stop_circle:")
    c2.button(t("common.retrain"), key=f"{page}_retrain", on_click=forget_work, args=(key,))


def kl_pair_panel(pair: kl.KLPair, key: str) -> None:
    """The two fits: animation, final values, references, frame explorer and exports."""
    labels, fmt = kl_labels(), vkl.fmt_kl
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
    fig = vkl.kl_pair_figure([fwd, rev], [T("panel_forward"), T("panel_reverse")], labels=labels)
    figure(fig, "kl_forward_vs_reverse", data=table)
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
                title = f"{T('panel_' + name)} · {labels['frame']}{step}"
                snap = vkl.kl_snapshot(res, f, title=title, labels=labels)
                figure(snap, f"kl_{name}_step{step}")
                chart = vkl.kl_curves_chart(res, frame=f, title=T(f"curves_{name}"), labels=labels)
                figure(chart, f"kl_{name}_curves", data=vkl.trace_table({name: res}))
                gif_button(
                    vkl.sample_frames(res), res.bounds, f"kl_{name}", colors=viz.MODEL_COLOR,
                    labels=[f"{labels['frame']}{fr.step}" for fr in res.frames],
                    backgrounds=vkl.gif_background(res), key=f"kl_gif_{name}",
                )  # fmt: skip
        csv_button(table, "kl_trace", label=T("csv_trace"), key="kl_csv_trace")


def kl_sweep_panel(sw: kl.SeedSweep, key: str) -> None:
    """The seed sweep of reverse-KL fits: where each seed ended, and the tally."""
    if sw.status == "stopped":
        stopped_note(T("seeds_stopped", done=len(sw.rows), total=sw.seeds_total), key, "kl_seeds")
    if sw.rows:
        data = pd.DataFrame(sw.rows).drop(columns=["fractions"])
        figure(vkl.seed_sweep_chart(sw, labels=kl_labels()), "kl_seed_sweep", data=data)
        if sw.tally:
            st.markdown(T("tally", text=", ".join(f"{ended(k)}: {n}" for k, n in sw.tally.items())))
