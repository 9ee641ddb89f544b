"""AppTest: the Boltzmann-machine page renders (both languages), trains a tiny run and shows the
free-energy landscape, the exact mixture, the Gibbs chain animations and the two phases."""

from __future__ import annotations

import json
import time

import pytest

PAGE = "pages/rbm.py"
P = "rbm"


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
def test_rbm_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value == ("Boltzmann machine" if lang == "en" else "ボルツマンマシン")
    assert at.button(key="rbm_train")
    assert len(at.get("latex")) >= 8


def test_rbm_page_trains_and_shows_panels(app_test):
    at = app_test(page=PAGE)
    at.number_input(key="rbm_steps").set_value(60)
    at.slider(key="rbm_hidden").set_value(4)
    at.selectbox(key="rbm_sampler").set_value("pcd")
    at.button(key="rbm_apply").click().run()
    _wait(at.button(key="rbm_train").click().run())
    assert not at.exception and not at.error
    specs = _specs(at)
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {
        "E_θ(x) − min",
        "component means b + W h (size ∝ π_h)",
        "MC samples y (negative phase)",
    } <= names
    anims = [s for s in specs if s.get("frames")]
    # CD chains from data, long chains from noise, negative phase over training
    assert len(anims) == 3
    assert any("KL" in str(v) for d in at.dataframe for v in d.value.iloc[:, 0])
    assert [m.label for m in at.metric] == ["Modes covered", "Samples near a mode"]
    at.select_slider(key="rbm_long").set_value(20).run()
    assert not at.exception and not at.error
