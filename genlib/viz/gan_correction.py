"""Figure of the GAN page's correction panel (lecture 3-3): the generator's samples before and
after discriminator rejection sampling and the Metropolis–Hastings correction, side by side over
the target's exact density, each titled with its sliced Wasserstein distance / noise floor.

Pure builder: numpy in (a ``genlib.lab.gan.GanCorrection``), plotly figure out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from genlib.viz.core import MODEL_COLOR, PALETTE, Bounds, scatter_trace, square_layout, style

if TYPE_CHECKING:
    from genlib.lab.gan import GanCorrection

__all__ = ["CORRECTION_LABELS", "CORRECTION_KEYS", "correction_figure"]

CORRECTION_KEYS = ("before", "drs", "mh")
CORRECTION_LABELS: dict[str, str] = {
    "before": "G's samples",
    "drs": "rejection sampling (DRS)",
    "mh": "Metropolis–Hastings",
    "sw": "SW / floor",
}


def correction_figure(
    corr: GanCorrection,
    bounds: Bounds,
    *,
    background: Sequence[go.BaseTraceType] = (),
    labels: Mapping[str, str] | None = None,
    max_points: int = 1500,
    height: int = 430,
) -> go.Figure:
    """Three panels (before, DRS, MH) of ``max_points`` samples each over ``background`` traces
    (e.g. the target's contours), titled with SW / floor."""
    lab = {**CORRECTION_LABELS, **(labels or {})}
    ratio = {
        k: corr.sw[k] / corr.floor if corr.floor > 0 else float("nan") for k in CORRECTION_KEYS
    }
    titles = [f"{lab[k]}<br><sub>{lab['sw']} = {ratio[k]:.2f}</sub>" for k in CORRECTION_KEYS]
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=0.04)
    colours = {"before": MODEL_COLOR, "drs": PALETTE[2], "mh": PALETTE[3]}
    for col, k in enumerate(CORRECTION_KEYS, start=1):
        for tr in background:
            t: Any = go.Figure(tr).data[0]  # a copy per panel
            t.showlegend = False
            fig.add_trace(t, row=1, col=col)
        pts = getattr(corr, k)
        fig.add_trace(
            scatter_trace(pts, name=lab[k], color_=colours[k], size=3.5, max_points=max_points),
            row=1, col=col,
        )  # fmt: skip
        square_layout(fig, bounds, row=1, col=col, ytitle="x₂" if col == 1 else None)
    style(fig, height=height)
    fig.update_layout(showlegend=False, margin={"t": 75})
    return fig
