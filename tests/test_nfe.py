"""Samplers vs NFE with the exact score (genlib.samplers.ddim, genlib.samplers.dpm_solver,
genlib.lab.nfe): on a Gaussian target the PF-ODE flow is known in closed form, so the global error
of each deterministic sampler is measured exactly and its order is the slope of a log-log fit
(Euler 1, Heun 2, RK4 4, DDIM 1, DPM-Solver-2 2); DDIM with the exact score at large NFE samples the
target; DDIM with η = 1 and every step is DDPM's ancestral sampler with σ_t² = β̃_t; the lab
counts NFE and skips what does not apply."""

from __future__ import annotations

import math

import pytest
import torch

from genlib.device import make_generator
from genlib.distributions import TARGETS
from genlib.distributions.base import GaussianMixture
from genlib.lab.nfe import (
    ddpm_nfe_study,
    exact_eps_fn,
    sde_nfe_study,
    steps_for,
)
from genlib.metrics import noise_floor, sliced_wasserstein
from genlib.processes.ddpm import DDPMSchedule
from genlib.processes.sde import VESDE, VPSDE
from genlib.samplers.ancestral import ddpm_ancestral
from genlib.samplers.ddim import ddim_timesteps, ddpm_ddim, vp_ddim
from genlib.samplers.dpm_solver import (
    ddpm_dpm_solver_2,
    vp_dpm_solver_2,
    vp_half_log_snr,
    vp_time_of_half_log_snr,
)
from genlib.samplers.sde import marginal_score_fn, pf_ode_sample

M, C = (1.0, -0.5), 0.3


def _gauss() -> GaussianMixture:
    return GaussianMixture(torch.tensor([M], dtype=torch.float64), C)


def _exact_flow(sde: VPSDE, x1: torch.Tensor, t_end: float) -> torch.Tensor:
    """The PF-ODE of N(m, c² I) under VP is linear: x(t) = a(t) m + r(t)/r(1) (x(1) − a(1) m),
    r(t)² = a(t)² c² + s(t)²."""
    m = torch.tensor(M, dtype=torch.float64)

    def ar(t: float) -> tuple[float, float]:
        a, s = sde.marginal(torch.tensor([t], dtype=torch.float64))
        return float(a[0]), math.sqrt(float(a[0]) ** 2 * C * C + float(s[0]) ** 2)

    (a1, r1), (ae, re) = ar(1.0), ar(t_end)
    return ae * m + re / r1 * (x1 - a1 * m)


def _slope(nfe: list[int], err: list[float]) -> float:
    x = torch.tensor(nfe, dtype=torch.float64).log()
    y = torch.tensor(err, dtype=torch.float64).log()
    xc = x - x.mean()
    return float(-(xc * (y - y.mean())).sum() / (xc * xc).sum())


SOLVERS = {
    "euler": (1, lambda sde, s, x, k: pf_ode_sample(sde, s, x, k, "euler"), (0.8, 1.2)),
    "heun": (2, lambda sde, s, x, k: pf_ode_sample(sde, s, x, k, "heun"), (1.7, 2.3)),
    "rk4": (4, lambda sde, s, x, k: pf_ode_sample(sde, s, x, k, "rk4"), (3.4, 4.8)),
    "ddim": (1, lambda sde, s, x, k: vp_ddim(sde, s, x, k), (0.8, 1.2)),
    "dpm2": (2, lambda sde, s, x, k: vp_dpm_solver_2(sde, s, x, k), (1.7, 2.3)),
}


