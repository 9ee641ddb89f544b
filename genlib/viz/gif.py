"""Animated GIFs of particle animations, drawn with Pillow (pure: arrays in, GIF bytes out).

Slide-ready by default: 960 px wide, with the axes (ticks and numbers of the bounds, x₁/x₂
titles), an optional title and the frame label in large type. Text uses a system font found with
fontconfig (DejaVu Sans; Noto Sans CJK for Japanese runs), else Pillow's scalable default font."""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genlib.viz.core import Bounds, as_numpy

__all__ = [
    "MAX_GIF_FRAMES",
    "MAX_GIF_SIZE",
    "GIF_WIDTH",
    "frames_to_gif",
    "colormap",
    "nice_ticks",
]

MAX_GIF_FRAMES = 150
MAX_GIF_SIZE = 1920
GIF_WIDTH = 960
MIN_LABEL_FONT = 28
MIN_AXES_WIDTH = 320  # narrower GIFs are drawn without axes
_ANCHORS = np.array(
    [[255, 255, 255], [224, 240, 245], [158, 202, 225], [66, 146, 198], [8, 48, 107]],
    dtype=np.float64,
)  # the same white -> deep blue scale as the plotly heatmaps
_INK = (31, 41, 51)  # text
_MUTED = (82, 96, 109)  # tick numbers
_FRAME = (154, 164, 178)  # plot border and ticks
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", os.path.expanduser("~/.fonts"))


def _hex(c: str) -> tuple[int, int, int]:
    c = c.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def colormap(z: np.ndarray) -> np.ndarray:
    """Values in [0, 1] ``(H, W)`` -> RGB uint8 ``(H, W, 3)`` on the house density scale."""
    z = np.clip(np.nan_to_num(z, nan=0.0), 0.0, 1.0) * (len(_ANCHORS) - 1)
    i = np.minimum(z.astype(int), len(_ANCHORS) - 2)
    f = (z - i)[..., None]
    return ((1 - f) * _ANCHORS[i] + f * _ANCHORS[i + 1]).astype(np.uint8)


# ------------------------------------------------------------------------------------------ text


def _fc_match(family: str) -> tuple[str, int] | None:
    """(file, face index) of an installed font of ``family`` (fontconfig), or None."""
    exe = shutil.which("fc-match")
    if exe:
        try:
            out = subprocess.run(
                [exe, "-f", "%{file}\t%{index}\t%{family}", family],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout
            path, index, fams = (out.split("\t") + ["", "", ""])[:3]
            if path and os.path.exists(path) and family.lower() in fams.lower():
                return path, int(index or 0)
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    return None


def _find_file(names: Sequence[str]) -> str | None:
    for root in _FONT_DIRS:
        if not os.path.isdir(root):
            continue
        for dirpath, _, files in os.walk(root):
            for n in names:
                if n in files:
                    return os.path.join(dirpath, n)
    return None


@lru_cache(maxsize=1)
def _font_files() -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
    """(latin, cjk) font files: DejaVu Sans (or Noto Sans) and Noto Sans CJK JP, when present."""
    latin = _fc_match("DejaVu Sans") or _fc_match("Noto Sans")
    if latin is None:
        path = _find_file(("DejaVuSans.ttf", "NotoSans-Regular.ttf"))
        latin = (path, 0) if path else None
    cjk = _fc_match("Noto Sans CJK JP")
    if cjk is None:
        path = _find_file(("NotoSansCJK-Regular.ttc",))
        cjk = (path, 0) if path else None
    return latin, cjk


@lru_cache(maxsize=64)
def _font(size: int, cjk: bool = False) -> Any:
    latin, cjk_file = _font_files()
    spec = (cjk_file or latin) if cjk else latin
    if spec is not None:
        try:
            return ImageFont.truetype(spec[0], size, index=spec[1])
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:  # pragma: no cover - old Pillow
        return ImageFont.load_default()


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x2E80 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF


def _runs(text: str) -> list[tuple[str, bool]]:
    """Split ``text`` into runs of CJK / other characters (each drawn with its own font)."""
    out: list[tuple[str, bool]] = []
    for ch in text:
        c = _is_cjk(ch)
        if out and out[-1][1] == c:
            out[-1] = (out[-1][0] + ch, c)
        else:
            out.append((ch, c))
    return out


def _text_width(text: str, size: int) -> float:
    return sum(_font(size, c).getlength(s) for s, c in _runs(text))


def _draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int,
    fill: tuple[int, int, int] | int,
    anchor: str = "ls",
) -> None:
    """Draw ``text`` with its baseline at ``xy[1]``; ``anchor`` l/m/r aligns it horizontally."""
    w = _text_width(text, size)
    x = xy[0] - {"l": 0.0, "m": w / 2, "r": w}[anchor[0]]
    for s, c in _runs(text):
        font = _font(size, c)
        draw.text((x, xy[1]), s, font=font, fill=fill, anchor="ls")
        x += font.getlength(s)


