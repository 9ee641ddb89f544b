"""Generative adversarial network (lecture 3-3).

Generator ``y = G_θ(z)``, z ~ q_Z = N(0, I) of dimension ``z_dim``, so that
``q_θ(y) = ∫ δ(y − G_θ(z)) q_Z(z) dz`` has no tractable density. Discriminator *logit* ``D_φ(x)``
with σ(D) the probability "x is data", as in the lecture. The value function

    V(D, G) = ⟨log σ(D(x))⟩_p + ⟨log(1 − σ(D(y)))⟩_{q_θ},      max_D V = D_JS(p, q_θ) − 2 log 2

(the lecture's D_JS = KL(p‖m) + KL(q‖m), m = (p + q)/2) is maximised by φ and minimised by θ, by
alternating gradient steps: ``k_d`` discriminator steps then ``k_g`` generator steps per training
step, each with its own Adam optimiser (betas (0.5, 0.9)). The optimal discriminator satisfies
``e^{D*(x)} = p(x)/q_θ(x)`` (lecture appendix), see ``optimal_discriminator``.

Generator losses (option ``loss``):

- ``"minimax"``: the lecture's objective, minimise ⟨log(1 − σ(D(G(z))))⟩ (saturates: its gradient
  vanishes where D confidently rejects the fakes, σ(D) ≈ 0 — typical early in training);
- ``"nonsaturating"`` (default): minimise −⟨log σ(D(G(z)))⟩, same fixed points, strong gradients
  exactly where the minimax loss saturates.

Logged values per training step (means over the step's updates): ``loss`` = ``d_loss`` = −V (the
discriminator's loss; at the optimal D it equals 2 log 2 − D_JS), ``g_loss`` (the generator loss in
use), ``js_est`` = 2 log 2 − d_loss (a lower estimate of D_JS(p, q_θ) with the current D),
``d_real`` = ⟨σ(D(x))⟩_p and ``d_fake`` = ⟨σ(D(y))⟩_q (both → ½ at equilibrium).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from genlib.distributions.base import GaussianMixture, Target2D
from genlib.metrics import mode_coverage
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.nn import MLP, Activation

__all__ = [
    "GAN",
    "GanLoss",
    "StepMode",
    "GanSession",
    "GanView",
    "gan_view",
    "kde_log_density",
    "scott_bandwidth",
    "loo_bandwidth",
    "optimal_discriminator",
    "mixture_mode_coverage",
    "coverage_over_training",
    "MAX_SESSION_STEPS",
    "MAX_RECORD_FRAMES",
    "LOG4",
]

GanLoss = Literal["minimax", "nonsaturating"]
StepMode = Literal["d", "g", "both"]
LOG4 = 2 * math.log(2)  # 2 log 2: V(D*, G) + 2 log 2 = D_JS
MAX_SESSION_STEPS = 500  # one click of the page's step controls
MAX_RECORD_FRAMES = 60  # slow-motion frames per click
MAX_RECORD_STEPS = 3000  # slow-motion updates per click
MAX_K = 20  # k_d, k_g
MAX_VIEW_RES = 120  # grid resolution of a GanView
MAX_VIEW_POINTS = 5000  # fakes per GanView


def _randn(
    shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None
) -> Tensor:
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


@register("gan")
class GAN(GenerativeModel):
    """Generator G_θ and discriminator logit D_φ (see the module docstring)."""

    name = "gan"
    section = "3-3"
    presets = {
        "fast": Preset(
            model={
                "z_dim": 2,
                "hidden": 64,
                "depth": 3,
                "loss": "nonsaturating",
                "k_d": 1,
                "k_g": 1,
            },
            train={
                "steps": 6000,
                "batch_size": 256,
                "lr": 1e-3,
                "lr_decay": True,
                "ema": 0.999,
                "snapshot_every": 150,
            },
            description="small MLPs, non-saturating loss, one D and one G step, EMA of G: about 15 s on one CPU thread",
        ),
        "quality": Preset(
            model={
                "z_dim": 2,
                "hidden": 64,
                "depth": 3,
                "loss": "nonsaturating",
                "k_d": 1,
                "k_g": 1,
            },
            train={
                "steps": 15000,
                "batch_size": 512,
                "lr": 5e-4,
                "lr_decay": True,
                "ema": 0.9995,
                "snapshot_every": 300,
            },
            description="longer training on larger batches, smaller steps (about a minute on a CPU)",
        ),
    }

    def __init__(
        self,
        z_dim: int = 2,
        hidden: int = 128,
        depth: int = 3,
        g_activation: Activation = "leaky_relu",
        d_activation: Activation = "leaky_relu",
        loss: GanLoss = "nonsaturating",
        k_d: int = 1,
        k_g: int = 1,
        d_lr_scale: float = 1.0,
        beta1: float = 0.5,
        beta2: float = 0.9,
    ) -> None:
        super().__init__()
        if not (1 <= z_dim <= 64):
            raise ValueError("z_dim must be in [1, 64]")
        if not (1 <= hidden <= 1024 and 1 <= depth <= 8):
            raise ValueError("hidden must be in [1, 1024] and depth in [1, 8]")
        if loss not in ("minimax", "nonsaturating"):
            raise ValueError("loss must be 'minimax' or 'nonsaturating'")
        if not (1 <= k_d <= MAX_K and 1 <= k_g <= MAX_K):
            raise ValueError(f"k_d and k_g must be in [1, {MAX_K}]")
        if not (0.01 <= d_lr_scale <= 100.0):
            raise ValueError("d_lr_scale must be in [0.01, 100]")
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError("Adam betas must be in [0, 1)")
        self.z_dim = z_dim
        self.gan_loss: GanLoss = loss
        self.k_d, self.k_g = int(k_d), int(k_g)
        self.d_lr_scale = float(d_lr_scale)
        self.betas = (float(beta1), float(beta2))
        self.G = MLP(z_dim, 2, hidden=hidden, depth=depth, activation=g_activation)  # G_θ
        self.D = MLP(2, 1, hidden=hidden, depth=depth, activation=d_activation)  # D_φ

    # ---------------------------------------------------------------- the two networks
    def generate(self, z: Tensor) -> Tensor:
        """y = G_θ(z): (N, z_dim) -> (N, 2)."""
        return self.G(z)

    def discriminate(self, x: Tensor) -> Tensor:
        """The logit D_φ(x): (N, 2) -> (N,); σ(D) is the probability that x is data."""
        return self.D(x).squeeze(-1)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return _randn((n, self.z_dim), self.device, generator)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return self.generate(self.sample_latent(n, generator=generator))

    # ---------------------------------------------------------------- objectives
    def value(self, x: Tensor, y: Tensor) -> Tensor:
        """V(D, G) = ⟨log σ(D(x))⟩_p + ⟨log(1 − σ(D(y)))⟩_q on data x and fakes y (scalar);
        log σ(d) = −softplus(−d), log(1 − σ(d)) = −softplus(d)."""
        return -F.softplus(-self.discriminate(x)).mean() - F.softplus(self.discriminate(y)).mean()

    def generator_loss_per_point(self, y: Tensor) -> Tensor:
        """The generator's loss of each fake y (N,): minimax log(1 − σ(D(y))) = −softplus(D(y));
        non-saturating −log σ(D(y)) = softplus(−D(y))."""
        d = self.discriminate(y)
        return -F.softplus(d) if self.gan_loss == "minimax" else F.softplus(-d)

    def loss(self, x: Tensor) -> Tensor:
        """The discriminator loss −V(D, G) on a data batch with fresh fakes (the alternating
        updates live in ``train_step``)."""
        y = self.generate(self.sample_latent(x.shape[0]))
        return -self.value(x, y)

    def generator_push(self, y: Tensor) -> Tensor:
        """−∇_y of the generator loss at each fake y: the direction a G step moves that point
        (through θ), (N, 2) -> (N, 2). Parameter gradients are left untouched."""
        with torch.enable_grad():
            yy = y.detach().clone().requires_grad_(True)
            (g,) = torch.autograd.grad(self.generator_loss_per_point(yy).sum(), yy)
        return -g.detach()

    def ema_parameters(self) -> list[torch.nn.Parameter]:
        """An EMA of the weights (``TrainConfig.ema``) averages the generator only: the averaged
        G is the one sampled at the end (the discriminator keeps its last weights)."""
        return list(self.G.parameters())

    # ---------------------------------------------------------------- alternating updates
    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        """Two Adams: [discriminator (lr · d_lr_scale), generator (lr)]."""
        opt_d = torch.optim.Adam(self.D.parameters(), lr=lr * self.d_lr_scale, betas=self.betas)
        opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=self.betas)
        return [opt_d, opt_g]

    def d_step(
        self, x: Tensor, opt_d: torch.optim.Optimizer, *, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """One ascent step of φ on V (descent on −V) with fresh fakes; θ is not touched."""
        with torch.no_grad():
            y = self.generate(self.sample_latent(x.shape[0], generator=generator))
        opt_d.zero_grad(set_to_none=True)
        d_x, d_y = self.discriminate(x), self.discriminate(y)
        d_loss = F.softplus(-d_x).mean() + F.softplus(d_y).mean()  # −V
        d_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.D.parameters(), self.grad_clip)
        opt_d.step()
        return {
            "d_loss": d_loss.detach(),
            "d_real": torch.sigmoid(d_x).mean().detach(),
            "d_fake": torch.sigmoid(d_y).mean().detach(),
        }

    def g_step(
        self, n: int, opt_g: torch.optim.Optimizer, *, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """One descent step of θ on the generator loss with ``n`` fresh fakes; φ is not updated
        (its gradients are cleared)."""
        opt_g.zero_grad(set_to_none=True)
        y = self.generate(self.sample_latent(n, generator=generator))
        g_loss = self.generator_loss_per_point(y).mean()
        g_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.G.parameters(), self.grad_clip)
        opt_g.step()
        self.D.zero_grad(set_to_none=True)
        return {"g_loss": g_loss.detach()}

    def train_step(
        self, x: Tensor, optimizers: list[torch.optim.Optimizer], step: int
    ) -> dict[str, Tensor]:
        """``k_d`` discriminator steps on the batch (fresh fakes each), then ``k_g`` generator
        steps; logs the means over those updates (see the module docstring)."""
        opt_d, opt_g = optimizers
        d_logs = [self.d_step(x, opt_d) for _ in range(self.k_d)]
        g_logs = [self.g_step(x.shape[0], opt_g) for _ in range(self.k_g)]
        out = {k: torch.stack([r[k] for r in d_logs]).mean() for k in d_logs[0]}
        out["g_loss"] = torch.stack([r["g_loss"] for r in g_logs]).mean()
        out["loss"] = out["d_loss"]
        out["js_est"] = LOG4 - out["d_loss"]
        return out

    @torch.no_grad()
    def trajectory(
        self, n: int, num_frames: int = 60, *, generator: torch.Generator | None = None
    ) -> Trajectory:
        """The push-forward as an animation: each latent z (its first two coordinates; a 1D latent
        on the x₁ axis) moves on a straight line to G_θ(z). ``ts`` runs over [0, 1]."""
        num_frames = max(2, int(num_frames))
        z = self.sample_latent(n, generator=generator)
        y = self.generate(z)
        z_plane = z[:, :2] if self.z_dim >= 2 else torch.cat([z, torch.zeros_like(z)], dim=1)
        ts = torch.linspace(0, 1, num_frames, device=y.device)
        xs = (1 - ts).reshape(-1, 1, 1) * z_plane + ts.reshape(-1, 1, 1) * y  # (F, n, 2)
        return Trajectory(xs, ts, "push-forward")


# -------------------------------------------------------------------- the optimal discriminator
def scott_bandwidth(samples: Tensor) -> float:
    """Scott's rule for a 2D Gaussian KDE: h = n^(−1/6) · mean per-axis std."""
    n = samples.shape[0]
    sd = float(samples.double().std(0).mean()) if n > 1 else 1.0
    return max(sd, 1e-3) * n ** (-1.0 / 6.0)


