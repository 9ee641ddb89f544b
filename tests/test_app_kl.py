"""AppTest: the KL page trains both directions as one background job (``ui.work_panel``): Train
returns at once, the fit finishes over reruns, Stop keeps a labelled partial fit; the main figure
is a client-side animation (frames + play/pause + slider); the seed sweep is a second job."""

from __future__ import annotations

import json
import math
import re
import time

import pytest

PAGE = "pages/kl.py"
DEADLINE_S = 120


def _specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _animations(at) -> list[dict]:
    return [s for s in _specs(at) if s.get("frames")]


def _animation(at) -> dict:
    anims = _animations(at)
    assert len(anims) == 1, "exactly one animated figure (forward vs reverse)"
    return anims[0]


def _has(at, key: str) -> bool:
    try:
        at.button(key=key)
        return True
    except KeyError:
        return False


def _fresh_seed() -> int:
    """A seed no earlier test used: settings whose job the server has not seen yet."""
    return int(time.time() * 1000) % 1_000_000 + 1000


def _train(at, page: str = "kl") -> float:
    """Press the panel's Train button; the seconds the click's script run took."""
    t0 = time.perf_counter()
    at.button(key=f"{page}_train").click().run()
    assert not at.exception
    return time.perf_counter() - t0


def _wait(at, done, page: str = "kl") -> None:
    """Train (unless the server already has this result) and rerun until ``done(at)``."""
    if _has(at, f"{page}_train"):
        _train(at, page)
    t0 = time.monotonic()
    while not done(at):
        assert time.monotonic() - t0 < DEADLINE_S, "the job did not finish in time"
        assert not at.exception
        time.sleep(0.3)
        at.run()
    assert not at.exception
    assert not _has(at, f"{page}_stop")


def _small(at, **extra):
    """Shrink the fit (fewer steps and frames), apply the form and fit both ways."""
    at.number_input(key="kl_steps").set_value(extra.pop("steps", 120))
    at.number_input(key="kl_frames").set_value(extra.pop("frames", 8))
    for key, value in extra.items():
        widget = (
            at.selectbox(key=key) if key in ("kl_q", "kl_optimizer") else at.number_input(key=key)
        )
        widget.set_value(value)
    at.button(key="kl_apply").click().run()
    assert not at.exception
    _wait(at, _animations)
    return at


def _texts(at) -> str:
    return " ".join(
        e.value for kind in ("info", "success", "warning", "error") for e in at.get(kind)
    )


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_kl_page_renders_with_a_train_button(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value == ("KL: forward vs reverse" if lang == "en" else "KL：順方向と逆方向")
    assert len(at.get("latex")) >= 3
    # nothing is fitted while the script runs: a Train button for the pair and one for the sweep
    assert _has(at, "kl_train") and _has(at, "kl_seeds_train") and not _animations(at)


def test_kl_page_trains_in_the_background_and_animates(app_test):
    at = app_test(page=PAGE)
    at.number_input(key="kl_seed").set_value(_fresh_seed())
    at.button(key="kl_apply").click().run()
    assert not _animations(at) and _has(at, "kl_train")  # nothing fitted yet: a Train button
    elapsed = _train(at)
    assert elapsed < 1.5, f"the Train click blocked the script for {elapsed:.1f} s"
    assert _has(at, "kl_stop") and at.get("progress")  # the live panel is up
    _wait(at, _animations)
    anim = _animation(at)
    lay = anim["layout"]
    assert lay["updatemenus"][0]["buttons"][0]["method"] == "animate"
    assert len(lay["sliders"][0]["steps"]) == len(anim["frames"]) == 60  # the default frame count
    assert lay["yaxis"]["scaleanchor"] == "x"  # square density panel
    assert not at.error and at.dataframe  # the final values table
    assert not _has(at, "kl_train") and not _has(at, "kl_retrain")


def test_kl_page_stop_keeps_the_partial_fit(app_test):
    at = app_test(page=PAGE)
    at.number_input(key="kl_steps").set_value(5000)
    at.number_input(key="kl_frames").set_value(20)
    at.number_input(key="kl_seed").set_value(_fresh_seed())
    at.button(key="kl_apply").click().run()
    _train(at)
    t0 = time.monotonic()
    while not any(s.key == "kl_speed" for s in at.selectbox):  # running (not queued)
        assert time.monotonic() - t0 < 30
        time.sleep(0.3)
        at.run()
    at.selectbox(key="kl_speed").set_value(200.0).run()  # slow motion: it cannot finish first
    time.sleep(1.0)
    at.run()
    at.button(key="kl_stop").click().run()
    _wait(at, _animations)
    text = _texts(at)
    m = re.search(r"Stopped at step (\d+) of 10000 \(forward fit: (\d+) steps", text)
    assert m, text
    assert 0 < int(m.group(1)) == int(m.group(2)) < 5000  # stopped during the forward fit
    anim = _animation(at)  # the partial fits are drawn: frames up to the stop
    assert 2 <= len(anim["frames"]) <= 20
    assert at.dataframe
    assert _has(at, "kl_retrain") and not _has(at, "kl_train")
    at.button(key="kl_retrain").click().run()  # "train again" forgets the stopped result
    assert _has(at, "kl_train") and not _animations(at)


def test_kl_page_fits_other_family_and_seed_sweep(app_test):
    at = app_test(page=PAGE)
    _small(at, kl_q="mixture", kl_components=2)
    anim = _animation(at)
    assert len(anim["frames"]) == 8
    # a mixture is drawn with its density contours, as scatter lines (no redraw: plotly.js drops
    # contour/heatmap traces during animations); the target density is a layout image
    assert {tr.get("type", "scatter") for fr in anim["frames"] for tr in fr["data"]} == {"scatter"}
    assert anim["layout"]["updatemenus"][0]["buttons"][0]["args"][1]["frame"]["redraw"] is False
    assert len(anim["layout"]["images"]) == 2
    _small(at, kl_q="gaussian", steps=150, frames=4)
    assert len(_animation(at)["frames"]) == 4
    at.slider(key="kl_n_seeds").set_value(2).run()
    _wait(at, lambda a: any(m.value.startswith("Tally") for m in a.markdown), page="kl_seeds")
    assert len(at.get("vega_lite_chart")) == 3  # KL curves of both fits + the seed sweep
    assert any(
        "mode" in m.value.lower() or "several" in m.value.lower()
        for m in at.markdown
        if m.value.startswith("Tally")
    )


def test_kl_page_two_peaks_parameters(app_test):
    """Unequal weights: the reverse fit's final KL(q‖p) is log 1/w of the mode it picked."""
    at = app_test(page=PAGE)
    at.slider(key="kl_tp_distance").set_value(6.0)
    at.slider(key="kl_tp_weight").set_value(0.3)
    _small(at, steps=400, frames=5, kl_lr=0.05)
    df = at.dataframe[0].value
    kl_qp = float(df.iloc[1, 2])  # reverse row, KL(q_θ‖p) column
    assert min(abs(kl_qp - math.log(1 / 0.3)), abs(kl_qp - math.log(1 / 0.7))) < 0.03
    assert float(df.iloc[0, 1]) < float(df.iloc[1, 1])  # forward fit has the smaller KL(p‖q)
    assert any("log 1/w_k" in c.value for c in at.caption)


def test_kl_page_reports_divergence(app_test):
    at = app_test(page=PAGE)
    _small(at, kl_optimizer="sgd", kl_lr=1.0, steps=60, frames=60)  # lr ≤ 1: the loop's bound
    assert not at.exception
    assert at.warning  # a clear message, no traceback
