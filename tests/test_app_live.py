"""AppTest of the live training panel: Train returns at once (the script never waits for the
job), the job finishes over reruns, and Stop leaves a labelled, usable partial model."""

from __future__ import annotations

import time

PAGE = "pages/autoregressive.py"
P = "autoregressive"


def _train(at, steps: int):
    at.number_input(key=f"{P}_steps").set_value(steps)
    at.number_input(key=f"{P}_seed").set_value(int(time.time()) % 100_000 + 17)  # a fresh spec
    at.button(key=f"{P}_apply").click().run()
    t0 = time.perf_counter()
    at.button(key=f"{P}_train").click().run()
    return time.perf_counter() - t0


def _texts(at) -> str:
    return " ".join(
        [e.value for e in at.info]
        + [e.value for e in at.success]
        + [e.value for e in at.warning]
        + [e.value for e in at.error]
    )


def test_train_returns_at_once_and_finishes_over_reruns(app_test):
    at = app_test(page=PAGE)
    elapsed = _train(at, 1500)
    assert not at.exception
    assert elapsed < 1.5, f"the Train click blocked the script for {elapsed:.1f} s"
    assert at.button(key=f"{P}_stop") is not None  # the live panel is up
    assert len(at.get("progress")) >= 1
    t0 = time.monotonic()
    while _has(at, f"{P}_stop"):
        assert time.monotonic() - t0 < 90
        time.sleep(0.5)
        at.run()
    at.run()
    assert not at.exception
    assert not _has(at, f"{P}_train") and not _has(at, f"{P}_stop")
    assert "No trained model" not in _texts(at)
    assert "Trained now" in _texts(at)
    assert at.get("plotly_chart")  # the result panels are on the page


def _has(at, key: str) -> bool:
    try:
        at.button(key=key)
        return True
    except KeyError:
        return False


def test_stop_keeps_a_stopped_result(app_test):
    at = app_test(page=PAGE)
    _train(at, 100_000)
    time.sleep(1.5)
    at.run()
    assert _has(at, f"{P}_stop")
    at.button(key=f"{P}_stop").click().run()
    t0 = time.monotonic()
    while _has(at, f"{P}_stop"):
        assert time.monotonic() - t0 < 10
        time.sleep(0.3)
        at.run()
    assert not at.exception
    text = _texts(at)
    assert "Stopped by you after" in text
    assert _has(at, f"{P}_retrain") and not _has(at, f"{P}_train")
    assert at.get("plotly_chart")  # panels of the partial model


def test_misconfigured_executor_gives_a_message_not_a_traceback(app_test, monkeypatch):
    """A mistyped ``GENLIB_EXECUTOR`` (an admin's error) stops a model page with a clear message."""
    from genlib.jobs import reset_default_queue

    monkeypatch.setenv("GENLIB_EXECUTOR", "rya")
    reset_default_queue()
    at = app_test(page="pages/gan.py")
    assert not at.exception, at.exception
    assert any("misconfigured" in e.value and "GENLIB_EXECUTOR" in e.value for e in at.error)
    monkeypatch.delenv("GENLIB_EXECUTOR")
    reset_default_queue()
