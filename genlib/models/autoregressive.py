"""Autoregressive model (lecture 2-4) for 2D points: q_θ(x¹, x²) = q_θ(x¹) · q_θ(x² | x¹).

Both factors are 1D mixtures of K Gaussians (mixture density networks):

- q_θ(x¹) = Σ_k π_k N(x¹; μ_k, s_k²) with free parameters (π, μ, s);
- q_θ(x² | x¹) = Σ_k π_k(x¹) N(x²; μ_k(x¹), s_k(x¹)²) with (π, μ, s)(x¹) given by an MLP of x¹.

Training is teacher forcing, i.e. KL(p‖q_θ) + S(p) = −Σ_t ⟨log q_θ(xᵗ | x¹…xᵗ⁻¹)⟩_p with the
conditioning taken from the data::

    loss = −(1/N) Σ_i [log q_θ(x¹_i) + log q_θ(x²_i | x¹_i)]

The density is exact (``log_prob``); sampling is sequential (x¹ first, then x² given it).

The page compares the two factors with the *true* p(x¹) and p(x² | x¹ = c) of the target
(``genlib.lab.autoregressive``).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlib import rng
from genlib.geometry import LOG_2PI
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.nn import MLP

__all__ = ["Autoregressive", "mixture_log_prob", "mixture_sample"]

MIN_STD = 1e-3
MAX_COMPONENTS = 64


def mixture_log_prob(y: Tensor, logits: Tensor, means: Tensor, stds: Tensor) -> Tensor:
    """log Σ_k π_k N(y; μ_k, s_k²) with π = softmax(logits): y (N,), params (N, K) or (K,) -> (N,)."""
    y = y.unsqueeze(-1)  # (N, 1)
    comp = -0.5 * ((y - means) / stds) ** 2 - torch.log(stds) - 0.5 * LOG_2PI  # (N, K)
    return torch.logsumexp(F.log_softmax(logits, -1) + comp, -1)


def mixture_sample(
    logits: Tensor, means: Tensor, stds: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """One draw per row of a 1D Gaussian mixture: params (N, K) -> (N,)."""
    gen_dev = generator.device if generator is not None else logits.device
    probs = torch.softmax(logits.float(), -1).to(gen_dev)
    k = torch.multinomial(probs, 1, generator=generator).to(logits.device)  # (N, 1)
    eps = rng.randn(logits.shape[0], generator=generator, device=logits.device)  # (N,)
    return means.gather(-1, k).squeeze(-1) + stds.gather(-1, k).squeeze(-1) * eps


@register("autoregressive")
class Autoregressive(GenerativeModel):
    """q_θ(x¹) · q_θ(x² | x¹) with K-component Gaussian mixtures; see the module doc."""

    name: ClassVar[str] = "autoregressive"
    section: ClassVar[str] = "2-4"
    presets: ClassVar[dict[str, Preset]] = {
        "fast": Preset(
            model={"components": 10, "hidden": 64, "depth": 3},
            train={"steps": 2000, "batch_size": 512, "lr": 3e-3, "lr_decay": True},
            description="10 mixture components, MLP 3×64, 2000 steps: seconds on a CPU",
        ),
        "quality": Preset(
            model={"components": 20, "hidden": 128, "depth": 3},
            train={"steps": 6000, "batch_size": 1024, "lr": 2e-3, "lr_decay": True},
            description="20 mixture components, MLP 3×128, 6000 steps",
        ),
    }

    def __init__(
        self,
        components: int = 10,
        hidden: int = 64,
        depth: int = 3,
        init_spread: float = 3.0,
        init_seed: int | None = None,
    ) -> None:
        super().__init__()
        k = int(components)
        if not 1 <= k <= MAX_COMPONENTS:
            raise ValueError(f"components must be in [1, {MAX_COMPONENTS}]")
        if not 1 <= int(hidden) <= 1024 or not 1 <= int(depth) <= 8:
            raise ValueError("hidden must be in [1, 1024] and depth in [1, 8]")
        self.components = k
        grid = torch.linspace(-init_spread, init_spread, k) if k > 1 else torch.zeros(1)
        raw_std0 = math.log(math.expm1(max(2 * init_spread / k, 0.1)))  # softplus⁻¹ of the spacing
        # q(x¹): free mixture parameters
        self.x1_logits = nn.Parameter(torch.zeros(k))
        self.x1_means = nn.Parameter(grid.clone())
        self.x1_raw_stds = nn.Parameter(torch.full((k,), raw_std0))

        # q(x² | x¹): an MLP of x¹ -> (logits, means, raw stds), started at the same spread
        # init from the global RNG (``runs.build_model`` seeds it under ``rng.seeded_init``), or
        # from ``init_seed`` for a model built outside a run
        def build() -> MLP:
            return MLP(1, 3 * k, hidden=hidden, depth=depth)

        self.net = build() if init_seed is None else rng.seeded_init(init_seed, build)
        with torch.no_grad():
            last = self.net.net[-1]
            last.weight.mul_(0.1)
            last.bias.zero_()
            last.bias[k : 2 * k] = grid
            last.bias[2 * k :] = raw_std0

    # -- the two factors ---------------------------------------------------------------------------

    def x1_params(self) -> tuple[Tensor, Tensor, Tensor]:
        """(logits, means, stds) of q(x¹), each (K,)."""
        return self.x1_logits, self.x1_means, F.softplus(self.x1_raw_stds) + MIN_STD

    def x2_params(self, x1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(logits, means, stds) of q(x² | x¹), each (N, K)."""
        out = self.net(x1.unsqueeze(-1))  # (N, 3K)
        k = self.components
        return out[:, :k], out[:, k : 2 * k], F.softplus(out[:, 2 * k :]) + MIN_STD

    def log_prob_x1(self, x1: Tensor) -> Tensor:
        """log q_θ(x¹): (N,) -> (N,)."""
        return mixture_log_prob(x1, *self.x1_params())

    def log_prob_x2_given_x1(self, x2: Tensor, x1: Tensor) -> Tensor:
        """log q_θ(x² | x¹): (N,), (N,) -> (N,)."""
        return mixture_log_prob(x2, *self.x2_params(x1))

    def log_prob(self, x: Tensor) -> Tensor:
        """log q_θ(x) = log q_θ(x¹) + log q_θ(x² | x¹): (N, 2) -> (N,)."""
        return self.log_prob_x1(x[:, 0]) + self.log_prob_x2_given_x1(x[:, 1], x[:, 0])

    # -- training (teacher forcing) ------------------------------------------------------------------

    def nll_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(−⟨log q(x¹)⟩, −⟨log q(x² | x¹)⟩) on a data batch, x¹ taken from the data."""
        return -self.log_prob_x1(x[:, 0]).mean(), -self.log_prob_x2_given_x1(
            x[:, 1], x[:, 0]
        ).mean()

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The teacher-forced NLL (deterministic: ``generator`` is not used)."""
        a, b = self.nll_terms(x)
        return a + b

    def train_step(
        self,
        x: Tensor,
        optimizers: list[torch.optim.Optimizer],
        step: int,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        nll1, nll2 = self.nll_terms(x)
        loss = nll1 + nll2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip)
        opt.step()
        return {"loss": loss.detach(), "nll_x1": nll1.detach(), "nll_x2_given_x1": nll2.detach()}

    # -- sequential sampling ---------------------------------------------------------------------

    def sample_x1(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """x¹ ~ q_θ(x¹): (n,)."""
        logits, means, stds = self.x1_params()
        return mixture_sample(
            logits.expand(n, -1), means.expand(n, -1), stds.expand(n, -1), generator
        )

    def sample_x2(self, x1: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """x² ~ q_θ(x² | x¹) for each given x¹: (n,) -> (n,)."""
        return mixture_sample(*self.x2_params(x1), generator)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            x1 = self.sample_x1(n, generator=generator)
            x2 = self.sample_x2(x1, generator=generator)
        return torch.stack([x1, x2], 1)

    def trajectory(
        self, n: int, num_frames: int = 60, *, generator: torch.Generator | None = None
    ) -> Trajectory:
        """Sequential sampling as an animation: ts ∈ [0, 2]; from the origin, x¹ slides to its draw
        (ts 0→1, x² still 0), then x² slides to its draw given x¹ (ts 1→2)."""
        x = self.sample(n, generator=generator)  # (n, 2)
        half = max(1, (max(num_frames, 3) - 1) // 2)
        frames, ts = [torch.zeros_like(x)], [0.0]
        for j in range(1, half + 1):
            a = j / half
            frames.append(torch.stack([a * x[:, 0], torch.zeros_like(x[:, 1])], 1))
            ts.append(a)
        for j in range(1, half + 1):
            a = j / half
            frames.append(torch.stack([x[:, 0], a * x[:, 1]], 1))
            ts.append(1 + a)
        return Trajectory(torch.stack(frames), torch.tensor(ts), "autoregressive step")
