"""Oracle tests of ``genlib.lab.identities``: the lecture's "intractable = trained + const" holds at
two parameter states within Monte-Carlo error, and the constant matches independent quadratures of
the target's density (finite differences of ``log_prob``/``log_prob_t``, never ``target.score``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlib import models
from genlib.device import make_generator
from genlib.distributions import TARGETS
from genlib.lab import identities as lid
from genlib.rng import seeded_init

N = 20_000
N_CONST = 100_000  # the constants' Monte-Carlo error is ~1 % at this n


def _target():
    return TARGETS.get("8gaussians")()


def _model(family: str, **kw):
    return seeded_init(0, lambda: models.build(family, hidden=32, depth=2, **kw))


def _train(model, target, steps: int = 150):
    """A second parameter state: ``steps`` Adam steps of the model's own loss."""
    from genlib.training import TrainConfig, train

    cfg = TrainConfig(steps=steps, batch_size=256, lr=3e-3, data_size=5000)
    train(model, target, cfg, device=torch.device("cpu"))
    return model.eval()


CASES = [
    ("score_matching", {}, None),
    ("ncsn", {}, 0.05),
    ("ncsn", {}, 0.5),
    ("ncsn", {"mode": "single", "sigma": 0.3}, 0.3),
    ("flow_matching", {}, 0.5),
    ("flow_matching", {"path": "vp"}, 0.8),
]


@pytest.mark.parametrize(("family", "kw", "level"), CASES)
def test_gap_equals_constant_at_two_parameter_states(family, kw, level):
    target = _target()
    model = _model(family, **kw)
    before = lid.objective_gap(model, target, N, make_generator(1), level)
    after = lid.objective_gap(_train(model, target), target, N, make_generator(1), level)
    moved = abs(before["intractable"] - after["intractable"])
    # two really different states: the objective moved by far more than the identity's MC error
    assert moved > 10 * max(before["gap_stderr"], after["gap_stderr"])
    for r in (before, after):
        resid = r["intractable"] - r["trained"] - r["constant"]
        assert abs(resid) <= 4 * r["gap_stderr"] + 1e-9, (family, r)
        assert r["gap_stderr"] < 0.1 * (abs(r["constant"]) + 1)  # the test has power
    # the same draws: the constant does not depend on θ at all
    assert before["constant"] == pytest.approx(after["constant"], rel=1e-12)


def test_the_identity_fails_with_the_wrong_constant():
    """Power check: half the Fisher constant (the ½‖s‖² + ∇·s scaling mixed with the lecture's)
    is many standard errors away."""
    target = _target()
    r = lid.objective_gap(_train(_model("score_matching"), target), target, N, make_generator(1))
    resid = r["intractable"] - r["trained"] - 0.5 * r["constant"]
    assert abs(resid) > 10 * r["gap_stderr"]


def test_trained_is_the_models_own_loss_on_the_same_draws():
    """``trained`` is the family's training loss itself (``hyvarinen_loss``, ``dsm_loss`` with
    λ(σ) = σ², the CFM regression on ``path.target_velocity``) at the level, recomputed here from
    the same draws (x first, then the noise) through the models' own code."""
    from genlib.models.ncsn import dsm_loss
    from genlib.models.score_matching import hyvarinen_loss
    from genlib.rng import randn

    target, n = _target(), 512
    sm = _model("score_matching")
    r = lid.objective_gap(sm, target, n, make_generator(5))
    x = target.sample(n, generator=make_generator(5)).float()
    assert r["trained"] == pytest.approx(float(hyvarinen_loss(sm.net, x).detach()), rel=1e-5)

    for sigma in (0.05, 0.5):
        ncsn = _model("ncsn")
        r = lid.objective_gap(ncsn, target, n, make_generator(6), sigma)
        g = make_generator(6)
        x = target.sample(n, generator=g).double()
        xt = (x + sigma * randn(n, 2, generator=g, dtype=torch.float64)).float()
        with torch.no_grad():
            own = dsm_loss(ncsn.score(xt, sigma), xt, x.float(), sigma)
        assert r["trained"] == pytest.approx(float(own), rel=1e-4), sigma

    fm = _model("flow_matching", path="vp")
    tau = 0.6
    r = lid.objective_gap(fm, target, n, make_generator(7), tau)
    g = make_generator(7)
    x = target.sample(n, generator=g).double()
    e = randn(n, 2, generator=g, dtype=torch.float64)
    xt, u = fm.path.target_velocity(x, torch.full((n,), tau, dtype=torch.float64), e)
    with torch.no_grad():
        own = ((fm.velocity(xt.float(), tau).double() - u) ** 2).sum(-1).mean()
    assert r["trained"] == pytest.approx(float(own), rel=1e-5)


