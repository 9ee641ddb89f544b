"""Slide exports (issue 10, item 5): a still of an animation is one frame (the chosen one, the
last by default) without play controls; a filmstrip puts k frames side by side; GIFs are slide
sized with axes, a title and a large frame label; the 16:9 option renders 1920×1080."""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from genlib import viz
from genlib.viz import export as vexp
from genlib.viz.gif import GIF_WIDTH, MIN_LABEL_FONT, nice_ticks

BOUNDS = (-3.0, 3.0, -2.0, 4.0)
F = 7


def _frames(n_frames: int = F, n: int = 30) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n_frames, n, 2)) * np.linspace(0.3, 1.0, n_frames)[:, None, None]


def _anim(**kw) -> go.Figure:
    xs, ys, pts = viz.grid(BOUNDS, 20)
    bg = [viz.density_trace(-(pts**2).sum(1), xs, ys)]
    return viz.animated_scatter(
        _frames(),
        BOUNDS,
        [f"{10 * i}" for i in range(F)],
        trails=3,
        background=bg,
        slider_prefix="step ",
        title="Particles",
        **kw,
    )


def _xy(tr) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(tr.x, dtype=float), np.asarray(tr.y, dtype=float)


def _shows_frame(fig: go.Figure, anim: go.Figure, i: int) -> bool:
    """Every trace frame ``i`` animates has that frame's data in ``fig``."""
    fr = anim.frames[i]
    targets = list(fr.traces) if fr.traces is not None else list(range(len(fr.data)))
    for t, tr in zip(targets, fr.data, strict=True):
        ax, ay = _xy(fig.data[t])
        bx, by = _xy(tr)
        if ax.shape != bx.shape or not (
            np.allclose(ax, bx, equal_nan=True) and np.allclose(ay, by, equal_nan=True)
        ):
            return False
    return True


def _has_browser() -> bool:
    names = ("chromium", "chromium-browser", "google-chrome")
    return any(shutil.which(b) or os.path.exists(f"/usr/bin/{b}") for b in names)


needs_browser = pytest.mark.skipif(
    not _has_browser(), reason="no Chromium for kaleido: PNG/SVG export cannot render here"
)


# ---------------------------------------------------------------------------------- stills


def test_still_is_the_last_frame_without_controls_by_default():
    anim = _anim()
    before = anim.to_json()
    s = vexp.still(anim)
    assert not s.frames and not s.layout.updatemenus and not s.layout.sliders
    assert _shows_frame(s, anim, F - 1) and not _shows_frame(s, anim, 0)
    # the frame label (as the slider showed it) is in the title; static traces are untouched
    assert s.layout.title.text == "Particles — step 60"
    assert np.array_equal(np.asarray(s.data[0].z), np.asarray(anim.data[0].z))
    # the controls' bottom margin is given back and the plot keeps its size
    assert s.layout.margin.b == vexp.STILL_MARGIN_B
    assert s.layout.height == anim.layout.height - (150 - vexp.STILL_MARGIN_B)
    assert anim.to_json() == before  # the shown figure is not changed


@pytest.mark.parametrize("i", [0, 3, -2])
def test_still_shows_the_chosen_frame(i):
    anim = _anim()
    s = vexp.still(anim, i)
    assert _shows_frame(s, anim, i % F)
    assert s.layout.title.text.endswith(vexp.frame_labels(anim)[i])
    with pytest.raises(IndexError):
        vexp.still(anim, F)


def test_still_of_an_untitled_figure_gets_a_label_row():
    anim = viz.animated_scatter(_frames(), BOUNDS, [f"t = {i}" for i in range(F)])
    s = vexp.still(anim, 2, label=True)
    assert s.layout.title.text == "t = 2"
    grow = s.layout.margin.t - anim.layout.margin.t
    assert grow > 0 and s.layout.height == anim.layout.height - (150 - 45) + grow
    assert vexp.still(anim, 2, label=False).layout.title.text is None


