"""Runs: a frozen, hashable spec of (model, target, training) -> a trained model, cached on disk.

The same code path serves the pages (through ``genlib.ui``'s cached calls), the command line and the
benchmarks::

    spec = RunSpec.from_preset("ddpm", "moons", preset="fast", seed=0)
    trained = run(spec)             # loads assets/pretrained/<key>.pt or the cache when present
    metrics = evaluate(trained)     # sliced Wasserstein, MMD (+ floors), exact KL where defined
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genlib import distributions, limits, models
from genlib.checkpoints import (
    CheckpointError,
    cache_path,
    checkpoint_candidates,
    discard,
    file_identity,
    find_checkpoint,
    is_cache_file,
    load_checkpoint,
    pretrained_dir,
    save_checkpoint,
)
from genlib.device import get_device, make_generator
from genlib.distributions.base import Target2D
from genlib.metrics import exact_kl, mmd_rbf, noise_floor, sliced_wasserstein
from genlib.models.base import GenerativeModel, HasLogProb
from genlib.rng import seeded_init
from genlib.training import Control, OnStep, TrainConfig, TrainResult, train

__all__ = [
    "TargetSpec",
    "RunSpec",
    "Trained",
    "run",
    "cached_run",
    "prepare",
    "finish",
    "weights_finite",
    "samples_finite",
    "build_model",
    "evaluate",
    "freeze",
    "with_defaults",
    "load_trained",
    "trained_from_state",
    "result_meta",
    "EVAL_N",
    "cached_noise_floor",
]

Params = tuple[tuple[str, Any], ...]
#: samples per side of a page's evaluation (metrics panel, jobs, shipped metrics): enough for
#: SW and MMD against floors computed at the same size, and a 2-3 s budget for the slowest
#: samplers on one CPU thread
EVAL_N = 2000


def freeze(kw: dict[str, Any] | Params | None) -> Params:
    """A dict of keyword arguments as a sorted tuple of pairs (hashable; lists become tuples)."""
    if kw is None:
        return ()
    items = kw.items() if isinstance(kw, dict) else kw

    def fz(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return tuple(fz(e) for e in v)
        if isinstance(v, dict):
            return freeze(v)
        return v

    return tuple(sorted((str(k), fz(v)) for k, v in items))


def _thaw(v: Any) -> Any:
    return list(map(_thaw, v)) if isinstance(v, tuple) else v


@dataclass(frozen=True)
class TargetSpec:
    """A target by registry name and parameters. Parameters left out are filled in with the
    factory's defaults, so ``TargetSpec("two_peaks")`` and ``TargetSpec("two_peaks", (("distance",
    4.0),))`` are the same spec (and name the same checkpoint)."""

    name: str
    params: Params = ()

    def __post_init__(self) -> None:
        given = dict(self.params)
        if self.name in distributions.TARGETS:
            factory = distributions.TARGETS.get(self.name)
            limits.check_kwargs(factory, given, f"{self.name} target")
            given = with_defaults(factory, given)
        object.__setattr__(self, "params", freeze(given))

    def build(self) -> Target2D:
        return distributions.build(self.name, **dict(self.params))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": {k: _thaw(v) for k, v in self.params}}


def _check_train(cfg: TrainConfig) -> None:
    """The types of a training config (``TrainConfig`` checks the ranges): ``steps=1.5``,
    ``seed=2**70`` or ``lr_decay="yes"`` give one ``ValueError`` line."""
    if not isinstance(cfg, TrainConfig):
        raise ValueError("train must be a TrainConfig")
    for name in (
        "steps",
        "batch_size",
        "data_size",
        "log_every",
        "snapshot_every",
        "snapshot_size",
    ):
        if not isinstance(getattr(cfg, name), int) or isinstance(getattr(cfg, name), bool):
            raise ValueError(f"{name} must be an integer, got {getattr(cfg, name)!r}")
    limits.check_seed(cfg.seed)
    limits.check_float("lr", cfg.lr, 0.0, 1.0, open_lo=True)
    limits.check_float("ema", cfg.ema, 0.0, 1.0)
    limits.check_bool("lr_decay", cfg.lr_decay)


def with_defaults(factory: Any, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` keyword arguments completed with ``factory``'s defaults (a class or function),
    so that leaving a parameter out and passing its default name the same thing."""
    out = dict(given)
    for pname, par in inspect.signature(factory).parameters.items():
        if par.kind in (par.VAR_POSITIONAL, par.VAR_KEYWORD):
            continue
        if pname not in out and par.default is not inspect.Parameter.empty:
            out[pname] = par.default
    return out


