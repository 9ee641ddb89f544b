"""AppTest: the SDE page renders (both languages), opens from a link with its settings, trains a tiny
run as a background job and shows its panels: the two reverse-time animations (chosen λ and the
PF-ODE), the learned-vs-exact score, the PF-ODE likelihood, the forward process, metrics with the
exact KL."""

from __future__ import annotations

import json

import pytest

PAGE = "pages/sde.py"
P = "sde"
PANELS = {
    f"{P}_result_fig",  # the skeleton's result view
    f"{P}_traj_chosen_fig",
    f"{P}_traj_ode_fig",
    f"{P}_field_fig",
    f"fig_{P}_pf_ode_likelihood",
    f"{P}_forward_fig",
    f"{P}_nfe_fig",  # samplers vs NFE (lab.nfe)
}


def _specs(at) -> list[dict]:
    """The page's own figures (the live panel's training replay left out)."""
    charts = [c for c in at.get("plotly_chart") if not c.proto.id.endswith("_replay_fig")]
    return [json.loads(c.proto.spec) for c in charts]


def _train_tiny(at, train_in_app, steps: int = 40):
    at.number_input(key=f"{P}_steps").set_value(steps)
    at.button(key=f"{P}_apply").click().run()
    assert not at.exception
    return train_in_app(at, P)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_sde_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value.startswith("Score SDE" if lang == "en" else "スコアSDE")
    assert at.button(key=f"{P}_train")
    assert len(at.get("latex")) >= 8  # the theory expander renders the lecture's equations


def test_sde_page_opens_from_a_link(app_url):
    at = app_url(PAGE, {"sde_kind": "VE (NCSN)", "sde_sampler": "probability-flow ODE (Heun)"})
    assert not at.exception and not at.error and not at.warning
    assert at.radio(key=f"{P}_kind").value == "ve"
    assert at.selectbox(key=f"{P}_sampler").value == "ode"


def test_sde_page_trains_and_shows_panels(app_test, train_in_app, chart_keys):
    at = _train_tiny(app_test(page=PAGE), train_in_app)
    assert not at.error
    assert PANELS <= chart_keys(at)
    specs = _specs(at)
    reverse = [s for s in specs if s.get("frames") and s["layout"]["sliders"][0]["steps"][0]["label"].startswith("t = 1")]  # fmt: skip
    assert len(reverse) == 2  # chosen λ and PF-ODE
    labels = reverse[0]["layout"]["sliders"][0]["steps"]
    assert labels[0]["label"] == "t = 1.000" and labels[-1]["label"] == "t = 0.001"  # noise -> data
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"s_θ(x, t)", "∇ log p_t(x)", "q_θ(x)", "p(x)"} <= names
    assert any("KL" in str(v) for d in at.dataframe for v in d.value.iloc[:, 0])
    assert at.select_slider(key=f"{P}_t").value == 0.1  # lab.fields.default_level
    # samplers vs NFE, log-log, every sampler of the VP process with the exact score
    nfe = next(s for s in specs if any(tr.get("name") == "DPM-Solver-2" for tr in s["data"]))
    assert nfe["layout"]["xaxis"]["type"] == "log" and nfe["layout"]["yaxis"]["type"] == "log"
    sampler_names = {"ancestral (DDPM)", "Euler–Maruyama", "PC (+ Langevin)", "Euler (PF-ODE)",
                     "Heun (PF-ODE)", "RK4 (PF-ODE)", "DDIM (η = 0)", "DPM-Solver-2"}  # fmt: skip
    assert sampler_names <= {tr.get("name") for tr in nfe["data"]}
    assert any(tr.get("name") == "noise floor (two target samples)" for tr in nfe["data"])
    at.radio(key=f"{P}_nfe_metric").set_value("path").run()  # deterministic samplers, slopes
    assert not at.exception and not at.error
    nfe = next(s for s in _specs(at) if any(tr.get("name") == "DPM-Solver-2" for tr in s["data"]))
    names = {tr.get("name") for tr in nfe["data"]}
    assert "Euler–Maruyama" not in names and {"∝ NFE^−1", "∝ NFE^−2"} <= names
    # the λ slider and the time of the score field
    at.slider(key=f"{P}_lam").set_value(0.5).run()
    assert not at.exception
    at.select_slider(key=f"{P}_t").set_value(0.5).run()
    assert not at.exception and not at.error
    # a VE model: its prior N(0, σ_max² I) is wide, the page still renders every panel
    at.radio(key=f"{P}_kind").set_value("ve")
    _train_tiny(at, train_in_app, steps=30)
    assert not at.error
    assert PANELS <= chart_keys(at)
