"""Figures of the normalizing-flow page (lecture 2-5): pure builders, numpy in, plotly out.

- ``warp_figure``: the layer-by-layer warp of a base-space grid and of base samples, animated
  from N(0, I) (frame 0) to the data space (last frame);
- ``density_pair``: the flow's exact density q_θ next to the target density p (same colour scale);
- ``jacobian_figure``: log|det ∇f_θ⁻¹(x)| over the data space (diverging colours around 0);
- ``nll_figure``: the training loss against the step with the entropy floor S(p).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from genlib.viz.animation import add_animation
from genlib.viz.core import (
    MODEL_COLOR,
    Bounds,
    as_numpy,
    f32,
    loss_curve,
    panels,
    square_layout,
    style,
)
from genlib.viz.fields import density_trace

__all__ = [
    "LABELS",
    "layer_label",
    "layer_labels",
    "warp_figure",
    "polyline_xy",
    "density_pair",
    "jacobian_figure",
    "nll_figure",
]

GRID_COLOR = "#6b7280"

#: default (English) texts; pages pass translated ones
LABELS: dict[str, str] = {
    "grid": "grid of the base space",
    "samples": "x₀ ~ N(0, I) pushed forward",
    "layer": "layer",
    "q": "q_θ(x)",
    "p": "p(x)",
    "log_det": "log|det ∇f⁻¹(x)|",
    "loss": "training loss",
    "entropy": "S(p) (floor of the NLL)",
    "step": "step",
    "nats": "nats",
    "base": "N(0, I)",
    "layer_actnorm": "actnorm",
    "layer_rotation": "rotation",
    "layer_spline": "spline coupling",
    "layer_affine": "affine coupling",
}


def _lab(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**LABELS, **(labels or {})}


def layer_label(name: str, labels: Mapping[str, str] | None = None) -> str:
    """A layer's name (``FlowModel.layer_names``: ``"actnorm"``, ``"rotation"``,
    ``"spline coupling (x1 | x2)"``, …) in the words of ``labels`` (keys ``layer_<kind>``)."""
    lab = _lab(labels)
    m = re.fullmatch(r"(\w+) coupling \(x(\d) \| x(\d)\)", name)
    if m is not None:
        kind = lab.get(f"layer_{m.group(1)}", f"{m.group(1)} coupling")
        sub = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
        return f"{kind} (x{m.group(2).translate(sub)} | x{m.group(3).translate(sub)})"
    return lab.get(f"layer_{name}", name)


def layer_labels(
    ts: Any, names: Sequence[str], base: str = "N(0, I)", labels: Mapping[str, str] | None = None
) -> list[str]:
    """Slider labels for frames at layer coordinates ``ts``: the base at 0, "l/L · name" at the end
    of layer l (the name in the words of ``labels``, see ``layer_label``), the fraction in
    between."""
    out = []
    n = len(names)
    for t in as_numpy(ts).ravel():
        i = int(round(float(t)))
        if abs(float(t) - i) < 1e-6:
            out.append(base if i == 0 else f"{i}/{n} · {layer_label(names[i - 1], labels)}")
        else:
            out.append(f"{float(t):.2f}")
    return out


def polyline_xy(lines: Any) -> tuple[np.ndarray, np.ndarray]:
    """Lines ``(M, P, 2)`` as one polyline with NaN gaps: x, y arrays of length M·(P+1)."""
    seg = as_numpy(lines)
    m = seg.shape[0]
    seg = np.concatenate([seg, np.full((m, 1, 2), np.nan)], axis=1).reshape(-1, 2)
    return f32(seg[:, 0]), f32(seg[:, 1])


def warp_figure(
    points: Any,
    lines: Any,
    frame_labels: Sequence[str],
    bounds: Bounds,
    *,
    background: Sequence[go.BaseTraceType] = (),
    labels: Mapping[str, str] | None = None,
    duration_ms: int = 120,
    height: int = 580,
    size: float = 4.0,
) -> go.Figure:
    """Animate ``points (F, N, 2)`` and grid ``lines (F, M, P, 2)`` through the flow's layers."""
    lab = _lab(labels)
    pts, ln = as_numpy(points), as_numpy(lines)
    if (
        pts.ndim != 3
        or ln.ndim != 4
        or pts.shape[0] != ln.shape[0]
        or len(frame_labels) != pts.shape[0]
    ):
        raise ValueError("points (F, N, 2), lines (F, M, P, 2) and one label per frame expected")

    def dynamic(f: int) -> list[go.BaseTraceType]:
        gx, gy = polyline_xy(ln[f])
        return [
            go.Scatter(
                x=gx, y=gy, mode="lines", line={"color": GRID_COLOR, "width": 1}, name=lab["grid"],
                hoverinfo="skip", connectgaps=False,
            ),
            go.Scatter(
                x=f32(pts[f, :, 0]), y=f32(pts[f, :, 1]), mode="markers", name=lab["samples"],
                marker={"size": size, "color": MODEL_COLOR, "opacity": 0.7, "line": {"width": 0}},
                hoverinfo="skip",
            ),
        ]  # fmt: skip

    fig = go.Figure(list(background) + dynamic(0))
    idx = [len(background), len(background) + 1]
    frames = [go.Frame(data=dynamic(f), traces=idx, name=str(f)) for f in range(pts.shape[0])]
    style(fig, height=height)
    square_layout(fig, bounds)
    return add_animation(
        fig, frames, list(frame_labels), duration_ms=duration_ms, prefix=f"{lab['layer']} "
    )


