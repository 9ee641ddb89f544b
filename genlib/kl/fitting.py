"""Fitting q_θ to p on the common training loop, recording an animation of the fit.

``fit(cfg)`` builds q_θ (``build_q``) and runs ``genlib.training.train`` with
``cfg.train_config()``: the same limits, ``on_step`` progress callback (return ``False`` to stop)
and NaN guard as every model. At the steps of ``frame_steps`` a frame records q_θ's parameters,
its samples (the same display noise in every frame, so the animation is smooth), its density on
the display grid and the two exact KL values (``exact_kls``). ``fit_pair`` runs both directions
from the same start (one ``KLPair``); ``seed_sweep`` tallies which mode the fit ends in per seed.

Every entry point takes the loop's ``control`` (``genlib.training.Control``: pause, single steps,
slow motion, Stop; a ``genlib.jobs.Job``) and an ``on_step`` progress callback, so a fit runs as a
background job like every model (``JobQueue.submit_work(job_key(cfg), total, work)``). A pair or
a sweep is one job: its ``on_step`` / ``control`` steps count across the fits (the second fit's
steps are offset by ``cfg.steps``), and its result has a ``status`` ("ok" | "stopped" |
"diverged") naming the job's end state. A stopped fit keeps its frames so far, plus one at the
step it stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from genlib.device import configure_threads, get_device, make_generator
from genlib.distributions.base import GaussianMixture, Target2D
from genlib.geometry import Bounds, union_bounds
from genlib.kl.config import MAX_SEEDS, KLConfig
from genlib.kl.families import GaussianQ, build_q
from genlib.kl.grid import MAX_SPAN, GridCache, eval_log_q, exact_kls, make_grid
from genlib.training import Control, OnStep, train

__all__ = [
    "FitStatus",
    "JobStatus",
    "KLFrame",
    "KLFit",
    "KLPair",
    "SeedSweep",
    "frame_steps",
    "fit",
    "fit_pair",
    "seed_sweep",
    "target_modes",
    "mode_fractions",
    "picked_mode",
    "moment_matched",
    "jsonable",
    "DOMINANT",
    "MAX_REFERENCE_MODES",
]

FitStatus = Literal["ok", "stopped", "diverged", "infinite"]
JobStatus = Literal["ok", "stopped", "diverged"]  # a job's end state (``genlib.jobs``)
DOMINANT = 0.75
MAX_REFERENCE_MODES = 32


# ----------------------------------------------------------------------------------------------
# modes and the forward-KL optimum


def target_modes(target: Target2D) -> tuple[np.ndarray, np.ndarray] | None:
    """Mode centres (K, 2) and weights (K,) of a Gaussian-mixture target, else None."""
    if isinstance(target, GaussianMixture):
        return target.means.double().numpy(), target.weights.double().numpy()
    return None


def mode_fractions(samples: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Fraction of the samples nearest each centre: (N, 2), (K, 2) -> (K,)."""
    d = ((samples[:, None, :] - centres[None, :, :]) ** 2).sum(-1)  # (N, K)
    return np.bincount(d.argmin(1), minlength=centres.shape[0]) / max(samples.shape[0], 1)


def picked_mode(fractions: np.ndarray) -> int:
    """argmax of the mode fractions (K,) when it holds ≥ ``DOMINANT`` of q's samples, else −1."""
    k = int(np.argmax(fractions))
    return k if fractions[k] >= DOMINANT else -1


def moment_matched(target: Target2D) -> tuple[np.ndarray, np.ndarray]:
    """The forward-KL optimum over Gaussians: q* = N(E_p[x], Cov_p[x]): mean (2,), cov (2, 2)."""
    m, c = target.moments()
    return m.double().numpy(), c.double().numpy()


