"""The limits of a shared server in headless Debian chromium, on one served app (two training
slots, one job per user): a user's second tab does not take a second slot (it says so), four users
who each try two tabs are all served from the queue with no "busy" message, and a job over the
per-job budget is refused with a message before it starts.

(The plain four-users-on-two-slots test and the closed-tab test are in ``test_browser_live``.)"""

from __future__ import annotations

import time

import pytest

from tests.browser_util import served_app
from tests.test_browser_live import body, click_train, set_form, settle, wait_text

pytestmark = pytest.mark.browser

ENV = {
    "GENLIB_MAX_TRAININGS": "2",
    "GENLIB_JOB_IDLE_S": "30",
    "GENLIB_JOBS_PER_SESSION": "1",
    "GENLIB_JOB_BUDGET": "1e8",
}
BUSY = "busy"
SECOND_TAB = "already have 1 training"


@pytest.fixture(scope="module")
def served(genlib_cache):
    with served_app(ENV, "browser-queue-server.log") as (url, browser):
        yield url, browser


def new_tab(ctx, url: str, path: str = "autoregressive", title: str = "Autoregressive"):
    page = ctx.new_page()
    page.goto(f"{url}/{path}", wait_until="domcontentloaded", timeout=120_000)
    page.wait_for_selector(f'h1:has-text("{title}")', timeout=120_000)
    settle(page)
    return page


def press_train(page) -> None:
    settle(page, 300)
    page.get_by_role("button", name="Train", exact=True).click()
    settle(page, 800)


def test_four_users_with_two_tabs_each_are_served_one_slot_each(served):
    url, browser = served
    users = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(4)]
    try:
        first = [new_tab(ctx, url) for ctx in users]
        for i, page in enumerate(first):
            set_form(page, 8000 if i < 2 else 600, 300 + i)
        for page in first:
            click_train(page)
            page.wait_for_timeout(300)
        # each user's second tab asks for another model while the first is queued or running (the
        # first two run 8000 steps, the other two wait behind them; on a slow machine a first job
        # may still have finished by then, and that user may rightly train again)
        second = [new_tab(ctx, url) for ctx in users]
        busy_first = []
        for i, page in enumerate(second):
            set_form(page, 400, 400 + i)
            busy_first.append("Trained now" not in body(first[i]))
            press_train(page)
        assert sum(busy_first) >= 2, "the first jobs finished before the second tabs asked"
        deadline = time.monotonic() + 30
        refused = []
        while time.monotonic() < deadline:
            refused = [SECOND_TAB in body(p) for p in second]
            if all(r for r, b in zip(refused, busy_first, strict=True) if b):
                break
            time.sleep(0.5)
        assert all(r for r, b in zip(refused, busy_first, strict=True) if b), [
            body(p)[:300] for p in second
        ]
        texts = [body(p) for p in first]
        assert sum("Training: step" in t for t in texts) <= 2  # two slots
        for page in first:  # all four first tabs are served from the queue
            wait_text(page, "Trained now", 240)
        assert not any(BUSY in body(p).lower() for p in first + second)
        # the slot is free again: the second tab may train now
        again = second[refused.index(True)]
        press_train(again)
        wait_text(again, "Trained now", 180)
    finally:
        for ctx in users:
            ctx.close()


def test_a_job_over_the_budget_is_refused_before_it_starts(served):
    url, browser = served
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = new_tab(ctx, url, "ddpm", "DDPM")
        form = page.get_by_test_id("stForm").first
        form.get_by_label("Batch size", exact=True).fill("65536")
        set_form(page, 100_000, 1)  # 6.6e9 sample-steps: over the 1e8 budget
        press_train(page)
        wait_text(page, "too large for the shared server", 30)
        assert not page.get_by_role("button", name="Stop").count()
        assert "Queued: place" not in body(page)
    finally:
        ctx.close()
