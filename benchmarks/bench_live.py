"""Live-view overhead per family: the same seeded run as a job with live frames and without.

    GENLIB_THREADS=1 .venv/bin/python benchmarks/bench_live.py [--steps 800] [--target moons]

For each family the fast preset (capped at ``--steps`` steps) trains twice through
``genlib.jobs.JobQueue`` (one worker, no cache): once with the family's live view
(``genlib.lab.live``), once without. Both runs are interleaved in one process, so load affects
them alike. Prints wall seconds, frames recorded, the mean cost of one frame and the overhead
(with / without − 1, on the training loop's own clock). The job's frame budget (``GENLIB_LIVE_FRACTION``, default 8 %) is what
keeps the overhead under 10 %.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genlib import models  # noqa: E402
from genlib.device import configure_threads  # noqa: E402
from genlib.jobs import JobQueue  # noqa: E402
from genlib.lab.live import live_view_for  # noqa: E402
from genlib.runs import RunSpec  # noqa: E402


def timed(q: JobQueue, spec: RunSpec) -> tuple[float, int, float]:
    job = q.submit(spec)
    job.wait()
    if job.state != "done":
        raise RuntimeError(f"{spec.model}: {job.state} {job.error}")
    # the training loop's own clock (frames are taken inside it; data sampling is not)
    return job.result.result.seconds, len(job.frames()), job.frame_seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--target", default="moons")
    ap.add_argument("--families", nargs="*", default=None)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    threads = configure_threads()
    with_live = JobQueue(1, use_cache=False, live_fn=live_view_for, idle_timeout_s=86_400)
    without = JobQueue(1, use_cache=False, live_fn=None, idle_timeout_s=86_400)
    print(f"# live-view overhead · target {args.target} · {threads} torch thread(s)")
    print(
        "| family | steps | s without | s with live | frames | ms / frame | frame share | overhead |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for fam in args.families or models.names():
        steps = min(args.steps, models.preset(fam, "fast").train.get("steps", args.steps))
        base = wall = 0.0
        n_frames, frame_s = 0, 0.0
        timed(without, RunSpec.from_preset(fam, args.target, seed=99, steps=min(steps, 50)))
        for r in range(args.repeats):
            spec = RunSpec.from_preset(fam, args.target, seed=r, steps=steps)
            if r % 2:  # alternate the order so drifting load hits both alike
                w, n, fs = timed(with_live, spec)
                b, _, _ = timed(without, spec)
            else:
                b, _, _ = timed(without, spec)
                w, n, fs = timed(with_live, spec)
            base, wall, n_frames, frame_s = base + b, wall + w, n_frames + n, frame_s + fs
        over = wall / base - 1.0
        worst = max(worst, over)
        ms = 1000 * frame_s / max(n_frames, 1)
        print(
            f"| {fam} | {steps} | {base / args.repeats:.2f} | {wall / args.repeats:.2f} | "
            f"{n_frames / args.repeats:.0f} | {ms:.0f} | {100 * frame_s / wall:.1f} % | "
            f"{100 * over:+.1f} % |"
        )
    print(
        f"\nworst overhead: {100 * worst:+.1f} % (wall-clock ratio; 'frame share' is the job's own"
    )
    print("count of time spent in live frames, which the budget bounds: the noise-free number)")
    with_live.shutdown()
    without.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
