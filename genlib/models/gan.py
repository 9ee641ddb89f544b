"""Generative adversarial network (lecture 3-3).

Generator ``y = G_θ(z)``, z ~ q_Z = N(0, I) of dimension ``z_dim``, so that
``q_θ(y) = ∫ δ(y − G_θ(z)) q_Z(z) dz`` has no tractable density. Discriminator *logit* ``D_φ(x)``
with σ(D) the probability "x is data", as in the lecture. The value function

    V(D, G) = ⟨log σ(D(x))⟩_p + ⟨log(1 − σ(D(y)))⟩_{q_θ},      max_D V = D_JS(p, q_θ) − 2 log 2

(the lecture's D_JS = KL(p‖m) + KL(q‖m), m = (p + q)/2) is maximised by φ and minimised by θ, by
alternating gradient steps: ``k_d`` discriminator steps then ``k_g`` generator steps per training
step, each with its own Adam optimiser (betas (0.5, 0.9)). The optimal discriminator satisfies
``e^{D*(x)} = p(x)/q_θ(x)`` (lecture appendix), see ``genlib.lab.gan.optimal_discriminator``.

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

import math
from typing import Literal

import torch
from torch import Tensor
from torch.nn import functional as F

from genlib import rng
from genlib.models.base import GenerativeModel, Preset, Trajectory, register
from genlib.nn import MLP, Activation

__all__ = ["GAN", "GanLoss", "LOG4", "MAX_K"]

GanLoss = Literal["minimax", "nonsaturating"]
LOG4 = 2 * math.log(2)  # 2 log 2: V(D*, G) + 2 log 2 = D_JS
MAX_K = 20  # k_d, k_g


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
                "steps": 4000,
                "batch_size": 512,
                "lr": 1e-3,
                "lr_decay": True,
                "ema": 0.999,
                "snapshot_every": 150,
            },
            description="small MLPs, non-saturating loss, one D and one G step on batches of 512, EMA of G: about 11 s on one CPU thread",
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
        """z ~ q_Z = N(0, I): (n, z_dim), drawn with ``generator``."""
        return rng.randn(n, self.z_dim, generator=generator, device=self.device)

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

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The discriminator loss −V(D, G) on a data batch with fresh fakes drawn with
        ``generator`` (the alternating updates live in ``train_step``)."""
        y = self.generate(self.sample_latent(x.shape[0], generator=generator))
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
        self,
        x: Tensor,
        optimizers: list[torch.optim.Optimizer],
        step: int,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """``k_d`` discriminator steps on the batch (fresh fakes each), then ``k_g`` generator
        steps, every latent drawn with ``generator``; logs the means over those updates (see the
        module docstring)."""
        opt_d, opt_g = optimizers
        d_logs = [self.d_step(x, opt_d, generator=generator) for _ in range(self.k_d)]
        g_logs = [self.g_step(x.shape[0], opt_g, generator=generator) for _ in range(self.k_g)]
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
