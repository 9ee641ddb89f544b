"""Conditional flow matching as the torchcfm 2D tutorial configures it (atong01/conditional-flow-
matching, ``examples/2D_tutorials``; I-CFM of Tong et al. 2023), written from the paper:

- data: a fresh batch of 256 target points x₁ and 256 N(0, I) points x₀ every step;
- path: x_t = t x₁ + (1 − t) x₀ + σ ε with σ = 0.1, t ~ U[0, 1]; regression target u_t = x₁ − x₀;
- network v_θ(x, t): the tutorial's MLP — [x, t] (3) → 64 → 64 → 64 → 2 with SELU after each hidden
  layer, t fed in raw;
- Adam at torch's default lr 1e-3, no EMA, no schedule, no clipping;
- sampling: the ODE ẋ = v_θ(x, t) from t = 0 to 1; the tutorial solves it with torchdyn's dopri5 at
  atol = rtol = 1e-4 over a 100-point time grid. Here: fixed-step RK4 with 100 steps (GenLab's
  ``odeint``), whose error on these smooth fields is far below the metric's noise;
- density: exact, log q(x) = log N(x(0); 0, I) − ∫₀¹ ∇·v_θ dt along the reverse ODE (GenLab's
  ``ode_log_likelihood``, RK4, 100 steps, exact 2D divergence).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmarks.peers.base import Peer
from genlib.distributions.base import Target2D
from genlib.models.flow_matching import standard_normal_log_prob
from genlib.rng import rand, randn, seeded_init
from genlib.samplers.ode import ode_log_likelihood, odeint

__all__ = ["TorchCFMTutorial"]


def _mlp(width: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Linear(3, width),
        nn.SELU(),
        nn.Linear(width, width),
        nn.SELU(),
        nn.Linear(width, width),
        nn.SELU(),
        nn.Linear(width, 2),
    )


class TorchCFMTutorial(Peer):
    config = (
        "I-CFM, σ = 0.1, fresh batches of 256, MLP [x, t] → 64 → 64 → 64 → 2 (SELU), Adam lr 1e-3, "
        "no EMA; sampling: RK4, 100 steps (stand-in for the tutorial's dopri5 at 1e-4 tolerances)"
    )

    def __init__(
        self,
        target: Target2D,
        seed: int = 0,
        sigma: float = 0.1,
        batch_size: int = 256,
        lr: float = 1e-3,
        ode_steps: int = 100,
    ) -> None:
        self.target, self.sigma, self.batch_size, self.ode_steps = (
            target,
            sigma,
            batch_size,
            ode_steps,
        )
        self.g = torch.Generator().manual_seed(seed + 1)
        self.net = seeded_init(seed, _mlp)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)

    def velocity(self, x: Tensor, t: Tensor) -> Tensor:  # x (N, 2), t (N,) -> (N, 2)
        return self.net(torch.cat([x, t.reshape(-1, 1).to(x.dtype)], dim=-1))

    def step(self) -> None:
        b = self.batch_size
        x1 = self.target.sample(b, generator=self.g)  # (B, 2)
        x0 = randn(b, 2, generator=self.g)
        t = rand(b, generator=self.g)  # (B,)
        xt = t[:, None] * x1 + (1 - t[:, None]) * x0 + self.sigma * randn(b, 2, generator=self.g)
        loss = ((self.velocity(xt, t) - (x1 - x0)) ** 2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        x0 = randn(n, 2, generator=generator)
        return odeint(self.velocity, x0, 0.0, 1.0, steps=self.ode_steps, method="rk4")

    def log_prob(self, x: Tensor) -> Tensor:
        return ode_log_likelihood(
            self.velocity, x, 1.0, 0.0, standard_normal_log_prob, steps=self.ode_steps, method="rk4"
        )