def _grid(target, res: int = 400, pad: float = 2.0):
    x0, x1, y0, y1 = (float(b) for b in target.bounds)
    xs = torch.linspace(x0 - pad, x1 + pad, res, dtype=torch.float64)
    ys = torch.linspace(y0 - pad, y1 + pad, res, dtype=torch.float64)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    return pts, float((xs[1] - xs[0]) * (ys[1] - ys[0]))


def _fd_score(log_prob, pts, h: float = 1e-4):
    """Central finite differences of ``log_prob`` in float64: ``(N, 2)``."""
    cols = []
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = h
        cols.append((log_prob(pts + e).double() - log_prob(pts - e).double()) / (2 * h))
    return torch.stack(cols, 1)


def _quad_mean(log_prob, f, pts, area):
    w = log_prob(pts).double().exp() * area
    return float((w * f).sum() / w.sum())


def test_score_matching_constant_matches_quadrature():
    target = _target()
    r = lid.objective_gap(_model("score_matching"), target, N_CONST, make_generator(2))
    pts, area = _grid(target)
    score = _fd_score(target.log_prob, pts)
    fisher = _quad_mean(target.log_prob, (score**2).sum(-1), pts, area)  # ⟨‖∇log p‖²⟩_p
    assert 14.0 < fisher < 16.0  # below d/v = 16 of one mode of variance v = 1/8 (overlaps)
    assert r["constant"] == pytest.approx(fisher, rel=0.02)


@pytest.mark.parametrize("sigma", [0.1, 0.5, 2.0])
def test_dsm_constant_matches_quadrature(sigma):
    target = _target()
    r = lid.objective_gap(_model("ncsn"), target, N_CONST, make_generator(3), sigma)

    def lp(x):
        return target.log_prob_t(x, 1.0, sigma)

    pts, area = _grid(target, pad=3 * sigma + 1)
    esm = _quad_mean(lp, (_fd_score(lp, pts) ** 2).sum(-1), pts, area)
    expected = sigma**2 * esm - 2.0  # σ²(⟨‖∇log p_σ‖²⟩ − d/σ²), d = 2
    assert r["constant"] == pytest.approx(expected, abs=0.02 * (abs(expected) + 0.1))
    assert r["constant"] < 0  # Jensen


@pytest.mark.parametrize(("path", "tau"), [("ot", 0.3), ("ot", 0.7), ("vp", 0.5)])
def test_fm_constant_matches_quadrature(path, tau):
    target = _target()
    model = _model("flow_matching", path=path)
    r = lid.objective_gap(model, target, N_CONST, make_generator(4), tau)
    a, s, da, ds = (
        float(c) for c in model.path.coefficients(torch.tensor([tau], dtype=torch.float64))
    )

    def lp(x):
        return target.log_prob_t(x, a, s)

    pts, area = _grid(target, pad=1.0)
    score = _fd_score(lp, pts)
    x_mean = (pts + s * s * score) / a  # E[x | x̃] (Tweedie), from finite differences
    u = ds / s * pts + (da - ds * a / s) * x_mean  # the marginal velocity
    marginal = _quad_mean(lp, (u**2).sum(-1), pts, area)
    mean, cov = target.moments()
    ex2 = float(torch.trace(cov) + (mean**2).sum())  # E‖x‖² (exact for a mixture)
    conditional = da**2 * ex2 + ds**2 * 2.0  # E‖ȧ x + σ̇ ε‖², x ⟂ ε
    expected = marginal - conditional
    assert r["constant"] == pytest.approx(expected, abs=0.02 * (abs(expected) + 0.1))
    assert r["constant"] < 0


