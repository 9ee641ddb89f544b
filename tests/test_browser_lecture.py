"""The lecture room in headless Debian chromium, on one served app with the shipped presets:
a GAN view set by hand reopens from its URL in a fresh browser (same target, same value, same
trained result), and in presentation mode at 1920×1080 every model page shows a figure's top edge
without scrolling."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.browser_util import served_app

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
MODEL_PAGES = {
    "rbm": "Boltzmann machine",
    "autoregressive": "Autoregressive",
    "flow": "Normalizing flow",
    "vae": "VAE",
    "gan": "GAN",
    "score_matching": "Score matching",
    "ncsn": "NCSN",
    "ddpm": "DDPM",
    "sde": "SDE",
    "flow_matching": "Flow matching",
}


@pytest.fixture(scope="module")
def served(genlib_cache):
    with served_app(
        {"GENLIB_PRETRAINED": str(ROOT / "assets" / "pretrained")}, "browser-lecture-server.log"
    ) as (url, browser):
        yield url, browser


def settle(page, ms: int = 800) -> None:
    page.wait_for_timeout(ms)
    with contextlib.suppress(Exception):
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)


def shown_options(page) -> list[str]:
    return [i.input_value() for i in page.locator('[data-testid="stSelectbox"] input').all()]


def badge(page) -> str:
    return page.locator('[data-testid="stAlert"]').first.inner_text(timeout=60_000)


def test_a_gan_view_reopens_from_its_url(served):
    url, browser = served
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{url}/gan", timeout=120_000)
    page.wait_for_selector('h1:has-text("GAN")', timeout=120_000)
    settle(page)
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="Two moons").click()
    settle(page, 1500)
    form = page.get_by_test_id("stForm").first
    form.get_by_label("Latent dimension of z", exact=False).fill("3")
    form.get_by_role("button", name="Apply").click()
    settle(page, 2000)
    link = page.url
    assert "gan_z_dim=3" in link and "gan_target=" in link, link
    first_badge = badge(page)
    ctx.close()

    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = fresh.new_page()
    page.goto(link, timeout=120_000)
    page.wait_for_selector('h1:has-text("GAN")', timeout=120_000)
    settle(page, 2000)
    try:
        assert shown_options(page)[0] == "Two moons"
        form = page.get_by_test_id("stForm").first
        assert form.get_by_label("Latent dimension of z", exact=False).input_value() == "3"
        assert badge(page) == first_badge  # the same result (trained or not) as before
    finally:
        page.screenshot(path=str(ROOT / "test-artifacts" / "browser-url-gan.png"))
        fresh.close()


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720)], ids=["1080p", "720p"])
def test_presentation_mode_shows_a_figure_above_the_fold(served, size):
    url, browser = served
    width, height = size
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    misses = []
    try:
        for path, title in MODEL_PAGES.items():
            page.goto(f"{url}/{path}?present=true", timeout=120_000)
            page.wait_for_selector(f'h1:has-text("{title}")', timeout=120_000)
            page.wait_for_selector(".js-plotly-plot >> visible=true", timeout=120_000)
            settle(page, 600)
            assert not page.locator('section[data-testid="stSidebar"]').is_visible()
            above = """h => [...document.querySelectorAll('.js-plotly-plot')]
                     .filter(p => p.offsetParent !== null)
                     .some(p => { const t = p.getBoundingClientRect().top;
                                  return t >= 0 && t < h; })"""
            try:  # the page may still be drawing its figures: wait for one at the top
                page.wait_for_function(above, arg=height, timeout=60_000)
            except Exception:
                misses.append(path)
            if path in ("gan", "ddpm", "flow"):
                page.screenshot(path=str(ROOT / "test-artifacts" / f"present-{width}-{path}.png"))
    finally:
        ctx.close()
    assert not misses, f"figure below the fold in presentation mode: {misses}"


def test_a_section_opens_on_click_and_from_its_link(served):
    """A closed section holds no figure; a click computes and draws it and puts it in the URL; that
    link opens it in a fresh browser."""
    url, browser = served
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{url}/ddpm", timeout=120_000)
    page.wait_for_selector('h1:has-text("DDPM")', timeout=120_000)
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    settle(page, 1500)
    section = page.locator('[data-testid="stExpander"]').filter(has_text="Samplers vs the number")
    assert section.count() == 1
    assert section.locator(".js-plotly-plot").count() == 0
    section.locator("summary").click()
    section.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    settle(page, 1500)
    link = page.url
    assert "ddpm_sec_nfe=true" in link, link
    section.locator("summary").click()  # and a second click closes it again
    settle(page, 1500)
    page.wait_for_function("() => !location.search.includes('ddpm_sec_nfe')", timeout=60_000)
    assert section.locator(".js-plotly-plot").count() == 0
    ctx.close()

    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = fresh.new_page()
    try:
        page.goto(link, timeout=120_000)
        page.wait_for_selector('h1:has-text("DDPM")', timeout=120_000)
        section = page.locator('[data-testid="stExpander"]').filter(
            has_text="Samplers vs the number"
        )
        section.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
        assert section.locator("details").get_attribute("open") is not None
    finally:
        page.screenshot(path=str(ROOT / "test-artifacts" / "browser-section-link.png"))
        fresh.close()
