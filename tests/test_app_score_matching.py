"""AppTest: the score-matching page renders (both languages), opens from a link with its sampler
settings, trains a tiny run as a background job and shows the learned-vs-exact field, the Langevin
chains (learned vs exact score), the forward diffusion and the metrics."""

from __future__ import annotations

import json

import pytest

from tests.chart_util import chart_spec, check_gap_fig, trace_y

PAGE = "pages/score_matching.py"
P = "score_matching"
PANELS = {
    f"{P}_result_fig",  # the skeleton's result view
    f"{P}_gap_fig",  # issue 11: trained vs intractable objective
    f"{P}_bias_fig",  # issue 11: Langevin's KL bias vs ε
    f"{P}_field_fig",
    f"{P}_chains_fig",
    f"{P}_final_fig",
    f"{P}_forward_fig",
}


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


def test_score_matching_page_opens_from_a_link(app_url):
    at = app_url(PAGE, {"score_matching_m_steps": "500", "score_matching_m_eps": "0.002"})
    assert not at.exception and not at.error and not at.warning
    assert at.select_slider(key=f"{P}_m_steps").value == 500
    assert at.select_slider(key=f"{P}_m_eps").value == 0.002


def test_score_matching_page_trains_and_shows_panels(app_test, train_in_app, chart_keys):
    at = app_test(page=PAGE)
    at.number_input(key=f"{P}_steps").set_value(30)
    at.select_slider(key=f"{P}_m_steps").set_value(50)
    at.button(key=f"{P}_apply").click().run()
    assert not at.exception
    train_in_app(at, P)
    assert not at.exception and not at.error
    assert PANELS <= chart_keys(at)
    specs = _specs(at)
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"s_θ", "∇ log p", "error", "Langevin with s_θ", "Langevin with exact ∇ log p"} <= names
    check_gap_fig(at, P, "Fisher divergence")
    # trained in this session: the curve comes from the job's own live frames
    assert "this run's live frames" in [m.value for m in at.metric]
    if any(b.key == f"{P}_bias_go" for b in at.button):  # a loaded machine: only on request
        at.button(key=f"{P}_bias_go").click().run()
        assert not at.exception and not at.error
    bias = {tr["name"]: tr for tr in chart_spec(at, f"{P}_bias_fig")["data"]}
    assert {"ULA (the lecture's step)", "MALA (Metropolis-corrected)"} <= set(bias)
    assert (
        trace_y(bias["MALA (Metropolis-corrected)"])[-1]
        < trace_y(bias["ULA (the lecture's step)"])[-1]
    )
    chains = [s for s in specs if s.get("frames") and "Langevin" in s["layout"]["sliders"][0]["steps"][0]["label"]]  # fmt: skip
    assert chains, "the Langevin chains animation is missing"
    steps = chains[0]["layout"]["sliders"][0]["steps"]
    assert steps[0]["label"].endswith(": 0") and steps[-1]["label"].endswith(": 50")
    assert any("Sliced" in str(v) for d in at.dataframe for v in d.value.iloc[:, 0])
    # start the chains somewhere else: still renders
    at.selectbox(key=f"{P}_init").set_value("box").run()
    assert not at.exception and not at.error
    assert f"{P}_chains_fig" in chart_keys(at)
