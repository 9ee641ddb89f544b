"""Figure and data export: PNG/SVG (plotly via kaleido + the system chromium, altair via
vl-convert), standalone HTML, and CSV of the plotted data; slide stills of animations.

Static image export needs a headless browser; failures raise ``ExportError`` with a readable
message instead of a traceback. The process has one renderer: kaleido's persistent server (one
Chromium, started on the first export) behind a process-wide lock, so concurrent exports of many
sessions queue for it instead of each starting a Chromium of its own (four at once used to start
four browsers, 42 processes and 1.4 GB).

Animated figures (Plotly ``frames`` with play buttons and a slider) become static pictures with
pure transformations (figures in, new figures out; the input is never changed):

- ``still(fig, frame=-1)``: one frame's data on the base figure, without ``frames``, buttons and
  slider, the frame label in the title (the last frame by default: where an animation ends);
- ``filmstrip(fig, k=4)``: ``k`` evenly spaced frames (first .. last) side by side, each panel
  titled by its frame label, all panels on the same axis ranges;
- ``slide(fig)``: the figure laid out at 16:9 slide size (1920×1080), a square plot centred;
  ``to_slide_image(fig, fmt)`` renders any figure (plotly or altair) at exactly that size."""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import threading
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from genlib.viz.core import as_numpy

__all__ = [
    "ExportError",
    "ImageFormat",
    "SLIDE_SIZE",
    "to_image",
    "to_slide_image",
    "to_html",
    "to_csv",
    "frame_table",
    "is_animated",
    "frame_labels",
    "frame_index",
    "filmstrip_frames",
    "still",
    "filmstrip",
    "slide",
]

SLIDE_SIZE = (1920, 1080)  # 16:9
STILL_MARGIN_B = 45  # the house style's bottom margin (the animation controls take 150)
SLIDE_FONT = 20  # smallest base font of a slide export (as presentation mode)
MAX_FILMSTRIP = 12
_FILMSTRIP_WIDTH = 2400  # px, before PNG scaling
_GAP_PX = 56  # between filmstrip panels
_COLORBAR_PX = 95
_SCALE_TRACES = {"heatmap", "contour", "histogram2d", "histogram2dcontour", "surface"}

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


_RENDER_LOCK = threading.Lock()  # one export at a time through the one renderer


def _render_plotly(fig: Any, **kw: Any) -> bytes:
    """``fig.to_image(**kw)`` through kaleido's process-wide server (one persistent Chromium);
    the lock also keeps the server's request/answer queues paired (they are not thread-safe).
    A failed render closes the server, so the next export starts a fresh browser."""
    with _RENDER_LOCK:
        try:
            import kaleido

            kaleido.start_sync_server(silence_warnings=True)  # no-op once it runs
        except Exception:  # kaleido < 1 or no server API: plotly's own one-shot path
            kaleido = None
        try:
            with warnings.catch_warnings():  # plotly passes browser options the server ignores
                warnings.filterwarnings("ignore", message="The kopts argument is ignored")
                return fig.to_image(**kw)
        except Exception:
            if kaleido is not None:
                try:
                    kaleido.stop_sync_server(silence_warnings=True)
                except Exception:
                    pass
            raise


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
    An animated plotly figure is exported as ``still(fig)``: its last frame, without controls."""
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
        fig2 = still(fig) if is_animated(fig) else fig
        return _render_plotly(
            fig2, format=fmt, scale=scale if fmt == "png" else 1, width=width, height=height
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


# ------------------------------------------------------------------ animations -> slide stills


def is_animated(fig: Any) -> bool:
    """A plotly figure with animation frames."""
    return not _is_altair(fig) and bool(getattr(fig, "frames", None))


def _slider(fig: Any) -> Any:
    sliders = getattr(fig.layout, "sliders", None) or ()
    return sliders[0] if sliders else None


def frame_labels(fig: Any, *, prefix: bool = True) -> list[str]:
    """Each frame's label as the animation slider shows it (with the slider's current-value
    prefix, e.g. ``"step 300"``), or the frame names when no slider step names the frames."""
    frames = tuple(getattr(fig, "frames", None) or ())
    names = [str(fr.name) if fr.name is not None else str(i) for i, fr in enumerate(frames)]
    sl = _slider(fig)
    if sl is None or not sl.steps:
        return names
    by_name: dict[str, str] = {}
    for step in sl.steps:
        args = step.args or ()
        if args and isinstance(args[0], (list, tuple)) and len(args[0]) == 1:
            by_name[str(args[0][0])] = str(step.label if step.label is not None else args[0][0])
    if all(n in by_name for n in names):
        labs = [by_name[n] for n in names]
    elif len(sl.steps) == len(frames):
        labs = [
            str(s.label) if s.label is not None else n for s, n in zip(sl.steps, names, strict=True)
        ]
    else:
        return names
    pre = (sl.currentvalue.prefix or "") if prefix and sl.currentvalue else ""
    return [f"{pre}{lab}" for lab in labs]


def frame_index(fig: Any, frame: int = -1) -> int:
    """``frame`` (negative counts from the end, as in Python) as an index into ``fig.frames``."""
    n = len(getattr(fig, "frames", None) or ())
    if n == 0:
        raise ValueError("the figure has no animation frames")
    i = int(frame)
    if not -n <= i < n:
        raise IndexError(f"frame {frame} out of range for {n} frames")
    return i % n


def filmstrip_frames(n: int, k: int = 4) -> list[int]:
    """``k`` evenly spaced frame indices of ``n`` frames, first and last included (fewer when
    ``n < k``; the last frame alone when ``k == 1``)."""
    if n <= 0:
        return []
    k = int(min(max(k, 1), n, MAX_FILMSTRIP))
    if k == 1:
        return [n - 1]
    return [int(i) for i in np.unique(np.linspace(0, n - 1, k).round().astype(int))]


def _copy(fig: Any) -> go.Figure:
    """A copy of a plotly figure's data and layout (frames are left behind: cheap to copy)."""
    return go.Figure(data=list(fig.data), layout=fig.layout)


