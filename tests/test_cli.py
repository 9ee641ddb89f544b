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


# --- limits of a shared server (issue 13): one line, exit 2; no non-finite "ok"; atomic --out ---


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["train", "ddpm", "moons", "--param", "foo=1"], "unknown ddpm parameter 'foo'"),
        (["train", "ddpm", "moons", "--param", "hidden=abc"], "hidden must be an integer"),
        (["train", "ddpm", "moons", "--param", "activation=nope"], "activation must be one of"),
        (["train", "ddpm", "moons", "--param", "hidden=30000"], "[1, 1024]"),
        (["train", "ddpm", "moons", "--param", "depth=2000"], "depth must be"),
        (["train", "ddpm", "moons", "--param", "T=4000"], "T must be"),
        (["train", "ncsn", "moons", "--param", "hidden=30000"], "hidden must be"),
        (["train", "score_matching", "moons", "--param", "depth=2000"], "depth must be"),
        (["train", "ddpm", "moons", "--seed", str(2**64)], "seed must be"),
        (
            ["train", "ddpm", "moons", "--target-param", "noise=NaN"],
            "moons target: noise must be finite",
        ),
        (["sample-target", "two_peaks", "--param", "std=NaN"], "std"),
        (["sample-target", "two_peaks", "--param", "std=Infinity"], "std"),
        (["sample-target", "two_peaks", "--param", "std=-1"], "std"),
        (["sample-target", "two_peaks", "--param", "std=1e308"], "std"),
        (["sample-target", "pinwheel", "--param", "radial_std=1e-300"], "radial_std"),
        (["sample-target", "far_mixture", "--param", "weight=NaN"], "weight"),
        (["sample-target", "custom_gmm", "--param", "points=[[1,2,3]]"], "(x, y) pairs"),
        (["sample-target", "two_peaks", "--seed", str(2**64)], "seed must be"),
        (["sample-target", "two_peaks", "--param", "1x=2"], "bad parameter name"),
        (["kl", "two_peaks", "--target-param", "std=NaN"], "std"),
    ],
)
def test_bad_values_exit_2_with_one_line(argv, msg, capsys, tmp_path):
    out = str(tmp_path / ("x.npy" if argv[0] == "sample-target" else "run"))
    try:
        rc = main([*argv, "--out", out])
    except SystemExit as exc:  # argparse's own checks (a bad KEY=VALUE)
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and msg in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("kind", ["file", "devnull", "long", "folder_with_other_files"])
def test_bad_out_paths_exit_2(kind, capsys, tmp_path):
    if kind == "file":
        out = tmp_path / "a_file"
        out.write_text("keep me")
    elif kind == "devnull":
        out = "/dev/null"
    elif kind == "long":
        out = str(tmp_path / ("x" * 5000))
    else:
        out = tmp_path / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
    for argv in (["train", "ddpm", "moons", "--steps", "5"], ["kl", "two_peaks", "--steps", "5"]):
        assert main([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--out" in err, err
    if kind == "file":
        assert (tmp_path / "a_file").read_text() == "keep me"
    if kind == "folder_with_other_files":
        assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert main(["sample-target", "moons", "-n", "10", "--out", "/dev/null"]) == 2


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "ddpm"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_a_diverged_training_is_not_ok_and_not_cached(tmp_path, monkeypatch, capsys):
    """``train ddpm --lr 1``: the samples are not finite, so the run exits 3 "diverged" and
    nothing goes to the checkpoint cache (it used to exit 0 "ok" with 97 % NaN samples)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GENLIB_CACHE", str(cache))
    out = tmp_path / "run"
    argv = ["train", "ddpm", "moons", "--lr", "1", "--steps", "60", "-n", "500"]
    assert main([*argv, "--out", str(out)]) == 3
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["status"] == "diverged"
    assert captured.err.strip().splitlines()[-1].startswith("error: the run ended diverged")
    report = json.loads((out / "metrics.json").read_text())
    assert report["status"] == "diverged"
    assert not list(cache.glob("*.pt")) if cache.exists() else True


def test_out_folder_is_replaced_atomically(tmp_path, monkeypatch):
    """A run writes into a temporary sibling and swaps it in at the end: a run that dies while
    writing leaves the earlier output untouched and no temporary folder; stale temporaries of
    killed runs (dead PIDs) are swept by the next run."""
    monkeypatch.setenv("GENLIB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    base = ["train", "ddpm", "8gaussians", "--steps", "10", "-n", "50", "--out", str(out)]
    assert main([*base, "--seed", "1"]) == 0
    first = json.loads((out / "metrics.json").read_text())
    assert first["spec"]["train"]["seed"] == 1

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", boom)
    assert main([*base, "--seed", "2"]) == 3  # failed while writing: one line, exit 3
    monkeypatch.undo()
    monkeypatch.setenv("GENLIB_CACHE", str(tmp_path / "cache"))
    assert json.loads((out / "metrics.json").read_text()) == first  # not mixed with seed 2
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.json", "samples.npy"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run.")] == []

    stale = tmp_path / ".run.tmp-999999999-abc"  # a killed run's leftover (no such PID)
    stale.mkdir()
    (stale / "samples.npy").write_bytes(b"half")
    assert main([*base, "--seed", "2"]) == 0
    assert not stale.exists()
    assert json.loads((out / "metrics.json").read_text())["spec"]["train"]["seed"] == 2


def test_sample_target_refuses_non_finite_and_writes_atomically(tmp_path):
    out = tmp_path / "x.npy"
    assert main(["sample-target", "moons", "-n", "20", "--out", str(out)]) == 0
    assert np.isfinite(np.load(out)).all()
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]  # no temporary left
