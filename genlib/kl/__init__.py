"""Forward vs reverse KL fitting (lecture 2-5, 訓練の指針 (a) / (b)): mode covering vs mode seeking.

A simple model q_θ (a Gaussian — the lecture's case —, a Gaussian mixture, or a small coupling flow)
is fitted to a target p with an exact density by plain gradient steps on one of

    (a) forward KL   D_KL(p‖q_θ) = −⟨log q_θ(x)⟩_p − S(p)          (maximum likelihood on samples of p)
    (b) reverse KL   D_KL(q_θ‖p) = ⟨log q_θ(y) − log p(y)⟩_{q_θ}    (reparametrised y = f_θ(ε), ε ~ N(0, I))

(a) needs samples of p and the density of q_θ; (b) needs samples of q_θ and the density of p. Both
objectives are ``genlib.objectives`` (shared with the normalizing flow), and the fit runs on the
common training loop ``genlib.training.train``.

Modules
- ``config``: ``KLConfig`` (frozen, validated; ``train_config()`` -> ``TrainConfig``) and limits;
- ``families``: the q families ``GaussianQ``, ``MixtureQ``, ``FlowQ`` (``GenerativeModel``
  subclasses whose ``loss`` is the chosen KL) in the registry ``Q_FAMILIES``; ``build_q``;
- ``grid``: exact KL values both ways on a grid (``exact_kls``, ``GridCache``, ``grid_kls``);
- ``fitting``: ``fit``, ``fit_pair``, ``seed_sweep`` (each takes the loop's ``control``, so it
  runs as a background job with Stop / Pause / Step) and their results ``KLFit`` (frames,
  ``trace()``, ``to_dict()``), ``KLFrame``, ``KLPair``, ``SeedSweep`` (with a job ``status``);
  mode helpers. ``job_key(cfg, kind)``: the content-hash key of such a job.

    cfg = KLConfig(target="two_peaks", divergence="reverse", seed=3)
    res = fit(cfg, on_step=progress)      # KLFit: frames, trace(), final, to_dict()
    fwd, rev = fit_pair(cfg)              # a KLPair: same init, both directions
    work = lambda on_step, control: fit_pair(cfg, on_step=on_step, control=control)
    job = default_queue().submit_work(job_key(cfg), 2 * cfg.steps, work)  # genlib.jobs

The command line (``python -m genlib kl``) lives in ``genlib.cli``.
"""

from genlib.kl.config import (
    DIVERGENCES,
    FLOW_COUPLINGS,
    MAX_COMPONENTS,
    MAX_FLOW_LAYERS,
    MAX_FORWARD_DATA,
    MAX_FRAMES,
    MAX_GRID,
    MAX_LR,
    MAX_SAMPLES,
    MAX_SEEDS,
    MAX_SHOW,
    MAX_STEPS,
    OPTIMIZERS,
    Q_NAMES,
    Divergence,
    FlowCoupling,
    JobKind,
    KLConfig,
    OptimizerName,
    QFamily,
    job_key,
)
from genlib.kl.families import Q_FAMILIES, FlowQ, GaussianQ, MixtureQ, QDist, build_q
from genlib.kl.fitting import (
    DOMINANT,
    FitStatus,
    JobStatus,
    KLFit,
    KLFrame,
    KLPair,
    SeedSweep,
    fit,
    fit_pair,
    frame_steps,
    jsonable,
    mode_fractions,
    moment_matched,
    picked_mode,
    seed_sweep,
    target_modes,
)
from genlib.kl.grid import (
    MAX_SPAN,
    MC_SAMPLES,
    GridCache,
    KLGrid,
    eval_log_q,
    exact_kls,
    grid_kls,
    make_grid,
)

__all__ = [
    # config
    "KLConfig",
    "job_key",
    "JobKind",
    "QFamily",
    "Divergence",
    "OptimizerName",
    "FlowCoupling",
    "Q_NAMES",
    "DIVERGENCES",
    "OPTIMIZERS",
    "FLOW_COUPLINGS",
    "MAX_STEPS",
    "MAX_SAMPLES",
    "MAX_FRAMES",
    "MAX_GRID",
    "MAX_SHOW",
    "MAX_SEEDS",
    "MAX_COMPONENTS",
    "MAX_FLOW_LAYERS",
    "MAX_LR",
    "MAX_FORWARD_DATA",
    # q families
    "QDist",
    "GaussianQ",
    "MixtureQ",
    "FlowQ",
    "Q_FAMILIES",
    "build_q",
    # grid KL
    "KLGrid",
    "make_grid",
    "grid_kls",
    "eval_log_q",
    "GridCache",
    "exact_kls",
    "MAX_SPAN",
    "MC_SAMPLES",
    # fitting
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
]
