"""Experiments and view-models behind the pages: pure torch in, small frozen dataclasses out.

No streamlit, no plotly: ``genlib.viz`` draws what these modules compute and ``genlib.ui`` /
``pages`` put it on screen. One module per family or concern (``gan``, ``vae``, ``flow``,
``fields``, ``langevin``, ``ncsn``, ``forward``, ``live``, ...); import them by name, e.g.
``from genlib.lab.live import live_view_for``.
"""