def jsonable(v: Any) -> Any:
    """``v`` for ``json.dumps``: non-finite floats become the strings "inf", "-inf", "nan" (valid
    JSON; ``float()`` reads them back), numpy scalars become Python numbers."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf"))
    if isinstance(v, np.integer):
        return int(v)
    return v


# ----------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class KLFrame:
    """q_θ at one recorded step."""

    step: int
    params: dict[str, Any]  # describe(): always "mean" (2,) and "cov" (2, 2)
    kl_pq: float  # KL(p‖q_θ) on the grid
    kl_qp: float  # KL(q_θ‖p) on the grid (inf when q > 0 where p = 0)
    loss: float  # the Monte-Carlo objective at this step (nan at step 0)
    q_mass: float  # ∫ q over the grid (close to 1 when the grid holds q)
    samples: np.ndarray  # (n_show, 2): f_θ of the same display noise in every frame
    log_q: np.ndarray  # (R, R) float32 on the display grid (fit.xs, fit.ys)
    kl_method: str = "grid"  # "grid", or "mc" where a direction fell back to Monte Carlo


@dataclass(frozen=True)
class KLFit:
    """The result of ``fit``: frames in step order, the target's log density on the display grid."""

    cfg: KLConfig
    frames: list[KLFrame]
    status: FitStatus
    message: str
    seconds: float
    bounds: Bounds
    xs: np.ndarray  # (R,) display grid
    ys: np.ndarray  # (R,)
    log_p: np.ndarray  # (R, R) float32
    entropy_p: float  # S(p) on the KL grid
    target_mean: list[float] = field(default_factory=list)
    target_cov: list[list[float]] = field(default_factory=list)
    modes: list[list[float]] | None = None  # GMM target: mode centres
    mode_weights: list[float] | None = None
    #: exact KLs of reference Gaussians on the same grids: "moment" (the forward-KL optimum
    #: N(E_p x, Cov_p x)) and, for a GMM target, "modes" (q = component k: KL(q‖p) ≈ log 1/w_k)
    reference: dict[str, Any] = field(default_factory=dict)
    steps_done: int = 0  # optimisation steps the common loop completed

    @property
    def final(self) -> KLFrame:
        return self.frames[-1]

    def trace(self) -> list[dict[str, float]]:
        """One row per frame: step, kl_pq, kl_qp, loss, mean_x, mean_y."""
        return [
            {
                "step": f.step,
                "kl_pq": f.kl_pq,
                "kl_qp": f.kl_qp,
                "loss": f.loss,
                "mean_x": f.params["mean"][0],
                "mean_y": f.params["mean"][1],
            }
            for f in self.frames
        ]

    def picked_mode(self) -> int | None:
        """The mode holding most (≥ ``DOMINANT``) of q's final samples; −1 when q_θ spreads over
        several modes; None for targets without listed modes."""
        if self.modes is None:
            return None
        return picked_mode(mode_fractions(self.final.samples, np.asarray(self.modes)))

    def summary(self) -> dict[str, Any]:
        """The final state in one JSON-able line: status, step, both KLs, mean."""
        fin = self.final
        return jsonable(
            {
                "status": self.status,
                "step": fin.step,
                "kl_pq": fin.kl_pq,
                "kl_qp": fin.kl_qp,
                "mean": fin.params["mean"],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: config, status, final mean/cov and parameters, references, per-frame trace
        (the CLI's ``result.json``)."""
        fin = self.final
        return jsonable(
            {
                "config": self.cfg.to_dict(),
                "status": self.status,
                "message": self.message,
                "seconds": self.seconds,
                "q": self.cfg.q,
                "divergence": self.cfg.divergence,
                "mean": fin.params["mean"],
                "cov": fin.params["cov"],
                "params": fin.params,
                "kl_pq": fin.kl_pq,
                "kl_qp": fin.kl_qp,
                "entropy_p": self.entropy_p,
                "target_mean": self.target_mean,
                "target_cov": self.target_cov,
                "modes": self.modes,
                "mode_weights": self.mode_weights,
                "picked_mode": self.picked_mode(),
                "reference": self.reference,
                "trace": [
                    {"step": r["step"], "kl_pq": r["kl_pq"], "kl_qp": r["kl_qp"], "loss": r["loss"]}
                    for r in self.trace()
                ],
            }
        )


@dataclass(frozen=True)
class SeedSweep:
    """Which mode the fit (reverse KL on the page) ends in, per seed."""

    cfg: KLConfig
    #: per seed: seed, picked (mode index, −1 several, None), fractions, mean_x, mean_y, kl_qp,
    #: kl_pq, status
    rows: list[dict[str, Any]]
    tally: dict[int, int]  # mode index (−1: several modes) -> number of seeds
    modes: list[list[float]] | None
    mode_weights: list[float] | None
    bounds: Bounds = (-4.0, 4.0, -4.0, 4.0)  # the fits' display box
    xs: np.ndarray | None = None  # (R,) display grid and log p there (R, R)
    ys: np.ndarray | None = None
    log_p: np.ndarray | None = None
    #: "stopped" when the sweep was stopped (``rows`` holds the seeds that finished), "diverged"
    #: when a seed's fit diverged, else "ok"
    status: JobStatus = "ok"
    seeds_total: int = 0  # seeds asked for (``len(rows)`` may be fewer when stopped)


@dataclass(frozen=True)
class KLPair:
    """``fit_pair``'s result: the forward and the reverse fit from the same start (one job).
    Unpacks as ``fwd, rev = pair``."""

    forward: KLFit
    reverse: KLFit

    @property
    def status(self) -> JobStatus:
        """The job's end state: "stopped" if either fit was stopped, "diverged" if either
        diverged (or is infinite at the start), else "ok"."""
        return _job_status(self.forward, self.reverse)

    @property
    def steps_done(self) -> int:
        """Steps of both fits together (the job's progress)."""
        return self.forward.steps_done + self.reverse.steps_done

    @property
    def fits(self) -> dict[str, KLFit]:
        return {"forward": self.forward, "reverse": self.reverse}

    def __iter__(self) -> Iterator[KLFit]:
        return iter((self.forward, self.reverse))


def _job_status(*fits: KLFit) -> JobStatus:
    if any(f.status == "stopped" for f in fits):
        return "stopped"
    if any(f.status in ("diverged", "infinite") for f in fits):
        return "diverged"
    return "ok"


class _Offset:
    """A fit's progress callback and control, seen by a job whose steps count across fits."""

    def __init__(self, on_step: OnStep | None, control: Control | None, offset: int) -> None:
        self.offset = offset
        self._on_step, self._control = on_step, control
        self.on_step = None if on_step is None else self._step
        self.control = None if control is None else self

    def _step(self, step: int, logs: dict[str, float]) -> bool | None:
        assert self._on_step is not None
        return self._on_step(step + self.offset, {**logs, "step": float(step + self.offset)})

    def before_step(self, step: int) -> bool:
        assert self._control is not None
        return self._control.before_step(step + self.offset)


class _Stopped:
    """A control that stops before the first step (the fits after a Stop)."""

    def before_step(self, step: int) -> bool:
        return False


# ----------------------------------------------------------------------------------------------
# fitting


def frame_steps(steps: int, num_frames: int) -> list[int]:
    """The recorded steps: 0 (the start), ``steps`` (the end), evenly in between (≤ num_frames)."""
    return sorted({int(round(s)) for s in np.linspace(0, steps, num_frames)})


def _box(mean: Sequence[float], scale: float, k: float) -> Bounds:
    return (mean[0] - k * scale, mean[0] + k * scale, mean[1] - k * scale, mean[1] + k * scale)


def _fit_bounds(target: Target2D, cfg: KLConfig, t_mean: Tensor, t_cov: Tensor) -> Bounds:
    """The display box, fixed for the whole animation: the union of the target's box, the start
    q's ±3σ box and the moment-matched Gaussian's ±2.2σ box (where forward KL ends), square,
    padded by 4 %, at most ``MAX_SPAN`` wide."""
    ib = _box(cfg.init_mean, cfg.init_scale * (1.5 if cfg.q == "mixture" else 1.0), 3.0)
    sd = t_cov.diagonal().clamp_min(0).sqrt().tolist()
    mm = t_mean.tolist()
    mb = (mm[0] - 2.2 * sd[0], mm[0] + 2.2 * sd[0], mm[1] - 2.2 * sd[1], mm[1] + 2.2 * sd[1])
    x0, x1, y0, y1 = union_bounds(target.bounds, ib, mb)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = min(1.04 * (x1 - x0), MAX_SPAN) / 2
    return (cx - half, cx + half, cy - half, cy + half)


def _references(
    target: Target2D, t_mean: Tensor, t_cov: Tensor, cache: GridCache
) -> dict[str, Any]:
    """Exact KL values of the moment-matched Gaussian and (GMM targets, ≤ 32 components) of a q
    sitting exactly on each component."""
    ref: dict[str, Any] = {}
    try:
        mm = exact_kls(target, GaussianQ.from_moments(t_mean.tolist(), t_cov.numpy()), cache=cache)
        ref["moment"] = {"kl_pq": mm["kl_pq"], "kl_qp": mm["kl_qp"]}
    except RuntimeError:  # a degenerate covariance (Cholesky failed)
        pass
    if isinstance(target, GaussianMixture) and target.comp.means.shape[0] <= MAX_REFERENCE_MODES:
        rows = []
        for mu, var, lw in zip(
            target.comp.means, target.comp.variances, target.comp.log_weights, strict=True
        ):
            kls = exact_kls(
                target, GaussianQ.from_moments(mu.tolist(), np.diag(var.numpy())), cache=cache
            )
            rows.append({"kl_pq": kls["kl_pq"], "kl_qp": kls["kl_qp"], "log_inv_w": float(-lw)})
        ref["modes"] = rows
    return ref


def fit(
    cfg: KLConfig,
    *,
    device: torch.device | str | None = None,
    on_step: OnStep | None = None,
    on_frame: Callable[[int, KLFrame], None] | None = None,
    display_res: int = 96,
    control: Control | None = None,
) -> KLFit:
    """Fit q_θ to p by plain gradient steps on ``cfg.divergence`` (the common training loop);
    record ``cfg.num_frames`` frames.

    ``on_step(step, logs)`` is the loop's progress callback (every step; return ``False`` to stop:
    ``status="stopped"``, the frames so far are kept); ``on_frame(step, frame)`` sees each frame as
    it is recorded. ``control.before_step(step)`` (the loop's ``Control``, e.g. a job: pause,
    slow motion, Stop) runs before every step; when it returns ``False`` the fit stops with
    ``status="stopped"``, keeping its frames plus one at the step it stopped. Deterministic under
    ``cfg.seed`` on a given device. Stops with ``status="diverged"`` when the loss or the
    parameters become NaN/inf (the last finite frame is kept), and with ``status="infinite"`` when
    the objective is +inf at the start (reverse KL: q_θ puts mass where p = 0, so KL(q‖p) = ∞ and
    its gradient does not exist)."""
    configure_threads()
    t_start = time.perf_counter()
    dev = torch.device(device) if device is not None else get_device()
    target = cfg.build_target()
    t_mean, t_cov = (t.double() for t in target.moments())
    bounds = _fit_bounds(target, cfg, t_mean, t_cov)
    cache = GridCache(target, cfg.grid_res)
    grid = cache.grid(0)
    disp = make_grid(target, bounds, min(max(display_res, 16), 128))
    p_grid = grid.log_p.exp()
    entropy_p = float(
        -(torch.where(p_grid > 0, p_grid * grid.log_p, torch.zeros_like(p_grid))).sum()
        * grid.cell_area
    )
    modes = target_modes(target)
    reference = _references(target, t_mean, t_cov, cache)

    q = build_q(cfg, dev)
    noise = q.display_noise(cfg.n_show, make_generator(cfg.seed + 2, dev))  # (n_show, 3), fixed
    record = set(frame_steps(cfg.steps, cfg.num_frames))
    frames: list[KLFrame] = []
    broken_at = [0]  # the step whose frame was not finite (0: none)

    def snapshot(step: int, loss: float) -> KLFrame | None:
        with torch.no_grad():
            ys = q.push(noise).double().cpu().numpy()
        desc = q.describe()
        if not (np.isfinite(ys).all() and np.isfinite(np.asarray(desc["cov"])).all()):
            return None
        kls = exact_kls(target, q, cache=cache)
        lq_disp = eval_log_q(q, disp.points).reshape(disp.res, disp.res).float().numpy()
        method = "grid" if kls["method_pq"] == kls["method_qp"] == "grid" else "mc"
        return KLFrame(
            step, desc, kls["kl_pq"], kls["kl_qp"], loss, kls["q_mass"], ys, lq_disp, method
        )

    def add(step: int, frame: KLFrame) -> None:
        frames.append(frame)
        if on_frame is not None:
            on_frame(step, frame)

    def hook(step: int, logs: dict[str, float]) -> bool | None:
        if step in record:
            fr = snapshot(step, float(logs["loss"]))
            if fr is None:
                broken_at[0] = step
                return False
            add(step, fr)
        return None if on_step is None else on_step(step, logs)

    first = snapshot(0, float("nan"))
    assert first is not None  # the start is a finite Gaussian
    add(0, first)
    result = train(q, target, cfg.train_config(), on_step=hook, device=dev, control=control)
    status: FitStatus = result.status
    message = result.message
    if status == "stopped" and frames[-1].step < result.steps_done:  # where it was stopped
        last = result.history[-1]["loss"] if result.history else float("nan")
        fr = snapshot(result.steps_done, float(last))
        if fr is not None:
            add(result.steps_done, fr)
    if broken_at[0]:
        status = "diverged"
        message = (
            f"the fit diverged before step {broken_at[0]} (the parameters of q_θ are not "
            "finite); try a smaller learning rate"
        )
    elif status == "diverged" and result.steps_done == 0:  # +inf at the very first step
        if cfg.divergence == "reverse":
            status = "infinite"
            message = (
                "KL(q‖p) = +inf: q_θ puts mass where p = 0, so reverse KL has no gradient on "
                "this target"
            )
        else:
            message = "KL(p‖q) = +inf at the start: q_θ vanishes where p has mass"
    return KLFit(
        cfg=cfg,
        frames=frames,
        status=status,
        message=message,
        seconds=time.perf_counter() - t_start,
        bounds=bounds,
        xs=disp.xs,
        ys=disp.ys,
        log_p=disp.log_p.reshape(disp.res, disp.res).float().numpy(),
        entropy_p=entropy_p,
        target_mean=t_mean.tolist(),
        target_cov=t_cov.tolist(),
        modes=None if modes is None else modes[0].tolist(),
        mode_weights=None if modes is None else modes[1].tolist(),
        reference=reference,
        steps_done=result.steps_done,
    )


def fit_pair(
    cfg: KLConfig,
    *,
    on_step: OnStep | None = None,
    control: Control | None = None,
    **kw: Any,
) -> KLPair:
    """The forward and the reverse fit of ``cfg`` from the same start (same init and seed), as
    one job of ``2 * cfg.steps`` steps: the reverse fit's steps reach ``on_step`` and ``control``
    offset by ``cfg.steps``. After a Stop the reverse fit does not train (``stopped`` at step 0,
    its start frame only). ``kw`` as for ``fit``."""
    fwd = fit(cfg.with_(divergence="forward"), on_step=on_step, control=control, **kw)
    second = _Offset(on_step, control, cfg.steps)
    ctl: Control | None = _Stopped() if fwd.status == "stopped" else second.control
    rev = fit(cfg.with_(divergence="reverse"), on_step=second.on_step, control=ctl, **kw)
    return KLPair(fwd, rev)


def seed_sweep(
    cfg: KLConfig,
    seeds: Sequence[int],
    *,
    on_step: OnStep | None = None,
    control: Control | None = None,
    **kw: Any,
) -> SeedSweep:
    """Fit ``cfg`` once per seed (≤ ``MAX_SEEDS``; two frames each) and tally the mode q_θ picks:
    the mode nearest to most of q_θ's final samples. One job of ``len(seeds) * cfg.steps`` steps
    (seed i's steps reach ``on_step`` / ``control`` offset by ``i * cfg.steps``); after a Stop the
    rows hold the seeds that finished (``status="stopped"``)."""
    seeds = [int(s) for s in seeds]
    if not (1 <= len(seeds) <= MAX_SEEDS):
        raise ValueError(f"seed_sweep takes 1 to {MAX_SEEDS} seeds")
    rows: list[dict[str, Any]] = []
    tally: dict[int, int] = {}
    res: KLFit | None = None
    fits: list[KLFit] = []
    for i, s in enumerate(seeds):
        off = _Offset(on_step, control, i * cfg.steps)
        res = fit(cfg.with_(seed=s, num_frames=2), on_step=off.on_step, control=off.control, **kw)
        fits.append(res)
        if res.status == "stopped":
            break
        fin = res.final
        fr = None if res.modes is None else mode_fractions(fin.samples, np.asarray(res.modes))
        picked = None if fr is None else picked_mode(fr)
        if picked is not None:
            tally[picked] = tally.get(picked, 0) + 1
        rows.append(
            {
                "seed": s,
                "picked": picked,
                "fractions": None if fr is None else fr.tolist(),
                "mean_x": fin.params["mean"][0],
                "mean_y": fin.params["mean"][1],
                "kl_qp": fin.kl_qp,
                "kl_pq": fin.kl_pq,
                "status": res.status,
            }
        )
    assert res is not None
    return SeedSweep(
        cfg,
        rows,
        dict(sorted(tally.items())),
        res.modes,
        res.mode_weights,
        res.bounds,
        res.xs,
        res.ys,
        res.log_p,
        status=_job_status(*fits),
        seeds_total=len(seeds),
    )
