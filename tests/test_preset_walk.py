"""Every model page, with an empty cache, shows the shipped pretrained result at once: at its
defaults and for every shipped (preset × target) of its family — never a Train button. The page's
own widgets at their defaults must build exactly the spec the preset was trained with (equal
settings, equal keys)."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from genlib import models
from genlib.checkpoints import load_checkpoint

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "assets" / "pretrained"


def _shipped() -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SHIPPED_DIR.glob("*.pt")):
        spec = load_checkpoint(path)["spec"]
        out[spec["model"]].append(spec["target"]["name"])
    return out


SHIPPED = _shipped()


def test_every_family_has_shipped_presets():
    assert set(SHIPPED) == set(models.names())


@pytest.mark.parametrize("model", sorted(SHIPPED))
def test_model_page_shows_the_pretrained_result_at_defaults_and_every_shipped_target(
    app_test, monkeypatch, model
):
    monkeypatch.setenv("GENLIB_PRETRAINED", str(SHIPPED_DIR))
    at = app_test(page=f"pages/{model}.py")
    targets = [at.selectbox(key=f"{model}_target").value, *SHIPPED[model]]
    for target in dict.fromkeys(targets):
        t0 = time.perf_counter()
        at.selectbox(key=f"{model}_target").set_value(target).run()
        assert not at.exception, (model, target, at.exception)
        buttons = {b.key for b in at.button}
        assert f"{model}_train" not in buttons, f"{model} on {target}: a Train button at defaults"
        badges = " ".join(s.value for s in at.success)
        assert "Pretrained" in badges, (model, target, badges)
        assert time.perf_counter() - t0 < 60
