"""Input widgets: the target picker and the run form (target + preset + hyper-parameters)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import streamlit as st

from genlib import distributions, models
from genlib.runs import RunSpec, TargetSpec, freeze
from genlib.training import MAX_BATCH, MAX_STEPS, TrainConfig
from genlib.ui import state as ws
from genlib.ui.i18n import has, t
from genlib.ui.points import (
    DEFAULT_BOX,
    MAX_ABS,
    MAX_CSV_BYTES,
    MAX_POINTS,
    MAX_TEXT_CHARS,
    PointsError,
    canvas_background,
    fit_to_box,
    parse_csv,
    parse_points,
    parse_points_text,
    points_from_canvas,
    points_from_image,
)

__all__ = [
    "target_picker",
    "target_label",
    "run_form",
    "preset_picker",
    "preset_label",
    "preset_description",
    "MAX_SEED",
    "UI_MAX_STEPS",
]

MAX_SEED = 2**31 - 1
UI_MAX_STEPS = min(MAX_STEPS, 100_000)  # per-click bound on a shared server
DEFAULT_POINTS = "-2,-1\n0,2\n2,-1"


def target_label(name: str) -> str:
    key = f"common.targets.{name}"
    return t(key) if has(key) else name


CANVAS_PX = 240  # the drawing canvas (pixels, square) onto DEFAULT_BOX: fits the controls column
CUSTOM_SOURCES = ("draw", "text", "csv", "image")
CANVAS_TOOLS = ("point", "freedraw", "circle")


def _points_message(exc: ValueError) -> str:
    """A points error in the page language (``common.custom_err_<code>``)."""
    if isinstance(exc, PointsError):
        return t(f"common.custom_err_{exc.code}", **exc.params)
    return str(exc)


def _canvas_points(key: str) -> list[tuple[float, float]] | None:
    """The drawing canvas (streamlit-drawable-canvas) -> points in DEFAULT_BOX; ``None`` while
    nothing is drawn (or where the package is missing)."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception:  # not installed / component not registered: the other sources remain
        st.info(t("common.custom_canvas_missing"))
        return None
    tool = st.radio(
        t("common.custom_tool"),
        CANVAS_TOOLS,
        format_func=lambda v: t(f"common.custom_tool_{v}"),
        key=f"{key}_custom_tool",
        horizontal=True,
    )
    st.caption(t("common.custom_canvas_help", n=MAX_POINTS))
    st.space(20)  # the canvas's toolbar floats above its top edge: keep it off the caption
    result = st_canvas(
        fill_color="rgba(0, 0, 0, 0)",
        stroke_width=3,
        stroke_color="#1f4e9c",
        background_image=canvas_background((CANVAS_PX, CANVAS_PX), DEFAULT_BOX),
        height=CANVAS_PX,
        width=CANVAS_PX,
        drawing_mode=tool,
        point_display_radius=4,
        key=f"{key}_custom_canvas",
    )
    pts = points_from_canvas(result.json_data, (CANVAS_PX, CANVAS_PX), DEFAULT_BOX, MAX_POINTS)
    return pts or None