@pytest.mark.parametrize("name", list(SOLVERS))
def test_order_of_convergence_with_the_exact_score(name):
    per_step, solve, (lo, hi) = SOLVERS[name]
    sde = VPSDE()
    score = marginal_score_fn(_gauss(), sde)
    x1 = torch.randn(200, 2, generator=make_generator(0), dtype=torch.float64)
    exact = _exact_flow(sde, x1, sde.eps)
    nfes = [16, 32, 64, 128] if name != "rk4" else [32, 64, 128, 256]
    errs = []
    for nfe in nfes:
        x = solve(sde, score, x1, nfe // per_step)
        errs.append(float((x - exact).norm(dim=1).mean()))
    assert all(a > b for a, b in zip(errs, errs[1:], strict=False)), errs  # decreasing
    assert lo <= _slope(nfes, errs) <= hi, (name, errs, _slope(nfes, errs))
    # and the order of the last halving alone (a fit can be dragged into range by one huge first
    # error; e.g. a sign error in DPM-Solver-2's intermediate point passed the fit, not this)
    last = math.log2(errs[-2] / errs[-1])
    assert lo <= last <= hi, (name, errs, last)


def test_half_log_snr_inverse():
    sde = VPSDE()
    t = torch.linspace(1e-3, 1.0, 50, dtype=torch.float64)
    assert torch.allclose(vp_time_of_half_log_snr(sde, vp_half_log_snr(sde, t)), t, atol=1e-10)


def test_ddim_at_large_nfe_samples_the_target():
    """Gaussian target: the moments of DDIM's samples (exact score, 500 steps) are the target's;
    a mixture: the sliced W₂ to target samples is at the two-sample noise floor."""
    sde = VPSDE()
    g = _gauss()
    x1 = torch.randn(20_000, 2, generator=make_generator(1), dtype=torch.float64)
    x = vp_ddim(sde, marginal_score_fn(g, sde), x1, 500)
    assert torch.allclose(x.mean(0), torch.tensor(M, dtype=torch.float64), atol=0.01)
    assert torch.allclose(x.std(0), torch.full((2,), C, dtype=torch.float64), atol=0.01)
    assert float((x - _exact_flow(sde, x1, sde.eps)).norm(dim=1).mean()) < 5e-3  # O(1/NFE)
    mix = TARGETS.build("8gaussians")
    x1 = torch.randn(2000, 2, generator=make_generator(2))
    y = vp_ddim(sde, marginal_score_fn(mix, sde), x1, 300)
    ref = mix.sample(2000, generator=make_generator(3))
    sw = sliced_wasserstein(y, ref, generator=make_generator(4))
    assert sw < 1.6 * noise_floor(mix, 2000)


def test_ddim_on_a_ddpm_schedule_with_the_exact_eps():
    sched = DDPMSchedule("linear", 1000)
    g = _gauss()
    eps = exact_eps_fn(g, sched)
    x_T = torch.randn(20_000, 2, generator=make_generator(5), dtype=torch.float64)
    for x in (ddpm_ddim(eps, sched, x_T, 1000), ddpm_dpm_solver_2(eps, sched, x_T, 100)):
        assert torch.allclose(x.mean(0), torch.tensor(M, dtype=torch.float64), atol=0.01)
        assert torch.allclose(x.std(0), torch.full((2,), C, dtype=torch.float64), atol=0.015)


def test_ddim_with_eta_one_at_every_step_is_ancestral_with_beta_tilde():
    sched = DDPMSchedule("linear", 40)
    eps = exact_eps_fn(TARGETS.build("8gaussians"), sched)
    x_T = torch.randn(300, 2, generator=make_generator(0))
    a = ddpm_ancestral(eps, sched, x_T, make_generator(7), 2, "beta_tilde").xs[-1]
    b = ddpm_ddim(eps, sched, x_T, 40, 1.0, make_generator(7))
    assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()


def test_timesteps_are_distinct_and_descending():
    for T, k in [(10, 10), (200, 7), (1000, 999), (5, 1)]:
        ts = ddim_timesteps(T, k)
        assert len(ts) == k and ts[0] == T and ts[-1] >= 1
        assert all(a > b for a, b in zip(ts, ts[1:], strict=False))
    with pytest.raises(ValueError):
        ddim_timesteps(10, 11)


def test_lab_counts_nfe_and_skips_what_does_not_apply():
    target = TARGETS.build("8gaussians")
    vp = VPSDE()
    study = sde_nfe_study(vp, marginal_score_fn(target, vp), target, 64, (4, 8), seed=0)
    assert {c.sampler for c in study.curves} == {
        "ancestral", "em", "pc", "euler", "heun", "rk4", "ddim", "dpm2",
    }  # fmt: skip
    for c in study.curves:
        assert c.nfe == (4, 8), (c.sampler, c.nfe)  # counted evaluations
        assert all(math.isfinite(e) and e > 0 for e in c.error)
    assert study.floor > 0
    path = sde_nfe_study(vp, marginal_score_fn(target, vp), target, 64, (8, 32), metric="path")
    assert set(path.skipped) == {"ancestral", "em", "pc"}
    for c in path.curves:
        assert c.error[1] < c.error[0], c  # the discretisation error shrinks
    ve = VESDE()
    study = sde_nfe_study(ve, marginal_score_fn(target, ve), target, 32, (4,))
    assert set(study.skipped) == {"ancestral", "ddim", "dpm2"}
    assert steps_for("rk4", 4) == 1 and steps_for("pc", 9) == 4
    with pytest.raises(ValueError, match="unknown sampler"):
        steps_for("leapfrog", 4)
    with pytest.raises(ValueError, match="points"):
        sde_nfe_study(vp, marginal_score_fn(target, vp), target, 1, (4,))


def test_ddpm_study_with_the_exact_eps():
    target = TARGETS.build("8gaussians")
    sched = DDPMSchedule("linear", 50)
    study = ddpm_nfe_study(exact_eps_fn(target, sched), sched, target, 300, (5, 50), seed=0)
    assert [c.sampler for c in study.curves] == ["ancestral", "ddim", "dpm2"]
    anc = study.curve("ancestral")
    assert anc.nfe == (5, 50) and anc.error[1] < anc.error[0]
    assert study.curve("dpm2").nfe[-1] <= 50
