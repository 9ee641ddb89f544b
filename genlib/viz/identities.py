"""Figures of the lecture's equivalence proofs (issue 11): the trained and the intractable
objective over training with their constant offset, and Langevin's KL bias against the step size.
Arrays in, plotly figures out (``genlib.lab.identities`` / ``genlib.lab.langevin`` compute)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from genlib.viz.core import as_numpy, color, style

__all__ = ["objective_gap_figure", "langevin_bias_figure"]


def objective_gap_figure(
    steps: Sequence[float] | np.ndarray,
    trained: Sequence[float] | np.ndarray,
    intractable: Sequence[float] | np.ndarray,
    constant: Sequence[float] | np.ndarray,
    *,
    names: Mapping[str, str] | None = None,
    xlabel: str = "step",
    const_label: str = "const",
    title: str | None = None,
    height: int = 360,
) -> go.Figure:
    """The trained objective, the intractable one, and ``trained + constant`` (dashed) over the
    steps: the dashed line lies on the intractable curve when the identity holds. ``names`` maps
    ``"trained"``, ``"intractable"``, ``"shifted"`` to legend names."""
    nm = {"trained": "trained", "intractable": "intractable", "shifted": "trained + const"}
    nm.update(names or {})
    x = as_numpy(steps).astype(np.float64)
    tr, it = as_numpy(trained).astype(np.float64), as_numpy(intractable).astype(np.float64)
    c = as_numpy(constant).astype(np.float64)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=tr, mode="lines+markers", name=nm["trained"],
                             line={"color": color(1), "width": 2}, marker={"size": 5}))  # fmt: skip
    fig.add_trace(go.Scatter(x=x, y=it, mode="lines+markers", name=nm["intractable"],
                             line={"color": color(0), "width": 2}, marker={"size": 5}))  # fmt: skip
    fig.add_trace(go.Scatter(x=x, y=tr + c, mode="lines", name=nm["shifted"],
                             line={"color": color(7), "width": 1.5, "dash": "dash"}))  # fmt: skip
    if len(x):  # the offset drawn as an arrow at the last step: trained → intractable
        fig.add_annotation(
            x=x[-1], y=it[-1], ax=x[-1], ay=tr[-1], xref="x", yref="y", axref="x", ayref="y",
            showarrow=True, arrowhead=2, arrowcolor=color(7),
            text=f"{const_label} = {float(np.mean(c)):+.3g}", xanchor="right", font={"size": 12},
        )  # fmt: skip
    fig.update_xaxes(title=xlabel)
    return style(fig, title=title, height=height)


def langevin_bias_figure(
    step_sizes: Sequence[float] | np.ndarray,
    curves: Mapping[str, Sequence[float] | np.ndarray],
    floor: float,
    *,
    floor_name: str = "floor",
    guide_name: str = "floor + C ε²",
    xlabel: str = "ε",
    ylabel: str = "KL(p‖chain) [nats]",
    title: str | None = None,
    height: int = 360,
) -> go.Figure:
    """KL against ε on log-log axes, one line per sampler (``curves`` name -> KL ``(K,)``), the
    estimator's floor (dotted) and the guide floor + C ε² through the largest ε of the first curve
    (an O(ε) bias of the law is an O(ε²) KL)."""
    eps = as_numpy(step_sizes).astype(np.float64)
    fig = go.Figure()
    for i, (name, kl) in enumerate(curves.items()):
        y = np.maximum(as_numpy(kl).astype(np.float64), 1e-6)
        fig.add_trace(go.Scatter(x=eps, y=y, mode="lines+markers", name=name,
                                 line={"color": color(i + 1), "width": 2}))  # fmt: skip
    fig.add_trace(go.Scatter(x=[eps.min(), eps.max()], y=[floor, floor], mode="lines",
                             name=floor_name, line={"color": color(7), "dash": "dot"}))  # fmt: skip
    if curves and len(eps) > 1:
        first = np.maximum(as_numpy(next(iter(curves.values()))).astype(np.float64), 1e-6)
        y_end = max(float(first[-1]) - floor, 1e-6)
        guide = floor + y_end * (eps / eps[-1]) ** 2
        fig.add_trace(go.Scatter(x=eps, y=guide, mode="lines", name=guide_name,
                                 line={"color": "#999999", "dash": "dash", "width": 1}))  # fmt: skip
    fig.update_xaxes(title=xlabel, type="log")
    fig.update_yaxes(title=ylabel, type="log")
    return style(fig, title=title, height=height)
