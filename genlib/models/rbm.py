"""Restricted Boltzmann machine (lecture 2-2, 2-3): Gaussian–Bernoulli RBM on x ∈ R², h ∈ {0,1}^H.

Joint energy (σ per visible coordinate: a fixed constant by default, a parameter with
``learn_sigma=True`` — the presets learn it from 0.5, which CD does stably on these targets and
which lets the mixture's width match the data's)::

    E_θ(x, h) = ‖x − b‖² / (2σ²) − cᵀh − (x/σ²)ᵀ W h                       W: (2, H)

Boltzmann distribution q_θ(x, h) = e^{−E_θ(x,h)} / Z(θ). Summing out h gives the marginal
("free") energy of the lecture in closed form::

    E_θ(x) = −log Σ_h e^{−E_θ(x,h)} = ‖x − b‖²/(2σ²) − Σ_j softplus(c_j + (x/σ²)ᵀ W_{:,j})

and the block-Gibbs conditionals::

    q_θ(h_j = 1 | x) = sigmoid(c_j + (x/σ²)ᵀ W_{:,j})        q_θ(x | h) = N(b + W h, diag σ²)

Learning rule (lecture 2-3): θ ← θ − ε (⟨∇_θ E_θ(x, h)⟩_{data, h~q(h|x)} − ⟨∇_θ E_θ(y, h)⟩_{q_θ}),
i.e. gradient descent on KL(p‖q_θ): with q_θ ∝ e^{−E_θ}, ∇_θ KL = ⟨∇E⟩_p − ⟨∇E⟩_{q_θ} (the slide's
transcription has the overall sign flipped; the update lowers the energy of the data and raises
that of the model's samples — tests/test_rbm.py checks the sign against an independent formula).
Because ⟨∇_θ E_θ(x, h)⟩_{q(h|x)} = ∇_θ E_θ(x) (marginal energy), one step is gradient descent on

    L = (1/N) Σ_i E_θ(x_i) − (1/M) Σ_j E_θ(y_j)       (negative samples y_j held fixed)

whose value (the free-energy gap, data minus model) is logged as ``loss``. ``update_sign="slide"``
trains with the slide's sign as written (ascent on L, hence on KL(p‖q_θ); then ``loss`` = −L), to
show the KL growing; it is left out of a run's key at its default (``key_optional``), so the
shipped checkpoints keep their names. The negative samples y_j ("MC samples") come from
``sampler``:

- ``"cd"``: CD-k, k block-Gibbs steps started at the data batch (CD-1 for k = 1);
- ``"pcd"``: persistent CD, chains that continue from the previous update;
- ``"exact"``: exact samples of q_θ (small H only, see below) — the ideal rule, for comparison.

Exact density for small H: q_θ(x) = Σ_h π_h N(x; b + W h, σ²) is a Gaussian mixture with 2^H
components and log π_h = cᵀh + (‖b + W h‖²_{σ⁻²} − ‖b‖²_{σ⁻²})/2 − log Z'. For H ≤
``MAX_EXACT_HIDDEN`` the sum over h is enumerated, so ``log_prob`` (= −E_θ(x) − log Z) and exact
samples are available; above that ``log_prob`` raises NotImplementedError.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlib import rng
from genlib.geometry import LOG_2PI
from genlib.models.base import GenerativeModel, Preset, Trajectory, register

__all__ = [
    "GaussianBernoulliRBM",
    "Sampler",
    "UpdateSign",
    "MAX_EXACT_HIDDEN",
    "HISTORY_PARTICLES",
    "all_hidden_states",
]

Sampler = Literal["cd", "pcd", "exact"]
#: "correct": descend L (the rule above); "slide": the slide's transcription as written, θ + ε(⟨∇E⟩_p
#: − ⟨∇E⟩_q) — ascent on L, i.e. on KL(p‖q_θ) (a demonstration of the flipped sign, the KL grows)
UpdateSign = Literal["correct", "slide"]

MAX_EXACT_HIDDEN = 16  # 2^16 = 65536 mixture components
MAX_HIDDEN = 256
MAX_GIBBS = 10_000
HISTORY_PARTICLES = 256  # negative-phase particles kept per recorded step
MAX_HISTORY = 200


def all_hidden_states(
    h: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Every h ∈ {0,1}^H as rows: (2^H, H)."""
    idx = torch.arange(2**h, device=device)
    bits = (idx.unsqueeze(1) >> torch.arange(h, device=device)) & 1
    return bits.to(dtype)


