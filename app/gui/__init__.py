"""The PySide6 window. ``run()`` opens it; :mod:`app.gui.screenshot` renders it offscreen in a given state."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.gui.theme import THEMES, apply_scheme, follow_system_theme, is_dark, set_theme
from app.resources import resource_path, resources_dir

__all__ = ["THEMES", "apply_scheme", "is_dark", "set_theme"]  # the theme, for the window and screenshots
RESOURCES = resources_dir()
SAMPLE = resource_path("sample.pdf")


def _clean_qt_environment() -> None:
    """opencv-python (not the headless build) points Qt at its own bundled Qt 5 plugins and fonts: undo that."""
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        value = os.environ.get(name, "")
        if "cv2" in value:
            del os.environ[name]


def application(argv: Sequence[str] | None = None) -> Any:
    _clean_qt_environment()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("Diffusion Workbench")
    app.setOrganizationName("DiffusionWorkbench")
    app.setStyle("Fusion")
    icon = resource_path("icon.png")
    if icon.exists():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    follow_system_theme(app)
    return app


def run(files: Sequence[str] = ()) -> int:
    app = application()
    from app.gui.main_window import MainWindow

    window = MainWindow()
    # closing the window cancels and waits for the worker; a quit from elsewhere must not leave it running either
    app.aboutToQuit.connect(lambda: window.worker.shutdown_blocking() if window.worker.thread.isRunning() else None)
    window.show()
    missing = [f for f in files if not Path(f).exists()]
    window.add_paths([f for f in files if Path(f).exists()])
    if missing:
        window.show_error("Not found: " + ", ".join(missing))
    status = app.exec()
    if not window.worker.thread.isRunning():
        leave(status)
    return status


def leave(status: int) -> None:
    """End the process now that the window has closed and its worker is joined: logs and streams flushed (the
    window wrote its settings when it closed), then ``os._exit``. Python's own teardown after a model has run
    (freeing torch's and transformers' modules and Qt's objects one by one) takes seconds, does nothing a user needs,
    and would keep a closed window's process alive that long."""
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing more to write
            pass
    os._exit(status)


def wait_until(app: Any, condition: Any, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    return True
