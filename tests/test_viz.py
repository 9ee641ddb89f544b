"""genlib.viz: figures build, axes are fixed and square, animations have their frames and
controls, GIFs decode with the right frame count, exports produce what they claim."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from genlib import distributions, viz
from genlib.lab.fields import compare_fields
from genlib.lab.forward import ForwardConfig, forward_diffusion
from genlib.viz.diffusion import field_comparison_figure
from genlib.viz.diffusion_forward import forward_diffusion_figure, schedule_figure

BOUNDS = (-3.0, 3.0, -2.0, 4.0)


def _ranges(fig, i: str = ""):
    lay = fig.layout
    return list(lay[f"xaxis{i}"].range), list(lay[f"yaxis{i}"].range)


def test_grid_layout_and_bounds():
    xs, ys, pts = viz.grid(BOUNDS, 7)
    assert xs.shape == (7,) and ys.shape == (7,) and pts.shape == (49, 2)
    assert xs[0] == -3 and xs[-1] == 3 and ys[0] == -2 and ys[-1] == 4
    # row-major: values.reshape(res, res)[i, j] is at (xs[j], ys[i])
    z = (pts[:, 0] + 10 * pts[:, 1]).reshape(7, 7)
    assert np.allclose(z[2, 5], xs[5] + 10 * ys[2])
    with pytest.raises(ValueError):
        viz.grid(BOUNDS, 10_000)


def test_scatter_fixed_square_axes_and_clouds():
    rng = np.random.default_rng(0)
    fig = viz.scatter({"p": rng.normal(size=(100, 2)), "q": torch.randn(50, 2)}, BOUNDS, title="t")
    assert [tr.name for tr in fig.data] == ["p", "q"]
    assert len(fig.data[0].x) == 100 and len(fig.data[1].x) == 50
    assert _ranges(fig) == ([-3.0, 3.0], [-2.0, 4.0])
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.scaleratio == 1
    assert fig.layout.xaxis.autorange is False


def test_density_heatmap_matches_exact_density():
    target = distributions.build("8gaussians")
    xs, ys, pts = viz.grid(target.bounds, 40)
    lp = target.log_prob(torch.as_tensor(pts, dtype=torch.float32))
    tr = viz.density_trace(lp, xs, ys)
    z = np.asarray(tr.z)
    assert z.shape == (40, 40)
    i, j = 13, 27
    assert np.isclose(
        z[i, j],
        float(target.log_prob(torch.tensor([[xs[j], ys[i]]], dtype=torch.float32)).exp()),
        rtol=1e-4,
    )
    rel = np.asarray(viz.density_trace(lp, xs, ys, scale="relative").z)
    assert rel.max() == pytest.approx(1.0) and rel.min() >= 0
    fig = viz.density_heatmap(lp, target.bounds, 40, contours=True)
    assert len(fig.data) == 2 and _ranges(fig)[0] == list(target.bounds[:2])


def test_quiver_arrow_geometry():
    pts = np.array([[0.0, 0.0], [1.0, 1.0]])
    vecs = np.array([[2.0, 0.0], [0.0, -0.5]])
    tr = viz.quiver_trace(pts, vecs, scale=1.0, normalise=False)
    seg = np.stack([np.asarray(tr.x, dtype=float), np.asarray(tr.y, dtype=float)], 1).reshape(
        2, 7, 2
    )
    # longest arrow gets length `scale`, the other keeps its relative length
    assert np.allclose(seg[0, 1], [1.0, 0.0]) and np.allclose(seg[1, 1], [1.0, 0.75])
    assert np.isnan(seg[:, 2]).all() and np.isnan(seg[:, 6]).all()
    trn = viz.quiver_trace(pts, vecs, scale=0.5, normalise=True)
    segn = np.stack([np.asarray(trn.x, dtype=float), np.asarray(trn.y, dtype=float)], 1).reshape(
        2, 7, 2
    )
    assert np.allclose(np.linalg.norm(segn[:, 1] - segn[:, 0], axis=1), 0.5, atol=1e-6)
    fig = viz.quiver(pts, vecs, BOUNDS)
    assert _ranges(fig) == ([-3.0, 3.0], [-2.0, 4.0])


def test_animated_scatter_frames_controls_trails():
    F, N = 12, 30
    frames = np.cumsum(np.random.default_rng(1).normal(size=(F, N, 2)) * 0.1, axis=0)
    labels = [f"t={i}" for i in range(F)]
    bg = viz.density_trace(np.zeros(25), *viz.grid(BOUNDS, 5)[:2])
    fig = viz.animated_scatter(frames, BOUNDS, labels, trails=3, trail_length=4, background=[bg])
    assert len(fig.frames) == F
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"
    assert [s.label for s in fig.layout.sliders[0].steps] == labels
    assert _ranges(fig) == ([-3.0, 3.0], [-2.0, 4.0])
    last = fig.frames[-1]
    assert list(last.traces) == [1, 2]  # the static background (trace 0) is not animated
    pts = last.data[-1]
    assert np.allclose(np.asarray(pts.x, dtype=float), frames[-1, :, 0], atol=1e-5)
    tx = np.asarray(last.data[0].x, dtype=float)
    assert len(tx) == 3 * (4 + 1 + 1)  # 3 particles x (5 positions + gap)
    # more frames than MAX_FRAMES are thinned evenly, first and last kept
    many = np.zeros((viz.MAX_FRAMES * 2 + 1, 3, 2))
    fig2 = viz.animated_scatter(many, BOUNDS)
    assert len(fig2.frames) == viz.MAX_FRAMES
    assert fig2.layout.sliders[0].steps[-1].label == str(viz.MAX_FRAMES * 2)


def test_gif_decodes_with_all_frames():
    F = 9
    frames = np.random.default_rng(2).normal(size=(F, 40, 2))
    data = viz.frames_to_gif(
        frames,
        BOUNDS,
        size=96,
        axes=False,  # the bare plot (slide GIFs with axes: tests/test_exports.py)
        labels=[str(i) for i in range(F)],
        backgrounds=np.random.default_rng(4).random((F, 8, 8)),
    )
    img = Image.open(io.BytesIO(data))
    assert img.format == "GIF" and img.size == (96, 96)
    assert img.n_frames == F
    # bounded: frames are thinned to the cap
    capped = Image.open(
        io.BytesIO(
            viz.frames_to_gif(
                np.random.default_rng(3).normal(size=(40, 20, 2)), BOUNDS, width=64, max_frames=10
            )
        )
    )
    assert capped.n_frames == 10


def test_gif_draws_particles_where_they_are():
    frames = np.array([[[2.9, 3.9]], [[-2.9, -1.9]]])  # one particle: top-right, then bottom-left
    data = viz.frames_to_gif(frames, BOUNDS, width=64, axes=False, radius=2, colors="#000000")
    img = Image.open(io.BytesIO(data))
    first = np.asarray(img.convert("L"))
    assert first[:8, -8:].min() < 50 and first[-8:-1, 1:8].min() > 200
    img.seek(1)
    second = np.asarray(img.convert("L"))
    assert second[-8:, :8].min() < 50 and second[1:8, -8:-1].min() > 200


def test_loss_curve_and_panels():
    hist = [{"step": 50.0, "loss": 2.0, "kl": 1.0}, {"step": 100.0, "loss": 1.0, "kl": 0.5}]
    fig = viz.loss_curve(hist)
    assert [tr.name for tr in fig.data] == ["loss", "kl"] and list(fig.data[0].x) == [50.0, 100.0]
    a = viz.scatter(np.zeros((3, 2)), BOUNDS)
    b = viz.scatter(np.ones((3, 2)), (-1.0, 1.0, -1.0, 1.0))
    p = viz.panels([a, b], ["a", "b"])
    assert _ranges(p, "2") == ([-1.0, 1.0], [-1.0, 1.0])
    assert p.layout.yaxis2.scaleanchor == "x2"


def test_to_csv_and_frame_table():
    df = pd.read_csv(io.BytesIO(viz.to_csv(np.arange(6.0).reshape(3, 2))))
    assert list(df.columns) == ["x1", "x2"] and df.shape == (3, 2)
    df = pd.read_csv(io.BytesIO(viz.to_csv({"p": np.zeros((2, 2)), "q": np.ones((3, 2))})))
    assert list(df["set"]) == ["p", "p", "q", "q", "q"]
    t = viz.frame_table(np.zeros((4, 5, 2)), labels=list("abcd"))
    assert t.shape == (20, 5) and list(t["label"][:6]) == ["a"] * 5 + ["b"]
    html = viz.to_html(viz.scatter(np.zeros((2, 2)), BOUNDS)).decode()
    assert "plotly" in html.lower() and "<html" in html.lower()


@pytest.mark.parametrize("process", ["vp", "ve"])
def test_forward_diffusion_marginals_and_figure(process):
    target = distributions.build("two_peaks")
    cfg = ForwardConfig(process=process, T=100, n=2000, frames=6, res=30, sigma_max=3.0, L=20)
    fd = forward_diffusion(target, cfg)
    F = len(fd.steps)
    assert fd.xs.shape == (F, 2000, 2) and fd.marginal.shape == (F, 30, 30)
    assert fd.steps[0] == 0 and fd.s[0] == 0 and fd.a[0] == 1
    if process == "vp":
        assert fd.alpha_bar_T == pytest.approx(float(fd.a[-1] ** 2))
        assert fd.alpha_bar_T < 0.05
        # last frame: x_T ≈ N(0, I) (oracle: simulated moments vs the closed form a μ, a²v + s²)
        assert np.allclose(fd.xs[-1].std(0), 1.0, atol=0.08)
    else:
        assert fd.s[-1] == pytest.approx(3.0)
        assert np.allclose(
            fd.xs[-1].var(0), target.moments()[1].diagonal().numpy() + 9.0, rtol=0.12
        )
    fig = forward_diffusion_figure(fd)
    spec = json.loads(fig.to_json())
    assert len(spec["frames"]) == F
    assert spec["layout"]["updatemenus"] and len(spec["layout"]["sliders"][0]["steps"]) == F
    assert (
        list(fig.layout.xaxis.range)
        == list(fig.layout.xaxis2.range)
        == [fd.bounds[0], fd.bounds[1]]
    )
    assert schedule_figure(fd).data


class _ExactScore:
    """A stand-in score model: the target's own exact score at (a, s) = (1, 0)."""

    device = torch.device("cpu")

    def __init__(self, target):
        self.target = target

    def score(self, x, level=None):
        return self.target.score(x)

    def marginal_at(self, level=None):
        return 1.0, 0.0


