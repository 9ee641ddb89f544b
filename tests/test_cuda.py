"""The GPU path (issue 12): the core oracles on ``cuda`` against the CPU or closed forms, and one
short training of every family on ``cuda``. Skipped without a CUDA device (there is none on the
development machine or in CI: run them on a GPU machine with
``GENLIB_THREADS=1 pytest -q tests/test_cuda.py``)."""

from __future__ import annotations

import math

import pytest
import torch

from genlib import distributions, models
from genlib.device import GPU_BATCH, make_generator
from genlib.models.base import HasLogProb, HasScore
from genlib.objectives import target_log_prob
from genlib.rng import rand, randint, randn
from genlib.runs import RunSpec, build_model, evaluate, run
from genlib.samplers.ode import ode_log_likelihood, odeint
from genlib.training import TrainConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

CUDA = torch.device("cuda")
CPU = torch.device("cpu")
TARGETS = ["moons", "8gaussians", "checkerboard"]


# ----------------------------------------------------------------------------- targets


@pytest.mark.parametrize("name", TARGETS)
def test_target_density_and_score_on_cuda_match_the_cpu(name):
    """A reverse-KL step on a GPU evaluates the target on cuda points: its log density and its
    gradient (the exact score) must be the CPU's, on the points' device."""
    target = distributions.build(name)
    x = target.sample(512, generator=make_generator(0)) + 0.05  # (N, 2) near the support
    y = x.to(CUDA).requires_grad_(True)
    lp = target_log_prob(target)(y)  # (N,) on cuda
    assert lp.device.type == "cuda"
    torch.testing.assert_close(lp.cpu(), target.log_prob(x), rtol=1e-5, atol=1e-5)
    (grad,) = torch.autograd.grad(lp.sum(), y)
    assert grad.device.type == "cuda"
    torch.testing.assert_close(grad.cpu(), target.score(x), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- rng


def test_rng_on_cuda_is_seeded_by_its_generator():
    a = randn(100_000, 2, generator=make_generator(7, CUDA), device=CUDA)
    b = randn(100_000, 2, generator=make_generator(7, CUDA), device=CUDA)
    c = randn(100_000, 2, generator=make_generator(8, CUDA), device=CUDA)
    assert a.device.type == "cuda"
    assert torch.equal(a, b) and not torch.equal(a, c)
    # N(0, I): mean and covariance within 5 standard errors
    assert float(a.mean(0).abs().max()) < 5 / math.sqrt(a.shape[0])
    cov = torch.cov(a.T.double())
    assert float((cov - torch.eye(2, device=CUDA, dtype=torch.float64)).abs().max()) < 0.02
    u = rand(100_000, generator=make_generator(1, CUDA), device=CUDA)
    assert 0.0 <= float(u.min()) and float(u.max()) < 1.0 and abs(float(u.mean()) - 0.5) < 0.01
    i = randint(0, 10, (50_000,), generator=make_generator(1, CUDA), device=CUDA)
    assert torch.equal(
        torch.bincount(i, minlength=10) > 4000, torch.ones(10, dtype=torch.bool, device=CUDA)
    )


def test_rng_with_a_cpu_generator_gives_cuda_tensors_equal_to_the_cpu_draws():
    x = randn(1000, 2, generator=make_generator(3), device=CUDA)
    assert x.device.type == "cuda"
    assert torch.equal(x.cpu(), randn(1000, 2, generator=make_generator(3)))


# ----------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_ode_solver_on_cuda_against_the_closed_form(method):
    """ẋ = −x from t = 0 to 1: x(1) = x(0)/e, with the method's order of accuracy."""
    x0 = randn(4096, 2, generator=make_generator(0, CUDA), device=CUDA)
    x1 = odeint(lambda x, t: -x, x0, 0.0, 1.0, steps=200, method=method)
    assert x1.device.type == "cuda"
    tol = {"euler": 2e-3, "heun": 1e-5, "rk4": 1e-6}[method]
    assert float((x1 - x0 / math.e).abs().max()) < tol * float(x0.abs().max())


def test_ode_likelihood_on_cuda_against_the_closed_form():
    """The flow ẋ = x/2 pushes N(0, I) at t = 0 to N(0, e I) at t = 1: its exact log density."""
    x = randn(2048, 2, generator=make_generator(1, CUDA), device=CUDA) * 1.5
    lp = ode_log_likelihood(
        lambda z, t: 0.5 * z,
        x,
        1.0,
        0.0,
        lambda z: -math.log(2 * math.pi) - 0.5 * (z**2).sum(-1),
        steps=50,
        method="rk4",
    )
    var = math.e
    expect = -math.log(2 * math.pi * var) - 0.5 * (x**2).sum(-1) / var
    assert lp.device.type == "cuda"
    torch.testing.assert_close(lp, expect, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- models


#: a valid noise level of each family's ``score(x, level)`` (DDPM: the step t in 1..T; NCSN: σ;
#: SDE and flow matching: the time; score matching ignores it)
SCORE_LEVEL: dict[str, float | int] = {"ddpm": 10, "ncsn": 0.5, "sde": 0.3}


def _cpu_and_cuda(name: str):
    spec = RunSpec.from_preset(name, "8gaussians", preset="fast", seed=0)
    cpu = build_model(spec).to(CPU).eval()
    gpu = build_model(spec).to(CUDA).eval()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu


@pytest.mark.parametrize("name", models.names())
def test_exact_densities_and_scores_agree_on_cuda_and_cpu(name):
    cpu, gpu = _cpu_and_cuda(name)
    x = distributions.build("8gaussians").sample(256, generator=make_generator(2))
    checked = False
    if isinstance(cpu, HasLogProb):
        try:
            want = cpu.log_prob(x)
        except NotImplementedError:
            want = None
        if want is not None:
            got = gpu.log_prob(x.to(CUDA))
            assert got.device.type == "cuda"
            torch.testing.assert_close(got.cpu(), want, rtol=1e-3, atol=1e-3)
            checked = True
    if isinstance(cpu, HasScore):
        level = SCORE_LEVEL.get(name, 0.3)
        with torch.no_grad():
            torch.testing.assert_close(
                gpu.score(x.to(CUDA), level).cpu(), cpu.score(x, level), rtol=1e-3, atol=1e-3
            )
        checked = True
    if not checked:
        pytest.skip(f"{name} has neither an exact density nor a score")


@pytest.mark.parametrize("name", models.names())
def test_every_family_trains_and_samples_on_cuda(name):
    spec = RunSpec.from_preset(name, "8gaussians", preset="fast", seed=0)
    model = build_model(spec)
    target = distributions.build("8gaussians")
    cfg = TrainConfig(
        steps=60, batch_size=GPU_BATCH, lr=spec.train.lr, log_every=20, data_size=20_000
    )
    res = train(model, target, cfg, device=CUDA)
    assert res.status == "ok", res.message
    assert res.steps_done == 60 and all(math.isfinite(r["loss"]) for r in res.history)
    assert model.device.type == "cuda"
    with torch.no_grad():
        x = model.sample(512, generator=make_generator(0, CUDA))
    assert x.shape == (512, 2) and x.device.type == "cuda" and bool(torch.isfinite(x).all())


def test_fast_preset_on_cuda_runs_at_the_gpu_batch_and_evaluates(monkeypatch, tmp_path):
    monkeypatch.setenv("GENLIB_CACHE", str(tmp_path))
    monkeypatch.delenv("GENLIB_DEVICE", raising=False)
    monkeypatch.delenv("GENLIB_GPU_BATCH", raising=False)
    spec = RunSpec.from_preset("ddpm", "moons", preset="fast", seed=0, steps=200)
    assert spec.train.batch_size >= GPU_BATCH
    trained = run(spec, use_cache=False)
    assert trained.result.status == "ok" and trained.model.device.type == "cuda"
    m = evaluate(trained, n=1000)
    assert math.isfinite(m["sliced_wasserstein"]) and m["non_finite"] == 0
