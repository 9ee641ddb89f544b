"""The interface of a peer re-implementation."""

from __future__ import annotations

import abc

import torch
from torch import Tensor

__all__ = ["Peer"]


class Peer(abc.ABC):
    """One peer configuration trained on one target: its own data pipeline, network, optimiser."""

    #: a one-line statement of the configuration reproduced (printed with the table)
    config: str = ""

    @abc.abstractmethod
    def step(self) -> None:
        """One optimisation step on a mini-batch (drawn with the peer's own generator)."""

    @abc.abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` samples ``(n, 2)`` of the current model."""

    def log_prob(self, x: Tensor) -> Tensor:  # pragma: no cover - only where a density exists
        """Exact log q(x) ``(N,)``; ``NotImplementedError`` where the model has no density."""
        raise NotImplementedError
