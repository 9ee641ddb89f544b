"""Home: what GenLab is, how to use it, the page map, the compute device."""

from pathlib import Path

import streamlit as st

from genlib import ui
from genlib.device import device_info
from genlib.lab.forward import ForwardConfig
from genlib.runs import TargetSpec
from genlib.viz.diffusion_forward import forward_strip_figure

ui.setup_page("home")
ROOT = Path(__file__).resolve().parent.parent

st.title(ui.t("home.heading"))
st.markdown(ui.t("home.intro"))

st.subheader(ui.t("home.gallery_title"))
spec = TargetSpec("8gaussians")
fd = ui.forward_process(spec, ForwardConfig(schedule="cosine", T=100, n=1000, frames=5, res=20))
fig = forward_strip_figure(fd)
ui.figure(fig, "home_data_to_noise")
st.caption(ui.t("home.gallery_caption"))

left, right = st.columns(2, gap="large")
with left:
    st.subheader(ui.t("home.how_title"))
    st.markdown(ui.t("home.how"))
    st.caption(ui.t("home.tips"))
with right:
    st.subheader(ui.t("home.notation_title"))
    st.markdown(ui.t("home.notation"))

st.subheader(ui.t("home.map_title"))
by_section: dict[str, list[tuple[str, str, str]]] = {}
for section, path, title, icon in ui.page_table():
    by_section.setdefault(section, []).append((path, title, icon))
cols = st.columns(len(by_section))
for col, (section, items) in zip(cols, by_section.items(), strict=True):
    with col:
        st.markdown(f"**{section}**")
        for path, title, icon in items:
            stem = Path(path).stem
            if (ROOT / path).is_file():
                st.page_link(path, label=title, icon=icon)
            else:
                st.markdown(
                    f"<span style='color:#8a94a3'>{title} · {ui.t('home.missing')}</span>",
                    unsafe_allow_html=True,
                )
            st.caption(ui.t(f"home.blurbs.{stem}"))

st.subheader(ui.t("home.device_title"))
info = device_info()
if info["device"].startswith("cuda"):
    st.markdown(ui.t("home.device_gpu", name=info.get("name", info["device"])))
else:
    st.markdown(ui.t("home.device_cpu", threads=info["threads"]))
m1, m2, m3, _ = st.columns(4)
m1.metric(ui.t("common.device"), info["device"])
m2.metric(ui.t("common.threads"), info["threads"])
m3.metric("torch", info["torch"].split("+")[0])
