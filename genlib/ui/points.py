"""The user's own distribution: mixture centres from typed points or from an image's dark pixels.

Pure functions (no streamlit): uploads are decoded with Pillow only (never unpickled or
evaluated), sizes are bounded, and every failure is a ``ValueError`` with a readable message.
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["MAX_IMAGE_BYTES", "MAX_POINTS", "parse_points", "points_from_image", "DEFAULT_BOX"]

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_IMAGE_PIXELS = 25_000_000
MAX_POINTS = 512
DEFAULT_BOX = (-3.0, 3.0, -3.0, 3.0)


def parse_points(text: str, max_points: int = MAX_POINTS) -> list[tuple[float, float]]:
    """``"x,y"`` per line (blank lines and ``#`` comments ignored; spaces/semicolons also split)."""
    pts: list[tuple[float, float]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p for p in line.replace(";", ",").replace(" ", ",").split(",") if p]
        if len(parts) != 2:
            raise ValueError(f"line {lineno}: expected two numbers 'x,y', got {raw.strip()!r}")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"line {lineno}: {raw.strip()!r} is not a pair of numbers") from None
        if not (np.isfinite(x) and np.isfinite(y)) or abs(x) > 1e3 or abs(y) > 1e3:
            raise ValueError(f"line {lineno}: coordinates must be finite and within ±1000")
        pts.append((x, y))
        if len(pts) > max_points:
            raise ValueError(f"at most {max_points} points")
    if not pts:
        raise ValueError("enter at least one point 'x,y'")
    return pts


def points_from_image(
    data: bytes,
    box: tuple[float, float, float, float] = DEFAULT_BOX,
    max_points: int = MAX_POINTS,
    threshold: float = 0.5,
    seed: int = 0,
    work_size: int = 128,
) -> list[tuple[float, float]]:
    """Dark pixels of a PNG/JPEG as points scaled into ``box`` (aspect kept, centred), subsampled
    to ``max_points`` with a seeded generator. ``threshold``: luminance in [0, 1] below which a
    pixel is dark (transparent pixels count as white)."""
    from PIL import Image, UnidentifiedImageError

    if len(data) == 0:
        raise ValueError("the uploaded file is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"the image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in ("PNG", "JPEG"):
                raise ValueError(f"only PNG or JPEG images are accepted (got {img.format})")
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS or w < 1 or h < 1:
                raise ValueError("the image has too many pixels")
            img.draft("L", (work_size, work_size))  # JPEG: decode at reduced size
            rgba = img.convert("RGBA")
            rgba.thumbnail((work_size, work_size))
            arr = np.asarray(rgba, dtype=np.float64) / 255.0  # (h, w, 4)
    except ValueError:
        raise
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"could not read the image: {exc}") from None
    lum = 0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]
    lum = lum * arr[..., 3] + (1.0 - arr[..., 3])  # composite on white
    rows, cols = np.nonzero(lum < threshold)
    if len(rows) == 0:
        raise ValueError("no dark pixels found: draw dark shapes on a light background")
    h, w = lum.shape
    side = max(h, w)
    x0, x1, y0, y1 = box
    span = min(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # pixel centres -> box coordinates; the image's top row is the largest y
    u = (cols + 0.5 - w / 2) / side
    v = (h / 2 - rows - 0.5) / side
    pts = np.stack([cx + u * span, cy + v * span], axis=1)  # (M, 2)
    if len(pts) > max_points:
        rng = np.random.default_rng(seed)
        pts = pts[np.sort(rng.choice(len(pts), size=max_points, replace=False))]
    return [(round(float(a), 4), round(float(b), 4)) for a, b in pts]
