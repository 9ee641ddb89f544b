"""AppTest: the autoregressive page renders (both languages), trains a tiny run and shows the joint
with its slice, the marginal and conditional against the true ones, sequential sampling and NLL."""

from __future__ import annotations

import json
import time

import pytest

PAGE = "pages/autoregressive.py"
P = "autoregressive"


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
def test_autoregressive_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value == ("Autoregressive model" if lang == "en" else "自己回帰モデル")
    assert at.button(key="autoregressive_train")
    assert len(at.get("latex")) >= 4


def test_autoregressive_page_trains_and_shows_panels(app_test):
    at = app_test(page=PAGE)
    at.number_input(key="autoregressive_steps").set_value(40)
    at.slider(key="autoregressive_components").set_value(3)
    at.button(key="autoregressive_apply").click().run()
    _wait(at.button(key="autoregressive_train").click().run())
    assert not at.exception and not at.error
    specs = _specs(at)
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {
        "q_θ(x¹)",
        "p(x¹) (quadrature)",
        "q_θ(x² | x¹ = c)",
        "p(x² | x¹ = c)",
        "slice x¹ = c",
    } <= names
    anim = [s for s in specs if s.get("frames")]
    assert len(anim) == 1
    labels = [st["label"] for st in anim[0]["layout"]["sliders"][0]["steps"]]
    assert labels[0] == "0.00" and labels[-1] == "2.00"
    assert any("KL" in str(v) for d in at.dataframe for v in d.value.iloc[:, 0])
    # move the slice outside the support of the target
    at.slider(key="autoregressive_c").set_value(at.slider(key="autoregressive_c").min).run()
    assert not at.exception and not at.error