def loo_bandwidth(samples: Tensor, n_candidates: int = 12, max_points: int = 2000) -> float:
    """The KDE bandwidth maximising the leave-one-out log-likelihood of ``samples`` over a log grid
    from Scott's rule / 20 to Scott's rule (Scott's rule alone oversmooths multi-modal clouds)."""
    s = samples.detach().double().cpu()[:max_points]
    n = s.shape[0]
    h0 = scott_bandwidth(s)
    if n < 3:
        return h0
    d2 = torch.cdist(s, s).pow(2)
    d2.fill_diagonal_(float("inf"))  # leave one out
    best, best_ll = h0, -float("inf")
    for h in (
        h0 * torch.logspace(math.log10(0.05), 0.0, n_candidates, dtype=torch.float64)
    ).tolist():
        ll = float(
            (
                torch.logsumexp(-d2 / (2 * h * h), dim=1) - math.log((n - 1) * 2 * math.pi * h * h)
            ).mean()
        )
        if ll > best_ll:
            best, best_ll = h, ll
    return best


def kde_log_density(
    samples: Tensor, points: Tensor, bandwidth: float | None = None, chunk: int = 4096
) -> Tensor:
    """log q̂(points) of the isotropic Gaussian KDE of ``samples`` (M, 2): (N, 2) -> (N,) float64.
    An *estimate* of the generator's density q_θ (which has no closed form); the default bandwidth
    maximises the leave-one-out likelihood (``loo_bandwidth``)."""
    s = samples.detach().double().cpu()
    h = bandwidth if bandwidth is not None else loo_bandwidth(s)
    if not (h > 0 and math.isfinite(h)):
        raise ValueError("the KDE bandwidth must be positive")
    norm = math.log(s.shape[0]) + math.log(2 * math.pi * h * h)
    out = []
    for pc in torch.split(points.detach().double().cpu(), chunk):
        d2 = torch.cdist(pc, s).pow(2)  # (n, M)
        out.append(torch.logsumexp(-d2 / (2 * h * h), dim=1) - norm)
    return torch.cat(out)


