"""`python -m genlib`: listings, sampling, training outputs and clear errors with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from genlib import distributions, models
from genlib.cli import main


def test_targets_and_models_listing(capsys):
    assert main(["targets"]) == 0
    assert capsys.readouterr().out.split() == distributions.names()
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in models.names():
        assert name in out


def test_sample_target(tmp_path):
    out = tmp_path / "m.npy"
    assert main(["sample-target", "8gaussians", "-n", "500", "--seed", "1", "--out", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (500, 2) and x.dtype == np.float32
    again = tmp_path / "m2.npy"
    main(["sample-target", "8gaussians", "-n", "500", "--seed", "1", "--out", str(again)])
    assert np.array_equal(x, np.load(again))


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["sample-target", "nope", "--out", "x.npy"], "unknown target"),
        (["sample-target", "8gaussians", "-n", "0", "--out", "x.npy"], "-n must be"),
        (["sample-target", "two_peaks", "--param", "weight=2", "--out", "x.npy"], "weight"),
        (["train", "nope", "moons", "--out", "d"], "unknown model"),
    ],
)
def test_bad_arguments_exit_2(argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


def test_train_writes_outputs(tmp_path, monkeypatch):
    if not models.names():
        pytest.skip("no model registered")
    name = "ddpm" if "ddpm" in models.names() else models.names()[0]
    monkeypatch.setenv("GENLIB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            name,
            "8gaussians",
            "--steps",
            "20",
            "--seed",
            "0",
            "-n",
            "300",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert np.load(out / "samples.npy").shape == (300, 2)
    report = json.loads((out / "metrics.json").read_text())
    assert report["steps_done"] == 20 and "sliced_wasserstein" in report["metrics"]
    assert (out / "checkpoint.pt").is_file()


def test_module_entry_point_errors_cleanly():
    proc = subprocess.run(
        [sys.executable, "-m", "genlib", "train", "nope", "moons", "--out", "/tmp/x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        proc.returncode == 2 and "unknown model" in proc.stderr and "Traceback" not in proc.stderr
    )
