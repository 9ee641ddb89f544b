"""AppTest: the Home page renders in both languages (models train on the server, not in the browser),
links the existing pages, switches language, opens from a link in Japanese or presentation mode."""

from __future__ import annotations

import pytest

from genlib.ui.layout import PRESENT_KEY


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_home_renders(app_test, lang):
    at = app_test(lang=lang)
    assert not at.exception
    assert at.title[0].value == "GenLab"
    heads = [h.value for h in at.subheader]
    assert ("How to use it" if lang == "en" else "使い方") in heads
    md = " ".join(m.value for m in at.markdown)
    assert ("Introduction to Generative Models" if lang == "en" else "生成モデル入門") in md
    assert ("on the server" if lang == "en" else "サーバー上で学習") in md
    assert "trained live in your browser" not in md
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
    at.toggle(key=PRESENT_KEY).set_value(True).run()
    assert not at.exception
    assert any("font-size: 20px" in m.value for m in at.markdown)  # presentation CSS injected
    assert at.session_state[PRESENT_KEY] is True


def test_lang_query_param(repo_root):
    from streamlit.testing.v1 import AppTest

    # (repo_root, not ``from tests.conftest import ROOT``: a second import of conftest would
    # give the process a new GENLIB_CACHE under the later tests)
    at = AppTest.from_file(str(repo_root / "app.py"), default_timeout=120)
    at.query_params["lang"] = "ja"
    at.run()
    assert not at.exception
    assert at.session_state["_genlib_lang"] == "ja"


def test_home_opens_in_presentation_mode_from_a_link(app_url):
    at = app_url("pages/home.py", {PRESENT_KEY: "true"})
    assert not at.exception
    assert at.toggle(key=PRESENT_KEY).value is True
    assert any("font-size: 20px" in m.value for m in at.markdown)
