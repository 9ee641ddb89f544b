"""Figures of the GAN page (lecture 3-3): pure builders, numpy in, plotly figure out.

- ``discriminator_figure(view, ...)``: the discriminator logit D_φ(x) as a diverging heatmap with
  real and fake points and the generator's push on each fake (−∇_y of the generator loss), next
  to the optimal D* = log p/q̂ (exact p, KDE estimate q̂ of the generator's density);
- ``slow_motion_figure(views, ...)``: the same left panel animated over a few recorded steps;
- ``evolution_figure(snapshots, ...)``: fake samples over training (animation from snapshots);
- ``coverage_figure(rows)``: modes covered against the training step;
- ``gan_curves(history)``: discriminator/generator losses and ⟨σ(D)⟩ on real and fake points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from genlib.viz.animation import add_animation, animated_scatter
from genlib.viz.core import (
    DATA_COLOR,
    MODEL_COLOR,
    PALETTE,
    Bounds,
    as_numpy,
    f32,
    loss_curve,
    square_layout,
    style,
)
from genlib.viz.fields import density_trace, quiver_trace

if TYPE_CHECKING:
    from genlib.lab.gan import GanView

__all__ = [
    "LABELS",
    "D_SCALE",
    "d_heatmap",
    "discriminator_figure",
    "slow_motion_figure",
    "evolution_figure",
    "coverage_figure",
    "gan_curves",
]

#: red (D < 0: "fake") - white (D = 0: σ(D) = ½) - blue (D > 0: "data")
D_SCALE = "RdBu"
ARROW_COLOR = "#111827"

#: default (English) texts; pages pass their translated ones
LABELS: dict[str, str] = {
    "d": "D_φ(x)",
    "d_star": "D*(x) = log p/q̂ (estimate)",
    "real": "data x ~ p",
    "fake": "fakes y = G_θ(z)",
    "push": "push on fakes −∇_y(G loss)",
    "panel_d": "discriminator D_φ",
    "panel_d_star": "optimal D* = log p − log q̂ (q̂: KDE of fakes)",
    "step": "step",
    "density": "p(x)",
    "modes": "modes covered",
    "fraction": "fraction near a mode",
    "d_loss": "D loss −V",
    "g_loss": "G loss",
    "js_est": "JS estimate 2log2 − (−V)",
    "d_real": "⟨σ(D(x))⟩_p",
    "d_fake": "⟨σ(D(y))⟩_q",
    "half": "σ = ½",
    "frame": "step ",
}


def _lab(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**LABELS, **(labels or {})}


def d_heatmap(
    values: Any, xs: Any, ys: Any, *, zmax: float = 5.0, name: str = "D", showscale: bool = True
) -> go.Heatmap:
    """A logit on the grid as a diverging heatmap centred at 0 and clipped to ±``zmax``
    (NaN cells are left blank)."""
    xs, ys = as_numpy(xs), as_numpy(ys)
    z = np.clip(as_numpy(values).reshape(len(ys), len(xs)), -zmax, zmax)
    return go.Heatmap(
        x=f32(xs),
        y=f32(ys),
        z=z,
        colorscale=D_SCALE,
        zmid=0.0,
        zmin=-zmax,
        zmax=zmax,
        showscale=showscale,
        name=name,
        colorbar={"title": {"text": name, "side": "right"}, "thickness": 12, "len": 0.8},
        hovertemplate="(%{x:.2f}, %{y:.2f}): %{z:.2f}<extra>" + name + "</extra>",
    )


def _points(
    x: Any, name: str, colour: str, size: float = 4.0, opacity: float = 0.6, legend: bool = True
) -> go.Scatter:
    p = as_numpy(x).reshape(-1, 2)
    return go.Scatter(
        x=f32(p[:, 0]),
        y=f32(p[:, 1]),
        mode="markers",
        name=name,
        showlegend=legend,
        marker={"size": size, "color": colour, "opacity": opacity, "line": {"width": 0}},
        hoverinfo="skip",
    )


def _arrows(view: GanView, n: int, scale: float, name: str, legend: bool = True) -> go.Scatter:
    k = min(n, len(view.fakes))
    tr = quiver_trace(
        view.fakes[:k], view.push[:k], scale=scale, color=ARROW_COLOR, name=name, width=1.0
    )
    tr.showlegend = legend
    return tr


def _left_traces(
    view: GanView,
    real: Any,
    lab: dict[str, str],
    zmax: float,
    arrows: int,
    arrow_scale: float,
    legend: bool = True,
) -> list[go.BaseTraceType]:
    out: list[go.BaseTraceType] = [d_heatmap(view.d, view.xs, view.ys, zmax=zmax, name=lab["d"])]
    if real is not None:
        out.append(_points(real, lab["real"], DATA_COLOR, 3.5, 0.45, legend))
    out.append(_points(view.fakes, lab["fake"], MODEL_COLOR, 4.5, 0.8, legend))
    if arrows > 0:
        out.append(_arrows(view, arrows, arrow_scale, lab["push"], legend))
    return out


def discriminator_figure(
    view: GanView,
    bounds: Bounds,
    *,
    real: Any = None,
    arrows: int = 150,
    arrow_scale: float | None = None,
    zmax: float = 5.0,
    labels: Mapping[str, str] | None = None,
    height: int = 500,
) -> go.Figure:
    """Left: D_φ with real points, fakes and the push on the first ``arrows`` fakes (the longest
    arrow has length ``arrow_scale``, default 12 % of the box). Right (when ``view.d_star`` is
    set): the estimated optimal discriminator on the same colour scale, with the fakes."""
    lab = _lab(labels)
    scale = arrow_scale if arrow_scale is not None else 0.12 * (bounds[1] - bounds[0])
    two = view.d_star is not None
    fig = make_subplots(
        rows=1,
        cols=2 if two else 1,
        subplot_titles=[lab["panel_d"], lab["panel_d_star"]] if two else [lab["panel_d"]],
        horizontal_spacing=0.06,
    )
    for tr in _left_traces(view, real, lab, zmax, arrows, scale):
        fig.add_trace(tr, row=1, col=1)
    square_layout(fig, bounds, row=1, col=1)
    if two:
        fig.add_trace(
            d_heatmap(
                view.d_star, view.xs, view.ys, zmax=zmax, name=lab["d_star"], showscale=False
            ),
            row=1,
            col=2,
        )
        fig.add_trace(
            _points(view.fakes, lab["fake"], MODEL_COLOR, 3.5, 0.6, legend=False), row=1, col=2
        )
        square_layout(fig, bounds, row=1, col=2, ytitle=None)
    style(fig, height=height)
    fig.update_layout(legend={"y": -0.1, "yanchor": "top"}, margin={"b": 70})
    return fig


def slow_motion_figure(
    views: Sequence[GanView],
    bounds: Bounds,
    steps: Sequence[int],
    *,
    real: Any = None,
    arrows: int = 150,
    zmax: float = 5.0,
    duration_ms: int = 600,
    labels: Mapping[str, str] | None = None,
    height: int = 560,
) -> go.Figure:
    """The discriminator panel over recorded states (one frame per view, labelled by ``steps``),
    played slowly in the browser; the arrows keep one length scale over all frames."""
    lab = _lab(labels)
    if len(views) != len(steps) or not views:
        raise ValueError("one step label per view")
    longest = max(
        float(np.linalg.norm(v.push, axis=1).max()) if len(v.push) else 0.0 for v in views
    )
    box = 0.12 * (bounds[1] - bounds[0])

    def traces(v: GanView) -> list[go.BaseTraceType]:
        own = float(np.linalg.norm(v.push, axis=1).max()) if len(v.push) else 0.0
        scale = box * own / longest if longest > 0 else box
        return _left_traces(v, real, lab, zmax, arrows, max(scale, 1e-9))

    first = traces(views[0])
    fig = go.Figure(first)
    frames = [
        go.Frame(data=traces(v), traces=list(range(len(first))), name=str(i))
        for i, v in enumerate(views)
    ]
    style(fig, height=height)
    square_layout(fig, bounds)
    fig.update_layout(legend={"y": 1.01, "yanchor": "bottom"})
    return add_animation(
        fig,
        frames,
        [str(s) for s in steps],
        duration_ms=duration_ms,
        redraw=True,
        prefix=lab["frame"],
    )


def evolution_figure(
    snapshots: Sequence[tuple[int, Any]],
    bounds: Bounds,
    log_p: Any,
    xs: Any,
    ys: Any,
    *,
    labels: Mapping[str, str] | None = None,
    max_points: int = 1000,
    height: int = 540,
) -> go.Figure:
    """Fake samples at each snapshot ``(step, (n, 2))`` animated over the exact target density."""
    lab = _lab(labels)
    if not snapshots:
        raise ValueError("no snapshots to animate")
    n = min(min(len(as_numpy(x)) for _, x in snapshots), max_points)
    frames = np.stack([as_numpy(x)[:n] for _, x in snapshots])  # (F, n, 2)
    return animated_scatter(
        frames,
        bounds,
        [str(s) for s, _ in snapshots],
        name=lab["fake"],
        marker_color=MODEL_COLOR,
        background=[density_trace(log_p, xs, ys, name=lab["density"], showscale=False)],
        slider_prefix=lab["frame"],
        size=4.0,
        height=height,
        duration_ms=150,
    )


def coverage_figure(
    rows: Sequence[Mapping[str, float]],
    *,
    labels: Mapping[str, str] | None = None,
    height: int = 300,
) -> go.Figure:
    """Modes covered (left axis) and the fraction of samples near a mode (right axis) against the
    step: ``rows`` with ``step``, ``modes_covered``, ``modes_total``, ``fraction_near_mode``."""
    lab = _lab(labels)
    steps = [r["step"] for r in rows]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=steps,
            y=[r["modes_covered"] for r in rows],
            mode="lines+markers",
            name=lab["modes"],
            line={"color": PALETTE[0], "width": 2.5},
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=steps,
            y=[r["fraction_near_mode"] for r in rows],
            mode="lines",
            name=lab["fraction"],
            line={"color": PALETTE[2], "dash": "dot"},
        ),
        secondary_y=True,
    )
    total = max((r["modes_total"] for r in rows), default=1.0)
    style(fig, height=height)
    fig.update_xaxes(title={"text": lab["step"]}, showgrid=True, gridcolor="#eceff3")
    fig.update_yaxes(
        range=[0, total + 0.5],
        dtick=1 if total <= 10 else None,
        title={"text": lab["modes"]},
        secondary_y=False,
    )
    fig.update_yaxes(
        range=[0, 1.05], title={"text": lab["fraction"]}, secondary_y=True, showgrid=False
    )
    return fig


def gan_curves(
    history: Sequence[Mapping[str, float]],
    *,
    labels: Mapping[str, str] | None = None,
    height: int = 320,
) -> tuple[go.Figure, go.Figure]:
    """(losses: −V, G loss, JS estimate; probabilities: ⟨σ(D)⟩ on data and fakes with the ½ line)."""
    lab = _lab(labels)
    keys = ["d_loss", "g_loss", "js_est"]
    rows = [{"step": r["step"], **{lab[k]: r[k] for k in keys if k in r}} for r in history]
    losses = loss_curve(rows, [lab[k] for k in keys], height=height, xlabel=lab["step"])
    rows = [
        {"step": r["step"], **{lab[k]: r[k] for k in ("d_real", "d_fake") if k in r}}
        for r in history
    ]
    probs = loss_curve(rows, [lab["d_real"], lab["d_fake"]], height=height, xlabel=lab["step"])
    if history:
        probs.add_hline(
            y=0.5,
            line={"color": "#6b7280", "dash": "dash", "width": 1},
            annotation_text=lab["half"],
        )
    probs.update_yaxes(range=[0, 1])
    return losses, probs