def nice_ticks(lo: float, hi: float, n: int = 6) -> tuple[np.ndarray, int]:
    """About ``n`` round tick values inside ``[lo, hi]`` (steps 1, 2, 2.5, 5 × 10^k) and the
    number of decimals that prints them."""
    span = float(hi - lo)
    if not math.isfinite(span) or span <= 0:
        return np.array([lo]), 2
    raw = span / max(n, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = mag
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = m * mag
        if span / step <= n + 1e-9:
            break
    start = math.ceil(lo / step - 1e-9) * step
    ticks = np.arange(start, hi + step * 1e-6, step)
    decimals = max(0, -math.floor(math.log10(step) + 1e-12))
    if not np.allclose(np.round(ticks, decimals), ticks, atol=step * 1e-6):
        decimals += 1  # 2.5 × 10^k steps
    return ticks, decimals


def _tick_text(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    if float(s) == 0.0:
        s = s.lstrip("-")
    return s.replace("-", "\u2212")  # a real minus sign


# --------------------------------------------------------------------------------------- layout


class _Layout:
    """Pixel layout of one GIF frame: the plot area (equal units on both axes) with its axes,
    the title and label rows."""

    def __init__(
        self,
        width: int,
        bounds: tuple[float, float, float, float],
        *,
        axes: bool,
        title: str | None,
        has_labels: bool,
        longest_label: str,
        xtitle: str,
        ytitle: str,
    ) -> None:
        W = width
        self.width = W
        self.axes = axes
        x0, x1, y0, y1 = bounds
        # plot height / width: equal units on both axes (kept within 1:4 .. 2:1)
        ratio = min(max((y1 - y0) / (x1 - x0), 0.25), 2.0)
        if not axes:
            self.left = self.top = 0
            self.pw, self.ph = W, max(16, round(W * ratio))
            self.height = self.ph
            self.label_font = max(12, round(W / 34))
            self.label_xy = (8.0, 8.0 + self.label_font)
            self.title_xy = None
            self.title = None
            return
        self.tick_font = max(16, round(W * 0.021))
        self.title_font = max(24, round(W * 0.033))
        self.label_font = max(MIN_LABEL_FONT, round(W * 0.034))
        self.axis_font = max(18, round(W * 0.025))
        self.tick_len = max(6, round(W * 0.008))
        pad = max(10, round(W * 0.018))
        self.xticks = nice_ticks(x0, x1)
        self.yticks = nice_ticks(y0, y1)
        ylab_w = max(
            _text_width(_tick_text(v, self.yticks[1]), self.tick_font) for v in self.yticks[0]
        )
        xlab_last = _text_width(_tick_text(self.xticks[0][-1], self.xticks[1]), self.tick_font)
        self.left = int(pad + self.axis_font * 1.3 + pad / 2 + ylab_w + self.tick_len + 6)
        right = int(pad + xlab_last / 2)
        self.pw = max(32, W - self.left - right)
        self.ph = max(16, round(self.pw * ratio))
        # rows above the plot: the title, then the frame label (on the title's row when it fits)
        self.title = title or None
        title_w = _text_width(self.title, self.title_font) if self.title else 0.0
        label_w = _text_width(longest_label, self.label_font) if has_labels else 0.0
        top = pad
        self.title_xy = None
        if self.title:
            top += int(self.title_font * 1.25)
            self.title_xy = (float(self.left), float(top))
        if has_labels:
            if self.title and title_w + label_w + 2 * pad <= self.pw:
                self.label_xy = (float(self.left + self.pw), float(top))
                self.label_anchor = "r"
            else:
                if self.title:
                    top += int(pad / 2)
                top += int(self.label_font * 1.2)
                self.label_xy = (float(self.left), float(top))
                self.label_anchor = "l"
        top += pad + max(0, int(self.tick_font * 0.5) - pad // 2)  # room for the top y tick
        self.top = top
        bottom = int(
            self.tick_len + 6 + self.tick_font * 1.15 + pad / 2 + self.axis_font * 1.3 + pad
        )
        self.height = self.top + self.ph + bottom
        self.height += self.height % 2
        self.xtitle, self.ytitle = xtitle, ytitle

    def base(self, bounds: tuple[float, float, float, float]) -> Image.Image:
        """The static part: white canvas, ticks, tick numbers, axis titles and the title."""
        img = Image.new("RGB", (self.width, self.height), (255, 255, 255))
        if not self.axes:
            return img
        draw = ImageDraw.Draw(img)
        x0, x1, y0, y1 = bounds
        L, T, PW, PH = self.left, self.top, self.pw, self.ph
        tl = self.tick_len
        xt, xd = self.xticks
        for v in xt:
            px = L + (v - x0) / (x1 - x0) * (PW - 1)
            draw.line([(px, T + PH), (px, T + PH + tl)], fill=_FRAME, width=2)
            _draw_text(
                draw,
                (px, T + PH + tl + 4 + self.tick_font),
                _tick_text(v, xd),
                self.tick_font,
                _MUTED,
                anchor="ms",
            )
        yt, yd = self.yticks
        for v in yt:
            py = T + (1.0 - (v - y0) / (y1 - y0)) * (PH - 1)
            draw.line([(L - tl, py), (L, py)], fill=_FRAME, width=2)
            _draw_text(
                draw,
                (L - tl - 6, py + self.tick_font * 0.36),
                _tick_text(v, yd),
                self.tick_font,
                _MUTED,
                anchor="rs",
            )
        if self.xtitle:
            y = T + PH + tl + 4 + self.tick_font * 1.15 + self.axis_font * 1.15
            _draw_text(draw, (L + PW / 2, y), self.xtitle, self.axis_font, _INK, anchor="ms")
        if self.ytitle:  # drawn horizontally on a strip, then turned a quarter
            w = int(_text_width(self.ytitle, self.axis_font)) + 4
            h = int(self.axis_font * 1.4)
            strip = Image.new("L", (w, h), 0)
            _draw_text(
                ImageDraw.Draw(strip), (2, self.axis_font * 1.05), self.ytitle, self.axis_font, 255
            )
            strip = strip.rotate(90, expand=True)
            ink = Image.new("RGB", strip.size, _INK)
            x = max(2, int(L - tl - 6 - self._ytick_w() - 8 - strip.size[0]))
            img.paste(ink, (x, int(T + PH / 2 - strip.size[1] / 2)), strip)
        if self.title and self.title_xy:
            _draw_text(draw, self.title_xy, self.title, self.title_font, _INK)
        return img

    def _ytick_w(self) -> float:
        yt, yd = self.yticks
        return max(_text_width(_tick_text(v, yd), self.tick_font) for v in yt)


def _stamp_text(idx: np.ndarray, lay: _Layout, text: str, ramp_at: int) -> None:
    """Draw ``text`` (the frame label) into the palette-index image ``idx`` on its white row, as
    16 levels of ink coverage."""
    size = lay.label_font
    w = int(_text_width(text, size)) + 6
    x, y = lay.label_xy
    x0 = int(x - {"l": 0.0, "m": w / 2, "r": w}[getattr(lay, "label_anchor", "l")])
    y0 = int(y - size * 1.15)
    h = int(size * 1.5)
    mask = Image.new("L", (w, h), 0)
    _draw_text(ImageDraw.Draw(mask), (2, y - y0), text, size, 255)
    cov = np.asarray(mask)
    H, W = idx.shape
    xa, ya = max(x0, 0), max(y0, 0)
    xb, yb = min(x0 + w, W), min(y0 + h, H)
    if xb <= xa or yb <= ya:
        return
    cov = cov[ya - y0 : yb - y0, xa - x0 : xb - x0]
    region = idx[ya:yb, xa:xb]
    on = cov > 8
    region[on] = (ramp_at + np.round(cov[on] / 255.0 * 15)).astype(np.uint8)


def frames_to_gif(
    frames: Any,
    bounds: Bounds,
    *,
    width: int = GIF_WIDTH,
    size: int | None = None,
    duration_ms: int = 80,
    colors: Sequence[str] | str = "#0072B2",
    radius: float | None = None,
    backgrounds: Any | None = None,
    max_frames: int = MAX_GIF_FRAMES,
    max_points: int = 3000,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    axes: bool = True,
    xtitle: str = "x₁",
    ytitle: str = "x₂",
    loop: int = 0,
) -> bytes:
    """Render ``frames (F, N, 2)`` inside ``bounds`` to an animated GIF ``width`` pixels wide
    (the plot has equal units on both axes; axes, title and labels add rows and margins).

    ``colors``: one colour, or one per particle; ``backgrounds``: optional ``(F, H, W)`` or ``(H, W)``
    values in [0, 1] (rows along y, bottom row first, as ``grid`` gives them) drawn as a heatmap;
    ``labels``: a caption per frame, drawn large (≥ 28 px) above the plot; ``title``: a title row;
    ``axes=False`` (and below 320 px): the bare plot (the label in its corner). ``size`` is
    the former name of ``width``. Frames are thinned evenly to ``max_frames``."""
    xs = as_numpy(frames)
    if xs.ndim != 3 or xs.shape[-1] != 2:
        raise ValueError(f"frames must be (F, N, 2), got {xs.shape}")
    if labels is not None and len(labels) < xs.shape[0]:
        raise ValueError("one label per frame")
    W = int(min(max(int(size if size is not None else width), 64), MAX_GIF_SIZE))
    axes = bool(axes) and W >= MIN_AXES_WIDTH  # a thumbnail has no room for axes
    F = xs.shape[0]
    keep = np.unique(
        np.linspace(0, F - 1, min(F, max(1, min(max_frames, MAX_GIF_FRAMES)))).round().astype(int)
    )
    xs = xs[keep, :max_points]
    b = tuple(float(v) for v in bounds)
    x0, x1, y0, y1 = b
    labs = None if labels is None else [str(labels[k]) for k in keep]
    longest = max(labs, key=lambda s: _text_width(s, 20)) if labs else ""
    lay = _Layout(
        W,
        b,
        axes=axes,
        title=title,
        has_labels=bool(labs),
        longest_label=longest,
        xtitle=xtitle,
        ytitle=ytitle,
    )
    PW, PH, L, T = lay.pw, lay.ph, lay.left, lay.top
    px = (xs[..., 0] - x0) / (x1 - x0) * (PW - 1)
    py = (1.0 - (xs[..., 1] - y0) / (y1 - y0)) * (PH - 1)  # image rows go down
    cols = [colors] * xs.shape[1] if isinstance(colors, str) else list(colors)[: xs.shape[1]]
    rgb = [_hex(c) for c in cols]
    bg_all = None
    if backgrounds is not None:
        bg_all = as_numpy(backgrounds)
        if bg_all.ndim == 2:
            bg_all = np.broadcast_to(bg_all, (F, *bg_all.shape))
        bg_all = bg_all[keep]
    rgb_arr = np.array([rgb[j % len(rgb)] for j in range(xs.shape[1])], dtype=np.uint8)  # (N, 3)
    rad = float(radius) if radius is not None else max(1.5, 2.0 * PW / 480)
    r = max(int(round(rad)), 0)
    disk = [
        (dx, dy)
        for dx in range(-r, r + 1)
        for dy in range(-r, r + 1)
        if dx * dx + dy * dy <= rad * rad + 0.5
    ]
    base = lay.base(b).quantize(colors=48)  # the static part, quantised once
    base_idx = np.array(base)
    pal = list(base.getpalette() or [])[: 48 * 3]
    ramp_at = len(pal) // 3  # label ink: white -> ink in 16 levels (antialiased text)
    for a in np.linspace(0.0, 1.0, 16):
        pal += [round(255 + a * (c - 255)) for c in _INK]
    uniq = sorted(set(rgb))[:32]  # particle colours (beyond 32: the nearest of the first 32)
    part_at = len(pal) // 3
    for c in uniq:
        pal += list(c)
    frame_at = len(pal) // 3
    pal += list(_FRAME)
    dens_at = len(pal) // 3
    K = min(
        64, 255 - dens_at
    )  # one index left: Pillow's transparency  # density levels on the house scale
    pal += colormap(np.linspace(0.0, 1.0, K)[None, :])[0].ravel().tolist()
    u = np.array(uniq, dtype=np.int64)
    near = ((rgb_arr[:, None, :].astype(np.int64) - u[None]) ** 2).sum(-1).argmin(1)
    part_idx = (part_at + near).astype(np.uint8)  # (N,)
    bw = 2 if axes else 1
    images: list[Image.Image] = []
    for f in range(len(keep)):
        if bg_all is not None:
            z = np.nan_to_num(np.asarray(bg_all[f], dtype=np.float32)[::-1], nan=0.0)
            z = np.asarray(
                Image.fromarray(np.ascontiguousarray(z)).resize((PW, PH), Image.BILINEAR)
            )
            plot = (dens_at + np.round(np.clip(z, 0.0, 1.0) * (K - 1))).astype(np.uint8)
        else:
            plot = np.full((PH, PW), dens_at, dtype=np.uint8)  # level 0 is white
        ok = np.isfinite(px[f]) & np.isfinite(py[f])
        # reversed: the first particles are drawn last, on top (pages highlight particle 0)
        cx = np.round(px[f][ok]).astype(int)[::-1]
        cy = np.round(py[f][ok]).astype(int)[::-1]
        col = part_idx[ok][::-1]
        for dx, dy in disk:  # stamp a small disk: vectorised over particles
            xx, yy = cx + dx, cy + dy
            inside = (xx >= 0) & (xx < PW) & (yy >= 0) & (yy < PH)
            plot[yy[inside], xx[inside]] = col[inside]
        plot[:bw], plot[-bw:], plot[:, :bw], plot[:, -bw:] = frame_at, frame_at, frame_at, frame_at
        idx = base_idx.copy()
        idx[T : T + PH, L : L + PW] = plot
        if labs is not None:
            _stamp_text(idx, lay, labs[f], ramp_at)
        img = Image.frombytes("P", (idx.shape[1], idx.shape[0]), idx.tobytes())
        img.putpalette(pal)
        images.append(img)
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=int(duration_ms),
        loop=loop,
        optimize=True,  # unchanged pixels become transparent: small delta frames
        disposal=1,
    )
    return buf.getvalue()
