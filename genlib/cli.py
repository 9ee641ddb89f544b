"""``python -m genlib``: headless use for scripts, slides, benchmarks and servers.

    python -m genlib targets
    python -m genlib models
    python -m genlib sample-target moons -n 10000 --seed 0 --out moons.npy
    python -m genlib train ddpm moons --preset fast --seed 0 --out runs/ddpm-moons
    python -m genlib kl two_peaks --q gaussian --divergence reverse --steps 500 --out runs/kl

Every subcommand lives here (the library modules have no command-line code). Exit codes: 0 ok,
2 bad arguments (one ``error: ...`` line on stderr, never a traceback), 3 the run diverged, drew
non-finite numbers or failed. Progress goes to stderr, one JSON summary line to stdout.

``--out`` is written atomically: a run writes into a hidden temporary sibling
(``.NAME.tmp-PID``) and renames it into place at the end, so a killed run never leaves a folder
that mixes two runs (an existing output folder of an earlier run is replaced as a whole; a folder
holding other files is refused). Temporary siblings left by killed runs are swept on the next run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "COMMANDS"]

MAX_SAMPLES = 1_000_000
#: files a ``--out`` folder of ``train`` / ``kl`` holds (an existing folder with only these is
#: an earlier run's output and is replaced as a whole; anything else is refused)
OUT_FILES = frozenset({"checkpoint.pt", "samples.npy", "metrics.json", "result.json"})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with a one-line message, no traceback
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class _BadArgs(Exception):
    """A bad argument found after parsing: exit 2 with its one-line message."""


def _kv(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text[:60]!r}")
    k, v = text.split("=", 1)
    if not k.isidentifier() or len(k) > 64:
        raise argparse.ArgumentTypeError(f"bad parameter name {k[:60]!r}")
    if len(v) > 20_000:
        raise argparse.ArgumentTypeError(f"the value of {k} is too long")
    try:
        return k, json.loads(v)
    except (json.JSONDecodeError, RecursionError, ValueError):
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
    from genlib.limits import check_seed

    if a.target not in distributions.names():
        return _fail(f"unknown target {a.target!r}; known: {', '.join(distributions.names())}")
    if not (1 <= a.n <= MAX_SAMPLES):
        return _fail(f"-n must be in [1, {MAX_SAMPLES}]")
    out = _out_file(a.out)
    try:
        check_seed(a.seed)
        target = distributions.build(a.target, **dict(a.param))
    except (ValueError, TypeError) as exc:
        return _fail(_one_line(exc))
    x = target.sample(a.n, generator=make_generator(a.seed))
    if not bool(x.isfinite().all()):
        return _fail(f"{a.target} drew non-finite samples; nothing written", 3)
    _sweep(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, x.numpy().astype(np.float32))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError) and len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]  # KeyError quotes its message
    text = text or type(exc).__name__
    return " ".join(text.split())[:500]


def _check_path(text: str) -> Path:
    if not text or len(text) > 1024 or "\0" in text:
        raise _BadArgs("--out must be a path of at most 1024 characters")
    out = Path(text).expanduser()
    if any(len(part) > 255 for part in out.parts):
        raise _BadArgs("--out has a path component longer than 255 characters")
    return out.absolute()


def _out_file(text: str) -> Path:
    """A ``.npy`` output file: a new file or an existing regular file (not a folder or device)."""
    out = _check_path(text)
    if out.exists() and not out.is_file():
        raise _BadArgs(f"--out {text!r} exists and is not a regular file")
    if out.suffix != ".npy":
        out = out.with_name(out.name + ".npy")  # what np.save would write
    if out.exists() and not out.is_file():
        raise _BadArgs(f"--out {text!r} exists and is not a regular file")
    _parent(out)
    return out


def _parent(out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _BadArgs(f"cannot create the folder of --out: {exc.strerror or exc}") from None
    if not os.access(out.parent, os.W_OK):
        raise _BadArgs(f"cannot write into {str(out.parent)!r}")


def _out_dir(text: str) -> Path:
    """An output folder: new, or an earlier run's output (only ``OUT_FILES``), replaced at the
    end; an existing file, a device or a folder with other files is refused."""
    out = _check_path(text)
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise _BadArgs(f"--out {text!r} exists and is not a folder")
        other = [p.name for p in out.iterdir() if p.name not in OUT_FILES]
        if other:
            raise _BadArgs(
                f"--out {text!r} holds other files ({', '.join(sorted(other)[:3])}); "
                "choose a new or an earlier output folder"
            )
    _parent(out)
    return out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _sweep(out: Path) -> None:
    """Remove temporary siblings of ``out`` left by killed runs (their process is gone)."""
    for p in out.parent.glob(f".{out.name}.*-*"):
        kind, _, rest = p.name[len(out.name) + 2 :].partition("-")
        pid = rest.split("-", 1)[0]
        if kind not in ("tmp", "old") or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if kind == "old" and not out.exists() and p.is_dir():
            with contextlib.suppress(OSError):  # killed between the two renames: restore
                p.rename(out)
                continue
        with contextlib.suppress(OSError):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


@contextlib.contextmanager
def _atomic_dir(out: Path):
    """Yield a temporary sibling folder; on success it replaces ``out`` (whole-folder swap)."""
    _sweep(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the output is an ordinary folder
    try:
        yield tmp
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}-{tmp.name[-8:]}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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
    out = _out_dir(a.out)
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
        models.build(spec.model, **dict(spec.model_params))  # constructor checks, before training
    except (KeyError, ValueError, TypeError) as exc:
        return _fail(_one_line(exc))
    try:
        trained = run(spec, on_step=_progress(spec.train.steps), use_cache=not a.no_cache)
    except (ValueError, RuntimeError) as exc:
        return _fail(f"training failed: {_one_line(exc)}", 3)
    with torch.no_grad():
        g = make_generator(a.seed, trained.model.device)
        samples = trained.model.sample(a.num_samples, generator=g).detach().cpu()
    status, message = trained.result.status, trained.result.message
    bad = int((~torch.isfinite(samples).all(1)).sum())
    if status == "ok" and bad:
        status, message = "diverged", f"{bad} of {a.num_samples} samples are not finite"
    metrics = evaluate(trained, n=min(a.num_samples, 5000), seed=a.seed)
    report = {
        "spec": spec.to_dict(),
        "key": spec.key(),
        "source": trained.source,
        "status": status,
        "message": message,
        "steps_done": trained.result.steps_done,
        "train_seconds": trained.result.seconds,
        "metrics": metrics,
    }
    with _atomic_dir(out) as tmp:
        save_checkpoint(
            tmp / "checkpoint.pt",
            trained.model.state_dict(),
            spec.to_dict(),
            {**result_meta(trained.result), "status": status, "message": message},
        )
        np.save(tmp / "samples.npy", samples.numpy().astype(np.float32))
        (tmp / "metrics.json").write_text(json.dumps(report, indent=2, default=_json_float))
    print(json.dumps({"status": status, **metrics}, default=_json_float))
    if status != "ok":
        return _fail(f"the run ended {status}: {_one_line(Exception(message))}", 3)
    return 0


def _json_float(v: object) -> object:
    f = float(v)  # type: ignore[arg-type]
    return f if math.isfinite(f) else str(f)


def _cmd_kl(a: argparse.Namespace) -> int:
    """Fit q_θ (``genlib.kl.fit``, the page's code path); write ``result.json`` (``to_dict``)."""
    from genlib.kl import KLConfig, fit
    from genlib.limits import check_seed

    out = _out_dir(a.out)
    try:
        check_seed(a.seed)
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
    except (ValueError, TypeError, KeyError) as exc:
        return _fail(_one_line(exc))
    res = fit(cfg, on_step=_progress(cfg.steps))
    with _atomic_dir(out) as tmp:
        (tmp / "result.json").write_text(json.dumps(res.to_dict(), indent=2))
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
    """Run one subcommand; returns its exit code (usage errors exit 2 through ``SystemExit``).
    Every failure is one ``error:`` line on stderr: 2 for bad arguments, 3 for anything else."""
    args = _build_parser().parse_args(argv)
    try:
        return COMMANDS[args.cmd](args)
    except _BadArgs as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except MemoryError:
        return _fail("out of memory", 3)
    except Exception as exc:  # a failure the checks above did not foresee: one line, no traceback
        return _fail(f"{type(exc).__name__}: {_one_line(exc)}", 3)
