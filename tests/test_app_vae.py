"""AppTest: the VAE page renders (both languages), trains a tiny run and shows its panels."""

from __future__ import annotations

import json

import pytest

PAGE = "pages/vae.py"
P = "vae"


PANELS = {
    "vae_result_fig",  # the skeleton's result view
    "fig_vae_data_latent",
    "fig_vae_samples",
    "fig_vae_elbo_terms",
    "fig_vae_bounds",
    "fig_vae_generation",
    "fig_vae_posterior",  # the true posterior against the encoder (issue 11)
}


def _train_tiny(at, train_in_app, steps: int = 60, **widgets):
    at.selectbox(key="vae_target").set_value("8gaussians").run()  # exact GMM density: fast
    at.number_input(key="vae_steps").set_value(steps)
    for key, value in widgets.items():
        at.selectbox(key=key).set_value(value)
    at.button(key="vae_apply").click().run()
    assert not at.exception
    return train_in_app(at, P)


def _specs(at) -> list[dict]:
    """The page's own figures (the live panel's training replay left out)."""
    charts = [c for c in at.get("plotly_chart") if not c.proto.id.endswith("_replay_fig")]
    return [json.loads(c.proto.spec) for c in charts]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_vae_page_renders(app_test, lang):
    at = app_test(lang=lang, page=PAGE)
    assert not at.exception and not at.error
    assert at.title[0].value == "VAE"
    assert at.button(key="vae_train")  # not trained yet: a Train button


def test_vae_page_opens_from_a_link(app_url):
    at = app_url(
        PAGE,
        {
            "vae_latent_dim": "1",
            "vae_decoder_var": "learned per z and axis: σ_θ(z)",
            "vae_beta": "0.5",
        },
    )
    assert not at.exception and not at.error
    assert at.selectbox(key="vae_latent_dim").value == 1
    assert at.selectbox(key="vae_decoder_var").value == "learned"
    assert at.number_input(key="vae_beta").value == 0.5
    assert at.number_input(key="vae_decoder_std").value == 0.1  # the preset's


def test_vae_page_trains_and_shows_panels(app_test, train_in_app, chart_keys):
    at = _train_tiny(app_test(page=PAGE), train_in_app)
    assert not at.error
    assert PANELS <= chart_keys(at)
    specs = _specs(at)
    assert len(specs) >= 5  # data/latent, samples, ELBO terms, bounds, generation (+ loss)
    names = {tr.get("name") for s in specs for tr in s["data"]}
    assert {"ELBO", "IWAE bound (K samples)", "μ_φ(x)"} <= {n.split(" = ")[0] for n in names if n}
    assert any(s.get("frames") for s in specs)  # the generation animation
    # the bounds table: ELBO ≤ IWAE_1000 ≤ log q (+ Monte-Carlo slack)
    df = next(d.value for d in at.dataframe if "gap to log q_θ(x)" in d.value.columns)
    vals = dict(zip(df.iloc[:, 0], df.iloc[:, 1], strict=True))
    assert vals["ELBO"] <= vals["IWAE K=1000"] <= vals["log q_θ(x) (quadrature)"] + 0.02
    # colour switch, then a 1D latent: z against σ_φ(x) in the latent panel
    at.radio(key="vae_colour_by").set_value("x1").run()
    assert not at.exception
    at.select_slider(key="vae_k_max").set_value(10).run()
    assert not at.exception
    df = next(d.value for d in at.dataframe if "gap to log q_θ(x)" in d.value.columns)
    assert list(df.iloc[:, 0]) == [
        "ELBO",
        "IWAE K=1",
        "IWAE K=3",
        "IWAE K=10",
        "log q_θ(x) (quadrature)",
    ]
    _check_posterior_panel(at, latent_2d=True)
    at = _train_tiny(at, train_in_app, steps=40, vae_latent_dim=1)
    assert not at.error
    latent = [s for s in _specs(at) if any(tr.get("name") == "μ_φ(x)" for tr in s["data"])]
    assert latent and latent[0]["layout"]["yaxis2"]["title"]["text"] == "σ_φ(x)"
    _check_posterior_panel(at, latent_2d=False)  # a 1D latent: the two densities as curves


def _check_posterior_panel(at, latent_2d: bool):
    """The posterior panel: log q = ELBO + KL as numbers (the gap within Monte-Carlo error), both
    posteriors drawn, another data point picked from the list."""
    metrics = {m.label: m.value for m in at.metric}
    gap = float(metrics["log q_θ(x) − ELBO − KL"])
    se = float(metrics["ELBO(x) (Monte Carlo)"].split("±")[1])
    assert abs(gap) < 4 * se + 0.02, metrics
    names = {tr.get("name") for s in _specs(at) for tr in s["data"]}
    assert {"encoder r_φ(z|x)", "true posterior q_θ(z|x)"} <= names
    assert ("encoder mean μ_φ(x)" in names) == latent_2d
    at.selectbox(key="vae_post_point").set_value(3).run()
    assert not at.exception and not at.error
    assert "log q_θ(x) (quadrature)" in {m.label for m in at.metric}
