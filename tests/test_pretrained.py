"""The shipped pretrained presets: every file loads with weights_only, matches a current preset
spec (so a page left at its defaults finds it), and shows at once on its page."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genlib import models
from genlib.checkpoints import load_checkpoint
from genlib.runs import RunSpec, load_trained

SHIPPED = sorted((Path(__file__).resolve().parent.parent / "assets" / "pretrained").glob("*.pt"))


@pytest.fixture(autouse=True)
def _cpu_presets(monkeypatch):
    """The shipped files hold the CPU presets: on a GPU machine ``fast`` widens its batch (another
    key), so these tests compare against the unwidened presets (``GENLIB_GPU_BATCH=0``)."""
    monkeypatch.setenv("GENLIB_GPU_BATCH", "0")


def _spec_of(ck: dict) -> RunSpec:
    s = ck["spec"]
    return RunSpec.from_preset(
        s["model"], s["target"]["name"], preset="fast", seed=s["train"]["seed"]
    )


def test_some_presets_are_shipped():
    assert len(SHIPPED) >= len(models.names()), "run benchmarks/bench_models.py --save-pretrained"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_checkpoint_is_current(path):
    ck = load_checkpoint(path)
    spec = _spec_of(ck)
    assert spec.key() == path.stem, "stale pretrained checkpoint: its preset changed; regenerate it"
    trained = load_trained(spec, path=path, device=torch.device("cpu"))
    with torch.no_grad():
        x = trained.model.sample(64, generator=torch.Generator().manual_seed(0))
    assert x.shape == (64, 2) and torch.isfinite(x).all()


def test_page_shows_a_pretrained_preset_at_once(app_test, monkeypatch):
    assert SHIPPED, (
        "no shipped presets in assets/pretrained (run benchmarks/bench_models.py --save-pretrained)"
    )
    monkeypatch.setenv("GENLIB_PRETRAINED", str(SHIPPED[0].parent))
    ck = load_checkpoint(SHIPPED[0])
    spec = _spec_of(ck)
    page = f"pages/{spec.model}.py"
    at = app_test(page=page)
    at.selectbox(key=f"{spec.model}_target").set_value(spec.target.name).run()
    assert not at.exception
    assert any("pretrained" in s.value.lower() for s in at.success), [s.value for s in at.success]
