"""Figures with export buttons (PNG/SVG/HTML/CSV) and GIF export of particle animations.

Exports are lazy: ``st.download_button`` gets a callable that runs only when the user clicks,
so kaleido/chromium never runs on a plain rerun. For an animated figure the Export menu picks the
frame of the PNG/SVG (Plotly cannot tell the server which frame the browser shows; the last by
default) and offers a filmstrip of k frames; every PNG/SVG can be laid out as a 16:9 slide."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import streamlit as st

from genlib import viz
from genlib.ui.i18n import t
from genlib.ui.layout import presenting
from genlib.viz import export as vexp
from genlib.viz.gif import GIF_WIDTH

__all__ = ["figure", "gif_button", "csv_button", "safe_name", "present_figure"]


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "figure"


def _guard(fn: Callable[[], bytes], what: str) -> Callable[[], bytes | str]:
    """Wrap an export so a failure downloads a short text explaining it instead of crashing."""

    def run() -> bytes | str:
        try:
            return fn()
        except viz.ExportError as exc:
            return f"GenLab could not export {what}: {exc}\n"
        except Exception as exc:  # noqa: BLE001 - never a traceback on stage
            return f"GenLab could not export {what}: {type(exc).__name__}: {exc}\n"

    return run


PRESENT_FONT = 20


def present_figure(fig: Any) -> Any:
    """Projector styling: every text of a Plotly figure large (titles, ticks, legends, subplot
    titles, slider and frame labels, buttons) and the figure taller."""
    if not hasattr(fig, "update_layout"):
        return fig
    f = PRESENT_FONT
    fig.update_layout(
        font={"size": f},
        title_font={"size": f + 6},
        legend_font={"size": f - 2},
        height=max(int(fig.layout.height or 460) + 160, 620),
    )
    if fig.layout.title and fig.layout.title.text:  # room for the title above the legend row
        fig.update_layout(
            margin={"t": 130}, legend={"y": 1.02}, title={"y": 0.985, "yanchor": "top"}
        )
    fig.update_xaxes(tickfont={"size": f - 2}, title_font={"size": f})
    fig.update_yaxes(tickfont={"size": f - 2}, title_font={"size": f})
    fig.update_annotations(font_size=f)  # subplot titles
    for slider in fig.layout.sliders or ():
        slider.font = {"size": f - 2}
        slider.currentvalue.font = {"size": f + 4}
    for menu in fig.layout.updatemenus or ():
        menu.font = {"size": f}
    return fig


def _present(fig: Any) -> Any:
    return present_figure(fig) if presenting() else fig


def figure(
    fig: Any, name: str, data: Any = None, *, key: str | None = None, height: int | None = None
) -> None:
    """Show a plotly (or altair) figure with an Export menu: PNG (2× for slides), SVG, interactive
    HTML and, when ``data`` is given (DataFrame, (N, 2) array, mapping of clouds or an (F, N, 2)
    animation), CSV; a "16:9 slide" option (PNG/SVG at 1920×1080). For an animated figure the
    PNG/SVG is one frame without play controls (a frame picker, the last frame by default) and a
    filmstrip of k frames is offered. ``name`` is the file stem (and the element key)."""
    stem = safe_name(name)
    key = key or f"fig_{stem}"
    is_altair = type(fig).__module__.startswith("altair")
    if is_altair:
        st.altair_chart(fig, width="stretch", key=key)
    else:
        if height is not None:
            fig.update_layout(height=height)
        fig = viz.fit_width(_present(fig))
        st.plotly_chart(
            fig,
            key=key,
            width="content" if fig.layout.width is not None else "stretch",
            theme=None,
            config={
                "displaylogo": False,
                "toImageButtonOptions": {"format": "png", "scale": 2, "filename": stem},
            },
        )
    with st.popover(t("common.export"), icon=":material/download:"):
        _export_menu(fig, stem, key, data, is_altair)


def _frame_labels(fig: Any) -> list[str]:
    try:
        return vexp.frame_labels(fig) if vexp.is_animated(fig) else []
    except Exception:  # noqa: BLE001 - a malformed animation: export it as a plain figure
        return []


def _export_menu(fig: Any, stem: str, key: str, data: Any, is_altair: bool) -> None:
    """The Export popover's content: frame picker (animations), 16:9 option, PNG/SVG/HTML/CSV
    downloads and a filmstrip (animations). Every download is computed only when clicked."""
    labels = [] if is_altair else _frame_labels(fig)
    n = len(labels)
    frame = -1
    if n > 1:
        frame = st.select_slider(
            t("common.export_frame"),
            options=list(range(n)),
            value=n - 1,
            format_func=lambda i: labels[i],
            key=f"{key}_frame",
            help=t("common.export_frame_help"),
        )
    slide = st.checkbox(t("common.export_slide"), key=f"{key}_slide")
    size = vexp.SLIDE_SIZE if slide else None
    out = stem
    if n:
        out += f"_{safe_name(labels[frame])}"
    if slide:
        out += "_16x9"

    def image(fmt: str, f: int = frame, sz: Any = size) -> bytes:
        return vexp.export_image(fig, fmt, frame=f, slide_size=sz)  # type: ignore[arg-type]

    buttons = [
        ("PNG", lambda: image("png"), f"{out}.png", "image/png", "png"),
        ("SVG", lambda: image("svg"), f"{out}.svg", "image/svg+xml", "svg"),
        ("HTML", lambda: viz.to_html(fig), f"{stem}.html", "text/html", "html"),
    ]
    if data is not None:
        buttons.append(("CSV", lambda: viz.to_csv(data), f"{stem}.csv", "text/csv", "csv"))
    for col, (label, make, file_name, mime, suffix) in zip(st.columns(4), buttons, strict=False):
        col.download_button(
            label,
            _guard(make, label),
            file_name=file_name,
            mime=mime,
            key=f"{key}_{suffix}",
            on_click="ignore",
        )
    if n > 1:
        st.markdown(f"**{t('common.export_filmstrip')}**")
        ks = list(range(2, min(8, n) + 1))
        k = ks[0]
        if len(ks) > 1:
            k = st.select_slider(
                t("common.export_filmstrip_k"),
                options=ks,
                value=min(4, ks[-1]),
                key=f"{key}_film_k",
            )
        film = f"{stem}_filmstrip{k}" + ("_16x9" if slide else "")

        def strip(fmt: str, kk: int = k, sz: Any = size) -> bytes:
            return vexp.export_image(fig, fmt, filmstrip_k=kk, slide_size=sz)  # type: ignore[arg-type]

        f1, f2 = st.columns(2)
        f1.download_button(
            f"{t('common.export_filmstrip')} PNG",
            _guard(lambda: strip("png"), "PNG"),
            file_name=f"{film}.png",
            mime="image/png",
            key=f"{key}_film_png",
            on_click="ignore",
        )
        f2.download_button(
            f"{t('common.export_filmstrip')} SVG",
            _guard(lambda: strip("svg"), "SVG"),
            file_name=f"{film}.svg",
            mime="image/svg+xml",
            key=f"{key}_film_svg",
            on_click="ignore",
        )
    st.caption(t("common.export_help"))


def csv_button(data: Any, name: str, label: str | None = None, key: str | None = None) -> None:
    """A lazy CSV download of ``data`` (see ``viz.to_csv``)."""
    stem = safe_name(name)
    st.download_button(
        label or t("common.download_csv"),
        _guard(lambda: viz.to_csv(data), "CSV"),
        file_name=f"{stem}.csv",
        mime="text/csv",
        key=key or f"csv_{stem}",
        on_click="ignore",
        icon=":material/table:",
    )


def gif_button(
    frames: Any,
    bounds: viz.Bounds,
    name: str,
    *,
    labels: list[str] | None = None,
    colors: Any = "#0072B2",
    backgrounds: Any = None,
    title: str | None = None,
    width: int = GIF_WIDTH,
    size: int | None = None,
    duration_ms: int = 80,
    key: str | None = None,
) -> None:
    """A lazy animated-GIF download of particles ``frames (F, N, 2)`` (Pillow; bounded frames/size):
    ``width`` px wide (960: slide resolution) with axes, ``title`` (by default ``name`` in words)
    and each frame's label in large type. ``size`` is the former name of ``width``."""
    stem = safe_name(name)
    heading = title if title is not None else re.sub(r"[_\s]+", " ", name).strip()
    st.download_button(
        t("common.download_gif"),
        _guard(
            lambda: viz.frames_to_gif(
                frames,
                bounds,
                width=int(size if size is not None else width),
                duration_ms=duration_ms,
                colors=colors,
                backgrounds=backgrounds,
                labels=labels,
                title=heading or None,
            ),
            "GIF",
        ),
        file_name=f"{stem}.gif",
        mime="image/gif",
        key=key or f"gif_{stem}",
        on_click="ignore",
        icon=":material/animation:",
    )