def _apply_frame(out: go.Figure, frames: tuple[Any, ...], i: int) -> go.Figure:
    """Merge frame ``i`` (after its ``baseframe`` chain) onto ``out`` as plotly.js's animate does:
    each frame trace updates the trace it targets (``traces``, else 0, 1, ...), nested objects
    merge and arrays replace; a trace of another type replaces the target."""
    by_name = {str(f.name): f for f in frames if f.name is not None}
    chain = []
    fr: Any = frames[i]
    seen: set[int] = set()
    while fr is not None and id(fr) not in seen:
        chain.append(fr)
        seen.add(id(fr))
        fr = by_name.get(str(fr.baseframe)) if fr.baseframe is not None else None
    data = list(out.data)
    replaced = False
    layouts = []
    for fr in reversed(chain):
        targets = list(fr.traces) if fr.traces is not None else list(range(len(fr.data or ())))
        for t, tr in zip(targets, fr.data or (), strict=False):
            t = int(t)
            if not 0 <= t < len(data):
                continue
            if tr.type == data[t].type:
                data[t].update(tr)
            else:
                new = type(tr)(tr)
                for ax in ("xaxis", "yaxis"):
                    try:
                        if new[ax] is None and data[t][ax] is not None:
                            new[ax] = data[t][ax]
                    except (KeyError, ValueError):
                        pass
                data[t] = new
                replaced = True
        if fr.layout is not None and fr.layout.to_plotly_json():
            layouts.append(fr.layout)
    if replaced:
        out = go.Figure(data=data, layout=out.layout)
    for lay in layouts:
        out.update_layout(lay)
    return out


def _title_size(fig: Any) -> float:
    lay = fig.layout
    size = lay.title.font.size if lay.title and lay.title.font else None
    return float(size or (lay.font.size or 14) + 3)


def _add_top_title(out: go.Figure, text: str) -> None:
    """Show ``text`` as the title: appended to an existing title, else in a new row above the
    figure (the top margin and the height grow by that row, so the plot keeps its size)."""
    lay = out.layout
    current = lay.title.text if lay.title and lay.title.text else None
    if current:
        lay.title.text = f"{current} — {text}"
        return
    size = _title_size(out)
    room = int(round(size * 1.3 + 14))
    t0 = lay.margin.t if lay.margin.t is not None else 100
    out.update_layout(
        title={
            "text": text,
            "x": 0.0,
            "xref": "paper",
            "xanchor": "left",
            "y": 1.0,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 8},
            "font": {"size": size},
        },
        margin={"t": t0 + room},
    )
    if lay.height is not None:
        lay.height = lay.height + room


