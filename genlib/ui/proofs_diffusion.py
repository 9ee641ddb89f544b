"""The lecture's proofs on the diffusion pages (lecture 4-3, 4-4): the DDPM variational bound in
nats next to S(p) and the SDE page's PF-ODE NLL, and sample quality vs the number of function
evaluations of every sampler. One call per panel from the page; every computation comes from
``genlib.lab`` through ``derived`` (cached per trained result).

Texts: ``{page}.bound_*`` (DDPM) and ``{page}.nfe_*`` (DDPM and SDE).
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from genlib.lab.ddpm_bound import trained_bound_view
from genlib.lab.nfe import DDPM_SAMPLERS, NFE_DEFAULT, SAMPLERS, trained_ddpm_nfe, trained_sde_nfe
from genlib.runs import RunSpec, TargetSpec, Trained, cached_run
from genlib.ui import state as ws
from genlib.ui.export import figure
from genlib.ui.i18n import t
from genlib.ui.layout import lazy_panel
from genlib.ui.panels import derived
from genlib.viz.bounds import bound_terms_figure
from genlib.viz.nfe import nfe_figure

__all__ = ["ddpm_bound_panel", "ddpm_nfe_panel", "sde_nfe_panel", "sde_preset_nll"]

BOUND_POINTS = (500, 1000, 2000, 5000)
DDPM_BUDGETS = (10, 20, 50, 100, 200)  # NFE of the DDPM page (capped at T, and T itself)
SIGMA2_NAMES = {"beta": "σₜ² = βₜ", "beta_tilde": "σₜ² = β̃ₜ"}


@st.cache_data(max_entries=32, show_spinner=False)
def sde_preset_nll(target: TargetSpec) -> float | None:
    """The exact PF-ODE NLL (nats per 2D point) of the SDE family's fast preset on ``target`` if
    that result is pretrained or cached (its stored metrics), else ``None`` (nothing is trained)."""
    trained = cached_run(RunSpec.from_preset("sde", target, "fast"))
    if trained is None or not trained.metrics or "exact_nll" not in trained.metrics:
        return None
    value = float(trained.metrics["exact_nll"])
    return value if math.isfinite(value) else None


@lazy_panel("bound", "bound_title", icon=":material/functions:")
def ddpm_bound_panel(page: str, trained: Trained) -> None:
    """The bound L_T + Σ L_{t−1} + L_0 per step for σ_t² = β_t and β̃_t, its totals next to
    S(p) and the SDE preset's PF-ODE NLL on the same target."""
    n = int(
        ws.select_slider(st, t(f"{page}.bound_n"), BOUND_POINTS, value=1000, key=f"{page}_bound_n")
    )
    view = derived(trained, trained_bound_view, n, 0)
    nll = sde_preset_nll(trained.spec.target)
    b, bt = view.bounds["beta"], view.bounds["beta_tilde"]
    cols = st.columns(4)
    cols[0].metric(t(f"{page}.bound_entropy"), f"{view.entropy:.3f}")
    for col, (k, v) in zip(cols[1:3], view.bounds.items(), strict=True):
        col.metric(t(f"{page}.bound_total", s=SIGMA2_NAMES[k]), f"{v.total:.3f} ± {v.stderr:.3f}")
    cols[3].metric(t(f"{page}.bound_sde_nll"), "—" if nll is None else f"{nll:.3f}")
    steps = list(range(2, view.T + 1))  # the KL terms L_{t−1}; L_0 (t = 1) is a log-density
    totals = {t(f"{page}.bound_total", s=SIGMA2_NAMES[k]): v.total for k, v in view.bounds.items()}
    if nll is not None:
        totals[t(f"{page}.bound_sde_nll")] = nll
    fig = bound_terms_figure(
        steps,
        {SIGMA2_NAMES[k]: v.L_t[1:] for k, v in view.bounds.items()},
        totals,
        entropy=view.entropy,
        titles=(t(f"{page}.bound_terms_title"), t(f"{page}.bound_totals_title")),
        ylabel=t(f"{page}.bound_nats"),
    )
    data = pd.DataFrame(
        {"t": [1, *steps], **{f"L_t_{k}": v.L_t.tolist() for k, v in view.bounds.items()}}
    )
    figure(fig, f"{page}_{trained.spec.target.name}_bound", data=data, key=f"{page}_bound_fig")
    st.caption(
        t(f"{page}.bound_caption", lt=f"{b.L_T:.2e}", l0=f"{b.L_0:.3f}", l0t=f"{bt.L_0:.3f}",
          mass=f"{view.entropy_mass:.4f}", n=n)
    )  # fmt: skip
    if nll is None:
        st.info(t(f"{page}.bound_no_sde"))