def _csv_points(key: str) -> list[tuple[float, float]] | None:
    up = st.file_uploader(
        t("common.custom_csv", size=MAX_CSV_BYTES // 1024),
        type=["csv", "txt"],
        key=f"{key}_custom_csv",
        help=t("common.custom_csv_help", n=MAX_POINTS),
        max_upload_size=1,
    )
    fit = st.checkbox(t("common.custom_csv_fit"), value=True, key=f"{key}_custom_csv_fit")
    if up is None:
        st.caption(t("common.custom_csv_none"))
        return None
    try:
        if up.size > MAX_CSV_BYTES:  # refused before reading it
            raise PointsError("too_large", limit=f"{MAX_CSV_BYTES // 1024} kB")
        pts = parse_csv(up.getvalue(), MAX_POINTS, MAX_CSV_BYTES, 1e6 if fit else MAX_ABS)
    except ValueError as exc:
        st.error(t("common.custom_csv_error", error=_points_message(exc)))
        return None
    return fit_to_box(pts, DEFAULT_BOX) if fit else pts


def _custom_points(key: str) -> list[tuple[float, float]]:
    """The user's mixture centres: drawn, typed, from a CSV file or an image (bounded to
    MAX_POINTS; the default three points until a source gives some)."""
    source = st.radio(
        t("common.custom_source"),
        CUSTOM_SOURCES,
        format_func=lambda v: t(f"common.custom_source_{v}"),
        key=f"{key}_custom_source",
        horizontal=True,
    )
    default = parse_points(DEFAULT_POINTS)
    if source == "draw":
        pts = _canvas_points(key)
        if pts is None:
            st.caption(t("common.custom_canvas_none"))
            return default
        st.caption(t("common.custom_canvas_ok", n=len(pts)))
        return pts
    if source == "csv":
        pts = _csv_points(key)
        if pts is None:
            return default
        st.caption(t("common.custom_csv_ok", n=len(pts)))
        return pts
    if source == "image":
        up = st.file_uploader(
            t("common.custom_image"),
            type=["png", "jpg", "jpeg"],
            key=f"{key}_custom_image",
            help=t("common.custom_image_help", n=MAX_POINTS),
            max_upload_size=2,
        )
        if up is None:
            st.caption(t("common.custom_image_none"))
            return default
        try:
            pts = points_from_image(up.getvalue(), DEFAULT_BOX, MAX_POINTS)
        except ValueError as exc:
            st.error(t("common.custom_image_error", error=_points_message(exc)))
            return default
        st.caption(t("common.custom_image_ok", n=len(pts)))
        return pts
    text = st.text_area(
        t("common.custom_points"),
        value=DEFAULT_POINTS,
        key=f"{key}_custom_points",
        help=t("common.custom_points_help", n=MAX_POINTS, chars=f"{MAX_TEXT_CHARS:,}"),
        height=110,
        max_chars=MAX_TEXT_CHARS,
    )
    try:
        pts, ignored = parse_points_text(text or "", MAX_POINTS)
    except ValueError as exc:
        st.error(t("common.custom_points_error", error=_points_message(exc)))
        return default
    if ignored:
        st.warning(t("common.custom_points_truncated", n=MAX_POINTS, ignored=ignored))
    return pts


def _target_params(key: str, name: str) -> dict[str, Any]:
    if name == "two_peaks":
        c1, c2, c3 = st.columns(3)
        return {
            "distance": ws.slider(
                c1,
                t("common.tp_distance"),
                0.5,
                10.0,
                value=4.0,
                step=0.5,
                key=f"{key}_tp_distance",
            ),
            "std": ws.slider(
                c2, t("common.tp_std"), 0.1, 2.0, value=0.5, step=0.05, key=f"{key}_tp_std"
            ),
            "weight": ws.slider(
                c3, t("common.tp_weight"), 0.05, 0.95, value=0.5, step=0.05, key=f"{key}_tp_weight"
            ),
        }
    if name == "25gaussians":
        std = ws.select_slider(
            st,
            t("common.g25_std"),
            options=[0.0177, 0.03, 0.05, 0.1, 0.2],
            value=0.0177,
            key=f"{key}_g25_std",
            help=t("common.g25_std_help"),
        )
        return {} if std == 0.0177 else {"std": std}
    if name == "custom_gmm":
        pts = _custom_points(key)
        std = ws.slider(
            st, t("common.custom_std"), 0.05, 1.0, value=0.3, step=0.05, key=f"{key}_custom_std"
        )
        return {"points": [list(p) for p in pts], "std": std}
    return {}


def target_picker(key: str, default: str = "moons", allowed: list[str] | None = None) -> TargetSpec:
    """A target selectbox (+ its parameters) -> ``TargetSpec``. Invalid parameters show an error
    and fall back to the target's defaults."""
    names = [n for n in distributions.names() if allowed is None or n in allowed]
    if not names:
        raise ValueError("no target available")
    idx = names.index(default) if default in names else 0
    name = ws.selectbox(
        st, t("common.target"), names, index=idx, format_func=target_label, key=f"{key}_target"
    )
    params = _target_params(key, name)
    spec = TargetSpec(name, freeze(params))
    try:
        spec.build()
    except (ValueError, TypeError) as exc:
        st.error(t("common.target_error", error=str(exc)))
        return TargetSpec(name)
    return spec


def preset_label(name: str) -> str:
    """A preset's name in the UI language (``common.presets.<name>``)."""
    k = f"common.presets.{name}"
    return t(k) if has(k) else name


def preset_description(model: str, name: str) -> str:
    """A preset's description in the UI language (``common.preset_desc.<model>.<name>``), else the
    ``Preset.description`` of the model (English)."""
    k = f"common.preset_desc.{model}.{name}"
    if has(k):
        return t(k)
    presets = getattr(models.MODELS.get(model), "presets", {})
    return str(getattr(presets.get(name), "description", "") or "")


def preset_picker(key: str, model: str) -> str:
    """The preset selectbox (``{key}_preset``) with the chosen preset's description below it."""
    presets = getattr(models.MODELS.get(model), "presets", {"fast": None})
    names = list(presets)
    choice = ws.selectbox(
        st,
        t("common.preset"),
        names,
        format_func=preset_label,
        key=f"{key}_preset",
        on_change=_apply_preset,
        args=(key, model),
    )
    desc = preset_description(model, choice)
    if desc:
        st.caption(desc)
    return choice


def _preset_train(model: str, preset: str) -> TrainConfig:
    p = models.preset(model, preset)
    return TrainConfig().with_overrides(**p.train)


def _apply_preset(key: str, model: str) -> None:
    """Preset changed: load its training values into the form's widgets."""
    cfg = _preset_train(model, st.session_state.get(f"{key}_preset", "fast"))
    st.session_state[f"{key}_steps"] = int(min(cfg.steps, UI_MAX_STEPS))
    st.session_state[f"{key}_lr"] = float(cfg.lr)
    st.session_state[f"{key}_batch"] = int(cfg.batch_size)


def run_form(
    page_key: str,
    default_target: str = "moons",
    model: str | None = None,
    extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    allowed_targets: list[str] | None = None,
) -> RunSpec:
    """Target picker, preset picker and a form (steps, learning rate, batch size, seed and the
    page's own widgets from ``extra(preset_model_kwargs) -> model overrides``) -> ``RunSpec``.

    Widget keys: ``{page_key}_target``, ``{page_key}_preset``, ``{page_key}_steps``,
    ``{page_key}_lr``, ``{page_key}_batch``, ``{page_key}_seed``; the form's submit button is
    ``{page_key}_apply``."""
    model = model or page_key
    key = page_key
    target = target_picker(key, default_target, allowed_targets)
    preset = preset_picker(key, model)
    if f"{key}_steps" not in st.session_state:
        _apply_preset(key, model)
    st.session_state.setdefault(f"{key}_seed", 0)
    overrides: dict[str, Any] = {}
    with st.form(f"{key}_form", border=True):
        c1, c2 = st.columns(2)
        steps = ws.number_input(
            c1, t("common.steps"), 1, UI_MAX_STEPS, step=100, key=f"{key}_steps"
        )
        lr = ws.number_input(
            c2, t("common.lr"), 1e-6, 1.0, step=1e-4, format="%.5f", key=f"{key}_lr"
        )
        c3, c4 = st.columns(2)
        batch = ws.number_input(
            c3, t("common.batch_size"), 1, MAX_BATCH, step=64, key=f"{key}_batch"
        )
        seed = ws.number_input(c4, t("common.seed"), 0, MAX_SEED, step=1, key=f"{key}_seed")
        if extra is not None:
            overrides = dict(extra(dict(models.preset(model, preset).model)) or {})
        st.form_submit_button(t("common.apply"), key=f"{key}_apply", icon=":material/check:")
    try:
        if not (math.isfinite(float(lr)) and 0 < float(lr) <= 1):
            raise ValueError("learning rate must be in (0, 1]")
        return RunSpec.from_preset(
            model,
            target,
            preset=preset,
            seed=int(seed),
            model_overrides=overrides,
            steps=int(steps),
            lr=float(lr),
            batch_size=int(batch),
        )
    except (ValueError, TypeError, KeyError) as exc:
        st.error(t("common.spec_error", error=str(exc)))
        return RunSpec.from_preset(model, target, preset=preset)
