"""The Streamlit layer (the only place besides ``pages/`` that imports streamlit).

A page is::

    from genlib import ui, viz
    ui.setup_page("ddpm")
    ui.header("ddpm")
    spec = ui.run_form("ddpm", default_target="moons")
    trained = ui.train_panel(spec)
    if trained is not None:
        ui.figure(viz.scatter({...}, trained.target.bounds), name="ddpm_samples", data=...)
        ui.metrics_panel(trained)
        ui.downloads(trained)
    ui.theory("ddpm")

Texts: ``ui.t("ddpm.key")`` from ``assets/texts/ddpm.toml`` (``[en]``/``[ja]``).
"""

from genlib.ui.cached import (
    MAX_SAMPLES,
    forward_process,
    log_density_grid,
    score_grid,
    target_bounds,
    target_entropy,
    target_samples,
)
from genlib.ui.export import csv_button, figure, gif_button, safe_name
from genlib.ui.i18n import LANG_NAMES, LANGS, has, lang, set_lang, t, t_raw
from genlib.ui.layout import (
    PAGES,
    controls,
    current_page,
    device_badge,
    header,
    language_switch,
    lazy_panel,
    open_all,
    page_table,
    presentation_toggle,
    presenting,
    section,
    setup_app,
    setup_page,
    theory,
)
from genlib.ui.live import (
    cached_trained,
    forget_work,
    job_queue,
    session_job,
    train_many_panel,
    train_panel,
    work_panel,
)
from genlib.ui.page import model_page, page_end, result_view
from genlib.ui.panels import (
    derived,
    downloads,
    evaluate_cached,
    field_panel,
    likelihood_panel,
    metrics_panel,
    result_id,
    sample_model,
)
from genlib.ui.points import parse_points, points_from_image
from genlib.ui.proofs_models import gan_correction_panel, rbm_sign_panel, vae_posterior_panel
from genlib.ui.state import url_notice
from genlib.ui.widgets import (
    preset_description,
    preset_label,
    preset_picker,
    run_form,
    target_label,
    target_picker,
)

__all__ = [
    "LANGS",
    "LANG_NAMES",
    "PAGES",
    "t",
    "t_raw",
    "has",
    "lang",
    "set_lang",
    "page_table",
    "setup_app",
    "setup_page",
    "current_page",
    "header",
    "theory",
    "controls",
    "language_switch",
    "presentation_toggle",
    "presenting",
    "section",
    "lazy_panel",
    "open_all",
    "device_badge",
    "target_picker",
    "target_label",
    "preset_picker",
    "preset_label",
    "preset_description",
    "run_form",
    "train_panel",
    "train_many_panel",
    "work_panel",
    "forget_work",
    "model_page",
    "page_end",
    "result_view",
    "url_notice",
    "cached_trained",
    "evaluate_cached",
    "likelihood_panel",
    "field_panel",
    "job_queue",
    "session_job",
    "derived",
    "result_id",
    "metrics_panel",
    "downloads",
    "sample_model",
    "figure",
    "gif_button",
    "csv_button",
    "safe_name",
    "MAX_SAMPLES",
    "target_samples",
    "target_bounds",
    "log_density_grid",
    "score_grid",
    "target_entropy",
    "forward_process",
    "parse_points",
    "points_from_image",
    "vae_posterior_panel",
    "gan_correction_panel",
    "rbm_sign_panel",
]
