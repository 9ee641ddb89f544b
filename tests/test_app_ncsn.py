"""AppTest: the NCSN page renders (both languages), trains a tiny run (2 noise levels) and shows the
ladder, the learned-vs-exact score of p_σ, annealed Langevin and plain vs annealed Langevin."""

from __future__ import annotations

import json
import time

import pytest

from genlib.models.ncsn import geometric_ladder

PAGE = "pages/ncsn.py"
P = "ncsn"


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
def test_ncsn_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value.startswith("Denoising score" if lang == "en" else "デノイジング")
    assert at.button(key=f"{P}_train")
    assert len(at.get("latex")) >= 5


def test_ncsn_page_trains_and_shows_panels(app_test):
    at = app_test(page=PAGE)
    at.selectbox(key=f"{P}_target").set_value("far_mixture").run()
    at.number_input(key=f"{P}_steps").set_value(30)
    at.slider(key=f"{P}_levels").set_value(3)
    at.button(key=f"{P}_apply").click().run()
    assert not at.exception
    _wait(at.button(key=f"{P}_train").click().run())
    assert not at.exception and not at.error
    specs = _specs(at)
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"σ_i", "α_i", "s_θ(x, σ)", "∇ log p_σ"} <= names
    animated = [s for s in specs if s.get("frames")]
    labels = animated[0]["layout"]["sliders"][0]["steps"]
    assert labels[0]["label"] == "σ = 10" and labels[-1]["label"] == "σ = 0"  # σ_1 -> denoised
    # the mixture-weight table: exact 0.8 / 0.2 next to plain and annealed Langevin
    assert any(
        abs(float(d.value.iloc[0, 0]) - 0.8) < 1e-6 for d in at.dataframe if d.value.shape == (3, 2)
    )
    at.toggle(key=f"{P}_use_true").set_value(False).run()  # the learned score
    assert not at.exception and not at.error
    sigma_1 = geometric_ladder(10.0, 0.02, 3).tolist()[0]  # the page offers the model's ladder
    at.select_slider(key=f"{P}_sigma_pick").set_value(sigma_1).run()
    assert not at.exception and not at.error
