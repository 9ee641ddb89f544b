"""AppTest: the Home page renders in both languages, links the existing pages, switches language."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_home_renders(app_test, lang):
    at = app_test(lang=lang)
    assert not at.exception
    assert at.title[0].value == "GenLab"
    heads = [h.value for h in at.subheader]
    assert ("How to use it" if lang == "en" else "使い方") in heads
    md = " ".join(m.value for m in at.markdown)
    assert ("Introduction to Generative Models" if lang == "en" else "生成モデル入門") in md
    assert at.get("plotly_chart"), "the data -> noise gallery figure"
    assert len(at.get("page_link")) >= 2  # Home and Distributions exist
    assert [m.label for m in at.metric][0] == ("Device" if lang == "en" else "デバイス")


def test_language_switch_and_presentation_mode(app_test):
    at = app_test()
    at.radio(key="_genlib_lang_widget").set_value("ja").run()
    assert not at.exception
    assert at.session_state["_genlib_lang"] == "ja"
    assert at.query_params.get("lang") == ["ja"] or at.query_params.get("lang") == "ja"
    assert "使い方" in [h.value for h in at.subheader]
    at.toggle(key="_genlib_present_widget").set_value(True).run()
    assert not at.exception
    assert any("font-size: 20px" in m.value for m in at.markdown)  # presentation CSS injected
    assert at.session_state["_genlib_present"] is True


def test_lang_query_param(app_test):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["lang"] = "ja"
    at.run()
    assert not at.exception
    assert at.session_state["_genlib_lang"] == "ja"
