"""Denoising score matching and NCSN (lecture 4-2; Vincent 2011, Song & Ermon 2019).

Noise the target, p_σ(x̃) = ∫ N(x̃; x, σ² I) p(x) dx, and regress the score of the KNOWN kernel:

    ⟨(s_θ(x̃) − ∇_x̃ log p_σ(x̃ | x))²⟩,   ∇_x̃ log N(x̃; x, σ² I) = −(x̃ − x) / σ²

- ``mode="single"``: one σ, an unconditional s_θ(x̃), plain Langevin sampling of p_σ.
- ``mode="multi"`` (NCSN): a geometric ladder σ_1 > … > σ_L, a noise-conditional s_θ(x̃, σ) and
  the weighted loss  mean over σ of  λ(σ) ‖s_θ(x̃, σ) + (x̃ − x)/σ²‖²  with λ(σ) = σ²;
  sampling by annealed Langevin dynamics (``genlib.samplers.annealed_langevin``).

The network outputs s_θ(x̃, σ) = f_θ(x̃, σ) / σ (Song & Ermon's NCSNv2 scaling), so with
x̃ = x + σ z the weighted loss is ‖f_θ + z‖²: every level has the same scale.

Level convention: the level is the noise scale σ; ``score(x, σ)`` ≈ ∇ log p_σ and
``marginal_at(σ) = (1, σ)`` (p_σ is the law of x₀ + σ ε). Page demos (plain vs annealed Langevin,
mixture weights, the ladder) live in ``genlib.lab.ncsn``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Literal

import torch
from torch import Tensor

from genlib.limits import check_model_size
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.nn import MLP, Activation, FastMLP, TimeMLP
from genlib.rng import randint, randn, randn_like
from genlib.samplers.langevin import annealed_langevin, langevin, record_every_for

__all__ = [
    "NCSN",
    "NCSNMode",
    "dsm_target",
    "dsm_loss",
    "geometric_ladder",
]

NCSNMode = Literal["single", "multi"]


def geometric_ladder(sigma_max: float, sigma_min: float, num_levels: int) -> Tensor:
    """σ_1 = sigma_max > … > σ_L = sigma_min, geometric, float64 ``(L,)``."""
    if not (0 < sigma_min < sigma_max):
        raise ValueError("need 0 < sigma_min < sigma_max")
    if not (1 <= num_levels <= 1000):
        raise ValueError("the number of noise levels must be in [1, 1000]")
    if num_levels == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    return torch.exp(
        torch.linspace(math.log(sigma_max), math.log(sigma_min), num_levels, dtype=torch.float64)
    )


def dsm_target(x_tilde: Tensor, x: Tensor, sigma: Tensor | float) -> Tensor:
    """∇_x̃ log N(x̃; x, σ² I) = −(x̃ − x)/σ²: ``(N, 2)`` (σ scalar or ``(N, 1)``)."""
    return -(x_tilde - x) / sigma**2


def dsm_loss(score: Tensor, x_tilde: Tensor, x: Tensor, sigma: Tensor | float) -> Tensor:
    """mean of λ(σ) ‖s − ∇ log p_σ(x̃|x)‖² with λ(σ) = σ² (σ scalar or ``(N, 1)``)."""
    per = ((score - dsm_target(x_tilde, x, sigma)) ** 2).sum(-1, keepdim=True)  # (N, 1)
    return (torch.as_tensor(sigma, dtype=score.dtype, device=score.device) ** 2 * per).mean()


@register("ncsn")
class NCSN(GenerativeModel):
    """Noise-conditional score network s_θ(x̃, σ) with denoising score matching."""

    name: ClassVar[str] = "ncsn"
    section: ClassVar[str] = "4-2"
    presets: ClassVar[dict[str, Preset]] = {
        "fast": Preset(
            model={"hidden": 64, "depth": 3, "num_levels": 10, "steps_per_level": 50},
            train={"steps": 4000, "batch_size": 1024, "lr": 2e-3, "ema": 0.995, "lr_decay": True},
            description="10 noise levels 10 → 0.05, 64-wide MLP, 4k steps; 50 Langevin steps per level",
        ),
        "quality": Preset(
            model={"hidden": 128, "depth": 3, "num_levels": 12, "steps_per_level": 200},
            train={"steps": 15000, "batch_size": 1024, "lr": 1e-3, "ema": 0.999, "lr_decay": True},
            description="12 noise levels 10 → 0.05, 128-wide MLP, 15k steps; 200 Langevin steps per level",
        ),
    }

    def __init__(
        self,
        mode: NCSNMode = "multi",
        hidden: int = 64,
        depth: int = 3,
        embed_dim: int = 32,
        activation: Activation = "silu",
        sigma_max: float = 10.0,
        sigma_min: float = 0.05,
        num_levels: int = 10,
        sigma: float = 0.3,
        steps_per_level: int = 100,
        step_ratio: float = 0.3,
        denoise: bool = True,
    ) -> None:
        super().__init__()
        check_model_size(hidden=hidden, depth=depth, embed_dim=embed_dim, num_levels=num_levels)
        if mode not in ("single", "multi"):
            raise ValueError("mode must be 'single' or 'multi'")
        if not (0 < sigma_min < sigma_max <= 100):
            raise ValueError("need 0 < sigma_min < sigma_max <= 100")
        if not (1 <= steps_per_level <= 10_000):
            raise ValueError("steps_per_level must be in [1, 10000]")
        if not (0 < step_ratio <= 1.0):
            raise ValueError("step_ratio (ε/σ_L²) must be in (0, 1]")
        if not (0 < sigma <= 100):
            raise ValueError("sigma must be in (0, 100]")
        self.mode = mode
        self.sigma_max, self.sigma_min = float(sigma_max), float(sigma_min)
        ladder = (
            geometric_ladder(sigma_max, sigma_min, num_levels)
            if mode == "multi"
            else torch.tensor([float(sigma)], dtype=torch.float64)
        )
        self.sigma_list: list[float] = ladder.tolist()  # σ_1 > … > σ_L
        self.register_buffer("sigmas", ladder.float(), persistent=False)  # (L,)
        self.steps_per_level = int(steps_per_level)
        self.step_ratio = float(step_ratio)
        self.denoise = bool(denoise)
        if mode == "multi":
            self.net: torch.nn.Module = TimeMLP(
                2,
                2,
                hidden=hidden,
                depth=depth,
                embed_dim=embed_dim,
                time_scale=1000.0,
                activation=activation,
            )
        else:
            self.net = MLP(2, 2, hidden=hidden, depth=depth, activation=activation)
        self._log_span = math.log(self.sigma_max / self.sigma_min)

    @property
    def eps(self) -> float:
        """Song & Ermon's ε: the step at the last level, ε = step_ratio · σ_L²."""
        return self.step_ratio * self.sigma_list[-1] ** 2

    @property
    def level_steps(self) -> list[float]:
        """The annealed Langevin step of each level, α_i = ε σ_i²/σ_L² (Song & Ermon)."""
        return [self.eps * (s / self.sigma_list[-1]) ** 2 for s in self.sigma_list]

    def _level_time(self, sigma: Tensor) -> Tensor:
        """log σ mapped to [0, 1] over the ladder (the network's noise input)."""
        return (torch.log(sigma) - math.log(self.sigma_min)) / self._log_span

    def score(self, x: Tensor, level: Tensor | float | None = None) -> Tensor:
        """s_θ(x, σ) ≈ ∇ log p_σ(x) ``(N, 2)``; ``level`` is the noise scale σ (a float or ``(N,)``;
        ``None``: σ_L; single mode: always its one σ)."""
        if self.mode == "single":
            return self.net(x) / self.sigma_list[0]
        if level is None or isinstance(level, (int, float)):  # a fill kernel: no host copy
            value = self.sigma_list[-1] if level is None else float(level)
            sig = torch.full((x.shape[0],), value, dtype=x.dtype, device=x.device)
        else:
            sig = torch.as_tensor(level).to(device=x.device, dtype=x.dtype)
            sig = sig.expand(x.shape[0]) if sig.ndim == 0 else sig.reshape(-1)
        return self.net(x, self._level_time(sig)) / sig[:, None]

    def marginal_at(self, level: float | None = None) -> tuple[float, float]:
        """(a, s) of p_σ = law of x₀ + σ ε: (1, σ) (``None``: σ_L; single mode: its one σ)."""
        if self.mode == "single" or level is None:
            return 1.0, self.sigma_list[-1]
        sigma = float(level)
        if not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"the NCSN level is a noise scale σ > 0, got {level!r}")
        return 1.0, sigma

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The σ²-weighted DSM loss with σ uniform on the ladder and ε drawn with ``generator``."""
        n = x.shape[0]
        idx = randint(0, len(self.sigma_list), (n,), generator=generator, device=x.device)
        sig = self.sigmas[idx][:, None]  # (N, 1)
        x_tilde = x + sig * randn_like(x, generator)
        return dsm_loss(self.score(x_tilde, sig[:, 0]), x_tilde, x, sig)

    # -- sampling ---------------------------------------------------------------------------
    def sampling_score(self, dtype: torch.dtype | None = None) -> Callable[..., Tensor]:
        """``score`` for the samplers, from the current weights: s(x, σ) with σ a float (``None``:
        σ_L), the noise level's time embedding folded into one first-layer bias per σ (computed
        once per level) and the network evaluated by ``FastMLP`` (hidden layers in ``dtype``,
        default ``sampling_dtype``). A ``score`` set on the instance is used as is."""
        if "score" in self.__dict__:
            return self.__dict__["score"]
        fast = FastMLP.for_sampling(self.net, self.device, dtype)
        if self.mode == "single":
            sigma0 = self.sigma_list[0]
            return lambda x, level=None: fast(x) / sigma0
        biases: dict[float, Tensor] = {}

        def score(x: Tensor, level: float | None = None) -> Tensor:
            sigma = self.sigma_list[-1] if level is None else float(level)
            if sigma not in biases:
                sig = torch.full((1,), sigma, dtype=x.dtype, device=x.device)
                with torch.no_grad():
                    biases[sigma] = self.net.first_layer_bias(self._level_time(sig))  # (1, H)
            return fast(x, biases[sigma]) / sigma

        return score

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Broad initial states on the model's device: N(0, σ_1² I) (multi) or
        N(0, sigma_max² I) (single)."""
        scale = self.sigma_list[0] if self.mode == "multi" else self.sigma_max
        return scale * randn(n, 2, generator=generator, device=self.device)

    def langevin_chains(
        self, x0: Tensor, num_frames: int = 60, generator: torch.Generator | None = None
    ) -> Trajectory:
        """The model's sampler from ``x0``: annealed Langevin (multi) or plain Langevin at σ
        (single, L·T steps of ε = step_ratio·σ²/2), then the Tweedie denoising step if enabled."""
        x0 = x0.to(self.device)
        score = self.sampling_score()
        if self.mode == "multi":
            return annealed_langevin(
                score,
                x0,
                self.sigma_list,
                self.eps,
                self.steps_per_level,
                generator=generator,
                num_frames=num_frames,
                denoise=self.denoise,
            )
        sigma = self.sigma_list[0]
        n_steps = self.steps_per_level * 10
        path = langevin(
            score,
            x0,
            0.5 * self.step_ratio * sigma**2,
            n_steps,
            generator=generator,
            record_every=record_every_for(n_steps, num_frames),
        )
        if not self.denoise:
            return path
        with torch.no_grad():
            last = path.xs[-1] + sigma**2 * score(path.xs[-1])
        return Trajectory(
            torch.cat([path.xs, last[None]]),
            torch.cat([path.ts, path.ts[-1:] + 1]),
            path.time_label,
        )

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        x0 = self.prior_sample(n, generator=generator)
        return self.langevin_chains(x0, num_frames=0, generator=generator).xs[-1]

    @torch.no_grad()
    def trajectory(
        self, n: int, num_frames: int = 60, *, generator: torch.Generator | None = None
    ) -> Trajectory:
        x0 = self.prior_sample(n, generator=generator)
        return self.langevin_chains(x0, num_frames=num_frames, generator=generator)
