"""Core plumbing: registry, device, nn, training loop (NaN guard, stop, EMA), checkpoints, runs cache."""

from __future__ import annotations

import io
import math
import pickle

import pytest
import torch
from torch import nn

from genlib import distributions
from genlib.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from genlib.device import get_device, make_generator
from genlib.models.base import GenerativeModel, Trajectory, capabilities
from genlib.nn import MLP, TimeMLP
from genlib.registry import Registry
from genlib.runs import RunSpec, TargetSpec, freeze
from genlib.training import TrainConfig, train


class ShiftedGaussian(GenerativeModel):
    """q = N(m, I) with a learnable mean; loss = NLL. Small enough to check the loop exactly."""

    name = "test_gaussian"

    def __init__(self, blow_up_at: int | None = None) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.zeros(2))
        self.blow_up_at = blow_up_at
        self.calls = 0

    def loss(self, x):
        self.calls += 1
        nll = 0.5 * ((x - self.m) ** 2).sum(-1).mean()
        if self.blow_up_at is not None and self.calls >= self.blow_up_at:
            return nll * float("nan")
        return nll

    def sample(self, n, *, generator=None):
        return self.m.detach() + torch.randn(n, 2, generator=generator, device=self.m.device)

    def log_prob(self, x):
        return -math.log(2 * math.pi) - 0.5 * ((x - self.m) ** 2).sum(-1)


def test_registry_rejects_duplicates_and_unknown():
    r: Registry[int] = Registry("thing")
    r.register("a", lambda: 1)
    with pytest.raises(ValueError, match="duplicate"):
        r.register("a", lambda: 2)
    with pytest.raises(KeyError, match="unknown thing 'b'"):
        r.build("b")
    assert r.names() == ["a"] and "a" in r and r.build("a") == 1


def test_device_override(monkeypatch):
    monkeypatch.setenv("GENLIB_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.delenv("GENLIB_DEVICE")
    assert get_device().type in {"cpu", "cuda", "mps"}


def test_nn_shapes():
    assert MLP(2, 3, hidden=16, depth=2)(torch.zeros(5, 2)).shape == (5, 3)
    net = TimeMLP(hidden=16, depth=2)
    x = torch.randn(7, 2)
    assert net(x, torch.rand(7)).shape == (7, 2)
    # a scalar time broadcasts to the batch and equals the per-sample version
    torch.testing.assert_close(net(x, 0.3), net(x, torch.full((7,), 0.3)))


def test_train_config_validates():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=float("nan"))
    with pytest.raises(ValueError, match="unknown training options"):
        TrainConfig().with_overrides(bogus=1)


def test_training_converges_and_is_deterministic():
    target = distributions.build("two_peaks", distance=2.0, std=0.5, weight=0.5)
    cfg = TrainConfig(steps=300, lr=0.05, batch_size=256, log_every=25, seed=3)
    runs = []
    for _ in range(2):
        model = ShiftedGaussian()
        res = train(model, target, cfg, device=torch.device("cpu"))
        runs.append(model.m.detach().clone())
        assert res.status == "ok" and res.steps_done == 300
        assert len(res.history) == 12 and res.history[-1]["step"] == 300
    torch.testing.assert_close(runs[0], runs[1])
    assert float(runs[0].norm()) < 0.15  # the mixture mean is the origin


def test_nan_loss_stops_and_keeps_last_good_weights():
    target = distributions.build("8gaussians")
    model = ShiftedGaussian(blow_up_at=60)
    res = train(
        model, target, TrainConfig(steps=500, lr=0.01, log_every=25), device=torch.device("cpu")
    )
    assert res.status == "diverged" and "non-finite" in res.message
    assert res.steps_done == 50  # the last logged step before the NaN (step 60 lies in 51..75)
    assert torch.isfinite(model.m).all()


def test_on_step_false_stops():
    model = ShiftedGaussian()
    res = train(
        model,
        distributions.build("8gaussians"),
        TrainConfig(steps=1000, log_every=10),
        on_step=lambda step, row: step < 30,
        device=torch.device("cpu"),
    )
    assert res.status == "stopped" and res.steps_done == 30


def test_snapshots_and_ema():
    model = ShiftedGaussian()
    cfg = TrainConfig(steps=100, log_every=10, snapshot_every=50, snapshot_size=64, ema=0.9)
    res = train(model, distributions.build("two_peaks"), cfg, device=torch.device("cpu"))
    assert [s for s, _ in res.snapshots] == [50, 100]
    assert res.snapshots[0][1].shape == (64, 2)


def test_capabilities_and_trajectory_validation():
    assert capabilities(ShiftedGaussian()) == ["log_prob"]
    with pytest.raises(ValueError, match=r"\(F, N, 2\)"):
        Trajectory(torch.zeros(3, 2), torch.zeros(3))


def test_checkpoint_round_trip_and_rejects_code(tmp_path):
    model = ShiftedGaussian()
    with torch.no_grad():
        model.m.fill_(1.5)
    path = save_checkpoint(
        tmp_path / "a.pt", model.state_dict(), {"model": "x"}, {"history": [{"step": 1.0}]}
    )
    ck = load_checkpoint(path)
    assert ck["spec"] == {"model": "x"} and torch.equal(ck["state_dict"]["m"], model.m.detach())

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    buf = io.BytesIO()
    torch.save({"format": 1, "state_dict": {}, "x": Evil()}, buf, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="not a valid"):
        load_checkpoint(buf.getvalue())
    with pytest.raises(CheckpointError, match="not a valid"):
        load_checkpoint(b"garbage")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_spec_keys_are_stable_and_distinct():
    a = RunSpec(
        "m", TargetSpec("moons"), freeze({"hidden": 64, "sizes": [1, 2]}), TrainConfig(seed=0)
    )
    b = RunSpec(
        "m", TargetSpec("moons"), freeze({"sizes": [1, 2], "hidden": 64}), TrainConfig(seed=0)
    )
    c = RunSpec(
        "m", TargetSpec("moons"), freeze({"hidden": 64, "sizes": [1, 2]}), TrainConfig(seed=1)
    )
    assert a == b and hash(a) == hash(b) and a.key() == b.key()
    assert a.key() != c.key()


def test_generators_are_device_generators():
    g = make_generator(0)
    assert torch.randn(2, generator=g).shape == (2,)
