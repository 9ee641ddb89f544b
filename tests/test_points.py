"""The user's own distribution (``custom_gmm``): typed points, CSV uploads, the drawing canvas's
JSON and images -> mixture centres, with bounded sizes and one-line messages in the page language
for bad input (never a Python internal); the picker's widget in AppTest and a model page trained on
an uploaded mixture."""

from __future__ import annotations

import contextlib
import io
import math
import re
import time

import numpy as np
import pytest
from PIL import Image

from genlib import distributions
from genlib.ui.i18n import lookup
from genlib.ui.points import (
    DEFAULT_BOX,
    ERROR_CODES,
    MAX_CSV_BYTES,
    MAX_IMAGE_BYTES,
    MAX_POINTS,
    MAX_TEXT_CHARS,
    PointsError,
    canvas_background,
    fit_to_box,
    parse_csv,
    parse_points,
    parse_points_text,
    points_from_canvas,
    points_from_image,
    subsample,
)

INTERNALS = re.compile(r"<_io|BytesIO|object at 0x|Traceback|Error\b|Exception|\bb'|\\x")


def _code(fn, *args, **kwargs) -> PointsError:
    with pytest.raises(PointsError) as info:
        fn(*args, **kwargs)
    err = info.value
    assert err.code in ERROR_CODES and isinstance(err, ValueError)
    assert "\n" not in str(err) and not INTERNALS.search(str(err)), str(err)
    return err


# -- messages ---------------------------------------------------------------------------------


def test_every_error_code_has_english_and_japanese_text_with_its_fields():
    for code, english in ERROR_CODES.items():
        fields = set(re.findall(r"{(\w+)}", english))
        for lang in ("en", "ja"):
            text = lookup(f"common.custom_err_{code}", lang)
            assert isinstance(text, str) and text, (code, lang)
            assert set(re.findall(r"{(\w+)}", text)) == fields, (code, lang)
            if lang == "ja":
                assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text), code


def test_new_custom_keys_are_in_both_languages():
    from genlib.ui.i18n import texts

    common = texts("common")
    en = {k for k in common["en"] if k.startswith("custom")}
    ja = {k for k in common["ja"] if k.startswith("custom")}
    assert en == ja
    assert {"custom_source_draw", "custom_source_csv", "custom_points_truncated"} <= en


# -- typed points ------------------------------------------------------------------------------


def test_parse_points():
    assert parse_points("1,2\n\n# comment\n-0.5, 3.25  # trailing\n3;4\n5 6\n7\t8") == [
        (1.0, 2.0),
        (-0.5, 3.25),
        (3.0, 4.0),
        (5.0, 6.0),
        (7.0, 8.0),
    ]
    for bad, code, params in [
        ("1,2,3", "columns", {"line": 1, "found": 3}),
        ("0,0\na,b", "number", {"line": 2}),
        ("", "no_points", {}),
        ("# only a comment\n\n", "no_points", {}),
        ("1,inf", "range", {"line": 1, "limit": "1000"}),
        ("nan,1", "range", {"line": 1, "limit": "1000"}),
        ("1,1e9", "range", {"line": 1, "limit": "1000"}),
    ]:
        err = _code(parse_points, bad)
        assert err.code == code and err.params == params, bad
    err = _code(parse_points, "\n".join("0,0" for _ in range(600)))
    assert err.code == "too_many" and err.params == {"n": MAX_POINTS}


def test_typed_points_read_only_the_first_max_points_lines():
    lines = [f"{i % 7},{i % 5}" for i in range(5000)]
    lines[3000] = "this line is never parsed"
    t0 = time.perf_counter()
    pts, ignored = parse_points_text("\n".join(lines))
    assert time.perf_counter() - t0 < 0.5
    assert len(pts) == MAX_POINTS and pts[:2] == [(0.0, 0.0), (1.0, 1.0)]
    assert ignored == 5000 - MAX_POINTS
    assert parse_points_text("1,2\n3,4") == ([(1.0, 2.0), (3.0, 4.0)], 0)
    assert _code(parse_points_text, "1,2\nx,y").code == "number"  # within the first lines: an error
    # a paste of 5,000 typical lines fits the box's bound (Streamlit drops a longer paste whole)
    typical = "\n".join("-1.2345,2.3456" for _ in range(5000))
    assert len(typical) < MAX_TEXT_CHARS <= 200_000


