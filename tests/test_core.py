"""Core plumbing: registry, device, nn, training loop (NaN guard, stop, EMA), checkpoints, runs cache."""

from __future__ import annotations

import io
import math
import pickle
from dataclasses import replace

import pytest
import torch
from torch import nn

from genlib import distributions, rng
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
        self.raw: list[torch.Tensor] = []  # the raw weights after each train_step, in order

    def loss(self, x, generator=None):
        self.calls += 1
        nll = 0.5 * ((x - self.m) ** 2).sum(-1).mean()
        if self.blow_up_at is not None and self.calls >= self.blow_up_at:
            return nll * float("nan")
        return nll

    def train_step(self, x, optimizers, step, generator=None):
        logs = super().train_step(x, optimizers, step, generator=generator)
        self.raw.append(self.m.detach().clone())
        return logs

    def sample(self, n, *, generator=None):
        return self.m.detach() + rng.randn(n, 2, generator=generator, device=self.m.device)

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


def _fake_accelerators(monkeypatch, *, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.delenv("GENLIB_DEVICE", raising=False)
    _fake_accelerators(monkeypatch, cuda=cuda, mps=mps)
    assert get_device() == torch.device(expected)
    monkeypatch.setenv("GENLIB_DEVICE", "  ")  # blank counts as unset
    assert get_device() == torch.device(expected)


@pytest.mark.parametrize("forced", ["cpu", "cuda:1", "mps"])
def test_device_env_override_beats_detection(monkeypatch, forced):
    # GENLIB_DEVICE wins whatever is available (both ways: forcing the CPU on a CUDA machine, and
    # naming a device that detection would not pick)
    _fake_accelerators(monkeypatch, cuda=forced != "cuda:1", mps=False)
    monkeypatch.setenv("GENLIB_DEVICE", f" {forced} ")
    assert get_device() == torch.device(forced)


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
    assert not torch.isfinite(model.raw[-1]).all()
    # exactly the weights of step 50 are back (not the initial ones, not a later step's)
    torch.testing.assert_close(model.m.detach(), model.raw[49], rtol=0, atol=0)
    assert not torch.equal(model.raw[49], model.raw[48])


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


def _hand_ema(raw: list[torch.Tensor], init: torch.Tensor, ema: float) -> torch.Tensor:
    """The EMA of the weights after each step, computed independently of the loop: the shadow
    starts at the initial weights and follows ``e = d e + (1 - d) w_k`` with the warm-up decay
    ``d = min(ema, (1 + k) / (10 + k))`` at step ``k``."""
    e = init.clone()
    for k, w in enumerate(raw, start=1):
        d = min(ema, (1 + k) / (10 + k))
        e = d * e + (1 - d) * w
    return e


def test_snapshots_do_not_shift_training():
    cfg = TrainConfig(steps=100, log_every=10, snapshot_every=50, snapshot_size=64)
    a, b = ShiftedGaussian(), ShiftedGaussian()
    res = train(a, distributions.build("two_peaks"), cfg, device=torch.device("cpu"))
    train(
        b,
        distributions.build("two_peaks"),
        replace(cfg, snapshot_every=0),
        device=torch.device("cpu"),
    )
    assert [s for s, _ in res.snapshots] == [50, 100]
    assert res.snapshots[0][1].shape == (64, 2)
    torch.testing.assert_close(a.m.detach(), b.m.detach(), rtol=0, atol=0)


def test_ema_weights_are_swapped_in_at_the_end():
    cfg = TrainConfig(steps=100, lr=0.05, log_every=10, ema=0.9, seed=1)
    model = ShiftedGaussian()
    init = model.m.detach().clone()
    res = train(model, distributions.build("two_peaks"), cfg, device=torch.device("cpu"))
    assert res.status == "ok" and len(model.raw) == 100
    expected = _hand_ema(model.raw, init, 0.9)
    # the model ends with the averaged weights, not the raw weights of the last step
    assert float((expected - model.raw[-1]).norm()) > 1e-3  # (the two are distinguishable here)
    torch.testing.assert_close(model.m.detach(), expected, rtol=1e-5, atol=1e-6)
    # without EMA the raw last-step weights stay
    plain = ShiftedGaussian()
    train(
        plain, distributions.build("two_peaks"), replace(cfg, ema=0.0), device=torch.device("cpu")
    )
    torch.testing.assert_close(plain.m.detach(), plain.raw[-1], rtol=0, atol=0)
    torch.testing.assert_close(plain.raw, model.raw, rtol=0, atol=0)  # EMA never feeds training


def test_nan_restores_the_ema_shadow_with_the_last_good_weights():
    cfg = TrainConfig(steps=500, lr=0.05, log_every=25, ema=0.9, seed=2)
    model = ShiftedGaussian(blow_up_at=60)
    init = model.m.detach().clone()
    res = train(model, distributions.build("8gaussians"), cfg, device=torch.device("cpu"))
    assert res.status == "diverged" and res.steps_done == 50
    assert not torch.isfinite(model.raw[-1]).all()  # the raw weights did blow up (step 60)
    # the final weights are the EMA of steps 1..50 (the shadow kept with the step-50 weights),
    # not the raw step-50 weights and nothing of the steps after it
    expected = _hand_ema(model.raw[:50], init, 0.9)
    assert float((expected - model.raw[49]).norm()) > 1e-3
    torch.testing.assert_close(model.m.detach(), expected, rtol=1e-5, atol=1e-6)


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


def test_rng_draws_follow_the_seed():
    a = rng.randn(1000, 2, generator=make_generator(7))
    b = rng.randn((1000, 2), generator=make_generator(7))  # a shape tuple is the same call
    c = rng.randn(1000, 2, generator=make_generator(8))
    assert a.shape == (1000, 2) and a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    g = make_generator(7)
    first, second = rng.randn(1000, 2, generator=g), rng.randn(1000, 2, generator=g)
    torch.testing.assert_close(first, a, rtol=0, atol=0)
    assert not torch.allclose(first, second)  # the generator advances
    like = rng.randn_like(torch.empty(1000, 2), generator=make_generator(7))
    torch.testing.assert_close(like, a, rtol=0, atol=0)
    assert rng.randn_like(torch.empty(3, dtype=torch.float64), generator=g).dtype == torch.float64
    u1 = rng.rand(500, generator=make_generator(3))
    torch.testing.assert_close(u1, rng.rand(500, generator=make_generator(3)), rtol=0, atol=0)
    assert not torch.equal(u1, rng.rand(500, generator=make_generator(4)))
    i1 = rng.randint(0, 10, (500,), generator=make_generator(3))
    assert torch.equal(i1, rng.randint(0, 10, (500,), generator=make_generator(3)))
    assert not torch.equal(i1, rng.randint(0, 10, (500,), generator=make_generator(4)))


def test_rng_distributions():
    z = rng.randn(200_000, generator=make_generator(0)).double()
    # N(0, 1): mean ± 0.01 (5 SE), std, P(|z| < 1) = 0.6827 and P(|z| < 2) = 0.9545
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    assert abs(float((z.abs() < 1).double().mean()) - 0.6827) < 0.006
    assert abs(float((z.abs() < 2).double().mean()) - 0.9545) < 0.004
    u = rng.rand(200_000, generator=make_generator(0)).double()
    assert 0 <= float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.005
    i = rng.randint(2, 6, (200_000,), generator=make_generator(0))
    assert set(i.unique().tolist()) == {2, 3, 4, 5}
    assert torch.bincount(i - 2).double().div(i.numel()).sub(0.25).abs().max() < 0.01


def test_rng_cpu_generator_feeds_another_device():
    """A generator draws on its own device and the result moves to the requested one: the draw
    lands on ``device`` and consumes the generator exactly as the same draw on its device."""
    g, ref = make_generator(5), make_generator(5)
    z = rng.randn(64, 2, generator=g, device="meta")  # the CPU-only stand-in for another device
    assert z.device.type == "meta" and z.shape == (64, 2)
    rng.randn(64, 2, generator=ref)
    assert torch.equal(g.get_state(), ref.get_state())
    x = torch.empty(8, 2, device="meta")
    assert rng.randn_like(x, generator=g).device.type == "meta"
    assert rng.rand(3, generator=g, device="meta").device.type == "meta"
    assert rng.randint(0, 4, (3,), generator=g, device="meta").device.type == "meta"
    if torch.cuda.is_available():  # the real thing: same values as on the CPU
        zc = rng.randn(64, 2, generator=make_generator(5), device="cuda")
        assert zc.is_cuda
        torch.testing.assert_close(zc.cpu(), rng.randn(64, 2, generator=make_generator(5)))


def test_seeded_init_depends_on_the_seed_only():
    before = torch.random.get_rng_state()
    a = rng.seeded_init(3, lambda: MLP(2, 2, hidden=8, depth=1))
    torch.rand(5)  # whatever the global RNG did in between
    b = rng.seeded_init(3, lambda: MLP(2, 2, hidden=8, depth=1))
    c = rng.seeded_init(4, lambda: MLP(2, 2, hidden=8, depth=1))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert any(
        not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True)
    )
    torch.rand(5)
    after_one = torch.random.get_rng_state()
    torch.random.set_rng_state(before)
    torch.rand(5)
    torch.rand(5)
    # seeded_init left the global RNG where it was (only the two torch.rand calls moved it)
    assert torch.equal(torch.random.get_rng_state(), after_one)
