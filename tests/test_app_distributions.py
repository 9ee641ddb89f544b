"""AppTest: the Distributions page renders in both languages, reacts to the target and process
controls, opens from a link with its settings, and its forward-diffusion figure is a client-side
animation (frames + controls) labelled in the UI language."""

from __future__ import annotations

import json

import pytest

PAGE = "pages/distributions.py"


def _specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _animation(at) -> dict:
    anims = [s for s in _specs(at) if s.get("frames")]
    assert len(anims) == 1, "exactly one animated figure (the forward diffusion)"
    return anims[0]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_distributions_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception
    assert at.title[0].value == ("Distributions" if lang == "en" else "分布")
    specs = _specs(at)
    assert len(specs) == 4  # samples, score field, forward animation, schedule
    anim = _animation(at)
    lay = anim["layout"]
    assert lay["updatemenus"][0]["buttons"][0]["method"] == "animate"
    assert len(lay["sliders"][0]["steps"]) == len(anim["frames"]) == 41
    assert lay["sliders"][0]["steps"][0]["label"].startswith("t = 0")
    # fixed, square axes on the samples figure
    assert (
        specs[0]["layout"]["xaxis"]["range"] and specs[0]["layout"]["yaxis"]["scaleanchor"] == "x"
    )
    assert at.expander  # controls + theory
    assert any(
        e.label == ("Theory: the lecture's equations" if lang == "en" else "理論：講義の数式")
        for e in at.expander
    )
    assert len(at.get("latex")) >= 5


def test_distributions_controls(app_test):
    at = app_test(page=PAGE)
    # VP with a short schedule (β rescaled by 1000/T, so ᾱ_T stays ≈ 0): ᾱ_T is shown
    at.select_slider(key="distributions_T").set_value(10).run()
    assert not at.exception
    abar = [m for m in at.metric if m.label == "ᾱ_T"]
    assert abar and float(abar[0].value) < 0.05 and not at.warning
    assert len(_animation(at)["frames"]) == 11  # T = 10 -> frames t = 0..10
    # VE ladder
    at.radio(key="distributions_process").set_value("ve").run()
    assert not at.exception
    anim = _animation(at)
    steps = anim["layout"]["sliders"][0]["steps"]
    # the VE frames climb the NCSN ladder σ₁ > … > σ_L from its small end: i = L, …, 1
    assert steps[0]["label"].startswith("x₀") and steps[1]["label"].startswith("i = 50 ")
    assert steps[-1]["label"] == "i = 1   σ = 3.000"
    at.number_input(key="distributions_smax").set_value(6.0).run()
    assert not at.exception
    assert _animation(at)["layout"]["sliders"][0]["steps"][-1]["label"].endswith("σ = 6.000")
    # another target with parameters; sample size
    at.selectbox(key="distributions_target").set_value("two_peaks").run()
    assert not at.exception
    at.slider(key="distributions_tp_distance").set_value(6.0).run()
    at.number_input(key="distributions_n").set_value(500).run()
    assert not at.exception
    samples = _specs(at)[0]
    assert samples["layout"]["xaxis"]["range"][1] >= 3.0 + 4 * 0.5 - 1e-6  # bounds follow d = 6
    # custom points
    at.selectbox(key="distributions_target").set_value("custom_gmm").run()
    at.radio(key="distributions_custom_source").set_value("text").run()
    at.text_area(key="distributions_custom_points").input("0,0\n1,1\nbad line").run()
    assert not at.exception
    assert at.error and "line 3" in at.error[0].value


def test_distributions_language_switch_in_sidebar(app_test):
    at = app_test(page=PAGE)
    # the shell (language switch, presentation toggle) is on every page, also after a page switch
    assert {"_genlib_lang_widget"} <= {r.key for r in at.sidebar.radio}
    from genlib.ui.layout import PRESENT_KEY

    at.toggle(key=PRESENT_KEY).set_value(True).run()
    assert not at.exception
    assert not at.expander[0].proto.expanded  # controls collapsed in presentation mode
    # (last: AppTest cannot resend a selectbox whose option labels changed language)
    at.radio(key="_genlib_lang_widget").set_value("ja").run()
    assert not at.exception
    assert at.title[0].value == "分布"
    assert any("前向き過程" in h.value for h in at.subheader)


def test_distributions_opens_from_a_link(app_url):
    query = {
        "distributions_target": "Two peaks (KL slide)",
        "distributions_process": "VE / NCSN (σ ladder)",
        "distributions_smax": "6.0",
        "distributions_normalise": "false",
    }
    at = app_url(PAGE, query)
    assert not at.exception and not at.error and not at.warning
    assert at.selectbox(key="distributions_target").value == "two_peaks"
    assert at.radio(key="distributions_process").value == "ve"
    assert at.number_input(key="distributions_smax").value == 6.0
    assert at.toggle(key="distributions_normalise").value is False
    assert _animation(at)["layout"]["sliders"][0]["steps"][-1]["label"].endswith("σ = 6.000")


def test_distributions_figure_labels_in_japanese(app_test):
    at = app_test(lang="ja", page=PAGE)
    anim = _animation(at)
    titles = [a["text"] for a in anim["layout"]["annotations"]]
    assert "シミュレーションした粒子 x_t" in titles and "閉じた形の周辺分布 p(x_t)" in titles
    assert "x₀ → x_t（1 つの粒子）" in {tr.get("name") for tr in anim["data"]}