# -- CSV ---------------------------------------------------------------------------------------


def test_parse_csv_accepts_common_shapes():
    assert parse_csv(b"x,y\n1,2\n3.5,-4\n") == [(1.0, 2.0), (3.5, -4.0)]
    assert parse_csv(b"1,2\r\n3,4\r\n") == [(1.0, 2.0), (3.0, 4.0)]  # no header, CRLF
    assert parse_csv('\ufeff"x";"y"\n"1";"2"\n'.encode()) == [(1.0, 2.0)]  # BOM, quotes
    assert parse_csv(b"x\ty\n1\t2\n\n3\t4\n") == [(1.0, 2.0), (3.0, 4.0)]  # tabs, blank
    assert parse_csv("横,縦\n1,2\n".encode("cp932")) == [(1.0, 2.0)]  # a Shift-JIS header
    assert parse_csv(b"1e-3, 2E2\n") == [(0.001, 200.0)]
    assert len(parse_csv(b"\n".join(b"0,0" for _ in range(MAX_POINTS)))) == MAX_POINTS


def test_parse_csv_rejects_bad_files_with_one_line_messages():
    png = io.BytesIO()
    Image.new("L", (4, 4)).save(png, format="PNG")
    cases = [
        (b"", "empty", {}),
        (b"0,0\n" * (MAX_CSV_BYTES // 4 + 1), "too_large", {"limit": "200 kB"}),
        (png.getvalue(), "binary", {}),  # an image renamed .csv
        (b"PK\x03\x04zipped", "binary", {}),
        (b"1,2\x00\x00\x003,4", "binary", {}),
        (bytes(range(128, 256)) * 4, "binary", {}),
        (b"x,y\n1,2,3\n", "columns", {"line": 2, "found": 3}),
        (b"x,y,z\n1,2,3\n", "columns", {"line": 2, "found": 3}),
        (b"1\n", "columns", {"line": 1, "found": 1}),
        (b"x,y\n1,2\n3,abc\n", "number", {"line": 3}),
        (b"x,y\n1,nan\n", "range", {"line": 2, "limit": "1000"}),
        (b"x,y\n-inf,0\n", "range", {"line": 2, "limit": "1000"}),
        (b"x,y\n", "no_points", {}),
        (b"\n".join(b"1,1" for _ in range(MAX_POINTS + 1)), "too_many", {"n": MAX_POINTS}),
    ]
    for data, code, params in cases:
        err = _code(parse_csv, data)
        assert (err.code, err.params) == (code, params), data[:20]
    # a larger coordinate range where the points are scaled into the box afterwards
    assert parse_csv(b"0,0\n4000,3000\n", max_abs=1e6) == [(0.0, 0.0), (4000.0, 3000.0)]


def test_fit_to_box_keeps_the_shape_and_centres_it():
    pts = fit_to_box([(0.0, 0.0), (4000.0, 2000.0)], DEFAULT_BOX, margin=0.1)
    assert pts == [(-2.4, -1.2), (2.4, 1.2)]  # 80 % of the box, aspect 2:1 kept, centred
    assert fit_to_box([(5.0, 5.0)]) == [(0.0, 0.0)]
    assert fit_to_box([(1.0, 1.0), (1.0, 1.0)]) == [(0.0, 0.0), (0.0, 0.0)]


def test_ui_bound_matches_the_target_bound():
    from genlib.distributions.mixtures import MAX_CUSTOM_POINTS

    assert MAX_POINTS == MAX_CUSTOM_POINTS


def test_subsample_is_even_and_deterministic():
    pts = [(float(i), 0.0) for i in range(1000)]
    sub = subsample(pts, 10)
    assert len(sub) == 10 and sub[0] == pts[0] and sub[-1] == pts[-1]
    assert subsample(pts[:5], 10) == pts[:5]


# -- the drawing canvas (Fabric.js JSON as streamlit-drawable-canvas returns it) -------------------

# objects as Fabric 7 (streamlit-drawable-canvas 0.13) reported them in Chromium for: a click with
# the point tool at (50, 50), a free-hand stroke from (100, 200) to (195, 143), and a circle
# dragged from (200, 200) to (236, 200), on a 300 x 300 canvas
POINT = {"type": "Circle", "originX": "left", "originY": "center", "left": 45.5, "top": 50,
         "width": 6, "height": 6, "radius": 3, "strokeWidth": 3, "scaleX": 1, "scaleY": 1,
         "angle": 0}  # fmt: skip
STROKE = {"type": "Path", "originX": "center", "originY": "center", "left": 147.5, "top": 171.5,
          "width": 95.006, "height": 57.006, "strokeWidth": 3, "scaleX": 1, "scaleY": 1,
          "angle": 0,
          "path": [["M", 99.997, 200.003]]
          + [["Q", 100 + 5 * i, 200 - 3 * i, 102.5 + 5 * i, 198.5 - 3 * i] for i in range(19)]
          + [["L", 195.003, 142.997]]}  # fmt: skip
CIRCLE = {"type": "Circle", "originX": "left", "originY": "center", "left": 200, "top": 200,
          "width": 36, "height": 36, "radius": 18, "strokeWidth": 3, "scaleX": 1, "scaleY": 1,
          "angle": 0}  # fmt: skip
BOX6 = (-3.0, 3.0, -3.0, 3.0)  # 300 px <-> 6 units: 50 px per unit


def _to_box(px: float, py: float) -> tuple[float, float]:
    return (-3.0 + px / 50.0, 3.0 - py / 50.0)


def test_canvas_point_maps_pixels_to_the_box():
    pts = points_from_canvas({"objects": [POINT]}, (300, 300), BOX6)
    assert pts == [pytest.approx(_to_box(50, 50))]  # (-2, 2): the top-left quarter
    corners = [dict(POINT, left=-4.5, top=0), dict(POINT, left=295.5, top=300)]
    got = points_from_canvas({"objects": corners}, (300, 300), BOX6)
    assert got == [pytest.approx((-3.0, 3.0)), pytest.approx((3.0, -3.0))]


def test_canvas_stroke_becomes_points_along_it():
    pts = np.array(points_from_canvas({"objects": [STROKE]}, (300, 300), BOX6, spacing=0.25))
    length = math.hypot(95, 57) / 50  # units
    assert len(pts) == int(length / 0.25) + 1
    assert pts[0] == pytest.approx(_to_box(100, 200), abs=0.01)
    steps = np.hypot(*np.diff(pts, axis=0).T)
    assert steps == pytest.approx(np.full(len(steps), 0.25), abs=1e-3)
    # moved by 50 px to the right (edit mode): the same stroke, shifted by one unit
    moved = np.array(points_from_canvas({"objects": [dict(STROKE, left=197.5)]}, (300, 300), BOX6))
    assert moved - pts == pytest.approx(np.tile([1.0, 0.0], (len(pts), 1)), abs=1e-6)


def test_canvas_circle_becomes_a_ring():
    pts = np.array(points_from_canvas({"objects": [CIRCLE]}, (300, 300), BOX6, spacing=0.25))
    centre = np.array(_to_box(219.5, 200))
    r = np.hypot(*(pts - centre).T)
    assert r == pytest.approx(np.full(len(pts), 18 / 50), abs=1e-4)  # rounded to 4 decimals
    assert len(pts) == int(2 * math.pi * 18 / 12.5)  # one point every 0.25 units (12.5 px)
    scaled = dict(CIRCLE, scaleX=2.0, scaleY=2.0)  # resized in edit mode
    r2 = np.hypot(*(np.array(points_from_canvas({"objects": [scaled]}, (300, 300), BOX6)) - np.array(_to_box(239, 200))).T)  # fmt: skip
    assert r2 == pytest.approx(np.full(len(r2), 36 / 50), abs=1e-4)


def test_canvas_is_bounded_and_tolerates_garbage():
    many = {"objects": [dict(POINT, left=float(i % 290), top=float(i % 280)) for i in range(3000)]}
    assert len(points_from_canvas(many, (300, 300), BOX6)) == MAX_POINTS
    assert len(points_from_canvas(many, (300, 300), BOX6, max_points=50)) == 50
    for junk in [None, [], "x", {}, {"objects": None}, {"objects": "abc"}, {"objects": [1, "a"]},
                 {"objects": [{"type": "Path", "path": "M 0 0"}]},
                 {"objects": [{"type": "Path", "path": [["M", "a", None], ["Q"]]}]},
                 {"objects": [{"type": "Rect", "left": 5, "top": 5}]},
                 {"objects": [dict(POINT, left=float("nan"))]}]:  # fmt: skip
        pts = points_from_canvas(junk, (300, 300), BOX6)
        assert all(np.isfinite(p).all() for p in pts)
    assert points_from_canvas({"objects": [dict(POINT, left=900, top=900)]}, (300, 300)) == []
    huge = {"objects": [dict(STROKE, path=[["M", 0, 0], ["L", 1e12, 1e12]])]}
    assert len(points_from_canvas(huge, (300, 300), BOX6)) <= MAX_POINTS
    # the drawn points build a custom mixture
    pts = points_from_canvas({"objects": [POINT, STROKE, CIRCLE]}, (300, 300), BOX6)
    target = distributions.build("custom_gmm", points=tuple(pts), std=0.2)
    assert target.log_prob(target.sample(10)).isfinite().all()


def test_canvas_background_is_a_png_of_the_canvas_size():
    with Image.open(io.BytesIO(canvas_background((280, 200), DEFAULT_BOX))) as img:
        assert img.format == "PNG" and img.size == (280, 200)
        assert img.convert("L").getpixel((140, 100)) < 200  # the axes cross at the centre


# -- images ------------------------------------------------------------------------------------


def _png(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def test_points_from_image_dark_pixels_scaled_to_box():
    img = np.full((40, 40), 255, dtype=np.uint8)
    img[2:6, 2:6] = 0  # top-left dark square
    pts = np.array(points_from_image(_png(img), box=(-3.0, 3.0, -3.0, 3.0)))
    assert len(pts) == 16
    assert (pts[:, 0] < -2.0).all() and (pts[:, 1] > 2.0).all()  # top-left of the box
    assert pts.min() >= -3 and pts.max() <= 3


def test_points_from_image_subsamples_and_rejects_bad_uploads_clearly():
    rng = np.random.default_rng(0)
    img = (rng.random((120, 90)) < 0.5).astype(np.uint8) * 255  # thousands of dark pixels
    pts = points_from_image(_png(img, "JPEG"), max_points=100, seed=1)
    assert len(pts) == 100 and len(set(pts)) == 100
    assert pts == points_from_image(_png(img, "JPEG"), max_points=100, seed=1)  # seeded
    gif = io.BytesIO()
    Image.new("L", (8, 8)).save(gif, format="GIF")
    good = _png(np.zeros((64, 64), dtype=np.uint8))
    cases = [
        (_png(np.full((10, 10), 255, dtype=np.uint8)), "no_dark", {}),
        (b"x,y\n1,2\n3,4\n", "not_image", {}),  # a text file renamed .png
        (b"not an image at all", "not_image", {}),
        (b"", "empty", {}),
        (b"\x89PNG" + b"0" * MAX_IMAGE_BYTES, "too_large", {"limit": "2 MB"}),
        (gif.getvalue(), "image_format", {"fmt": "GIF"}),
        (good[: len(good) // 2], "image_damaged", {}),  # a truncated PNG
    ]
    for data, code, params in cases:
        err = _code(points_from_image, data)
        assert (err.code, err.params) == (code, params), code


def test_image_bomb_is_refused_before_decoding(monkeypatch):
    import genlib.ui.points as points

    monkeypatch.setattr(points, "MAX_IMAGE_PIXELS", 100)
    err = _code(points_from_image, _png(np.zeros((20, 20), dtype=np.uint8)))
    assert err.code == "image_pixels"


# -- the widget (AppTest) ------------------------------------------------------------------------


def _picker_page():
    import streamlit as st

    from genlib import ui

    ui.setup_app()
    spec = ui.target_picker("pt", default="custom_gmm")
    st.code(repr(dict(spec.params).get("points")), language=None)


@pytest.fixture
def picker(monkeypatch):
    from streamlit.testing.v1 import AppTest

    def make(lang: str = "en"):
        # AppTest formats a selectbox's options outside the script run: the env language
        monkeypatch.setenv("GENLIB_LANG", lang)
        at = AppTest.from_function(_picker_page, default_timeout=60)
        at.session_state["_genlib_lang"] = lang
        at.run()
        assert not at.exception
        return at

    return make


def _points(at) -> tuple:
    return eval(at.code[0].value)  # noqa: S307 (the page's own repr of a tuple of floats)


def test_picker_offers_every_source_and_starts_from_the_default_points(picker):
    at = picker()
    assert at.radio(key="pt_custom_source").options == [
        "a drawing", "typed points", "a CSV file", "an image"
    ]  # fmt: skip
    assert at.radio(key="pt_custom_source").value == "draw"
    assert at.radio(key="pt_custom_tool").value == "point"  # the canvas rendered
    assert _points(at) == ((-2.0, -1.0), (0.0, 2.0), (2.0, -1.0))
    assert any("Nothing drawn yet" in c.value for c in at.caption)


def test_picker_csv_upload_becomes_the_mixture(picker):
    at = picker()
    at.radio(key="pt_custom_source").set_value("csv").run()
    up = at.file_uploader(key="pt_custom_csv")
    assert set(up.allowed_type) >= {".csv"} or set(up.allowed_type) >= {"csv"}
    up.set_value(("ring.csv", b"x,y\n0,1\n1,0\n0,-1\n-1,0\n", "text/csv")).run()
    assert not at.exception and not at.error
    assert _points(at) == ((0.0, 2.4), (2.4, 0.0), (0.0, -2.4), (-2.4, 0.0))  # scaled into the box
    assert any("4 points read" in c.value for c in at.caption)
    at.checkbox(key="pt_custom_csv_fit").uncheck().run()
    assert _points(at) == ((0.0, 1.0), (1.0, 0.0), (0.0, -1.0), (-1.0, 0.0))  # as uploaded


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_picker_bad_files_give_one_clear_line_in_the_page_language(picker, lang):
    png = _png(np.zeros((8, 8), dtype=np.uint8))
    at = picker(lang)
    at.radio(key="pt_custom_source").set_value("csv").run()
    expected = {
        "p.csv": (png, "custom_err_binary"),
        "q.csv": (b"x,y\n1,2,3\n", "custom_err_columns"),
        "r.csv": (b"x,y\n1,nan\n", "custom_err_range"),
        "s.csv": (b"1,1\n" * (MAX_POINTS + 1), "custom_err_too_many"),
        "t.csv": (b"1,1\n" * (MAX_CSV_BYTES // 4 + 1), "custom_err_too_large"),
    }
    for name, (data, key) in expected.items():
        at.file_uploader(key="pt_custom_csv").set_value((name, data, "text/csv")).run()
        assert not at.exception
        assert len(at.error) == 1, name
        msg = at.error[0].value
        head = str(lookup(f"common.{key}", lang)).split("{")[0]
        assert head in msg and "\n" not in msg and not INTERNALS.search(msg), (name, msg)
        assert _points(at) == ((-2.0, -1.0), (0.0, 2.0), (2.0, -1.0))  # the default meanwhile
    at.radio(key="pt_custom_source").set_value("image").run()
    at.file_uploader(key="pt_custom_image").set_value(("notes.png", b"x,y\n1,2\n", "image/png"))
    at.run()
    assert not at.exception and len(at.error) == 1
    msg = at.error[0].value
    assert str(lookup("common.custom_err_not_image", lang)).split("(")[0].split("（")[0] in msg
    assert "BytesIO" not in msg and "0x" not in msg and "cannot identify" not in msg


def test_picker_text_box_is_bounded_and_reads_the_first_points(picker):
    at = picker()
    at.radio(key="pt_custom_source").set_value("text").run()
    box = at.text_area(key="pt_custom_points")
    assert box.proto.max_chars == MAX_TEXT_CHARS
    box.set_value("\n".join(f"{i % 5},{i % 3}" for i in range(MAX_POINTS + 40))).run()
    assert not at.exception and not at.error
    assert len(_points(at)) == MAX_POINTS
    assert at.warning and "40 further lines" in at.warning[0].value
    at.text_area(key="pt_custom_points").set_value("1,2\noops").run()
    assert at.error and "line 2" in at.error[0].value


def test_model_page_trains_on_an_uploaded_custom_mixture(app_test, train_in_app):
    """End to end on a model page: the custom target in the page's picker, a CSV upload, a fast
    training run, the result and its metrics against the exact density."""
    p = "flow_matching"
    at = app_test(page=f"pages/{p}.py")
    names = at.selectbox(key=f"{p}_target").options
    assert "Your own (drawn, typed, CSV or image)" in names
    at.selectbox(key=f"{p}_target").set_value("custom_gmm").run()
    at.radio(key=f"{p}_custom_source").set_value("csv").run()
    ring = "\n".join(
        f"{2 * math.cos(a):.3f},{2 * math.sin(a):.3f}" for a in np.linspace(0, 6.28, 12)
    )
    at.file_uploader(key=f"{p}_custom_csv").set_value(("ring.csv", ring.encode(), "text/csv"))
    at.run()
    assert not at.exception and not at.error
    at.number_input(key=f"{p}_steps").set_value(40)
    at.button(key=f"{p}_apply").click().run()
    train_in_app(at, p)
    assert not at.exception and not at.error
    assert at.success and "40" in at.success[0].value
    assert any("KL" in str(v) for d in at.dataframe for v in d.value.iloc[:, 0])


# -- the real widget in headless Chromium ----------------------------------------------------------


@pytest.mark.browser
@pytest.mark.skipif(
    not __import__("pathlib").Path("/usr/bin/chromium").exists(),
    reason="Debian chromium (/usr/bin/chromium) is not installed",
)
def test_canvas_and_paste_in_chromium(genlib_cache, repo_root):
    """On a model page: the custom target from its picker, dots and a circle drawn on the canvas
    become the mixture; 5,000 pasted lines are answered in seconds with the first MAX_POINTS."""
    import importlib.util

    if importlib.util.find_spec("streamlit_drawable_canvas") is None:  # importable only when served
        pytest.skip("streamlit-drawable-canvas is not installed")
    spec = importlib.util.spec_from_file_location(
        "genlab_screenshot", repo_root / "scripts" / "screenshot.py"
    )
    shot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shot)
    from playwright.sync_api import sync_playwright

    out = repo_root / "test-artifacts" / "browser-custom-canvas.png"
    out.parent.mkdir(exist_ok=True)
    log = repo_root / "test-artifacts" / "browser-custom-server.log"
    with shot.serve(log_path=log) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shot.CHROMIUM, args=shot.CHROMIUM_ARGS, headless=True
        )
        try:
            ctx = browser.new_context(
                viewport={"width": 1400, "height": 1000},
                permissions=["clipboard-read", "clipboard-write"],
            )
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/flow_matching?lang=en", timeout=120_000)
            page.wait_for_selector('h1:has-text("Flow matching")', timeout=120_000)
            main = page.locator('[data-testid="stMain"]')
            for _ in range(3):  # a rerun of the page can close the dropdown under the click
                page.wait_for_timeout(1500)
                with contextlib.suppress(Exception):
                    page.wait_for_selector(
                        '[data-testid="stStatusWidget"]', state="detached", timeout=60_000
                    )
                main.locator('[data-testid="stSelectbox"]').first.click()
                with contextlib.suppress(Exception):
                    page.get_by_role("option", name="Your own (drawn, typed, CSV or image)").click(
                        timeout=10_000
                    )
                with contextlib.suppress(Exception):
                    page.wait_for_selector("text=Nothing drawn yet", timeout=30_000)
                    break
            page.wait_for_selector("text=Nothing drawn yet", timeout=30_000)
            canvas = main.locator('[data-testid="stBidiComponentIsolated"] canvas').last
            canvas.wait_for(timeout=30_000)
            page.wait_for_timeout(1500)
            box = canvas.bounding_box()
            assert box and box["width"] == box["height"] == 240
            for dx, dy in [(60, 60), (180, 60), (120, 180)]:  # the point tool
                page.mouse.click(box["x"] + dx, box["y"] + dy)
                page.wait_for_timeout(600)
            page.wait_for_selector("text=3 points taken from the drawing", timeout=30_000)
            tools = main.locator('[data-testid="stRadioGroup"]').nth(1)
            tools.get_by_text("circles").dispatch_event("click")
            page.wait_for_timeout(2500)
            box = canvas.bounding_box()
            page.mouse.move(box["x"] + 90, box["y"] + 110)
            page.mouse.down()
            for i in range(1, 21):
                page.mouse.move(box["x"] + 90 + 3 * i, box["y"] + 110)
            page.mouse.up()
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
                ".some(e => /^(\\d+) points taken from the drawing/.test(e.innerText)"
                " && parseInt(e.innerText) > 3)",
                timeout=30_000,
            )
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out))
            # typed points: a paste of 5,000 lines
            sources = main.locator('[data-testid="stRadioGroup"]').first
            sources.get_by_text("typed points").dispatch_event("click")
            area = main.locator("textarea").first
            area.wait_for(timeout=30_000)
            area.click()
            page.keyboard.press("Control+A")
            text = "\n".join(f"{(i % 50) / 10 - 2.5:.3f},{(i % 37) / 10 - 1.8:.3f}" for i in range(5000))  # fmt: skip
            page.evaluate("t => navigator.clipboard.writeText(t)", text)
            t0 = time.monotonic()
            page.keyboard.press("Control+V")
            assert area.evaluate("e => e.value.length") == len(text)
            page.keyboard.press("Control+Enter")
            page.wait_for_selector("text=Only the first 512 points are used", timeout=30_000)
            assert time.monotonic() - t0 < 15
            assert not errors, errors
        finally:
            browser.close()
    assert out.stat().st_size > 20_000


def _target_pages() -> list[str]:
    from genlib.ui.layout import PAGES

    return [path for _, path, _, _ in PAGES if path != "pages/home.py"]


@pytest.mark.parametrize("path", _target_pages())
def test_every_page_picker_offers_the_custom_target(app_test, path):
    """Every page with a target picker lists the custom mixture and renders with it (the CSV
    source, a small uploaded mixture), without an exception or an error."""
    at = app_test(page=path)
    pickers = [s for s in at.selectbox if s.key and s.key.endswith("_target")]
    assert pickers, f"{path}: no target picker"
    key = pickers[0].key
    assert "Your own (drawn, typed, CSV or image)" in pickers[0].options
    at.selectbox(key=key).set_value("custom_gmm").run()
    assert not at.exception, at.exception
    prefix = key.removesuffix("_target")
    at.radio(key=f"{prefix}_custom_source").set_value("csv").run()
    data = b"x,y\n-1,-1\n1,1\n1,-1\n"
    at.file_uploader(key=f"{prefix}_custom_csv").set_value(("pts.csv", data, "text/csv")).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("3 points read" in c.value for c in at.caption)
