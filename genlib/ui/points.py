"""The user's own distribution: mixture centres from typed points, a CSV file, a drawing on a
canvas or an image's dark pixels.

Pure functions (no streamlit): uploads are decoded as text or with Pillow only (never unpickled or
evaluated), sizes are bounded before any work, and every failure is a ``PointsError`` (a
``ValueError``) whose ``code`` and ``params`` name a message the page shows in its language
(``common.custom_err_<code>``); ``str(error)`` is the English message. No Python internal (an
exception's repr, an object address) ever reaches the message.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_BOX",
    "ERROR_CODES",
    "MAX_ABS",
    "MAX_CSV_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_POINTS",
    "MAX_TEXT_CHARS",
    "PointsError",
    "canvas_background",
    "fit_to_box",
    "parse_csv",
    "parse_points",
    "parse_points_text",
    "points_from_canvas",
    "points_from_image",
    "subsample",
]

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_IMAGE_PIXELS = 25_000_000
MAX_CSV_BYTES = 200 * 1024
MAX_POINTS = 512  # = genlib.distributions.mixtures.MAX_CUSTOM_POINTS
#: The typed-points box (``max_chars``): a paste of ~5,000 lines like "-1.2345,2.3456" fits and
#: is answered at once (only the first MAX_POINTS lines are parsed). Streamlit's box drops a
#: longer paste whole, so the bound is generous rather than tight.
MAX_TEXT_CHARS = 100_000
MAX_ABS = 1e3  # coordinates as typed / uploaded (|x|, |y| <= MAX_ABS)
DEFAULT_BOX = (-3.0, 3.0, -3.0, 3.0)
#: Bounds on an untrusted canvas drawing (it comes from the browser as JSON).
MAX_CANVAS_OBJECTS = 2_000
MAX_CANVAS_VERTICES = 50_000

#: code -> English message (the UI shows ``common.custom_err_<code>`` in the page language).
ERROR_CODES: dict[str, str] = {
    "columns": "line {line}: expected two numbers x,y, found {found} values",
    "number": "line {line}: not a pair of numbers x,y",
    "range": "line {line}: coordinates must be finite numbers within ±{limit}",
    "no_points": "no points found: enter at least one line x,y",
    "too_many": "more than {n} points: keep at most {n}",
    "empty": "the file is empty",
    "too_large": "the file is larger than {limit}",
    "binary": "this is not a text file (binary data, perhaps an image renamed .csv)",
    "not_image": "this is not a PNG or JPEG image (perhaps a text file renamed .png)",
    "image_format": "only PNG or JPEG images are accepted (this one is {fmt})",
    "image_pixels": "the image has too many pixels (at most {limit} million)",
    "image_damaged": "the image is damaged or incomplete",
    "no_dark": "no dark pixels found: draw dark shapes on a light background",
}


class PointsError(ValueError):
    """A readable failure: ``code`` (a key of ``ERROR_CODES``) and ``params`` fill the message."""

    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(ERROR_CODES[code].format(**params))


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} kB"


def _split(line: str) -> list[str]:
    """Fields of one line: separated by commas, semicolons, tabs or spaces; quotes stripped."""
    for sep in (";", "\t", " "):
        line = line.replace(sep, ",")
    return [f.strip().strip("\"'") for f in line.split(",") if f.strip()]


def _pair(fields: list[str], lineno: int, max_abs: float) -> tuple[float, float]:
    if len(fields) != 2:
        raise PointsError("columns", line=lineno, found=len(fields))
    try:
        x, y = float(fields[0]), float(fields[1])
    except ValueError:
        raise PointsError("number", line=lineno) from None
    if not (math.isfinite(x) and math.isfinite(y)) or abs(x) > max_abs or abs(y) > max_abs:
        raise PointsError("range", line=lineno, limit=f"{max_abs:g}")
    return (x, y)


def _is_header(fields: list[str]) -> bool:
    """A first line of names (``x,y``, ``"lon";"lat"``): some field is not a number at all."""
    for f in fields:
        try:
            float(f)
        except ValueError:
            if any(c.isalpha() for c in f) and f.lower() not in ("nan", "inf", "infinity"):
                return True
    return False


def _read_lines(
    lines: Iterable[str],
    max_points: int,
    *,
    header: bool,
    truncate: bool,
    max_abs: float,
) -> tuple[list[tuple[float, float]], int]:
    """Points of ``x,y`` lines (blank lines and ``#`` comments skipped; an optional header line
    when ``header``). Past ``max_points`` points the remaining lines are counted, never parsed
    (``truncate``), or the input is refused (``too_many``)."""
    pts: list[tuple[float, float]] = []
    ignored = 0
    first = True
    for lineno, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if len(pts) >= max_points:
            if not truncate:
                raise PointsError("too_many", n=max_points)
            ignored += 1
            continue
        fields = _split(line)
        if first and header and _is_header(fields):
            first = False
            continue
        first = False
        pts.append(_pair(fields, lineno, max_abs))
    if not pts:
        raise PointsError("no_points")
    return pts, ignored


def parse_points_text(
    text: str, max_points: int = MAX_POINTS, max_abs: float = MAX_ABS
) -> tuple[list[tuple[float, float]], int]:
    """The typed-points box: ``"x,y"`` per line -> (the first ``max_points`` points, the number of
    further point lines left unread). Only those first lines are parsed, so a long paste costs no
    more than ``max_points`` lines (the box itself is bounded by ``MAX_TEXT_CHARS``)."""
    return _read_lines(
        text[: 4 * MAX_TEXT_CHARS].splitlines(),
        max_points,
        header=False,
        truncate=True,
        max_abs=max_abs,
    )


def parse_points(text: str, max_points: int = MAX_POINTS) -> list[tuple[float, float]]:
    """``"x,y"`` per line (blank lines and ``#`` comments ignored; spaces/semicolons also split);
    more than ``max_points`` points is an error (``too_many``)."""
    pts, _ = _read_lines(
        text.splitlines(), max_points, header=False, truncate=False, max_abs=MAX_ABS
    )
    return pts


_BINARY_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"PK\x03\x04", b"%PDF", b"BM", b"\x1f\x8b")


def parse_csv(
    data: bytes,
    max_points: int = MAX_POINTS,
    max_bytes: int = MAX_CSV_BYTES,
    max_abs: float = MAX_ABS,
) -> list[tuple[float, float]]:
    """An uploaded CSV of points: ``x,y`` per line, an optional header line (``x,y``), commas,
    semicolons, tabs or spaces between the two columns, UTF-8 (with or without BOM) or Shift-JIS
    text. Refused with a ``PointsError``: an empty or too large file, binary data (an image or a
    zip renamed .csv), a line that is not two finite numbers, more than ``max_points`` points."""
    if len(data) == 0:
        raise PointsError("empty")
    if len(data) > max_bytes:
        raise PointsError("too_large", limit=_size(max_bytes))
    if b"\x00" in data[:8192] or data.startswith(_BINARY_MAGIC):
        raise PointsError("binary")
    for encoding in ("utf-8-sig", "cp932"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise PointsError("binary")
    if sum(1 for c in text[:4096] if not c.isprintable() and c not in "\r\n\t") > 8:
        raise PointsError("binary")
    pts, _ = _read_lines(
        text.splitlines(), max_points, header=True, truncate=False, max_abs=max_abs
    )
    return pts


def fit_to_box(
    points: Sequence[tuple[float, float]],
    box: tuple[float, float, float, float] = DEFAULT_BOX,
    margin: float = 0.1,
) -> list[tuple[float, float]]:
    """Scale and shift ``points`` into ``box`` (one scale for both axes, so shapes keep their
    aspect; centred; ``margin`` of the box left free on each side). One point -> the centre."""
    arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x0, x1, y0, y1 = box
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    extent = float((hi - lo).max()) if len(arr) else 0.0
    if extent <= 0:
        out = np.broadcast_to(centre, arr.shape)
    else:
        span = min(x1 - x0, y1 - y0) * (1 - 2 * margin)
        out = centre + (arr - (lo + hi) / 2) * (span / extent)
    return [(round(float(a), 4), round(float(b), 4)) for a, b in out]


def subsample(points: Sequence[tuple[float, float]], max_points: int) -> list[tuple[float, float]]:
    """At most ``max_points`` of ``points``, evenly spread over their order (deterministic:
    a drawn stroke stays a stroke)."""
    if len(points) <= max_points:
        return list(points)
    idx = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))
    return [points[i] for i in idx]


# -- the drawing canvas (streamlit-drawable-canvas: Fabric.js objects as JSON) -------------------

_ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}


def _num(obj: dict, name: str, default: float) -> float:
    v = obj.get(name, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return default
    return float(v)


def _centre(obj: dict) -> tuple[np.ndarray, float, float, float]:
    """Fabric's centre point of an object (from left/top and its origin), its scales and angle."""
    sx, sy = _num(obj, "scaleX", 1.0), _num(obj, "scaleY", 1.0)
    sw = _num(obj, "strokeWidth", 0.0)
    w = (_num(obj, "width", 0.0) + sw) * sx
    h = (_num(obj, "height", 0.0) + sw) * sy
    ox = _ORIGIN.get(str(obj.get("originX", "left")), 0.0)
    oy = _ORIGIN.get(str(obj.get("originY", "top")), 0.0)
    angle = math.radians(_num(obj, "angle", 0.0))
    dx, dy = (0.5 - ox) * w, (0.5 - oy) * h
    c, s = math.cos(angle), math.sin(angle)
    left, top = _num(obj, "left", 0.0), _num(obj, "top", 0.0)
    return np.array([left + c * dx - s * dy, top + s * dx + c * dy]), sx, sy, angle


def _resample(poly: np.ndarray, spacing: float, cap: int) -> np.ndarray:
    """Points every ``spacing`` pixels along a polyline (its first point included)."""
    if len(poly) < 2:
        return poly
    seg = np.hypot(*np.diff(poly, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    n = min(int(arc[-1] / spacing) + 1, cap)
    at = np.linspace(0.0, spacing * (n - 1), n) if n > 1 else np.zeros(1)
    return np.stack([np.interp(at, arc, poly[:, 0]), np.interp(at, arc, poly[:, 1])], axis=1)


def _path_vertices(path: Any, budget: int) -> np.ndarray:
    """The end points of a Fabric path's commands (``M``/``L``/``Q``/``C`` ...), in path space."""
    out: list[tuple[float, float]] = []
    if not isinstance(path, list):
        return np.zeros((0, 2))
    for cmd in path[:budget]:
        if not isinstance(cmd, list) or len(cmd) < 3:
            continue
        x, y = cmd[-2], cmd[-1]
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            if math.isfinite(x) and math.isfinite(y):
                out.append((float(x), float(y)))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def points_from_canvas(
    json_data: Any,
    size: tuple[int, int],
    box: tuple[float, float, float, float] = DEFAULT_BOX,
    max_points: int = MAX_POINTS,
    spacing: float = 0.25,
) -> list[tuple[float, float]]:
    """A canvas drawing -> mixture centres in ``box`` (empty list when nothing usable is drawn).

    ``json_data``: the canvas's Fabric.js JSON (``{"objects": [...]}``) of ``size`` = (width,
    height) pixels, mapped linearly onto ``box`` (canvas top = largest y). A dot (the point tool,
    or any circle narrower than ``spacing``) gives its centre; a circle gives points along its
    circumference and a free-hand path points along the stroke, every ``spacing`` box units.
    Points off the canvas are dropped; more than ``max_points`` are thinned evenly. The JSON
    comes from the browser: anything malformed is skipped, never trusted (objects and vertices
    are bounded)."""
    width, height = float(size[0]), float(size[1])
    x0, x1, y0, y1 = box
    px_per_unit = min(width / (x1 - x0), height / (y1 - y0))
    step = max(spacing * px_per_unit, 1.0)
    cap = 20 * max_points
    objects = json_data.get("objects") if isinstance(json_data, dict) else None
    if not isinstance(objects, list):
        return []
    chunks: list[np.ndarray] = []
    budget = MAX_CANVAS_VERTICES
    for obj in objects[:MAX_CANVAS_OBJECTS]:
        if not isinstance(obj, dict) or budget <= 0:
            continue
        kind = str(obj.get("type", "")).lower()
        centre, sx, sy, angle = _centre(obj)
        if kind in ("circle", "ellipse"):
            rx = _num(obj, "rx" if kind == "ellipse" else "radius", 0.0) * abs(sx)
            ry = _num(obj, "ry" if kind == "ellipse" else "radius", 0.0) * abs(sy)
            if max(rx, ry) < step:
                chunks.append(centre[None, :])
                continue
            n = min(max(int(2 * math.pi * max(rx, ry) / step), 6), cap)
            th = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
            local = np.stack([rx * np.cos(th), ry * np.sin(th)], axis=1)
        elif kind == "path":
            verts = _path_vertices(obj.get("path"), budget)
            budget -= len(verts)
            if len(verts) == 0:
                continue
            offset = (verts.min(axis=0) + verts.max(axis=0)) / 2  # Fabric's pathOffset
            local = (verts - offset) * np.array([sx, sy])
        elif kind == "line":
            ends = np.array(
                [
                    [_num(obj, "x1", 0.0), _num(obj, "y1", 0.0)],
                    [_num(obj, "x2", 0.0), _num(obj, "y2", 0.0)],
                ]
            )
            local = (ends - ends.mean(axis=0)) * np.array([sx, sy])
        else:
            continue
        c, s = math.cos(angle), math.sin(angle)
        canvas_pts = centre + local @ np.array([[c, s], [-s, c]])
        if kind != "circle" and kind != "ellipse":
            canvas_pts = _resample(canvas_pts, step, cap)
        chunks.append(canvas_pts)
    if not chunks:
        return []
    pix = np.concatenate(chunks)
    inside = (pix[:, 0] >= 0) & (pix[:, 0] <= width) & (pix[:, 1] >= 0) & (pix[:, 1] <= height)
    pix = pix[inside]
    xs = x0 + pix[:, 0] / width * (x1 - x0)
    ys = y1 - pix[:, 1] / height * (y1 - y0)
    pts = [(round(float(a), 4), round(float(b), 4)) for a, b in zip(xs, ys, strict=True)]
    return subsample(pts, max_points)


@lru_cache(maxsize=8)
def canvas_background(
    size: tuple[int, int], box: tuple[float, float, float, float] = DEFAULT_BOX
) -> bytes:
    """A PNG behind the canvas: white, a light grid at whole units of ``box`` and darker axes,
    so a drawing's position in the target's coordinates is visible."""
    from PIL import Image, ImageDraw

    width, height = int(size[0]), int(size[1])
    x0, x1, y0, y1 = box
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for v in range(math.ceil(x0), math.floor(x1) + 1):
        px = round((v - x0) / (x1 - x0) * (width - 1))
        draw.line([(px, 0), (px, height)], fill=(150, 150, 150) if v == 0 else (228, 228, 228))
    for v in range(math.ceil(y0), math.floor(y1) + 1):
        py = round((y1 - v) / (y1 - y0) * (height - 1))
        draw.line([(0, py), (width, py)], fill=(150, 150, 150) if v == 0 else (228, 228, 228))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# -- images ---------------------------------------------------------------------------------------


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
        raise PointsError("empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise PointsError("too_large", limit=_size(MAX_IMAGE_BYTES))
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in ("PNG", "JPEG"):
                raise PointsError("image_format", fmt=str(img.format))
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS or w < 1 or h < 1:
                raise PointsError("image_pixels", limit=MAX_IMAGE_PIXELS // 1_000_000)
            img.draft("L", (work_size, work_size))  # JPEG: decode at reduced size
            rgba = img.convert("RGBA")
            rgba.thumbnail((work_size, work_size))
            arr = np.asarray(rgba, dtype=np.float64) / 255.0  # (h, w, 4)
    except PointsError:
        raise
    except UnidentifiedImageError:
        raise PointsError("not_image") from None
    except Image.DecompressionBombError:
        raise PointsError("image_pixels", limit=MAX_IMAGE_PIXELS // 1_000_000) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, MemoryError):
        raise PointsError("image_damaged") from None
    lum = 0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]
    lum = lum * arr[..., 3] + (1.0 - arr[..., 3])  # composite on white
    rows, cols = np.nonzero(lum < threshold)
    if len(rows) == 0:
        raise PointsError("no_dark")
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
