"""The real app in headless Debian chromium: serve ``app.py``, click Distributions in the sidebar,
wait for the Plotly charts, save a screenshot to ``test-artifacts/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_util import screenshot_module

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"
)
def test_distributions_page_in_chromium(genlib_cache):
    shot = screenshot_module()
    out = ROOT / "test-artifacts" / "browser-distributions.png"
    out.unlink(missing_ok=True)
    log = ROOT / "test-artifacts" / "browser-server.log"
    log.parent.mkdir(exist_ok=True)
    png = ROOT / "test-artifacts" / "browser-export.png"
    png.unlink(missing_ok=True)
    with shot.serve(log_path=log) as url:  # GENLIB_THREADS=1 and GENLIB_CACHE come from conftest
        info = shot.screenshot(url, out, "Distributions", export_png_to=png)
    assert info["title"] == "Distributions"
    assert info["plots"] >= 3  # samples, score field, forward animation (+ schedule)
    assert "/distributions" in info["url"]
    assert not info["errors"], f"JavaScript errors: {info['errors']}"
    assert out.is_file() and out.stat().st_size > 20_000
    from PIL import Image

    with Image.open(out) as img:
        assert img.size == (1440, 1000)
    # the Export menu's PNG is rendered lazily on click (kaleido + chromium on the server)
    with Image.open(png) as img:
        assert img.format == "PNG" and img.width >= 600
