"""Serve the app and screenshot a page with headless Debian chromium (for the README / tests).

    .venv/bin/python scripts/screenshot.py --page distributions --out assets/screenshot.png

Starts ``streamlit run app.py`` on a free local port (GENLIB_THREADS=1, a temporary GENLIB_CACHE
unless one is set), waits for /_stcore/health, opens the app with the pip ``playwright`` package
driving /usr/bin/chromium (never ``playwright install``), clicks the page in the sidebar, waits for
a Plotly chart and saves a screenshot. The server is stopped by its PID in every case.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    port: int | None = None, timeout: float = 90.0, log_path: Path | None = None
) -> Iterator[str]:
    """Run the app; yield its base URL; stop the server (its process group) afterwards."""
    port = port or free_port()
    env = dict(os.environ)
    env.setdefault("GENLIB_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    tmp = None
    if "GENLIB_CACHE" not in env:
        tmp = tempfile.TemporaryDirectory(prefix="genlab-serve-")
        env["GENLIB_CACHE"] = tmp.name
    log = open(log_path or os.devnull, "wb")  # noqa: SIM115
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the streamlit server did not become healthy")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()
        if tmp is not None:
            tmp.cleanup()


def screenshot(
    url: str,
    out: Path,
    page_title: str = "Distributions",
    *,
    width: int = 1440,
    height: int = 1000,
    full_page: bool = False,
    timeout_ms: int = 120_000,
    query: str = "",
    scroll_to: str | None = None,
    export_png_to: Path | None = None,
) -> dict:
    """Open the app, click ``page_title`` in the sidebar, wait for a Plotly chart, screenshot."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(
                viewport={"width": width, "height": height}, device_scale_factor=1
            )
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            try:
                return _drive(
                    page,
                    url,
                    out,
                    page_title,
                    full_page,
                    timeout_ms,
                    query,
                    errors,
                    scroll_to,
                    export_png_to,
                )
            except Exception:
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(out.with_suffix(".failed.png")))
                raise
        finally:
            browser.close()


def _drive(
    page,
    url: str,
    out: Path,
    page_title: str,
    full_page: bool,
    timeout_ms: int,
    query: str,
    errors: list[str],
    scroll_to: str | None = None,
    export_png_to: Path | None = None,
) -> dict:
    page.goto(url + "/" + query, wait_until="domcontentloaded", timeout=timeout_ms)
    # the entrypoint's st.navigation replaces the initial file-based nav: wait for its link
    nav = page.locator('[data-testid="stSidebarNav"]')
    link = nav.get_by_role("link", name=page_title, exact=True).first
    link.wait_for(state="visible", timeout=timeout_ms)
    link.click()
    page.wait_for_selector(f'h1:has-text("{page_title}")', timeout=timeout_ms)
    # a chart, or a Streamlit exception box (reported at once instead of waiting for the timeout)
    page.locator(".js-plotly-plot >> visible=true").or_(
        page.locator('[data-testid="stException"]')
    ).first.wait_for(timeout=timeout_ms)
    exc = page.locator('[data-testid="stException"]')
    if exc.count():
        raise RuntimeError("the page raised: " + exc.first.inner_text()[:2000])
    # let the charts draw and the script run finish
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", timeout=timeout_ms
    )
    with contextlib.suppress(Exception):
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=30_000)
    if scroll_to:
        target = page.get_by_text(scroll_to, exact=True).first
        target.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(out), full_page=full_page)
    n_plots = page.locator(".js-plotly-plot").count()
    title = page.locator("h1").first.inner_text()
    info = {"plots": n_plots, "title": title, "url": page.url, "errors": errors}
    if export_png_to is not None:  # the lazy PNG export of the first figure (kaleido on the server)
        page.get_by_role("button", name="Export").first.click()
        with page.expect_download(timeout=timeout_ms) as dl:
            page.get_by_role("button", name="PNG", exact=True).first.click()
        dl.value.save_as(str(export_png_to))
        info["export"] = str(export_png_to)
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--page", default="Distributions", help="sidebar link text of the page")
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "screenshot.png")
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=1000)
    ap.add_argument("--full-page", action="store_true")
    ap.add_argument(
        "--scroll-to", default=None, help="scroll this exact text (e.g. a heading) into view"
    )
    ap.add_argument("--lang", choices=["en", "ja"], default="en")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} not found (apt-get install chromium)", file=sys.stderr)
        return 2
    with serve() as url:
        info = screenshot(
            url, args.out, args.page, width=args.width, height=args.height, full_page=args.full_page,
            query=f"?lang={args.lang}", scroll_to=args.scroll_to,
        )  # fmt: skip
    print(f"saved {args.out} ({info['plots']} plots, page {info['title']!r})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