@dataclass(frozen=True)
class RunSpec:
    """A model family, its constructor parameters, a target and a training config. Parameters
    left out are filled in with the constructor's defaults, so a page that names a default
    explicitly and a preset that leaves it out give the same spec, key and checkpoint."""

    model: str
    target: TargetSpec
    model_params: Params = ()
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.model in models.MODELS:
            cls = models.MODELS.get(self.model)
            limits.check_kwargs(cls, dict(self.model_params), self.model)
            full = with_defaults(cls, dict(self.model_params))
            for name, default in getattr(cls, "key_optional", {}).items():
                if full.get(name) == default:  # added later: at its default, keys stay as shipped
                    del full[name]
            object.__setattr__(self, "model_params", freeze(full))
        _check_train(self.train)

    @classmethod
    def from_preset(
        cls,
        model: str,
        target: str | TargetSpec,
        preset: str = "fast",
        seed: int = 0,
        target_params: dict[str, Any] | None = None,
        model_overrides: dict[str, Any] | None = None,
        **train_overrides: Any,
    ) -> RunSpec:
        p = models.preset(model, preset)
        tspec = (
            target if isinstance(target, TargetSpec) else TargetSpec(target, freeze(target_params))
        )
        try:
            cfg = TrainConfig().with_overrides(**{**p.train, "seed": seed, **train_overrides})
        except TypeError as exc:  # e.g. steps="abc": TrainConfig compares before it checks types
            raise ValueError(f"invalid training option: {exc}") from None
        return cls(model, tspec, freeze({**p.model, **(model_overrides or {})}), cfg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "target": self.target.to_dict(),
            "model_params": {k: _thaw(v) for k, v in self.model_params},
            "train": self.train.to_dict(),
        }

    def key(self) -> str:
        """Content address: sha256 of the canonical JSON of the spec (first 24 hex digits)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:24]


@dataclass
class Trained:
    spec: RunSpec
    model: GenerativeModel
    target: Target2D
    result: TrainResult
    source: str = "trained"  # "trained" | "cache" | "pretrained"
    #: ``evaluate(...)`` of this result when it was computed with it (by the job after training,
    #: or stored in the checkpoint), so a page shows metrics without recomputing them
    metrics: dict[str, float] | None = None


def build_model(spec: RunSpec) -> GenerativeModel:
    """The model of ``spec`` with its seeded initial weights (``rng.seeded_init``: the weight
    initialisation is part of the seeded run and independent of other threads)."""
    kw = {k: _thaw(v) for k, v in spec.model_params}
    return seeded_init(spec.train.seed, lambda: models.build(spec.model, **kw))


def result_meta(result: TrainResult) -> dict[str, Any]:
    return {
        "steps_done": result.steps_done,
        "status": result.status,
        "message": result.message,
        "seconds": result.seconds,
        "history": result.history,
        "snapshots": [(s, x) for s, x in result.snapshots],
        "extras": dict(result.extras),
        "saved_at": time.time(),
    }


def _result_from_meta(meta: Any) -> TrainResult:
    """The ``TrainResult`` stored with a checkpoint, validated: metadata of the wrong types
    (``steps_done="abc"``, a list for a dict, NaN seconds) makes the file corrupt, never a crash
    on a page."""
    try:
        if not isinstance(meta, dict):
            raise TypeError("metadata is not a mapping")
        steps = meta.get("steps_done", 0)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise TypeError("steps_done is not a non-negative integer")
        status = meta.get("status", "ok")
        if status not in ("ok", "stopped", "diverged"):
            raise TypeError("unknown status")
        seconds = float(meta.get("seconds", 0.0))
        if not math.isfinite(seconds) or seconds < 0:
            raise TypeError("seconds is not a finite duration")
        history = meta.get("history", [])
        if not isinstance(history, list) or not all(
            isinstance(r, dict) and all(isinstance(v, (int, float)) for v in r.values())
            for r in history
        ):
            raise TypeError("history is not a list of logged rows")
        snapshots = [(int(st), x) for st, x in meta.get("snapshots", [])]
        if not all(isinstance(x, torch.Tensor) and x.ndim == 2 for _, x in snapshots):
            raise TypeError("snapshots are not (step, (n, 2) tensor) pairs")
        extras = meta.get("extras", {}) or {}
        if not isinstance(extras, dict):
            raise TypeError("extras is not a mapping")
        return TrainResult(
            steps_done=steps,
            status=status,
            message=str(meta.get("message", ""))[:2000],
            history=[dict(r) for r in history],
            snapshots=snapshots,
            seconds=seconds,
            extras=dict(extras),
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"invalid checkpoint metadata: {exc}") from None


def trained_from_state(
    spec: RunSpec,
    state_dict: dict[str, torch.Tensor],
    meta: Any,
    source: str = "cache",
    device: torch.device | None = None,
    strict: bool = True,
) -> Trained:
    """Rebuild the model of ``spec`` from its weights and stored metadata, validated: weights
    that do not fit, metadata of the wrong types and (``strict``: a stored result) non-finite
    weights raise ``CheckpointError``."""
    model = build_model(spec)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint does not fit model {spec.model!r}: {exc}") from None
    if strict and not weights_finite(model):
        raise CheckpointError(f"checkpoint of {spec.model!r} holds non-finite weights")
    result = _result_from_meta(meta)
    model.to(device or get_device()).eval()
    metrics = meta.get("metrics")
    if not (
        isinstance(metrics, dict)
        and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            for k, v in metrics.items()
        )
    ):
        metrics = None
    return Trained(spec, model, spec.target.build(), result, source, metrics)


def load_trained(spec: RunSpec, path=None, device: torch.device | None = None) -> Trained:
    """Rebuild the model of ``spec`` from a checkpoint (raises CheckpointError if absent/invalid).
    A cache file must carry its checksum; one that fails any check is discarded (removed unless
    another process replaced it meanwhile), so the next run retrains it. Shipped presets are
    never removed."""
    if path is None:
        # the shipped preset first, then the cache: a damaged preset must not hide a good cache file
        paths = checkpoint_candidates(spec.key())
        if not paths:
            raise CheckpointError(f"no checkpoint for {spec.model} on {spec.target.name}")
        for candidate in paths[:-1]:
            try:
                return load_trained(spec, candidate, device)
            except CheckpointError:
                pass
        path = paths[-1]
    in_cache = is_cache_file(path)
    identity = file_identity(path)
    shipped = Path(path).parent.resolve() == pretrained_dir().resolve()
    try:
        ck = load_checkpoint(path, require_checksum=in_cache)
        meta = ck.get("meta", {})
        source = "pretrained" if shipped else "cache"
        return trained_from_state(spec, ck["state_dict"], meta, source, device)
    except CheckpointError:
        if in_cache:
            discard(path, identity)
        raise


def cached_run(spec: RunSpec) -> Trained | None:
    """The pretrained or cached result of ``spec`` if a valid checkpoint exists, else ``None``
    (a corrupt cache file is discarded: the caller retrains and writes a good one)."""
    if find_checkpoint(spec.key()) is None:
        return None
    try:
        return load_trained(spec)
    except CheckpointError:
        return None


def prepare(spec: RunSpec) -> tuple[GenerativeModel, Target2D]:
    """The seeded, untrained model of ``spec`` and its target (the first half of ``run``)."""
    return build_model(spec), spec.target.build()


def weights_finite(model: torch.nn.Module) -> bool:
    """Whether every parameter and buffer of ``model`` is finite (a result to keep)."""
    with torch.no_grad():
        return all(
            bool(torch.isfinite(t).all())
            for t in [*model.parameters(), *model.buffers()]
            if t.is_floating_point()
        )


def samples_finite(model: GenerativeModel, n: int = 256, seed: int = 0) -> bool:
    """Whether ``n`` samples of ``model`` are all finite (a weight-finite model can still blow up
    in its sampler, e.g. DDPM trained with lr = 1)."""
    with torch.no_grad():
        x = model.sample(n, generator=make_generator(seed + 991, model.device))
    return bool(torch.isfinite(x).all())


def finish(
    spec: RunSpec,
    model: GenerativeModel,
    target: Target2D,
    result: TrainResult,
    use_cache: bool = True,
    evaluate_n: int | None = None,
) -> Trained:
    """Wrap a finished training (the second half of ``run``): with ``evaluate_n`` its metrics are
    computed now (stored with it); a complete run with finite weights is written to the
    content-addressed cache (metrics included); stopped or diverged runs are returned only."""
    if result.status == "ok" and not weights_finite(model):
        result.status = "diverged"
        result.message = "the trained weights are not finite; the result is not cached"
    if result.status == "ok" and not samples_finite(model, seed=spec.train.seed):
        result.status = "diverged"
        result.message = "the trained model draws non-finite samples; the result is not cached"
    trained = Trained(spec, model, target, result)
    if evaluate_n:
        trained.metrics = evaluate(trained, n=evaluate_n)
    if use_cache and result.status == "ok":
        meta = result_meta(result)
        if trained.metrics is not None:
            meta["metrics"] = {"n_eval": float(evaluate_n or 0), **trained.metrics}
        try:
            save_checkpoint(cache_path(spec.key()), model.state_dict(), spec.to_dict(), meta)
        except OSError:
            pass  # a read-only cache directory must not break training
    return trained


def run(
    spec: RunSpec,
    on_step: OnStep | None = None,
    use_cache: bool = True,
    control: Control | None = None,
) -> Trained:
    """Train ``spec`` (or load it from the pretrained/cached checkpoint) and persist the result.
    Runs that the user stopped or that diverged are returned but not cached."""
    if use_cache:
        hit = cached_run(spec)
        if hit is not None:
            return hit
    model, target = prepare(spec)
    result = train(model, target, spec.train, on_step=on_step, control=control)
    return finish(spec, model, target, result, use_cache)


_FLOORS: OrderedDict[tuple[TargetSpec, int, str], float] = OrderedDict()
_FLOORS_LOCK = threading.Lock()
MAX_CACHED_FLOORS = 256


def cached_noise_floor(target: TargetSpec, n: int, metric: str) -> float:
    """``metrics.noise_floor`` of a target, computed once per process (bounded cache): the floor
    depends on the target and the sample size only, not on the model being evaluated."""
    key = (target, int(n), metric)
    with _FLOORS_LOCK:
        if key in _FLOORS:
            _FLOORS.move_to_end(key)
            return _FLOORS[key]
    value = noise_floor(target.build(), int(n), metric)
    with _FLOORS_LOCK:
        _FLOORS[key] = value
        while len(_FLOORS) > MAX_CACHED_FLOORS:
            _FLOORS.popitem(last=False)
    return value


def evaluate(
    trained: Trained, n: int = EVAL_N, seed: int = 0, with_kl: bool = True
) -> dict[str, float]:
    """Sample metrics (with their floors) and, where the model has a density, exact KL(p‖q)."""
    g = make_generator(seed)
    target = trained.target
    model = trained.model
    with torch.no_grad():
        # the model's noise must be independent of the reference sample's (seed + 1 vs seed)
        xs = (
            model.sample(n, generator=make_generator(seed + 1, model.device)).detach().cpu().float()
        )
    finite = torch.isfinite(xs).all(1)
    out: dict[str, float] = {"n": float(n), "non_finite": float((~finite).sum())}
    xs = xs[finite]
    ref = target.sample(n, generator=g)
    out["sliced_wasserstein"] = sliced_wasserstein(xs, ref, generator=g)
    out["sliced_wasserstein_floor"] = cached_noise_floor(
        trained.spec.target, n, "sliced_wasserstein"
    )
    out["mmd"] = mmd_rbf(xs, ref, generator=g)
    out["mmd_floor"] = cached_noise_floor(trained.spec.target, min(n, 2000), "mmd")
    if with_kl and isinstance(model, HasLogProb):
        dev = model.device

        def log_q(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return model.log_prob(x.to(dev)).detach().cpu()

        try:
            kl = exact_kl(target, log_q, n=min(n, 5000), generator=g)
            out.update({f"exact_{k}": v for k, v in kl.items()})
        except (NotImplementedError, RuntimeError):
            pass
    return {k: (v if math.isfinite(v) else float("inf")) for k, v in out.items()}
