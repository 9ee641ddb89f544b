"""Page times in headless Chromium: every page at its defaults, for the first visitor of a fresh
server and for a later one, and the extra time a page needs after a training (evaluation, panels).

    python benchmarks/bench_pages.py                          # all pages, first + later visitor
    python benchmarks/bench_pages.py --pages ddpm leaderboard --later 3
    python benchmarks/bench_pages.py --train ddpm flow_matching --train-steps 300
    python benchmarks/bench_pages.py --markdown pages.md      # also write the table

The app is served by ``streamlit run app.py`` on a free port (its own process group, stopped by
its id at the end) with a private, empty ``GENLIB_CACHE`` and the shipped presets
(``assets/pretrained``). A page's time runs from ``page.goto`` until the script went idle (the
app root's ``data-test-script-state`` is ``notRunning`` after the page's title showed, and stays
so for ``--settle`` seconds); "shown" is the time until its title is visible (what the visitor
sees first). "server CPU" is the CPU time the server process spent on the visit (from
/proc/<pid>/stat): on a busy machine it is the figure to compare, wall times are not. The first visitor of each page is the first request of that page on the fresh server
(its caches empty); "later" is the best of ``--later`` visits in fresh browser contexts (new
sessions, warm server caches). "after training": the time from the end of a short training
(the Stop button gone) until the page is idle with its results (evaluation + panels).
Needs the pip ``playwright`` package and Debian's ``/usr/bin/chromium``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu"]
IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const h1 = document.querySelector('h1');
  return !!app && !!h1 && app.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-testid="stStatusWidget"]');
}"""


def pages() -> list[tuple[str, str]]:
    """(url path, page stem) of every page that exists, in the sidebar's order."""
    import ast

    src = (ROOT / "genlib" / "ui" / "layout.py").read_text()
    node = next(
        n
        for n in ast.parse(src).body
        if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "PAGES"
    )
    out = []
    for _, path, _, _ in ast.literal_eval(node.value):
        if (ROOT / path).is_file():
            stem = Path(path).stem
            out.append(("" if stem == "home" else stem, stem))
    return out


def server_pid(url: str) -> int | None:
    """The pid of the streamlit process serving ``url`` (found by its port in /proc)."""
    port = url.rsplit(":", 1)[-1]
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            args = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(args) and port.encode() in args:
            return int(d.name)
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads); nan without one."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(page, settle: float, timeout: float) -> float:
    """Block until the script is idle for ``settle`` s; return the time it first went idle."""
    deadline = time.perf_counter() + timeout
    idle_since = None
    while time.perf_counter() < deadline:
        if page.evaluate(IDLE_JS):
            idle_since = idle_since or time.perf_counter()
            if time.perf_counter() - idle_since >= settle:
                return idle_since
        else:
            idle_since = None
        page.wait_for_timeout(50)
    raise TimeoutError("the page did not go idle")


def visit(
    browser, url: str, path: str, settle: float, timeout: float, pid: int | None = None
) -> tuple[float, float, float]:
    """(shown, idle, server CPU) seconds of one visit in a fresh context (a new session)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        c0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        page.goto(f"{url}/{path}", wait_until="domcontentloaded", timeout=timeout * 1000)
        page.wait_for_selector("h1", timeout=timeout * 1000)
        shown = time.perf_counter() - t0
        idle = wait_idle(page, settle, timeout) - t0
        cpu = cpu_seconds(pid) - c0
        if page.locator('[data-testid="stException"]').count():
            raise RuntimeError(f"{path}: the page raised an exception")
        return shown, idle, cpu
    finally:
        ctx.close()


def after_training(browser, url: str, path: str, steps: int, settle: float, timeout: float):
    """Seconds from the end of a ``steps``-step training to the idle page with its results."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.goto(f"{url}/{path}", wait_until="domcontentloaded", timeout=timeout * 1000)
        page.wait_for_selector("h1", timeout=timeout * 1000)
        wait_idle(page, settle, timeout)
        form = page.get_by_test_id("stForm").first
        form.get_by_label("Training steps", exact=True).fill(str(steps))
        form.get_by_label("Seed", exact=True).fill("4242")  # a seed with no shipped preset
        form.get_by_role("button", name="Apply").click()
        wait_idle(page, settle, timeout)
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_role("button", name="Stop").first.wait_for(timeout=timeout * 1000)
        page.get_by_role("button", name="Stop").first.wait_for(
            state="detached", timeout=timeout * 1000
        )
        t0 = time.perf_counter()
        return wait_idle(page, settle, timeout) - t0
    finally:
        ctx.close()


