"""Contract tests, parametrised over the model registry: every family honours the common interface."""

from __future__ import annotations

import pytest
import torch

from genlib import distributions, models
from genlib.models.base import GenerativeModel, HasLogProb, Trajectory
from genlib.runs import RunSpec, build_model
from genlib.training import TrainConfig, train

NAMES = models.names()
CPU = torch.device("cpu")


def _spec(name: str) -> RunSpec:
    return RunSpec.from_preset(name, "8gaussians", preset="fast", seed=0)


@pytest.fixture(scope="module", params=NAMES)
def trained(request):
    """Each family trained for a handful of steps on CPU."""
    spec = _spec(request.param)
    torch.manual_seed(0)
    model = build_model(spec)
    cfg = TrainConfig(steps=6, batch_size=128, lr=spec.train.lr, log_every=3, data_size=2000)
    res = train(model, distributions.build("8gaussians"), cfg, device=CPU)
    return request.param, model, res


def test_registry_has_presets():
    for name in NAMES:
        cls = models.MODELS.get(name)
        assert {"fast", "quality"} <= set(cls.presets), name
        assert issubclass(cls, GenerativeModel)


def test_train_step_is_finite(trained):
    name, _, res = trained
    assert res.status == "ok", (name, res.message)
    assert res.steps_done == 6 and all(
        torch.isfinite(torch.tensor(v)) for v in res.history[-1].values()
    )


def test_gradients_flow():
    for name in NAMES:
        model = build_model(_spec(name))
        optimizers = model.configure_optimizers(1e-3)
        before = [p.detach().clone() for p in model.parameters()]
        x = distributions.build("8gaussians").sample(
            128, generator=torch.Generator().manual_seed(0)
        )
        model.train()
        model.train_step(x, optimizers, 1)
        changed = any(
            not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True)
        )
        assert changed, f"{name}: no parameter moved after one train_step"


def test_sample_shapes_and_determinism(trained):
    name, model, _ = trained
    with torch.no_grad():
        a = model.sample(64, generator=torch.Generator().manual_seed(5))
        b = model.sample(64, generator=torch.Generator().manual_seed(5))
    assert a.shape == (64, 2) and a.dtype == torch.float32, name
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b)


def test_state_dict_round_trip(trained):
    name, model, _ = trained
    clone = build_model(_spec(name))
    clone.load_state_dict(model.state_dict())
    clone.eval()
    with torch.no_grad():
        a = model.sample(32, generator=torch.Generator().manual_seed(1))
        b = clone.sample(32, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)


def test_trajectory_in_generation_order(trained):
    name, model, _ = trained
    with torch.no_grad():
        traj = model.trajectory(16, num_frames=8, generator=torch.Generator().manual_seed(0))
    assert isinstance(traj, Trajectory)
    assert traj.xs.shape[1:] == (16, 2) and 1 <= traj.xs.shape[0] <= 8 + 2, name
    assert torch.isfinite(traj.xs).all()


def test_log_prob_when_offered(trained):
    name, model, _ = trained
    if not isinstance(model, HasLogProb):
        pytest.skip(f"{name} has no density")
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lp = model.log_prob(x)
    assert lp.shape == (16,) and torch.isfinite(lp).all()
