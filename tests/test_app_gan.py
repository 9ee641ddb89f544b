"""AppTest: the GAN page renders (both languages), trains a tiny run, and its hand-step controls
(D only / G only / both, slow motion, reset) work without exceptions."""

from __future__ import annotations

import json
import time

import pytest

PAGE = "pages/gan.py"
P = "gan"


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


def _trace_names(at) -> set[str]:
    return {tr.get("name") for s in _specs(at) for tr in s["data"] if tr.get("name")}


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_gan_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value == "GAN"
    assert at.button(key="gan_train")


def test_gan_page_trains_steps_and_records(app_test):
    at = app_test(page=PAGE)
    at.number_input(key="gan_steps").set_value(150)
    at.selectbox(key="gan_gen_loss").set_value("minimax")
    at.button(key="gan_apply").click().run()
    _wait(at.button(key="gan_train").click().run())
    assert not at.exception and not at.error
    names = _trace_names(at)
    assert {"D_φ(x)", "D*(x) = log p/q̂ (estimate)", "push on fakes −∇_y(G loss)"} <= names
    assert any(s.get("frames") for s in _specs(at))  # fakes over training (snapshots)
    assert [m.label for m in at.metric][:2] == [
        "Modes covered (trained model)",
        "Modes covered (hand-stepped model)",
    ]
    n_charts = len(at.get("plotly_chart"))

    # D only, then G only, then both: the counter adds up
    at.number_input(key="gan_n_steps").set_value(5)
    for mode in ("d", "g", "both"):
        at.radio(key="gan_mode").set_value(mode)
        at.button(key="gan_step").click().run()
        assert not at.exception
    assert "Steps taken by hand: 15" in at.info[0].value

    # slow motion: a recorded client-side animation appears
    at.number_input(key="gan_frames").set_value(3)
    at.number_input(key="gan_per_frame").set_value(1)
    at.button(key="gan_record").click().run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == n_charts + 1
    slow = [s for s in _specs(at) if s.get("frames") and len(s["frames"]) == 4]
    assert slow and slow[0]["layout"]["sliders"][0]["steps"][-1]["label"] == "18"

    # reset goes back to the trained model
    at.button(key="gan_reset").click().run()
    assert not at.exception
    assert not at.info or "Steps taken by hand" not in at.info[0].value


def test_gan_page_non_mixture_target_explains_coverage(app_test):
    at = app_test(page=PAGE)
    at.selectbox(key="gan_target").set_value("moons").run()
    at.number_input(key="gan_steps").set_value(50)
    at.button(key="gan_apply").click().run()
    _wait(at.button(key="gan_train").click().run())
    assert not at.exception and not at.error
    assert any("Gaussian-mixture targets" in c.value for c in at.caption)
