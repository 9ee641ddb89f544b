"""AppTest: the Boltzmann-machine page renders (both languages), trains a tiny run and shows the
free-energy landscape, the exact mixture, the Gibbs chain animations and the two phases."""

from __future__ import annotations

import json

import pytest

PAGE = "pages/rbm.py"
P = "rbm"


PANELS = {
    "rbm_result_fig",  # the skeleton's result view
    "fig_rbm_free_energy",
    "fig_rbm_mixture",
    "fig_rbm_chains_data",
    "fig_rbm_chains_noise",
    "fig_rbm_phases",
    "fig_rbm_negative_history",
    "fig_rbm_8gaussians_sign",  # the slide's sign as written (issue 11)
}


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


def test_rbm_page_opens_from_a_link(app_url):
    at = app_url(PAGE, {"rbm_hidden": "5", "rbm_k": "3", "rbm_learn_sigma": "false"})
    assert not at.exception and not at.error
    assert at.slider(key="rbm_hidden").value == 5
    assert at.slider(key="rbm_k").value == 3
    assert at.toggle(key="rbm_learn_sigma").value is False
    assert at.selectbox(key="rbm_sampler").value == "cd"


def test_rbm_page_trains_and_shows_panels(app_test, train_in_app, chart_keys):
    at = app_test(page=PAGE)
    at.number_input(key="rbm_steps").set_value(60)
    at.slider(key="rbm_hidden").set_value(4)
    at.selectbox(key="rbm_sampler").set_value("pcd")
    at.button(key="rbm_apply").click().run()
    train_in_app(at, P)
    assert not at.exception and not at.error
    assert PANELS <= chart_keys(at)
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
    labels = [m.label for m in at.metric]
    assert labels[:2] == ["Modes covered", "Samples near a mode"]
    # the slide's sign: KL grows over the short run, the correct sign lowers it
    correct, slide = at.metric[2], at.metric[3]
    assert correct.label.startswith("correct sign") and "slide" in slide.label, labels
    assert float(slide.value) > float(correct.value)
    assert slide.delta.startswith("+") and correct.delta.startswith("-")
    at.select_slider(key="rbm_long").set_value(20).run()
    assert not at.exception and not at.error
