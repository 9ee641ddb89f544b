"""AppTest: the normalizing-flow page renders (both languages), trains a tiny run and shows the
layer-by-layer warp animation, the exact density, the Jacobian, NLL vs S(p) and the metrics."""

from __future__ import annotations

import json

import pytest

PAGE = "pages/flow.py"
P = "flow"


def _specs(at) -> list[dict]:
    """The page's own figures (the live panel's training replay left out)."""
    charts = [c for c in at.get("plotly_chart") if not c.proto.id.endswith("_replay_fig")]
    return [json.loads(c.proto.spec) for c in charts]


PANELS = {
    "flow_result_fig",  # the skeleton's result view
    "fig_flow_warp",
    "fig_flow_density",
    "fig_flow_jacobian",
    "fig_flow_nll",
}


def _train_tiny(at, train_in_app, steps: int = 30, **selects):
    at.number_input(key="flow_steps").set_value(steps)
    at.slider(key="flow_layers").set_value(2)
    for key, value in selects.items():
        at.selectbox(key=key).set_value(value)
    at.button(key="flow_apply").click().run()
    assert not at.exception
    return train_in_app(at, P)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_flow_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value == "Normalizing flow"  # the lecture's term in both languages
    assert at.button(key="flow_train")
    assert len(at.get("latex")) >= 5  # theory: change of variables, coupling, both KLs


def test_flow_page_opens_from_a_link(app_url):
    at = app_url(PAGE, {"flow_coupling": "affine (RealNVP)", "flow_layers": "3"})
    assert not at.exception and not at.error
    assert at.selectbox(key="flow_coupling").value == "affine"
    assert at.slider(key="flow_layers").value == 3
    assert at.selectbox(key="flow_objective").value == "forward"


def test_flow_page_trains_and_shows_panels(app_test, train_in_app, chart_keys):
    at = _train_tiny(app_test(page=PAGE), train_in_app)
    assert not at.error
    assert PANELS <= chart_keys(at)
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


def test_flow_page_reverse_kl_affine(app_test, train_in_app):
    at = _train_tiny(
        app_test(page=PAGE),
        train_in_app,
        steps=20,
        flow_coupling="affine",
        flow_objective="reverse",
    )
    assert not at.error
    assert any(s.get("frames") for s in _specs(at))
