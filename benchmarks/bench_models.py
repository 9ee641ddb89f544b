"""Speed and quality of every registered family (fast preset by default), as a table.

    python benchmarks/bench_models.py                       # all models × moons, 8gaussians, checkerboard
    python benchmarks/bench_models.py --models ddpm flow --targets moons --preset quality
    python benchmarks/bench_models.py --markdown results.md  # also write the table as Markdown
    python benchmarks/bench_models.py --models vae --targets moons --seeds 3 --train steps=4000 lr=2e-3

Per (model, target): training steps/s, wall time and CPU time of the run (``cpu_s``: one torch
thread, so it is the training time a quiet core would show), time to sample 10k points, sliced Wasserstein
as a ratio to its noise floor (SW/floor, 1 = indistinguishable from fresh target samples), MMD,
exact KL(p‖q) = NLL − H(p) where the model has a density, and the modes covered on
Gaussian-mixture targets (``genlib.metrics.mixture_mode_coverage``). Training never uses the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GENLIB_THREADS", "1")

import torch  # noqa: E402

from genlib import models  # noqa: E402
from genlib.checkpoints import pretrained_dir, save_checkpoint  # noqa: E402
from genlib.device import configure_threads, device_info, make_generator  # noqa: E402
from genlib.metrics import mixture_mode_coverage  # noqa: E402
from genlib.runs import EVAL_N, RunSpec, evaluate, result_meta, run  # noqa: E402

DEFAULT_TARGETS = ["moons", "8gaussians", "checkerboard"]


def bench_one(
    model: str,
    target: str,
    preset: str,
    seed: int,
    n_eval: int,
    save: bool = False,
    train_overrides: dict | None = None,
    model_overrides: dict | None = None,
) -> dict:
    spec = RunSpec.from_preset(
        model,
        target,
        preset=preset,
        seed=seed,
        model_overrides=model_overrides,
        **(train_overrides or {}),
    )
    t0, c0 = time.perf_counter(), time.process_time()
    trained = run(spec, use_cache=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    res = trained.result
    dev = trained.model.device
    with torch.no_grad():
        trained.model.sample(100, generator=make_generator(0, dev))  # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        trained.model.sample(10_000, generator=make_generator(1, dev))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        sample_s = time.perf_counter() - t1
    m = evaluate(trained, n=n_eval, seed=seed)
    with torch.no_grad():  # mode coverage (Gaussian-mixture targets only: the RBM's criterion)
        xs = trained.model.sample(n_eval, generator=make_generator(seed + 7, dev)).cpu()
    cov = mixture_mode_coverage(xs, trained.target)
    modes = "-" if cov is None else f"{cov['modes_covered']:.0f}/{cov['modes_total']:.0f}"
    if save and trained.result.status == "ok":  # ship it as a pretrained preset (with metrics)
        meta = result_meta(trained.result)
        if n_eval == EVAL_N and seed == 0:  # what the pages' metrics panel shows
            meta["metrics"] = dict(m)
        save_checkpoint(
            pretrained_dir() / f"{spec.key()}.pt", trained.model.state_dict(), spec.to_dict(), meta
        )
    return {
        "model": model,
        "target": target,
        "preset": preset,
        "seed": seed,
        "steps": res.steps_done,
        "status": res.status,
        "train_s": res.seconds,
        "wall_s": wall,
        "cpu_s": cpu,
        "steps_per_s": res.steps_done / max(res.seconds, 1e-9),
        "sample10k_s": sample_s,
        "sw": m["sliced_wasserstein"],
        "sw_floor": m["sliced_wasserstein_floor"],
        "sw_ratio": m["sliced_wasserstein"] / m["sliced_wasserstein_floor"],
        "mmd": m["mmd"],
        "mmd_floor": m["mmd_floor"],
        "exact_kl": m.get("exact_kl", float("nan")),
        "modes": modes,
    }


COLUMNS = [
    ("model", "{}"),
    ("target", "{}"),
    ("seed", "{}"),
    ("steps", "{}"),
    ("train_s", "{:.1f}"),
    ("cpu_s", "{:.1f}"),
    ("steps_per_s", "{:.0f}"),
    ("sample10k_s", "{:.3f}"),
    ("sw_ratio", "{:.2f}"),
    ("mmd", "{:.5f}"),
    ("exact_kl", "{:.3f}"),
    ("modes", "{}"),
    ("status", "{}"),
]


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(c for c, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = ["| " + " | ".join(f.format(r[c]) for c, f in COLUMNS) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def parse_overrides(items: list[str]) -> dict:
    """``["steps=3000", "lr=2e-3", "lr_decay=true"]`` -> a dict of Python values (JSON literals,
    else strings)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"expected key=value, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--targets", nargs="*", default=DEFAULT_TARGETS)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="run seeds seed … seed + seeds − 1")
    ap.add_argument(
        "--train", nargs="*", default=[], metavar="KEY=VALUE", help="training overrides (tuning)"
    )
    ap.add_argument(
        "--model-args", nargs="*", default=[], metavar="KEY=VALUE", help="model overrides (tuning)"
    )
    ap.add_argument("--n-eval", type=int, default=EVAL_N)
    ap.add_argument("--json", type=Path, default=None, help="write the rows as JSON")
    ap.add_argument("--markdown", type=Path, default=None, help="write the table as Markdown")
    ap.add_argument(
        "--save-pretrained", action="store_true", help="also write each run to assets/pretrained/"
    )
    a = ap.parse_args()
    names = a.models or models.names()
    configure_threads()
    tr, mo = parse_overrides(a.train), parse_overrides(a.model_args)
    if a.save_pretrained and (tr or mo):
        ap.error("--save-pretrained ships presets: it does not combine with --train/--model-args")
    extra = f"  train overrides: {tr}" if tr else ""
    extra += f"  model overrides: {mo}" if mo else ""
    print(f"# device: {device_info()}  preset: {a.preset}  seed: {a.seed}{extra}", flush=True)
    rows = []
    for name in names:
        for target in a.targets:
            for seed in range(a.seed, a.seed + a.seeds):
                row = bench_one(name, target, a.preset, seed, a.n_eval, a.save_pretrained, tr, mo)
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))
    if a.markdown:
        a.markdown.write_text(table(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
