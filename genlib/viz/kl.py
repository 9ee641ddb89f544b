"""Figures of the KL page (forward vs reverse KL, lecture 2-5): pure builders, no streamlit.

- ``kl_pair_figure(fits)``: the fits side by side over the exact target density, animated from the
  same start (client-side Plotly frames, one shared slider), with each fit's KL(p‖q_θ) and
  KL(q_θ‖p) against the step underneath and a marker at the current frame;
- ``kl_snapshot(fit, frame)``: one panel at one frame (for slide export);
- ``kl_curves_chart(fit)``: Altair chart of the two KL values against the step;
- ``seed_sweep_chart(sweep)``: which mode reverse KL ends in, per seed (Altair);
- ``trace_table(fits)``: the KL-vs-step table (CSV); ``gif_background(fit)`` for ``frames_to_gif``.

A Gaussian q_θ is drawn as its 1σ and 2σ ellipses; a mixture or flow as its highest-density
contours holding the same masses (39.3 % and 86.5 %, which *are* the 1σ/2σ ellipses of a Gaussian).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from genlib.viz.animation import add_animation
from genlib.viz.core import MODEL_COLOR, PALETTE, f32, square_layout, style
from genlib.viz.fields import density_trace
from genlib.viz.gif import colormap

if TYPE_CHECKING:
    from genlib.kl import KLFit, SeedSweep

__all__ = [
    "LABELS",
    "TEXT_KEYS",
    "HDR_MASSES",
    "fmt_kl",
    "results_rows",
    "ellipse_xy",
    "density_image",
    "hdr_levels",
    "contour_segments",
    "kl_pair_figure",
    "kl_snapshot",
    "kl_curves_chart",
    "seed_sweep_chart",
    "trace_table",
    "gif_background",
    "sample_frames",
]

#: default (English) legend texts; pages pass their translated ones
LABELS: dict[str, str] = {
    "samples": "samples of q_θ",
    "sigma1": "q_θ: 1σ",
    "sigma2": "q_θ: 2σ",
    "mean": "mean of q_θ",
    "moment": "moment matching N(E_p[x], Cov_p[x])",
    "kl_pq": "KL(p‖q_θ)",
    "kl_qp": "KL(q_θ‖p)",
    "step": "step",
    "kl": "KL [nats]",
    "frame": "step ",
    "mode": "mode",
    "several": "several modes",
    "seed": "seed",
    "seeds": "seeds",
    "centre": "mode centre",
    "picked": "ends in",
}
#: LABELS key -> key in the page's texts (``assets/texts/kl.toml``)
TEXT_KEYS: dict[str, str] = {
    **{k: k for k in ("samples", "sigma1", "sigma2", "mean", "kl_pq", "kl_qp", "step", "several")},
    **{k: k for k in ("mode", "seed", "picked")},
    "moment": "moment_legend",
    "kl": "kl_axis",
    "frame": "frame_prefix",
    "seeds": "seeds_axis",
}
KL_COLORS = {"kl_pq": PALETTE[2], "kl_qp": PALETTE[3]}
HDR_MASSES = (1 - math.exp(-0.5), 1 - math.exp(-2.0))  # mass inside the 1σ and 2σ ellipses in 2D
_MOMENT_COLOR = "#4b5563"


def _lab(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**LABELS, **(labels or {})}


def ellipse_xy(
    mean: Sequence[float], cov: Any, k: float, n: int = 90
) -> tuple[np.ndarray, np.ndarray]:
    """The k-σ ellipse {μ + k L u : |u| = 1} of N(μ, Σ = L Lᵀ): closed polyline x, y ``(n,)``."""
    c = np.asarray(cov, dtype=np.float64)
    w, v = np.linalg.eigh(0.5 * (c + c.T))
    a = v * np.sqrt(np.maximum(w, 0.0))  # Σ = A Aᵀ
    t = np.linspace(0, 2 * np.pi, n)
    pts = np.asarray(mean, dtype=np.float64)[:, None] + k * a @ np.stack([np.cos(t), np.sin(t)])
    return pts[0], pts[1]


def hdr_levels(
    log_q: np.ndarray, cell_area: float, masses: Sequence[float] = HDR_MASSES
) -> list[float]:
    """log-density levels whose super-level sets hold ``masses`` of q on the grid (same order)."""
    lq = np.asarray(log_q, dtype=np.float64).ravel()
    lq = np.where(np.isfinite(lq), lq, -np.inf)
    order = np.sort(lq)[::-1]
    dens = np.exp(order - order[0])
    cum = np.cumsum(dens)
    cum /= cum[-1] if cum[-1] > 0 else 1.0
    out = []
    for m in masses:
        i = int(min(np.searchsorted(cum, m), len(order) - 1))
        out.append(float(order[i]))
    return out


# marching squares: for each corner pattern (bit 0 = (i, j), 1 = (i, j+1), 2 = (i+1, j+1),
# 3 = (i+1, j) above the level) the crossed cell edges joined by segments (edges: 0 bottom,
# 1 right, 2 top, 3 left); the saddles 5 and 10 get two segments.
_MS_SEGMENTS: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((3, 0),), 2: ((0, 1),), 3: ((3, 1),), 4: ((1, 2),), 5: ((3, 0), (1, 2)), 6: ((0, 2),),
    7: ((3, 2),), 8: ((2, 3),), 9: ((0, 2),), 10: ((0, 1), (2, 3)), 11: ((1, 2),), 12: ((3, 1),),
    13: ((0, 1),), 14: ((3, 0),),
}  # fmt: skip


def contour_segments(
    z: np.ndarray, xs: np.ndarray, ys: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """The level set {z = level} of a grid ``z (len(ys), len(xs))`` (rows along y) by marching
    squares, as line segments joined into one polyline with NaN gaps: x, y ``(3·segments,)``.
    Drawn as a scatter line it animates client-side (contour traces do not: plotly.js#4491)."""
    z = np.asarray(z, dtype=np.float64)
    z = np.where(np.isfinite(z), z, -1e300)
    z00, z01, z11, z10 = z[:-1, :-1], z[:-1, 1:], z[1:, 1:], z[1:, :-1]
    case = (z00 > level) * 1 + (z01 > level) * 2 + (z11 > level) * 4 + (z10 > level) * 8
    i, j = np.nonzero((case > 0) & (case < 15))
    if len(i) == 0:
        return np.zeros(0), np.zeros(0)
    x0, x1, y0, y1 = xs[j], xs[j + 1], ys[i], ys[i + 1]

    def frac(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = b - a
        return np.clip(np.where(np.abs(d) > 0, (level - a) / np.where(d == 0, 1, d), 0.5), 0, 1)

    a00, a01, a11, a10 = z00[i, j], z01[i, j], z11[i, j], z10[i, j]
    edges = [
        (x0 + frac(a00, a01) * (x1 - x0), y0),  # bottom
        (x1 + 0 * x0, y0 + frac(a01, a11) * (y1 - y0)),  # right
        (x0 + frac(a10, a11) * (x1 - x0), y1),  # top
        (x0 + 0 * x1, y0 + frac(a00, a10) * (y1 - y0)),  # left
    ]
    c = case[i, j]
    px, py = [], []
    for slot in (0, 1):
        ea = np.full(len(c), -1)
        eb = np.full(len(c), -1)
        for k, segs in _MS_SEGMENTS.items():
            if len(segs) > slot:
                ea[c == k], eb[c == k] = segs[slot]
        keep = ea >= 0
        if not keep.any():
            continue
        sel = np.nonzero(keep)[0]
        xa = np.choose(ea[sel], [e[0][sel] for e in edges])
        ya = np.choose(ea[sel], [np.broadcast_to(e[1], x0.shape)[sel] for e in edges])
        xb = np.choose(eb[sel], [e[0][sel] for e in edges])
        yb = np.choose(eb[sel], [np.broadcast_to(e[1], x0.shape)[sel] for e in edges])
        nan = np.full(len(sel), np.nan)
        px.append(np.stack([xa, xb, nan], 1).ravel())
        py.append(np.stack([ya, yb, nan], 1).ravel())
    return np.concatenate(px), np.concatenate(py)


def _cell_area(fit: KLFit) -> float:
    return float((fit.xs[1] - fit.xs[0]) * (fit.ys[1] - fit.ys[0]))


def _finite(v: float) -> float | None:
    return v if (v is not None and math.isfinite(v) and v > 0) else None


def _q_traces(
    fit: KLFit, f: int, lab: dict[str, str], legend: bool, sample_color: str
) -> list[go.BaseTraceType]:
    """q_θ at frame f: its 2σ and 1σ shapes, its mean and its samples (fixed count per family)."""
    fr = fit.frames[min(f, len(fit.frames) - 1)]
    out: list[go.BaseTraceType] = []
    if fit.cfg.q == "gaussian":
        for k, key, dash in ((2.0, "sigma2", "dash"), (1.0, "sigma1", "solid")):
            x, y = ellipse_xy(fr.params["mean"], fr.params["cov"], k)
            out.append(
                go.Scatter(
                    x=f32(x), y=f32(y), mode="lines", name=lab[key], legendgroup=key, showlegend=legend,
                    line={"color": MODEL_COLOR, "width": 2.5 if k == 1 else 1.8, "dash": dash},
                    hoverinfo="skip",
                )
            )  # fmt: skip
    else:
        lv1, lv2 = hdr_levels(fr.log_q, _cell_area(fit))
        for lv, key, dash in ((lv2, "sigma2", "dash"), (lv1, "sigma1", "solid")):
            x, y = contour_segments(fr.log_q, fit.xs, fit.ys, lv)
            out.append(
                go.Scatter(
                    x=f32(x), y=f32(y), mode="lines", name=lab[key], legendgroup=key, showlegend=legend,
                    line={"color": MODEL_COLOR, "width": 2.5 if key == "sigma1" else 1.8, "dash": dash},
                    connectgaps=False, hoverinfo="skip",
                )
            )  # fmt: skip
    m = fr.params["mean"]
    out.append(
        go.Scatter(
            x=[m[0]], y=[m[1]], mode="markers", name=lab["mean"], legendgroup="mean", showlegend=legend,
            marker={"symbol": "x", "size": 11, "color": MODEL_COLOR, "line": {"width": 1}},
            hovertemplate="(%{x:.2f}, %{y:.2f})<extra>" + lab["mean"] + "</extra>",
        )
    )  # fmt: skip
    out.append(
        go.Scatter(
            x=f32(fr.samples[:, 0]), y=f32(fr.samples[:, 1]), mode="markers", name=lab["samples"],
            legendgroup="samples", showlegend=legend,
            marker={"size": 4, "color": sample_color, "opacity": 0.55, "line": {"width": 0}},
            hoverinfo="skip",
        )
    )  # fmt: skip
    return out


def density_image(fit: KLFit) -> dict[str, Any]:
    """The target density as a layout image over the fit's box (house colour scale). Unlike a
    heatmap trace it survives client-side animation frames (plotly.js drops heatmap/contour traces
    that a frame does not redraw: plotly.js#4491)."""
    dens = gif_background(fit)[::-1]  # image rows go down
    dx = float(fit.xs[1] - fit.xs[0])
    dy = float(fit.ys[1] - fit.ys[0])
    return {
        "source": Image.fromarray(colormap(dens)),
        "x": float(fit.xs[0]) - dx / 2,
        "y": float(fit.ys[-1]) + dy / 2,
        "sizex": dx * len(fit.xs),
        "sizey": dy * len(fit.ys),
        "xanchor": "left",
        "yanchor": "top",
        "sizing": "stretch",
        "layer": "below",
    }


def _background(
    fit: KLFit, moment: bool, lab: dict[str, str], legend: bool, heatmap: bool = True
) -> list[go.BaseTraceType]:
    out: list[go.BaseTraceType] = []
    if heatmap:
        lp = fit.log_p.ravel()
        out.append(density_trace(lp, fit.xs, fit.ys, scale="density", name="p(x)", showscale=False))
    if moment and fit.target_cov:
        for k, dash in ((2.0, "dot"), (1.0, "dot")):
            x, y = ellipse_xy(fit.target_mean, fit.target_cov, k)
            out.append(
                go.Scatter(
                    x=f32(x), y=f32(y), mode="lines", name=lab["moment"], legendgroup="moment",
                    showlegend=legend and k == 1.0, line={"color": _MOMENT_COLOR, "width": 1.6, "dash": dash},
                    hoverinfo="skip",
                )
            )  # fmt: skip
    return out


def _curve_traces(fit: KLFit, lab: dict[str, str], legend: bool) -> list[go.Scatter]:
    steps = [f.step for f in fit.frames]
    out = []
    for key in ("kl_pq", "kl_qp"):
        vals = [_finite(getattr(f, key)) for f in fit.frames]
        out.append(
            go.Scatter(
                x=steps, y=vals, mode="lines", name=lab[key], legendgroup=key, showlegend=legend,
                line={"color": KL_COLORS[key], "width": 2.2}, connectgaps=False,
                hovertemplate="%{x}: %{y:.4f}<extra>" + lab[key] + "</extra>",
            )
        )  # fmt: skip
    return out


def _curve_markers(fit: KLFit, f: int, lab: dict[str, str], y_inf: float) -> list[go.Scatter]:
    """Markers at frame f on the KL curves (+inf drawn at ``y_inf``, the top of the axis, as ∞)."""
    fr = fit.frames[min(f, len(fit.frames) - 1)]
    out = []
    for key in ("kl_pq", "kl_qp"):
        v = getattr(fr, key)
        y = _finite(v) if v != math.inf else y_inf
        out.append(
            go.Scatter(
                x=[fr.step], y=[y], mode="markers+text", showlegend=False,
                text=["∞" if v == math.inf else f"{v:.3g}"], textposition="top left",
                textfont={"color": KL_COLORS[key], "size": 12},
                marker={"size": 10, "color": KL_COLORS[key], "line": {"color": "white", "width": 1}},
                name=lab[key], hoverinfo="skip",
            )
        )  # fmt: skip
    return out


def kl_pair_figure(
    fits: Sequence[KLFit],
    titles: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    moment: Sequence[bool] | None = None,
    duration_ms: int = 120,
    height: int = 760,
) -> go.Figure:
    """One or two fits side by side, animated together (frame i of each; a fit that stopped early
    holds its last frame): top row q_θ over the target density, bottom row its KL values against
    the step with a marker at the current frame. ``moment[j]``: draw the moment-matched Gaussian
    (the forward-KL optimum) in panel j."""
    lab = _lab(labels)
    n = len(fits)
    if n not in (1, 2) or len(titles) != n:
        raise ValueError("kl_pair_figure takes one or two fits and one title each")
    moment = list(moment) if moment is not None else [f.cfg.divergence == "forward" for f in fits]
    fig = make_subplots(
        rows=2, cols=n, row_heights=[0.74, 0.26], vertical_spacing=0.09, horizontal_spacing=0.07,
        subplot_titles=[*titles, *([""] * n)],
    )  # fmt: skip
    all_vals = [v for f in fits for fr in f.frames for v in (fr.kl_pq, fr.kl_qp) if _finite(v)]
    lo = math.log10(max(min(all_vals), 1e-4)) - 0.15 if all_vals else -2.0
    hi = math.log10(max(all_vals)) + 0.35 if all_vals else 2.0
    y_inf = 10 ** (hi - 0.12)
    first_moment = moment.index(True) + 1 if any(moment) else 0
    dynamic_idx: list[int] = []
    for j, fit in enumerate(fits, start=1):
        fig.add_layout_image(density_image(fit), row=1, col=j)
        for tr in _background(fit, moment[j - 1], lab, legend=j == first_moment, heatmap=False):
            fig.add_trace(tr, row=1, col=j)
        for tr in _curve_traces(fit, lab, legend=j == 1):
            fig.add_trace(tr, row=2, col=j)
    for j, fit in enumerate(fits, start=1):
        for tr in _q_traces(fit, 0, lab, legend=j == 1, sample_color=MODEL_COLOR):
            fig.add_trace(tr, row=1, col=j)
            dynamic_idx.append(len(fig.data) - 1)
        for tr in _curve_markers(fit, 0, lab, y_inf):
            fig.add_trace(tr, row=2, col=j)
            dynamic_idx.append(len(fig.data) - 1)
    n_frames = max(len(f.frames) for f in fits)
    longest = max(fits, key=lambda f: len(f.frames))
    frames = []
    for i in range(n_frames):
        data: list[go.BaseTraceType] = []
        for j, fit in enumerate(fits, start=1):
            data += _q_traces(fit, i, lab, legend=j == 1, sample_color=MODEL_COLOR)
            data += _curve_markers(fit, i, lab, y_inf)
        frames.append(go.Frame(data=data, traces=dynamic_idx, name=str(i)))
    style(fig, height=height)
    max_step = max(f.cfg.steps for f in fits)
    for j, fit in enumerate(fits, start=1):
        square_layout(fig, fit.bounds, row=1, col=j, ytitle="x₂" if j == 1 else None)
        fig.update_xaxes(
            title={"text": lab["step"]},
            range=[0, max_step],
            row=2,
            col=j,
            showgrid=True,
            gridcolor="#eceff3",
        )
        fig.update_yaxes(
            type="log", range=[lo, hi], title={"text": lab["kl"] if j == 1 else None}, row=2, col=j,
            showgrid=True, gridcolor="#eceff3",
        )  # fmt: skip
    fig.update_layout(
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.04, "xanchor": "left", "x": 0.0}
    )
    labels_ = [f"{longest.frames[i].step}" for i in range(n_frames)]
    # every animated trace is a scatter: no redraw (smooth, and heatmaps/contours never vanish)
    return add_animation(
        fig, frames, labels_, duration_ms=duration_ms, redraw=False, prefix=lab["frame"]
    )


def kl_snapshot(
    fit: KLFit,
    frame: int = -1,
    *,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
    moment: bool | None = None,
    height: int = 560,
) -> go.Figure:
    """One panel at one frame (default: the last), static: for PNG/SVG slides."""
    lab = _lab(labels)
    f = frame if frame >= 0 else len(fit.frames) + frame
    moment = fit.cfg.divergence == "forward" if moment is None else moment
    fig = go.Figure(
        _background(fit, moment, lab, legend=True) + _q_traces(fit, f, lab, True, MODEL_COLOR)
    )
    style(fig, title=title, height=height)
    return square_layout(fig, fit.bounds)


def kl_curves_chart(
    fit: KLFit,
    *,
    frame: int | None = None,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
    height: int = 180,
) -> alt.Chart:
    """Altair: KL(p‖q_θ) and KL(q_θ‖p) against the step (log scale; +inf values are left out and
    shown as ∞ in the table), with a rule at ``frame``'s step when given."""
    lab = _lab(labels)
    df = trace_table({"fit": fit})
    long = df.melt(
        id_vars=["step"], value_vars=["kl_pq", "kl_qp"], var_name="key", value_name="value"
    )
    long = long[np.isfinite(long["value"]) & (long["value"] > 0)]
    long["quantity"] = long["key"].map({"kl_pq": lab["kl_pq"], "kl_qp": lab["kl_qp"]})
    colors = alt.Scale(
        domain=[lab["kl_pq"], lab["kl_qp"]], range=[KL_COLORS["kl_pq"], KL_COLORS["kl_qp"]]
    )
    base = alt.Chart(long).encode(
        x=alt.X("step:Q", title=lab["step"]),
        y=alt.Y("value:Q", title=lab["kl"], scale=alt.Scale(type="log")),
        color=alt.Color("quantity:N", scale=colors, title=None, legend=alt.Legend(orient="top")),
        tooltip=["step:Q", "quantity:N", alt.Tooltip("value:Q", format=".4f")],
    )
    chart = base.mark_line(strokeWidth=2.2)
    if frame is not None and fit.frames:
        step = fit.frames[min(frame, len(fit.frames) - 1)].step
        chart = chart + base.transform_filter(alt.datum.step == step).mark_point(
            size=80, filled=True
        )
        chart = chart + alt.Chart(pd.DataFrame({"step": [step]})).mark_rule(
            color="#9aa4b2", strokeDash=[4, 3]
        ).encode(x="step:Q")
    return chart.properties(height=height, width="container", title=title or "")


def seed_sweep_chart(
    sweep: SeedSweep, *, labels: Mapping[str, str] | None = None, height: int = 300
) -> alt.Chart:
    """Altair: final means of q_θ per seed over the target density (coloured by the mode they end
    in; crosses = mode centres, equal axes on the fits' box) next to the tally."""
    lab = _lab(labels)

    def name(k: int | None) -> str:
        if k is None:
            return "—"
        return lab["several"] if k < 0 else f"{lab['mode']} {k + 1}"

    df = pd.DataFrame(sweep.rows)
    df["picked_label"] = [name(k) for k in df["picked"]]
    n_modes = len(sweep.modes) if sweep.modes else 0
    domain = [name(k) for k in range(n_modes)] + ([name(-1)] if n_modes else [name(None)])
    colors = alt.Scale(
        domain=domain, range=[PALETTE[k % len(PALETTE)] for k in range(n_modes)] + ["#6b7280"]
    )
    x0, x1, y0, y1 = sweep.bounds
    xs = alt.X("mean_x:Q", title="x₁", scale=alt.Scale(domain=[x0, x1], nice=False))
    ys = alt.Y("mean_y:Q", title="x₂", scale=alt.Scale(domain=[y0, y1], nice=False))
    layers: list[alt.Chart] = []
    if sweep.log_p is not None and sweep.xs is not None and sweep.ys is not None:
        step = max(1, len(sweep.xs) // 40)
        gx, gy = np.meshgrid(sweep.xs[::step], sweep.ys[::step])
        lp = np.asarray(sweep.log_p)[::step, ::step]
        dens = (
            np.exp(lp - lp[np.isfinite(lp)].max()) if np.isfinite(lp).any() else np.zeros_like(lp)
        )
        dx, dy = float(sweep.xs[step] - sweep.xs[0]), float(sweep.ys[step] - sweep.ys[0])
        grid = pd.DataFrame(
            {
                "mean_x": gx.ravel() - dx / 2,
                "x2": gx.ravel() + dx / 2,
                "mean_y": gy.ravel() - dy / 2,
                "y2": gy.ravel() + dy / 2,
                "p": dens.ravel(),
            }
        )
        grid = grid[grid["p"] > 1e-3]
        layers.append(
            alt.Chart(grid)
            .mark_rect(opacity=0.85)
            .encode(
                x=xs,
                x2="x2:Q",
                y=ys,
                y2="y2:Q",
                color=alt.Color("p:Q", scale=alt.Scale(scheme="blues"), legend=None),
            )
        )
    if sweep.modes:
        modes = pd.DataFrame(
            {
                "mean_x": [m[0] for m in sweep.modes],
                "mean_y": [m[1] for m in sweep.modes],
                "label": [name(k) for k in range(n_modes)],
            }
        )
        layers.append(
            alt.Chart(modes)
            .mark_point(shape="cross", size=140, color="#1f2933", filled=True)
            .encode(x=xs, y=ys, tooltip=["label:N"])
        )
    layers.append(
        alt.Chart(df)
        .mark_circle(size=110, opacity=0.9, stroke="white", strokeWidth=1)
        .encode(
            x=xs,
            y=ys,
            color=alt.Color("picked_label:N", title=lab["picked"], scale=colors),
            tooltip=[
                "seed:Q",
                "picked_label:N",
                alt.Tooltip("mean_x:Q", format=".3f"),
                alt.Tooltip("mean_y:Q", format=".3f"),
            ],
        )
    )
    scatter = (
        alt.layer(*layers)
        .resolve_scale(color="independent")
        .properties(height=height, width=height)
    )
    counts = df.groupby("picked_label", as_index=False).agg(seeds=("seed", "count"))
    bars = (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X(
                "picked_label:N", title=lab["picked"], sort=domain, axis=alt.Axis(labelAngle=0)
            ),
            y=alt.Y("seeds:Q", title=lab["seeds"], axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("picked_label:N", scale=colors, legend=None),
        )
        .properties(height=height, width=max(140, 80 * len(counts)))
    )
    return alt.hconcat(scatter, bars)


def fmt_kl(v: float) -> str:
    """A KL value for tables and captions: 4 decimals, ∞ for +inf."""
    return "∞" if v == math.inf else ("nan" if math.isnan(v) else f"{v:.4f}")


def results_rows(fits: Mapping[str, KLFit]) -> list[dict[str, Any]]:
    """Final values per fit: name, kl_pq, kl_qp (formatted), mean, variances, picked mode, seconds."""
    rows = []
    for name, fit in fits.items():
        fin, p = fit.final, fit.final.params
        rows.append(
            {
                "fit": name,
                "kl_pq": fmt_kl(fin.kl_pq),
                "kl_qp": fmt_kl(fin.kl_qp),
                "mean": f"({p['mean'][0]:.3f}, {p['mean'][1]:.3f})",
                "var": f"({p['cov'][0][0]:.3f}, {p['cov'][1][1]:.3f})",
                "where": fit.picked_mode(),
                "time": f"{fit.seconds:.2f}",
            }
        )
    return rows


def trace_table(fits: Mapping[str, KLFit]) -> pd.DataFrame:
    """The KL-vs-step table: one row per (fit, frame): fit, step, kl_pq, kl_qp, loss, mean_x, mean_y,
    q_mass (inf values kept as inf)."""
    rows = []
    for name, fit in fits.items():
        for r, fr in zip(fit.trace(), fit.frames, strict=True):
            rows.append({"fit": name, **r, "q_mass": fr.q_mass, "kl_method": fr.kl_method})
    cols = ["fit", "step", "kl_pq", "kl_qp", "loss", "mean_x", "mean_y", "q_mass", "kl_method"]
    return pd.DataFrame(rows, columns=cols)


def sample_frames(fit: KLFit) -> np.ndarray:
    """q_θ's display samples over the frames ``(F, N, 2)`` (for ``frames_to_gif``)."""
    return np.stack([f.samples for f in fit.frames])


def gif_background(fit: KLFit) -> np.ndarray:
    """The target density on the display grid scaled to [0, 1] ``(H, W)`` (GIF background)."""
    lp = np.asarray(fit.log_p, dtype=np.float64)
    return np.exp(lp - np.max(lp[np.isfinite(lp)])) if np.isfinite(lp).any() else np.zeros_like(lp)
