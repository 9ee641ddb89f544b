"""AppTest: the GAN page renders (both languages), opens from a link with its settings, trains a
tiny run as a background job and shows its panels; its hand-step controls (D only / G only /
both, slow motion, reset) work without exceptions."""

from __future__ import annotations

import json

import pytest

PAGE = "pages/gan.py"
P = "gan"
PANELS = {
    "gan_result_fig",  # the skeleton's result view
    "fig_gan_discriminator",
    "fig_gan_coverage",
    "fig_gan_evolution",
    "fig_gan_losses",
    "fig_gan_d_probabilities",
    "fig_gan_8gaussians_correction",  # DRS / MH with D ≈ log p/q (issue 11)
}


def _specs(at) -> list[dict]:
    """The page's own figures (the live panel's training replay left out)."""
    charts = [c for c in at.get("plotly_chart") if not c.proto.id.endswith("_replay_fig")]
    return [json.loads(c.proto.spec) for c in charts]


def _trace_names(at) -> set[str]:
    return {tr.get("name") for s in _specs(at) for tr in s["data"] if tr.get("name")}


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_gan_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value == "GAN"
    assert at.button(key="gan_train")


def test_gan_page_opens_from_a_link(app_url):
    at = app_url(PAGE, {"gan_target": "Two peaks (KL slide)", "gan_z_dim": "3", "gan_k_d": "2"})
    assert not at.exception and not at.error and not at.warning
    assert at.selectbox(key="gan_target").value == "two_peaks"
    assert at.number_input(key="gan_z_dim").value == 3
    assert at.number_input(key="gan_k_d").value == 2
    assert at.number_input(key="gan_k_g").value == 1  # not in the link: the preset's value


def test_gan_page_ignores_a_bad_link_value(app_url):
    at = app_url(PAGE, {"gan_z_dim": "999", "gan_gen_loss": "<script>"})
    assert not at.exception
    assert at.number_input(key="gan_z_dim").value == 2
    assert at.selectbox(key="gan_gen_loss").value == "nonsaturating"


def test_gan_page_trains_steps_and_records(app_test, train_in_app, chart_keys):
    at = app_test(page=PAGE)
    at.number_input(key="gan_steps").set_value(150)
    at.selectbox(key="gan_gen_loss").set_value("minimax")
    at.button(key="gan_apply").click().run()
    train_in_app(at, P)
    assert not at.exception and not at.error
    assert PANELS <= chart_keys(at)
    names = _trace_names(at)
    assert {"D_φ(x)", "D*(x) = log p/q̂ (estimate)", "push on fakes −∇_y(G loss)"} <= names
    assert any(s.get("frames") for s in _specs(at))  # fakes over training (snapshots)
    assert [m.label for m in at.metric][:2] == [
        "Modes covered (trained model)",
        "Modes covered (hand-stepped model)",
    ]

    # D only, then G only, then both: the counter adds up
    at.number_input(key="gan_n_steps").set_value(5)
    for mode in ("d", "g", "both"):
        at.radio(key="gan_mode").set_value(mode)
        at.button(key="gan_hand_step").click().run()
        assert not at.exception
    assert any("Steps taken by hand: 15" in i.value for i in at.info)

    # slow motion: a recorded client-side animation appears
    at.number_input(key="gan_frames").set_value(3)
    at.number_input(key="gan_per_frame").set_value(1)
    at.button(key="gan_record").click().run()
    assert not at.exception
    assert "fig_gan_slow_motion" in chart_keys(at)
    slow = [s for s in _specs(at) if s.get("frames") and len(s["frames"]) == 4]
    assert slow and slow[0]["layout"]["sliders"][0]["steps"][-1]["label"] == "18"

    # reset goes back to the trained model
    at.button(key="gan_hand_reset").click().run()
    assert not at.exception
    assert not any("Steps taken by hand" in i.value for i in at.info)
    assert "fig_gan_slow_motion" not in chart_keys(at)

    # the density ratio in use: SW / floor and acceptance rates per method, then D* from a KDE
    df = next(d.value for d in at.dataframe if "acceptance rate" in d.value.columns)
    assert list(df["acceptance rate"])[0] == 1.0 and 0 < df["acceptance rate"].iloc[1] <= 1
    assert (df["SW / floor"] > 0).all()
    at.select_slider(key="gan_mh_steps").set_value(5)
    at.select_slider(key="gan_drs_gamma").set_value(1.0).run()
    assert not at.exception and not at.error
    assert "fig_gan_8gaussians_correction" in chart_keys(at)


def test_gan_page_non_mixture_target_explains_coverage(app_test, train_in_app, chart_keys):
    at = app_test(page=PAGE)
    at.selectbox(key="gan_target").set_value("moons").run()
    at.number_input(key="gan_steps").set_value(50)
    at.button(key="gan_apply").click().run()
    train_in_app(at, P)
    assert not at.exception and not at.error
    assert any("Gaussian-mixture targets" in c.value for c in at.caption)
    assert "fig_gan_discriminator" in chart_keys(at)
