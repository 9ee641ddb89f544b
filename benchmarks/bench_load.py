"""Load test of a served GenLab: N browser users at once (headless Debian chromium via playwright).

    .venv/bin/python benchmarks/bench_load.py                 # N = 8 (CI)
    .venv/bin/python benchmarks/bench_load.py --users 4 --json out.json

Starts the app (``streamlit run app.py``, its own process group, a private ``GENLIB_CACHE``,
``GENLIB_MAX_TRAININGS=2``) and stops it by PID at the end. Phases:

1. **baseline**: one user opens a model page alone (median of 3 loads): the page time unloaded;
2. **viewers**: N users open N different model pages at the same moment (a fresh server: every
   page's first evaluation, figures and caches at once); page times and the server's peak RSS;
3. **train**: N users press Train at once on the Autoregressive page (distinct seeds): all are
   served through the queue, none is refused, every job finishes; whether any "busy" text showed;
4. **delay**: one user runs the largest job the per-job budget allows (the DDPM page's longest
   allowed run) while another user opens pages: their median page time against the baseline
   (target: at most 2x).

Prints one table (page time p50 / p95 / max, peak server RSS = the server's process tree from
/proc, busy messages) and optionally writes it as JSON. Targets on the 2-core lab machine: 8
viewers peak under 1.5 GB RSS; the delay ratio at most 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip
#: model pages and their titles (h1), opened one per viewer
PAGES = [
    ("ddpm", "DDPM"),
    ("vae", "VAE"),
    ("flow", "Normalizing"),
    ("gan", "GAN"),
    ("ncsn", "NCSN"),
    ("score_matching", "Score"),
    ("flow_matching", "Flow Matching"),
    ("autoregressive", "Autoregressive"),
    ("sde", "SDE"),
    ("rbm", "RBM"),
]
BUSY = ("busy", "混雑")


# --- the server and its memory ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{d}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def _rss(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    """``streamlit run app.py`` in its own process group; RSS of its process tree sampled every
    0.2 s (``peak(reset=True)`` reads and restarts the peak)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="genlab-load-")
        full = {**os.environ, "GENLIB_THREADS": "1", "OMP_NUM_THREADS": "1",
                "GENLIB_CACHE": self._tmp.name, **env}  # fmt: skip
        cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
               "--server.headless", "true", "--server.address", "127.0.0.1",
               "--server.port", str(self.port), "--browser.gatherUsageStats", "false"]  # fmt: skip
        self._log = open(Path(self._tmp.name) / "server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=full, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self._peak = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not become healthy")
            time.sleep(0.5)
        self._sampler.start()

    def rss(self) -> int:
        return sum(_rss(p) for p in _tree(self.proc.pid))

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self.rss())
            time.sleep(0.2)

    def peak(self, reset: bool = False) -> int:
        value = max(self._peak, self.rss())
        if reset:
            self._peak = 0
        return value

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()
        self._tmp.cleanup()


# --- browser users ----------------------------------------------------------------------------


async def settle(page, timeout_ms: int = 180_000) -> None:
    """Wait until the page's script run has finished (Streamlit's running indicator is gone)."""
    await page.wait_for_timeout(400)
    with contextlib.suppress(Exception):
        await page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached",
                                     timeout=timeout_ms)  # fmt: skip


async def open_page(browser, url: str, path: str, title: str) -> tuple[object, object, float]:
    """A new user (context) opens ``path``; returns (context, page, seconds until the page's
    script run finished)."""
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(180_000)  # a loaded 2-core machine: clicks and fills may wait long
    page = await ctx.new_page()
    t0 = time.perf_counter()
    await page.goto(f"{url}/{path}", wait_until="domcontentloaded", timeout=180_000)
    await page.wait_for_selector(f'h1:has-text("{title}")', timeout=180_000)
    await settle(page)
    return ctx, page, time.perf_counter() - t0


async def reload_time(page, title: str) -> float:
    t0 = time.perf_counter()
    await page.reload(wait_until="domcontentloaded", timeout=180_000)
    await page.wait_for_selector(f'h1:has-text("{title}")', timeout=180_000)
    await settle(page)
    return time.perf_counter() - t0


async def body(page) -> str:
    with contextlib.suppress(Exception):
        return await page.locator("[data-testid='stMain']").first.inner_text(timeout=10_000)
    return ""


async def set_form(page, steps: int, seed: int, batch: int | None = None) -> None:
    await settle(page)
    form = page.get_by_test_id("stForm").first
    await form.get_by_label("Training steps", exact=True).wait_for(timeout=180_000)
    await form.get_by_label("Training steps", exact=True).fill(str(steps))
    await form.get_by_label("Seed", exact=True).fill(str(seed))
    if batch is not None:
        await form.get_by_label("Batch size", exact=True).fill(str(batch))
    await form.get_by_role("button", name="Apply").click()
    await settle(page)


async def click_train(page) -> bool:
    """Click Train until the job shows (running or queued); False if the page refused it."""
    for _ in range(4):
        await settle(page)
        button = page.get_by_role("button", name="Train", exact=True)
        if await button.count():
            with contextlib.suppress(Exception):
                await button.click(timeout=10_000)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (
                await page.get_by_role("button", name="Stop").count()
                or await page.get_by_text("Queued: place").count()
            ):
                return True
            if await page.get_by_text("Trained now").count():
                return True
            await page.wait_for_timeout(250)
    return False


def note(out: dict[str, object], **kw: object) -> None:
    """Record results and print them at once (a long run shows its phases as they end)."""
    out.update(kw)
    print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items()),
          file=sys.stderr, flush=True)  # fmt: skip


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    i = min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))
    return xs[i]


