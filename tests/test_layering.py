"""inference/ is headless: no module under it imports Qt or app/ (checked on the source, statically)."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "qtpy", "app")


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_inference_never_imports_qt_or_app():
    package = Path(__file__).resolve().parents[1] / "inference"
    files = sorted(package.rglob("*.py"))
    assert files
    offenders = {str(f.relative_to(package)): sorted(imported_roots(f) & set(FORBIDDEN)) for f in files}
    assert not {k: v for k, v in offenders.items() if v}


def test_checker_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from PySide6.QtCore import QObject\n    import app.cli\n")
    assert {"PySide6", "app"} <= imported_roots(bad)


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for the packages under ``root`` (``inference``, ``app``)."""
    names = {}
    for top in ("inference", "app"):
        for path in (root / top).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports_of(path: Path, names: dict[str, Path]) -> tuple[set[str], list[str]]:
    """The project modules a file imports (at the top or inside functions) and the private names it takes from
    another module (``from x import _y``)."""
    found, private = set(), []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in names:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in names else node.module)
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    private.append(f"{node.module}.{alias.name}")
    return found, private


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def project_graph() -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    root = Path(__file__).resolve().parents[1]
    names = module_names(root)
    graph, private = {}, {}
    for name, path in names.items():
        graph[name], taken = imports_of(path, names)
        if taken:
            private[name] = taken
    return graph, private


def test_no_module_imports_another_modules_private_names():
    _graph, private = project_graph()
    assert not private


def test_the_import_graph_has_no_cycles_lazy_imports_included():
    graph, _private = project_graph()
    assert len(graph) > 50
    assert not import_cycles(graph)


def test_the_checkers_find_private_imports_and_cycles(tmp_path):
    names = {"inference.a": tmp_path / "a.py", "inference.b": tmp_path / "b.py"}
    names["inference.a"].write_text("from inference.b import _hidden\n")
    names["inference.b"].write_text("def f():\n    import inference.a\n")
    graph = {}
    for name, path in names.items():
        graph[name], taken = imports_of(path, names)
        if name == "inference.a":
            assert taken == ["inference.b._hidden"]
    assert import_cycles(graph) == [["inference.a", "inference.b"]]
