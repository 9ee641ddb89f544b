"""Animated GIFs of particle animations, drawn with Pillow (pure: arrays in, GIF bytes out)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from genlib.viz.core import Bounds, as_numpy

__all__ = ["MAX_GIF_FRAMES", "MAX_GIF_SIZE", "frames_to_gif", "colormap"]

MAX_GIF_FRAMES = 150
MAX_GIF_SIZE = 800
_ANCHORS = np.array(
    [[255, 255, 255], [224, 240, 245], [158, 202, 225], [66, 146, 198], [8, 48, 107]],
    dtype=np.float64,
)  # the same white -> deep blue scale as the plotly heatmaps


def _hex(c: str) -> tuple[int, int, int]:
    c = c.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def colormap(z: np.ndarray) -> np.ndarray:
    """Values in [0, 1] ``(H, W)`` -> RGB uint8 ``(H, W, 3)`` on the house density scale."""
    z = np.clip(np.nan_to_num(z, nan=0.0), 0.0, 1.0) * (len(_ANCHORS) - 1)
    i = np.minimum(z.astype(int), len(_ANCHORS) - 2)
    f = (z - i)[..., None]
    return ((1 - f) * _ANCHORS[i] + f * _ANCHORS[i + 1]).astype(np.uint8)


def frames_to_gif(
    frames: Any,
    bounds: Bounds,
    *,
    size: int = 480,
    duration_ms: int = 80,
    colors: Sequence[str] | str = "#0072B2",
    radius: float = 2.0,
    backgrounds: Any | None = None,
    max_frames: int = MAX_GIF_FRAMES,
    max_points: int = 3000,
    labels: Sequence[str] | None = None,
    loop: int = 0,
) -> bytes:
    """Render ``frames (F, N, 2)`` inside ``bounds`` to an animated GIF.

    ``colors``: one colour, or one per particle; ``backgrounds``: optional ``(F, H, W)`` or ``(H, W)``
    values in [0, 1] (rows along y, bottom row first, as ``grid`` gives them) drawn as a heatmap;
    ``labels``: a caption per frame. Frames are thinned evenly to ``max_frames``."""
    xs = as_numpy(frames)
    if xs.ndim != 3 or xs.shape[-1] != 2:
        raise ValueError(f"frames must be (F, N, 2), got {xs.shape}")
    size = int(min(max(size, 64), MAX_GIF_SIZE))
    F = xs.shape[0]
    keep = np.unique(
        np.linspace(0, F - 1, min(F, max(1, min(max_frames, MAX_GIF_FRAMES)))).round().astype(int)
    )
    xs = xs[keep, :max_points]
    x0, x1, y0, y1 = (float(b) for b in bounds)
    px = (xs[..., 0] - x0) / (x1 - x0) * (size - 1)
    py = (1.0 - (xs[..., 1] - y0) / (y1 - y0)) * (size - 1)  # image rows go down
    cols = [colors] * xs.shape[1] if isinstance(colors, str) else list(colors)[: xs.shape[1]]
    rgb = [_hex(c) for c in cols]
    bg_all = None
    if backgrounds is not None:
        bg_all = as_numpy(backgrounds)
        if bg_all.ndim == 2:
            bg_all = np.broadcast_to(bg_all, (F, *bg_all.shape))
        bg_all = bg_all[keep]
    rgb_arr = np.array([rgb[j % len(rgb)] for j in range(xs.shape[1])], dtype=np.uint8)  # (N, 3)
    r = max(int(round(radius)), 0)
    disk = [
        (dx, dy)
        for dx in range(-r, r + 1)
        for dy in range(-r, r + 1)
        if dx * dx + dy * dy <= radius * radius + 0.5
    ]
    images: list[Image.Image] = []
    for f in range(len(keep)):
        if bg_all is not None:
            bg = Image.fromarray(colormap(bg_all[f][::-1])).resize((size, size), Image.BILINEAR)
            canvas = np.array(bg)
        else:
            canvas = np.full((size, size, 3), 255, dtype=np.uint8)
        ok = np.isfinite(px[f]) & np.isfinite(py[f])
        cx = np.round(px[f][ok]).astype(int)
        cy = np.round(py[f][ok]).astype(int)
        col = rgb_arr[ok]
        for dx, dy in disk:  # stamp a small disk: vectorised over particles
            xx, yy = cx + dx, cy + dy
            inside = (xx >= 0) & (xx < size) & (yy >= 0) & (yy < size)
            canvas[yy[inside], xx[inside]] = col[inside]
        img = Image.fromarray(canvas)
        draw = ImageDraw.Draw(img)
        draw.rectangle([0, 0, size - 1, size - 1], outline=(154, 164, 178))
        if labels is not None:
            draw.text((8, 6), str(labels[keep[f]]), fill=(31, 41, 51))
        images.append(img.convert("P", palette=Image.ADAPTIVE, colors=64))
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=int(duration_ms),
        loop=loop,
        optimize=False,
        disposal=2,
    )
    return buf.getvalue()
