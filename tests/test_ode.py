"""Oracle tests of the fixed-step ODE integrators and the exact ODE log-likelihood
(genlib.samplers.ode) against closed forms and autograd Jacobians."""

from __future__ import annotations

import math

import pytest
import torch

from genlib.samplers.ode import (
    divergence,
    ode_log_likelihood,
    odeint,
    velocity_and_divergence,
)
from genlib.trajectory import Trajectory

A = torch.tensor([[-0.5, 1.2], [-0.8, 0.3]], dtype=torch.float64)


def linear_v(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """ẋ = (1 + t) A x: solution x(t) = expm(A (t + t²/2)) x(0)."""
    return (1 + t)[:, None] * (x @ A.T)


def linear_exact(x0: torch.Tensor, t0: float, t1: float) -> torch.Tensor:
    c = (t1 + t1**2 / 2) - (t0 + t0**2 / 2)
    return x0 @ torch.linalg.matrix_exp(A * c).T


@pytest.mark.parametrize(("method", "order"), [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_convergence_order(method, order):
    x0 = torch.tensor([[1.0, -0.5], [0.3, 2.0]], dtype=torch.float64)
    exact = linear_exact(x0, 0.0, 1.0)
    errs = [
        float((odeint(linear_v, x0, 0.0, 1.0, n, method) - exact).abs().max()) for n in (20, 40)
    ]
    rate = math.log2(errs[0] / errs[1])
    assert abs(rate - order) < 0.3, (method, errs, rate)


def test_backwards_integration_inverts_forwards():
    x0 = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x1 = odeint(linear_v, x0, 0.0, 1.0, 200, "rk4")
    back = odeint(linear_v, x1, 1.0, 0.0, 200, "rk4")
    assert torch.allclose(back, x0, atol=1e-8)
    assert torch.allclose(x1, linear_exact(x0, 0.0, 1.0), atol=1e-8)


def test_frames_cover_both_ends():
    x0 = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    path = odeint(linear_v, x0, 0.0, 1.0, 30, "heun", num_frames=11)
    assert isinstance(path, Trajectory) and path.time_label == "t"
    assert path.xs.shape == (11, 7, 2) and path.ts.shape == (11,)
    assert torch.equal(path.xs[0], x0)
    assert torch.allclose(path.xs[-1], odeint(linear_v, x0, 0.0, 1.0, 30, "heun"))
    assert float(path.ts[0]) == 0.0 and abs(float(path.ts[-1]) - 1.0) < 1e-12


def test_bad_arguments():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError):
        odeint(linear_v, x, 0.0, 1.0, 10, "midpoint")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        odeint(linear_v, x, 0.0, 1.0, 0)


def test_divergence_is_trace_of_autograd_jacobian():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)
    ).double()

    def v(x, t):
        return net(torch.cat([x, t[:, None]], 1)) * (1 + x.sum(1, keepdim=True) ** 2)

    x = torch.randn(6, 2, dtype=torch.float64)
    t = torch.rand(6, dtype=torch.float64)
    vel, div = velocity_and_divergence(v, x, t)
    assert torch.allclose(vel, v(x, t))
    for i in range(6):
        ti = t[i : i + 1]
        jac = torch.autograd.functional.jacobian(lambda y, ti=ti: v(y[None], ti)[0], x[i])
        assert abs(float(torch.trace(jac)) - float(div[i])) < 1e-10
    assert torch.allclose(divergence(v, x, t), div)


def test_log_likelihood_of_linear_flow_is_exact():
    """For ẋ = (1+t) A x the map x(0) -> x(1) is linear, so log p_0(x) = log p_1(M x) + log|det M|,
    det M = exp(tr A · 1.5)."""

    def prior(z):
        return -math.log(2 * math.pi) - 0.5 * (z**2).sum(-1)

    x = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    M = torch.linalg.matrix_exp(A * 1.5)
    exact = prior(x @ M.T) + 1.5 * float(torch.trace(A))
    got = ode_log_likelihood(linear_v, x, 0.0, 1.0, prior, steps=50, method="rk4", chunk=7)
    assert got.shape == (20,)
    assert torch.allclose(got, exact, atol=1e-8)
    # integrating "backwards" (data end at t = 1, prior at t = 0) flips the sign of the integral
    Minv = torch.linalg.inv(M)
    exact_b = prior(x @ Minv.T) - 1.5 * float(torch.trace(A))
    got_b = ode_log_likelihood(linear_v, x, 1.0, 0.0, prior, steps=50, method="heun")
    assert torch.allclose(got_b, exact_b, atol=2e-3)  # Heun: O(h²)
