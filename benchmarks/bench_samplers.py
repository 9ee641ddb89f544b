"""Time of every family's default ``sample(10_000)`` on one CPU thread, and its quality (SW/floor).

    python benchmarks/bench_samplers.py                          # all families, moons + 8 gaussians
    python benchmarks/bench_samplers.py --save after.json --before before.json
    git archive <commit> | tar -x -C /tmp/old                    # an older tree, then
    python benchmarks/bench_samplers.py --before-tree /tmp/old   # old vs this tree, interleaved

Each family's shipped ``fast`` preset (assets/pretrained) is loaded, sampled once for warm-up and
then ``--repeats`` times at 10k points (best time reported: CPU seconds of the process, one torch
thread, which equal wall seconds on a quiet machine; ``GENLIB_BENCH_WALL=1`` for wall time); SW/floor is sliced W₂ of 10k samples
against 10k fresh target samples, over the noise floor at that size (1 = indistinguishable). With
``--before`` a JSON written earlier by ``--save`` (e.g. measured before a change) is shown side by
side, with the speed-up ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TREE = os.environ.get("GENLIB_BENCH_TREE") or str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, TREE)
os.environ.setdefault("GENLIB_THREADS", "1")
os.environ.setdefault("GENLIB_DEVICE", "cpu")

import torch  # noqa: E402

from genlib import models  # noqa: E402
from genlib.device import configure_threads, make_generator  # noqa: E402
from genlib.metrics import noise_floor, sliced_wasserstein  # noqa: E402
from genlib.runs import RunSpec, cached_run  # noqa: E402

N = 10_000
#: report the process's CPU time (one torch thread: equal to the wall time on a quiet machine,
#: and unaffected by other processes on a busy one); ``GENLIB_BENCH_WALL=1`` reports wall time
CPU_TIME = os.environ.get("GENLIB_BENCH_WALL", "0") != "1"


def bench_one(model: str, target: str, repeats: int) -> dict:
    spec = RunSpec.from_preset(model, target, preset="fast", seed=0)
    trained = cached_run(spec)
    if trained is None:
        return {"model": model, "target": target, "error": "no pretrained checkpoint"}
    m = trained.model
    with torch.no_grad():
        m.sample(100, generator=make_generator(0))  # warm-up
        best = best_cpu = float("inf")
        for r in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            xs = m.sample(N, generator=make_generator(1 + r))
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
    xs = xs.detach().float().cpu()
    ok = torch.isfinite(xs).all(1)
    g = make_generator(7)
    ref = trained.target.sample(N, generator=g)
    sw = sliced_wasserstein(xs[ok], ref, generator=g)
    floor = noise_floor(trained.target, N, "sliced_wasserstein")
    return {
        "model": model,
        "target": target,
        "sample10k_s": best_cpu if CPU_TIME else best,
        "wall_s": best,
        "cpu_s": best_cpu,
        "sw_ratio": sw / floor,
    }


def _worker(tree: str, model: str, target: str, repeats: int) -> dict:
    env = {**os.environ, "GENLIB_BENCH_TREE": tree}
    cmd = [sys.executable, __file__, "--worker", "--models", model, "--targets", target]
    out = subprocess.run(
        [*cmd, "--repeats", str(repeats)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def interleaved(tree: str, model: str, target: str, rounds: int) -> tuple[dict, dict]:
    """(old, new): ``rounds`` alternating subprocess runs of each tree, best time of each."""
    here = str(Path(__file__).resolve().parent.parent)
    old: list[dict] = []
    new: list[dict] = []
    for _ in range(rounds):
        old.append(_worker(tree, model, target, 1))
        new.append(_worker(here, model, target, 1))
    pick = lambda rs: min(rs, key=lambda r: r.get("sample10k_s", float("inf")))  # noqa: E731
    return pick(old), pick(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--targets", nargs="*", default=["moons", "8gaussians"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--save", type=Path, default=None, help="write the rows as JSON")
    ap.add_argument("--before", type=Path, default=None, help="JSON of an earlier --save")
    ap.add_argument("--before-tree", default=None, help="an older source tree to compare with")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    configure_threads()
    if args.worker:
        print(json.dumps(bench_one(args.models[0], args.targets[0], args.repeats)))
        return
    before = {}
    if args.before and args.before.exists():
        before = {(r["model"], r["target"]): r for r in json.loads(args.before.read_text())}
    rows = []
    for name in args.models or models.names():
        for target in args.targets:
            if args.before_tree:
                old, row = interleaved(args.before_tree, name, target, args.repeats)
                before[(name, target)] = old
            else:
                row = bench_one(name, target, args.repeats)
            rows.append(row)
            print(json.dumps({**row, "before": before.get((name, target))}), file=sys.stderr)
            if args.save:  # after every row: a long run that is cut short keeps what it has
                args.save.write_text(json.dumps(rows, indent=1))
    if args.save:
        args.save.write_text(json.dumps(rows, indent=1))
    head = "| family | target | 10k samples (s) | SW/floor |"
    sep = "|---|---|---:|---:|"
    if before:
        head = "| family | target | before (s) | after (s) | speed-up | SW/floor before | after |"
        sep = "|---|---|---:|---:|---:|---:|---:|"
    clock = "CPU" if CPU_TIME else "wall"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), N = {N}, {clock} s\n")
    print(head)
    print(sep)
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | {r['target']} | {r['error']} |")
            continue
        b = before.get((r["model"], r["target"]))
        if b and "sample10k_s" in b:
            ratio = b["sample10k_s"] / max(r["sample10k_s"], 1e-9)
            print(
                f"| {r['model']} | {r['target']} | {b['sample10k_s']:.2f} | "
                f"{r['sample10k_s']:.2f} | {ratio:.1f}× | {b['sw_ratio']:.2f} | {r['sw_ratio']:.2f} |"
            )
        else:
            print(
                f"| {r['model']} | {r['target']} | {r['sample10k_s']:.2f} | {r['sw_ratio']:.2f} |"
            )


if __name__ == "__main__":
    main()
