"""Limits of a shared server (issue 13): the central bounds table, spec / model / target validation,
per-session job caps, the per-job compute budget, the wall-clock cap, the browser id of a session,
hostile links and the public-server config."""

from __future__ import annotations

import binascii
import math
import os
import time
from pathlib import Path

import pytest
import tomllib
import torch

from genlib import distributions, limits, models
from genlib.jobs import BudgetError, JobQueue, SessionLimitError, job_cost
from genlib.runs import RunSpec, TargetSpec

ROOT = Path(__file__).resolve().parents[1]
FAMILY = "autoregressive"  # the fastest family


def _spec(steps: int = 50, seed: int = 0, **kw) -> RunSpec:
    return RunSpec.from_preset(FAMILY, "moons", steps=steps, seed=seed, data_size=2000, **kw)


# --- the table and its checks -----------------------------------------------------------------


def test_check_int_refuses_what_is_not_an_integer_in_range():
    assert limits.check_int("hidden", 64) == 64
    assert limits.check_int("hidden", 64.0) == 64
    for bad in (1.5, True, "64", None, math.nan, math.inf, 0, 1025, 2**70):
        with pytest.raises(ValueError, match=r"hidden must be an integer in \[1, 1024\]"):
            limits.check_int("hidden", bad)


def test_check_float_refuses_non_finite_and_out_of_range():
    assert limits.check_float("x", 0.5, 0.0, 1.0) == 0.5
    for bad in (math.nan, math.inf, -math.inf, 1e308, "0.5", None, True):
        with pytest.raises(ValueError, match="x must be a finite number"):
            limits.check_float("x", bad, 0.0, 1.0)
    with pytest.raises(ValueError):
        limits.check_float("x", 0.0, 0.0, 1.0, open_lo=True)


def test_every_preset_fits_the_table():
    """The table never refuses what the app ships (all presets on all targets)."""
    for name in models.names():
        for preset in models.MODELS.get(name).presets:
            spec = RunSpec.from_preset(name, "moons", preset=preset)
            for k, v in spec.model_params:
                if k in limits.SIZE_LIMITS and v is not None:
                    lo, hi = limits.SIZE_LIMITS[k]
                    assert lo <= v <= hi, (name, preset, k, v)


# --- RunSpec / TargetSpec ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"steps": 1.5}, "steps must be an integer"),
        ({"seed": 2**70}, "seed must be an integer"),
        ({"seed": -1}, "seed must be an integer"),
        ({"lr_decay": "yes"}, "lr_decay must be true or false"),
        ({"lr": math.nan}, "lr"),
        ({"ema": math.inf}, "ema"),
        ({"batch_size": "abc"}, "invalid training option"),
        ({"model_overrides": {"hidden": 30000}}, r"hidden must be an integer in \[1, 1024\]"),
        ({"model_overrides": {"depth": 2000}}, r"depth must be an integer in \[1, 8\]"),
        ({"model_overrides": {"foo": 1}}, "unknown autoregressive parameter 'foo'"),
        ({"model_overrides": {"hidden": "abc"}}, "hidden must be an integer"),
        ({"model_overrides": {"init_spread": math.nan}}, "init_spread must be finite"),
    ],
)
def test_runspec_refuses_absurd_values_with_one_line(kw, msg):
    with pytest.raises(ValueError, match=msg) as exc:
        _spec(**kw)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "model, params, msg",
    [
        ("ddpm", {"hidden": 30000}, "hidden"),
        ("ddpm", {"depth": 2000}, "depth"),
        ("ddpm", {"T": 4000}, "T must be"),
        ("ddpm", {"activation": "nope"}, "activation must be one of"),
        ("ddpm", {"schedule": 3}, "schedule must be one of"),
        ("ncsn", {"hidden": 30000}, "hidden"),
        ("ncsn", {"embed_dim": 10**6}, "embed_dim"),
        ("ncsn", {"num_levels": 5000}, "num_levels"),
        ("score_matching", {"hidden": 30000}, "hidden"),
        ("score_matching", {"depth": 2000}, "depth"),
        ("sde", {"hidden": 30000}, "hidden"),
    ],
)
def test_model_sizes_are_capped_in_spec_and_constructor(model, params, msg):
    """The spec refuses the size, and so does the constructor itself (API users who skip the
    spec): nothing is allocated (hidden=30000 used to take 4 GB)."""
    with pytest.raises(ValueError, match=msg):
        RunSpec.from_preset(model, "moons", model_overrides=params)
    with pytest.raises((ValueError, KeyError)):
        models.build(model, **params)


