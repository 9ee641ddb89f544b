"""FFJORD's pinwheel with an exact density (see ``shared/TARGETS.md``).

Generator: class k ~ U{0..K-1}, f ~ N((1, 0), diag(σ_r², σ_t²)), x = 2 R(θ_k + rate·e^{f₁}) f with
θ_k = 2πk/K and R the counter-clockwise rotation (TARGETS.md; FFJORD's einsum rotates clockwise,
i.e. gives the mirror image: ``mirror=True``).

Exact density. In polar coordinates f = ρ(cos φ, sin φ) the map keeps the radius (|x| = 2ρ) and
turns the angle: arg x = G(φ) + θ_k with G(φ) = φ + rate·e^{ρ cos φ}. So
    p(x) = (1/K) Σ_k Σ_{φ: G(φ) ≡ ψ - θ_k (mod 2π)} p_f(ρ cos φ, ρ sin φ) / (4 |G'(φ)|),
ρ = |x|/2, ψ = arg x. G' = 1 - rate·ρ sin φ e^{ρ cos φ} is negative on at most one interval
(φ_a, φ_b) ⊂ (0, π) (found by bisection), so the circle splits into one increasing and at most one
decreasing monotone piece and every root is bracketed: all roots are found (bracketed Newton), not
just one. Far out (|x| ≳ 14) the root count grows like e^ρ; there the ``MAX_ROOTS`` most probable
roots per piece are kept (the others are smaller by a factor < e^-300). The score is autograd
through one final Newton step (the implicit-function derivative of each root).

Diffused marginals (``exact_marginals = False``: an accurate reference, not a closed form). Given
f₁ and k, x₀ = 2 f₁ u + 2 f₂ v (u, v the rotated axes) is Gaussian along a line, so
x_t | f₁, k = N(2α f₁ u, 4α²σ_t² v vᵀ + σ² I) exactly and p_t is a 1D integral over f₁: composite
Gauss–Legendre panels sized to the kernel (node count ∝ α/σ) give a full-covariance quadrature
mixture, evaluated per group of similar |x| over the nodes that can matter (rigorous bound, see
``_mixture``). Log-density error vs a 2.5x finer rule: ≲ 1e-9 for σ/α ≥ 0.5, ≲ 1e-6 where
log p_t > max - 30 for σ/α ≥ 0.01 (≲ 1e-3 in the far corners at σ/α = 0.01). For
0 < σ/α < ``SMALL_NOISE`` the rescaled exact density α⁻² p(x/α) is used: right up to O(σ²)
smoothing, except within a few σ of the fold caustics (where p jumps; density ≲ e^-12 of the
peak), which it does not smooth.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from genlib.distributions._quadrature import (
    as_points,
    check_alpha_sigma,
    check_n,
    check_positive,
    gaussian_log_prob,
)
from genlib.distributions.base import LOG_2PI, Target2D, autograd_score, register
from genlib.limits import check_float, check_int

__all__ = ["Pinwheel", "pinwheel"]

TWO_PI = 2 * math.pi
#: Components provably below exp(-PRUNE_NATS) times a point's density are skipped.
PRUNE_NATS = 34.0


class Pinwheel(Target2D):
    """FFJORD's pinwheel: 5 arms (radial σ 0.3, tangential σ 0.1, rate 0.25), exact density."""

    exact_marginals = False
    SCALE = 2.0
    #: Roots kept per monotone piece (only ever binding for |x| ≳ 14).
    MAX_ROOTS = 48
    #: Below this σ/α the diffused density is the rescaled exact one, α⁻² p(x/α).
    SMALL_NOISE = 0.002
    #: Quadrature resolution (nodes per kernel width along f₁) and nodes per panel.
    NODES_PER_WIDTH = 2.0
    PANEL = 16

    def __init__(
        self,
        radial_std: float = 0.3,
        tangential_std: float = 0.1,
        num_classes: int = 5,
        rate: float = 0.25,
        mirror: bool = False,
    ) -> None:
        self.sr = check_positive("pinwheel radial_std", radial_std, 0.0, 1.0)
        self.st = check_positive("pinwheel tangential_std", tangential_std, 0.0, 1.0)
        self.k = check_int("pinwheel num_classes", num_classes, 1, 32)
        self.rate = check_float("pinwheel rate", rate, 0.0, 1.0)
        self.mirror = bool(mirror)
        self.theta = torch.arange(self.k, dtype=torch.float64) * (TWO_PI / self.k)  # (K,)
        self.name = "pinwheel"
        self.bounds = (-4.5, 4.5, -4.5, 4.5)
        self._log_norm = -LOG_2PI - math.log(self.sr * self.st)  # log N normaliser of f

    # -- sampling -----------------------------------------------------------------------------

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_n(n)
        cls = torch.randint(self.k, (n,), generator=generator)
        f = torch.randn(n, 2, generator=generator, dtype=torch.float64) * torch.tensor(
            [self.sr, self.st], dtype=torch.float64
        )
        f[:, 0] += 1.0
        ang = self.theta[cls] + self.rate * torch.exp(f[:, 0])
        c, s = ang.cos(), ang.sin()
        x = self.SCALE * torch.stack([c * f[:, 0] - s * f[:, 1], s * f[:, 0] + c * f[:, 1]], 1)
        if self.mirror:
            x[:, 1] = -x[:, 1]
        return x.float()

    # -- exact density ------------------------------------------------------------------------

    def _g(self, phi: Tensor, rho: Tensor) -> Tensor:
        return phi + self.rate * torch.exp(rho * torch.cos(phi))

    def _dg(self, phi: Tensor, rho: Tensor) -> Tensor:
        return 1.0 - self.rate * rho * torch.sin(phi) * torch.exp(rho * torch.cos(phi))

    def _critical(self, rho: Tensor) -> tuple[Tensor, Tensor]:
        """(φ_a, φ_b): the interval where G' < 0 (both 0 when G is monotone), ``(N,), (N,)``."""
        pa = torch.zeros_like(rho)
        pb = torch.zeros_like(rho)
        if self.rate == 0.0:
            return pa, pb
        r = rho.clamp(min=1e-300)
        # cos φ* where q(φ) = rate ρ sin φ e^{ρ cos φ} peaks
        cstar = (torch.sqrt(1 + 4 * r * r) - 1) / (2 * r)
        pstar = torch.acos(cstar.clamp(-1.0, 1.0))
        qmax = self.rate * r * torch.sin(pstar) * torch.exp(r * cstar)
        idx = ((qmax > 1.0) & (rho > 0)).nonzero()[:, 0]
        if idx.numel() == 0:
            return pa, pb
        rr, ps = r[idx], pstar[idx]
        lr = math.log(self.rate) + torch.log(rr)

        def logq(p: Tensor) -> Tensor:
            return lr + torch.log(torch.sin(p)) + rr * torch.cos(p)

        lo, hi = torch.zeros_like(rr), ps.clone()  # log q increasing on (0, φ*)
        lo2, hi2 = ps.clone(), torch.full_like(rr, math.pi)  # decreasing on (φ*, π)
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            up = logq(mid) > 0
            hi, lo = torch.where(up, mid, hi), torch.where(up, lo, mid)
            mid2 = 0.5 * (lo2 + hi2)
            up2 = logq(mid2) > 0
            lo2, hi2 = torch.where(up2, mid2, lo2), torch.where(up2, hi2, mid2)
        pa[idx] = 0.5 * (lo + hi)
        pb[idx] = 0.5 * (lo2 + hi2)
        return pa, pb

    def _roots(self, rho: Tensor, psi: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """All roots φ of G(φ) ≡ ψ - θ_k (mod 2π) for every point and class (no grad).

        Returns flat ``(S,)`` tensors: point index, class index, target value V (G(φ) = V, a
        representative ψ - θ_k + 2πm) and the root φ.
        """
        pa, pb = self._critical(rho)  # (N,)
        ga, gb = self._g(pa, rho), self._g(pb, rho)  # (N,)
        t = psi[:, None] - self.theta  # (N, K) target angles
        # increasing piece φ ∈ [φ_b, φ_a + 2π] with G ∈ [G_b, G_a + 2π); decreasing φ ∈ (φ_a, φ_b)
        m_hi_i = torch.ceil((ga[:, None] + TWO_PI - t) / TWO_PI) - 1
        n_i = m_hi_i - torch.ceil((gb[:, None] - t) / TWO_PI) + 1  # (N, K) ≥ 1
        m_hi_d = torch.ceil((ga[:, None] - t) / TWO_PI) - 1
        n_d = (m_hi_d - torch.floor((gb[:, None] - t) / TWO_PI)).clamp(min=0)  # (N, K)
        pts, cls, vals, lo, hi, sgn = [], [], [], [], [], []
        for count, m_hi, a, b, sg in (
            (n_i, m_hi_i, pb, pa + TWO_PI, 1.0),
            (n_d, m_hi_d, pa, pb, -1.0),
        ):
            rmax = min(int(count.max()) if count.numel() else 0, self.MAX_ROOTS)
            for j in range(rmax):
                p, c = (count > j).nonzero(as_tuple=True)
                pts.append(p)
                cls.append(c)
                vals.append(t[p, c] + TWO_PI * (m_hi[p, c] - j))
                lo.append(a[p])
                hi.append(b[p])
                sgn.append(torch.full((p.numel(),), sg, dtype=torch.float64))
        p, c, v = torch.cat(pts), torch.cat(cls), torch.cat(vals)
        phi = self._solve(rho[p], v, torch.cat(lo), torch.cat(hi), torch.cat(sgn))
        return p, c, v, phi

    def _solve(self, rho: Tensor, v: Tensor, lo: Tensor, hi: Tensor, sgn: Tensor) -> Tensor:
        """Bracketed Newton for sgn·(G(φ) - v) = 0, increasing on [lo, hi]: ``(S,)``."""
        glo, ghi = self._g(lo, rho), self._g(hi, rho)
        frac = ((v - glo) / (ghi - glo)).nan_to_num(0.5).clamp(0.0, 1.0)
        phi = lo + frac * (hi - lo)  # regula-falsi start
        lo, hi = lo.clone(), hi.clone()
        active = torch.arange(phi.numel())
        for _ in range(200):
            r, ph, l, u = rho[active], phi[active], lo[active], hi[active]
            sg = sgn[active]
            h = sg * (self._g(ph, r) - v[active])
            dh = sg * self._dg(ph, r)
            pos = h > 0
            u = torch.where(pos, ph, u)
            l = torch.where(pos, l, ph)
            new = ph - h / dh
            bad = ~((new >= l) & (new <= u)) | ~(dh > 0)
            new = torch.where(h == 0, ph, torch.where(bad, 0.5 * (l + u), new))
            tol = 1e-15 * (1 + ph.abs())
            done = ((new - ph).abs() <= tol) | (h == 0) | ((u - l) <= tol)
            phi[active], lo[active], hi[active] = new, l, u
            active = active[~done]
            if active.numel() == 0:
                break
        return phi

    def _log_prob64(self, x: Tensor) -> Tensor:
        """Exact log density of float64 points ``(N, 2)``, differentiable in x (``(N,)``)."""
        if self.mirror:
            x = x * torch.tensor([1.0, -1.0], dtype=torch.float64)
        n = x.shape[0]
        if n == 0:
            return x[:, 0] * 0.0
        origin = x.detach().abs().amax(1) < 1e-150  # (N,) the density is smooth and flat there
        xs = torch.where(origin[:, None], torch.ones_like(x), x)
        rho = torch.sqrt((xs * xs).sum(1)) / self.SCALE  # (N,)
        psi = torch.atan2(xs[:, 1], xs[:, 0])
        with torch.no_grad():
            p, c, v, phi0 = self._roots(rho.detach(), psi.detach())
        r = rho[p]
        vv = v + (psi[p] - psi[p].detach())  # the target moves with ψ(x) (same value)
        # one Newton step from the root: same value, and the exact (implicit-function) derivative
        phi = phi0 - (self._g(phi0, r) - vv) / self._dg(phi0, r)
        f1, f2 = r * torch.cos(phi), r * torch.sin(phi)
        dg = self._dg(phi, r).abs().clamp(min=1e-300)
        terms = (
            self._log_norm
            - 0.5 * ((f1 - 1) / self.sr) ** 2
            - 0.5 * (f2 / self.st) ** 2
            - torch.log(dg)
            - 2 * math.log(self.SCALE)
            - math.log(self.k)
        )  # (S,)
        top = torch.full((n,), -math.inf, dtype=torch.float64).scatter_reduce(
            0, p, terms.detach(), "amax"
        )
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        acc = torch.zeros(n, dtype=torch.float64).index_add(0, p, torch.exp(terms - top[p]))
        logp = torch.log(acc) + top
        at0 = self._log_norm - 0.5 / self.sr**2 - 2 * math.log(self.SCALE)  # f = 0, G' = 1
        return torch.where(origin, torch.full_like(logp, at0), logp)

    def log_prob(self, x: Tensor) -> Tensor:
        x64 = as_points(x)
        out = (
            torch.cat([self._log_prob64(c) for c in x64.split(16384)])
            if x64.shape[0]
            else x64[:, 0]
        )
        return out.to(x.dtype)

    def score(self, x: Tensor) -> Tensor:
        return autograd_score(self._log_prob64, as_points(x)).to(x.dtype)

    # -- diffused marginals -------------------------------------------------------------------

    def _f1_nodes(self, a: float, s: float) -> tuple[Tensor, Tensor]:
        """Composite Gauss–Legendre nodes ``(Q,)`` (ascending) and normalised log weights over
        f₁ ~ N(1, σ_r²) on 1 ± 8.5σ_r, with panels sized so that between nodes the kernel centre
        moves by at most ~1/NODES_PER_WIDTH kernel widths (radially vs σ, tangentially vs
        √(β² + σ²), β = 2ασ_t; the kernel's rotation counts radially for points 3β off-axis)."""
        beta = self.SCALE * a * self.st
        wide = math.sqrt(beta * beta + s * s)
        f = np.linspace(1 - 8.5 * self.sr, 1 + 8.5 * self.sr, 4001)
        e = self.rate * np.exp(f)
        radial = (self.SCALE * a + 3 * beta * e) / s
        tangential = self.SCALE * a * e * np.abs(f) / wide
        dens = np.sqrt(radial**2 + tangential**2 + (4 / self.sr) ** 2)  # nodes per unit f₁
        xi = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(f))])
        panels = max(2, math.ceil(self.NODES_PER_WIDTH * xi[-1] / self.PANEL))
        edges = np.interp(np.linspace(0.0, xi[-1], panels + 1), xi, f)
        g, w = np.polynomial.legendre.leggauss(self.PANEL)
        half = 0.5 * np.diff(edges)[:, None]
        nodes = (0.5 * (edges[1:] + edges[:-1])[:, None] + half * g).reshape(-1)
        logw = np.log((half * w).reshape(-1)) - 0.5 * ((nodes - 1) / self.sr) ** 2
        logw = torch.log_softmax(torch.as_tensor(logw), dim=0)
        return torch.as_tensor(nodes), logw

    def _coefficients(self, a: float, s: float) -> tuple[Tensor, Tensor, Tensor]:
        """f₁ nodes ``(Q,)``, their log weights ``(Q,)`` (incl. the 1/K class weight) and the
        quadratic-form coefficients ``(6, K, Q)`` of every component's log density over the
        features [x₁², x₂², x₁x₂, x₁, x₂, 1]."""
        f1, lw = self._f1_nodes(a, s)  # (Q,)
        lw = lw - math.log(self.k)
        alpha = self.theta[:, None] + self.rate * torch.exp(f1)  # (K, Q)
        beta2 = (self.SCALE * a * self.st) ** 2
        u1, u2 = torch.cos(alpha), torch.sin(alpha)
        pu, pv = 1 / (s * s), 1 / (s * s + beta2)  # precisions along u and v = (-u2, u1)
        p11 = pu * u1 * u1 + pv * u2 * u2
        p22 = pu * u2 * u2 + pv * u1 * u1
        p12 = (pu - pv) * u1 * u2
        m1, m2 = self.SCALE * a * f1 * u1, self.SCALE * a * f1 * u2  # means (K, Q)
        b1, b2 = p11 * m1 + p12 * m2, p12 * m1 + p22 * m2
        const = lw - LOG_2PI - 0.5 * math.log(s * s * (s * s + beta2)) - 0.5 * (m1 * b1 + m2 * b2)
        return f1, lw, torch.stack([-0.5 * p11, -0.5 * p22, -p12, b1, b2, const])  # (6, K, Q)

    @staticmethod
    def _eval_cols(x: Tensor, coef: Tensor, want_score: bool) -> tuple[Tensor, Tensor | None]:
        """log Σ exp(features(x) @ coef) and its gradient for coefficient columns ``(6, M)``."""
        x1, x2 = x[:, 0], x[:, 1]
        feats = torch.stack([x1 * x1, x2 * x2, x1 * x2, x1, x2, torch.ones_like(x1)], 1)  # (n, 6)
        lc = feats @ coef  # (n, M) per-component log densities
        lp = torch.logsumexp(lc, dim=1)
        if not want_score:
            return lp, None
        avg = torch.exp(lc - lp[:, None]) @ coef.T  # (n, 6) posterior-averaged coefficients
        g1 = 2 * avg[:, 0] * x1 + avg[:, 2] * x2 + avg[:, 3]
        g2 = 2 * avg[:, 1] * x2 + avg[:, 2] * x1 + avg[:, 4]
        return lp, torch.stack([g1, g2], 1)

    def _mixture(
        self, x: Tensor, a: float, s: float, want_score: bool
    ) -> tuple[Tensor, Tensor | None]:
        """The f₁-quadrature mixture, evaluated on groups of points of similar radius r = |x|,
        each over the nodes that can matter to it.

        A component with centre radius |R| = 2α|f₁| has quadratic form
        (r cos δ - R)²/σ² + r² sin² δ/W² ≥ F(|R|) = (|R| - r)²/σ² for |R| ≥ r(1 - ε), else
        (r² - R²/(1 - ε))/W² (ε = σ²/W², W² = σ² + β²). A group keeps the nodes with F < F_thr;
        a point is final when the dropped nodes' bound max log w + c₀ - F_thr/2 lies ``PRUNE``
        below its kept log-sum, otherwise it is redone with the threshold that this requires."""
        f1, lw, coef = self._coefficients(a, s)
        w2 = s * s + (self.SCALE * a * self.st) ** 2
        eps = s * s / w2
        top = float(lw.max()) - LOG_2PI - 0.5 * math.log(s * s * w2)  # largest possible log term
        absf = f1.abs() * (self.SCALE * a)  # (Q,) |R| of each node
        r = x.norm(dim=1)  # (N,)
        n = x.shape[0]
        logp = torch.empty(n, dtype=torch.float64)
        score = torch.empty(n, 2, dtype=torch.float64) if want_score else None
        per = max(1, min(512, (1 << 22) // max(1, coef.shape[1] * coef.shape[2])))

        def run(rows: Tensor, thr: Tensor) -> Tensor:
            """Evaluate ``rows`` (sorted by r) in groups; returns a per-row 'final' mask."""
            final = torch.zeros(rows.numel(), dtype=torch.bool)
            for start in range(0, rows.numel(), per):
                idx = rows[start : start + per]
                f_thr = float(thr[start : start + per].max())
                r_lo, r_hi = float(r[idx].min()), float(r[idx].max())
                big_r = r_hi + s * math.sqrt(f_thr)
                small_r = min(
                    math.sqrt(max(0.0, (1 - eps) * (r_lo * r_lo - f_thr * w2))),
                    r_lo - s * math.sqrt(f_thr),
                )
                keep = ((absf >= small_r) & (absf <= big_r)).nonzero()[:, 0]
                if keep.numel() == 0:
                    keep = torch.arange(f1.numel())
                cols = coef[:, :, keep].reshape(6, -1)
                lp, sc = self._eval_cols(x[idx], cols, want_score)
                logp[idx] = lp
                if want_score:
                    score[idx] = sc
                full = keep.numel() == f1.numel()
                final[start : start + per] = full | (top - f_thr / 2 <= lp - PRUNE_NATS)
            return final

        order = torch.argsort(r)
        first = torch.full((n,), 120.0, dtype=torch.float64)
        done = run(order, first)
        rest = order[~done]
        if rest.numel():
            rest = rest[torch.argsort(r[rest])]  # F_thr that makes each row final:
            need = (2 * (top - logp[rest] + PRUNE_NATS) + 1.0).clamp(min=120.0)
            run(rest, need)
        return logp, score

    def _diffused(
        self, x: Tensor, a: float, s: float, want_score: bool
    ) -> tuple[Tensor, Tensor | None]:
        if a == 0.0:
            return gaussian_log_prob(x, s * s), (-x / (s * s) if want_score else None)
        if s / a < self.SMALL_NOISE:  # the rescaled exact density (see the module doc)
            lp = self._log_prob64(x / a).detach() - 2 * math.log(a)
            return lp, (autograd_score(self._log_prob64, x / a) / a if want_score else None)
        flip = torch.tensor([1.0, -1.0 if self.mirror else 1.0], dtype=torch.float64)
        lp, sc = self._mixture(x * flip, a, s, want_score)
        return lp, (sc * flip if want_score else None)

    def log_prob_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        a, s = check_alpha_sigma(alpha, sigma)
        return self._diffused(as_points(x).detach(), a, s, False)[0].to(x.dtype)

    def score_t(self, x: Tensor, alpha: float | Tensor, sigma: float | Tensor) -> Tensor:
        a, s = check_alpha_sigma(alpha, sigma)
        return self._diffused(as_points(x).detach(), a, s, True)[1].to(x.dtype)

    def moments(self, n: int = 0) -> tuple[Tensor, Tensor]:
        """Exact: mean 0 and, by the K-fold symmetry (K ≥ 3), covariance 2(1 + σ_r² + σ_t²) I."""
        if self.k < 3:
            return super().moments(n or 400_000)
        var = self.SCALE**2 * (1 + self.sr**2 + self.st**2) / 2
        return torch.zeros(2, dtype=torch.float64), var * torch.eye(2, dtype=torch.float64)


@register("pinwheel")
def pinwheel(
    radial_std: float = 0.3,
    tangential_std: float = 0.1,
    num_classes: int = 5,
    rate: float = 0.25,
    mirror: bool = False,
) -> Pinwheel:
    """FFJORD's pinwheel (5 arms), exact density by change of variables."""
    return Pinwheel(radial_std, tangential_std, num_classes, rate, mirror)
