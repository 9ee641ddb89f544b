"""The live lab in headless Debian chromium, on one served app (``GENLIB_MAX_TRAININGS=2``, a
short idle time): the live figure moves during a DDPM training, Stop keeps the partial model,
nothing stale is left above the results; four users on two slots are all served from the queue;
two users asking for the same settings share one job; a closed tab frees its slot."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest

from tests.browser_util import served_app

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
IDLE_S = 20  # long enough that a page slowed by the load still touches its job in time
ENV = {"GENLIB_MAX_TRAININGS": "2", "GENLIB_JOB_IDLE_S": str(IDLE_S)}
BUSY = "server is busy"


@pytest.fixture(scope="module")
def served(genlib_cache):
    with served_app(ENV, "browser-live-server.log") as (url, browser):
        yield url, browser


def open_page(browser, url: str, path: str, title: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{url}/{path}", wait_until="domcontentloaded", timeout=120_000)
    page.wait_for_selector(f'h1:has-text("{title}")', timeout=120_000)
    return ctx, page


def settle(page, ms: int = 600) -> None:
    page.wait_for_timeout(ms)
    with contextlib.suppress(Exception):
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=30_000)


def set_form(page, steps: int, seed: int) -> None:
    form = page.get_by_test_id("stForm").first
    form.get_by_label("Training steps", exact=True).fill(str(steps))
    form.get_by_label("Seed", exact=True).fill(str(seed))
    form.get_by_role("button", name="Apply").click()
    settle(page, 1200)


def click_train(page) -> None:
    """Click Train and wait until the job shows (running or queued); a click that lands during
    a rerun of the page can be dropped by the browser, so it is retried."""
    for _ in range(3):
        settle(page, 300)
        button = page.get_by_role("button", name="Train", exact=True)
        if button.count():
            button.click()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if (
                page.get_by_role("button", name="Stop").count()
                or page.get_by_text("Queued: place").count()
            ):
                return
            page.wait_for_timeout(250)
    raise AssertionError("the Train click did not start a job")


def click_stop(page) -> None:
    """Click Stop. The live panel redraws its buttons every second, so a click can meet a button
    that is being replaced: retry until the page says the job stopped."""
    for _ in range(10):
        with contextlib.suppress(Exception):
            page.get_by_role("button", name="Stop").first.click(timeout=2_000, force=True)
        with contextlib.suppress(Exception):
            page.get_by_text("Stopped by you").first.wait_for(timeout=3_000)
            return
    raise AssertionError("Stop did not stop the job")


def body(page) -> str:
    return page.locator("section.main, [data-testid='stMain']").first.inner_text()


def live_samples(page) -> str:
    """The model-sample trace of the live figure, as JSON (changes as the model learns)."""
    return page.evaluate(
        """() => {
          const plots = [...document.querySelectorAll('.js-plotly-plot')];
          for (const p of plots) {
            const t = (p.data || []).find(d => (d.name || '').startsWith('x ~ q'));
            if (t) return JSON.stringify([t.x, t.y]);  // arrays or typed-array specs alike
          }
          return '';
        }"""
    )


def wait_text(page, text: str, timeout_s: float = 120) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout_s * 1000)


def test_ddpm_live_figure_moves_stop_keeps_model_and_nothing_stale(served):
    url, browser = served
    ctx, page = open_page(browser, url, "ddpm", "DDPM")
    try:
        settle(page)
        set_form(page, 100_000, 4242)
        click_train(page)
        page.get_by_role("button", name="Stop").wait_for(timeout=60_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.js-plotly-plot')].some("
            "p => (p.data || []).some(d => (d.name || '').startsWith('x ~ q')))",
            timeout=60_000,
        )
        first = live_samples(page)
        page.wait_for_timeout(5000)
        second = live_samples(page)
        assert first and second and first != second, "the live samples did not move"
        page.screenshot(path=str(ROOT / "test-artifacts" / "browser-live-ddpm.png"))
        click_stop(page)
        settle(page, 1500)
        text = body(page)
        assert "No trained model" not in text
        assert page.get_by_role("button", name="Train", exact=True).count() == 0
        assert page.get_by_role("button", name="Stop").count() == 0
        page.wait_for_function(  # the partial model's panels
            "() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=90_000
        )
        assert BUSY not in text
    finally:
        ctx.close()


def test_four_users_two_slots_all_served_and_same_spec_shares_a_job(served):
    url, browser = served
    users = [open_page(browser, url, "autoregressive", "Autoregressive") for _ in range(4)]
    try:
        for i, (_, page) in enumerate(users):
            settle(page)
            set_form(page, 3000 if i < 2 else 600, 900 + i)  # two long runs fill the slots
        for _, page in users:
            click_train(page)
            page.wait_for_timeout(300)
        texts = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            texts = [body(p) for _, p in users]
            if sum("Queued: place" in t for t in texts) >= 2:
                break
            time.sleep(0.5)
        assert sum("Queued: place" in t for t in texts) == 2, texts
        assert sum("Training: step" in t for t in texts) == 2
        assert not any(BUSY in t for t in texts)
        for _, page in users:  # the queued ones start by themselves and all finish
            wait_text(page, "Trained now", 180)
        assert not any(BUSY in body(p) for _, p in users)
    finally:
        for ctx, _ in users:
            ctx.close()

    # two users with the same settings share one job: with two slots a third spec still runs
    a, b, c = (open_page(browser, url, "autoregressive", "Autoregressive") for _ in range(3))
    try:
        for (_, page), seed in zip((a, b, c), (777, 777, 778), strict=True):
            settle(page)
            set_form(page, 20_000, seed)
        for _, page in (a, b, c):
            click_train(page)
            page.wait_for_timeout(400)
        page_c = c[1]
        page_c.wait_for_timeout(2500)
        assert "Training: step" in body(page_c), "a shared spec took a second slot"
        assert "Queued" not in body(page_c)
        for _, page in (a, b, c):  # tidy up (closing the contexts would also free the slots)
            with contextlib.suppress(AssertionError):
                click_stop(page)
    finally:
        for ctx, _ in (a, b, c):
            ctx.close()


def test_closed_tab_frees_its_slot(served):
    url, browser = served
    hogs = [open_page(browser, url, "autoregressive", "Autoregressive") for _ in range(2)]
    for i, (_, page) in enumerate(hogs):
        settle(page)
        set_form(page, 100_000, 5000 + i)
        click_train(page)
        page.get_by_role("button", name="Stop").wait_for(timeout=60_000)
    ctx, page = open_page(browser, url, "autoregressive", "Autoregressive")
    try:
        settle(page)
        set_form(page, 1500, 6000)
        click_train(page)
        wait_text(page, "Queued: place", 30)
        for hog_ctx, _ in hogs:
            hog_ctx.close()  # both tabs gone mid-training
        # their jobs are stopped after the idle time, and the queued one starts and finishes
        wait_text(page, "Trained now", IDLE_S + 90)
        assert json.dumps(body(page)).count(BUSY) == 0
    finally:
        ctx.close()
