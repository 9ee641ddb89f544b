"""Compare: every family on the same target, from cached/pretrained runs (train the missing ones)."""

import math

import pandas as pd
import streamlit as st

from genlib import models, ui, viz
from genlib.runs import RunSpec
from genlib.viz import leaderboard as lb

PAGE = "leaderboard"
ui.setup_page(PAGE)
ui.header(PAGE)

with ui.controls():
    c1, c2, c3 = st.columns(3)
    with c1:
        target = ui.target_picker(PAGE, default="8gaussians")
    preset = c2.selectbox(
        ui.t("common.preset"),
        ["fast", "quality"],
        format_func=ui.preset_label,
        key=f"{PAGE}_preset",
    )
    seed = int(c3.number_input(ui.t("common.seed"), 0, 10_000, 0, key=f"{PAGE}_seed"))

specs = {
    name: RunSpec.from_preset(name, target, preset=preset, seed=seed) for name in models.names()
}
# a spinner at once while the results load (the first visitor loads ten checkpoints)
with st.spinner(ui.t("common.computing"), show_time=True):
    found = ui.train_many_panel(specs, page=PAGE)
missing = [name for name, tr in found.items() if tr is None]
if missing:
    st.info(ui.t("leaderboard.missing", models=", ".join(missing)))

rows = []
for name, trained in found.items():
    if trained is None:
        continue
    m = ui.evaluate_cached(trained)
    sw, floor = m["sliced_wasserstein"], m["sliced_wasserstein_floor"]
    rows.append(
        {
            ui.t("leaderboard.col_model"): name,
            ui.t("leaderboard.col_section"): getattr(models.MODELS.get(name), "section", ""),
            ui.t("leaderboard.col_source"): trained.source,
            ui.t("leaderboard.col_steps"): trained.result.steps_done,
            ui.t("leaderboard.col_seconds"): round(trained.result.seconds, 1),
            ui.t("leaderboard.col_sw"): sw,
            ui.t("leaderboard.col_sw_ratio"): sw / floor if floor > 0 else math.inf,
            ui.t("leaderboard.col_mmd"): m["mmd"],
            ui.t("leaderboard.col_kl"): m.get("exact_kl", float("nan")),
        }
    )

if not rows:
    st.warning(ui.t("leaderboard.empty"))
else:
    df = pd.DataFrame(rows)
    st.dataframe(df, hide_index=True)
    ui.csv_button(df, f"leaderboard_{target.name}", ui.t("leaderboard.download"), key=f"{PAGE}_csv")
    mcol = ui.t("leaderboard.col_model")
    left, right = st.columns(2)
    with left:
        ui.figure(
            lb.ratio_chart(df, mcol, ui.t("leaderboard.col_sw_ratio"), ui.t("leaderboard.axis_sw")),
            "leaderboard_sw",
            data=df,
        )
    with right:
        if df[ui.t("leaderboard.col_kl")].notna().any():
            ui.figure(
                lb.kl_chart(df, mcol, ui.t("leaderboard.col_kl"), ui.t("leaderboard.axis_kl")),
                "leaderboard_kl",
                data=df,
            )
    st.caption(ui.t("leaderboard.note"))
    st.subheader(ui.t("leaderboard.gallery"))
    names = [n for n, tr in found.items() if tr is not None]
    with st.spinner(ui.t("common.computing"), show_time=True):
        real = ui.target_samples(target, 600)
        tb = ui.target_bounds(target)
        for row in range(0, len(names), 5):
            cols = st.columns(5)
            for col, name in zip(cols, names[row : row + 5], strict=False):
                q = ui.sample_model(found[name], 600)
                fig = viz.scatter({"p": real, name: q}, tb, size=2.5, height=260)
                fig.update_layout(showlegend=False, margin={"l": 10, "r": 10, "t": 30, "b": 10})
                fig.update_layout(title={"text": name, "font": {"size": 14}})
                fig.update_xaxes(title=None, showticklabels=False)
                fig.update_yaxes(title=None, showticklabels=False)
                col.plotly_chart(
                    fig, key=f"{PAGE}_gallery_{name}", config={"displayModeBar": False}
                )

ui.theory(PAGE)
