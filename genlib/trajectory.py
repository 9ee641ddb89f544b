"""The one record of a generation path, shared by every sampler and every model family.

``Trajectory`` is always stored in **generation order**: frame 0 is the prior noise (or the
sampler's initial state), the last frame is the data end, whatever the family's native time
direction (DDPM counts t = T → 0, the score SDE t = 1 → ε, flow matching τ = 0 → 1, Langevin
counts steps up). ``ts`` holds each frame's time in the family's own convention, named by
``time_label`` (``"t"``, ``"σ"``, ``"τ"``, ``"Langevin step"``, ...).

Forward (noising) simulations are not generation paths: they return plain ``(frames, ts)``
tuples in forward order (``genlib.processes.forward``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["Trajectory"]


@dataclass(frozen=True)
class Trajectory:
    """Particles in generation order.

    - ``xs (F, N, 2)``: the particles at each recorded frame;
    - ``ts (F,)``: the time of each frame in the family's convention (``time_label``);
    - ``x0_preds (F, N, 2)``: optional per-frame data predictions (DDPM's x̂₀);
    - ``log_density (F, N)``: optional log-density of each particle under the model's marginal
      at that frame (flows and ODE samplers that integrate it along the path).
    """

    xs: Tensor
    ts: Tensor
    time_label: str = "step"
    x0_preds: Tensor | None = None
    log_density: Tensor | None = None

    def __post_init__(self) -> None:
        if self.xs.ndim != 3 or self.xs.shape[-1] != 2:
            raise ValueError(f"Trajectory.xs must be (F, N, 2), got {tuple(self.xs.shape)}")
        if self.ts.ndim != 1 or self.ts.shape[0] != self.xs.shape[0]:
            raise ValueError("Trajectory.ts must be (F,): one time per frame")
        for name, extra, shape in (
            ("x0_preds", self.x0_preds, tuple(self.xs.shape)),
            ("log_density", self.log_density, tuple(self.xs.shape[:2])),
        ):
            if extra is not None and tuple(extra.shape) != shape:
                raise ValueError(f"Trajectory.{name} must be {shape}, got {tuple(extra.shape)}")

    @property
    def num_frames(self) -> int:
        return int(self.xs.shape[0])

    @property
    def samples(self) -> Tensor:
        """The data end: the last frame ``(N, 2)``."""
        return self.xs[-1]

    def cpu(self) -> Trajectory:
        """A detached CPU copy (for caches and figures)."""

        def host(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.detach().cpu()

        return Trajectory(
            self.xs.detach().cpu(),
            self.ts.detach().cpu(),
            self.time_label,
            host(self.x0_preds),
            host(self.log_density),
        )
