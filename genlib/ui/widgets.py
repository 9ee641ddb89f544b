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
from genlib.ui.points import DEFAULT_BOX, MAX_POINTS, parse_points, points_from_image

__all__ = ["target_picker", "target_label", "run_form", "preset_picker", "MAX_SEED", "UI_MAX_STEPS"]

MAX_SEED = 2**31 - 1
UI_MAX_STEPS = min(MAX_STEPS, 100_000)  # per-click bound on a shared server
DEFAULT_POINTS = "-2,-1\n0,2\n2,-1"


def target_label(name: str) -> str:
    key = f"common.targets.{name}"
    return t(key) if has(key) else name


def _custom_points(key: str) -> list[tuple[float, float]]:
    source = st.radio(
        t("common.custom_source"),
        ["text", "image"],
        format_func=lambda v: t(f"common.custom_source_{v}"),
        key=f"{key}_custom_source",
        horizontal=True,
    )
    default = parse_points(DEFAULT_POINTS)
    if source == "image":
        up = st.file_uploader(
            t("common.custom_image"),
            type=["png", "jpg", "jpeg"],
            key=f"{key}_custom_image",
            help=t("common.custom_image_help", n=MAX_POINTS),
        )
        if up is None:
            st.caption(t("common.custom_image_none"))
            return default
        try:
            pts = points_from_image(up.getvalue(), DEFAULT_BOX, MAX_POINTS)
        except ValueError as exc:
            st.error(t("common.custom_image_error", error=str(exc)))
            return default
        st.caption(t("common.custom_image_ok", n=len(pts)))
        return pts
    text = st.text_area(
        t("common.custom_points"),
        value=DEFAULT_POINTS,
        key=f"{key}_custom_points",
        help=t("common.custom_points_help", n=MAX_POINTS),
        height=110,
    )
    try:
        return parse_points(text)
    except ValueError as exc:
        st.error(t("common.custom_points_error", error=str(exc)))
        return default


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


def preset_picker(key: str, model: str) -> str:
    presets = getattr(models.MODELS.get(model), "presets", {"fast": None})
    names = list(presets)

    def label(p: str) -> str:
        k = f"common.presets.{p}"
        return t(k) if has(k) else p

    choice = ws.selectbox(
        st,
        t("common.preset"),
        names,
        format_func=label,
        key=f"{key}_preset",
        on_change=_apply_preset,
        args=(key, model),
    )
    desc = getattr(presets.get(choice), "description", "")
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