@pytest.mark.parametrize(
    "name, params",
    [
        ("two_peaks", {"std": math.nan}),
        ("two_peaks", {"std": math.inf}),
        ("two_peaks", {"std": -1.0}),
        ("two_peaks", {"std": 0.0}),
        ("two_peaks", {"std": 1e308}),
        ("two_peaks", {"distance": 1e308}),
        ("two_peaks", {"weight": math.nan}),
        ("pinwheel", {"radial_std": 1e-300}),
        ("pinwheel", {"num_classes": math.inf}),
        ("far_mixture", {"weight": math.nan}),
        ("custom_gmm", {"points": [[1.0, 2.0, 3.0]]}),
        ("custom_gmm", {"points": [[1.0, math.nan]]}),
        ("moons", {"noise": 1e-300}),
        ("banana", {"std1": 1e308}),
        ("circles", {"radii": [1e308]}),
        ("8gaussians", {"radius": math.inf}),
        ("rings", {"std": -1}),
    ],
)
def test_absurd_target_parameters_are_refused_clearly(name, params):
    """ValueError with one line, never an OverflowError / ZeroDivisionError or NaN samples."""
    with pytest.raises(ValueError) as exc:
        distributions.build(name, **params)
        TargetSpec(name, tuple(params.items())).build()
    assert "\n" not in str(exc.value)


def test_valid_targets_still_give_finite_samples():
    for name in distributions.names():
        x = distributions.build(name).sample(200, generator=torch.Generator().manual_seed(0))
        assert x.shape == (200, 2) and bool(torch.isfinite(x).all())


def test_sample_counts_are_bounded():
    with pytest.raises(ValueError, match="sample count"):
        distributions.build("two_peaks").sample(limits.MAX_SAMPLES + 1)
    with pytest.raises(ValueError, match="sample count"):
        distributions.build("moons").sample(1.5)


# --- the job queue: per-session caps, budget, wall-clock cap -----------------------------------


@pytest.fixture
def queue():
    made: list[JobQueue] = []

    def make(workers: int = 2, **kw) -> JobQueue:
        q = JobQueue(workers, use_cache=False, **kw)
        made.append(q)
        return q

    yield make
    for q in made:
        q.shutdown()


def test_one_job_per_session_and_a_second_tab_takes_no_second_slot(queue):
    q = queue(2, per_session=1)
    a = q.submit(_spec(20_000, seed=1), watcher="browser-A")
    # the same user's second tab (same browser id) asks for another model: refused
    with pytest.raises(SessionLimitError, match="already has 1 training"):
        q.submit(_spec(20_000, seed=2), watcher="browser-A")
    # ... and attaching to the job it already runs is free
    assert q.submit(_spec(20_000, seed=1), watcher="browser-A") is a
    # another user gets the second slot; attaching to someone else's job takes no slot either
    b = q.submit(_spec(20_000, seed=3), watcher="browser-B")
    assert q.submit(_spec(20_000, seed=1), watcher="browser-B") is a
    a.stop()
    assert a.wait(10)
    c = q.submit(_spec(50, seed=2), watcher="browser-A")  # its slot is free again
    b.stop()
    assert c.wait(30) and c.state == "done"


def test_a_group_counts_as_one_slot_and_runs_in_turn(queue):
    """One click that queues several models (the Leaderboard) is one slot of its session; its
    jobs run one after another, so another user's job is not queued behind all of them."""
    q = queue(2, per_session=1)
    batch = [q.submit(_spec(3000, seed=s), "browser-A", group="lb") for s in range(3)]
    other = q.submit(_spec(50, seed=9), "browser-B")
    with pytest.raises(SessionLimitError):
        q.submit(_spec(50, seed=10), "browser-A")  # another submission of A: refused
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and batch[0].state == "queued":
        time.sleep(0.02)
    assert sum(j.state == "running" for j in batch) <= 1  # A's jobs take one worker
    assert other.wait(30) and other.state == "done"  # B was served while A's batch ran
    for j in batch:
        j.stop()


def test_budget_refuses_a_huge_job_before_it_starts(queue):
    q = queue(1, budget=1e6)
    huge = _spec(100_000, batch_size=65_536)
    assert job_cost(huge) == 100_000 * 65_536
    with pytest.raises(BudgetError, match="at most 1e\\+06") as exc:
        q.submit(huge, watcher="s")
    assert exc.value.cost > exc.value.budget
    assert q.stats()["queued"] == 0 and q.stats()["kept"] == 0
    wide = RunSpec.from_preset("ddpm", "moons", steps=1000, batch_size=512,
                               model_overrides={"hidden": 1024})  # fmt: skip
    assert job_cost(wide) == 1000 * 512 * 8  # width counts: 1024 / 128


