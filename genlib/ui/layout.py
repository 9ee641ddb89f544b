"""App shell: the page table, page config, language switch, presentation mode, headers, theory."""

from __future__ import annotations

import contextlib
import functools
import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from genlib.device import configure_threads, device_info
from genlib.ui.i18n import LANG_NAMES, LANG_STATE_KEY, LANGS, has, lang, set_lang, t, t_raw

__all__ = [
    "PAGES",
    "SECTIONS",
    "page_table",
    "setup_app",
    "setup_page",
    "header",
    "theory",
    "language_switch",
    "presentation_toggle",
    "presenting",
    "open_all",
    "open_all_toggle",
    "section",
    "lazy_panel",
    "device_badge",
    "share_link",
    "controls",
    "current_page",
]

ROOT = Path(__file__).resolve().parents[2]

# (section key, path, English fallback title, icon)
PAGES: list[tuple[str, str, str, str]] = [
    ("start", "pages/home.py", "Home", ":material/home:"),
    ("start", "pages/distributions.py", "Distributions", ":material/scatter_plot:"),
    ("kl", "pages/kl.py", "KL: forward vs reverse", ":material/compare_arrows:"),
    ("kl", "pages/rbm.py", "Boltzmann machine", ":material/grid_on:"),
    ("kl", "pages/autoregressive.py", "Autoregressive", ":material/east:"),
    ("kl", "pages/flow.py", "Normalizing flow", ":material/waves:"),
    ("latent", "pages/vae.py", "VAE", ":material/compress:"),
    ("latent", "pages/gan.py", "GAN", ":material/sports_kabaddi:"),
    ("diffusion", "pages/score_matching.py", "Score matching", ":material/explore:"),
    ("diffusion", "pages/ncsn.py", "NCSN", ":material/stairs:"),
    ("diffusion", "pages/ddpm.py", "DDPM", ":material/blur_on:"),
    ("diffusion", "pages/sde.py", "SDE", ":material/timeline:"),
    ("diffusion", "pages/flow_matching.py", "Flow matching", ":material/air:"),
    ("compare", "pages/leaderboard.py", "Leaderboard", ":material/leaderboard:"),
]
SECTIONS: dict[str, str] = {
    "start": "Start",
    "kl": "2. KL minimisation",
    "latent": "3. Latent variables",
    "diffusion": "4. Diffusion",
    "compare": "Compare",
}
PRESENT_KEY = "present"  # widget key = URL query parameter
OPEN_ALL_KEY = "open_all"  # widget key = URL query parameter: every section starts open
SECTION_KEYS = "_genlib_section_keys"  # session: the section keys this session has drawn
LANG_WIDGET_KEY = "_genlib_lang_widget"
PAGE_STATE_KEY = "_genlib_page"
SHELL_KEY = "_genlib_shell_rendered"


def page_table() -> list[tuple[str, str, str, str]]:
    """Every page as (section, path, title, icon), section and title in the current language
    (the title from the page's texts file, else its English fallback)."""
    rows = []
    for sec, path, fallback, icon in PAGES:
        stem = Path(path).stem
        title = t(f"{stem}.title") if has(f"{stem}.title") else fallback
        section = t(f"common.sections.{sec}") if has(f"common.sections.{sec}") else SECTIONS[sec]
        rows.append((section, path, title, icon))
    return rows


def _init_lang() -> None:
    """First run of a session: the language from ?lang=, else the default."""
    if LANG_STATE_KEY not in st.session_state:
        q = st.query_params.get("lang")
        set_lang(q if q in LANGS else lang())
    if st.session_state.get(LANG_WIDGET_KEY) != lang():
        st.session_state[LANG_WIDGET_KEY] = lang()  # the session's choice is authoritative


def _on_lang_change() -> None:
    value = st.session_state.get(LANG_WIDGET_KEY)
    if value in LANGS:
        set_lang(value)
        st.query_params["lang"] = value


def language_switch() -> str:
    """English / 日本語 in the sidebar; persisted in the session and in ``?lang=``."""
    _init_lang()
    st.sidebar.radio(
        "Language / 言語",
        list(LANGS),
        format_func=lambda v: LANG_NAMES[v],
        key=LANG_WIDGET_KEY,
        horizontal=True,
        on_change=_on_lang_change,
    )
    value = lang()
    if st.query_params.get("lang") != value:
        st.query_params["lang"] = value
    return value


def presenting() -> bool:
    """Whether presentation mode (projector layout) is on: the sidebar toggle, bound to the URL as
    ``?present=true`` so a link opens a lecture-ready view."""
    try:
        if PRESENT_KEY in st.session_state:
            return bool(st.session_state[PRESENT_KEY])
        return st.query_params.get(PRESENT_KEY, "").lower() in ("1", "true")
    except Exception:  # outside a script run
        return False


