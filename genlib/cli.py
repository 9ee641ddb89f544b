"""``python -m genlib``: headless use for scripts, slides, benchmarks and servers.

    python -m genlib targets
    python -m genlib models
    python -m genlib sample-target moons -n 10000 --seed 0 --out moons.npy
    python -m genlib train ddpm moons --preset fast --seed 0 --out runs/ddpm-moons

Exit codes: 0 ok, 2 bad arguments, 3 the run diverged or failed. Other modules add subcommands
with ``@subcommand(name, help)`` (see ``genlib.kl``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["main", "subcommand"]

MAX_SAMPLES = 1_000_000

_EXTRA: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}


def subcommand(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand: ``configure(parser)`` adds its arguments, the decorated function
    runs it and returns an exit code."""

    def deco(fn: Callable[[argparse.Namespace], int]):
        _EXTRA[name] = (help, configure, fn)
        return fn

    return deco


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
    for name, (help_, configure, _) in _EXTRA.items():
        configure(sub.add_parser(name, help=help_))
    return p


def _fail(msg: str, code: int = 2) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def _cmd_train(a: argparse.Namespace) -> int:
    import torch

    from genlib import distributions, models
    from genlib.checkpoints import save_checkpoint
    from genlib.device import make_generator
    from genlib.runs import RunSpec, evaluate, run

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
    last = {"step": 0}

    def on_step(step: int, row: dict[str, float]) -> None:
        if step - last["step"] >= max(spec.train.steps // 10, 1) or step == spec.train.steps:
            last["step"] = step
            print(f"step {step:>6}  loss {row.get('loss', float('nan')):.4f}", file=sys.stderr)

    try:
        trained = run(spec, on_step=on_step, use_cache=not a.no_cache)
    except (ValueError, RuntimeError) as exc:
        return _fail(f"training failed: {exc}", 3)
    from genlib.runs import result_meta

    save_checkpoint(
        out / "checkpoint.pt", trained.model.state_dict(), spec.to_dict(), result_meta(trained.result)
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


def main(argv: list[str] | None = None) -> int:
    # modules that add subcommands register them on import
    import genlib.kl  # noqa: F401  (the `kl` subcommand)

    args = _build_parser().parse_args(argv)
    from genlib import distributions, models

    if args.cmd == "targets":
        for name in distributions.names():
            print(name)
        return 0
    if args.cmd == "models":
        for name in models.names():
            cls = models.MODELS.get(name)
            print(f"{name:16s} presets: {', '.join(getattr(cls, 'presets', {}))}")
        return 0
    if args.cmd == "sample-target":
        if args.target not in distributions.names():
            return _fail(
                f"unknown target {args.target!r}; known: {', '.join(distributions.names())}"
            )
        if not (1 <= args.n <= MAX_SAMPLES):
            return _fail(f"-n must be in [1, {MAX_SAMPLES}]")
        try:
            target = distributions.build(args.target, **dict(args.param))
        except (ValueError, TypeError) as exc:
            return _fail(str(exc))
        import torch

        x = target.sample(args.n, generator=torch.Generator().manual_seed(args.seed))
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, x.numpy().astype(np.float32))
        return 0
    if args.cmd == "train":
        return _cmd_train(args)
    if args.cmd in _EXTRA:
        return _EXTRA[args.cmd][2](args)
    return _fail(f"unknown command {args.cmd}")