def test_still_applies_frames_that_change_trace_type_and_layout():
    """plotly.js semantics: a frame trace updates its target (nested objects merge), one of
    another type replaces it; a frame layout updates the layout."""
    fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], marker={"color": "red", "size": 4})])
    frames = [
        go.Frame(data=[go.Scatter(x=[2, 3], y=[4, 5], marker={"size": 9})], name="0"),
        go.Frame(
            data=[go.Heatmap(z=[[1, 2], [3, 4]])], name="1", layout={"title": {"text": "hot"}}
        ),
    ]
    viz.add_animation(fig, frames, ["a", "b"])
    s0 = vexp.still(fig, 0, label=False)
    assert list(s0.data[0].x) == [2, 3] and s0.data[0].marker.size == 9
    assert s0.data[0].marker.color == "red"  # merged, not replaced
    s1 = vexp.still(fig, 1, label=False)
    assert s1.data[0].type == "heatmap" and s1.layout.title.text == "hot"


def test_still_of_a_static_figure_is_a_copy():
    fig = viz.scatter(np.zeros((3, 2)), BOUNDS)
    s = vexp.still(fig)
    a, b = json.loads(s.to_json()), json.loads(fig.to_json())
    assert s is not fig and a["data"] == b["data"]
    assert {k: v for k, v in a["layout"].items() if v} == {
        k: v for k, v in b["layout"].items() if v
    }
    assert not vexp.is_animated(fig) and vexp.is_animated(_anim())


def test_frame_labels_and_filmstrip_frames():
    anim = _anim()
    assert vexp.frame_labels(anim) == [f"step {10 * i}" for i in range(F)]
    assert vexp.frame_labels(anim, prefix=False)[-1] == "60"
    assert vexp.filmstrip_frames(7, 4) == [0, 2, 4, 6]
    assert vexp.filmstrip_frames(3, 4) == [0, 1, 2]
    assert vexp.filmstrip_frames(10, 1) == [9]
    assert vexp.frame_index(anim, -1) == F - 1


# ------------------------------------------------------------------------------- filmstrip


def _xaxes(fig: go.Figure) -> list[str]:
    return sorted(k for k in fig.layout.to_plotly_json() if k.startswith("xaxis"))


@pytest.mark.parametrize("k", [4, 3])
def test_filmstrip_has_k_panels_titled_by_frame_labels(k):
    anim = _anim()
    film = vexp.filmstrip(anim, k)
    idx = vexp.filmstrip_frames(F, k)
    labels = vexp.frame_labels(anim)
    assert not film.frames and not film.layout.sliders and not film.layout.updatemenus
    assert len(_xaxes(film)) == k
    titles = [a.text for a in film.layout.annotations if a.name == "frame_label"]
    assert titles == [labels[i] for i in idx]
    # every panel on the base figure's ranges, side by side left to right
    lay = film.layout
    names = ["xaxis"] + [f"xaxis{j}" for j in range(2, k + 1)]
    assert all(list(lay[n].range) == list(anim.layout.xaxis.range) for n in names)
    ynames = ["yaxis"] + [f"yaxis{j}" for j in range(2, k + 1)]
    assert all(list(lay[n].range) == list(anim.layout.yaxis.range) for n in ynames)
    doms = [tuple(lay[n].domain) for n in names]
    assert all(a[1] <= b[0] for a, b in zip(doms, doms[1:], strict=False))
    # panel j shows frame idx[j] on its own axes; one legend; one colour bar (the last panel's)
    per = len(anim.data)
    for j, i in enumerate(idx):
        panel = go.Figure(film.data[j * per : (j + 1) * per])
        assert _shows_frame(panel, anim, i)
        ref = "x" if j == 0 else f"x{j + 1}"
        assert {tr.xaxis for tr in film.data[j * per : (j + 1) * per]} == {ref}
    assert all(tr.showlegend is False for tr in film.data[per:])
    bars = [tr for tr in film.data if tr.type == "heatmap" and tr.showscale is not False]
    assert len(bars) == 1 and bars[0] is film.data[(k - 1) * per]


def test_filmstrip_of_a_figure_with_subplots():
    from genlib import distributions
    from genlib.lab.forward import ForwardConfig, forward_diffusion
    from genlib.viz.diffusion_forward import forward_diffusion_figure

    fd = forward_diffusion(
        distributions.build("two_peaks"), ForwardConfig(T=50, n=200, frames=5, res=16)
    )
    anim = forward_diffusion_figure(fd)
    film = vexp.filmstrip(anim, 3)
    assert len(_xaxes(film)) == 2 * 3  # two subplots per frame
    assert [a.text for a in film.layout.annotations if a.name == "frame_label"] == [
        vexp.frame_labels(anim)[i] for i in vexp.filmstrip_frames(len(anim.frames), 3)
    ]
    # each panel's y axis is anchored to its own x axis (not drawn over the first panel)
    lay = film.layout
    assert lay.yaxis3.anchor == "x3" and lay.xaxis3.anchor == "y3"
    with pytest.raises(ValueError):
        vexp.filmstrip(viz.scatter(np.zeros((2, 2)), BOUNDS))


