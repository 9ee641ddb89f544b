"""Time to quality, GenLab's fast presets against the peers' published default configurations.

    python benchmarks/bench_peers.py                          # moons and 8gaussians, 60 s per peer
    python benchmarks/bench_peers.py --budget 120 --check-every 5 --markdown peers.md
    python benchmarks/bench_peers.py --from-json run.json --budget 60   # re-print a saved --json run

In one process, on the same targets, with the same metric and one torch thread
(``GENLIB_THREADS=1``): each system trains while its model is evaluated every ``--check-every``
seconds of training (sliced W₂ of ``--n-eval`` samples against as many fresh target samples,
divided by the noise floor ``genlib.runs.cached_noise_floor`` of that sample size; the reference
sample and the projections are the same at every check). The clock is the process's CPU time spent
in training steps (evaluations excluded), so other processes on a busy machine do not inflate it.
Reported: steps/s, the training time and steps at the first check with SW ≤ ``--ratio`` × floor
(or "not within N s"), the best ratio seen, the ratio at the end, exact KL(p‖q) where the model
has a density, and the speed-up peer time / GenLab time.

GenLab runs its ``fast`` preset to the end (raw weights at the intermediate checks; the preset's
EMA weights and decayed learning rate at the last one). A peer runs until it reaches the ratio or
``--budget`` seconds. The peers are our own textbook re-implementations (``benchmarks/peers``):
a DDPM as tiny-diffusion ships it and conditional flow matching as the torchcfm 2D tutorial
configures it; each states the exact configuration it reproduces.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GENLIB_THREADS", "1")
os.environ.setdefault("GENLIB_DEVICE", "cpu")  # the peers are CPU re-implementations

import torch  # noqa: E402

from benchmarks.peers import PEERS, Peer  # noqa: E402
from genlib.device import configure_threads, device_info, make_generator  # noqa: E402
from genlib.metrics import exact_kl, sliced_wasserstein  # noqa: E402
from genlib.models.base import GenerativeModel, HasLogProb  # noqa: E402
from genlib.runs import RunSpec, TargetSpec, cached_noise_floor, prepare  # noqa: E402
from genlib.training import train  # noqa: E402

DEFAULT_TARGETS = ["moons", "8gaussians"]


@dataclass
class Curve:
    """What one system did on one target."""

    system: str
    family: str
    target: str
    config: str
    steps: int = 0
    train_s: float = 0.0  # CPU seconds in training steps
    reached_s: float = math.nan  # training time at the first check within the ratio
    reached_steps: int = 0
    best_ratio: float = math.inf
    final_ratio: float = math.nan
    exact_kl: float = math.nan
    checks: list[tuple[float, int, float]] = field(default_factory=list)  # (s, steps, SW/floor)

    @property
    def steps_per_s(self) -> float:
        return self.steps / max(self.train_s, 1e-9)

    @property
    def reached(self) -> bool:
        return math.isfinite(self.reached_s)


class Judge:
    """SW/floor of a model's samples on one target, with a fixed reference sample and projections."""

    def __init__(self, target: str, n: int, seed: int = 0) -> None:
        self.spec = TargetSpec(target)
        self.target = self.spec.build()
        self.n, self.seed = n, seed
        self.ref = self.target.sample(n, generator=make_generator(seed + 100))  # (n, 2)
        self.floor = cached_noise_floor(self.spec, n, "sliced_wasserstein")

    def ratio(self, sample: Callable[[int, torch.Generator], torch.Tensor]) -> float:
        with torch.no_grad():
            x = sample(self.n, make_generator(self.seed + 101)).detach().cpu().float()
        if not bool(torch.isfinite(x).all()):
            return math.inf
        sw = sliced_wasserstein(x, self.ref, generator=make_generator(self.seed + 102))
        return sw / self.floor

    def kl(self, log_q: Callable[[torch.Tensor], torch.Tensor]) -> float:
        try:
            out = exact_kl(self.target, log_q, n=self.n, generator=make_generator(self.seed + 103))
        except (NotImplementedError, RuntimeError):
            return math.nan
        return out["kl"]


