"""AppTest: the KL page renders in both languages, fits both directions from the same start, and
its main figure is a client-side animation (frames + play/pause + slider)."""

from __future__ import annotations

import json
import math

import pytest

PAGE = "pages/kl.py"


def _specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _animation(at) -> dict:
    anims = [s for s in _specs(at) if s.get("frames")]
    assert len(anims) == 1, "exactly one animated figure (forward vs reverse)"
    return anims[0]


def _small(at, **extra):
    """Shrink the fit (fewer steps and frames) and press the form's Fit button."""
    at.number_input(key="kl_steps").set_value(extra.pop("steps", 120))
    at.number_input(key="kl_frames").set_value(extra.pop("frames", 8))
    for key, value in extra.items():
        widget = (
            at.selectbox(key=key) if key in ("kl_q", "kl_optimizer") else at.number_input(key=key)
        )
        widget.set_value(value)
    at.button(key="kl_apply").click().run()
    assert not at.exception
    return at


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_kl_page_renders_and_animates(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception
    assert at.title[0].value == ("KL: forward vs reverse" if lang == "en" else "KL：順方向と逆方向")
    anim = _animation(at)
    lay = anim["layout"]
    assert lay["updatemenus"][0]["buttons"][0]["method"] == "animate"
    assert len(lay["sliders"][0]["steps"]) == len(anim["frames"]) == 60  # the default frame count
    assert lay["yaxis"]["scaleanchor"] == "x"  # square density panel
    assert len(at.get("latex")) >= 3 and not at.error
    assert at.dataframe  # the final values table


def test_kl_page_fits_other_family_and_seed_sweep(app_test):
    at = app_test(page=PAGE)
    _small(at, kl_q="mixture", kl_components=2)
    anim = _animation(at)
    assert len(anim["frames"]) == 8
    # a mixture is drawn with its density contours, as scatter lines (no redraw: plotly.js drops
    # contour/heatmap traces during animations); the target density is a layout image
    assert {tr.get("type", "scatter") for fr in anim["frames"] for tr in fr["data"]} == {"scatter"}
    assert anim["layout"]["updatemenus"][0]["buttons"][0]["args"][1]["frame"]["redraw"] is False
    assert len(anim["layout"]["images"]) == 2
    _small(at, kl_q="gaussian", steps=150, frames=4)
    assert len(_animation(at)["frames"]) == 4
    at.slider(key="kl_n_seeds").set_value(2)
    at.button(key="kl_run_seeds").click().run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 3  # KL curves of both fits + the seed sweep
    assert any(
        "mode" in m.value.lower() or "several" in m.value.lower()
        for m in at.markdown
        if m.value.startswith("Tally")
    )


def test_kl_page_two_peaks_parameters(app_test):
    """Unequal weights: the reverse fit's final KL(q‖p) is log 1/w of the mode it picked."""
    at = app_test(page=PAGE)
    at.slider(key="kl_tp_distance").set_value(6.0)
    at.slider(key="kl_tp_weight").set_value(0.3)
    _small(at, steps=400, frames=5, kl_lr=0.05)
    df = at.dataframe[0].value
    kl_qp = float(df.iloc[1, 2])  # reverse row, KL(q_θ‖p) column
    assert min(abs(kl_qp - math.log(1 / 0.3)), abs(kl_qp - math.log(1 / 0.7))) < 0.03
    assert float(df.iloc[0, 1]) < float(df.iloc[1, 1])  # forward fit has the smaller KL(p‖q)
    assert any("log 1/w_k" in c.value for c in at.caption)


def test_kl_page_reports_divergence(app_test):
    at = app_test(page=PAGE)
    _small(at, kl_optimizer="sgd", kl_lr=1.0, steps=60, frames=60)  # lr ≤ 1: the loop's bound
    assert not at.exception
    assert at.warning  # a clear message, no traceback
