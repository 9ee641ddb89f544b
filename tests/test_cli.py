"""`python -m genlib`: listings, sampling, training outputs and clear errors with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from genlib import distributions, models
from genlib.cli import COMMANDS, main


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
    name = "ddpm"
    assert name in models.names()
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


def test_cli_owns_every_subcommand(capsys):
    """Every subcommand is defined in genlib.cli; the library (genlib.kl) has no command-line
    code and does not import the CLI (no import cycle)."""
    assert set(COMMANDS) == {"targets", "models", "sample-target", "train", "kl"}
    with pytest.raises(SystemExit) as exc:
        main(["kl", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--divergence" in out and "gaussian | mixture | flow" in out
    probe = "import sys, genlib.kl; print('genlib.cli' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr
