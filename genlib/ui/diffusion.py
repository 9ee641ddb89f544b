"""Panels shared by the diffusion pages (score matching, NCSN, DDPM, SDE, flow matching) and the
Distributions page: generation trajectories with their exports, the learned-vs-exact field
section, the forward diffusion, the ᾱ_T badge.

Every widget is bound to the URL (``genlib.ui.state``) under the page's key, every result comes
from ``derived`` (cached per trained result) or the cached target computations, and texts come
from the page's own file (``{page}.particles``, ``{page}.zoom``, …); the labels inside the shared
figures from ``distributions.fig``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from genlib import viz
from genlib.lab.fields import trained_field
from genlib.lab.forward import ALPHA_BAR_T_OK, ForwardDiffusion, forward_config_for
from genlib.runs import TargetSpec, Trained
from genlib.trajectory import Trajectory
from genlib.ui import state as ws
from genlib.ui.cached import forward_process, log_density_grid
from genlib.ui.export import csv_button, figure, gif_button
from genlib.ui.i18n import t
from genlib.ui.layout import lazy_panel
from genlib.ui.panels import derived, field_panel
from genlib.viz.diffusion_forward import forward_diffusion_figure

__all__ = [
    "fig_label",
    "density_background",
    "frame_labels",
    "trajectory_controls",
    "trajectory_figure",
    "trajectory_exports",
    "field_section",
    "forward_figure",
    "forward_expander",
    "alpha_bar_badge",
    "ZOOMS",
]

MAX_SEED = 2**31 - 1
ZOOMS = (1.0, 1.5, 2.0, 3.0)  # field views: the target's box scaled about its centre


def fig_label(name: str) -> str:
    """A label inside the shared diffusion figures (``distributions.fig.{name}``)."""
    return t(f"distributions.fig.{name}")


def density_background(target: TargetSpec, bounds: viz.Bounds, res: int = 80) -> list[Any]:
    """Grey contours of the target's exact log-density over ``bounds`` (drawn under particles)."""
    xs, ys, lp = log_density_grid(target, res, tuple(bounds))
    return [viz.contour_trace(lp, xs, ys, color="#9aa4b2", name=fig_label("density"))]


def frame_labels(
    traj: Trajectory, fmt: str = "{:.3g}", name: str | None = None, sep: str = " = "
) -> list[str]:
    """One slider label per frame: ``"{name}{sep}{time}"`` (``name``: the trajectory's
    ``time_label``)."""
    name = traj.time_label if name is None else name
    return [f"{name}{sep}{fmt.format(float(v))}" for v in traj.ts]


def trajectory_controls(
    page: str,
    cols: Sequence[Any] | None = None,
    *,
    n: tuple[int, int, int] = (100, 5000, 600),
    trails: int = 8,
    seed: tuple[str, str] = ("sample_seed", "seed"),
) -> tuple[int, int, int]:
    """Particles, full trails and the sampling seed in three columns (``cols`` or new ones):
    keys ``{page}_n``, ``{page}_trails``, ``{page}_{seed[0]}`` (label ``{page}.{seed[1]}``)."""
    c = list(cols) if cols is not None else st.columns(3)
    lo, hi, default = n
    n_ = ws.slider(c[0], t(f"{page}.particles"), lo, hi, value=default, step=100, key=f"{page}_n")
    k = ws.slider(c[1], t(f"{page}.trails"), 0, 30, value=trails, key=f"{page}_trails")
    s = ws.number_input(c[2], t(f"{page}.{seed[1]}"), 0, MAX_SEED, value=0, key=f"{page}_{seed[0]}")
    return int(n_), int(k), int(s)


def trajectory_figure(
    traj: Trajectory,
    bounds: viz.Bounds,
    labels: Sequence[str],
    *,
    name: str,
    key: str,
    trails: int = 8,
    background: Sequence[Any] = (),
    x0: bool = False,
    **names: Any,
) -> None:
    """A generation path played client-side (``viz.reverse_trajectory_figure``), with its frames as
    the CSV export; ``x0=True`` adds the panel of per-frame data predictions (DDPM)."""
    fig = viz.reverse_trajectory_figure(
        traj.xs.numpy(),
        bounds,
        list(labels),
        x0_preds=traj.x0_preds.numpy() if x0 and traj.x0_preds is not None else None,
        trails=int(trails),
        background=background,
        trail_name=fig_label("trajectories"),
        particle_name=names.pop("particle_name", fig_label("particles")),
        **names,
    )
    figure(fig, name, data=viz.frame_table(traj.xs.numpy(), list(labels)), key=key)