def _note(curve: Curve, t: float, steps: int, ratio: float, threshold: float) -> bool:
    curve.checks.append((t, steps, ratio))
    curve.best_ratio = min(curve.best_ratio, ratio)
    if not curve.reached and ratio <= threshold:
        curve.reached_s, curve.reached_steps = t, steps
    return curve.reached


def bench_genlab(
    family: str, judge: Judge, check_every: float, threshold: float, seed: int
) -> Curve:
    spec = RunSpec.from_preset(family, judge.spec, preset="fast", seed=seed)
    model, target = prepare(spec)
    cfg = spec.train
    curve = Curve(
        "GenLab fast",
        family,
        judge.spec.name,
        f"{family} fast preset: {', '.join(f'{k}={v}' for k, v in spec.model_params)}; "
        f"steps={cfg.steps}, batch={cfg.batch_size}, lr={cfg.lr}, ema={cfg.ema}, "
        f"lr_decay={cfg.lr_decay}",
    )
    clock = {"start": time.process_time(), "eval": 0.0, "next": check_every}

    def sample_of(m: GenerativeModel) -> Callable[[int, torch.Generator], torch.Tensor]:
        return lambda n, g: m.sample(n, generator=g)

    def on_step(step: int, _row: dict[str, float]) -> None:
        t = time.process_time() - clock["start"] - clock["eval"]
        if t < clock["next"] or step == cfg.steps:
            return
        e0 = time.process_time()
        model.eval()
        _note(curve, t, step, judge.ratio(sample_of(model)), threshold)
        model.train()
        clock["eval"] += time.process_time() - e0
        clock["next"] = t + check_every

    result = train(model, target, cfg, on_step=on_step)
    curve.train_s = time.process_time() - clock["start"] - clock["eval"]
    curve.steps = result.steps_done
    curve.final_ratio = judge.ratio(sample_of(model))  # with the preset's EMA weights
    _note(curve, curve.train_s, curve.steps, curve.final_ratio, threshold)
    if isinstance(model, HasLogProb):
        curve.exact_kl = judge.kl(lambda x: model.log_prob(x))
    return curve


def bench_peer(
    name: str,
    make: Callable[..., Peer],
    family: str,
    judge: Judge,
    budget: float,
    check_every: float,
    threshold: float,
    seed: int,
) -> Curve:
    peer = make(judge.target, seed=seed)
    curve = Curve(name, family, judge.spec.name, peer.config)
    steps, t = 0, 0.0
    next_check = check_every
    while t < budget:
        c0 = time.process_time()
        for _ in range(10):
            peer.step()
        steps += 10
        t += time.process_time() - c0
        if t >= next_check or t >= budget:
            if _note(curve, t, steps, judge.ratio(peer.sample), threshold):
                break
            next_check = t + check_every
    curve.steps, curve.train_s = steps, t
    curve.final_ratio = curve.checks[-1][2]
    try:
        peer.log_prob(judge.ref[:1])
    except NotImplementedError:
        pass
    else:
        curve.exact_kl = judge.kl(peer.log_prob)
    return curve


def _first_check(c: Curve) -> bool:
    """Whether ``c`` reached the bar at its first check (its time is then an upper bound)."""
    return c.reached and bool(c.checks) and c.checks[0][0] >= c.reached_s


def _fmt_reached(c: Curve, budget: float) -> str:
    if c.reached:
        le = "≤ " if _first_check(c) else ""
        return f"{le}{c.reached_s:.1f} s ({c.reached_steps} steps)"
    limit = c.train_s if c.system.startswith("GenLab") else budget
    return f"not within {limit:.0f} s"