def test_wall_clock_cap_stops_a_job_and_keeps_its_model(queue):
    q = queue(1, max_seconds=1.0, idle_timeout_s=60)
    j = q.submit(_spec(1_000_000 // 10), watcher="s")
    assert j.wait(20)
    assert j.state == "stopped" and j.stop_reason == "limit"
    res = j.result
    assert res is not None and res.result.steps_done > 0
    assert "at most 1 s" in res.result.message
    assert all(bool(torch.isfinite(p).all()) for p in res.model.parameters())


def test_default_queue_reads_the_limits_from_the_environment(monkeypatch):
    from genlib import jobs

    monkeypatch.setenv("GENLIB_JOBS_PER_SESSION", "3")
    monkeypatch.setenv("GENLIB_JOB_BUDGET", "12345")
    monkeypatch.setenv("GENLIB_JOB_MAX_S", "77")
    jobs.reset_default_queue()
    try:
        q = jobs.default_queue()
        assert (q.per_session, q.budget, q.max_seconds) == (3, 12345.0, 77.0)
    finally:
        jobs.reset_default_queue()


# --- the browser id: tabs of one browser are one user ------------------------------------------


def test_browser_id_is_shared_by_the_tabs_of_one_browser(monkeypatch):
    """Streamlit's XSRF cookie is ``2|mask|token XOR mask|time``: the mask changes with every
    response (and so per tab), the token does not; the id hashes the token."""
    from genlib.ui import live

    token = os.urandom(16)

    def cookie(mask: bytes) -> str:
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(token))
        return f"2|{binascii.b2a_hex(mask).decode()}|{binascii.b2a_hex(masked).decode()}|1700000000"

    ids = []
    for mask in (b"\x01\x02\x03\x04", b"\xff\x00\xaa\x55"):
        monkeypatch.setattr(live.st, "context", type("C", (), {"cookies": {live.XSRF_COOKIE: cookie(mask)}})())  # fmt: skip
        ids.append(live.watcher_id())
    assert ids[0] == ids[1] and ids[0].startswith("browser-")
    other = bytes(b ^ 1 for b in token)
    monkeypatch.setattr(live.st, "context", type("C", (), {"cookies": {live.XSRF_COOKIE: "2|00000000|" + binascii.b2a_hex(other).decode() + "|1"}})())  # fmt: skip
    assert live.watcher_id() != ids[0]
    monkeypatch.setattr(live.st, "context", type("C", (), {"cookies": {live.XSRF_COOKIE: "2|zz|qq|1"}})())  # fmt: skip
    assert live.watcher_id() == "anon"  # unreadable cookie, no session: not a crash


# --- pages: messages, hostile links, the public config -----------------------------------------


def test_page_says_when_a_job_is_over_the_budget(app_test, monkeypatch):
    monkeypatch.setenv("GENLIB_JOB_BUDGET", "1000")
    at = app_test(page="pages/ddpm.py")
    at.button(key="ddpm_train").click().run()
    assert not at.exception
    assert any("too large for the shared server" in e.value for e in at.error)
    assert not at.get("progress")


def test_page_says_when_the_session_already_trains(app_test):
    """A second training of the same session (here: another seed, while the first one runs) is
    refused with a message; the first keeps running."""
    from genlib.jobs import default_queue

    at = app_test(page="pages/autoregressive.py")
    at.number_input(key="autoregressive_steps").set_value(100_000)
    at.button(key="autoregressive_apply").click().run()
    at.button(key="autoregressive_train").click().run()
    assert not at.exception and at.get("progress")
    (first,) = [j for j in default_queue()._jobs.values() if j.active]
    owner = first.owner
    other = RunSpec.from_preset("vae", "moons", steps=50)
    with pytest.raises(SessionLimitError):
        default_queue().submit(other, watcher=owner)
    at.session_state["_genlib_jobs"] = {}  # as a second tab of the same browser: no job shown
    at.run()
    at.number_input(key="autoregressive_seed").set_value(5)
    at.button(key="autoregressive_apply").click().run()
    at.button(key="autoregressive_train").click().run()
    assert not at.exception
    assert any("already have 1 training" in e.value for e in at.error)
    assert first.active
    first.stop()


def test_hostile_link_falls_back_to_defaults(app_url):
    query = {
        "ddpm_steps": "1e12",
        "ddpm_batch": "65536000",
        "ddpm_seed": str(2**70),
        "ddpm_lr": "nan",
        "ddpm_T": "4000",
        "ddpm_target": "<script>alert(1)</script>",
        "ddpm_preset": "x" * 5000,
    }
    at = app_url("pages/ddpm.py", query)
    assert not at.exception
    assert at.number_input(key="ddpm_steps").value <= 100_000
    assert at.number_input(key="ddpm_seed").value == 0
    assert math.isfinite(at.number_input(key="ddpm_lr").value)
    assert at.select_slider(key="ddpm_T").value in (10, 20, 50, 100, 200, 500, 1000)
    assert at.selectbox(key="ddpm_target").value in distributions.names()


def test_public_server_config_hides_tracebacks():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["client"]["showErrorDetails"] in ("type", "none")
    assert cfg["server"]["enableXsrfProtection"] is True
    assert 1 <= cfg["server"]["maxUploadSize"] <= 16
