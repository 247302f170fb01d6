"""Module-level import graph of ``src/netbayes`` (every import, lazy ones included).

Usage::

    python tools/import_graph.py [SRC_ROOT] [--third-party]

Parses each ``src/netbayes/**/*.py`` with :mod:`ast` (nothing is imported) and records every
``import`` / ``from ... import`` of a ``netbayes`` module and of a third-party top-level package
(standard-library modules and ``__future__`` are skipped). An import inside a function body is
*lazy*, any other one is *top-level* (class bodies and module-level ``try``/``if`` blocks run at
import time). Imports under ``if TYPE_CHECKING:`` are ignored. ``from netbayes import x`` resolves
to the module ``netbayes.x`` when ``x`` is a module or package, else to ``netbayes``; relative
imports are resolved against the importing module. Importing ``netbayes.a.b`` also runs the
package ``netbayes.a``'s ``__init__``; such implicit parent imports are not edges, and neither are
dynamic ones (``importlib.import_module`` with a computed name).

Prints every module's imports, then the cycles: the strongly connected components (of more than
one module, or a module importing itself) of the graph of all netbayes-to-netbayes imports,
lazy and top-level alike. ``tests/test_architecture.py`` uses these functions to enforce the
layer table of ``ARCHITECTURE.md``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Import",
    "collect_imports",
    "find_cycles",
    "format_report",
    "internal_graph",
    "module_files",
]

PACKAGE = "netbayes"
DEFAULT_SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass(frozen=True, order=True)
class Import:
    """One import statement's target, seen from one module.

    Attributes
    ----------
    importer : str
        Dotted name of the importing module (``netbayes.cli``).
    target : str
        A netbayes module (``netbayes.models.survival``) or a third-party top-level package
        (``pymc``).
    lazy : bool
        True when the import runs inside a function body (only when the function is called).
    internal : bool
        True when ``target`` is a netbayes module.
    lineno : int
        Line of the statement.
    """

    importer: str
    target: str
    lazy: bool
    internal: bool
    lineno: int


def module_files(src_root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Map every module of ``package`` under ``src_root`` to its file.

    Parameters
    ----------
    src_root : pathlib.Path
        The folder holding the package folder (``src``).
    package : str
        Top-level package name.

    Returns
    -------
    dict of str to pathlib.Path
        Dotted module names (a package is named by its ``__init__.py``), sorted.
    """
    root = Path(src_root) / package
    if not root.is_dir():
        raise FileNotFoundError(f"src_root={str(src_root)!r} has no package folder {package!r}")
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(src_root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, lazy: bool) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Yield (import node, lazy) for every import under ``node``, skipping TYPE_CHECKING blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.orelse:  # the ``else`` branch runs
                yield from _walk_stmt(sub, lazy)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, lazy
            continue
        inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _walk(child, inner)


def _walk_stmt(stmt: ast.stmt, lazy: bool) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    wrapper = ast.Module(body=[stmt], type_ignores=[])
    yield from _walk(wrapper, lazy)


def _resolve(name: str, modules: Mapping[str, Path], package: str) -> tuple[str, bool] | None:
    """(target, internal) of an absolute dotted name; None for the standard library."""
    top = name.split(".")[0]
    if top == package:
        parts = name.split(".")
        while parts and ".".join(parts) not in modules:  # ``import netbayes.x.attr`` is rare
            parts.pop()
        return (".".join(parts) or package), True
    if top == "__future__" or top in sys.stdlib_module_names:
        return None
    return top, False


