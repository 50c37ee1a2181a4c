"""adtoolkit has no import cycle, counting imports inside functions and type-only
(TYPE_CHECKING) imports: each layer only knows the layers below it, so any module
can be read, tested and replaced from the bottom up.  In the IOC: records, device
support, drivers, plugins, server; in ``xml/``: the shared XML text conventions,
then the attributes file and the layout file, then the ready-made layouts, the
validator, the spec and install."""

from __future__ import annotations

import ast
from pathlib import Path

import adtoolkit

PACKAGE = Path(adtoolkit.__file__).resolve().parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> modules under ``root`` it imports anywhere in its source."""
    modules = {_module_name(p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for alias in node.names:
                    # `from pkg import module` needs the module, not pkg's __init__ names
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
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
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_from_package_import_module_points_at_the_module_only():
    # devices/cam.py says `from . import priming`: an edge to priming, not to devices/__init__.
    graph = import_graph()
    assert "adtoolkit.devices.priming" in graph["adtoolkit.devices.cam"]
    assert "adtoolkit.devices" not in graph["adtoolkit.devices.cam"]


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_graph_counts_imports_inside_functions():
    # xml/command.py imports its helpers only when the command runs.
    assert "adtoolkit.xml.validator" in import_graph()["adtoolkit.xml.command"]


def test_no_import_cycle_in_the_ioc_package():
    graph = import_graph(PACKAGE / "ioc")
    assert "adtoolkit.ioc.driver" in graph  # the graph was read from the sources
    assert cycles(graph) == []


def test_no_import_cycle_anywhere_in_adtoolkit():
    graph = import_graph()
    assert {"adtoolkit.ioc.driver", "adtoolkit.xml.layoutfile", "adtoolkit.devices"} <= set(graph)
    assert cycles(graph) == []
