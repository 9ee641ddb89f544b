"""genlib.ui without a server: texts (every English key has a Japanese one), fallbacks, the page
table, and the training path of the run form (the user's own distribution: tests/test_points.py)."""

from __future__ import annotations

import time

import pytest

from genlib.ui import i18n
from genlib.ui.layout import PAGES, page_table

TEXT_FILES = sorted(i18n.TEXTS_DIR.glob("*.toml"))


def test_there_are_texts():
    names = {p.stem for p in TEXT_FILES}
    assert {"common", "home", "distributions"} <= names


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: p.stem)
def test_every_english_key_has_japanese(path):
    data = i18n.load_toml(path)
    assert "en" in data and "ja" in data, f"{path.name}: needs [en] and [ja] tables"
    en, ja = i18n.flatten_keys(data["en"]), i18n.flatten_keys(data["ja"])
    assert not en - ja, f"{path.name}: keys missing in [ja]: {sorted(en - ja)}"
    assert not ja - en, f"{path.name}: keys only in [ja]: {sorted(ja - en)}"
    if isinstance(data["en"].get("theory"), list):
        assert len(data["en"]["theory"]) == len(data["ja"]["theory"]), (
            f"{path.name}: theory blocks differ"
        )
        for block in data["en"]["theory"] + data["ja"]["theory"]:
            assert set(block) <= {"md", "latex"} and block, f"{path.name}: bad theory block {block}"


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: p.stem)
def test_texts_have_a_title_except_common(path):
    data = i18n.load_toml(path)
    if path.stem != "common":
        assert data["en"].get("title") and data["ja"].get("title")


def test_t_languages_and_fallbacks(tmp_path, monkeypatch):
    (tmp_path / "demo.toml").write_text(
        '[en]\nhello = "Hello {name}"\nonly_en = "English only"\n[en.nested]\nkey = "deep"\n'
        '[ja]\nhello = "こんにちは {name}"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "TEXTS_DIR", tmp_path)
    assert i18n.t("demo.hello", "en", name="p") == "Hello p"
    assert i18n.t("demo.hello", "ja", name="p") == "こんにちは p"
    assert i18n.t("demo.only_en", "ja") == "English only"  # missing Japanese -> English
    assert i18n.t("demo.nested.key", "ja") == "deep"
    assert i18n.t("demo.missing", "ja") == "demo.missing"  # missing key -> the key
    assert i18n.t("nofile.key") == "nofile.key"
    assert i18n.t("demo.hello", "en") == "Hello {name}"  # no fmt: the raw text
    assert i18n.t("demo.hello", "en", other=1) == "Hello {name}"  # bad fmt: never raises
    assert i18n.has("demo.only_en") and not i18n.has("demo.nope")


def test_lang_outside_streamlit_uses_env(monkeypatch):
    monkeypatch.setenv("GENLIB_LANG", "ja")
    assert i18n.lang() == "ja"
    monkeypatch.setenv("GENLIB_LANG", "xx")
    assert i18n.lang() == "en"


def test_page_table_sections_and_titles(monkeypatch):
    rows = page_table()
    assert [r[1] for r in rows] == [p[1] for p in PAGES]
    assert rows[0][:3] == ("Start", "pages/home.py", "Home")
    assert {r[0] for r in rows} == {
        "Start",
        "2. KL minimisation",
        "3. Latent variables",
        "4. Diffusion",
        "Compare",
    }
    monkeypatch.setenv("GENLIB_LANG", "ja")
    ja = page_table()
    assert ja[0][0] == "はじめに" and ja[1][2] == "分布"
    # a page without a texts file falls back to its English title
    assert all(r[2] for r in ja)


def _train_page():
    import streamlit as st

    from genlib import models, ui

    model = "autoregressive"
    assert model in models.names(), f"{model} is not registered"  # fail, never fall back
    ui.setup_app()
    ui.setup_page("uitest")
    spec = ui.run_form("uitest", default_target="8gaussians", model=model)
    st.caption(spec.key())
    trained = ui.train_panel(spec, page="uitest")
    if trained is not None:
        ui.metrics_panel(trained, n=500)
        ui.downloads(trained, n=200)


def test_run_form_train_panel_metrics(genlib_cache):
    """The training path of genlib.ui: form -> Train -> progress -> result shown from the shared
    cache on the next run (and from the disk cache in a new session)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_train_page, default_timeout=120)
    at.run()
    assert not at.exception
    assert at.button(key="uitest_train")  # nothing cached yet
    at.number_input(key="uitest_steps").set_value(40)
    at.number_input(key="uitest_batch").set_value(128)
    at.button(key="uitest_apply").click().run()
    at.button(key="uitest_train").click().run()
    assert not at.exception
    # training runs as a background job: rerun until its live panel (Stop button) is gone
    t0 = time.monotonic()
    while any(b.key == "uitest_stop" for b in at.button):
        assert time.monotonic() - t0 < 120, "training did not finish"
        time.sleep(0.3)
        at.run()
    assert not at.exception
    assert at.success and "40" in at.success[0].value  # "Trained now: 40 steps ..."
    table = at.dataframe[0].value
    assert list(table.columns) == ["Metric", "Value", "Floor"]
    assert table["Value"].notna().all()
    key = at.caption[0].value if at.caption else None
    # the run was persisted to the disk cache
    assert any(p.suffix == ".pt" for p in genlib_cache.iterdir())
    at.run()  # shared in-memory cache: no Train button any more
    assert not at.exception and not [b for b in at.button if b.key == "uitest_train"]
    fresh = AppTest.from_function(_train_page, default_timeout=120)
    # a new session with the same settings finds the result (disk + shared cache)
    fresh.run()
    fresh.number_input(key="uitest_steps").set_value(40)
    fresh.number_input(key="uitest_batch").set_value(128)
    fresh.button(key="uitest_apply").click().run()
    assert not fresh.exception
    assert key is None or key in [c.value for c in fresh.caption]
    assert fresh.success and not [b for b in fresh.button if b.key == "uitest_train"]
