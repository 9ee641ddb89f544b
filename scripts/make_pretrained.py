"""Train the shipped pretrained presets into ``assets/pretrained/<spec key>.pt``.

    python scripts/make_pretrained.py                      # every model × moons, 8gaussians (fast preset, seed 0)
    python scripts/make_pretrained.py --models ddpm --targets checkerboard

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

from genlib import models  # noqa: E402
from genlib.checkpoints import pretrained_dir, save_checkpoint  # noqa: E402
from genlib.runs import RunSpec, result_meta, run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--targets", nargs="*", default=["moons", "8gaussians"])
    ap.add_argument("--preset", default="fast")
    a = ap.parse_args()
    out = pretrained_dir()
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
            save_checkpoint(path, trained.model.state_dict(), spec.to_dict(), result_meta(trained.result))
            kb = path.stat().st_size / 1024
            print(
                f"{name:16s} {target:12s} {time.perf_counter() - t0:6.1f}s {kb:7.0f} KiB {path.name}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
