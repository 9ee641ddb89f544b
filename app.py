"""GenLab router: page config + navigation. Sections follow the lecture; only existing pages are
registered, so the app runs at every stage of development."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from genlib.ui import page_table, setup_app

ROOT = Path(__file__).resolve().parent

setup_app()
nav: dict[str, list] = {}
for section, path, title, icon in page_table():
    if (ROOT / path).is_file():
        nav.setdefault(section, []).append(
            st.Page(str(ROOT / path), title=title, icon=icon, default=path.endswith("home.py"))
        )
st.navigation(nav).run()