def optimal_discriminator(
    target: Target2D, fakes: Tensor, points: Tensor, bandwidth: float | None = None
) -> Tensor:
    """D*(x) = log p(x) − log q_θ(x) (the lecture's e^{D*} = p/q) with the exact target density p
    and a KDE *estimate* of q_θ from generator samples ``fakes``: (N, 2) -> (N,) float64."""
    log_p = target.log_prob(points.detach().cpu().float()).double()
    return log_p - kde_log_density(fakes, points, bandwidth)


def coverage_over_training(
    snapshots: list[tuple[int, Tensor]], target: Target2D
) -> list[dict[str, float]] | None:
    """``mixture_mode_coverage`` of every training snapshot ``(step, (n, 2))``, with ``step``;
    ``None`` when the target is not a Gaussian mixture."""
    rows = []
    for step, x in snapshots:
        cov = mixture_mode_coverage(torch.as_tensor(x), target)
        if cov is None:
            return None
        rows.append({"step": float(step), **cov})
    return rows


def mixture_mode_coverage(samples: Tensor, target: Target2D) -> dict[str, float] | None:
    """``genlib.metrics.mode_coverage`` with the mixture's centres and radius 3σ (capped at half
    the smallest centre distance); ``None`` for targets that are not Gaussian mixtures."""
    if not isinstance(target, GaussianMixture) or target.means.shape[0] < 2:
        return None
    centres = target.means
    sd = float(target.comp.variances.sqrt().max())
    dist = torch.cdist(centres.double(), centres.double())
    dist.fill_diagonal_(float("inf"))
    radius = min(3 * sd, 0.5 * float(dist.min()))
    out = mode_coverage(samples, centres, radius)
    out["radius"] = radius
    return out


