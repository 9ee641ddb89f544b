"""AppTest: the SDE page renders (both languages), trains a tiny run and shows its panels: the two
reverse-time animations (chosen λ and the PF-ODE), the learned-vs-exact score, the PF-ODE
likelihood, metrics with the exact KL."""

from __future__ import annotations

import json
import time

import pytest

PAGE = "pages/sde.py"
P = "sde"


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


def _train_tiny(at, steps: int = 40):
    at.number_input(key="sde_steps").set_value(steps)
    at.button(key="sde_apply").click().run()
    assert not at.exception
    _wait(at.button(key="sde_train").click().run())
    assert not at.exception
    return at


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_sde_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value.startswith("Score SDE" if lang == "en" else "スコアSDE")
    assert at.button(key="sde_train")
    assert len(at.get("latex")) >= 8  # the theory expander renders the lecture's equations


def test_sde_page_trains_and_shows_panels(app_test):
    at = _train_tiny(app_test(page=PAGE))
    assert not at.error
    specs = _specs(at)
    animated = [s for s in specs if s.get("frames")]
    assert len(animated) >= 2  # chosen λ and PF-ODE (+ the forward diffusion, in an expander)
    labels = animated[0]["layout"]["sliders"][0]["steps"]
    assert labels[0]["label"] == "t = 1.000" and labels[-1]["label"] == "t = 0.001"  # noise -> data
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"s_θ(x, t)", "∇ log p_t(x)", "q_θ(x)", "p(x)"} <= names
    assert any("KL" in str(v) for d in at.dataframe for v in d.value.iloc[:, 0])
    # the λ slider and the time of the score field
    at.slider(key="sde_lam").set_value(0.5).run()
    assert not at.exception
    at.select_slider(key="sde_t").set_value(0.5).run()
    assert not at.exception and not at.error
    # a VE model: its prior N(0, σ_max² I) is wide, the page still renders every panel
    at.radio(key="sde_kind").set_value("ve")
    _train_tiny(at, steps=30)
    assert not at.error
    assert len([s for s in _specs(at) if s.get("frames")]) >= 2
