"""The one skeleton of a model page: its widgets and its panels, nothing else.

::

    P = "ddpm"
    trained = ui.model_page(P, default_target="moons", extra=extra)   # stops when no model yet
    ... the family's own panels, each from ui.derived(trained, lab_fn, ...) ...
    ui.page_end(P, trained)                                          # metrics, downloads, theory

``model_page`` renders the shell, the title, the controls (target, preset, hyper-parameters and the
page's ``extra`` widgets) next to the live panel: the result at once when it is pretrained or
cached, otherwise the job's queue position or its progress, the live view moving, the loss and
Stop / Pause / Step. Without a model the page ends there (the theory stays readable).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from genlib.runs import EVAL_N, Trained
from genlib.ui.cached import log_density_grid, target_bounds
from genlib.ui.export import figure
from genlib.ui.i18n import t
from genlib.ui.layout import controls, header, presenting, setup_page, theory
from genlib.ui.live import live_labels, train_panel
from genlib.ui.panels import downloads, metrics_panel, sample_model
from genlib.ui.state import url_notice
from genlib.ui.widgets import run_form
from genlib.viz.live import live_figure

__all__ = ["model_page", "page_end", "result_view"]


def result_view(page: str, trained: Trained, *, height: int = 460) -> None:
    """The trained model's samples over the target's exact density (the live view's final look)."""
    from genlib.lab.live import LiveView

    spec = trained.spec
    bounds = target_bounds(spec.target)
    # the first 1000 of the samples the downloads offer (one cached sampler run for both; more
    # points would not change the look, but cost the browser time: an SVG node each)
    q = sample_model(trained, EVAL_N)[:1000]
    view = LiveView(samples=q, bounds=bounds)
    xs, ys, lp = log_density_grid(spec.target, 80, bounds)
    fig = live_figure(
        view,
        target_grid=(xs, ys, lp),
        labels=live_labels(),
        title=t("common.result_title", steps=trained.result.steps_done),
        height=height,
    )
    figure(fig, f"{page}_{spec.target.name}_result", data=q, key=f"{page}_result_fig")


def model_page(
    page: str,
    *,
    default_target: str = "moons",
    extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    model: str | None = None,
    allowed_targets: list[str] | None = None,
) -> Trained:
    """Shell, title, controls and the live/result panel of a model page; returns the trained
    model, or ends the script run (after the theory) while there is none."""
    setup_page(page)
    header(page)
    wide = presenting()  # projector: controls folded away above, the figure across the screen
    ctrl, main = (st.container(), st.container()) if wide else st.columns([1, 2], gap="large")
    with ctrl, controls():
        spec = run_form(page, default_target=default_target, model=model, extra=extra,
                        allowed_targets=allowed_targets)  # fmt: skip
    with main:
        # on a projector the figure comes first, the badge and the loss below it
        figure_slot = st.container() if wide else None
        trained = train_panel(spec, page=page)
        if trained is not None:
            with figure_slot or main:
                result_view(page, trained, height=560 if wide else 460)
    url_notice()
    if trained is None:
        theory(page)
        st.stop()
    return trained


def page_end(page: str, trained: Trained) -> None:
    """Metrics against their floors, downloads and the theory: the last panels of a model page."""
    st.subheader(t("common.metrics_title"))
    metrics_panel(trained)
    downloads(trained)
    url_notice()
    theory(page)