def test_slide_layout_centres_a_square_plot():
    fig = viz.fit_width(viz.scatter(np.zeros((3, 2)), (-2.0, 2.0, -2.0, 2.0), title="T"))
    s = vexp.slide(fig)
    W, H = vexp.SLIDE_SIZE
    m = s.layout.margin
    assert (s.layout.width, s.layout.height) == (W, H)
    pw, ph = W - m.l - m.r, H - m.t - m.b
    assert abs(pw - ph) <= 2 and abs(m.l - m.r) <= 2  # square, centred
    assert s.layout.font.size >= vexp.SLIDE_FONT
    # an animation becomes its last frame first
    sa = vexp.slide(_anim())
    assert not sa.frames and not sa.layout.sliders and sa.layout.width == W


# ------------------------------------------------------------------------------------- GIF


def test_gif_is_slide_sized_with_axes_title_and_large_labels():
    frames = np.repeat(_frames(1), 3, axis=0)  # identical particles: only the label changes
    data = viz.frames_to_gif(
        frames, BOUNDS, labels=["step 0", "step 1000", "step 2000"], title="Reverse KL"
    )
    img = Image.open(io.BytesIO(data))
    assert img.format == "GIF" and img.size[0] >= 960 and img.size[0] == GIF_WIDTH
    assert img.n_frames == 3
    first = np.asarray(img.convert("L")).astype(int)
    img.seek(1)
    second = np.asarray(img.convert("L")).astype(int)
    rows, cols = np.nonzero(np.abs(first - second) > 60)
    assert rows.size  # the label changed, nothing else did
    height = rows.max() - rows.min() + 1
    assert height >= 0.6 * MIN_LABEL_FONT  # digit height of a ≥ 28 px font
    assert rows.max() < 0.2 * img.size[1]  # in the rows above the plot
    # axes: tick numbers left of the plot and below it (dark ink outside the plot area)
    dark = first < 120
    assert dark[:, : int(0.08 * img.size[0])].any()
    assert dark[int(0.92 * img.size[1]) :, :].any()


def test_gif_keeps_frames_bounded_and_decodes_exactly():
    data = viz.frames_to_gif(_frames(40, 50), BOUNDS, max_frames=10, labels=list("x" * 40))
    img = Image.open(io.BytesIO(data))
    assert img.n_frames == 10 and img.size[0] == GIF_WIDTH
    wide = Image.open(io.BytesIO(viz.frames_to_gif(_frames(3), BOUNDS, width=5000)))
    assert wide.size[0] == 1920  # capped
    with pytest.raises(ValueError):
        viz.frames_to_gif(_frames(3), BOUNDS, labels=["only one"])


def test_gif_with_japanese_label_and_a_wide_box():
    data = viz.frames_to_gif(
        _frames(2), (-4.0, 4.0, -2.0, 2.0), labels=["ステップ 0", "ステップ 10"], title="逆 KL"
    )
    img = Image.open(io.BytesIO(data))
    assert img.size[0] == GIF_WIDTH and img.size[1] < 0.8 * GIF_WIDTH  # equal units: wide plot


def test_nice_ticks():
    ticks, dec = nice_ticks(-3.0, 3.0)
    assert list(ticks) == [-3, -2, -1, 0, 1, 2, 3] and dec == 0
    ticks, dec = nice_ticks(0.0, 1.0)
    assert np.allclose(ticks, [0, 0.2, 0.4, 0.6, 0.8, 1.0]) and dec == 1
    ticks, dec = nice_ticks(-12.0, 12.0)
    assert list(ticks) == [-10, -5, 0, 5, 10]


# ------------------------------------------------------------------- rendered (kaleido)