def still(fig: Any, frame: int = -1, *, label: bool = True) -> Any:
    """A static copy of an animated plotly figure showing frame ``frame`` (the last by default):
    the frame's traces applied onto the base figure, no ``frames``, play/pause buttons or slider,
    the bottom margin the controls took given back (the plot keeps its size) and, with
    ``label``, the frame's label (as the slider showed it) in the title. A figure without
    frames comes back as a copy; an altair chart as it is."""
    if _is_altair(fig):
        return fig
    out = _copy(fig)
    frames = tuple(getattr(fig, "frames", None) or ())
    if not frames:
        return out
    i = frame_index(fig, frame)
    out = _apply_frame(out, frames, i)
    lay = out.layout
    lay.sliders = ()
    lay.updatemenus = ()
    b = lay.margin.b
    if b is not None and b > STILL_MARGIN_B:
        lay.margin.b = STILL_MARGIN_B
        if lay.height is not None:
            lay.height = max(int(lay.height) - int(b - STILL_MARGIN_B), 200)
    if label:
        _add_top_title(out, frame_labels(fig)[i])
    return out


# ---------------------------------------------------------------------------- filmstrip / slide

_AXIS_KEY = re.compile(r"^([xy])axis(\d*)$")
_AXIS_REF = re.compile(r"^([xy])(\d*)( domain)?$")


def _num(s: str) -> int:
    return int(s) if s else 1


def _ref(letter: str, n: int, domain: str = "") -> str:
    return f"{letter}{n if n > 1 else ''}{domain}"


def _shift_ref(ref: Any, dx: int, dy: int) -> Any:
    """``"x2"`` -> ``"x{2+dx}"`` (``"y"`` and ``"x domain"`` forms too); other values as they are."""
    if not isinstance(ref, str):
        return ref
    m = _AXIS_REF.match(ref)
    if not m:
        return ref
    letter, n, dom = m.group(1), _num(m.group(2)), m.group(3) or ""
    return _ref(letter, n + (dx if letter == "x" else dy), dom)


def _has_bar(fig: Any) -> bool:
    for tr in fig.data:
        if tr.type in _SCALE_TRACES and tr.showscale is not False:
            return True
        if "marker" in tr and tr.marker is not None and getattr(tr.marker, "showscale", None):
            return True
    return False


def _aspect(fig: Any) -> float | None:
    """Plot width / height of a single equal-aspect subplot with fixed ranges, else None."""
    lay = fig.layout.to_plotly_json()
    xs = [k for k in lay if _AXIS_KEY.match(k) and k.startswith("x")]
    ys = [k for k in lay if _AXIS_KEY.match(k) and k.startswith("y")]
    if len(xs) != 1 or len(ys) != 1:
        return None
    xa, ya = lay[xs[0]], lay[ys[0]]
    if not ya.get("scaleanchor") or not xa.get("range") or not ya.get("range"):
        return None
    dx = abs(float(xa["range"][1]) - float(xa["range"][0]))
    dy = abs(float(ya["range"][1]) - float(ya["range"][0])) * float(ya.get("scaleratio") or 1.0)
    return dx / dy if dx > 0 and dy > 0 else None


def _margins(fig: Any) -> tuple[float, float, float, float]:
    m = fig.layout.margin
    return (
        float(m.l if m.l is not None else 80),
        float(m.r if m.r is not None else 80),
        float(m.t if m.t is not None else 100),
        float(m.b if m.b is not None else 80),
    )


def _scale_fonts(fig: go.Figure, font: int) -> float:
    """Scale every explicit font size so the base font is at least ``font`` px (slide type);
    returns the factor."""
    lay = fig.layout
    base = float(lay.font.size or 12)
    if base >= font:
        return 1.0
    f = font / base

    def up(obj: Any) -> None:
        if obj is not None and getattr(obj, "size", None):
            obj.size = round(obj.size * f, 1)

    lay.font.size = font
    if lay.title:
        up(lay.title.font)
    up(lay.legend.font)
    for k in lay.to_plotly_json():
        if _AXIS_KEY.match(k):
            ax = lay[k]
            up(ax.tickfont)
            if ax.title:
                up(ax.title.font)
            ax.automargin = True
    for ann in lay.annotations or ():
        up(ann.font)
    return f