def trajectory_exports(
    page: str,
    traj: Trajectory,
    bounds: viz.Bounds,
    labels: Sequence[str],
    name: str,
    *,
    csv_label: str = "download_frames",
    preds: bool = False,
) -> None:
    """CSV of the frames (and of x̂₀ with ``preds``) and a GIF of the path, side by side
    (texts ``{page}.{csv_label}``, ``{page}.download_preds``)."""
    labels = list(labels)
    cols = st.columns(3 if preds else 2)
    with cols[0]:
        csv_button(viz.frame_table(traj.xs.numpy(), labels), f"{name}_frames",
                   t(f"{page}.{csv_label}"), key=f"{page}_csv_frames")  # fmt: skip
    if preds and traj.x0_preds is not None:
        with cols[1]:
            csv_button(viz.frame_table(traj.x0_preds.numpy(), labels), f"{name}_x0_preds",
                       t(f"{page}.download_preds"), key=f"{page}_csv_preds")  # fmt: skip
    with cols[-1]:
        gif_button(traj.xs.numpy(), bounds, name, labels=labels, key=f"{page}_gif")


@lazy_panel("field", "field_title", icon=":material/explore:")
def field_section(
    page: str,
    trained: Trained,
    level: Callable[[Any], Any] | None = None,
    *,
    names: tuple[str, ...],
    titles: tuple[str, ...] | None = None,
    zoom: float = 1.0,
    normalise: bool = False,
    points: bool = True,
) -> Any:
    """The learned field next to the exact one at the level ``level(column)`` picks (None: a
    family without levels), with the view (``{page}_zoom``), the arrows per side
    (``{page}_grid``) and equal-length arrows (``{page}_normalise``); returns the level."""
    c = st.columns(4 if level is not None else 3)
    lv = level(c[0]) if level is not None else None
    c = c[1:] if level is not None else c
    z = ws.select_slider(c[0], t(f"{page}.zoom"), ZOOMS, value=zoom, key=f"{page}_zoom")
    g = ws.slider(c[1], t(f"{page}.grid"), 9, 35, value=21, step=2, key=f"{page}_grid")
    norm = ws.toggle(c[2], t(f"{page}.normalise"), value=normalise, key=f"{page}_normalise")
    cmp = derived(trained, trained_field, lv, float(z), int(g))
    at = "" if lv is None else f"_{float(lv):.3g}"
    names = tuple(names) + (fig_label("error"),) * (len(names) < 3)
    titles = titles or (fig_label("learned"), fig_label("exact"), fig_label("error"))
    field_panel(page, trained.spec.target, cmp, cmp.bounds, names=names, titles=titles,
                normalise=norm, points=points, name=f"{page}_{trained.spec.target.name}_field{at}")  # fmt: skip
    return lv


def forward_figure(fd: ForwardDiffusion) -> Any:
    """The forward diffusion figure with its labels in the UI language."""
    return forward_diffusion_figure(
        fd,
        titles=(fig_label("simulated"), fig_label("marginal")),
        highlight_name=fig_label("one_particle"),
        conditional_name=fig_label("conditional"),
    )


@lazy_panel("forward", "forward_title", icon=":material/blur_on:")
def forward_expander(page: str, trained: Trained) -> None:
    """A section with the forward process the model reverses (its schedule or σ range) on the
    same target (texts ``{page}.forward_title``, ``{page}.forward_caption``)."""
    fd = forward_process(trained.spec.target, forward_config_for(trained.model))
    name = f"{page}_{trained.spec.target.name}_forward"
    figure(forward_figure(fd), name, data=viz.frame_table(fd.xs, fd.labels), key=f"{page}_forward_fig")  # fmt: skip
    st.caption(t(f"{page}.forward_caption"))


def alpha_bar_badge(where: Any, page: str, value: float) -> None:
    """ᾱ_T as a metric, and a warning when it is far from 0 (texts ``{page}.alpha_bar_T``,
    ``{page}.alpha_bar_T_help``, ``{page}.alpha_bar_warn``)."""
    where.metric(t(f"{page}.alpha_bar_T"), f"{value:.2e}", help=t(f"{page}.alpha_bar_T_help"))
    if value > ALPHA_BAR_T_OK:
        where.warning(t(f"{page}.alpha_bar_warn", value=value))