def test_one_field_comparison_figure():
    """The one field figure: learned, exact (shared arrow scale) and error panels from a
    FieldComparison; with no exact field, the learned panel alone."""
    target = distributions.build("two_peaks")
    cmp = compare_fields(_ExactScore(target), target, None, target.bounds, grid_size=9)
    fig = field_comparison_figure(
        cmp.xs,
        cmp.ys,
        cmp.learned,
        cmp.exact,
        target.bounds,
        error=cmp.error,
        log_p=cmp.log_p,
        points=np.zeros((5, 2)),
    )
    names = [tr.name for tr in fig.data]
    assert {"s_θ", "∇ log p", "error", "data", "log p"} <= set(names)
    heat = next(tr for tr in fig.data if tr.type == "heatmap")
    assert np.asarray(heat.z).shape == (9, 9) and float(np.max(heat.z)) == 0.0  # exact = learned
    for i in ("", "2", "3"):
        assert list(fig.layout[f"xaxis{i}"].range) == [target.bounds[0], target.bounds[1]]
    one = field_comparison_figure(cmp.xs, cmp.ys, cmp.learned, None, target.bounds)
    assert [tr.name for tr in one.data] == ["s_θ"] and "xaxis2" not in one.layout.to_plotly_json()


def test_forward_config_validates():
    with pytest.raises(ValueError):
        ForwardConfig(process="ve", sigma_min=2.0, sigma_max=1.0)
    with pytest.raises(ValueError):
        ForwardConfig(n=10**7)