def _exit_presentation() -> None:
    st.session_state[PRESENT_KEY] = False


def presentation_toggle() -> bool:
    """The presentation-mode toggle (sidebar, URL-bound); in presentation mode the sidebar is
    hidden and an exit button sits at the top of the page."""
    st.sidebar.toggle(
        t("common.presentation"),
        key=PRESENT_KEY,
        help=t("common.presentation_help"),
        bind="query-params",
    )
    if presenting():
        st.button(
            t("common.presentation_exit"),
            key="_genlib_present_exit",
            icon=":material/close_fullscreen:",
            on_click=_exit_presentation,
        )
    return presenting()


def open_all() -> bool:
    """Whether every section of a page starts open (the sidebar toggle, ``?open_all=true``)."""
    try:  # the toggle, or a link's value before the toggle has taken it (turning it off drops it)
        if st.session_state.get(OPEN_ALL_KEY):
            return True
        return st.query_params.get(OPEN_ALL_KEY, "").lower() == "true"
    except Exception:  # outside a script run
        return False


def open_all_toggle() -> None:
    """The sidebar toggle that opens every section of a page (URL-bound: a link can open them)."""
    st.sidebar.toggle(
        t("common.open_all"),
        key=OPEN_ALL_KEY,
        help=t("common.open_all_help"),
        bind="query-params",
        on_change=_open_all_changed,
    )


def _open_all_changed() -> None:
    """The toggle opens (or closes) at once every section this session has drawn."""
    value = bool(st.session_state.get(OPEN_ALL_KEY))
    for key in st.session_state.get(SECTION_KEYS, ()):
        st.session_state[key] = value


@contextlib.contextmanager
def section(page: str, name: str, title: str, *, icon: str | None = None) -> Iterator[bool]:
    """A section of a page that computes and draws its content only while it is open: an
    expander bound to the URL (``?{page}_sec_{name}=true``; a link keeps it open) whose state is
    tracked, so a closed one costs neither server work nor a figure in the browser. Yields
    whether it is open (every section starts open with ``open_all``)::

        with ui.section("ddpm", "field", t("ddpm.field_title")) as shown:
            if shown:
                ...
    """
    key = f"{page}_sec_{name}"
    st.session_state.setdefault(SECTION_KEYS, set()).add(key)
    if key in st.session_state:
        # pinned: Streamlit derives the element's id from the label too, so a new language (or a
        # label with a count) would otherwise draw a new, closed expander
        st.session_state[key] = st.session_state[key]
    elif open_all():
        st.session_state[key] = True
    box = st.expander(title, expanded=False, key=key, bind="query-params", icon=icon)
    with box:
        yield bool(box.open)


_Panel = TypeVar("_Panel", bound=Callable[..., Any])


def lazy_panel(name: str, title_key: str, icon: str | None = None) -> Callable[[_Panel], _Panel]:
    """Decorate a panel ``fn(page, ...)`` so that it draws inside ``section(page, name,
    t(f"{page}.{title_key}"))`` and runs only while that section is open (else returns None)."""

    def wrap(fn: _Panel) -> _Panel:
        @functools.wraps(fn)
        def panel(page: str, *args: Any, **kw: Any) -> Any:
            with section(page, name, t(f"{page}.{title_key}"), icon=icon) as shown:
                return fn(page, *args, **kw) if shown else None

        return panel  # type: ignore[return-value]

    return wrap


def share_link() -> None:
    """The page's link with its whole view state (the URL-bound widgets), with a copy button."""
    from urllib.parse import urlencode, urlsplit

    try:
        base = urlsplit(str(st.context.url or ""))
        query = {k: v for k, v in st.query_params.to_dict().items() if len(str(v)) <= 200}
    except Exception:  # outside a served session (AppTest): no URL to share
        return
    if not base.netloc:
        return
    link = f"{base.scheme}://{base.netloc}{base.path}" + (f"?{urlencode(query)}" if query else "")
    with st.sidebar.popover(t("common.share"), icon=":material/link:"):
        st.caption(t("common.share_help"))
        st.code(link, language=None, wrap_lines=True)


def device_badge() -> None:
    """Compute device and torch threads as a small sidebar caption."""
    info = device_info()
    name = info.get("name", info["device"])
    st.sidebar.caption(
        f":material/memory: {t('common.device')}: **{html.escape(name)}** · "
        f"{t('common.threads')}: {info['threads']} · torch {info['torch']}"
    )


