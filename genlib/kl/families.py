"""The q families of the KL page: simple models q_θ with an exact density and reparametrised
samples y = f_θ(ε), each a ``GenerativeModel`` trained by the common loop.

``loss`` is the forward KL (−⟨log q_θ⟩ on the data batch) or the reverse KL (⟨log q_θ − log p⟩ on
reparametrised samples of q_θ, exact log p handed over by ``attach_target``), chosen by
``divergence``; both come from ``genlib.objectives`` (the flow family uses the same ones). The
families live in their own registry ``Q_FAMILIES`` (not the model registry: they need a target
density and are no model-page family).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from genlib import rng
from genlib.device import get_device, make_generator
from genlib.geometry import LOG_2PI
from genlib.kl.config import (
    DIVERGENCES,
    OPTIMIZERS,
    Divergence,
    FlowCoupling,
    OptimizerName,
)
from genlib.models.base import GenerativeModel
from genlib.models.flow import NormalizingFlow
from genlib.objectives import LogProbFn, forward_kl, reverse_kl, target_log_prob
from genlib.registry import Registry

if TYPE_CHECKING:
    from genlib.kl.config import KLConfig

__all__ = ["QDist", "GaussianQ", "MixtureQ", "FlowQ", "Q_FAMILIES", "build_q", "cholesky_factor"]


def cholesky_factor(raw_diag: Tensor, off: Tensor) -> Tensor:
    """Lower-triangular Cholesky factors with a positive diagonal exp(raw_diag):
    ``(..., 2), (...,) -> (..., 2, 2)``."""
    d = raw_diag.exp()
    zero = torch.zeros_like(off)
    row0 = torch.stack([d[..., 0], zero], -1)
    row1 = torch.stack([off, d[..., 1]], -1)
    return torch.stack([row0, row1], -2)


def _whiten(x: Tensor, mean: Tensor, raw_diag: Tensor, off: Tensor) -> Tensor:
    """z = L⁻¹ (x − μ) by forward substitution: x (N, 2) and one Gaussian -> (N, 2); or K
    Gaussians (mean (K, 2), raw_diag (K, 2), off (K,)) -> (N, K, 2)."""
    d = raw_diag.exp()
    r = x.unsqueeze(-2) - mean if mean.ndim == 2 else x - mean
    z0 = r[..., 0] / d[..., 0]
    z1 = (r[..., 1] - off * z0) / d[..., 1]
    return torch.stack([z0, z1], -1)


def _gauss_log_prob(x: Tensor, mean: Tensor, raw_diag: Tensor, off: Tensor) -> Tensor:
    """log N(x; μ, L Lᵀ) for x (N, 2) and one or K Gaussians: returns (N,) or (N, K)."""
    z = _whiten(x, mean, raw_diag, off)
    return -LOG_2PI - raw_diag.sum(-1) - 0.5 * (z**2).sum(-1)


def _add_affine(q: nn.Module, init_mean: Sequence[float], init_scale: float) -> None:
    """The parameters of the map ε -> μ + L ε: ``mean`` (2,), ``raw_diag`` (2,) = log L_ii and
    ``off`` () = L_21, starting at N(init_mean, init_scale² I)."""
    q.mean = nn.Parameter(torch.tensor(list(init_mean), dtype=torch.float32))
    q.raw_diag = nn.Parameter(torch.full((2,), math.log(init_scale)))
    q.off = nn.Parameter(torch.zeros(()))


class QDist(GenerativeModel):
    """A model q_θ with an exact density and reparametrised samples y = f_θ(ε), fitted by plain
    gradient steps (``optimizer_name``: Adam or SGD, no gradient clipping: the page shows what a
    too large learning rate does) on the KL direction ``divergence``."""

    name: ClassVar[str] = "q"
    grad_clip: float = math.inf

    def __init__(self, divergence: Divergence = "reverse", optimizer: OptimizerName = "adam"):
        super().__init__()
        if divergence not in DIVERGENCES:
            raise ValueError(f"divergence must be 'forward' or 'reverse', got {divergence!r}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        self.divergence: Divergence = divergence
        self.optimizer_name: OptimizerName = optimizer
        self._log_p: LogProbFn | None = None

    @classmethod
    @abc.abstractmethod
    def from_config(cls, cfg: KLConfig) -> QDist:
        """The start q_θ of ``cfg`` (on the CPU; deterministic under ``cfg.seed``)."""

    @abc.abstractmethod
    def log_prob(self, x: Tensor) -> Tensor:
        """log q_θ(x): (N, 2) -> (N,)."""

    @abc.abstractmethod
    def push(self, noise: Tensor) -> Tensor:
        """y = f_θ(noise) for display noise from ``display_noise``: (N, 3) -> (N, 2)."""

    @abc.abstractmethod
    def rsample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Reparametrised samples and their log density: ``(y (n, 2), log q_θ(y) (n,))``."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """The parameters as plain lists (JSON-able); always ``mean`` (2,) and ``cov`` (2, 2)."""

    def display_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Noise (n, 3): ε (n, 2) and a uniform u (n,) (the mixture's component choice)."""
        eps = rng.randn(n, 2, generator=generator, device=self.device)
        u = rng.rand(n, 1, generator=generator, device=self.device)
        return torch.cat([eps, u], 1)

    # -- the objectives ------------------------------------------------------------------------

    def attach_target(self, target: Any) -> None:
        """The target's exact log density for the reverse KL (the training loop calls this)."""
        self._log_p = target_log_prob(target)

    def forward_kl(self, x: Tensor) -> Tensor:
        """(a) −⟨log q_θ(x)⟩ over samples x (N, 2) of p = D_KL(p‖q_θ) + S(p): scalar."""
        return forward_kl(self.log_prob, x)

    def reverse_kl(self, log_p: LogProbFn, n: int, generator: torch.Generator | None) -> Tensor:
        """(b) ⟨log q_θ(y) − log p(y)⟩ over n reparametrised y ~ q_θ = D_KL(q_θ‖p): scalar."""
        y, log_q = self.rsample(n, generator)
        return reverse_kl(y, log_q, log_p)

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The ``divergence`` objective; for the reverse KL ``x`` (N, 2) only sets N."""
        if self.divergence == "forward":
            return self.forward_kl(x)
        if self._log_p is None:
            raise RuntimeError("the reverse KL needs the target: call attach_target(target)")
        return self.reverse_kl(self._log_p, x.shape[0], generator)

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        params = list(self.parameters())
        if self.optimizer_name == "sgd":
            return [torch.optim.SGD(params, lr=lr, foreach=True)]
        return [torch.optim.Adam(params, lr=lr, foreach=True)]

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            return self.rsample(n, generator)[0]

    def moments(self) -> tuple[Tensor, Tensor]:
        """Mean (2,) and covariance (2, 2) of q_θ (float64, detached, CPU)."""
        with torch.no_grad():
            y, _ = self.rsample(8192, make_generator(777, self.device))
            y = y.double()
            m = y.mean(0)
            c = (y - m).T @ (y - m) / (y.shape[0] - 1)
        return m.cpu(), c.cpu()


Q_FAMILIES: Registry[QDist] = Registry("q family")


@Q_FAMILIES.register("gaussian")
class GaussianQ(QDist):
    """q_θ = N(μ, L Lᵀ) with L lower triangular, L_ii = exp(·) > 0 (θ = μ, log L_ii, L_21)."""

    name: ClassVar[str] = "gaussian"
    mean: nn.Parameter  # (2,) μ
    raw_diag: nn.Parameter  # (2,) log L_ii
    off: nn.Parameter  # () L_21

    def __init__(
        self,
        init_mean: Sequence[float] = (0.0, 0.0),
        init_scale: float = 1.0,
        divergence: Divergence = "reverse",
        optimizer: OptimizerName = "adam",
    ) -> None:
        super().__init__(divergence, optimizer)
        _add_affine(self, init_mean, init_scale)

    @classmethod
    def from_config(cls, cfg: KLConfig) -> GaussianQ:
        return cls(cfg.init_mean, cfg.init_scale, cfg.divergence, cfg.optimizer)

    @classmethod
    def from_moments(cls, mean: Sequence[float], cov: Any) -> GaussianQ:
        """N(mean, cov) as a ``GaussianQ`` (cov (2, 2) symmetric positive definite)."""
        q = cls((0.0, 0.0), 1.0)
        L = torch.linalg.cholesky(torch.as_tensor(np.asarray(cov), dtype=torch.float64))
        with torch.no_grad():
            q.mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
            q.raw_diag.copy_(L.diagonal().log().float())
            q.off.copy_(L[1, 0].float())
        return q

    @property
    def L(self) -> Tensor:  # (2, 2)
        return cholesky_factor(self.raw_diag, self.off)

    def log_prob(self, x: Tensor) -> Tensor:
        return _gauss_log_prob(x, self.mean, self.raw_diag, self.off)

    def push(self, noise: Tensor) -> Tensor:
        return self.mean + noise[:, :2] @ self.L.T

    def rsample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        eps = rng.randn(n, 2, generator=generator, device=self.device)  # (n, 2)
        y = self.mean + eps @ self.L.T
        # log q(μ + Lε) = −log 2π − log det L − |ε|²/2 (its θ-gradient is exactly −∇ log det L)
        return y, -LOG_2PI - self.raw_diag.sum() - 0.5 * (eps**2).sum(1)

    def moments(self) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            L = self.L.double()
            return self.mean.detach().double().cpu(), (L @ L.T).cpu()

    def describe(self) -> dict[str, Any]:
        m, c = self.moments()
        return {
            "mean": m.tolist(),
            "cov": c.tolist(),
            "chol": self.L.detach().double().cpu().tolist(),
        }


@Q_FAMILIES.register("mixture")
class MixtureQ(QDist):
    """q_θ = Σ_k w_k N(μ_k, L_k L_kᵀ), w = softmax(logits). Reverse KL without sampling the
    component: ⟨f⟩_q = Σ_k w_k ⟨f(μ_k + L_k ε)⟩_ε, so the weights get exact gradients."""

    name: ClassVar[str] = "mixture"

    def __init__(
        self,
        init_mean: Sequence[float] = (0.0, 0.0),
        init_scale: float = 1.0,
        components: int = 2,
        generator: torch.Generator | None = None,
        divergence: Divergence = "reverse",
        optimizer: OptimizerName = "adam",
    ) -> None:
        super().__init__(divergence, optimizer)
        k = components
        jitter = (
            rng.randn(k, 2, generator=generator) * (0.5 * init_scale)
            if k > 1
            else torch.zeros(1, 2)
        )
        self.logits = nn.Parameter(torch.zeros(k))
        self.means = nn.Parameter(torch.tensor(list(init_mean), dtype=torch.float32) + jitter)
        self.raw_diag = nn.Parameter(torch.full((k, 2), math.log(init_scale)))
        self.off = nn.Parameter(torch.zeros(k))

    @classmethod
    def from_config(cls, cfg: KLConfig) -> MixtureQ:
        g = make_generator(cfg.seed + 17)
        return cls(cfg.init_mean, cfg.init_scale, cfg.components, g, cfg.divergence, cfg.optimizer)

    @property
    def weights(self) -> Tensor:  # (K,)
        return torch.softmax(self.logits, 0)

    def log_prob(self, x: Tensor) -> Tensor:
        comp = _gauss_log_prob(x, self.means, self.raw_diag, self.off)  # (N, K)
        return torch.logsumexp(comp + torch.log_softmax(self.logits, 0), dim=1)

    def _transform(self, eps: Tensor) -> Tensor:
        """Every component applied to ε: (..., 2) -> (K, N, 2)."""
        L = cholesky_factor(self.raw_diag, self.off)  # (K, 2, 2)
        return self.means[:, None, :] + torch.einsum("kij,nj->kni", L, eps.reshape(-1, 2))

    def push(self, noise: Tensor) -> Tensor:
        y_all = self._transform(noise[:, :2])  # (K, N, 2)
        cdf = torch.cumsum(self.weights, 0)
        idx = torch.searchsorted(cdf.detach().contiguous(), noise[:, 2].contiguous()).clamp(
            max=len(cdf) - 1
        )
        return y_all[idx, torch.arange(noise.shape[0], device=noise.device)]

    def rsample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        y = self.push(self.display_noise(n, generator))
        return y, self.log_prob(y)

    def reverse_kl(self, log_p: LogProbFn, n: int, generator: torch.Generator | None) -> Tensor:
        """Stratified over the components: ⌈n/K⌉ draws of each, weighted by w_k."""
        k = self.logits.shape[0]
        m = max(1, math.ceil(n / k))
        eps = rng.randn(m, 2, generator=generator, device=self.device)
        y = self._transform(eps)  # (K, m, 2)
        log_q = self.log_prob(y.reshape(k * m, 2)).reshape(k, m)
        return reverse_kl(y, log_q, log_p, self.weights)

    def moments(self) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            w = self.weights.double()
            mu = self.means.double()
            L = cholesky_factor(self.raw_diag, self.off).double()
            mean = (w[:, None] * mu).sum(0)
            d = mu - mean
            outer = d[:, :, None] * d[:, None, :]
            cov = (w[:, None, None] * (L @ L.transpose(1, 2) + outer)).sum(0)
        return mean.cpu(), cov.cpu()

    def describe(self) -> dict[str, Any]:
        m, c = self.moments()
        with torch.no_grad():
            L = cholesky_factor(self.raw_diag, self.off).double()
            covs = L @ L.transpose(1, 2)
        return {
            "mean": m.tolist(),
            "cov": c.tolist(),
            "weights": self.weights.detach().double().cpu().tolist(),
            "means": self.means.detach().double().cpu().tolist(),
            "covs": covs.cpu().tolist(),
        }


@Q_FAMILIES.register("flow")
class FlowQ(QDist):
    """A small normalizing flow q_θ(y) = p_0(f_θ⁻¹(y)) |det ∇f_θ⁻¹(y)|, p_0 = N(0, I), with
    f_θ(ε) = μ + L g(ε): g is the flow family's coupling stack (``genlib.models.flow``; identity at
    the start, so the flow starts as the same Gaussian as the ``gaussian`` family) and μ + L· the
    Gaussian's affine map."""

    name: ClassVar[str] = "flow"
    mean: nn.Parameter  # (2,) μ
    raw_diag: nn.Parameter  # (2,) log L_ii
    off: nn.Parameter  # () L_21

    def __init__(
        self,
        init_mean: Sequence[float] = (0.0, 0.0),
        init_scale: float = 1.0,
        layers: int = 4,
        hidden: int = 32,
        coupling: FlowCoupling = "affine",
        divergence: Divergence = "reverse",
        optimizer: OptimizerName = "adam",
    ) -> None:
        super().__init__(divergence, optimizer)
        _add_affine(self, init_mean, init_scale)
        self.g = NormalizingFlow(
            coupling=coupling,
            layers=layers,
            hidden=hidden,
            depth=2,
            bins=8,
            actnorm=False,
            rotate=True,
        )

    @classmethod
    def from_config(cls, cfg: KLConfig) -> FlowQ:
        """Coupling weights from ``seed + 29`` (``rng.seeded_init``: no global RNG side effect)."""
        return rng.seeded_init(
            cfg.seed + 29,
            lambda: cls(
                cfg.init_mean,
                cfg.init_scale,
                cfg.flow_layers,
                cfg.flow_hidden,
                cfg.flow_coupling,
                cfg.divergence,
                cfg.optimizer,
            ),
        )

    def transform(self, eps: Tensor) -> tuple[Tensor, Tensor]:
        """y = f_θ(ε) and log|det ∂f_θ/∂ε|: (N, 2) -> (N, 2), (N,)."""
        z, ladj = self.g(eps)
        L = cholesky_factor(self.raw_diag, self.off)
        return self.mean + z @ L.T, ladj + self.raw_diag.sum()

    def log_prob(self, x: Tensor) -> Tensor:
        z = _whiten(x, self.mean, self.raw_diag, self.off)  # L⁻¹ (x − μ)
        eps, ladj = self.g.inverse(z)
        return -LOG_2PI - 0.5 * (eps**2).sum(1) + ladj - self.raw_diag.sum()

    def push(self, noise: Tensor) -> Tensor:
        return self.transform(noise[:, :2])[0]

    def rsample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        eps = rng.randn(n, 2, generator=generator, device=self.device)
        y, ladj = self.transform(eps)
        return y, -LOG_2PI - 0.5 * (eps**2).sum(1) - ladj

    def describe(self) -> dict[str, Any]:
        m, c = self.moments()
        L = cholesky_factor(self.raw_diag, self.off).detach().double().cpu()
        return {
            "mean": m.tolist(),
            "cov": c.tolist(),
            "affine_mean": self.mean.detach().double().cpu().tolist(),
            "affine_chol": L.tolist(),
        }


def build_q(cfg: KLConfig, device: torch.device | str | None = None) -> QDist:
    """The start q_θ of ``cfg`` (deterministic under ``cfg.seed``; the same for both KL
    directions), on ``device`` (default: ``get_device()``)."""
    dev = torch.device(device) if device is not None else get_device()
    cls: Any = Q_FAMILIES.get(cfg.q)
    return cls.from_config(cfg).to(dev)
