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
