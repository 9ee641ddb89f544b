"""AppTest: the normalizing-flow page renders (both languages), trains a tiny run and shows the
layer-by-layer warp animation, the exact density, the Jacobian, NLL vs S(p) and the metrics."""

from __future__ import annotations

import json
import time

import pytest

PAGE = "pages/flow.py"
P = "flow"


def _specs(at) -> list[dict]:
    """The page's own figures (the live panel's training replay left out)."""
    charts = [c for c in at.get("plotly_chart") if not c.proto.id.endswith("_replay_fig")]
    return [json.loads(c.proto.spec) for c in charts]


def _train_tiny(at, steps: int = 30, **selects):
    at.number_input(key="flow_steps").set_value(steps)
    at.slider(key="flow_layers").set_value(2)
    for key, value in selects.items():
        at.selectbox(key=key).set_value(value)
    at.button(key="flow_apply").click().run()
    assert not at.exception
    _wait(at.button(key="flow_train").click().run())
    assert not at.exception
    return at


def _wait(at, timeout: float = 120.0):
    """Training runs as a background job: rerun until its live panel (Stop button) is gone."""
    t0 = time.monotonic()
    while any(b.key == f"{P}_stop" for b in at.button):
        assert time.monotonic() - t0 < timeout, "training did not finish"
        time.sleep(0.3)
        at.run()
    return at


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_flow_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value == (
        "Normalizing flow" if lang == "en" else "正規化流 (Normalizing flow)"
    )
    assert at.button(key="flow_train")
    assert len(at.get("latex")) >= 5  # theory: change of variables, coupling, both KLs


def test_flow_page_trains_and_shows_panels(app_test):
    at = _train_tiny(app_test(page=PAGE))
    assert not at.error
    specs = _specs(at)
    anim = [s for s in specs if s.get("frames")]
    assert len(anim) == 1
    labels = [st["label"] for st in anim[0]["layout"]["sliders"][0]["steps"]]
    assert labels[0] == "N(0, I)" and labels[-1].startswith(
        "6/6"
    )  # (actnorm, coupling, rotation) ×2 − rotation + actnorm
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"q_θ(x)", "p(x)", "log|det ∇f⁻¹(x)|", "grid of the noise space"} <= names
    assert any("KL" in str(v) for d in at.dataframe for v in d.value.iloc[:, 0])
    at.slider(key="flow_substeps").set_value(1).run()
    assert not at.exception and not at.error


def test_flow_page_reverse_kl_affine(app_test):
    at = _train_tiny(
        app_test(page=PAGE), steps=20, flow_coupling="affine", flow_objective="reverse"
    )
    assert not at.error
    assert any(s.get("frames") for s in _specs(at))