def slide(
    fig: Any,
    width: int = SLIDE_SIZE[0],
    height: int = SLIDE_SIZE[1],
    *,
    font: int | None = SLIDE_FONT,
) -> Any:
    """The figure re-laid out at slide size (16:9 by default): a static copy (an animation becomes
    ``still(fig)``) ``width`` × ``height`` px with slide-sized type (base font ≥ ``font``) and a
    single equal-aspect plot centred (the side margins take the free width). Altair charts come
    back as they are (see ``to_slide_image``)."""
    if _is_altair(fig):
        return fig
    out = still(fig) if is_animated(fig) else _copy(fig)
    if font:
        _scale_fonts(out, font)
    lay = out.layout
    left, right, top, bottom = _margins(out)
    # the rows above the plot, re-stacked for the larger type: title, legend, subplot titles
    title_px = _title_size(out) * 1.3 + 14 if lay.title and lay.title.text else 0.0
    leg = lay.legend
    legend_above = lay.showlegend is not False and leg.orientation == "h" and (leg.y or 0.0) >= 1.0
    legend_px = 0.0
    if legend_above:
        size = float(leg.font.size or lay.font.size or 12)
        names = [str(tr.name) for tr in out.data if tr.showlegend is not False and tr.name]
        run = sum(0.58 * size * len(name) + 40 for name in names)
        legend_px = math.ceil(run / max(width - left - right, 200.0)) * size * 1.45 + 8
    sub_px = _top_annotation_px(out)
    rows = 10 + title_px + legend_px + sub_px
    top = max(top, rows)
    ar = _aspect(out)
    bar = _COLORBAR_PX if _has_bar(out) else 0.0
    if ar is not None:
        ph = height - top - bottom
        pw = ph * ar
        if pw + bar + left + right <= width:  # centre plot (and colour bar) horizontally
            left = max(left, (width - pw - bar) / 2)
            right = width - left - pw
        else:  # too wide for the height: full width, centred vertically
            pw = width - left - right - bar
            extra = max(0.0, height - top - bottom - pw / ar)
            top, bottom = top + extra / 2, bottom + extra / 2
    out.update_layout(
        width=int(width),
        height=int(height),
        margin={"l": int(left), "r": int(right), "t": int(top), "b": int(bottom)},
    )
    free = max(0.0, int(top) - rows)  # the rows sit right above the plot
    if title_px:
        out.update_layout(
            title={
                "x": 0.0,
                "xref": "paper",
                "xanchor": "left",
                "y": 1.0 - free / height,
                "yref": "container",
                "yanchor": "top",
                "pad": {"t": 8},
            }
        )
    if legend_above:
        out.update_layout(
            legend={
                "yref": "container",
                "y": 1.0 - (free + 8 + title_px) / height,
                "yanchor": "top",
            }
        )
    return out


def _top_annotation_px(fig: Any) -> float:
    """Height of the annotation row on top of the plots (subplot titles), 0 when none."""
    sizes = [
        float(a.font.size or fig.layout.font.size or 16)
        for a in fig.layout.annotations or ()
        if (a.yref or "paper") == "paper" and a.y is not None and a.y >= 0.95 and a.text
    ]
    return max(sizes) * 1.3 + 6 if sizes else 0.0


def _remap_box(d: dict[str, Any], lo: float, hi: float, dx: int, dy: int, keys: tuple) -> None:
    """Shift the refs of an annotation/shape/image dict ``d`` to panel axes and squeeze its
    paper x coordinates ``keys`` into ``[lo, hi]``."""
    if d.get("xref", "paper") == "paper":
        for k in keys:
            if k in d and isinstance(d[k], (int, float)):
                d[k] = lo + float(d[k]) * (hi - lo)
        if "sizex" in d and isinstance(d["sizex"], (int, float)):
            d["sizex"] = float(d["sizex"]) * (hi - lo)
        if "x" in keys and "x" not in d and "xref" in d:
            d["x"] = (lo + hi) / 2
    else:
        d["xref"] = _shift_ref(d["xref"], dx, dy)
    if "yref" in d:
        d["yref"] = _shift_ref(d["yref"], dx, dy)
    for k in ("axref", "ayref"):
        if k in d:
            d[k] = _shift_ref(d[k], dx, dy)


