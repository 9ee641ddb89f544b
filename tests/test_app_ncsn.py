"""AppTest: the NCSN page renders (both languages, the theory's gradient in x_σ), opens from a link
with its settings, trains a tiny run (3 noise levels) as a background job and shows the ladder, the
learned-vs-exact score of p_σ, annealed Langevin, plain vs annealed Langevin and the forward
noising."""

from __future__ import annotations

import json

import pytest

from tests.chart_util import check_gap_fig

PAGE = "pages/ncsn.py"
P = "ncsn"
PANELS = {
    f"{P}_result_fig",  # the skeleton's result view
    f"{P}_gap_fig",  # issue 11: trained vs intractable objective
    f"{P}_ladder_fig",
    f"{P}_field_fig",
    f"{P}_traj_fig",
    f"{P}_cmp_fig",
    f"{P}_forward_fig",
}


def _specs(at) -> list[dict]:
    """The page's own figures (the live panel's training replay left out)."""
    charts = [c for c in at.get("plotly_chart") if not c.proto.id.endswith("_replay_fig")]
    return [json.loads(c.proto.spec) for c in charts]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_ncsn_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value.startswith("Denoising score" if lang == "en" else "デノイジング")
    assert at.button(key=f"{P}_train")
    latex = [x.value for x in at.get("latex")]
    assert len(latex) >= 5
    # the objective is the score in the noised variable x_σ (the slides write ∇_x)
    assert sum(r"\nabla_{\mathbf{x}_\sigma}" in x for x in latex) >= 1
    assert sum(r"\nabla_{\mathbf{x}_{\sigma_i}}" in x for x in latex) == 1
    assert not any(r"- \nabla_{\mathbf{x}} \log" in x for x in latex)


def test_ncsn_page_opens_from_a_link(app_url):
    at = app_url(PAGE, {"ncsn_mode": "DSM with one σ, s_θ(x̃)", "ncsn_sigma": "0.5"})
    assert not at.exception and not at.error and not at.warning
    assert at.radio(key=f"{P}_mode").value == "single"
    assert at.select_slider(key=f"{P}_sigma").value == 0.5


def test_ncsn_page_trains_and_shows_panels(app_test, train_in_app, chart_keys):
    at = app_test(page=PAGE)
    at.selectbox(key=f"{P}_target").set_value("far_mixture").run()
    at.number_input(key=f"{P}_steps").set_value(30)
    at.slider(key=f"{P}_levels").set_value(3)
    at.button(key=f"{P}_apply").click().run()
    assert not at.exception
    train_in_app(at, P)
    assert not at.exception and not at.error
    assert PANELS <= chart_keys(at)
    specs = _specs(at)
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"σ_i", "α_i", "s_θ(x, σ)", "∇ log p_σ"} <= names
    check_gap_fig(at, P, "explicit score matching")
    at.select_slider(key=f"{P}_gap_level").set_value(10.0).run()  # another σ: a re-training curve
    assert not at.exception and not at.error
    check_gap_fig(at, P, "explicit score matching")
    animated = [s for s in specs if s.get("frames") and s["layout"]["sliders"][0]["steps"][0]["label"].startswith("σ")]  # fmt: skip
    labels = animated[0]["layout"]["sliders"][0]["steps"]
    assert labels[0]["label"] == "σ = 10" and labels[-1]["label"] == "σ = 0"  # σ_1 -> denoised
    # the mixture-weight table: exact 0.8 / 0.2 next to plain and annealed Langevin
    assert any(
        abs(float(d.value.iloc[0, 0]) - 0.8) < 1e-6 for d in at.dataframe if d.value.shape == (3, 2)
    )
    # the field opens at σ_L (lab.fields.default_level) and offers the model's ladder
    pick = at.select_slider(key=f"{P}_sigma_pick")
    assert pick.value == pytest.approx(0.05)
    at.toggle(key=f"{P}_use_true").set_value(False).run()  # the learned score
    assert not at.exception and not at.error
    at.select_slider(key=f"{P}_sigma_pick").set_value(10.0).run()
    assert not at.exception and not at.error
    assert f"{P}_field_fig" in chart_keys(at)


def test_ncsn_page_single_sigma(app_test, train_in_app, chart_keys):
    at = app_test(page=PAGE)
    at.number_input(key=f"{P}_steps").set_value(20)
    at.radio(key=f"{P}_mode").set_value("single")  # inside the form: sent with Apply
    at.button(key=f"{P}_apply").click().run()
    train_in_app(at, P)
    assert not at.exception and not at.error
    assert f"{P}_ladder_fig" not in chart_keys(at)  # one σ: no ladder
    assert {f"{P}_field_fig", f"{P}_traj_fig", f"{P}_cmp_fig"} <= chart_keys(at)
    assert any(m.label == "Noise level σ" and m.value == "0.3" for m in at.metric)
