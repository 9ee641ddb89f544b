"""The common model interface (DESIGN §3) and the model registry.

A family is one module in ``genlib/models/`` defining a ``GenerativeModel`` subclass registered by
``@register("name")``. Optional capabilities are ``runtime_checkable`` protocols, so the UI shows a
panel only when the model supports it (``isinstance(model, HasLogProb)``).

Conventions: points ``(N, 2)`` float32 on ``model.device``; ``Trajectory`` frames are always in
generation order (frame 0 = prior noise, last frame = data).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from genlib.registry import Registry
from genlib.trajectory import Trajectory  # re-exported: the one path type of every sampler

__all__ = [
    "GenerativeModel",
    "Trajectory",
    "MODELS",
    "register",
    "Preset",
    "HasLogProb",
    "HasEnergy",
    "HasElbo",
    "HasScore",
    "HasVelocity",
    "capabilities",
]

MODELS: Registry[GenerativeModel] = Registry("model")
register = MODELS.register


@dataclass(frozen=True)
class Preset:
    """A named recipe: model constructor kwargs + training overrides (``TrainConfig`` fields)."""

    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    description: str = ""


class GenerativeModel(nn.Module, abc.ABC):
    """Base class of every family.

    Subclasses implement ``loss`` and ``sample``; adversarial or sampling-based trainers (GAN,
    RBM) override ``configure_optimizers``/``train_step``. ``presets`` holds at least ``"fast"``
    (a CPU preset that trains in seconds) and ``"quality"``.
    """

    #: registry name, set by subclasses
    name: ClassVar[str] = "model"
    #: lecture section, e.g. "4-3"
    section: ClassVar[str] = ""
    presets: ClassVar[dict[str, Preset]] = {"fast": Preset(), "quality": Preset()}

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    @abc.abstractmethod
    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Training objective on a data batch ``(N, 2)``: a scalar to minimise. Families whose
        objective draws noise (time steps, ε, latents) draw it with ``generator``."""

    @abc.abstractmethod
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` model samples ``(n, 2)``."""

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=lr)]

    def train_step(
        self,
        x: Tensor,
        optimizers: list[torch.optim.Optimizer],
        step: int,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """One optimisation step; returns detached 0-dim tensors (no host sync here).
        The key ``"loss"`` is the one the loop checks for NaN and plots. All noise is drawn with
        ``generator`` (the training loop's own, so runs in parallel threads stay reproducible)."""
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        loss = self.loss(x, generator=generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip)
        opt.step()
        return {"loss": loss.detach()}

    grad_clip: float = 10.0

    def trajectory(
        self, n: int, num_frames: int = 60, *, generator: torch.Generator | None = None
    ) -> Trajectory:
        """Generation as an animation. Families with no generation path return one frame."""
        x = self.sample(n, generator=generator)
        return Trajectory(x.unsqueeze(0), torch.zeros(1), "step")

    def result_extras(self) -> dict[str, Any]:
        """What the run leaves besides the weights (tensors, numbers, lists), stored in
        ``TrainResult.extras`` and in the checkpoint (loaded with ``weights_only``); default none."""
        return {}

    def ema_parameters(self) -> list[nn.Parameter]:
        """The parameters an EMA (``TrainConfig.ema``) averages; default: all."""
        return list(self.parameters())


@runtime_checkable
class HasLogProb(Protocol):
    def log_prob(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class HasEnergy(Protocol):
    def energy(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class HasElbo(Protocol):
    def elbo(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class HasScore(Protocol):
    def score(self, x: Tensor, t: Tensor) -> Tensor: ...


@runtime_checkable
class HasVelocity(Protocol):
    def velocity(self, x: Tensor, t: Tensor) -> Tensor: ...


def capabilities(model: GenerativeModel) -> list[str]:
    """Names of the optional capabilities ``model`` supports."""
    caps = {
        "log_prob": HasLogProb,
        "energy": HasEnergy,
        "elbo": HasElbo,
        "score": HasScore,
        "velocity": HasVelocity,
    }
    return [k for k, proto in caps.items() if isinstance(model, proto)]
