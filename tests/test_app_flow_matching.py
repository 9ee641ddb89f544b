"""AppTest: the flow-matching page renders (both languages) with the conditional-path animation
before any training, trains a tiny run and shows its panels (learned vs exact ODE trajectories,
learned vs exact velocity, exact likelihood, metrics)."""

from __future__ import annotations

import json
import time

import pytest

PAGE = "pages/flow_matching.py"
P = "flow_matching"


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
def test_flow_matching_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value == ("Flow matching" if lang == "en" else "フローマッチング")
    assert at.button(key="flow_matching_train")
    anim = [s for s in _specs(at) if s.get("frames")]
    assert len(anim) == 1  # the conditional paths, shown before training
    assert anim[0]["layout"]["sliders"][0]["steps"][0]["label"] == "0.00"
    assert len(at.get("latex")) >= 7


def test_flow_matching_page_trains_and_shows_panels(app_test):
    at = app_test(page=PAGE)
    at.number_input(key="flow_matching_steps").set_value(40)
    at.button(key="flow_matching_apply").click().run()
    _wait(at.button(key="flow_matching_train").click().run())
    assert not at.exception and not at.error
    specs = _specs(at)
    assert len([s for s in specs if s.get("frames")]) == 3  # conditional, learned ODE, exact ODE
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"v_θ(x, τ)", "u_τ(x)", "q_θ(x)", "p(x)"} <= names
    assert any("KL" in str(v) for d in at.dataframe for v in d.value.iloc[:, 0])
    at.slider(key="flow_matching_tau").set_value(0.9).run()
    assert not at.exception and not at.error
    # another path: a new spec, not trained yet; its conditional paths still show
    at.radio(key="flow_matching_path").set_value("vp")
    at.button(key="flow_matching_apply").click().run()
    assert not at.exception and at.button(key="flow_matching_train")