def filmstrip(
    fig: Any,
    k: int = 4,
    *,
    frames: list[int] | None = None,
    width: int | None = None,
    height: int | None = None,
    font: int | None = None,
) -> go.Figure:
    """``k`` frames of an animated figure side by side as one static figure (evenly spaced, first
    .. last; or the indices ``frames``): each panel is ``still(fig, i)`` on its own copy of the
    figure's axes (same ranges, so the panels compare), titled by its frame label; one legend,
    one colour bar (the last panel's). ``width`` × ``height``: lay it out at that size (a slide);
    ``font``: base font at least that large."""
    if not is_animated(fig):
        raise ValueError("a filmstrip needs an animated figure (with frames)")
    n = len(fig.frames)
    idx = [frame_index(fig, i) for i in frames] if frames is not None else filmstrip_frames(n, k)
    if not idx:
        raise ValueError("no frames to show")
    k = len(idx)
    labels = frame_labels(fig)
    stills = [still(fig, i, label=False) for i in idx]
    if font:
        for s in stills:
            _scale_fonts(s, font)
    base = stills[0]
    lay = base.layout.to_plotly_json()
    axes = {key: val for key, val in lay.items() if _AXIS_KEY.match(key)}
    nums = {"x": [1], "y": [1]}
    for key in axes:
        m = _AXIS_KEY.match(key)
        assert m is not None
        nums[m.group(1)].append(_num(m.group(2)))
    for tr in base.data:
        for letter in ("x", "y"):
            ref = tr[f"{letter}axis"] if f"{letter}axis" in tr else None
            m = _AXIS_REF.match(ref) if isinstance(ref, str) else None
            if m:
                nums[letter].append(_num(m.group(2)))
    mx, my = max(nums["x"]), max(nums["y"])
    if "xaxis" not in axes:
        axes["xaxis"] = {}
    if "yaxis" not in axes:
        axes["yaxis"] = {}

    # --- sizes (px): panels of the original plot area, type rows above them
    left, right, t0, bottom = _margins(base)
    base_font = float(lay.get("font", {}).get("size") or 14)
    label_font = max(base_font + 4, 18.0)
    title = (lay.get("title") or {}).get("text")
    title_px = (_title_size(base) * 1.3 + 14) if title else 0.0
    has_legend = lay.get("showlegend") is not False and len(base.data) > 1
    legend_font = float((lay.get("legend") or {}).get("font", {}).get("size") or base_font)
    legend_px = legend_font * 1.6 + 8 if has_legend else 0.0
    anns = list(lay.get("annotations") or ())
    top_anns = [
        a for a in anns if a.get("yref", "paper") == "paper" and float(a.get("y", 0)) >= 0.95
    ]
    sub_px = (
        max(float((a.get("font") or {}).get("size") or 16) for a in top_anns) * 1.3 + 6
        if top_anns
        else 0.0
    )
    label_px = label_font * 1.3 + 8
    top = 10 + title_px + legend_px + sub_px + label_px
    bar = _COLORBAR_PX if _has_bar(base) else 0.0
    right += bar
    ar = _aspect(base)
    H0 = float(lay.get("height") or 450)
    ph = max(H0 - t0 - bottom, 120.0)
    if ar is not None:
        pw = ph * ar
    elif lay.get("width"):
        pw = float(lay["width"]) - left - right
    else:
        pw = 1000.0 - left - right
    gap = float(_GAP_PX)
    if width is None or height is None:
        room = _FILMSTRIP_WIDTH - left - right - gap * (k - 1)
        if k * pw > room:
            s = room / (k * pw)
            pw *= s
            if ar is not None:
                ph *= s
        W = left + right + k * pw + gap * (k - 1)
        H = top + bottom + ph
    else:
        W, H = float(width), float(height)
        ph = H - top - bottom
        pw = (W - left - right - gap * (k - 1)) / k
        if ar is not None:
            if ph * ar < pw:  # height-bound: centre the strip horizontally
                extra = (pw - ph * ar) * k
                pw = ph * ar
                left, right = left + extra / 2, right + extra / 2
            else:  # width-bound: centre it vertically
                extra = ph - pw / ar
                ph = pw / ar
                top, bottom = top + extra / 2, bottom + extra / 2
    inner = k * pw + gap * (k - 1)
    title_y = 1.0 - max(0.0, top - (10 + title_px + legend_px + sub_px + label_px)) / H

    # --- panels
    traces: list[Any] = []
    new_axes: dict[str, Any] = {}
    new_anns: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for j, s in enumerate(stills):
        lo = j * (pw + gap) / inner
        hi = (j * (pw + gap) + pw) / inner
        dx, dy = (mx * j, my * j)
        for key, ax in axes.items():
            m = _AXIS_KEY.match(key)
            assert m is not None
            letter, num = m.group(1), _num(m.group(2))
            a = dict(ax)
            if letter == "x":
                d0, d1 = a.get("domain", [0.0, 1.0])
                a["domain"] = [lo + d0 * (hi - lo), lo + d1 * (hi - lo)]
            elif "position" in a and a.get("anchor") == "free":
                a["position"] = lo + float(a["position"]) * (hi - lo)
            a.setdefault("anchor", "y" if letter == "x" else "x")  # plotly's default
            for ref_key in ("anchor", "scaleanchor", "matches", "overlaying"):
                if ref_key in a:
                    a[ref_key] = _shift_ref(a[ref_key], dx, dy)
            if j > 0:
                if letter == "y":
                    a.pop("title", None)
                if not a.get("range") and not a.get("scaleanchor") and "matches" not in a:
                    a["matches"] = _ref(letter, num)  # autoranged: share panel 0's range
            n2 = num + (dx if letter == "x" else dy)
            new_axes[f"{letter}axis{n2 if n2 > 1 else ''}"] = a
        for tr in s.data:
            new = type(tr)(tr)
            if "xaxis" in new:
                new.xaxis = _shift_ref(tr.xaxis or "x", dx, dy)
            if "yaxis" in new:
                new.yaxis = _shift_ref(tr.yaxis or "y", dx, dy)
            if j > 0:
                new.showlegend = False
            if j < k - 1:
                if new.type in _SCALE_TRACES:
                    new.showscale = False
                if "marker" in new and new.marker is not None and new.marker.showscale:
                    new.marker.showscale = False
            traces.append(new)
        sl = s.layout.to_plotly_json()
        for a in sl.get("annotations") or ():
            a = dict(a)
            _remap_box(a, lo, hi, dx, dy, ("x",))
            new_anns.append(a)
        for sh in sl.get("shapes") or ():
            sh = dict(sh)
            _remap_box(sh, lo, hi, dx, dy, ("x0", "x1"))
            shapes.append(sh)
        for im in sl.get("images") or ():
            im = dict(im)
            _remap_box(im, lo, hi, dx, dy, ("x",))
            images.append(im)
        new_anns.append(
            {
                "text": labels[idx[j]],
                "x": (lo + hi) / 2,
                "xref": "paper",
                "xanchor": "center",
                "y": 1.0,
                "yref": "paper",
                "yanchor": "bottom",
                "yshift": sub_px + 4,
                "showarrow": False,
                "font": {"size": label_font},
                "name": "frame_label",
            }
        )
    keep = {
        key: val
        for key, val in lay.items()
        if not _AXIS_KEY.match(key)
        and key not in ("annotations", "shapes", "images", "width", "height", "margin", "title")
    }
    out = go.Figure(data=traces, layout=keep)
    out.update_layout(new_axes)
    out.update_layout(
        annotations=new_anns,
        shapes=shapes,
        images=images,
        width=int(round(W)),
        height=int(round(H)),
        margin={"l": int(left), "r": int(right), "t": int(top), "b": int(bottom)},
    )
    if title:
        out.update_layout(
            title={
                **(lay.get("title") or {}),
                "x": 0.0,
                "xref": "paper",
                "xanchor": "left",
                "y": title_y,
                "yref": "container",
                "yanchor": "top",
                "pad": {"t": 8},
            }
        )
    if has_legend:
        ph_final = H - top - bottom
        out.update_layout(
            legend={
                "orientation": "h",
                "x": 0.0,
                "xanchor": "left",
                "y": 1.0 + (label_px + sub_px + 6) / max(ph_final, 1.0),
                "yanchor": "bottom",
            }
        )
    return out


