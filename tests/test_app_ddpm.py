"""AppTest: the DDPM page renders (both languages), shows ᾱ_T, trains a tiny run
and shows ᾱ_T, the ancestral-sampling animation with x̂0, the learned-vs-exact score and metrics."""

from __future__ import annotations

import json
import time

import pytest

PAGE = "pages/ddpm.py"
P = "ddpm"


def _wait(at, timeout: float = 120.0):
    """Training runs as a background job: rerun until its live panel (Stop button) is gone."""
    t0 = time.monotonic()
    while any(b.key == f"{P}_stop" for b in at.button):
        assert time.monotonic() - t0 < timeout, "training did not finish"
        time.sleep(0.3)
        at.run()
    return at


def _specs(at) -> list[dict]:
    """The page's own figures (the live panel's training replay left out)."""
    charts = [c for c in at.get("plotly_chart") if not c.proto.id.endswith("_replay_fig")]
    return [json.loads(c.proto.spec) for c in charts]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_ddpm_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value.startswith("DDPM")
    assert at.button(key=f"{P}_train")
    assert len(at.get("latex")) >= 6
    assert any(m.label == "ᾱ_T" for m in at.metric)


def test_ddpm_page_trains_and_shows_panels(app_test):
    at = app_test(page=PAGE)
    at.number_input(key=f"{P}_steps").set_value(30)
    at.select_slider(key=f"{P}_T").set_value(10)
    at.button(key=f"{P}_apply").click().run()
    assert not at.exception
    # the rescaled linear schedule reaches the prior even for T = 10: ᾱ_T is shown, no warning
    shown = [m.value for m in at.metric if m.label == "ᾱ_T"]
    assert shown and float(shown[0]) < 1e-3 and not at.warning
    _wait(at.button(key=f"{P}_train").click().run())
    assert not at.exception and not at.error
    specs = _specs(at)
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"x_t", "x̂₀", "ᾱ_t", "∇ log p_t"} <= names
    animated = [
        s for s in specs if s.get("frames") and any(tr.get("name") == "x̂₀" for tr in s["data"])
    ]
    labels = animated[0]["layout"]["sliders"][0]["steps"]
    assert labels[0]["label"] == "t = 10" and labels[-1]["label"] == "t = 0"
    at.slider(key=f"{P}_t_pick").set_value(5).run()
    assert not at.exception and not at.error