def _png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@needs_browser
def test_png_of_an_animation_is_the_chosen_frame_without_controls():
    """Rendered: a black dot top-left in frame 0, bottom-right in frame 2; the PNG of frame 2
    (and the default, the last) shows it bottom-right, no slider below the plot."""
    fig = go.Figure(
        [go.Scatter(x=[0.1], y=[0.9], mode="markers", marker={"size": 30, "color": "black"})]
    )
    fig.update_layout(
        width=400, height=400, margin={"l": 10, "r": 10, "t": 10, "b": 10}, showlegend=False,
        xaxis={"range": [0, 1], "visible": False}, yaxis={"range": [0, 1], "visible": False},
        template="plotly_white",
    )  # fmt: skip
    pos = [(0.1, 0.9), (0.5, 0.5), (0.9, 0.1)]
    frames = [
        go.Frame(data=[go.Scatter(x=[x], y=[y])], name=str(i)) for i, (x, y) in enumerate(pos)
    ]
    viz.add_animation(fig, frames, ["a", "b", "c"])
    for data, shown in [
        (vexp.export_image(fig, "png", frame=2, scale=1), 2),
        (vexp.export_image(fig, "png", scale=1), 2),
        (vexp.export_image(fig, "png", frame=0, scale=1), 0),
    ]:
        s = vexp.still(fig, shown)
        img = np.asarray(_png(data).convert("L")).astype(int)
        H, W = img.shape
        assert (W, H) == (s.layout.width, s.layout.height)
        m = s.layout.margin
        pw, ph = W - m.l - m.r, H - m.t - m.b

        def at(x, y, img=img, m=m, pw=pw, ph=ph):
            cx, cy = int(m.l + x * pw), int(m.t + (1 - y) * ph)
            return img[cy - 3 : cy + 4, cx - 3 : cx + 4].mean()

        for j, (x, y) in enumerate(pos):
            assert (at(x, y) < 80) == (j == shown), (shown, j, at(x, y))
        # below the plot: the bottom margin only (45 px), all white — no slider, no buttons
        assert H == 400 - 150 + 45 + (m.t - 10)
        assert img[H - m.b + 2 :, :].min() > 200


@needs_browser
def test_slide_option_renders_1920x1080():
    anim = _anim()
    png = _png(vexp.export_image(anim, "png", slide_size=vexp.SLIDE_SIZE))
    assert png.size == vexp.SLIDE_SIZE
    film = _png(vexp.export_image(anim, "png", filmstrip_k=4, slide_size=vexp.SLIDE_SIZE))
    assert film.size == vexp.SLIDE_SIZE
    svg = vexp.export_image(viz.scatter(np.zeros((2, 2)), BOUNDS), "svg", slide_size=(1920, 1080))
    head = svg[:400].decode()
    assert 'width="1920"' in head and 'height="1080"' in head


def test_altair_slide_is_padded_to_size():
    alt = pytest.importorskip("altair")
    pytest.importorskip("vl_convert")
    import pandas as pd

    chart = alt.Chart(pd.DataFrame({"a": [1, 2], "b": [3, 4]})).mark_bar().encode(x="a", y="b")
    png = _png(vexp.to_slide_image(chart, "png"))
    assert png.size == vexp.SLIDE_SIZE
    svg = vexp.to_slide_image(chart, "svg").decode()
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" width="1920" height="1080"')


# ------------------------------------------------------------------------- export popover


def _popover_page():
    import numpy as np

    from genlib import ui, viz

    fr = np.random.default_rng(0).normal(size=(5, 10, 2))
    fig = viz.animated_scatter(fr, (-3, 3, -3, 3), [f"{i}" for i in range(5)], slider_prefix="t=")
    ui.figure(fig, "anim_test")
    ui.figure(viz.scatter(np.zeros((2, 2)), (-3, 3, -3, 3)), "static_test")
    ui.gif_button(fr, (-3, 3, -3, 3), "anim_test", labels=[str(i) for i in range(5)])


def test_export_popover_has_frame_picker_filmstrip_and_slide_option():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_popover_page, default_timeout=60)
    at.run()
    assert not at.exception
    pickers = {s.key: s for s in at.select_slider}
    frame = pickers["fig_anim_test_frame"]
    assert frame.value == 4 and frame.format_func(frame.value) == "t=4"  # the last by default
    assert pickers["fig_anim_test_film_k"].value == 4
    assert {c.key for c in at.checkbox} == {"fig_anim_test_slide", "fig_static_test_slide"}
    assert "fig_static_test_frame" not in pickers  # a static figure has no frame picker
    frame.set_value(1).run()
    at.checkbox(key="fig_anim_test_slide").check().run()
    assert not at.exception