def export_image(
    fig: Any,
    fmt: ImageFormat = "png",
    *,
    frame: int = -1,
    filmstrip_k: int = 0,
    slide_size: tuple[int, int] | None = None,
    scale: float = 2.0,
) -> bytes:
    """The image the Export menu downloads: an animation as ``still(fig, frame)`` (or, with
    ``filmstrip_k``, a filmstrip of that many frames); ``slide_size``: laid out at exactly that
    size in pixels (PNG at scale 1), e.g. ``SLIDE_SIZE``; otherwise PNG at ``scale``×."""
    if slide_size is not None:
        w, h = (int(v) for v in slide_size)
        if _is_altair(fig):
            return to_slide_image(fig, fmt, w, h)
        if filmstrip_k and is_animated(fig):
            fig2 = filmstrip(fig, filmstrip_k, width=w, height=h, font=SLIDE_FONT)
        else:
            fig2 = slide(still(fig, frame) if is_animated(fig) else fig, w, h)
        return to_image(fig2, fmt, scale=1.0, width=w, height=h)
    if filmstrip_k and is_animated(fig):
        return to_image(filmstrip(fig, filmstrip_k), fmt, scale=scale)
    if is_animated(fig):
        return to_image(still(fig, frame), fmt, scale=scale)
    return to_image(fig, fmt, scale=scale)