def test_bad_input_is_a_clear_error():
    target = _target()
    with pytest.raises(ValueError, match="n must be"):
        lid.objective_gap(_model("score_matching"), target, 1, make_generator(0))
    with pytest.raises(ValueError, match="σ"):
        lid.objective_gap(_model("ncsn"), target, 100, make_generator(0), -1.0)
    with pytest.raises(ValueError, match="τ"):
        lid.objective_gap(_model("flow_matching"), target, 100, make_generator(0), 1.5)
    with pytest.raises(ValueError, match="σ_τ"):  # the straight path has no noise at τ = 1
        lid.objective_gap(_model("flow_matching", path="straight"), target, 100,
                          make_generator(0), 1.0)  # fmt: skip
    with pytest.raises(ValueError, match="single-σ"):
        single = _model("ncsn", mode="single", sigma=0.3)
        lid.objective_gap(single, target, 100, make_generator(0), 0.5)
    with pytest.raises(ValueError, match="no objective identity"):
        lid.objective_gap(models.build("ddpm"), target, 100, make_generator(0))


def test_gap_curve_replays_training():
    target = _target()
    model = _model("flow_matching")
    curve = lid.gap_curve(model, target, lr=2e-3, steps=60, points=4, n=2000, level=0.5)
    assert curve.source == "replay" and curve.steps[0] == 0 and curve.steps[-1] == 60
    assert len(curve.steps) >= 4
    assert curve.trained[-1] < curve.trained[0]  # it trains
    assert np.ptp(curve.constant) == 0.0  # one fixed Monte-Carlo sample: one constant
    assert curve.max_residual < 0.1 * abs(curve.constant[0])
    # the model handed in is not touched (a copy trains)
    again = lid.objective_gap(model, target, 2000, make_generator(0), 0.5)
    assert again["trained"] == pytest.approx(curve.trained[0])


def test_trained_gap_curve_replays_the_run():
    """For a run with a batch ≤ CURVE_BATCH, no EMA and no learning-rate decay, the replay behind
    a page's curve IS the run: its last point is the run's model measured on the same sample, its
    first the run's seeded initial weights (a non-zero run seed and the run's data size)."""
    from genlib.runs import RunSpec, Trained, build_model
    from genlib.training import TrainResult, train

    spec = RunSpec.from_preset(
        "flow_matching", "8gaussians", seed=3, steps=40, batch_size=128, lr_decay=False, ema=0.0,
        data_size=30_000, model_overrides={"hidden": 32, "depth": 2},
    )  # fmt: skip
    target = spec.target.build()
    model = build_model(spec)
    train(model, target, spec.train, device=torch.device("cpu"))
    curve = lid.trained_gap_curve(Trained(spec, model, target, TrainResult()), steps=40)
    assert curve.source == "replay" and curve.steps[-1] == 40
    end = lid.objective_gap(model.eval(), target, lid.CURVE_N, make_generator(0))
    start = lid.objective_gap(build_model(spec).eval(), target, lid.CURVE_N, make_generator(0))
    assert curve.trained[0] == pytest.approx(start["trained"], rel=1e-6)
    assert curve.trained[-1] == pytest.approx(end["trained"], rel=1e-6)
    assert abs(curve.trained[-1] - curve.trained[0]) > 0.05 * abs(curve.trained[0])  # it trained


def test_live_frames_carry_the_gap():
    from genlib.lab.live import live_view

    target = _target()
    model = _model("ncsn")
    view = live_view("ncsn", model, target, make_generator(0), n=50)
    gap = view.extra["objective_gap"]
    assert set(lid.GAP_KEYS) <= set(gap)
    assert gap["level"] == pytest.approx(min(model.sigma_list, key=lambda s: abs(s - 0.5)))
    assert view.field is not None  # the field layer is still there

    class Frame:
        def __init__(self, step, view):
            self.step, self.view = step, view

    curve = lid.curve_from_frames([Frame(0, view), Frame(10, view)])
    assert curve is not None and curve.source == "live" and list(curve.steps) == [0, 10]
    assert lid.curve_from_frames([Frame(0, view)]) is None
    assert math.isfinite(curve.max_residual)