async def run(users: int, train_steps: int, delay_s: float) -> dict[str, object]:
    from playwright.async_api import async_playwright

    out: dict[str, object] = {"users": users}
    server = Server({"GENLIB_MAX_TRAININGS": "2", "GENLIB_JOB_IDLE_S": "60"})
    try:
        server.wait_healthy()
        out["rss_idle_mb"] = server.rss() / 2**20
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                               headless=True)  # fmt: skip
            # 1. baseline: one user, one page (warm the imports first, then 3 timed loads)
            ctx, page, _ = await open_page(browser, server.url, "autoregressive", "Autoregressive")
            base = [await reload_time(page, "Autoregressive") for _ in range(3)]
            await ctx.close()
            note(out, baseline_page_s=statistics.median(base))
            server.peak(reset=True)

            # 2. viewers: N users open N different pages at once
            chosen = [PAGES[i % len(PAGES)] for i in range(users)]
            t0 = time.perf_counter()
            opened = await asyncio.gather(
                *(open_page(browser, server.url, p, t) for p, t in chosen)
            )
            times = [s for _, _, s in opened]
            note(out, viewers_wall_s=time.perf_counter() - t0, viewers_page_p50_s=pct(times, 0.5),
                 viewers_page_p95_s=pct(times, 0.95), viewers_page_max_s=max(times),
                 viewers_peak_rss_mb=server.peak(reset=True) / 2**20)  # fmt: skip
            texts = [await body(p) for _, p, _ in opened]
            busy = any(b in t for t in texts for b in BUSY)
            for c, _, _ in opened:
                await c.close()

            # 3. train: N users press Train at once (distinct seeds) through the queue
            opened = await asyncio.gather(
                *(open_page(browser, server.url, "autoregressive", "Autoregressive")
                  for _ in range(users))
            )  # fmt: skip
            await asyncio.gather(*(set_form(p, train_steps, 4200 + i)
                                   for i, (_, p, _) in enumerate(opened)))  # fmt: skip
            t0 = time.perf_counter()
            started = await asyncio.gather(*(click_train(p) for _, p, _ in opened))
            out["train_accepted"] = sum(started)
            done = [False] * users
            deadline = time.monotonic() + 900
            while not all(done) and time.monotonic() < deadline:
                for i, (_, p, _) in enumerate(opened):
                    if not done[i]:
                        text = await body(p)
                        busy = busy or any(b in text for b in BUSY)
                        done[i] = "Trained now" in text or "Loaded from" in text
                await asyncio.sleep(1.0)
            note(out, train_accepted=sum(started), train_finished=sum(done),
                 train_wall_s=time.perf_counter() - t0,
                 train_peak_rss_mb=server.peak(reset=True) / 2**20)  # fmt: skip
            for c, _, _ in opened:
                await c.close()

            # 4. delay: the largest allowed job of one user vs. another user's page time
            hog_ctx, hog, _ = await open_page(browser, server.url, "ddpm", "DDPM")
            await set_form(hog, 100_000, 31, batch=1000)  # 1e8 sample-steps: the budget
            hog_ok = await click_train(hog)
            out["delay_hog_running"] = hog_ok and "too large" not in await body(hog)
            ctx, page, _ = await open_page(browser, server.url, "autoregressive", "Autoregressive")
            loaded = []
            t_end = time.monotonic() + delay_s
            while time.monotonic() < t_end or len(loaded) < 3:
                loaded.append(await reload_time(page, "Autoregressive"))
                if len(loaded) >= 8:
                    break
            note(out, delay_hog_running=out["delay_hog_running"],
                 delay_page_s=statistics.median(loaded),
                 delay_ratio=statistics.median(loaded) / out["baseline_page_s"],
                 delay_peak_rss_mb=server.peak(reset=True) / 2**20)  # fmt: skip
            with contextlib.suppress(Exception):
                await hog.get_by_role("button", name="Stop").first.click(timeout=5_000)
            await ctx.close()
            await hog_ctx.close()
            out["busy_message_seen"] = busy
            await browser.close()
    finally:
        server.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=8, help="browser users (contexts), default 8")
    ap.add_argument("--train-steps", type=int, default=400, help="steps of each user's training")
    ap.add_argument("--delay-s", type=float, default=20.0, help="seconds of phase 4")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} not found", file=sys.stderr)
        return 2
    res = asyncio.run(run(max(1, a.users), a.train_steps, a.delay_s))
    rows = [
        ("users", f"{res['users']}"),
        ("server RSS idle", f"{res['rss_idle_mb']:.0f} MB"),
        ("page time alone (median of 3)", f"{res['baseline_page_s']:.2f} s"),
        (f"{res['users']} viewers at once: page p50 / p95 / max",
         f"{res['viewers_page_p50_s']:.1f} / {res['viewers_page_p95_s']:.1f} / "
         f"{res['viewers_page_max_s']:.1f} s"),
        (f"{res['users']} viewers at once: peak server RSS (target < 1536 MB)",
         f"{res['viewers_peak_rss_mb']:.0f} MB"),
        (f"{res['users']} trainings at once: accepted / finished",
         f"{res['train_accepted']} / {res['train_finished']} in {res['train_wall_s']:.0f} s"),
        ("trainings: peak server RSS", f"{res['train_peak_rss_mb']:.0f} MB"),
        ("largest allowed job running", str(res["delay_hog_running"])),
        ("another user's page time meanwhile (median)", f"{res['delay_page_s']:.2f} s"),
        ("delay ratio (target <= 2)", f"{res['delay_ratio']:.2f}"),
        ("any 'busy' message", str(res["busy_message_seen"])),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
