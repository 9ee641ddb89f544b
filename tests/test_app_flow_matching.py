"""AppTest: the flow-matching page renders (both languages), opens from a link with its settings,
trains a tiny run as a background job and shows its panels (the conditional paths, learned vs exact
ODE trajectories, learned vs exact velocity, exact likelihood, metrics)."""

from __future__ import annotations

import json

import pytest

from tests.chart_util import check_gap_fig

PAGE = "pages/flow_matching.py"
P = "flow_matching"
PANELS = {
    f"{P}_result_fig",  # the skeleton's result view
    f"{P}_gap_fig",  # issue 11: trained vs intractable objective
    f"{P}_cond_fig",
    f"{P}_ode_learned_fig",
    f"{P}_ode_exact_fig",
    f"{P}_field_fig",
    f"fig_{P}_likelihood",
}


def _specs(at) -> list[dict]:
    """The page's own figures (the live panel's training replay left out)."""
    charts = [c for c in at.get("plotly_chart") if not c.proto.id.endswith("_replay_fig")]
    return [json.loads(c.proto.spec) for c in charts]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_flow_matching_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value == ("Flow matching" if lang == "en" else "フローマッチング")
    assert at.button(key=f"{P}_train")
    assert len(at.get("latex")) >= 7


def test_flow_matching_page_opens_from_a_link(app_url):
    at = app_url(PAGE, {"flow_matching_path": "VP (diffusion)", "flow_matching_method": "RK4 (4th order)"})  # fmt: skip
    assert not at.exception and not at.error and not at.warning
    assert at.radio(key=f"{P}_path").value == "vp"
    assert at.selectbox(key=f"{P}_method").value == "rk4"


def test_flow_matching_page_trains_and_shows_panels(app_test, train_in_app, chart_keys):
    at = app_test(page=PAGE)
    at.number_input(key=f"{P}_steps").set_value(40)
    at.button(key=f"{P}_apply").click().run()
    train_in_app(at, P)
    assert not at.exception and not at.error
    assert PANELS <= chart_keys(at)
    specs = _specs(at)
    cond = [s for s in specs if s.get("frames") and s["layout"]["sliders"][0]["steps"][0]["label"] == "0.00"]  # fmt: skip
    assert len(cond) == 1  # the conditional paths τ = 0 → 1
    odes = [s for s in specs if s.get("frames") and s["layout"]["sliders"][0]["steps"][0]["label"] == "τ = 0.00"]  # fmt: skip
    assert len(odes) == 2  # learned and exact ODE, noise first
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"v_θ(x, τ)", "u_τ(x)", "q_θ(x)", "p(x)"} <= names
    check_gap_fig(at, P, "flow matching")
    assert any("KL" in str(v) for d in at.dataframe for v in d.value.iloc[:, 0])
    assert at.slider(key=f"{P}_tau").value == 0.5  # lab.fields.default_level
    at.slider(key=f"{P}_tau").set_value(0.9).run()
    assert not at.exception and not at.error
    # another path: a new spec, not trained yet
    at.radio(key=f"{P}_path").set_value("vp")
    at.button(key=f"{P}_apply").click().run()
    assert not at.exception and at.button(key=f"{P}_train")
