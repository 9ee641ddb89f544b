"""Fuzzing (hypothesis) of the command line and the public ``genlib`` entry points with absurd
values: every input gives a result or one clear error (``ValueError`` / exit 2), never a
traceback, a hang (each example has a deadline), a NaN accepted silently or a memory blow-up.

Deterministic for CI (``derandomize=True``) and small (a few dozen examples per property)."""

from __future__ import annotations

import inspect
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genlib import distributions, limits, models
from genlib.cli import main
from genlib.metrics import mmd_rbf, sliced_wasserstein
from genlib.runs import RunSpec, TargetSpec
from genlib.samplers.langevin import langevin

FUZZ = settings(
    max_examples=30,
    derandomize=True,
    deadline=5000,  # ms per example: a hang or a minute-long allocation fails the test
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

#: absurd values of every kind a URL, the CLI (JSON) or an API caller can send
ABSURD = st.one_of(
    st.sampled_from(
        [math.nan, math.inf, -math.inf, -1, 0, 0.0, 1e308, -1e308, 1e-300, 2**64, 2**70, -(2**63)]
    ),
    st.sampled_from([True, False, None, "", "abc", "NaN", [], [[1, 2, 3]], {"a": 1}]),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4),
)

TARGETS = distributions.names()
MODELS = models.names()


def _param_names(factory) -> list[str]:
    return [n for n in inspect.signature(factory).parameters if n != "self"] + ["bogus"]


@st.composite
def target_params(draw):
    name = draw(st.sampled_from(TARGETS))
    keys = _param_names(distributions.TARGETS.get(name))
    params = draw(st.dictionaries(st.sampled_from(keys), ABSURD, max_size=2))
    return name, params


def _finite(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all())


@FUZZ
@given(target_params())
def test_targets_refuse_or_sample_finite(case):
    """A target with absurd parameters is refused with ValueError, or it samples finite points
    with a finite density (a NaN/inf parameter never passes silently)."""
    name, params = case
    try:
        target = distributions.build(name, **params)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    except TypeError:  # an unknown keyword: Python's own one-line refusal
        assert "bogus" in params
        return
    x = target.sample(64, generator=torch.Generator().manual_seed(0))
    assert x.shape == (64, 2) and _finite(x), (name, params)
    assert _finite(target.log_prob(x)), (name, params)


@FUZZ
@given(target_params())
def test_target_specs_refuse_with_one_line(case):
    name, params = case
    try:
        spec = TargetSpec(name, tuple(params.items()))
        spec.build()
    except ValueError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    assert all(not (isinstance(v, float) and not math.isfinite(v)) for _, v in spec.params)


SIZE_NAMES = ["hidden", "depth", "embed_dim", "T", "num_levels", "components", "layers", "bins",
              "z_dim", "latent_dim", "langevin_steps", "k", "steps", "activation", "bogus"]  # fmt: skip


@FUZZ
@given(
    st.sampled_from(MODELS),
    st.dictionaries(st.sampled_from(SIZE_NAMES), ABSURD, max_size=2),
    st.dictionaries(
        st.sampled_from(["steps", "batch_size", "lr", "seed", "ema", "lr_decay", "data_size"]),
        ABSURD,
        max_size=2,
    ),
)
def test_run_specs_refuse_or_build_a_bounded_model(model, overrides, train):
    """RunSpec refuses absurd sizes and training options with one ValueError line; what it
    accepts builds a model of bounded size at once (no 4 GB ``hidden=30000``)."""
    seed = train.pop("seed", 0)
    try:
        spec = RunSpec.from_preset(model, "moons", seed=seed, model_overrides=overrides, **train)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(spec.train.steps, int) and 1 <= spec.train.steps <= 200_000
    assert 0 <= spec.train.seed <= limits.MAX_SEED
    assert isinstance(spec.train.lr_decay, bool) and math.isfinite(spec.train.lr)
    try:
        m = models.build(spec.model, **dict(spec.model_params))
    except ValueError:  # a constructor's own cross-field check (e.g. sigma_min < sigma_max)
        return
    n_params = sum(p.numel() for p in m.parameters())
    assert n_params <= 20_000_000  # 80 MB of float32 at most