def test_image_export_or_clear_error(monkeypatch):
    import os
    import shutil

    import plotly.graph_objects as go

    fig = viz.scatter(np.zeros((2, 2)), BOUNDS)
    # the branch is decided here, not by to_image: with a browser for kaleido the export must
    # succeed; without one it must fail with an ExportError that names the format and the cause
    browsers = ("chromium", "chromium-browser", "google-chrome")
    if any(shutil.which(b) or os.path.exists(f"/usr/bin/{b}") for b in browsers):
        svg = viz.to_image(fig, "svg")
        assert b"<svg" in svg[:300]
    else:
        with pytest.raises(viz.ExportError, match=r"as SVG \(no chromium found\)"):
            viz.to_image(fig, "svg")

    # both branches on every machine, with the backend stubbed: a backend failure becomes an
    # ExportError carrying its reason, and a working backend's bytes come back as they are
    # (SVG at scale 1, an animated figure exported without its frames)
    def broken(self, **kw):
        raise RuntimeError("kaleido exploded")

    monkeypatch.setattr(go.Figure, "to_image", broken)
    with pytest.raises(viz.ExportError, match=r"SVG.*kaleido exploded"):
        viz.to_image(fig, "svg")
    calls = []

    def working(self, **kw):
        calls.append((len(self.frames), kw))
        return b"<svg/>" if kw["format"] == "svg" else b"\x89PNG"

    monkeypatch.setattr(go.Figure, "to_image", working)
    anim = go.Figure(fig)
    anim.frames = [go.Frame(data=fig.data)] * 2
    assert viz.to_image(anim, "svg") == b"<svg/>" and viz.to_image(fig, "png") == b"\x89PNG"
    assert calls[0][0] == 0 and calls[0][1]["scale"] == 1 and calls[1][1]["scale"] == 2.0
