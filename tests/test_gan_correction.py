"""The GAN's density ratio in use (lecture 3-3, ``genlib.lab.gan``): discriminator rejection
sampling and the Metropolis–Hastings correction, checked with an exact log ratio between a known
proposal q = N(0, s² I) and a target p, and their acceptance formulas against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from genlib import distributions
from genlib.lab import gan as lg
from genlib.metrics import sliced_wasserstein

S = 2.5  # proposal q = N(0, S² I)


def _setup():
    target = distributions.build("8gaussians")

    def propose(n: int, g: torch.Generator) -> torch.Tensor:
        return S * torch.randn(n, 2, generator=g)

    def log_q(y: torch.Tensor) -> torch.Tensor:
        return -0.5 * (y.double() ** 2).sum(1) / S**2 - math.log(2 * math.pi * S**2)

    def log_ratio(y: torch.Tensor) -> torch.Tensor:  # the exact D* = log p/q
        return target.log_prob(y).double() - log_q(y)

    return target, propose, log_ratio


def test_exact_ratio_corrections_move_q_to_p():
    target, propose, log_ratio = _setup()
    g = torch.Generator().manual_seed(0)
    ref = target.sample(2000, generator=torch.Generator().manual_seed(1))
    rep = lg.correction_report(propose, log_ratio, ref, 2000, g, mh_steps=50)
    floor = sliced_wasserstein(
        target.sample(2000, generator=torch.Generator().manual_seed(2)), ref,
        generator=torch.Generator().manual_seed(3),
    )  # fmt: skip
    assert rep.sw["drs"] < 0.5 * rep.sw["before"]
    assert rep.sw["mh"] < 0.5 * rep.sw["before"]
    assert rep.sw["drs"] < 2.0 * floor and rep.sw["mh"] < 2.5 * floor
    assert rep.before.shape == rep.drs.shape == rep.mh.shape == (2000, 2)
    assert 0 < rep.drs_acceptance < 0.5 and 0 < rep.mh_acceptance < 1
    # exact rejection sampling accepts 1/M of the proposals, M = sup p/q ≈ e^{D_M}
    assert rep.drs_acceptance == pytest.approx(math.exp(-rep.log_m), rel=0.15)


def test_a_wrong_ratio_does_not_help():
    """The test can fail: with the ratio's sign flipped the corrected samples move away from p."""
    target, propose, log_ratio = _setup()
    ref = target.sample(2000, generator=torch.Generator().manual_seed(1))
    rep = lg.correction_report(
        propose, lambda y: -log_ratio(y), ref, 1000, torch.Generator().manual_seed(0), mh_steps=20
    )
    assert rep.sw["drs"] > rep.sw["before"] and rep.sw["mh"] > rep.sw["before"]


def test_mh_acceptance_by_hand():
    # ratios w = p/q at the current and proposed points; α = min(1, w'/w)
    w_cur = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    w_new = torch.tensor([2.0, 1.0, 0.5, 0.3], dtype=torch.float64)
    hand = torch.tensor([1.0, 0.5, 1.0, 0.1], dtype=torch.float64)
    got = lg.mh_acceptance(w_cur.log(), w_new.log())
    assert torch.allclose(got, hand, atol=1e-12)


def test_drs_acceptance_probability():
    d = torch.tensor([-3.0, -1.0, -0.1, 0.0, 0.5], dtype=torch.float64)
    p0 = lg.drs_accept_prob(d, log_m=0.0, gamma=0.0)
    # γ = 0: e^{d − D_M} (rejection sampling), d above D_M clipped to it
    hand = torch.tensor([math.exp(-3), math.exp(-1), math.exp(-0.1), 1.0, 1.0], dtype=torch.float64)
    assert torch.allclose(p0, hand, atol=1e-5)
    lo, hi = lg.drs_accept_prob(d, 0.0, gamma=1.0), lg.drs_accept_prob(d, 0.0, gamma=-1.0)
    assert (lo[:3] < p0[:3]).all() and (hi[:3] > p0[:3]).all()


def test_corrections_draw_only_from_the_generator():
    _, propose, log_ratio = _setup()
    state = torch.random.get_rng_state()
    a = lg.drs(propose, log_ratio, 300, torch.Generator().manual_seed(5))
    b = lg.drs(propose, log_ratio, 300, torch.Generator().manual_seed(5))
    c = lg.mh_correct(propose, log_ratio, 300, 10, torch.Generator().manual_seed(5))
    d = lg.mh_correct(propose, log_ratio, 300, 10, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and torch.equal(c[0], d[0])
    assert torch.equal(state, torch.random.get_rng_state())


def test_mh_acceptance_is_turners_formula_in_probabilities():
    """Turner et al. write α = min(1, (D(x_k)^{-1} − 1) / (D(x')^{-1} − 1)) with D = σ(logit) the
    discriminator's probability; with logits d it is min(1, e^{d' − d_k})."""
    g = torch.Generator().manual_seed(4)
    d_cur = 3 * torch.randn(200, generator=g, dtype=torch.float64)
    d_new = 3 * torch.randn(200, generator=g, dtype=torch.float64)
    p_cur, p_new = torch.sigmoid(d_cur), torch.sigmoid(d_new)
    turner = ((1 / p_cur - 1) / (1 / p_new - 1)).clamp(max=1.0)
    assert torch.allclose(lg.mh_acceptance(d_cur, d_new), turner, rtol=1e-9, atol=1e-12)


def test_drs_acceptance_is_azadis_formula():
    """σ(F) with F = D̃ − D̃_M − log(1 − e^{D̃ − D̃_M − ε}) − γ, by hand with math (ε = 1e-6)."""
    eps, log_m = 1e-6, 0.7
    for d, gamma in ((-2.0, 1.5), (-0.3, -1.0), (0.2, 0.5), (0.7, 0.0)):
        f = d - log_m - math.log(1 - math.exp(d - log_m - eps)) - gamma
        hand = 1 / (1 + math.exp(-f))
        got = float(lg.drs_accept_prob(torch.tensor([d], dtype=torch.float64), log_m, gamma, eps))
        assert got == pytest.approx(hand, rel=1e-9)