@register("rbm")
class GaussianBernoulliRBM(GenerativeModel):
    """Gaussian–Bernoulli RBM trained by CD-k / PCD; see the module doc."""

    name: ClassVar[str] = "rbm"
    section: ClassVar[str] = "2-3"
    #: parameters added after checkpoints were shipped: at this default they are left out of a
    #: run's spec and key (``genlib.runs.RunSpec``), any other value is part of both
    key_optional: ClassVar[dict[str, Any]] = {"update_sign": "correct"}
    presets: ClassVar[dict[str, Preset]] = {
        "fast": Preset(
            model={"hidden": 8, "sampler": "cd", "k": 1, "sigma": 0.5, "learn_sigma": True},
            train={"steps": 3000, "batch_size": 256, "lr": 3e-3, "log_every": 50},
            description="8 hidden units, CD-1 (the lecture's rule), 3000 steps: seconds on a CPU",
        ),
        "quality": Preset(
            model={
                "hidden": 12,
                "sampler": "cd",
                "k": 5,
                "sigma": 0.5,
                "learn_sigma": True,
                "gibbs_steps": 1000,
            },
            train={
                "steps": 10000,
                "batch_size": 512,
                "lr": 2e-3,
                "log_every": 100,
                "lr_decay": True,
            },
            description="12 hidden units, CD-5, 10000 steps",
        ),
    }

    def __init__(
        self,
        hidden: int = 8,
        sampler: Sampler = "cd",
        k: int = 1,
        sigma: float = 0.4,
        learn_sigma: bool = False,
        gibbs_steps: int = 300,
        init_scale: float = 2.0,
        weight_init: float = 0.5,
        record_every: int = 25,
        init_seed: int | None = None,
        update_sign: UpdateSign = "correct",
    ) -> None:
        super().__init__()
        if not 1 <= int(hidden) <= MAX_HIDDEN:
            raise ValueError(f"hidden must be in [1, {MAX_HIDDEN}]")
        if sampler not in ("cd", "pcd", "exact"):
            raise ValueError(f"sampler must be 'cd', 'pcd' or 'exact', got {sampler!r}")
        if sampler == "exact" and int(hidden) > MAX_EXACT_HIDDEN:
            raise ValueError(f"sampler='exact' needs hidden <= {MAX_EXACT_HIDDEN}")
        if not 1 <= int(k) <= 1000:
            raise ValueError("k (Gibbs steps per update) must be in [1, 1000]")
        if not 0.01 <= float(sigma) <= 10:
            raise ValueError("sigma must be in [0.01, 10]")
        if not 1 <= int(gibbs_steps) <= MAX_GIBBS:
            raise ValueError(f"gibbs_steps must be in [1, {MAX_GIBBS}]")
        if update_sign not in ("correct", "slide"):
            raise ValueError(f"update_sign must be 'correct' or 'slide', got {update_sign!r}")
        self.update_sign: UpdateSign = update_sign
        self.hidden, self.sampler, self.k = int(hidden), sampler, int(k)
        self.gibbs_steps, self.init_scale = int(gibbs_steps), float(init_scale)
        self.record_every = int(record_every)
        # init from the global RNG (``runs.build_model`` seeds it under ``rng.seeded_init``)
        # unless an init_seed is given
        g = None if init_seed is None else torch.Generator().manual_seed(int(init_seed))
        self.W = nn.Parameter(weight_init * rng.randn(2, self.hidden, generator=g))  # (2, H)
        self.b = nn.Parameter(torch.zeros(2))  # visible bias
        self.c = nn.Parameter(torch.zeros(self.hidden))  # hidden bias
        log_sigma = torch.full((2,), math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)
        self._chains: Tensor | None = None  # PCD particles (in ``result_extras``, not weights)
        self.last_negative: Tensor | None = None  # the last negative-phase particles
        # (step, (≤ HISTORY_PARTICLES, 2) CPU particles), recorded during training and handed
        # to the training result by ``result_extras``
        self._negative_history: list[tuple[int, Tensor]] = []

    # -- energies --------------------------------------------------------------------------------

    @property
    def sigma2(self) -> Tensor:
        return (2 * self.log_sigma).exp()  # (2,)

    def hidden_logits(self, x: Tensor) -> Tensor:
        """c + (x/σ²)ᵀ W: (N, 2) -> (N, H)."""
        return self.c + (x / self.sigma2) @ self.W

    def joint_energy(self, x: Tensor, h: Tensor) -> Tensor:
        """E_θ(x, h) = ‖x − b‖²/(2σ²) − cᵀh − (x/σ²)ᵀ W h: (N, 2), (N, H) -> (N,)."""
        quad = (((x - self.b) ** 2) / (2 * self.sigma2)).sum(-1)
        return quad - h @ self.c - ((x / self.sigma2) @ self.W * h).sum(-1)

    def energy(self, x: Tensor) -> Tensor:
        """Marginal (free) energy E_θ(x) = −log Σ_h e^{−E_θ(x,h)}: (N, 2) -> (N,)."""
        quad = (((x - self.b) ** 2) / (2 * self.sigma2)).sum(-1)
        return quad - F.softplus(self.hidden_logits(x)).sum(-1)

    # -- block Gibbs sampling ------------------------------------------------------------------------

    def hidden_prob(self, x: Tensor) -> Tensor:
        """q_θ(h_j = 1 | x) = sigmoid(c_j + (x/σ²)ᵀ W_j): (N, 2) -> (N, H)."""
        return torch.sigmoid(self.hidden_logits(x))

    def visible_mean(self, h: Tensor) -> Tensor:
        """E[x | h] = b + W h: (N, H) -> (N, 2)."""
        return self.b + h @ self.W.T

    def sample_hidden(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        p = self.hidden_prob(x)
        return (rng.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype) < p).to(
            p.dtype
        )

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        mean = self.visible_mean(h)
        return mean + self.log_sigma.exp() * rng.randn_like(mean, generator)

    def gibbs_step(
        self, x: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """One block-Gibbs sweep: h ~ q(h|x), then x' ~ q(x|h). Returns (x', h)."""
        h = self.sample_hidden(x, generator)
        return self.sample_visible(h, generator), h

    def gibbs_chain(
        self,
        x0: Tensor,
        steps: int,
        *,
        generator: torch.Generator | None = None,
        record: bool = False,
    ) -> Tensor:
        """Run ``steps`` Gibbs sweeps from ``x0 (N, 2)``; the final state (N, 2), or every state
        (steps+1, N, 2) with ``record=True``."""
        steps = int(min(max(steps, 0), MAX_GIBBS))
        x, frames = x0, [x0]
        with torch.no_grad():
            for _ in range(steps):
                x, _ = self.gibbs_step(x, generator)
                if record:
                    frames.append(x)
        return torch.stack(frames) if record else x

    def init_chains(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Chain starts ("noise"): N(0, init_scale² I), (n, 2)."""
        return self.init_scale * rng.randn(
            n, 2, generator=generator, device=self.W.device, dtype=self.W.dtype
        )

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Long Gibbs chains (``gibbs_steps`` sweeps) from noise."""
        return self.gibbs_chain(
            self.init_chains(n, generator), self.gibbs_steps, generator=generator
        )

    def trajectory(
        self, n: int, num_frames: int = 60, *, generator: torch.Generator | None = None
    ) -> Trajectory:
        """Gibbs chains from noise; frames at evenly spaced sweeps (frame 0 = noise)."""
        xs = self.gibbs_chain(
            self.init_chains(n, generator), self.gibbs_steps, generator=generator, record=True
        )
        idx = (
            torch.linspace(0, self.gibbs_steps, max(2, min(num_frames, self.gibbs_steps + 1)))
            .round()
            .long()
        )
        idx = torch.unique(idx)
        return Trajectory(xs[idx.to(xs.device)], idx.float(), "Gibbs sweep")

    # -- exact mixture form (small H) ------------------------------------------------------------------

    def _check_exact(self) -> None:
        if self.hidden > MAX_EXACT_HIDDEN:
            raise NotImplementedError(
                f"the exact density sums over 2^H hidden states; only for H <= {MAX_EXACT_HIDDEN}"
            )

    def mixture(self) -> tuple[Tensor, Tensor, Tensor]:
        """q_θ(x) = Σ_h π_h N(x; b + W h, σ²): (log π (2^H,), means (2^H, 2), σ (2,))."""
        self._check_exact()
        hs = all_hidden_states(self.hidden, self.W.device, self.W.dtype)  # (S, H)
        means = self.visible_mean(hs)  # (S, 2)
        logits = hs @ self.c + ((means**2 - self.b**2) / (2 * self.sigma2)).sum(-1)
        return torch.log_softmax(logits, 0), means, self.log_sigma.exp()

    def log_partition(self) -> Tensor:
        """log Z(θ) = log Σ_h ∫ e^{−E_θ(x,h)} dx (exact, enumerating h): 0-dim."""
        self._check_exact()
        hs = all_hidden_states(self.hidden, self.W.device, self.W.dtype)
        means = self.visible_mean(hs)
        logits = hs @ self.c + ((means**2 - self.b**2) / (2 * self.sigma2)).sum(-1)
        return torch.logsumexp(logits, 0) + LOG_2PI + self.log_sigma.sum()

    def log_prob(self, x: Tensor) -> Tensor:
        """log q_θ(x) = −E_θ(x) − log Z(θ) (exact for H <= MAX_EXACT_HIDDEN): (N, 2) -> (N,)."""
        return -self.energy(x) - self.log_partition()

    def sample_exact(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Exact samples: h ~ π (ancestral), then x ~ N(b + W h, σ²). (n, 2)."""
        with torch.no_grad():
            log_pi, means, sigma = self.mixture()
            dev = generator.device if generator is not None else log_pi.device
            idx = torch.multinomial(log_pi.exp().to(dev), n, replacement=True, generator=generator)
            eps = rng.randn(n, 2, generator=generator, device=means.device, dtype=means.dtype)
            return means[idx.to(means.device)] + sigma * eps

    # -- learning ----------------------------------------------------------------------------------

    def negative_samples(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The MC samples y_j of the negative phase for a data batch ``x`` (no gradient)."""
        with torch.no_grad():
            if self.sampler == "cd":
                return self.gibbs_chain(x, self.k, generator=generator)
            if self.sampler == "exact":
                return self.sample_exact(x.shape[0], generator=generator)
            chains = self._chains
            if chains is None or chains.shape != x.shape or chains.device != x.device:
                chains = self.init_chains(x.shape[0], generator)
            self._chains = self.gibbs_chain(chains, self.k, generator=generator)
            return self._chains

    @property
    def persistent_chains(self) -> Tensor | None:
        """The PCD chains ``(M, 2)`` the next update continues (``None`` before the first PCD
        update, and for CD / exact sampling)."""
        return self._chains

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The contrastive free-energy gap (1/N) Σ E_θ(x_i) − (1/M) Σ E_θ(y_j), the negative
        samples drawn with ``generator``; its gradient is the lecture's positive − negative phase."""
        y = self.negative_samples(x, generator)
        return self._sign * (self.energy(x).mean() - self.energy(y).mean())

    @property
    def _sign(self) -> float:
        """+1: descend the free-energy gap (the correct rule); −1: the slide's sign (ascend it)."""
        return -1.0 if self.update_sign == "slide" else 1.0

    def train_step(
        self,
        x: Tensor,
        optimizers: list[torch.optim.Optimizer],
        step: int,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """One update on the batch (negative phase drawn with ``generator``); every
        ``record_every`` steps the first ``HISTORY_PARTICLES`` negative particles are recorded
        (at most ``MAX_HISTORY`` times) for ``result_extras``."""
        (opt,) = optimizers
        y = self.negative_samples(x, generator)  # (M, 2) negative phase
        self.last_negative = y
        if (
            self.record_every > 0
            and step % self.record_every == 0
            and len(self._negative_history) < MAX_HISTORY
        ):
            self._negative_history.append((step, y[:HISTORY_PARTICLES].detach().cpu()))
        opt.zero_grad(set_to_none=True)
        e_data, e_model = self.energy(x).mean(), self.energy(y).mean()
        loss = self._sign * (e_data - e_model)  # ``update_sign="slide"``: the gap ascended
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip)
        opt.step()
        with torch.no_grad():
            recon = self.visible_mean(self.hidden_prob(x))  # one mean-field reconstruction
            recon_error = ((recon - x) ** 2).sum(-1).mean()
        return {
            "loss": loss.detach(),
            "free_energy_data": e_data.detach(),
            "free_energy_model": e_model.detach(),
            "recon_error": recon_error,
        }

    grad_clip: float = 100.0

    def result_extras(self) -> dict[str, Any]:
        """What the training result keeps besides the weights (saved with the checkpoint):
        ``negative_steps`` (F recorded training steps, list of int) and ``negative_particles``
        ``(F, P, 2)`` CPU float32, the negative-phase particles at those steps (absent when none
        were recorded); ``pcd_chains (M, 2)`` the persistent chains at the end of a PCD run."""
        out: dict[str, Any] = {}
        if self._negative_history:
            out["negative_steps"] = [int(s) for s, _ in self._negative_history]
            p = min(y.shape[0] for _, y in self._negative_history)
            out["negative_particles"] = torch.stack(
                [y[:p].float() for _, y in self._negative_history]
            )
        if self._chains is not None:
            out["pcd_chains"] = self._chains.detach().float().cpu()
        return out
