"""``KLConfig``: one KL fit, frozen and validated (the page's cache key, the CLI's arguments).

Training hyper-parameters map onto the common loop's ``TrainConfig`` (``KLConfig.train_config``),
so a KL fit obeys the same limits as every model page. ``job_key`` names a fit's background job
(``genlib.jobs``) by content, so equal settings share one job and its result."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, get_args

import numpy as np

from genlib import distributions
from genlib.distributions.base import Target2D
from genlib.runs import Params, freeze
from genlib.training import MAX_DATA, TrainConfig

__all__ = [
    "QFamily",
    "Divergence",
    "OptimizerName",
    "FlowCoupling",
    "Q_NAMES",
    "DIVERGENCES",
    "OPTIMIZERS",
    "FLOW_COUPLINGS",
    "KLConfig",
    "JobKind",
    "job_key",
    "MAX_STEPS",
    "MAX_SAMPLES",
    "MAX_FRAMES",
    "MAX_GRID",
    "MAX_SHOW",
    "MAX_SEEDS",
    "MAX_COMPONENTS",
    "MAX_FLOW_LAYERS",
    "MAX_LR",
    "MAX_FORWARD_DATA",
]

QFamily = Literal["gaussian", "mixture", "flow"]
Divergence = Literal["forward", "reverse"]
OptimizerName = Literal["adam", "sgd"]
FlowCoupling = Literal["affine", "spline"]
JobKind = Literal["fit", "pair", "sweep"]
Q_NAMES: tuple[str, ...] = get_args(QFamily)
DIVERGENCES: tuple[str, ...] = get_args(Divergence)
OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
FLOW_COUPLINGS: tuple[str, ...] = get_args(FlowCoupling)

MAX_STEPS = 5000
MAX_SAMPLES = 4096
MAX_FRAMES = 200
MAX_GRID = 256
MAX_SHOW = 2000
MAX_SEEDS = 32
MAX_COMPONENTS = 8
MAX_FLOW_LAYERS = 8
MAX_LR = 1.0  # the common loop's bound (``TrainConfig.lr``)
#: the forward-KL training set: min(steps · n_samples, this) samples of p drawn once
MAX_FORWARD_DATA = min(250_000, MAX_DATA)


@dataclass(frozen=True)
class KLConfig:
    """One KL fit (frozen and hashable: the page's cache key). Bounds are checked on creation.

    ``n_samples`` is the forward-KL minibatch (samples of p) or the number of reverse-KL
    Monte-Carlo samples of q_θ per step. ``init_mean``/``init_scale`` fix the start
    q_θ = N(init_mean, init_scale² I) (the mixture jitters its component means around it by
    ``init_scale``/2, the flow starts as exactly that Gaussian)."""

    target: str = "two_peaks"
    target_params: Params = ()
    q: QFamily = "gaussian"
    divergence: Divergence = "reverse"
    steps: int = 800
    lr: float = 0.03
    optimizer: OptimizerName = "adam"
    n_samples: int = 256
    init_mean: tuple[float, float] = (0.0, 0.0)
    init_scale: float = 0.5
    seed: int = 0
    num_frames: int = 60
    components: int = 2
    flow_layers: int = 4
    flow_hidden: int = 32
    flow_coupling: FlowCoupling = "affine"
    grid_res: int = 160
    n_show: int = 400

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_params", freeze(self.target_params))
        object.__setattr__(self, "init_mean", tuple(float(v) for v in self.init_mean))
        _check_choice("q family", self.q, Q_NAMES)
        _check_choice("divergence", self.divergence, DIVERGENCES)
        _check_choice("flow_coupling", self.flow_coupling, FLOW_COUPLINGS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_int("steps", self.steps, 1, MAX_STEPS)
        _check_int("n_samples", self.n_samples, 2, MAX_SAMPLES)
        _check_int("num_frames", self.num_frames, 2, MAX_FRAMES)
        _check_int("components", self.components, 1, MAX_COMPONENTS)
        _check_int("flow_layers", self.flow_layers, 1, MAX_FLOW_LAYERS)
        _check_int("flow_hidden", self.flow_hidden, 4, 128)
        _check_int("grid_res", self.grid_res, 16, MAX_GRID)
        _check_int("n_show", self.n_show, 1, MAX_SHOW)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        if not (math.isfinite(self.lr) and 0.0 < self.lr <= MAX_LR):
            raise ValueError(f"lr must be in (0, {MAX_LR:g}], got {self.lr}")
        if len(self.init_mean) != 2 or not all(
            math.isfinite(v) and abs(v) <= 20 for v in self.init_mean
        ):
            raise ValueError("init_mean must be two numbers in [-20, 20]")
        if not (math.isfinite(self.init_scale) and 0.01 <= self.init_scale <= 10.0):
            raise ValueError(f"init_scale must be in [0.01, 10], got {self.init_scale}")

    def build_target(self) -> Target2D:
        """The target p; unknown names or bad parameters raise ``ValueError`` with a clear text."""
        if self.target not in distributions.names():
            raise ValueError(
                f"unknown target {self.target!r}; known: {', '.join(distributions.names())}"
            )
        try:
            return distributions.build(self.target, **dict(self.target_params))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad parameters for target {self.target!r}: {exc}") from None

    def train_config(self) -> TrainConfig:
        """The common loop's run: one step per ``train_step`` of q_θ, a minibatch of ``n_samples``
        (forward KL: samples of p from a training set drawn once; reverse KL: the batch only sets
        the number of samples of q_θ), logged every step (the recorded frames need the exact
        steps; a 2D fit is cheap, so the per-step host sync costs little)."""
        forward = self.divergence == "forward"
        data = min(self.steps * self.n_samples, MAX_FORWARD_DATA) if forward else self.n_samples
        return TrainConfig(
            steps=self.steps,
            batch_size=self.n_samples,
            lr=self.lr,
            seed=self.seed,
            data_size=data,
            log_every=1,
        )

    def with_(self, **changes: Any) -> KLConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_params"] = {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in self.target_params
        }
        d["init_mean"] = list(self.init_mean)
        return d


def job_key(cfg: KLConfig, kind: JobKind = "pair", seeds: int | None = None) -> str:
    """The job key of a KL computation: ``"kl:"`` + 24 hex digits of the SHA-256 of the canonical
    JSON (sorted keys, no spaces) of ``kind``, ``cfg.to_dict()`` (target name and parameters
    included) and ``seeds`` (a sweep's seed count). Equal settings give equal keys; a pair ignores
    ``cfg.divergence`` (it fits both directions)."""
    if kind not in get_args(JobKind):
        raise ValueError(f"unknown KL job kind {kind!r}")
    config = cfg.to_dict()
    if kind == "pair":
        config.pop("divergence")
    body = {"kind": kind, "config": config, "seeds": seeds}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "kl:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def _check_int(name: str, v: Any, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not (lo <= int(v) <= hi):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")


def _check_choice(name: str, v: Any, choices: tuple[str, ...]) -> None:
    if v not in choices:
        raise ValueError(f"unknown {name} {v!r}; choose one of {', '.join(choices)}")