def density_pair(
    log_q: Any,
    log_p: Any,
    xs: Any,
    ys: Any,
    bounds: Bounds,
    *,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """q_θ (left) and p (right) as heatmaps on the same grid and colour range."""
    lab = _lab(labels)
    lq, lp = as_numpy(log_q), as_numpy(log_p)
    zmax = float(np.exp(np.nanmax(np.concatenate([lq[np.isfinite(lq)], lp[np.isfinite(lp)]]))))
    figs = []
    for lg, name in ((lq, lab["q"]), (lp, lab["p"])):
        f = go.Figure([density_trace(lg, xs, ys, name=name, zmax=zmax)])
        square_layout(f, bounds)
        figs.append(f)
    fig = panels(figs, [lab["q"], lab["p"]])
    fig.data[0].showscale = True
    return fig


def jacobian_figure(
    log_det: Any,
    xs: Any,
    ys: Any,
    bounds: Bounds,
    *,
    samples: Any = None,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """log|det ∇f_θ⁻¹(x)| on the grid: > 0 where the flow concentrates mass (volume shrinks)."""
    lab = _lab(labels)
    xs, ys = as_numpy(xs), as_numpy(ys)
    z = as_numpy(log_det).reshape(len(ys), len(xs))
    z = np.where(np.isfinite(z), z, np.nan)
    lim = float(np.nanpercentile(np.abs(z), 99)) if np.isfinite(z).any() else 1.0
    fig = go.Figure(
        [
            go.Heatmap(
                x=f32(xs), y=f32(ys), z=z, colorscale="RdBu_r", zmid=0.0, zmin=-lim, zmax=lim,
                name=lab["log_det"], colorbar={"title": {"text": lab["log_det"], "side": "right"}, "thickness": 12},
                hovertemplate="(%{x:.2f}, %{y:.2f}): %{z:.3f}<extra></extra>",
            )
        ]
    )  # fmt: skip
    if samples is not None:
        s = as_numpy(samples)
        fig.add_trace(
            go.Scatter(
                x=f32(s[:, 0]), y=f32(s[:, 1]), mode="markers", name="x ~ p",
                marker={"size": 2.5, "color": "#111827", "opacity": 0.4}, hoverinfo="skip",
            )
        )  # fmt: skip
    style(fig)
    return square_layout(fig, bounds)


def nll_figure(
    history: Sequence[Mapping[str, float]],
    entropy: float | None,
    keys: Sequence[str] = ("loss",),
    *,
    labels: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> go.Figure:
    """Logged values against the step, with a dashed line at S(p) (no model's NLL goes below it)."""
    lab = _lab(labels)
    rows = [
        {"step": r["step"], **{(names or {}).get(k, k): r[k] for k in keys if k in r}}
        for r in history
    ]
    fig = loss_curve(rows, xlabel=lab["step"])
    if entropy is not None and np.isfinite(entropy):
        fig.add_hline(
            y=float(entropy), line={"dash": "dash", "color": "#111827"}, annotation_text=lab["entropy"],
            annotation_position="top right",
        )  # fmt: skip
    fig.update_yaxes(title={"text": lab["nats"]})
    return fig
