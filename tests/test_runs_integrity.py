"""Checkpoints whose metadata or weights are invalid are refused (corrupt: discarded and
retrained), and a model that draws non-finite samples is never cached as a good result."""

from __future__ import annotations

import math

import pytest
import torch

from genlib.checkpoints import CheckpointError, cache_path, save_checkpoint
from genlib.runs import RunSpec, build_model, cached_run, finish, load_trained, result_meta, run
from genlib.training import TrainResult


def spec(seed: int) -> RunSpec:
    return RunSpec.from_preset("autoregressive", "moons", seed=seed, steps=20, data_size=500)


def write(s: RunSpec, meta: dict, state=None) -> None:
    model = build_model(s)
    save_checkpoint(cache_path(s.key()), state or model.state_dict(), s.to_dict(), meta)


GOOD = result_meta(TrainResult(steps_done=20, history=[{"step": 20.0, "loss": 1.0}]))


@pytest.mark.parametrize(
    "patch",
    [
        {"steps_done": "abc"},
        {"steps_done": [1, 2]},
        {"steps_done": -3},
        {"status": "great"},
        {"seconds": float("nan")},
        {"history": "lots"},
        {"history": [{"step": "x"}]},
        {"snapshots": [(1, "not a tensor")]},
        {"extras": [1]},
    ],
    ids=lambda p: next(iter(p)),
)
def test_invalid_metadata_is_a_corrupt_checkpoint(genlib_cache, patch):
    s = spec(1000 + len(str(patch)))
    write(s, {**GOOD, **patch})
    with pytest.raises(CheckpointError):
        load_trained(s)
    assert cached_run(s) is None  # the page retrains instead of crashing


def test_non_finite_weights_are_a_corrupt_checkpoint(genlib_cache):
    s = spec(2001)
    model = build_model(s)
    state = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}  # fmt: skip
    write(s, GOOD, state)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_trained(s)
    fresh = run(s)  # retrained and replaced
    assert fresh.result.status == "ok" and fresh.source == "trained"
    assert load_trained(s).result.steps_done == 20


def test_a_model_with_non_finite_samples_is_not_cached(genlib_cache, monkeypatch):
    s = spec(3001)
    model = build_model(s)
    monkeypatch.setattr(
        type(model), "sample", lambda self, n, generator=None: torch.full((n, 2), math.inf)
    )
    trained = finish(s, model, s.target.build(), TrainResult(steps_done=20))
    assert trained.result.status == "diverged" and "non-finite samples" in trained.result.message
    assert cached_run(s) is None
