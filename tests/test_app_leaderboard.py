"""AppTest: the Leaderboard lists cached runs, trains the missing ones, and renders both charts."""

from __future__ import annotations

import pytest

from genlib import models
from genlib.checkpoints import cache_path, save_checkpoint
from genlib.runs import RunSpec, result_meta, build_model
from genlib.training import train


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_leaderboard_renders_empty(app_test, lang):
    at = app_test(lang=lang, page="pages/leaderboard.py")
    assert not at.exception
    assert at.button(key="leaderboard_train") is not None


def test_leaderboard_shows_cached_runs(app_test):
    if not models.names():
        pytest.skip("no model registered")
    # train two families briefly and cache them under the specs the page asks for (as a shipped
    # pretrained checkpoint would be)
    names = [n for n in ("flow", "ddpm") if n in models.names()] or models.names()[:1]
    for name in names:
        spec = RunSpec.from_preset(name, "two_peaks", preset="fast", seed=7)
        model = build_model(spec)
        res = train(model, spec.target.build(), spec.train.with_overrides(steps=30, log_every=10))
        save_checkpoint(cache_path(spec.key()), model.state_dict(), spec.to_dict(), result_meta(res))
    at = app_test(page="pages/leaderboard.py")
    at.selectbox(key="leaderboard_target").set_value("two_peaks").run()
    at.number_input(key="leaderboard_seed").set_value(7).run()
    assert not at.exception
    df = at.dataframe[0].value
    assert set(names) <= set(df["model"])
    assert (df["sliced W₂ / floor"] > 0).all()
    assert len(at.get("vega_lite_chart")) >= 1
