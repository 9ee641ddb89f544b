"""AppTest: the Leaderboard lists cached runs, trains the missing ones, and renders both charts."""

from __future__ import annotations

import pytest

from genlib import models
from genlib.checkpoints import cache_path, save_checkpoint
from genlib.runs import RunSpec, build_model, result_meta
from genlib.training import train


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_leaderboard_renders_empty(app_test, lang):
    at = app_test(lang=lang, page="pages/leaderboard.py")
    assert not at.exception
    assert at.button(key="leaderboard_train") is not None


def test_leaderboard_shows_cached_runs(app_test):
    # train two families briefly and cache them under the specs the page asks for (as a shipped
    # pretrained checkpoint would be)
    names = ["flow", "ddpm"]
    assert set(names) <= set(models.names())
    for name in names:
        spec = RunSpec.from_preset(name, "two_peaks", preset="fast", seed=7)
        model = build_model(spec)
        res = train(model, spec.target.build(), spec.train.with_overrides(steps=30, log_every=10))
        save_checkpoint(
            cache_path(spec.key()), model.state_dict(), spec.to_dict(), result_meta(res)
        )
    at = app_test(page="pages/leaderboard.py")
    at.selectbox(key="leaderboard_target").set_value("two_peaks").run()
    at.number_input(key="leaderboard_seed").set_value(7).run()
    assert not at.exception
    df = at.dataframe[0].value
    assert set(names) <= set(df["model"])
    assert (df["sliced W₂ / floor"] > 0).all()
    assert len(at.get("vega_lite_chart")) >= 1


def test_leaderboard_trains_the_missing_families_through_the_queue(app_test, monkeypatch):
    """One click queues every missing family (per-family progress), and when the jobs are done
    the table and the gallery show all of them. Presets are shortened for the test."""
    import dataclasses
    import time

    for name in models.names():
        cls = models.MODELS.get(name)
        fast = cls.presets["fast"]
        short = dataclasses.replace(fast, train={**fast.train, "steps": 15, "log_every": 5})
        monkeypatch.setattr(cls, "presets", {**cls.presets, "fast": short})
    at = app_test(page="pages/leaderboard.py")
    at.selectbox(key="leaderboard_target").set_value("two_peaks").run()
    at.number_input(key="leaderboard_seed").set_value(11).run()
    t0 = time.perf_counter()
    at.button(key="leaderboard_train").click().run()
    assert time.perf_counter() - t0 < 5.0  # queued, not trained in the script run
    assert not at.exception
    assert len(at.get("progress")) == len(models.names())  # one progress bar per family
    deadline = time.monotonic() + 240
    while any(b.key == "leaderboard_stop_all" for b in at.button):
        assert time.monotonic() < deadline, "the queued trainings did not finish"
        time.sleep(0.5)
        at.run()
    at.run()
    assert not at.exception
    df = at.dataframe[0].value
    assert set(df["model"]) == set(models.names())
    keys = {c.proto.id for c in at.get("plotly_chart")} | {
        getattr(c, "key", "") or "" for c in at.get("plotly_chart")
    }
    assert len(at.get("plotly_chart")) >= len(models.names()), keys  # the gallery
