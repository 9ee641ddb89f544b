"""AppTest: the score-matching page renders (both languages), trains a tiny run and shows the
learned-vs-exact field, the Langevin chains (learned vs exact score) and the metrics."""

from __future__ import annotations

import json
import time

import pytest

PAGE = "pages/score_matching.py"
P = "score_matching"


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
def test_score_matching_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value.startswith("Score matching" if lang == "en" else "スコアマッチング")
    assert at.button(key=f"{P}_train")
    assert len(at.get("latex")) >= 3  # the theory expander renders the lecture's equations


def test_score_matching_page_trains_and_shows_panels(app_test):
    at = app_test(page=PAGE)
    at.number_input(key=f"{P}_steps").set_value(30)
    at.select_slider(key=f"{P}_m_steps").set_value(50)
    at.button(key=f"{P}_apply").click().run()
    assert not at.exception
    _wait(at.button(key=f"{P}_train").click().run())
    assert not at.exception and not at.error
    specs = _specs(at)
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"s_θ", "∇ log p", "error"} <= names  # learned vs exact field + error map
    animated = [s for s in specs if s.get("frames")]
    assert animated, "the Langevin chains animation is missing"
    steps = animated[0]["layout"]["sliders"][0]["steps"]
    assert steps[0]["label"].endswith(": 0") and steps[-1]["label"].endswith(": 50")
    assert any("Sliced" in str(v) for d in at.dataframe for v in d.value.iloc[:, 0])
    # start the chains somewhere else: still renders
    at.selectbox(key=f"{P}_init").set_value("box").run()
    assert not at.exception and not at.error