# -------------------------------------------------------------------- interactive stepping
@dataclass
class GanSession:
    """A copy of a trained GAN that the page steps by hand ("D only", "G only", "both").

    Holds its own optimisers (fresh Adam states), a fixed data set of the target and a seeded
    generator, so a sequence of clicks is reproducible. ``history`` records one row per click.
    """

    model: GAN
    target: Target2D
    batch_size: int = 256
    seed: int = 0
    lr: float = 1e-3
    data_size: int = 20_000
    n_view: int = 1000
    steps_done: int = 0
    history: list[dict[str, float | str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (1 <= self.batch_size <= 8192):
            raise ValueError("batch_size must be in [1, 8192]")
        if not (1 <= self.n_view <= MAX_VIEW_POINTS):
            raise ValueError(f"n_view must be in [1, {MAX_VIEW_POINTS}]")
        self.model = copy.deepcopy(self.model)
        self.model.train()
        dev = self.model.device
        g = torch.Generator().manual_seed(self.seed)
        self._data = self.target.sample(min(self.data_size, 200_000), generator=g).to(dev)
        self._gen = torch.Generator(device=dev).manual_seed(self.seed + 1)
        self.optimizers = self.model.configure_optimizers(self.lr)
        # fixed latents, so the page follows the same fakes from click to click
        self.z = torch.randn(
            self.n_view, self.model.z_dim, generator=torch.Generator().manual_seed(self.seed + 2)
        )

    def step(self, mode: StepMode, n_steps: int = 1) -> dict[str, float | str]:
        """``n_steps`` (≤ MAX_SESSION_STEPS) updates of D only, G only or both (k_d/k_g of the
        model per step); appends and returns one history row (the last logged values)."""
        _check_mode(mode)
        n_steps = int(n_steps)
        if not (1 <= n_steps <= MAX_SESSION_STEPS):
            raise ValueError(f"steps per click must be in [1, {MAX_SESSION_STEPS}]")
        return self._row(mode, self._run(mode, n_steps))

    def record(
        self,
        mode: StepMode,
        frames: int,
        steps_per_frame: int,
        z: Tensor,
        bounds: tuple[float, float, float, float],
        res: int = 40,
    ) -> list[GanView]:
        """Slow motion: the current state, then ``frames`` times (``steps_per_frame`` updates,
        then a ``GanView`` without D*) — ``frames + 1`` views of the same latents ``z``."""
        _check_mode(mode)
        frames, steps_per_frame = int(frames), int(steps_per_frame)
        if not (1 <= frames <= MAX_RECORD_FRAMES and 1 <= steps_per_frame <= MAX_SESSION_STEPS):
            raise ValueError(
                f"frames must be in [1, {MAX_RECORD_FRAMES}], steps per frame in [1, {MAX_SESSION_STEPS}]"
            )
        if frames * steps_per_frame > MAX_RECORD_STEPS:
            raise ValueError(f"at most {MAX_RECORD_STEPS} steps per recording")
        views = [gan_view(self.model, self.target, z, bounds, res, with_d_star=False)]
        logs: dict[str, Tensor] = {}
        for _ in range(frames):
            logs = self._run(mode, steps_per_frame)
            views.append(gan_view(self.model, self.target, z, bounds, res, with_d_star=False))
        self._row(mode, logs)
        return views

    def _run(self, mode: StepMode, n_steps: int) -> dict[str, Tensor]:
        m = self.model
        opt_d, opt_g = self.optimizers
        logs: dict[str, Tensor] = {}
        dev = self._data.device
        for _ in range(n_steps):
            if mode in ("d", "both"):
                for _ in range(m.k_d):
                    idx = torch.randint(
                        0, self._data.shape[0], (self.batch_size,), device=dev, generator=self._gen
                    )
                    logs.update(m.d_step(self._data[idx], opt_d, generator=self._gen))
            if mode in ("g", "both"):
                for _ in range(m.k_g):
                    logs.update(m.g_step(self.batch_size, opt_g, generator=self._gen))
        self.steps_done += n_steps
        return logs

    def _row(self, mode: StepMode, logs: dict[str, Tensor]) -> dict[str, float | str]:
        row: dict[str, float | str] = {
            "click": float(len(self.history) + 1),
            "steps": float(self.steps_done),
            "mode": mode,
        }
        row.update({k: float(v) for k, v in logs.items()})
        self.history.append(row)
        return row


def _check_mode(mode: str) -> None:
    if mode not in ("d", "g", "both"):
        raise ValueError("mode must be 'd', 'g' or 'both'")


# -------------------------------------------------------------------- what the page draws


@dataclass(frozen=True)
class GanView:
    """One picture of a GAN state on a ``res × res`` grid over ``bounds`` (numpy, CPU):
    ``d`` the discriminator logit D_φ (res²,), ``d_star`` the estimated optimum log p − log q̂
    (res²,; NaN where both densities are negligible, ``None`` when not asked for), ``fakes``
    G_θ(z) for fixed latents (N, 2) and ``push`` = −∇_y of the generator loss there (N, 2)."""

    xs: np.ndarray
    ys: np.ndarray
    d: np.ndarray
    d_star: np.ndarray | None
    fakes: np.ndarray
    push: np.ndarray
    bandwidth: float


def gan_view(
    model: GAN,
    target: Target2D,
    z: Tensor,
    bounds: tuple[float, float, float, float],
    res: int = 60,
    *,
    with_d_star: bool = True,
    kde_points: Tensor | None = None,
    bandwidth_scale: float = 1.0,
    mask_below: float = 1e-3,
) -> GanView:
    """Evaluate D_φ on the grid, the fakes G_θ(z) and their pushes; optionally the estimated
    optimal discriminator D* = log p − log q̂ with q̂ a KDE of ``kde_points`` (default: the fakes;
    bandwidth by leave-one-out likelihood, times ``bandwidth_scale``),
    masked where both p and q̂ are below ``mask_below`` × their maximum on the grid."""
    res = int(min(max(res, 2), MAX_VIEW_RES))
    if z.shape[0] > MAX_VIEW_POINTS:
        raise ValueError(f"at most {MAX_VIEW_POINTS} fake points per view")
    x0, x1, y0, y1 = (float(b) for b in bounds)
    xs = torch.linspace(x0, x1, res, dtype=torch.float64)
    ys = torch.linspace(y0, y1, res, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # rows along y (heatmap convention)
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)  # (res², 2)
    dev = model.device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        d = model.discriminate(pts.float().to(dev)).double().cpu()
        fakes = model.generate(z.to(dev))
    push = model.generator_push(fakes).double().cpu()
    model.train(was_training)
    fakes_cpu = fakes.detach().double().cpu()
    d_star = None
    h = float("nan")
    if with_d_star:
        src = fakes_cpu if kde_points is None else kde_points.detach().double().cpu()
        if not (0.05 <= bandwidth_scale <= 20.0):
            raise ValueError("bandwidth_scale must be in [0.05, 20]")
        h = loo_bandwidth(src) * bandwidth_scale
        log_p = target.log_prob(pts.float()).double()
        log_q = kde_log_density(src, pts, h)
        mask = (log_p < log_p.max() + math.log(mask_below)) & (
            log_q < log_q.max() + math.log(mask_below)
        )
        d_star = torch.where(mask, torch.full_like(log_p, float("nan")), log_p - log_q).numpy()
    return GanView(xs.numpy(), ys.numpy(), d.numpy(), d_star, fakes_cpu.numpy(), push.numpy(), h)
