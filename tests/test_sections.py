"""Lazy sections (issue 12): the sections below a page's main figures (fields, proofs, the forward
process, theory, the loss curve) are expanders whose content is computed and sent only while they
are open. A visitor's first view carries none of them; opening one (a click, a link's
``?{page}_sec_{name}=true``, or the sidebar's ``open_all``) computes and draws it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent  # (not from tests.conftest: a second import of it
# would give this process a second GENLIB_CACHE)

SHIPPED = str(ROOT / "assets" / "pretrained")  # the page at its defaults shows a shipped preset
PAGE = "pages/ddpm.py"
SECTION_CHARTS = {"ddpm_bound_fig", "ddpm_nfe_fig", "ddpm_forward_fig"}


def expander_labels(at) -> list[str]:
    return [e.label for e in at.expander]


@pytest.fixture(scope="module")
def closed_and_open():
    """The DDPM page as a visitor first sees it, and with every section open (one AppTest each)."""
    from streamlit.testing.v1 import AppTest

    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLIB_PRETRAINED", SHIPPED)
        for open_all in (False, True):
            out[open_all] = _page(AppTest, open_all)
    yield out
    from genlib.ui.proofs_diffusion import sde_preset_nll

    sde_preset_nll.clear()  # the bound panel looked the shipped SDE preset up


def _page(AppTest, open_all: bool):  # noqa: N803
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["_genlib_lang"] = "en"
    at.session_state["open_all"] = open_all
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def shipped(monkeypatch):
    monkeypatch.setenv("GENLIB_PRETRAINED", SHIPPED)


def test_closed_sections_send_no_figures_and_no_equations(closed_and_open, chart_keys):
    closed, opened = closed_and_open[False], closed_and_open[True]
    shut, every = chart_keys(closed), chart_keys(opened)
    assert SECTION_CHARTS <= every, every
    assert not (SECTION_CHARTS & shut), shut
    assert shut < every  # the main figures stay; only the sections' figures are left out
    assert "ddpm_traj_fig" in shut and "ddpm_sched_fig" in shut
    assert len(closed.get("latex")) == 0 < len(opened.get("latex"))  # the theory's equations
    # every section is still there to open, closed
    for label in ("Theory", "Samplers vs the number", "Forward diffusion", "The variational bound"):
        assert any(label in x for x in expander_labels(closed)), expander_labels(closed)
    assert all(not e.proto.expanded for e in closed.expander if "_sec_" in e.proto.id)


def test_opening_one_section_computes_only_that_one(app_test, chart_keys, monkeypatch, shipped):
    import genlib.ui.proofs_diffusion as pd_

    calls = {"bound": 0, "nfe": 0}
    real_bound, real_nfe = pd_.trained_bound_view, pd_.trained_ddpm_nfe

    def counted_bound(*a, **kw):
        calls["bound"] += 1
        return real_bound(*a, **kw)

    def counted_nfe(*a, **kw):
        calls["nfe"] += 1
        return real_nfe(*a, **kw)

    monkeypatch.setattr(pd_, "trained_bound_view", counted_bound)
    monkeypatch.setattr(pd_, "trained_ddpm_nfe", counted_nfe)
    at = app_test(page=PAGE, open_all=False)
    assert not at.exception, at.exception
    assert calls == {"bound": 0, "nfe": 0}  # closed sections cost no server work
    at.session_state["ddpm_sec_bound"] = True  # what a click on the expander sets
    at.run()
    assert not at.exception, at.exception
    keys = chart_keys(at)
    assert "ddpm_bound_fig" in keys and "ddpm_nfe_fig" not in keys
    assert calls["bound"] >= 1 and calls["nfe"] == 0  # (a new function: a cache miss)


def test_a_link_opens_a_section(app_url, chart_keys, shipped):
    at = app_url(PAGE, {"ddpm_sec_nfe": "true"}, open_all=False)
    assert not at.exception, at.exception
    keys = chart_keys(at)
    assert "ddpm_nfe_fig" in keys and "ddpm_bound_fig" not in keys


def test_the_sidebar_toggle_opens_every_section(app_test, chart_keys, shipped):
    at = app_test(page=PAGE, open_all=False)
    assert not (SECTION_CHARTS & chart_keys(at))
    at.toggle(key="open_all").set_value(True).run()
    assert not at.exception, at.exception
    assert SECTION_CHARTS <= chart_keys(at)
    assert len(at.get("latex")) > 0
    at.run()  # and they stay open on the next rerun
    assert SECTION_CHARTS <= chart_keys(at)
    at.toggle(key="open_all").set_value(False).run()  # turning it off closes them again
    assert not at.exception, at.exception
    assert not (SECTION_CHARTS & chart_keys(at))


def _relabelled_section():
    import streamlit as st

    from genlib.ui.layout import section

    title = "Field" if st.session_state.get("lang") != "ja" else "場"  # the label changes
    with section("pg", "field", title) as shown:
        st.markdown(f"shown={shown}")


def test_an_open_section_stays_open_when_its_label_changes():
    """Streamlit derives an expander's element id from its label too: a new language (or a label
    with a count) would draw a new, closed expander; ``section`` pins the state to its key."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_relabelled_section, default_timeout=30)
    at.run()
    assert [m.value for m in at.markdown] == ["shown=False"]
    at.session_state["pg_sec_field"] = True  # a click
    at.run()
    assert [m.value for m in at.markdown] == ["shown=True"]
    at.session_state["lang"] = "ja"
    at.run()
    assert at.expander[0].label == "場" and [m.value for m in at.markdown] == ["shown=True"]
    at.run()
    assert [m.value for m in at.markdown] == ["shown=True"]


@pytest.mark.parametrize("value", ["maybe", "<script>", "1" * 500])
def test_a_hostile_section_value_falls_back_to_closed(app_url, chart_keys, shipped, value):
    at = app_url(PAGE, {"ddpm_sec_bound": value, "open_all": value})
    assert not at.exception, at.exception
    assert not (SECTION_CHARTS & chart_keys(at))
