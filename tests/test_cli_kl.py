"""``python -m genlib kl``: result.json (final mean/cov, per-frame KL trace), same code path as the
page (``genlib.kl.fit``), exit code 2 with a one-line message on bad arguments."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from genlib.cli import main
from genlib.kl import KLConfig, fit


def test_cli_kl_writes_result_json(tmp_path, capsys):
    out = tmp_path / "rev"
    argv = ["kl", "two_peaks", "--q", "gaussian", "--divergence", "reverse", "--steps", "300", "--seed", "1", "--lr", "0.05", "--frames", "5", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["status"] == "ok" and res["q"] == "gaussian" and res["divergence"] == "reverse"
    assert (
        len(res["trace"]) == 5 and res["trace"][0]["step"] == 0 and res["trace"][-1]["step"] == 300
    )
    assert set(res["trace"][0]) == {"step", "kl_pq", "kl_qp", "loss"}
    mean, cov = np.array(res["mean"]), np.array(res["cov"])
    assert cov.shape == (2, 2) and abs(abs(mean[0]) - 2.0) < 0.2  # on one peak
    assert float(res["kl_qp"]) == pytest.approx(math.log(2), abs=0.05)
    # the same numbers as the library call the page makes
    direct = fit(KLConfig(steps=300, seed=1, lr=0.05, num_frames=5))
    assert direct.final.params["mean"] == pytest.approx(res["mean"], abs=1e-6)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "ok"


def test_cli_kl_forward_with_target_params(tmp_path):
    out = tmp_path / "fwd"
    argv = ["kl", "two_peaks", "--divergence", "forward", "--steps", "300", "--optimizer", "sgd", "--lr", "0.1", "--n-samples", "2048", "--frames", "3", "--target-param", "weight=0.3", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["config"]["target_params"] == {"weight": 0.3}
    np.testing.assert_allclose(res["mean"], res["target_mean"], atol=0.08)  # moment matching
    assert res["cov"][0][0] > 3.0 and res["picked_mode"] == -1


@pytest.mark.parametrize(
    "args,message",
    [
        (["nope"], "unknown target"),
        (["two_peaks", "--q", "vae"], "unknown q family"),
        (["two_peaks", "--divergence", "sideways"], "divergence"),
        (["two_peaks", "--steps", "0"], "steps"),
        (["two_peaks", "--steps", "100000"], "steps"),
        (["two_peaks", "--n-samples", "100000"], "n_samples"),
        (["two_peaks", "--target-param", "bogus=1"], "bad parameters"),
        (["two_peaks", "--target-param", "weight=2"], "weight"),
        (["two_peaks", "--lr", "-1"], "lr"),
    ],
)
def test_cli_kl_bad_arguments_exit_2(tmp_path, capsys, args, message):
    assert main(["kl", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_cli_kl_missing_out_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["kl", "two_peaks"])
    assert exc.value.code == 2


def test_python_m_genlib_kl_subprocess(tmp_path, repo_root):
    env = {
        **os.environ,
        "GENLIB_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(repo_root),
    }
    ok = subprocess.run(
        [sys.executable, "-m", "genlib", "kl", "8gaussians", "--steps", "50", "--frames", "2", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, env=env, cwd=repo_root, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "r" / "result.json").read_text())["trace"][-1]["step"] == 50
