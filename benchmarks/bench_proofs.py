"""Cost of the "proofs made visible" panels (issue 11) at their defaults: what one cache miss of
each panel computes, on this machine's CPU.

    GENLIB_THREADS=1 .venv/bin/python benchmarks/bench_proofs.py [--repeat 2] [--only NAME]

A registry: each engineer APPENDS ``Case`` entries to ``CASES`` (one block per deliverable) and
nothing else changes. A case's ``setup()`` builds what the page would have (untimed, e.g. a model
in its initial state and its target); ``run(state)`` is the panel's computation (timed). The
table prints the best of ``--repeat`` runs and whether it meets the 2 s target.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genlib.device import configure_threads  # noqa: E402

TARGET_S = 2.0


@dataclass(frozen=True)
class Case:
    """One panel: ``name`` (unique), the ``page`` it sits on, an untimed ``setup()`` and the timed
    ``run(state)``."""

    name: str
    page: str
    setup: Callable[[], Any]
    run: Callable[[Any], Any]


CASES: list[Case] = []


# -- issue 11, items 1 and 4: objective identities and Langevin's bias ----------------------------
def _fast(family: str, target: str = "8gaussians") -> Any:
    from genlib.runs import RunSpec, build_model

    spec = RunSpec.from_preset(family, target)
    return spec, build_model(spec), spec.target.build()


def _gap_curve(state: Any) -> Any:
    from genlib.lab.identities import gap_curve

    spec, model, target = state
    return gap_curve(model, target, spec.train.lr, batch_size=min(spec.train.batch_size, 256))


def _live_gap(state: Any) -> Any:
    from genlib.lab.identities import live_gap

    _, model, target = state
    return [live_gap(model, target) for _ in range(10)]


def _langevin_bias(state: Any) -> Any:
    from genlib.device import make_generator
    from genlib.lab.langevin import langevin_bias

    _, _, target = state
    return [langevin_bias(target, generator=make_generator(0), mala=m) for m in (False, True)]


CASES += [
    Case("objective gap curve (replay, 300 steps)", "score_matching",
         lambda: _fast("score_matching"), _gap_curve),
    Case("objective gap curve (replay, 300 steps)", "ncsn", lambda: _fast("ncsn"), _gap_curve),
    Case("objective gap curve (replay, 300 steps)", "flow_matching",
         lambda: _fast("flow_matching"), _gap_curve),
    Case("10 live-frame gap estimates (n = 256)", "score_matching",
         lambda: _fast("score_matching"), _live_gap),
    Case("10 live-frame gap estimates (n = 256)", "ncsn", lambda: _fast("ncsn"), _live_gap),
    Case("10 live-frame gap estimates (n = 256)", "flow_matching",
         lambda: _fast("flow_matching"), _live_gap),
    Case("Langevin bias: ULA + MALA, 4 ε", "score_matching",
         lambda: _fast("score_matching"), _langevin_bias),
]  # fmt: skip


# -- issue 11, items 2 and 5: the DDPM bound in nats, samplers vs NFE -----------------------------
def _ddpm_bound(state: Any) -> Any:
    from genlib.device import make_generator
    from genlib.lab.ddpm_bound import ddpm_bounds, grid_entropy

    _, model, target = state
    return ddpm_bounds(model, target, 1000, make_generator(0)), grid_entropy(target, 200)


def _ddpm_nfe(score: str) -> Callable[[Any], Any]:
    def run(state: Any) -> Any:
        from genlib.lab.nfe import ddpm_nfe_study, exact_eps_fn

        _, model, target = state
        fn = model.eps_fn() if score == "model" else exact_eps_fn(target, model.schedule)
        budgets = tuple(sorted({min(b, model.T) for b in (10, 20, 50, 100, 200, model.T)}))
        return ddpm_nfe_study(fn, model.schedule, target, 1000, budgets, 0, score=score)

    return run


def _sde_nfe(score: str, metric: str) -> Callable[[Any], Any]:
    def run(state: Any) -> Any:
        from genlib.lab.nfe import NFE_DEFAULT, sde_nfe_study
        from genlib.samplers.sde import marginal_score_fn

        _, model, target = state
        sde = model.process
        fn = marginal_score_fn(target, sde) if score == "exact" else model.score
        return sde_nfe_study(sde, fn, target, 1000, NFE_DEFAULT, 0, score=score, metric=metric)

    return run


CASES += [
    Case("DDPM bound, β_t and β̃_t (n = 1000) + S(p) on 200²", "ddpm",
         lambda: _fast("ddpm", "moons"), _ddpm_bound),
    Case("ancestral / DDIM / DPM-Solver-2 vs NFE, ε_θ", "ddpm",
         lambda: _fast("ddpm", "moons"), _ddpm_nfe("model")),
    Case("ancestral / DDIM / DPM-Solver-2 vs NFE, exact ε", "ddpm",
         lambda: _fast("ddpm", "moons"), _ddpm_nfe("exact")),
    Case("8 samplers vs NFE ≤ 64, exact score, SW", "sde",
         lambda: _fast("sde"), _sde_nfe("exact", "sw")),
    Case("5 ODE samplers vs NFE ≤ 64, exact score, path", "sde",
         lambda: _fast("sde"), _sde_nfe("exact", "path")),
    Case("8 samplers vs NFE ≤ 64, s_θ, SW", "sde", lambda: _fast("sde"), _sde_nfe("model", "sw")),
]  # fmt: skip


# -- issue 11, items 3, 6 and 7: VAE posterior, GAN ratio corrections, the RBM slide's sign ------
def _trained(family: str, target: str) -> Any:
    """The page's trained model at its preset: the shipped/cached checkpoint when there is one,
    else the initial weights (the cost of these panels depends on their grids and sample counts,
    not on the weights)."""
    from genlib.runs import RunSpec, Trained, build_model, cached_run
    from genlib.training import TrainResult

    spec = RunSpec.from_preset(family, target)
    return cached_run(spec) or Trained(spec, build_model(spec), spec.target.build(), TrainResult())


def _vae_posterior(trained: Any) -> Any:
    from genlib.lab.vae import trained_posterior

    return trained_posterior(trained, 0)


def _gan_correction(ratio: str) -> Callable[[Any], Any]:
    def run(trained: Any) -> Any:
        from genlib.lab.gan import CORRECTION_N, trained_correction
        from genlib.runs import cached_noise_floor

        cached_noise_floor(trained.spec.target, CORRECTION_N, "sliced_wasserstein")  # page: cached
        return trained_correction(trained, CORRECTION_N, 20, 0.0, ratio)

    return run


def _rbm_sign(trained: Any) -> Any:
    from genlib.lab.rbm import SIGN_EVERY, SIGN_STEPS, trained_sign_comparison

    return trained_sign_comparison(trained, SIGN_STEPS, SIGN_EVERY)


CASES += [
    Case("true posterior vs encoder (161² grid) + ELBO (16384 MC)", "vae",
         lambda: _trained("vae", "moons"), _vae_posterior),
    Case("DRS + MH (20 steps) with D_φ, n = 2000", "gan",
         lambda: _trained("gan", "8gaussians"), _gan_correction("discriminator")),
    Case("slide's sign vs correct: 2 × 200 steps, exact KL", "rbm",
         lambda: _trained("rbm", "8gaussians"), _rbm_sign),
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--only", default="", help="run the cases whose name or page contains this")
    args = ap.parse_args(argv)
    configure_threads()
    rows = []
    for case in CASES:
        if args.only and args.only not in case.name and args.only not in case.page:
            continue
        state = case.setup()
        best = float("inf")
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            case.run(state)
            best = min(best, time.perf_counter() - t0)
        rows.append((case.page, case.name, best))
    w = max((len(r[1]) for r in rows), default=10)
    print(f"{'page':<16} {'panel':<{w}} {'seconds':>8}  ≤ {TARGET_S:g} s")
    for page, name, sec in rows:
        print(f"{page:<16} {name:<{w}} {sec:8.2f}  {'yes' if sec <= TARGET_S else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