def _targets(
    node: ast.Import | ast.ImportFrom,
    importer: str,
    is_pkg: bool,
    modules: Mapping[str, Path],
    package: str,
) -> list[tuple[str, bool]]:
    if isinstance(node, ast.Import):
        found = [_resolve(a.name, modules, package) for a in node.names]
        return [f for f in found if f is not None]
    base = node.module or ""
    if node.level:
        anchor = importer.split(".")
        if not is_pkg:
            anchor = anchor[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    if base.split(".")[0] != package:
        found = _resolve(base, modules, package)
        return [] if found is None else [found]
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append((sub, True) if sub in modules else _resolve(base, modules, package))
    return [o for o in out if o is not None]


def collect_imports(src_root: Path = DEFAULT_SRC, package: str = PACKAGE) -> list[Import]:
    """Every import of every module of ``package`` (see the module docstring).

    Parameters
    ----------
    src_root : pathlib.Path
        The folder holding the package folder.
    package : str
        Top-level package name.

    Returns
    -------
    list of Import
        Sorted; one entry per (importer, target, lazy, line), so a target imported twice in one
        statement appears once.
    """
    modules = module_files(src_root, package)
    found: set[Import] = set()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_pkg = path.name == "__init__.py"
        for node, lazy in _walk(tree, False):
            for target, internal in _targets(node, name, is_pkg, modules, package):
                if target != name or not internal or node.level == 0:
                    found.add(Import(name, target, lazy, internal, node.lineno))
    return sorted(found)


def internal_graph(imports: Iterable[Import], modules: Iterable[str] = ()) -> dict[str, set[str]]:
    """Adjacency sets of the netbayes-to-netbayes imports (lazy and top-level alike).

    Parameters
    ----------
    imports : iterable of Import
    modules : iterable of str
        Extra nodes (modules that import nothing of netbayes).

    Returns
    -------
    dict of str to set of str
    """
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        graph.setdefault(imp.importer, set())
        if imp.internal:
            graph[imp.importer].add(imp.target)
            graph.setdefault(imp.target, set())
    return graph


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components that contain a cycle (Tarjan, iterative).

    Parameters
    ----------
    graph : mapping of str to iterable of str
        Adjacency lists; a target that is not a key is a node without edges.

    Returns
    -------
    list of list of str
        Each component sorted, components sorted; a component of one node is listed only when
        the node imports itself.
    """
    adj = {v: sorted(set(ws)) for v, ws in graph.items()}
    for ws in list(adj.values()):
        for w in ws:
            adj.setdefault(w, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(adj):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            if i < len(adj[v]):
                work.append((v, i + 1))
                w = adj[v][i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in adj[v]:
                    out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return sorted(out)


def format_report(imports: Iterable[Import], third_party: bool = True) -> str:
    """The graph as text: one line per module, its imports (``~`` marks a lazy one), then cycles.

    Parameters
    ----------
    imports : iterable of Import
    third_party : bool
        Also list third-party packages.

    Returns
    -------
    str
    """
    imports = list(imports)
    by_mod: dict[str, dict[str, bool]] = {}
    for imp in imports:
        if not imp.internal and not third_party:
            continue
        seen = by_mod.setdefault(imp.importer, {})
        # top-level wins over lazy when a module imports a target both ways
        seen[imp.target] = seen.get(imp.target, True) and imp.lazy
    lines = ["# import graph (~ = lazy, inside a function)"]
    for mod in sorted(by_mod):
        items = sorted(by_mod[mod].items(), key=lambda kv: (not kv[0].startswith(PACKAGE), kv[0]))
        names = [("~" if lazy else "") + t for t, lazy in items]
        lines.append(f"{mod} -> {', '.join(names) if names else '(nothing)'}")
    cycles = find_cycles(internal_graph(imports))
    lines.append(f"# cycles: {len(cycles)}")
    lines += [" <-> ".join(c) for c in cycles]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the import graph and its cycles; exit status 1 if there is a cycle."""
    args = list(sys.argv[1:] if argv is None else argv)
    third_party = "--no-third-party" not in args
    args = [a for a in args if not a.startswith("--")]
    src = Path(args[0]) if args else DEFAULT_SRC
    imports = collect_imports(src)
    print(format_report(imports, third_party=third_party))
    return 1 if find_cycles(internal_graph(imports)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