def to_slide_image(
    fig: Any, fmt: ImageFormat = "png", width: int = SLIDE_SIZE[0], height: int = SLIDE_SIZE[1]
) -> bytes:
    """PNG or SVG of exactly ``width`` × ``height`` px (a 16:9 slide by default): a plotly figure
    re-laid out with ``slide``; an altair chart rendered large and centred on a white page."""
    if fmt not in ("png", "svg"):
        raise ValueError("format must be 'png' or 'svg'")
    if not _is_altair(fig):
        return to_image(slide(fig, width, height), fmt, scale=1.0, width=width, height=height)
    try:
        import vl_convert as vlc

        try:
            spec = fig.properties(width=int(width * 0.78), height=int(height * 0.7)).to_json()
        except Exception:  # noqa: BLE001 - a compound chart: keep its own size
            spec = fig.to_json()
        if fmt == "svg":
            return _centre_svg(vlc.vegalite_to_svg(spec), width, height)
        from PIL import Image

        first = Image.open(io.BytesIO(vlc.vegalite_to_png(spec, scale=1)))
        s = min(width / first.width, height / first.height)
        png = Image.open(io.BytesIO(vlc.vegalite_to_png(spec, scale=s))).convert("RGBA")
        if png.width > width or png.height > height:
            png.thumbnail((width, height))
        page = Image.new("RGBA", (width, height), (255, 255, 255, 255))
        page.alpha_composite(png, ((width - png.width) // 2, (height - png.height) // 2))
        buf = io.BytesIO()
        page.convert("RGB").save(buf, format="PNG")
        return buf.getvalue()
    except Exception as exc:  # vl-convert missing or failed
        raise ExportError(f"could not export the chart as {fmt.upper()}: {exc}") from None


def _centre_svg(svg: str, width: int, height: int) -> bytes:
    """Wrap an SVG document in a ``width`` × ``height`` white page, scaled to fit and centred."""
    head = re.search(r"<svg\b[^>]*>", svg)
    w = h = None
    if head:
        mw = re.search(r'\bwidth="([\d.]+)', head.group(0))
        mh = re.search(r'\bheight="([\d.]+)', head.group(0))
        w, h = (float(mw.group(1)) if mw else None), (float(mh.group(1)) if mh else None)
    w, h = w or width, h or height
    s = min(width / w, height / h)
    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", svg)
    x, y = (width - w * s) / 2, (height - h * s) / 2
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="white"/>'
        f'<g transform="translate({x:.2f},{y:.2f}) scale({s:.5f})">{body}</g></svg>'
    ).encode()
