"""AppTest: the autoregressive page renders (both languages), trains a tiny run and shows the joint
with its slice, the marginal and conditional against the true ones, sequential sampling and NLL."""

from __future__ import annotations

import json

import pytest

PAGE = "pages/autoregressive.py"
P = "autoregressive"


PANELS = {
    "autoregressive_result_fig",  # the skeleton's result view
    "fig_autoregressive_joint",
    "fig_autoregressive_marginal",
    "fig_autoregressive_conditional",
    "fig_autoregressive_sequential",
    "fig_autoregressive_nll",
}


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


def test_autoregressive_page_opens_from_a_link(app_url):
    query = {"autoregressive_target": "Checkerboard", "autoregressive_hidden": "32"}
    at = app_url(PAGE, {**query, "autoregressive_components": "5"})
    assert not at.exception and not at.error
    assert at.selectbox(key="autoregressive_target").value == "checkerboard"
    assert at.select_slider(key="autoregressive_hidden").value == 32
    assert at.slider(key="autoregressive_components").value == 5


def test_autoregressive_page_trains_and_shows_panels(app_test, train_in_app, chart_keys):
    at = app_test(page=PAGE)
    at.number_input(key="autoregressive_steps").set_value(40)
    at.slider(key="autoregressive_components").set_value(3)
    at.button(key="autoregressive_apply").click().run()
    train_in_app(at, P)
    assert not at.exception and not at.error
    assert PANELS <= chart_keys(at)
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