@FUZZ
@given(ABSURD, ABSURD)
def test_langevin_refuses_absurd_steps_quickly(step_size, n_steps):
    x0 = torch.zeros(8, 2)
    try:
        traj = langevin(lambda x: -x, x0, step_size, n_steps, torch.Generator().manual_seed(0))
    except (ValueError, TypeError):
        return
    assert isinstance(n_steps, int) and n_steps <= 10**6
    assert traj.xs.shape[1:] == (8, 2)


@FUZZ
@given(
    st.integers(2, 300),
    st.integers(2, 300),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(1e-6, 1e3, allow_nan=False),
)
def test_metrics_are_finite_on_finite_samples(n, m, shift, scale):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, generator=g) * scale + shift
    y = torch.randn(m, 2, generator=g)
    sw = sliced_wasserstein(x, y, generator=g)
    mmd = mmd_rbf(x, y, generator=g)
    assert math.isfinite(sw) and sw >= 0
    assert math.isfinite(mmd) and -1.0 <= mmd <= 2.0 + 1e-9


# --- the command line ------------------------------------------------------------------------


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        rc = exc.code
    return rc, capsys.readouterr().err


@st.composite
def kv_args(draw, keys: list[str]):
    out = []
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(keys))
        value = draw(
            st.one_of(
                st.sampled_from(["NaN", "Infinity", "-Infinity", "-1", "0", "1e308", "1e-300",
                                 "abc", "[[1,2,3]]", "true", "null", "{}", "18446744073709551616"]),
                st.text(max_size=12),
            )
        )  # fmt: skip
        out += ["--param", f"{key}={value}"]
    return out


@FUZZ
@given(data=st.data())
def test_cli_sample_target_exits_0_or_2_with_one_line(data, capsys):
    name = data.draw(st.sampled_from(TARGETS))
    params = data.draw(kv_args(_param_names(distributions.TARGETS.get(name))))
    n = data.draw(st.sampled_from(["-5", "0", "1", "64", "10000000000", "2.5"]))
    seed = data.draw(st.sampled_from(["0", "-1", "7", str(2**64), "1e3"]))
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "x.npy"
        rc, err = _cli(["sample-target", name, "-n", n, "--seed", seed, *params,
                        "--out", str(out)], capsys)  # fmt: skip
        assert rc in (0, 2), err
        if rc == 0:
            x = np.load(out)
            assert x.shape == (int(n), 2) and np.isfinite(x).all()
        else:
            assert err.count("\n") == 1 and err.startswith("error: "), err
            assert not out.exists()


@FUZZ
@given(data=st.data())
def test_cli_train_refuses_bad_values_before_training(data, capsys, monkeypatch):
    """``train`` with absurd model / target values exits 2 with one line before any training;
    valid ones reach the training (stubbed here: the run itself is tested in test_cli)."""
    import genlib.runs

    def no_training(*a, **k):
        raise RuntimeError("stub: would train")

    monkeypatch.setattr(genlib.runs, "run", no_training)
    model = data.draw(st.sampled_from(MODELS))
    params = data.draw(kv_args(SIZE_NAMES))
    tparams = [a.replace("--param", "--target-param") for a in
               data.draw(kv_args(["std", "noise", "weight", "bogus"]))]  # fmt: skip
    extra = data.draw(st.sampled_from([[], ["--steps", "0"], ["--lr", "nan"], ["--lr", "1"],
                                       ["--batch-size", "100000000"], ["--seed", str(2**64)]]))  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        rc, err = _cli(["train", model, "two_peaks", *params, *tparams, *extra,
                        "--out", str(Path(d) / "run")], capsys)  # fmt: skip
        assert err.count("\n") == 1 and err.startswith("error: "), err
        if rc == 3:
            assert "would train" in err
        else:
            assert rc == 2, err
        assert not (Path(d) / "run").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["sample-target", "two_peaks", "--param", "std=NaN", "--out", "x.npy"],
        ["train", "ddpm", "moons", "--param", "hidden=30000", "--out", "r"],
        ["kl", "two_peaks", "--target-param", "std=Infinity", "--out", "r"],
        ["train", "ddpm", "moons", "--seed", str(2**64), "--out", "r"],
    ],
)
def test_module_entry_point_exit_2_one_line(argv, tmp_path):
    """The same through ``python -m genlib`` in a subprocess (the real exit code and stderr)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "genlib", *argv], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
