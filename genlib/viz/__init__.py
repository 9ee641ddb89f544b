"""Pure figure builders (plotly/altair; no streamlit): numpy/torch arrays in, figures out.

Axis ranges are fixed to the given bounds with an equal aspect ratio. Family-specific builders
live in their own modules (``genlib.viz.<family>``); the shared ones are re-exported here::

    from genlib import viz
    xs, ys, pts = viz.grid(target.bounds, 100)
    fig = viz.scatter({"p": x}, target.bounds, background=[viz.density_trace(logp, xs, ys)])
    fig = viz.animated_scatter(traj.xs, target.bounds, labels, trails=8)
"""

from genlib.viz.animation import (
    MAX_FRAMES,
    MAX_PARTICLES,
    add_animation,
    animated_scatter,
    trail_xy,
)
from genlib.viz.core import (
    DATA_COLOR,
    DENSITY_SCALE,
    MODEL_COLOR,
    PALETTE,
    Bounds,
    as_numpy,
    color,
    f32,
    fit_width,
    loss_curve,
    pad_bounds,
    panels,
    scatter,
    scatter_trace,
    square_layout,
    style,
    union_bounds,
)
from genlib.viz.diffusion import (
    field_comparison_figure,
    final_samples_figure,
    reverse_trajectory_figure,
    schedule_curves,
)
from genlib.viz.export import ExportError, frame_table, to_csv, to_html, to_image
from genlib.viz.fields import (
    MAX_GRID_RES,
    contour_trace,
    density_heatmap,
    density_trace,
    grid,
    quiver,
    quiver_trace,
)
from genlib.viz.gif import MAX_GIF_FRAMES, colormap, frames_to_gif

__all__ = [
    "Bounds",
    "PALETTE",
    "DATA_COLOR",
    "MODEL_COLOR",
    "DENSITY_SCALE",
    "MAX_FRAMES",
    "MAX_PARTICLES",
    "MAX_GRID_RES",
    "MAX_GIF_FRAMES",
    "as_numpy",
    "color",
    "style",
    "fit_width",
    "square_layout",
    "pad_bounds",
    "union_bounds",
    "scatter",
    "scatter_trace",
    "loss_curve",
    "panels",
    "grid",
    "density_trace",
    "density_heatmap",
    "contour_trace",
    "quiver_trace",
    "quiver",
    "field_comparison_figure",
    "reverse_trajectory_figure",
    "final_samples_figure",
    "schedule_curves",
    "add_animation",
    "animated_scatter",
    "trail_xy",
    "f32",
    "frames_to_gif",
    "colormap",
    "ExportError",
    "to_image",
    "to_html",
    "to_csv",
    "frame_table",
]
