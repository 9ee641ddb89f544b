"""One training loop for every family.

``train(model, target, cfg, on_step=...)`` draws a fixed data set of ``cfg.data_size`` target
samples (the "training data"), then runs ``cfg.steps`` calls of ``model.train_step`` on random
mini-batches. Losses stay on the device and are read back once per ``cfg.log_every`` steps (the
only host sync), when ``on_step(step, logs)`` is called; returning ``False`` stops the run.

A non-finite loss stops the run: the weights are restored to the last logged state whose loss was
finite and the result says so (``status == "diverged"``), so a page can show the last good model.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from genlib.device import configure_threads, get_device, make_generator
from genlib.distributions.base import Target2D

__all__ = [
    "TrainConfig",
    "TrainResult",
    "Control",
    "OnStep",
    "train",
    "MAX_STEPS",
    "MAX_BATCH",
    "MAX_DATA",
]

MAX_STEPS = 200_000
MAX_BATCH = 65_536
MAX_DATA = 1_000_000
MAX_SNAPSHOT = 20_000

Status = Literal["ok", "stopped", "diverged"]
OnStep = Callable[[int, dict[str, float]], "bool | None"]


class Control(Protocol):
    """Per-step control of a run (``genlib.jobs``): pause, single steps, slow motion, stop."""

    def before_step(self, step: int) -> bool: ...


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one run (hashable: part of the cache key)."""

    steps: int = 2000
    batch_size: int = 512
    lr: float = 1e-3
    seed: int = 0
    data_size: int = 50_000  # training samples drawn once from the target
    log_every: int = 50  # host sync + on_step interval
    snapshot_every: int = 0  # 0: no sample snapshots during training
    snapshot_size: int = 1000
    ema: float = 0.0  # EMA decay of the weights used at the end (0: off)
    lr_decay: bool = False  # cosine decay of the learning rate to 10%

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.steps <= MAX_STEPS, f"steps must be in [1, {MAX_STEPS}]"),
            (1 <= self.batch_size <= MAX_BATCH, f"batch_size must be in [1, {MAX_BATCH}]"),
            (0 < self.lr <= 1.0 and math.isfinite(self.lr), "lr must be in (0, 1]"),
            (1 <= self.data_size <= MAX_DATA, f"data_size must be in [1, {MAX_DATA}]"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.snapshot_every >= 0, "snapshot_every must be >= 0"),
            (
                1 <= self.snapshot_size <= MAX_SNAPSHOT,
                f"snapshot_size must be in [1, {MAX_SNAPSHOT}]",
            ),
            (0.0 <= self.ema < 1.0, "ema must be in [0, 1)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)

    def with_overrides(self, **kw: Any) -> TrainConfig:
        known = {f.name for f in fields(self)}
        unknown = set(kw) - known
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}")
        return replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What a run leaves besides the trained model (which is modified in place)."""

    steps_done: int = 0
    status: Status = "ok"
    message: str = ""
    history: list[dict[str, float]] = field(default_factory=list)  # one row per log: step + losses
    snapshots: list[tuple[int, Tensor]] = field(default_factory=list)  # (step, (n, 2) CPU samples)
    seconds: float = 0.0
    #: what a family reports about its run besides weights (``GenerativeModel.result_extras``,
    #: e.g. the RBM's negative-phase history); saved with the checkpoint
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def losses(self) -> list[float]:
        return [row["loss"] for row in self.history if "loss" in row]


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    if not cfg.lr_decay:
        return lambda step: 1.0
    return lambda step: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))


def train(
    model: torch.nn.Module,
    target: Target2D,
    cfg: TrainConfig = TrainConfig(),
    on_step: OnStep | None = None,
    device: torch.device | None = None,
    control: Control | None = None,
) -> TrainResult:
    """Train ``model`` (a ``GenerativeModel``) on samples of ``target``; see the module doc.
    ``control.before_step(step)`` (optional) runs before every step: it may block (pause,
    slow motion) and returns ``False`` to stop at once (the steps done so far are kept)."""
    configure_threads()
    device = device or get_device()
    model.to(device).train()
    if callable(getattr(model, "attach_target", None)):
        model.attach_target(target)  # models that need the target density (reverse-KL flow)
    g_cpu = make_generator(cfg.seed)
    data = target.sample(cfg.data_size, generator=g_cpu).to(device)  # (D, 2)
    g_dev = make_generator(cfg.seed + 1, device)  # mini-batch indices
    g_snap = make_generator(cfg.seed + 2, device)  # snapshots (so they never shift the batches)
    g_noise = make_generator(cfg.seed + 3, device)  # the objective's own noise (t, ε, latents)
    optimizers = model.configure_optimizers(cfg.lr)
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, _lr_lambda(cfg)) for o in optimizers]
    ema_params = model.ema_parameters() if cfg.ema > 0 else []
    ema_shadow = [p.detach().clone() for p in ema_params]

    result = TrainResult()
    last_good = copy.deepcopy(model.state_dict())
    last_good_ema = [t.clone() for t in ema_shadow]
    pending: list[dict[str, Tensor]] = []
    t0 = time.perf_counter()
    stopped_at = 0  # the step the control asked to stop before (0: never)
    for step in range(1, cfg.steps + 1):
        if control is not None and not control.before_step(step):
            stopped_at = step
            break
        idx = torch.randint(0, data.shape[0], (cfg.batch_size,), device=device, generator=g_dev)
        logs = model.train_step(data[idx], optimizers, step, generator=g_noise)
        for s in schedulers:
            s.step()
        if ema_params:
            decay = min(cfg.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                torch._foreach_lerp_(ema_shadow, [p.detach() for p in ema_params], 1 - decay)
        pending.append(logs)
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = _interval_row(step, pending)
            if not all(math.isfinite(v) for v in row.values()):
                model.load_state_dict(last_good)
                ema_shadow = last_good_ema
                result.status = "diverged"
                result.message = (
                    f"the loss became non-finite between steps {result.steps_done} and {step}; "
                    f"training stopped and the weights of step {result.steps_done} were kept "
                    "(try a smaller learning rate)"
                )
                break
            result.history.append(row)
            result.steps_done = step
            last_good = copy.deepcopy(model.state_dict())
            last_good_ema = [t.clone() for t in ema_shadow]
            if cfg.snapshot_every and (step % cfg.snapshot_every == 0 or step == cfg.steps):
                result.snapshots.append((step, _snapshot(model, cfg, g_snap)))
            if on_step is not None and on_step(step, row) is False:
                result.status = "stopped"
                result.message = f"stopped by the user at step {step}"
                break
    if stopped_at:
        done = stopped_at - 1
        if pending and done > result.steps_done:  # keep the steps since the last log
            row = _interval_row(done, pending)
            if all(math.isfinite(v) for v in row.values()):
                result.history.append(row)
                result.steps_done = done
            else:
                model.load_state_dict(last_good)
                ema_shadow = last_good_ema
        result.status = "stopped"
        result.message = f"stopped by the user at step {result.steps_done}"
    if ema_params and result.steps_done > 0:
        with torch.no_grad():
            for p, e in zip(ema_params, ema_shadow, strict=True):
                p.copy_(e)
    result.seconds = time.perf_counter() - t0
    extras = getattr(model, "result_extras", None)
    if callable(extras):
        result.extras = dict(extras())
    model.eval()
    return result


def _interval_row(step: int, pending: list[dict[str, Tensor]]) -> dict[str, float]:
    """The one host sync of a log interval: ``step`` and the mean of each logged value over
    ``pending`` (which is cleared)."""
    keys = list(pending[0])
    means = torch.stack([torch.stack([p[k].float() for p in pending]).mean() for k in keys])
    pending.clear()
    return {"step": float(step), **dict(zip(keys, means.tolist(), strict=True))}


def _snapshot(model: torch.nn.Module, cfg: TrainConfig, generator: torch.Generator) -> Tensor:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        x = model.sample(cfg.snapshot_size, generator=generator).detach().cpu()
    model.train(was_training)
    return x
