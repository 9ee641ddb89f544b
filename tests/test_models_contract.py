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


@pytest.mark.parametrize("name", NAMES)
def test_registry_has_presets(name):
    cls = models.MODELS.get(name)
    assert {"fast", "quality"} <= set(cls.presets), name
    assert issubclass(cls, GenerativeModel)


def test_train_step_is_finite(trained):
    name, _, res = trained
    assert res.status == "ok", (name, res.message)
    assert res.steps_done == 6 and all(
        torch.isfinite(torch.tensor(v)) for v in res.history[-1].values()
    )


def _optimised(optimizers: list[torch.optim.Optimizer]) -> list[list[torch.nn.Parameter]]:
    return [[p for group in opt.param_groups for p in group["params"]] for opt in optimizers]


@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow_to_every_network(name):
    """Every optimiser (e.g. the GAN's D and G) moves its parameters in one train_step, every
    parameter of every optimiser has moved within three, and no trainable parameter is left out
    of the optimisers. (Three steps: a zero-initialised output layer, as in the flow's coupling
    nets, lets the layers before it move from the second step on.)"""
    model = build_model(_spec(name))
    optimizers = model.configure_optimizers(1e-3)
    groups = _optimised(optimizers)
    names = {id(p): n for n, p in model.named_parameters()}
    covered = {id(p) for ps in groups for p in ps}
    left_out = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
    assert not left_out, f"{name}: parameters no optimiser updates: {left_out}"
    before = [[p.detach().clone() for p in ps] for ps in groups]
    x = distributions.build("8gaussians").sample(128, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    model.train()

    def unmoved() -> list[list[str]]:
        return [
            [
                names.get(id(p), "?")
                for b, p in zip(bs, ps, strict=True)
                if torch.equal(b, p.detach())
            ]
            for bs, ps in zip(before, groups, strict=True)
        ]

    model.train_step(x, optimizers, 1, generator=g)
    still = unmoved()
    idle = [i for i, (ps, st) in enumerate(zip(groups, still, strict=True)) if len(st) == len(ps)]
    assert not idle, f"{name}: optimiser(s) {idle} of {len(groups)} moved nothing in one train_step"
    for step in (2, 3):
        model.train_step(x, optimizers, step, generator=g)
    still = unmoved()
    assert not any(still), f"{name}: parameters that never moved in three train_steps: {still}"


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
    """Frames run from the prior noise (frame 0) to the data end (the last frame): the last frame
    is the model's samples (the same draw as ``sample`` with the same seed), and frame 0 is noise
    that does not depend on the weights (perturbing every parameter leaves it as it was and
    moves the last frame). A reversed trajectory fails both."""
    name, model, _ = trained
    n, seed = 64, 3
    with torch.no_grad():
        traj = model.trajectory(n, num_frames=8, generator=torch.Generator().manual_seed(seed))
        samples = model.sample(n, generator=torch.Generator().manual_seed(seed))
    assert isinstance(traj, Trajectory)
    frames = traj.xs.shape[0]
    assert traj.xs.shape[1:] == (n, 2) and 1 <= frames <= 8 + 2, name
    assert torch.isfinite(traj.xs).all()
    torch.testing.assert_close(traj.xs[-1], samples, msg=f"{name}: last frame is not the samples")
    if frames == 1:
        return
    clone = build_model(_spec(name))
    clone.load_state_dict(model.state_dict())
    clone.eval()
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in clone.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        moved = clone.trajectory(n, num_frames=8, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(
        moved.xs[0], traj.xs[0], msg=f"{name}: frame 0 depends on the weights (not the prior)"
    )
    assert not torch.allclose(moved.xs[-1], traj.xs[-1]), f"{name}: last frame ignores the weights"
    assert not torch.allclose(traj.xs[0], traj.xs[-1]), name


def test_log_prob_when_offered(trained):
    name, model, _ = trained
    if not isinstance(model, HasLogProb):
        pytest.skip(f"{name} has no density")
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lp = model.log_prob(x)
    assert lp.shape == (16,) and torch.isfinite(lp).all()