def _names(page: str, samplers: tuple[str, ...]) -> dict[str, str]:
    return {s: t(f"{page}.nfe_sampler_{s}") for s in samplers}


def _score_source(page: str, trained: Trained, score: str) -> str:
    """``score``, or ``"model"`` (with a note) when the target has no exact diffused marginal."""
    if score == "exact" and not getattr(trained.target, "exact_marginals", True):
        st.info(t(f"{page}.nfe_no_exact"))
        return "model"
    return score


@lazy_panel("nfe", "nfe_title", icon=":material/speed:")
def ddpm_nfe_panel(page: str, trained: Trained) -> None:
    """Ancestral vs DDIM vs DPM-Solver-2 on the model's schedule: sliced W₂ vs NFE, log-log."""
    score = ws.radio(
        st, t(f"{page}.nfe_score"), ("model", "exact"), format_func=lambda v: t(f"{page}.nfe_score_{v}"),
        key=f"{page}_nfe_score", horizontal=True,
    )  # fmt: skip
    score = _score_source(page, trained, score)
    T = trained.model.T  # type: ignore[attr-defined]
    budgets = tuple(sorted({min(b, T) for b in DDPM_BUDGETS + (T,)}))
    study = derived(trained, trained_ddpm_nfe, score, 1000, budgets, 0)
    names = _names(page, DDPM_SAMPLERS)
    curves = {names[c.sampler]: (c.nfe, c.error) for c in study.curves}
    fig = nfe_figure(curves, floor=study.floor, floor_name=t(f"{page}.nfe_floor"),
                     ylabel=t(f"{page}.nfe_sw"))  # fmt: skip
    data = pd.DataFrame([{"sampler": c.sampler, "nfe": k, "sw": e} for c in study.curves for k, e in zip(c.nfe, c.error, strict=True)])  # fmt: skip
    figure(fig, f"{page}_{trained.spec.target.name}_nfe_{score}", data=data, key=f"{page}_nfe_fig")
    st.caption(t(f"{page}.nfe_caption", n=study.n))


@lazy_panel("nfe", "nfe_title", icon=":material/speed:")
def sde_nfe_panel(page: str, trained: Trained) -> None:
    """Every sampler of the SDE family (and DDIM, DPM-Solver-2 for VP) vs NFE, log-log, with the
    exact score or the model, by sliced W₂ or by the distance to the converged PF-ODE solution."""
    c1, c2 = st.columns(2)
    score = ws.radio(
        c1, t(f"{page}.nfe_score"), ("exact", "model"), format_func=lambda v: t(f"{page}.nfe_score_{v}"),
        key=f"{page}_nfe_score", horizontal=True,
    )  # fmt: skip
    metric = ws.radio(
        c2, t(f"{page}.nfe_metric"), ("sw", "path"), format_func=lambda v: t(f"{page}.nfe_metric_{v}"),
        key=f"{page}_nfe_metric", horizontal=True,
    )  # fmt: skip
    score = _score_source(page, trained, score)
    study = derived(trained, trained_sde_nfe, score, 1000, NFE_DEFAULT, 0, metric)
    names = _names(page, SAMPLERS)
    curves = {names[c.sampler]: (c.nfe, c.error) for c in study.curves}
    ylabel = t(f"{page}.nfe_metric_{metric}")
    fig = nfe_figure(curves, floor=study.floor or None, floor_name=t(f"{page}.nfe_floor"),
                     ylabel=ylabel, slopes=(1, 2) if metric == "path" else ())  # fmt: skip
    data = pd.DataFrame([{"sampler": c.sampler, "nfe": k, metric: e} for c in study.curves for k, e in zip(c.nfe, c.error, strict=True)])  # fmt: skip
    name = f"{page}_{trained.spec.target.name}_nfe_{score}_{metric}"
    figure(fig, name, data=data, key=f"{page}_nfe_fig")
    st.caption(t(f"{page}.nfe_caption_{metric}", n=study.n))
    if study.skipped:
        st.caption(t(f"{page}.nfe_skipped", names=", ".join(names[s] for s in study.skipped)))
