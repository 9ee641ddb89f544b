"""English / Japanese texts: ``t("page.path.to.key")`` looks ``path.to.key`` up in
``assets/texts/<page>.toml`` under ``[en]`` or ``[ja]``.

Missing Japanese falls back to English; a missing key returns the key itself (so a typo shows on
screen instead of crashing a lecture). The files are parsed once (cached by modification time).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "LANGS",
    "LANG_NAMES",
    "Lang",
    "TEXTS_DIR",
    "texts",
    "lookup",
    "has",
    "t",
    "t_raw",
    "lang",
    "set_lang",
    "flatten_keys",
    "load_toml",
]

Lang = Literal["en", "ja"]
LANGS: tuple[Lang, ...] = ("en", "ja")
LANG_NAMES: dict[str, str] = {"en": "English", "ja": "日本語"}
TEXTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "texts"
LANG_STATE_KEY = "_genlib_lang"


try:  # Python >= 3.11
    import tomllib as _toml

    TOMLError: type[Exception] = _toml.TOMLDecodeError
except ModuleNotFoundError:  # Python 3.10: the toml package (a streamlit dependency)
    import toml as _toml  # type: ignore[no-redef]

    TOMLError = _toml.TomlDecodeError  # type: ignore[attr-defined]


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file (tomllib, or ``toml`` on Python 3.10)."""
    text = Path(path).read_text(encoding="utf-8")
    return _toml.loads(text)


@lru_cache(maxsize=128)
def _load(path: str, mtime: float) -> dict[str, Any]:
    return load_toml(path)


def texts(page: str) -> dict[str, Any]:
    """The parsed texts file of ``page`` (``{}`` when absent or malformed)."""
    path = TEXTS_DIR / f"{page}.toml"
    try:
        return _load(str(path), path.stat().st_mtime)
    except (OSError, TOMLError):
        return {}


def lookup(key: str, language: str) -> Any | None:
    """The raw value of ``key`` in one language, or ``None``."""
    page, _, rest = key.partition(".")
    node: Any = texts(page).get(language)
    for part in rest.split(".") if rest else []:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if rest else None


def t_raw(key: str, language: str | None = None) -> Any | None:
    """The raw value (string, list of theory blocks, table) in the current language, else English."""
    language = language or lang()
    value = lookup(key, language)
    if value is None and language != "en":
        value = lookup(key, "en")
    return value


def has(key: str) -> bool:
    return t_raw(key, "en") is not None


_FIELD = re.compile(r"\{([A-Za-z_]\w*)(?::([^{}]*))?\}")


def _format_fields(text: str, fmt: dict[str, Any]) -> str:
    """Fill only the ``{name}`` / ``{name:spec}`` fields named in ``fmt``; every other brace (the
    LaTeX of an inline formula, ``$q_{\\theta}$``) is left as it is."""

    def fill(m: re.Match[str]) -> str:
        name, spec = m.group(1), m.group(2) or ""
        if name not in fmt:
            return m.group(0)
        try:
            return format(fmt[name], spec)
        except (TypeError, ValueError):
            return str(fmt[name])

    return _FIELD.sub(fill, text)


def t(key: str, language: str | None = None, **fmt: Any) -> str:
    """The text of ``key`` in the current language (English fallback, else the key itself),
    formatted with ``fmt`` when given: ``str.format`` (LaTeX braces doubled, ``{{``), else — when
    the text has single LaTeX braces ``str.format`` cannot parse — only its named fields."""
    value = t_raw(key, language)
    if value is None:
        return key
    text = str(value)
    if fmt:
        try:
            text = text.format(**fmt)
        except (KeyError, IndexError, ValueError):
            text = _format_fields(text, fmt)
    return text


def _session_state() -> Any | None:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        if get_script_run_ctx(suppress_warning=True) is None:
            return None
        import streamlit as st

        return st.session_state
    except Exception:  # no streamlit runtime (plain python, unit tests)
        return None


def lang() -> Lang:
    """The UI language: the session's choice, else ``GENLIB_LANG``, else English."""
    ss = _session_state()
    value = ss.get(LANG_STATE_KEY) if ss is not None else None
    value = value or os.environ.get("GENLIB_LANG", "en")
    return value if value in LANGS else "en"  # type: ignore[return-value]


def set_lang(value: str) -> None:
    ss = _session_state()
    if ss is not None and value in LANGS:
        ss[LANG_STATE_KEY] = value


def flatten_keys(node: Any, prefix: str = "") -> set[str]:
    """Every leaf key of a texts table (``theory`` lists count as one key)."""
    if isinstance(node, dict):
        out: set[str] = set()
        for k, v in node.items():
            out |= flatten_keys(v, f"{prefix}.{k}" if prefix else k)
        return out
    return {prefix}
