"""Train the shipped pretrained presets into ``assets/pretrained/<spec key>.pt``.

    python scripts/make_pretrained.py                      # every model × moons, 8gaussians (fast preset, seed 0)
    python scripts/make_pretrained.py --models ddpm --targets checkerboard
    python scripts/make_pretrained.py --refresh   # re-key shipped files to the current spec
                                                  # keys and store their metrics (no training)
    python scripts/make_pretrained.py --models vae --prune   # after changing vae's fast preset:
                                                  # train the new files, delete vae's stale ones

A page whose form is left at a preset's defaults builds exactly these specs, so it shows the
result at once instead of a Train button. Checkpoints are ``weights_only`` files (tensors and
primitives); the spec key is the file name, so a changed preset simply stops matching.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GENLIB_THREADS", "1")
# the shipped files are the CPU presets (on CUDA a preset's batch widens and its key changes)
os.environ.setdefault("GENLIB_DEVICE", "cpu")

import torch  # noqa: E402

from genlib import models  # noqa: E402
from genlib.checkpoints import load_checkpoint, pretrained_dir, save_checkpoint  # noqa: E402
from genlib.runs import EVAL_N, RunSpec, evaluate, load_trained, result_meta, run  # noqa: E402


def refresh(out: Path) -> int:
    """Re-save each shipped checkpoint under the key its spec has now (spec keys are canonical:
    constructor defaults filled in) with ``evaluate(n=EVAL_N, seed=0)`` in its metadata, so the
    pages find it at their defaults and show its metrics at once. Weights are unchanged."""
    for path in sorted(out.glob("*.pt")):
        ck = load_checkpoint(path)
        s = ck["spec"]
        spec = RunSpec.from_preset(
            s["model"], s["target"]["name"], preset="fast", seed=s["train"]["seed"]
        )
        trained = load_trained(spec, path=path, device=torch.device("cpu"))
        meta = dict(ck.get("meta", {}))
        meta["metrics"] = evaluate(trained, n=EVAL_N, seed=0)
        new = out / f"{spec.key()}.pt"
        save_checkpoint(new, trained.model.state_dict(), spec.to_dict(), meta)
        if new != path:
            path.unlink()
        print(f"{spec.model:16s} {spec.target.name:12s} {path.stem} -> {new.stem}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--targets", nargs="*", default=["moons", "8gaussians"])
    ap.add_argument("--preset", default="fast")
    ap.add_argument(
        "--prune",
        action="store_true",
        help="delete shipped files of the chosen models whose preset no longer matches them",
    )
    ap.add_argument(
        "--refresh",
        action="store_true",
        help="re-save every shipped file under its current spec key, with its metrics",
    )
    a = ap.parse_args()
    out = pretrained_dir()
    if a.refresh:
        return refresh(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in a.models or models.names():
        for target in a.targets:
            spec = RunSpec.from_preset(name, target, preset=a.preset, seed=0)
            path = out / f"{spec.key()}.pt"
            if path.exists():
                print(f"{name:16s} {target:12s} exists {path.name}")
                continue
            t0 = time.perf_counter()
            trained = run(spec, use_cache=False)
            if trained.result.status != "ok":
                print(f"{name:16s} {target:12s} {trained.result.status}: {trained.result.message}")
                continue
            meta = result_meta(trained.result)
            meta["metrics"] = evaluate(trained, n=EVAL_N, seed=0)  # what the metrics panel shows
            save_checkpoint(path, trained.model.state_dict(), spec.to_dict(), meta)
            kb = path.stat().st_size / 1024
            print(
                f"{name:16s} {target:12s} {time.perf_counter() - t0:6.1f}s {kb:7.0f} KiB {path.name}"
            )
    if a.prune:
        prune(out, set(a.models or models.names()), a.preset)
    return 0


def prune(out: Path, names: set[str], preset: str) -> None:
    """Delete the shipped files of models ``names`` that no current preset spec names (a preset
    changed: the page would never find them, and tests/test_pretrained.py flags them as stale)."""
    for path in sorted(out.glob("*.pt")):
        s = load_checkpoint(path)["spec"]
        if s["model"] not in names:
            continue
        spec = RunSpec.from_preset(
            s["model"], s["target"]["name"], preset=preset, seed=s["train"]["seed"]
        )
        if spec.key() != path.stem:
            path.unlink()
            print(f"{s['model']:16s} {s['target']['name']:12s} removed stale {path.name}")


if __name__ == "__main__":
    raise SystemExit(main())