_BASE_CSS = """
<style>
.block-container {padding-top: 2.2rem; padding-bottom: 3rem; max-width: 1400px;}
h1 {font-weight: 700; letter-spacing: -0.01em;}
h2, h3 {font-weight: 600;}
[data-testid="stMetricValue"] {font-size: 1.4rem;}
[data-testid="stSidebar"] [data-testid="stCaptionContainer"] {font-size: 0.78rem;}
div[data-testid="stExpander"] details summary p {font-weight: 600;}
.genlab-badge {display:inline-block; padding:0.1rem 0.55rem; border-radius:0.8rem; font-size:0.8rem;
  background:#eef4fb; color:#0b4f8a; border:1px solid #cfe0f3; margin-right:0.3rem;}
</style>
"""

_PRESENT_CSS = """
<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"] {display: none !important;}
[data-testid="stMainBlockContainer"], .block-container {padding-top: 0.8rem !important;}
html, body, [class*="css"] {font-size: 20px;}
.stApp, [data-testid="stAppViewContainer"], [data-testid="stHeader"] {background: #ffffff !important; color: #111827 !important;}
.block-container {max-width: 100% !important; padding-left: 2rem; padding-right: 2rem;}
.stMarkdown p, .stMarkdown li, label, .stCaption {font-size: 1.15rem !important;}
h1 {font-size: 3rem !important;}
h2 {font-size: 2.2rem !important;}
h3 {font-size: 1.7rem !important;}
.katex {font-size: 1.35em !important;}
[data-testid="stMetricValue"] {font-size: 2rem !important;}
</style>
"""


def _shell() -> None:
    st.set_page_config(
        page_title="GenLab", page_icon="🧪", layout="wide", initial_sidebar_state="expanded"
    )
    configure_threads()
    language_switch()
    presentation_toggle()
    open_all_toggle()
    share_link()
    device_badge()
    st.markdown(_BASE_CSS, unsafe_allow_html=True)
    if presenting():
        st.markdown(_PRESENT_CSS, unsafe_allow_html=True)


def setup_app() -> None:
    """Call once at the top of ``app.py``: page config, threads, language switch, presentation
    mode, device badge, house CSS."""
    _shell()
    st.session_state[SHELL_KEY] = True


def _leave_pages_directory_mode() -> None:
    """Streamlit treats the ``pages/`` folder next to ``app.py`` as an old-style (v1) multipage app
    until ``st.navigation`` has run once in the process: a fresh server's first request for a page
    (a deep link such as ``/distributions``) then runs that page alone, without ``app.py``, and
    the sidebar lists files. Switch to ``st.navigation`` mode and rerun, so ``app.py`` routes the
    same page (pages are identified by their URL path in both modes); this happens once per server
    process. AppTest resets the flag before *every* run, so there the page goes on with its own
    shell instead (a rerun would drop the click that started the run)."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # a future streamlit without the flag: nothing to fix
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        ctx = get_script_run_ctx()
        under_apptest = ctx is not None and ctx.session_id == "test session id"
        if not under_apptest:
            st.rerun()


def setup_page(page_key: str) -> None:
    """First line of every page. Renders the app shell itself when ``app.py`` did not run it in
    this script run (e.g. ``streamlit run pages/x.py``)."""
    if not st.session_state.pop(SHELL_KEY, False):
        # app.py did not run first: a page opened alone (deep link on a fresh server)
        _leave_pages_directory_mode()
        _shell()
    st.session_state[PAGE_STATE_KEY] = page_key


def current_page() -> str:
    return str(st.session_state.get(PAGE_STATE_KEY, "common"))


def header(page_key: str) -> None:
    """The page title and its intro paragraph (and the lecture section, when the texts give one)."""
    st.title(t(f"{page_key}.title"))
    if presenting():
        return  # the projector shows the title and the figure; the intro is for reading
    if has(f"{page_key}.section"):
        st.caption(t(f"{page_key}.section"))
    if has(f"{page_key}.intro"):
        st.markdown(t(f"{page_key}.intro"))


def theory(page_key: str) -> None:
    """The lecture's equations: ``[[lang.theory]]`` blocks (``md`` paragraphs, ``latex`` equations),
    in a section typeset only when opened."""
    blocks = t_raw(f"{page_key}.theory")
    if not blocks:
        return
    with section(page_key, "theory", t("common.theory"), icon=":material/menu_book:") as shown:
        if not shown:
            return
        for block in blocks if isinstance(blocks, list) else [blocks]:
            if isinstance(block, str):
                st.markdown(block)
            elif isinstance(block, dict):
                if "md" in block:
                    st.markdown(block["md"])
                if "latex" in block:
                    st.latex(block["latex"])


def controls(label: str | None = None):
    """A container for a page's controls: an expander collapsed in presentation mode."""
    return st.expander(
        label or t("common.controls"), expanded=not presenting(), icon=":material/tune:"
    )
