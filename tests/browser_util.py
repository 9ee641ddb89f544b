"""Shared by the browser test modules: serve the app (scripts/screenshot.py's ``serve``) with
extra environment variables and launch Debian chromium through the pip ``playwright`` package."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")


def screenshot_module():
    """``scripts/screenshot.py`` as a module (``serve``, ``screenshot``, ``CHROMIUM_ARGS``)."""
    spec = importlib.util.spec_from_file_location(
        "genlab_screenshot", ROOT / "scripts" / "screenshot.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@contextlib.contextmanager
def served_app(env: dict[str, str], log_name: str) -> Iterator[tuple[str, object]]:
    """Serve the app with ``env`` added to the environment; yield (base URL, browser); stop both
    and restore the environment afterwards. Skips the test when Debian chromium is missing."""
    import pytest
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.skip("Debian chromium (/usr/bin/chromium) is not installed")

    shot = screenshot_module()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    log = ROOT / "test-artifacts" / log_name
    log.parent.mkdir(exist_ok=True)
    try:
        with shot.serve(log_path=log) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), args=shot.CHROMIUM_ARGS, headless=True
            )
            try:
                yield url, browser
            finally:
                browser.close()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