def load_serve(tree: Path):
    """``serve`` of ``tree``'s scripts/screenshot.py: serves that tree's app.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"shot_{abs(hash(tree))}", tree / "scripts" / "screenshot.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # a free port, its own process group, stopped by its id
    return mod.serve


def safe_visit(*args, **kw) -> tuple[float, float, float]:
    """``visit``, with nan times (and the error on stderr) when the page fails or times out."""
    try:
        return visit(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - one failing page must not lose the others
        print(f"{args[2] or 'home'}: {type(exc).__name__}: {exc}", file=sys.stderr)
        nan = float("nan")
        return nan, nan, nan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pages", nargs="*", default=None, help="page stems (default: all)")
    ap.add_argument("--later", type=int, default=2, help="later visits per page (best is kept)")
    ap.add_argument("--train", nargs="*", default=[], help="pages to time after a training")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument(
        "--before-tree",
        type=Path,
        default=None,
        help="an older source tree (git archive <commit> | tar -x -C DIR), served side by side: "
        "every visit is made on both servers, one after the other, so both see the same load",
    )
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    trees = [("after", ROOT)] + (
        [("before", args.before_tree.resolve())] if args.before_tree else []
    )
    todo = [(p, s) for p, s in pages() if args.pages is None or s in args.pages]
    rows: dict[str, dict[str, float]] = {}
    os.environ.setdefault("GENLIB_THREADS", "1")
    with contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        pids: dict[str, int | None] = {}
        for label, tree in trees:
            cache = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"genlab-{label}-"))
            os.environ["GENLIB_CACHE"] = cache  # private and empty; presets from assets/pretrained
            serve = load_serve(tree)
            urls[label] = stack.enter_context(serve(log_path=Path(cache) / "server.log"))
            pids[label] = server_pid(urls[label])
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        stack.callback(browser.close)
        for path, stem in todo:  # the first visitor of each page on each fresh server
            for label, _ in trees:
                shown, idle, cpu = safe_visit(
                    browser, urls[label], path, args.settle, args.timeout, pids[label]
                )
                rows.setdefault(stem, {}).update(
                    {f"shown_{label}": shown, f"first_{label}": idle, f"cpufirst_{label}": cpu}
                )
                print(
                    f"{stem} [{label}]: first {idle:.2f} s (shown {shown:.2f} s)", file=sys.stderr
                )
        for path, stem in todo:
            best: dict[str, float] = {}
            best_cpu: dict[str, float] = {}
            for _ in range(max(args.later, 1)):
                for label, _ in trees:
                    _, v, cpu = safe_visit(
                        browser, urls[label], path, args.settle, args.timeout, pids[label]
                    )
                    best[label] = min(best.get(label, float("inf")), v)  # nan-safe: nan < x
                    best_cpu[label] = min(best_cpu.get(label, float("inf")), cpu)
            for label, v in best.items():
                rows[stem][f"later_{label}"] = v
                rows[stem][f"cpulater_{label}"] = best_cpu[label]
            print(f"{stem}: later {best}", file=sys.stderr)
        for stem in args.train:
            path = "" if stem == "home" else stem
            for label, _ in trees:
                try:
                    extra = after_training(
                        browser, urls[label], path, args.train_steps, args.settle, args.timeout
                    )
                except Exception as exc:  # noqa: BLE001
                    print(f"{stem} [{label}] training: {exc}", file=sys.stderr)
                    extra = float("nan")
                rows.setdefault(stem, {})[f"train_{label}"] = extra
                print(f"{stem} [{label}]: after training {extra:.2f} s", file=sys.stderr)
    labels = [label for label, _ in trees]
    load = os.getloadavg()[0]
    lines = [
        f"Pages at defaults, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load average "
        f"{load:.1f} at the end ({'quiet' if load < 0.5 else 'NOT quiet'})",
        "",
    ]
    cols = ["shown", "first", "later", "cpufirst", "cpulater", "train"]
    names = {
        "shown": "shown",
        "first": "first visitor",
        "later": "later visitor",
        "cpufirst": "server CPU first",
        "cpulater": "server CPU later",
        "train": "after training",
    }
    head = ["page"] + [f"{names[c]} {lb} (s)" for c in cols for lb in labels]
    lines += ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for stem, r in rows.items():
        cells = [stem] + [
            f"{r[f'{c}_{lb}']:.2f}" if f"{c}_{lb}" in r else "–" for c in cols for lb in labels
        ]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
