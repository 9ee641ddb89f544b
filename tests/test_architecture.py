"""The layering rules of DESIGN §2 and issue 8's acceptance, checked by static analysis (``ast``)
of the source, so nothing is imported or run:

- no import cycle among ``genlib`` modules (imports inside functions count: a lazy import that
  dodges a cycle at load time is still a cycle; ``if TYPE_CHECKING:`` imports do not count);
- no module imports another module's private name (``from genlib.a import _x``, ``genlib.a._x``);
  a private module (``pkg/_m.py``) may be used by the modules of its own package only;
- imports flow one way: ``pages/`` -> ``genlib.ui`` -> genlib core;
- only ``genlib/ui``, ``pages/`` and ``app.py`` import streamlit; only ``genlib/viz`` imports
  plotly or altair (and their exporters);
- ``genlib/viz`` only draws: no sampling or simulation calls, no import of the models, samplers,
  processes, RNG or training;
- ``genlib`` never prints (the command-line front end, ``genlib/cli.py`` and ``__main__``, is the
  one place whose job is to write to the terminal);
- model pages are at most ``MAX_PAGE_LINES`` lines.

Every check lists all of its offenders. The checkers run on any source tree; the last test plants
one offender of each kind in a tiny tree and checks that each is reported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_PAGE_LINES = 120
LONG_PAGES = {"home", "distributions", "kl", "leaderboard"}  # not model pages
STREAMLIT_OK = ("genlib.ui", "pages", "app")
DRAWING_LIBS = {"plotly", "altair", "kaleido", "vl_convert"}
DRAWING_OK = ("genlib.viz",)
CLI_MODULES = ("genlib.cli", "genlib.__main__")
#: calls that sample or simulate (by the called name, e.g. ``target.sample(...)``, ``torch.randn``)
VIZ_FORBIDDEN_CALLS = {
    "sample",
    "trajectory",
    "randn",
    "randn_like",
    "rand",
    "rand_like",
    "randint",
    "normal",
    "multinomial",
    "make_generator",
    "manual_seed",
    "seeded_init",
}
VIZ_FORBIDDEN_CALL_PREFIXES = ("langevin", "annealed_langevin", "simulate")
#: modules viz may not import (at run time; type-only imports of view-model types are fine)
VIZ_FORBIDDEN_IMPORTS = (
    "genlib.models",
    "genlib.samplers",
    "genlib.processes",
    "genlib.rng",
    "genlib.training",
    "genlib.jobs",
)


@dataclass(frozen=True)
class Source:
    module: str  # dotted name: genlib.viz.core, pages.ddpm, app
    path: Path
    tree: ast.Module
    is_package: bool

    @property
    def rel(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class Import:
    importer: str
    line: int
    target: str  # the module the statement loads (a submodule when ``from pkg import sub``)
    names: tuple[str, ...]  # the names taken from ``target`` (empty for ``import x.y``)
    type_only: bool  # under ``if TYPE_CHECKING:``


def _module_name(root: Path, path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def scan(root: Path) -> dict[str, Source]:
    """Every module of ``genlib/``, ``pages/`` and ``app.py`` under ``root``, parsed."""
    files = sorted((root / "genlib").rglob("*.py")) + sorted((root / "pages").glob("*.py"))
    if (root / "app.py").exists():
        files.append(root / "app.py")
    out = {}
    for path in files:
        if "__pycache__" in path.parts:
            continue
        module, is_package = _module_name(root, path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out[module] = Source(module, path.relative_to(root), tree, is_package)
    return out


def _within(module: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk_imports(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every import statement under ``node``, with whether it sits under ``if TYPE_CHECKING:``."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, type_only
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for stmt in node.body:
            yield from _walk_imports(stmt, True)
        for stmt in node.orelse:
            yield from _walk_imports(stmt, type_only)
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk_imports(child, type_only)


def _from_base(src: Source, node: ast.ImportFrom) -> str:
    """The absolute module of ``from <base> import ...`` (relative imports resolved)."""
    base = node.module or ""
    if node.level:
        pkg = src.module if src.is_package else src.module.rpartition(".")[0]
        for _ in range(node.level - 1):
            pkg = pkg.rpartition(".")[0]
        base = f"{pkg}.{base}" if base else pkg
    return base


def imports(src: Source, modules: dict[str, Source]) -> list[Import]:
    """The import statements of ``src`` (anywhere in it), resolved to module names."""
    out = []
    for node, type_only in _walk_imports(src.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append(Import(src.module, node.lineno, alias.name, (), type_only))
            continue
        assert isinstance(node, ast.ImportFrom)
        base = _from_base(src, node)
        plain = []
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in modules:  # ``from pkg import submodule``
                out.append(Import(src.module, node.lineno, sub, (), type_only))
            else:
                plain.append(alias.name)
        if plain:
            out.append(Import(src.module, node.lineno, base, tuple(plain), type_only))
    return out


def _top(name: str) -> str:
    return name.split(".", 1)[0]


# --------------------------------------------------------------------------- the checkers


def import_cycles(modules: dict[str, Source]) -> list[str]:
    """One line per cycle (a strongly connected component of the genlib import graph)."""
    graph: dict[str, set[str]] = {m: set() for m in modules if _within(m, "genlib")}
    where: dict[tuple[str, str], int] = {}
    for m in graph:
        for imp in imports(modules[m], modules):
            if imp.type_only or imp.target not in graph:
                continue
            graph[m].add(imp.target)
            where.setdefault((m, imp.target), imp.line)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    lines = []
    for comp in sorted(comps):
        edges = [
            f"{modules[a].rel}:{where[a, b]} -> {b}"
            for a in comp
            for b in sorted(graph[a])
            if b in comp
        ]
        lines.append(f"cycle {' <-> '.join(comp)}: " + "; ".join(edges))
    return lines


def private_imports(modules: dict[str, Source]) -> list[str]:
    """``from genlib.a import _x``, ``import genlib.a._m`` and ``genlib.a._x`` / ``alias._x``
    attribute uses, in genlib, of another module's private names."""
    out = []
    for m, src in modules.items():
        if not _within(m, "genlib"):
            continue

        def private_module(target: str, src: Source = src) -> str | None:
            # a private module ``pkg._m`` is for the modules of ``pkg`` only
            parts = target.split(".")
            for i, part in enumerate(parts):
                if _is_private(part) and not _within(src.module, ".".join(parts[:i])):
                    return ".".join(parts[: i + 1])
            return None

        aliases: dict[str, str] = {}  # local name -> the module it is bound to
        for node, _ in _walk_imports(src.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        aliases[_top(alias.name)] = _top(alias.name)
            else:
                base = _from_base(src, node)
                for alias in node.names:
                    if f"{base}.{alias.name}" in modules:  # ``from genlib import viz``
                        aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
        for imp in imports(src, modules):
            if not _within(imp.target, "genlib"):
                continue
            pm = private_module(imp.target)
            if pm:
                out.append(f"{src.rel}:{imp.line} imports the private module {pm}")
            for name in imp.names:
                if _is_private(name) and imp.target != m:
                    out.append(f"{src.rel}:{imp.line} imports {imp.target}.{name}")
        for node in ast.walk(src.tree):
            if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
                continue
            chain = []
            cur: ast.expr = node.value
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if not isinstance(cur, ast.Name) or cur.id not in aliases:
                continue
            owner = ".".join([aliases[cur.id], *reversed(chain)])
            if _within(owner, "genlib") and owner in modules and owner != m:
                out.append(f"{src.rel}:{node.lineno} uses {owner}.{node.attr}")
    return sorted(set(out))


def forbidden_imports(
    modules: dict[str, Source], libs: set[str], allowed: tuple[str, ...]
) -> list[str]:
    """Imports of ``libs`` (top-level package names) outside the ``allowed`` module prefixes."""
    out = []
    for m, src in modules.items():
        if _within(m, allowed):
            continue
        for imp in imports(src, modules):
            if _top(imp.target) in libs:
                out.append(f"{src.rel}:{imp.line} imports {imp.target}")
    return sorted(out)


def upward_imports(modules: dict[str, Source]) -> list[str]:
    """Imports against the flow ``pages/`` -> ``genlib.ui`` -> genlib core: core importing the UI
    layer or a page, the UI importing a page."""
    out = []
    for m, src in modules.items():
        if not _within(m, "genlib"):
            continue
        above = ("pages", "app") if _within(m, "genlib.ui") else ("genlib.ui", "pages", "app")
        for imp in imports(src, modules):
            if _within(imp.target, above):
                out.append(f"{src.rel}:{imp.line} imports {imp.target}")
    return sorted(out)


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def viz_computing(modules: dict[str, Source]) -> list[str]:
    """Sampling/simulation calls and imports of model/sampler/process/RNG modules in genlib/viz."""
    out = []
    for m, src in modules.items():
        if not _within(m, "genlib.viz"):
            continue
        for node in ast.walk(src.tree):
            if isinstance(node, ast.Call):
                name = _call_name(node.func)
                if name and (
                    name in VIZ_FORBIDDEN_CALLS or name.startswith(VIZ_FORBIDDEN_CALL_PREFIXES)
                ):
                    out.append(f"{src.rel}:{node.lineno} calls {ast.unparse(node.func)}(...)")
        for imp in imports(src, modules):
            hit = [imp.target, *(f"{imp.target}.{n}" for n in imp.names)]
            if not imp.type_only and any(_within(t, VIZ_FORBIDDEN_IMPORTS) for t in hit):
                what = imp.target + (f" ({', '.join(imp.names)})" if imp.names else "")
                out.append(f"{src.rel}:{imp.line} imports {what}")
    return sorted(out)


def prints(modules: dict[str, Source]) -> list[str]:
    """Uses of ``print`` (calls or the function passed on) in genlib outside the CLI."""
    out = []
    for m, src in modules.items():
        if not _within(m, "genlib") or _within(m, CLI_MODULES):
            continue
        for node in ast.walk(src.tree):
            if isinstance(node, ast.Name) and node.id == "print" and isinstance(node.ctx, ast.Load):
                out.append(f"{src.rel}:{node.lineno} uses print")
    return sorted(out)


def long_pages(root: Path, limit: int = MAX_PAGE_LINES) -> list[str]:
    out = []
    for path in sorted((root / "pages").glob("*.py")):
        if path.stem in LONG_PAGES:
            continue
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > limit:
            out.append(f"pages/{path.name}: {n} lines (> {limit})")
    return out


# --------------------------------------------------------------------------- the rules


@pytest.fixture(scope="module")
def modules() -> dict[str, Source]:
    return scan(ROOT)


def _check(offenders: list[str], rule: str) -> None:
    if offenders:
        lines = "\n  ".join(offenders)
        pytest.fail(f"{len(offenders)} offender(s) of '{rule}':\n  {lines}", pytrace=False)


def test_the_scan_sees_the_code(modules):
    # guards the checks below against passing on an empty or misparsed tree
    assert {"genlib", "genlib.training", "genlib.viz", "genlib.ui", "app"} <= set(modules)
    assert sum(_within(m, "pages") for m in modules) >= 10
    ui_streamlit = [
        i
        for m in modules
        if _within(m, "genlib.ui")
        for i in imports(modules[m], modules)
        if _top(i.target) == "streamlit"
    ]
    assert ui_streamlit, "the scan finds no streamlit import in genlib/ui"


def test_no_import_cycle_in_genlib(modules):
    cycles = import_cycles(modules)
    _check(cycles, "no import cycle in genlib")


def test_no_private_names_across_modules(modules):
    bad = private_imports(modules)
    _check(bad, "no module imports another module's private (_x) names")


def test_imports_flow_from_pages_to_ui_to_core(modules):
    _check(upward_imports(modules), "imports flow pages -> genlib.ui -> genlib core")


def test_only_ui_and_pages_import_streamlit(modules):
    bad = forbidden_imports(modules, {"streamlit"}, STREAMLIT_OK)
    _check(bad, "only genlib/ui, pages/ and app.py import streamlit")


def test_only_viz_imports_plotting_libraries(modules):
    bad = forbidden_imports(modules, DRAWING_LIBS, DRAWING_OK)
    _check(bad, "only genlib/viz imports plotly/altair")


def test_viz_only_draws(modules):
    bad = viz_computing(modules)
    _check(bad, "genlib/viz does no sampling or simulation")


def test_genlib_never_prints(modules):
    bad = prints(modules)
    _check(bad, "genlib never prints (progress flows through callbacks)")


def test_model_pages_are_short():
    bad = long_pages(ROOT)
    _check(bad, f"every model page is at most {MAX_PAGE_LINES} lines")


# --------------------------------------------------------------------------- the checkers work


def test_checks_catch_planted_offenders(tmp_path):
    files = {
        "genlib/__init__.py": "",
        "genlib/a.py": "from genlib.b import helper\n_secret = 1\n",
        "genlib/b.py": (
            "def helper():\n    from genlib import a  # lazy, still a cycle\n    return a._secret\n"
        ),
        "genlib/c.py": "from genlib.a import _secret\nimport genlib.a\nX = genlib.a._secret\n",
        "genlib/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import genlib.e\n",
        "genlib/e.py": "import genlib.d\n",  # not a cycle: d's import is type-only
        "genlib/pkg/__init__.py": "from genlib.pkg._impl import f\n",  # own package: fine
        "genlib/pkg/_impl.py": "def f():\n    print('hi')\n",
        "genlib/f.py": "from genlib.pkg._impl import f\nimport streamlit as st\nimport plotly\n",
        "genlib/g.py": "def h():\n    from genlib.ui import widgets\n",
        "genlib/viz/__init__.py": "",
        "genlib/viz/v.py": (
            "import torch\nfrom genlib.samplers import langevin\n"
            "def fig(m, n):\n    x = m.sample(n)\n    return torch.randn(3), langevin(x)\n"
        ),
        "genlib/cli.py": "print('output')\n",
        "genlib/ui/__init__.py": "import streamlit\n",
        "genlib/ui/widgets.py": "import streamlit\nfrom genlib import a\n",
        "pages/p.py": "import streamlit as st\n" + "x = 1\n" * MAX_PAGE_LINES,
        "pages/home.py": "x = 1\n" * (MAX_PAGE_LINES + 5),
        "app.py": "import streamlit as st\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    mods = scan(tmp_path)
    cycles = import_cycles(mods)
    assert len(cycles) == 1 and "genlib.a <-> genlib.b" in cycles[0], cycles
    assert private_imports(mods) == [
        "genlib/b.py:3 uses genlib.a._secret",
        "genlib/c.py:1 imports genlib.a._secret",
        "genlib/c.py:3 uses genlib.a._secret",
        "genlib/f.py:1 imports the private module genlib.pkg._impl",
    ]
    assert forbidden_imports(mods, {"streamlit"}, STREAMLIT_OK) == [
        "genlib/f.py:2 imports streamlit"
    ]
    assert forbidden_imports(mods, DRAWING_LIBS, DRAWING_OK) == ["genlib/f.py:3 imports plotly"]
    assert viz_computing(mods) == [
        "genlib/viz/v.py:2 imports genlib.samplers (langevin)",
        "genlib/viz/v.py:4 calls m.sample(...)",
        "genlib/viz/v.py:5 calls langevin(...)",
        "genlib/viz/v.py:5 calls torch.randn(...)",
    ]
    assert upward_imports(mods) == ["genlib/g.py:2 imports genlib.ui.widgets"]
    assert prints(mods) == ["genlib/pkg/_impl.py:2 uses print"]
    assert long_pages(tmp_path) == [f"pages/p.py: {MAX_PAGE_LINES + 1} lines (> {MAX_PAGE_LINES})"]
