"""Imports run one way (STYLE 14): no import cycle among relake's modules, no ``_private`` name used from
another module, and no import inside a function except of an optional dependency, or in the CLI layer.

The check reads the source with ``ast`` (every import, those inside functions and ``if TYPE_CHECKING:``
included), so a circle hidden by a function-level import is still a circle. The CLI layer (``relake.cli``) is
the one place that may import inside functions: each command imports the library it calls when it runs, so
``relake`` starts without loading every command's modules (build, copies, publish, ... load only for their
command); those imports are edges of the graph like any other.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# optional dependencies: imported only where (and when) they are used
OPTIONAL = frozenset({"ray", "fsspec", "pdqhash", "PIL"})
# modules (and the modules below them) whose functions may import anything: the CLI's commands load their library
# when they run, which keeps the CLI's start short
LAZY = ("relake.cli",)


@dataclass(frozen=True)
class Edge:
    source: str  # the importing module
    target: str  # the imported module
    line: int


def modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package under ``root``."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _absolute(node: ast.ImportFrom, name: str, path: Path) -> str:
    """The absolute module a ``from … import`` names (relative ones resolved against ``name``)."""
    if not node.level:
        return node.module or ""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _module_of(dotted: str, mods: dict[str, Path]) -> str | None:
    """The longest prefix of ``dotted`` that is one of ``mods``."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in mods:
            return ".".join(parts[:i])
    return None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _in_functions(tree: ast.Module) -> set[ast.AST]:
    """The import statements nested in a function (or method) body."""
    inside: set[ast.AST] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return inside


def _cycles(mods: dict[str, Path], edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself), sorted."""
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for e in edges:
        graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return sorted(found)


def _lazy(name: str, lazy: tuple[str, ...]) -> bool:
    """Whether module ``name`` is one of ``lazy`` or below one of them."""
    return any(name == m or name.startswith(m + ".") for m in lazy)


def check(root: Path, package: str, lazy: tuple[str, ...] = ()) -> list[str]:
    """Every breach of the import rules in ``root/package``, one line each (empty when there is none). The
    modules of ``lazy`` (and those below them) may import inside functions; their imports still count as edges."""
    mods = modules(root, package)
    problems: list[str] = []
    edges: list[Edge] = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        in_function = set() if _lazy(name, lazy) else _in_functions(tree)
        bound: dict[str, str] = {}  # local name -> the package module it is bound to
        where = f"{path.relative_to(root)}"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _module_of(alias.name, mods)
                    if target is not None:
                        targets.append(target)
                        if alias.asname:
                            bound[alias.asname] = target
                        else:
                            bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
                top = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(node, name, path)
                top = [source.split(".")[0]]
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in mods:  # a module imported by name: the edge is to it
                        targets.append(sub)
                        bound[alias.asname or alias.name] = sub
                    elif source in mods:
                        targets.append(source)
                        if _private(alias.name) and source != name:
                            problems.append(f"{where}:{node.lineno}: private name {alias.name} imported from "
                                            f"{source}")
            else:
                continue
            edges.extend(Edge(name, t, node.lineno) for t in dict.fromkeys(targets))
            if node in in_function and (targets or not set(top) <= OPTIONAL):
                what = ", ".join(dict.fromkeys(targets or top))
                problems.append(f"{where}:{node.lineno}: import of {what} inside a function "
                                f"(only optional dependencies may be: {', '.join(sorted(OPTIONAL))})")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                dotted = _dotted(node.value)
                if dotted is None:
                    continue
                head, _, rest = dotted.partition(".")
                if head not in bound:
                    continue
                target = ".".join(x for x in (bound[head], rest) if x)
                if target in mods and target != name:
                    problems.append(f"{where}:{node.lineno}: private name {node.attr} used from {target}")
    problems.extend("import cycle: " + " <-> ".join(c) for c in _cycles(mods, edges))
    return problems


def test_relake_imports_run_one_way() -> None:
    assert check(SRC, "relake", LAZY) == []


def test_the_check_finds_a_cycle_a_private_name_and_a_function_level_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import shared\n\n_hidden = 1\n")
    (pkg / "b.py").write_text("from pkg.a import _hidden\n\nshared = _hidden\n")
    (pkg / "c.py").write_text("import pkg.low\nimport pkg.low as low\n\n"
                              "def f() -> int:\n    import ray\n    from pkg import low as again\n"
                              "    return pkg.low._secret + low._secret + again.public\n")
    (pkg / "low.py").write_text("_secret = 1\npublic = 2\n\ndef g() -> None:\n    import json\n")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.part import value\n")
    (pkg / "sub" / "part.py").write_text("from pkg.sub import value as again\n\nvalue = 1\n")
    assert sorted(check(tmp_path, "pkg")) == sorted([
        "pkg/b.py:1: private name _hidden imported from pkg.a",
        "pkg/c.py:6: import of pkg.low inside a function (only optional dependencies may be: PIL, fsspec, pdqhash, "
        "ray)",
        "pkg/c.py:7: private name _secret used from pkg.low",
        "pkg/c.py:7: private name _secret used from pkg.low",
        "pkg/low.py:5: import of json inside a function (only optional dependencies may be: PIL, fsspec, pdqhash, ray)",
        "import cycle: pkg.a <-> pkg.b",
        "import cycle: pkg.sub <-> pkg.sub.part",
    ])


def test_the_check_passes_a_package_whose_imports_run_one_way(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("__all__ = ['value']\nvalue = 1\n")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.part import twice\n")
    (pkg / "sub" / "part.py").write_text("from pkg.low import value\n\ndef twice() -> int:\n    return 2 * value\n")
    (pkg / "top.py").write_text("from typing import TYPE_CHECKING\n\nimport pkg.low\nfrom pkg.sub import twice\n\n"
                                "if TYPE_CHECKING:\n    from pkg.low import value\n\n"
                                "def f() -> int:\n    import fsspec\n    return twice() + pkg.low.__all__.count('x')\n")
    assert check(tmp_path, "pkg") == []


def _package(root: Path, files: dict[str, str]) -> None:
    """Write ``files`` (path below ``root`` -> text), folders included."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_cli_layer_may_import_inside_functions_but_not_in_a_circle(tmp_path: Path) -> None:
    lazy_import = "def run() -> int:\n    from pkg.low import value\n\n    return value\n"
    _package(tmp_path, {"pkg/__init__.py": "", "pkg/low.py": "value = 1\n", "pkg/cli/__init__.py": "",
                        "pkg/cli/command.py": lazy_import, "pkg/clinic.py": lazy_import})
    assert check(tmp_path, "pkg", ("pkg.cli",)) == [
        "pkg/clinic.py:2: import of pkg.low inside a function (only optional dependencies may be: PIL, fsspec, "
        "pdqhash, ray)",
    ]
    assert len(check(tmp_path, "pkg")) == 2  # without the exemption, both are breaches
    _package(tmp_path, {"pkg/low.py": "from pkg.cli.command import run\n\nvalue = 1\n"})  # a circle through it
    assert "import cycle: pkg.cli.command <-> pkg.low" in check(tmp_path, "pkg", ("pkg.cli",))
