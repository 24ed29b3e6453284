"""The PySide6 window. ``run()`` opens it; ``screenshot()`` renders it offscreen in a given state."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
SAMPLE = RESOURCES / "sample.pdf"
STATES = ("empty", "loaded", "generating", "done")


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
    follow_system_theme(app)
    return app


def follow_system_theme(app: Any) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPalette

    hints = app.styleHints()

    def apply(*_: Any) -> None:
        if hints.colorScheme() == Qt.ColorScheme.Dark:
            pal = QPalette()
            for role, colour in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.WindowText, "#e8eaed"),
                                 (QPalette.ColorRole.Base, "#17181a"), (QPalette.ColorRole.AlternateBase, "#26282b"),
                                 (QPalette.ColorRole.Text, "#e8eaed"), (QPalette.ColorRole.Button, "#2b2d30"),
                                 (QPalette.ColorRole.ButtonText, "#e8eaed"), (QPalette.ColorRole.Highlight, "#2a7ab8"),
                                 (QPalette.ColorRole.HighlightedText, "#ffffff")):
                pal.setColor(role, QColor(colour))
            app.setPalette(pal)
        else:
            app.setPalette(app.style().standardPalette())

    apply()
    hints.colorSchemeChanged.connect(apply)


def run(files: Sequence[str] = ()) -> int:
    app = application()
    from .main_window import MainWindow

    window = MainWindow()
    window.show()
    missing = [f for f in files if not Path(f).exists()]
    window.add_paths([f for f in files if Path(f).exists()])
    if missing:
        window.show_error("Not found: " + ", ".join(missing))
    return app.exec()


def wait_until(app: Any, condition: Any, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    return True


def screenshot(out: str | Path, state: str = "done", size: tuple[int, int] = (1400, 860)) -> Path:
    """Render the window offscreen in ``state`` and save it as PNG. Real work, no mock-ups: the sample document is
    ingested and parsed, and the tiny model runs for the denoising panel."""
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = application()
    from .main_window import MainWindow
    from .model_dialog import ModelChoice

    window = MainWindow()
    window.resize(*size)
    window.show()
    if state != "empty":
        window.add_paths([str(SAMPLE)])
        wait_until(app, lambda: all(e.document is not None or e.status == "failed" for e in window.entries.values()))
    if state in ("generating", "done"):
        params = {"max_new_tokens": 768, "max_denoising_steps": 24, "seed": 0}
        window.load_model(ModelChoice("tiny", "fp32", "cpu", params))
        wait_until(app, lambda: window.model_engine is not None or not window.worker.busy)
    if state == "generating":
        steps_seen = []

        def stop_mid_canvas(event: Any) -> None:
            from inference.events import DenoisingStep

            if isinstance(event, DenoisingStep) and event.canvas == 1 and event.step >= 9 and not steps_seen:
                steps_seen.append(event)
                window.panel._redraw()  # noqa: SLF001 - freeze the picture at this step
                window.panel.timer.stop()

        window.engine_box.setCurrentText("model")
        window.question.setText("What does the sample document say about block diffusion?")
        job = window.ask(window.question.text())
        if job is not None:
            job.event.connect(stop_mid_canvas)
        wait_until(app, lambda: bool(steps_seen) or not window.worker.busy)
        window.status_label.setText("Generating: canvas 2, step 10 (tiny model, random weights)")
    if state == "done":
        window.engine_box.setCurrentText("model")
        window.question.setText("What does the sample document say about block diffusion?")
        window.ask(window.question.text())
        wait_until(app, lambda: not window.worker.busy)
        window.engine_box.setCurrentText("builtin")
        window.parse()
        wait_until(app, lambda: not window.worker.busy)
        window.results.setCurrentWidget(window.results.rendered)
        window.page_view.highlight(2)
    app.processEvents()
    if state != "generating":
        window.panel._redraw()  # noqa: SLF001
    image = window.grab()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out), "PNG"):
        raise OSError(f"could not write {out}")
    window.panel.timer.stop()
    if state == "generating":
        window.worker.cancel()
    window.close()
    window.deleteLater()
    app.processEvents()
    return out
