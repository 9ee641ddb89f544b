"""AppTest: the VAE page renders (both languages), trains a tiny run and shows its panels."""

from __future__ import annotations

import json
import time

import pytest

PAGE = "pages/vae.py"
P = "vae"


def _train_tiny(at, steps: int = 60, **widgets):
    at.selectbox(key="vae_target").set_value("8gaussians").run()  # exact GMM density: fast
    at.number_input(key="vae_steps").set_value(steps)
    for key, value in widgets.items():
        at.selectbox(key=key).set_value(value)
    at.button(key="vae_apply").click().run()
    assert not at.exception
    _wait(at.button(key="vae_train").click().run())
    assert not at.exception
    return at


def _wait(at, timeout: float = 120.0):
    """Training runs as a background job: rerun until its live panel (Stop button) is gone."""
    t0 = time.monotonic()
    while any(b.key == f"{P}_stop" for b in at.button):
        assert time.monotonic() - t0 < timeout, "training did not finish"
        time.sleep(0.3)
        at.run()
    return at


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


def test_vae_page_trains_and_shows_panels(app_test):
    at = _train_tiny(app_test(page=PAGE))
    assert not at.error
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
    at = _train_tiny(at, steps=40, vae_latent_dim=1)
    assert not at.error
    latent = [s for s in _specs(at) if any(tr.get("name") == "μ_φ(x)" for tr in s["data"])]
    assert latent and latent[0]["layout"]["yaxis2"]["title"]["text"] == "σ_φ(x)"
