"""Shared test setup: every test session gets its own checkpoint cache directory (``GENLIB_CACHE``)
and one torch thread (``GENLIB_THREADS=1``), set before anything imports genlib."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_CACHE = tempfile.mkdtemp(prefix="genlab-test-cache-")
os.environ["GENLIB_CACHE"] = _CACHE
# hermetic by default: the shipped presets in assets/pretrained are tested on their own
# (tests/test_pretrained.py); pages under test start from an empty pretrained folder
_PRETRAINED = tempfile.mkdtemp(prefix="genlab-test-pretrained-")
os.environ["GENLIB_PRETRAINED"] = _PRETRAINED
os.environ.setdefault("GENLIB_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GENLIB_LANG", "en")


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)
    shutil.rmtree(_PRETRAINED, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_server_state():
    """Each test starts like a fresh server: no checkpoints loaded in memory and no jobs (the
    process-wide caches would otherwise carry results from one test into the next)."""
    yield
    from genlib.jobs import reset_default_queue
    from genlib.ui.live import forget_loaded
    from genlib.ui.proofs_diffusion import sde_preset_nll

    forget_loaded()
    reset_default_queue()
    sde_preset_nll.clear()  # it looks another preset up: a test with the shipped presets found it


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def genlib_cache() -> Path:
    """The session's checkpoint cache directory (``GENLIB_CACHE``)."""
    return Path(_CACHE)


@pytest.fixture
def app_test():
    """``app_test(lang="en", page=None, open_all=True)`` -> a run ``AppTest`` of ``app.py``
    (switched to ``page``, e.g. ``"pages/ddpm.py"``, and run again), in the given UI language,
    with every lazy section open (``open_all=False``: as a visitor first sees the page)."""
    from streamlit.testing.v1 import AppTest

    def make(
        lang: str = "en", page: str | None = None, timeout: float = 120, open_all: bool = True
    ):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
        at.session_state["_genlib_lang"] = lang
        at.session_state["open_all"] = open_all
        at.run()
        if page is not None:
            at.switch_page(page)
            at.run()
        return at

    return make


@pytest.fixture
def fast_preset_quality(tmp_path, monkeypatch):
    """``fast_preset_quality(model, target) -> (SW / noise floor, exact KL(p‖q))``: train the fast
    preset (seed 0, a private cache) and measure it, with the model's and the reference samples
    drawn from independent generators (seeded quality regression tests)."""
    import torch

    from genlib.metrics import exact_kl, noise_floor, sliced_wasserstein
    from genlib.runs import RunSpec, run

    def measure(model: str, target: str) -> tuple[float, float]:
        monkeypatch.setenv("GENLIB_CACHE", str(tmp_path))
        trained = run(RunSpec.from_preset(model, target, preset="fast", seed=0), use_cache=False)
        assert trained.result.status == "ok", trained.result.message
        m, p = trained.model, trained.target
        with torch.no_grad():
            x = m.sample(2000, generator=torch.Generator().manual_seed(1))
        y = p.sample(2000, generator=torch.Generator().manual_seed(2))
        sw = sliced_wasserstein(x, y, generator=torch.Generator().manual_seed(3))
        kl = exact_kl(
            p, lambda z: m.log_prob(z).detach(), n=2000, generator=torch.Generator().manual_seed(4)
        )
        return sw / noise_floor(p, 2000), kl["kl"]

    return measure


@pytest.fixture
def train_in_app():
    """``train_in_app(at, page_key, timeout=120)``: click ``{page_key}_train`` and rerun until the
    background job's live panel (its ``{page_key}_stop`` button) is gone, i.e. the result panels
    are on the page. Returns ``at``."""
    import time

    def has_stop(at, page_key: str) -> bool:
        return any(b.key == f"{page_key}_stop" for b in at.button)

    def train(at, page_key: str, timeout: float = 120):
        at.button(key=f"{page_key}_train").click().run()
        assert not at.exception, at.exception
        t0 = time.monotonic()
        while has_stop(at, page_key):
            assert time.monotonic() - t0 < timeout, f"{page_key}: training did not finish"
            time.sleep(0.3)
            at.run()
        assert not at.exception, at.exception
        return at

    return train


@pytest.fixture
def app_url():
    """``app_url(page, query, lang="en")`` -> a run ``AppTest`` of ``app.py`` opened with the
    query parameters ``query`` (a link such as ``/gan?gan_z_dim=3``) and switched to ``page``
    (every lazy section open unless ``open_all=False`` or the query sets ``open_all``)."""
    from streamlit.testing.v1 import AppTest

    def make(
        page: str, query: dict[str, str], lang: str = "en", timeout: float = 120,
        open_all: bool = True,
    ):  # fmt: skip
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
        at.session_state["_genlib_lang"] = lang
        if "open_all" not in query:
            at.session_state["open_all"] = open_all
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        at.switch_page(page)
        at.run()
        return at

    return make


@pytest.fixture
def chart_keys():
    """``chart_keys(at)`` -> the user keys of the plotly charts on the page (the ``key`` of
    ``st.plotly_chart``; ``genlib.ui.figure(fig, name)`` uses ``fig_{name}``)."""

    def keys(at) -> set[str]:
        out = set()
        for c in at.get("plotly_chart"):
            cid = c.proto.id
            out.add(cid.split("-", 2)[-1] if cid.startswith("$$ID-") else cid)
        return out

    return keys