def table(curves: list[Curve], budget: float, threshold: float) -> str:
    head = (
        f"| target | system | steps/s | time to SW ≤ {threshold:g}× floor | best SW/floor "
        "| final SW/floor | exact KL | speed-up (peer / GenLab) |"
    )
    rows = [head, "|---|---|---:|---|---:|---:|---:|---|"]
    ours = {(c.target, c.family): c for c in curves if c.system.startswith("GenLab")}
    for c in curves:
        speed = ""
        g = ours.get((c.target, c.family))
        if g is not None and c is not g:
            if c.reached and g.reached:
                speed = f"{'≥ ' if _first_check(g) else ''}{c.reached_s / g.reached_s:.1f}×"
            elif g.reached:
                speed = f"> {budget / g.reached_s:.1f}× (peer never reached it)"
            elif c.reached:
                speed = f"< {c.reached_s / g.train_s:.1f}× (GenLab never reached it)"
            else:
                speed = "neither reached it"
        kl = f"{c.exact_kl:.3f}" if math.isfinite(c.exact_kl) else "–"
        system = c.system if c.system.startswith("GenLab") is False else f"GenLab {c.family} fast"
        rows.append(
            f"| {c.target} | {system} | {c.steps_per_s:.0f} | {_fmt_reached(c, budget)} "
            f"| {c.best_ratio:.2f} | {c.final_ratio:.2f} | {kl} | {speed} |"
        )
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--targets", nargs="*", default=DEFAULT_TARGETS)
    ap.add_argument("--peers", nargs="*", default=list(PEERS), help="peer names (default: all)")
    ap.add_argument("--budget", type=float, default=60.0, help="training seconds per peer run")
    ap.add_argument("--check-every", type=float, default=2.0, help="seconds of training")
    ap.add_argument("--n-eval", type=int, default=2000, help="samples per check (fixed)")
    ap.add_argument("--ratio", type=float, default=2.0, help="quality bar: SW ≤ ratio × floor")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write every curve as JSON")
    ap.add_argument("--markdown", type=Path, default=None, help="write the table as Markdown")
    ap.add_argument(
        "--from-json", type=Path, default=None, help="print the table of a saved --json run"
    )
    a = ap.parse_args()
    if a.from_json:
        curves = [
            Curve(**{**d, "checks": [tuple(c) for c in d["checks"]]})
            for d in json.loads(a.from_json.read_text())
        ]
        print(table(curves, a.budget, a.ratio))
        return 0
    unknown = set(a.peers) - set(PEERS)
    if unknown:
        ap.error(f"unknown peers {sorted(unknown)}; known: {list(PEERS)}")
    configure_threads()
    print(f"# {device_info()}  budget {a.budget:g} s  check every {a.check_every:g} s", flush=True)
    print(f"# CPU time in training steps; n_eval {a.n_eval}; {time.strftime('%Y-%m-%d %H:%M')}")
    families = sorted({PEERS[p][1] for p in a.peers})
    curves: list[Curve] = []
    for target in a.targets:
        judge = Judge(target, a.n_eval, a.seed)
        for fam in families:
            c = bench_genlab(fam, judge, a.check_every, a.ratio, a.seed)
            curves.append(c)
            print(f"  {target:10s} GenLab {fam:14s} {_fmt_reached(c, a.budget)}", flush=True)
            for p in a.peers:
                make, pfam = PEERS[p]
                if pfam != fam:
                    continue
                c = bench_peer(p, make, fam, judge, a.budget, a.check_every, a.ratio, a.seed)
                curves.append(c)
                print(f"  {target:10s} {p:21s} {_fmt_reached(c, a.budget)}", flush=True)
    print("\nConfigurations:")
    seen = set()
    for c in curves:
        if (c.system, c.family) not in seen:
            seen.add((c.system, c.family))
            label = c.system if not c.system.startswith("GenLab") else f"GenLab {c.family}"
            print(f"- {label}: {c.config}")
    print()
    md = table(curves, a.budget, a.ratio)
    print(md)
    if a.json:
        a.json.write_text(json.dumps([asdict(c) for c in curves], indent=2, default=str))
    if a.markdown:
        a.markdown.write_text(md + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
