"""``python -m genlib``: headless use for scripts, slides, benchmarks and servers.

    python -m genlib targets
    python -m genlib models
    python -m genlib sample-target moons -n 10000 --seed 0 --out moons.npy
    python -m genlib train ddpm moons --preset fast --seed 0 --out runs/ddpm-moons
    python -m genlib kl two_peaks --q gaussian --divergence reverse --steps 500 --out runs/kl

Every subcommand lives here (the library modules have no command-line code). Exit codes: 0 ok,
2 bad arguments, 3 the run diverged or failed. Progress goes to stderr, one JSON summary line
to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "COMMANDS"]

MAX_SAMPLES = 1_000_000


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with a one-line message, no traceback
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def _kv(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        return k, json.loads(v)
    except json.JSONDecodeError:
        return k, v


def _add_train(sub: Any) -> None:
    t = sub.add_parser(
        "train", help="train a model on a target; write checkpoint, samples, metrics"
    )
    t.add_argument("model")
    t.add_argument("target")
    t.add_argument("--preset", default="fast")
    t.add_argument("--steps", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--param", type=_kv, action="append", default=[], help="model parameter KEY=VALUE"
    )
    t.add_argument(
        "--target-param", type=_kv, action="append", default=[], help="target parameter KEY=VALUE"
    )
    t.add_argument("-n", "--num-samples", type=int, default=10_000)
    t.add_argument(
        "--no-cache", action="store_true", help="always train (ignore cached checkpoints)"
    )
    t.add_argument("--out", required=True)


def _add_kl(sub: Any) -> None:
    from genlib.kl import DIVERGENCES, OPTIMIZERS, Q_NAMES, KLConfig

    d = KLConfig()
    p = sub.add_parser(
        "kl", help="fit a Gaussian / mixture / flow q to a target by forward or reverse KL"
    )
    p.add_argument("target", help="registered target name (two_peaks, 8gaussians, banana, ...)")
    p.add_argument("--q", default=d.q, help=f"q family: {' | '.join(Q_NAMES)}")
    p.add_argument(
        "--divergence",
        default=d.divergence,
        help=f"{' | '.join(DIVERGENCES)}: forward = KL(p‖q), reverse = KL(q‖p)",
    )
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--optimizer", default=d.optimizer, help=" | ".join(OPTIMIZERS))
    p.add_argument(
        "--n-samples",
        type=int,
        default=d.n_samples,
        help="minibatch / Monte-Carlo samples per step",
    )
    p.add_argument(
        "--init-mean", type=float, nargs=2, default=list(d.init_mean), metavar=("X", "Y")
    )
    p.add_argument("--init-scale", type=float, default=d.init_scale)
    p.add_argument("--components", type=int, default=d.components, help="mixture components")
    p.add_argument("--frames", type=int, default=d.num_frames, help="recorded frames")
    p.add_argument("--grid-res", type=int, default=d.grid_res)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--target-param", type=_kv, action="append", default=[], help="target parameter KEY=VALUE"
    )
    p.add_argument("--out", required=True, help="output folder (result.json)")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m genlib", description="GenLab headless commands")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    sub.add_parser("targets", help="list the registered 2D targets")
    sub.add_parser("models", help="list the registered model families and their presets")
    s = sub.add_parser("sample-target", help="draw samples of a target into a .npy file")
    s.add_argument("target")
    s.add_argument("-n", type=int, default=10_000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--param", type=_kv, action="append", default=[], help="target parameter KEY=VALUE"
    )
    s.add_argument("--out", required=True)
    _add_train(sub)
    _add_kl(sub)
    return p


def _fail(msg: str, code: int = 2) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def _progress(total: int) -> Callable[[int, dict[str, float]], None]:
    """An ``on_step`` callback printing the loss to stderr about every tenth of ``total`` steps."""
    last = {"step": 0}

    def on_step(step: int, row: dict[str, float]) -> None:
        if step - last["step"] >= max(total // 10, 1) or step == total:
            last["step"] = step
            print(f"step {step:>6}  loss {row.get('loss', float('nan')):.4f}", file=sys.stderr)

    return on_step


def _cmd_targets(a: argparse.Namespace) -> int:
    from genlib import distributions

    for name in distributions.names():
        print(name)
    return 0


def _cmd_models(a: argparse.Namespace) -> int:
    from genlib import models

    for name in models.names():
        cls = models.MODELS.get(name)
        print(f"{name:16s} presets: {', '.join(getattr(cls, 'presets', {}))}")
    return 0


def _cmd_sample_target(a: argparse.Namespace) -> int:
    from genlib import distributions
    from genlib.device import make_generator

    if a.target not in distributions.names():
        return _fail(f"unknown target {a.target!r}; known: {', '.join(distributions.names())}")
    if not (1 <= a.n <= MAX_SAMPLES):
        return _fail(f"-n must be in [1, {MAX_SAMPLES}]")
    try:
        target = distributions.build(a.target, **dict(a.param))
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))
    x = target.sample(a.n, generator=make_generator(a.seed))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, x.numpy().astype(np.float32))
    return 0


def _cmd_train(a: argparse.Namespace) -> int:
    import torch

    from genlib import distributions, models
    from genlib.checkpoints import save_checkpoint
    from genlib.device import make_generator
    from genlib.runs import RunSpec, evaluate, result_meta, run

    if a.model not in models.names():
        return _fail(f"unknown model {a.model!r}; known: {', '.join(models.names())}")
    if a.target not in distributions.names():
        return _fail(f"unknown target {a.target!r}; known: {', '.join(distributions.names())}")
    if not (1 <= a.num_samples <= MAX_SAMPLES):
        return _fail(f"-n must be in [1, {MAX_SAMPLES}]")
    overrides = {
        k: v
        for k, v in (("steps", a.steps), ("lr", a.lr), ("batch_size", a.batch_size))
        if v is not None
    }
    try:
        spec = RunSpec.from_preset(
            a.model,
            a.target,
            preset=a.preset,
            seed=a.seed,
            target_params=dict(a.target_param),
            model_overrides=dict(a.param),
            **overrides,
        )
        spec.target.build()
    except (KeyError, ValueError, TypeError) as exc:
        return _fail(str(exc).strip("'\""))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        trained = run(spec, on_step=_progress(spec.train.steps), use_cache=not a.no_cache)
    except (ValueError, RuntimeError) as exc:
        return _fail(f"training failed: {exc}", 3)
    save_checkpoint(
        out / "checkpoint.pt",
        trained.model.state_dict(),
        spec.to_dict(),
        result_meta(trained.result),
    )
    with torch.no_grad():
        g = make_generator(a.seed, trained.model.device)
        samples = trained.model.sample(a.num_samples, generator=g).detach().cpu().numpy()
    np.save(out / "samples.npy", samples.astype(np.float32))
    metrics = evaluate(trained, n=min(a.num_samples, 5000), seed=a.seed)
    report = {
        "spec": spec.to_dict(),
        "key": spec.key(),
        "source": trained.source,
        "status": trained.result.status,
        "message": trained.result.message,
        "steps_done": trained.result.steps_done,
        "train_seconds": trained.result.seconds,
        "metrics": metrics,
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2, default=float))
    print(json.dumps({"status": trained.result.status, **metrics}, default=float))
    return 0 if trained.result.status == "ok" else 3


def _cmd_kl(a: argparse.Namespace) -> int:
    """Fit q_θ (``genlib.kl.fit``, the page's code path); write ``result.json`` (``to_dict``)."""
    from genlib.kl import KLConfig, fit

    try:
        cfg = KLConfig(
            target=a.target,
            target_params=dict(a.target_param),
            q=a.q,
            divergence=a.divergence,
            steps=a.steps,
            lr=a.lr,
            optimizer=a.optimizer,
            n_samples=a.n_samples,
            init_mean=tuple(a.init_mean),
            init_scale=a.init_scale,
            seed=a.seed,
            num_frames=a.frames,
            components=a.components,
            grid_res=a.grid_res,
        )
        cfg.build_target()
    except ValueError as exc:
        return _fail(str(exc))
    res = fit(cfg, on_step=_progress(cfg.steps))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(res.to_dict(), indent=2))
    print(json.dumps(res.summary()))
    if res.status != "ok":
        return _fail(res.message, 3)
    return 0


#: subcommand -> its runner (returns the exit code)
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "targets": _cmd_targets,
    "models": _cmd_models,
    "sample-target": _cmd_sample_target,
    "train": _cmd_train,
    "kl": _cmd_kl,
}


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    return COMMANDS[args.cmd](args)
