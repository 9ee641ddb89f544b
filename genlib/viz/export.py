"""Figure and data export: PNG/SVG (plotly via kaleido + the system chromium, altair via
vl-convert), standalone HTML, and CSV of the plotted data.

Static image export needs a headless browser; failures raise ``ExportError`` with a readable
message instead of a traceback."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from genlib.viz.core import as_numpy

__all__ = ["ExportError", "ImageFormat", "to_image", "to_html", "to_csv", "frame_table"]

ImageFormat = Literal["png", "svg"]


class ExportError(RuntimeError):
    """A figure could not be exported (no browser for kaleido, vl-convert missing, ...)."""


def _ensure_browser() -> None:
    # kaleido (>= 1.0) drives a Chrome/Chromium found by choreographer; point it at Debian's
    # chromium when no BROWSER_PATH is set.
    if not os.environ.get("BROWSER_PATH"):
        for cand in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"):
            if os.path.exists(cand):
                os.environ["BROWSER_PATH"] = cand
                break


def _is_altair(fig: Any) -> bool:
    return type(fig).__module__.startswith("altair")


def to_image(
    fig: Any,
    fmt: ImageFormat = "png",
    *,
    scale: float = 2.0,
    width: int | None = None,
    height: int | None = None,
) -> bytes:
    """PNG (``scale``× pixels, for slides) or SVG bytes of a plotly or altair figure.
    For an animated plotly figure this is its first frame (the layout as first shown)."""
    if fmt not in ("png", "svg"):
        raise ValueError("format must be 'png' or 'svg'")
    if _is_altair(fig):
        try:
            import vl_convert as vlc

            spec = fig.to_json()
            if fmt == "png":
                return vlc.vegalite_to_png(spec, scale=scale)
            return vlc.vegalite_to_svg(spec).encode()
        except Exception as exc:  # vl-convert missing or failed
            raise ExportError(f"could not export the chart as {fmt.upper()}: {exc}") from None
    _ensure_browser()
    try:
        fig2 = fig
        if getattr(fig, "frames", None):
            import plotly.graph_objects as go

            fig2 = go.Figure(fig)  # a copy without frames and animation controls
            fig2.frames = []
            fig2.update_layout(updatemenus=[], sliders=[])
        return fig2.to_image(
            format=fmt, scale=scale if fmt == "png" else 1, width=width, height=height
        )
    except Exception as exc:  # kaleido missing, no browser, browser crash, timeout
        hint = (
            ""
            if shutil.which("chromium") or os.path.exists("/usr/bin/chromium")
            else " (no chromium found)"
        )
        raise ExportError(f"could not export the figure as {fmt.upper()}{hint}: {exc}") from None


def to_html(fig: Any, *, offline: bool = True) -> bytes:
    """A standalone interactive HTML page (plotly.js embedded when ``offline``)."""
    if _is_altair(fig):
        buf = io.StringIO()
        fig.save(buf, format="html")
        return buf.getvalue().encode()
    return fig.to_html(
        include_plotlyjs=True if offline else "cdn", full_html=True, auto_play=False
    ).encode()


def frame_table(frames: Any, labels: Any | None = None) -> pd.DataFrame:
    """Long table of an animation ``frames (F, N, 2)``: columns frame, label, particle, x1, x2."""
    xs = as_numpy(frames)
    F, N, _ = xs.shape
    df = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(F), N),
            "particle": np.tile(np.arange(N), F),
            "x1": xs[..., 0].ravel(),
            "x2": xs[..., 1].ravel(),
        }
    )
    if labels is not None:
        df.insert(1, "label", np.repeat(np.asarray([str(v) for v in labels]), N))
    return df


def to_csv(data: Any) -> bytes:
    """CSV bytes of a DataFrame, an ``(N, 2)`` array (columns x1, x2) or a mapping of columns /
    of named ``(N, 2)`` clouds (stacked with a ``set`` column)."""
    if isinstance(data, pd.DataFrame):
        df = data
    elif isinstance(data, Mapping):
        vals = list(data.values())
        if vals and all(as_numpy(v).ndim == 2 and as_numpy(v).shape[-1] == 2 for v in vals):
            parts = [
                pd.DataFrame({"set": name, "x1": as_numpy(v)[:, 0], "x2": as_numpy(v)[:, 1]})
                for name, v in data.items()
            ]
            df = pd.concat(parts, ignore_index=True)
        else:
            df = pd.DataFrame({k: as_numpy(v).ravel() for k, v in data.items()})
    else:
        arr = as_numpy(data)
        if arr.ndim == 3:
            df = frame_table(arr)
        else:
            arr = arr.reshape(len(arr), -1)
            cols = ["x1", "x2"] if arr.shape[1] == 2 else [f"c{i}" for i in range(arr.shape[1])]
            df = pd.DataFrame(arr, columns=cols)
    return df.to_csv(index=False, float_format="%.6g").encode()
