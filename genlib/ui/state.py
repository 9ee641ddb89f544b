"""The view state in the URL: widgets bound to query parameters (Streamlit's
``bind="query-params"``), so a link reproduces the view and a reload keeps it.

Each wrapper takes the container to draw in (``st``, a column, the sidebar) and a widget key
``{page}_{name}``; the key is the query parameter (``?gan_target=moons&gan_z_dim=3``). Streamlit
validates a query value against the widget's own options or range: an invalid or hostile value is
ignored (the default stays) and dropped from the URL; values equal to their default are left out
of the URL. This module also lists the ignored parameters in one notice (``url_notice``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import streamlit as st

from genlib.ui.i18n import t

__all__ = [
    "selectbox",
    "radio",
    "select_slider",
    "slider",
    "number_input",
    "toggle",
    "url_notice",
    "MAX_QUERY_CHARS",
]

MAX_QUERY_CHARS = 200  # a longer query value is ignored (and reported) outright
SEEN_KEY = "_genlib_url_seen"  # session: query values already checked
BAD_KEY = "_genlib_url_bad"  # this run: ignored parameters
BIND = "query-params"


def _incoming(key: str) -> str | None:
    """The query value of ``key`` the first time this session sees it (else ``None``). In a
    browser Streamlit's frontend has already dropped invalid values; where Python sees one (a
    server-side client, AppTest) it is reported."""
    raw = st.query_params.get(key)
    if raw is None:
        return None
    seen = st.session_state.setdefault(SEEN_KEY, {})
    if seen.get(key) == raw:
        return None
    seen[key] = raw
    if len(raw) > MAX_QUERY_CHARS:
        st.session_state.setdefault(BAD_KEY, set()).add(key)
        return None
    return raw


def _check(key: str, raw: str | None, value: Any) -> None:
    """Report ``raw`` when the widget did not take it (Streamlit ignored it as invalid)."""
    if raw is not None and not _same(raw, value):
        st.session_state.setdefault(BAD_KEY, set()).add(key)


def _same(raw: str, value: Any) -> bool:
    if str(value) == raw:
        return True
    if isinstance(value, bool):
        return raw.lower() in (("true", "1") if value else ("false", "0"))
    if isinstance(value, (int, float)):
        try:
            return math.isclose(float(raw), float(value), rel_tol=1e-9, abs_tol=1e-12)
        except ValueError:
            return False
    return False


def _choice(kind: str, where: Any, label: str, options: Sequence[Any], key: str, **kw: Any):
    raw = _incoming(key)
    value = getattr(where, kind)(label, options, key=key, bind=BIND, **kw)
    fmt = kw.get("format_func", str)
    if raw is not None and not _same(raw, value) and not _same(raw, fmt(value)):
        st.session_state.setdefault(BAD_KEY, set()).add(key)
    return value


def selectbox(where: Any, label: str, options: Sequence[Any], *, key: str, **kw: Any) -> Any:
    """``where.selectbox`` bound to the URL (query parameter ``key``)."""
    return _choice("selectbox", where, label, options, key, **kw)


def radio(where: Any, label: str, options: Sequence[Any], *, key: str, **kw: Any) -> Any:
    """``where.radio`` bound to the URL (query parameter ``key``)."""
    return _choice("radio", where, label, options, key, **kw)


def select_slider(where: Any, label: str, options: Sequence[Any], *, key: str, **kw: Any) -> Any:
    """``where.select_slider`` bound to the URL (query parameter ``key``)."""
    return _choice("select_slider", where, label, options, key, **kw)


def _numeric(kind: str, where: Any, label: str, lo: Any, hi: Any, key: str, **kw: Any) -> Any:
    raw = _incoming(key)
    value = getattr(where, kind)(label, lo, hi, key=key, bind=BIND, **kw)
    _check(key, raw, value)
    return value


def slider(where: Any, label: str, lo: Any, hi: Any, *, key: str, **kw: Any) -> Any:
    """``where.slider(label, lo, hi, ...)`` bound to the URL (query parameter ``key``)."""
    return _numeric("slider", where, label, lo, hi, key, **kw)


def number_input(where: Any, label: str, lo: Any, hi: Any, *, key: str, **kw: Any) -> Any:
    """``where.number_input(label, lo, hi, ...)`` bound to the URL (query parameter ``key``)."""
    return _numeric("number_input", where, label, lo, hi, key, **kw)


def toggle(where: Any, label: str, *, key: str, **kw: Any) -> bool:
    """``where.toggle`` bound to the URL (query parameter ``key``)."""
    raw = _incoming(key)
    value = where.toggle(label, key=key, bind=BIND, **kw)
    _check(key, raw, value)
    return bool(value)


def url_notice() -> None:
    """After a page's widgets: one notice listing the link parameters that were ignored."""
    bad = st.session_state.pop(BAD_KEY, set())
    if bad:
        st.warning(
            t("common.url_ignored", names=", ".join(sorted(bad))), icon=":material/link_off:"
        )
