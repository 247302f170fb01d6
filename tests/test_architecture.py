"""The import layering of ARCHITECTURE.md, enforced on the source.

The import graph comes from ``tools/import_graph.py`` (``ast``, nothing is imported; lazy
imports inside functions count). The layer table is parsed from ARCHITECTURE.md itself, so the
document and the code cannot drift apart.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"pymc", "pytensor", "nutpie", "numba", "arviz"}


def _tool():
    spec = importlib.util.spec_from_file_location(
        "import_graph", ROOT / "tools" / "import_graph.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = mod
    spec.loader.exec_module(mod)
    return mod


IG = _tool()


def _table() -> list[tuple[str, int, set[str]]]:
    """(pattern, layer, heavy packages allowed) per row of ARCHITECTURE.md's module table."""
    rows = []
    for line in (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `(netbayes[\w.*]*)` \| (\d+) \| ([^|]+) \|", line)
        if m:
            heavy = {h.strip() for h in m.group(3).split(",")} - {"-", ""}
            rows.append((m.group(1), int(m.group(2)), heavy))
    return rows


TABLE = _table()


def _row(module: str) -> tuple[int, set[str]] | None:
    """The most specific row matching ``module`` (exact, else the longest ``pkg.*``)."""
    best = None
    for pat, layer, heavy in TABLE:
        if pat == module:
            return layer, heavy
        if pat.endswith(".*"):
            base = pat[:-2]
            if (module == base or module.startswith(base + ".")) and (
                best is None or len(base) > best[0]
            ):
                best = (len(base), layer, heavy)
    return None if best is None else (best[1], best[2])


@pytest.fixture(scope="module")
def imports():
    return IG.collect_imports(ROOT / "src")


def test_the_table_is_read():
    assert len(TABLE) >= 20
    assert _row("netbayes.spec") == (0, set())
    assert _row("netbayes.families.weibull")[0] == 3
    assert _row("netbayes.models.registry")[0] == 1  # the exact row beats `netbayes.models.*`


def test_every_module_has_a_row():
    modules = IG.module_files(ROOT / "src")
    assert [m for m in modules if _row(m) is None] == []


def test_no_import_cycle(imports):
    graph = IG.internal_graph(imports, IG.module_files(ROOT / "src"))
    assert IG.find_cycles(graph) == []


def test_every_import_goes_down_the_layers(imports):
    bad = []
    for imp in imports:
        if not imp.internal:
            continue
        src, dst = _row(imp.importer), _row(imp.target)
        if src is None or dst is None or dst[0] > src[0]:
            kind = "lazy " if imp.lazy else ""
            bad.append(f"{imp.importer}:{imp.lineno} {kind}imports {imp.target}")
    assert bad == []


def test_heavy_packages_only_where_the_table_allows(imports):
    bad = [
        f"{imp.importer}:{imp.lineno} imports {imp.target}"
        for imp in imports
        if not imp.internal
        and imp.target in HEAVY
        and imp.target not in (_row(imp.importer) or (0, set()))[1]
    ]
    assert bad == []


def test_the_cycle_finder_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert IG.find_cycles(g) == [["a", "b", "c"], ["e"]]
    assert IG.find_cycles({"a": {"b"}, "b": set()}) == []


def test_a_misplaced_import_would_be_caught(tmp_path):
    """A planted upward import in a copy of a small package tree is reported."""
    pkg = tmp_path / "netbayes"
    (pkg / "predict").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "spec.py").write_text("def f():\n    from netbayes.predict import x\n")
    (pkg / "predict" / "__init__.py").write_text("x = 1\n")
    found = IG.collect_imports(tmp_path)
    up = [i for i in found if i.importer == "netbayes.spec" and i.target == "netbayes.predict"]
    assert len(up) == 1 and up[0].lazy
    assert _row("netbayes.predict")[0] > _row("netbayes.spec")[0]
