"""The PySide6 window. ``run()`` opens it; ``screenshot()`` renders it offscreen in a given state."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.resources import resource_path, resources_dir

RESOURCES = resources_dir()
SAMPLE = resource_path("sample.pdf")
STATES = ("empty", "loaded", "generating", "done", "conversation", "extract", "dark")


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


DARK = {
    "Window": "#202124",
    "WindowText": "#e8eaed",
    "Base": "#17181a",
    "AlternateBase": "#26282b",
    "Text": "#e8eaed",
    "Button": "#2b2d30",
    "ButtonText": "#e8eaed",
    "Highlight": "#2a7ab8",
    "HighlightedText": "#ffffff",
    "ToolTipBase": "#2b2d30",
    "ToolTipText": "#e8eaed",
    "Link": "#8ab4f8",
    "PlaceholderText": "#9aa0a6",
}
DARK_DISABLED = {
    "WindowText": "#6b6f75",
    "Text": "#6b6f75",
    "ButtonText": "#6b6f75",
    "Button": "#242528",
    "Base": "#1c1d1f",
    "Highlight": "#3c4043",
    "HighlightedText": "#9aa0a6",
}


def apply_scheme(app: Any, dark: bool) -> None:
    """The light palette of the style, or a dark one whose disabled widgets look disabled."""
    from PySide6.QtGui import QColor, QPalette

    if not dark:
        app.setPalette(app.style().standardPalette())
        return
    pal = QPalette()
    for name, colour in DARK.items():
        pal.setColor(getattr(QPalette.ColorRole, name), QColor(colour))
    for name, colour in DARK_DISABLED.items():
        pal.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, name), QColor(colour))
    app.setPalette(pal)


def follow_system_theme(app: Any) -> None:
    """Follow the system's scheme; ``DWB_COLOR_SCHEME=dark|light`` overrides it."""
    from PySide6.QtCore import Qt

    hints = app.styleHints()
    forced = os.environ.get("DWB_COLOR_SCHEME", "").lower()

    def apply(*_: Any) -> None:
        dark = forced == "dark" or (forced != "light" and hints.colorScheme() == Qt.ColorScheme.Dark)
        apply_scheme(app, dark)

    apply()
    hints.colorSchemeChanged.connect(apply)


def run(files: Sequence[str] = ()) -> int:
    app = application()
    from .main_window import MainWindow

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


def _model_parse(app: Any, window: Any, stop: Any = None) -> Any:
    """The demonstration model parses the sample (page by page); ``stop(event, runs)`` may freeze the panel."""
    window.engine_box.setCurrentText("model")
    runs = []

    def watch(event: Any) -> None:
        from inference.events import PrefillStarted

        if isinstance(event, PrefillStarted):
            runs.append(event)
        if stop is not None:
            stop(event, len(runs))

    job = window.parse()
    if job is not None:
        job.event.connect(watch)
    return job


def _generating(app: Any, window: Any) -> None:
    """Page 2 of the sample mid-canvas: the text layer's words emerging from noise."""
    frozen = []

    def stop_mid_canvas(event: Any, runs: int) -> None:
        from inference.events import DenoisingStep

        if isinstance(event, DenoisingStep) and runs == 2 and event.step >= GENERATING_STEP and not frozen:
            frozen.append(event)
            window.panel._redraw()
            window.panel.timer.stop()

    if window.model_engine is None:
        return
    _model_parse(app, window, stop_mid_canvas)
    wait_until(app, lambda: bool(frozen) or not window.worker.busy)
    if frozen:
        window.status_label.setText(
            f"Parsing page 2: canvas 1, step {frozen[0].step + 1} (tiny-trained demonstration model)"
        )


def _done(app: Any, window: Any) -> None:
    """The sample parsed by the demonstration model; the panel keeps page 2's last canvas."""
    if window.model_engine is not None:  # a build without the model runtime shows the builtin parse alone
        _model_parse(app, window)
        wait_until(app, lambda: not window.worker.busy)
    else:
        window.engine_box.setCurrentText("builtin")
        window.parse()
        wait_until(app, lambda: not window.worker.busy)
    window.toggle_panel(True)
    window.results.setCurrentWidget(window.results.rendered)
    window.page_view.highlight(2)


def _conversation(app: Any, window: Any) -> None:
    """Two questions with the builtin engine's evidence, then one with the model and its follow-up."""
    window.engine_box.setCurrentText("builtin")
    for question in ("What does the builtin engine do without weights?", "How does adaptive stopping work?"):
        window.ask(question)
        wait_until(app, lambda: not window.worker.busy)
    window.engine_box.setCurrentText("model" if window.model_engine is not None else "builtin")
    for question in ("What is block diffusion?", "And what is committed to the cache?"):
        window.question.setText(question)
        window.ask(question)
        wait_until(app, lambda: not window.worker.busy)
    window.engine_box.setCurrentText("builtin")
    window.results.setCurrentWidget(window.results.answer)
    cited = window.results.thread[0].citations if window.results.thread else []
    if cited:
        window.show_citation(cited[0])


def _extract(app: Any, window: Any) -> None:
    import json
    import tempfile

    schema = {
        "type": "object",
        "properties": {"Canvas": {"type": "string"}, "Steps": {"type": "string"}, "Tokens": {"type": "string"}},
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "schema.json"
        path.write_text(json.dumps(schema), encoding="utf-8")
        window.extract(str(path))
        wait_until(app, lambda: not window.worker.busy)
    source = next((s for s in window.results._rows if s is not None), None)
    if source is not None:
        window.show_citation(source)


GENERATING_STEP = 3  # the step the "generating" picture shows (0-based)
STAGES = {"generating": _generating, "done": _done, "dark": _done, "conversation": _conversation, "extract": _extract}


def not_rendered(window: Any, state: str) -> str:
    """Why the window is not in the state asked for (an error shown, the sample not read, work not finished), or
    "" when it is."""
    if window.last_error:
        return window.last_error.splitlines()[0]
    if state != "empty":
        entry = window.entries.get(str(SAMPLE.resolve()))
        if entry is None or entry.document is None:
            return f"the sample document was not read ({SAMPLE})"
    if state != "generating" and window.worker.busy:
        return "the work did not finish in time"
    return ""


def screenshot(out: str | Path, state: str = "done", size: tuple[int, int] = (1400, 860)) -> Path:
    """Render the window offscreen in ``state`` and save it as PNG. Real work, no mock-ups: the sample document is
    ingested and parsed, and the tiny model runs for the denoising panel."""
    from inference.runtime import has_model_runtime, require_model_runtime

    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    if state == "generating":
        require_model_runtime()  # the only state that is the model at work
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = application()
    from .main_window import MainWindow
    from .model_dialog import ModelChoice, checkpoint_defaults

    if state == "dark":
        apply_scheme(app, True)
    window = MainWindow()
    try:
        window.resize(*size)
        window.show()
        if state != "empty":
            window.add_paths([str(SAMPLE)])
            wait_until(
                app, lambda: all(e.document is not None or e.status == "failed" for e in window.entries.values())
            )
        if state in ("generating", "done", "dark", "conversation") and has_model_runtime():
            params = {**checkpoint_defaults("tiny-trained"), "seed": 0}
            window.load_model(ModelChoice("tiny-trained", "fp32", "cpu", params))
            wait_until(app, lambda: window.model_engine is not None or not window.worker.busy)
        if state in STAGES:
            STAGES[state](app, window)
        app.processEvents()
        if state != "generating":
            window.panel._redraw()
        problem = not_rendered(window, state)
        if problem:
            from inference.errors import WorkbenchError

            raise WorkbenchError(f"the window did not render the {state!r} state: {problem}")
        image = window.grab()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out), "PNG"):
            raise OSError(f"could not write {out}")
    finally:
        window.panel.timer.stop()
        window.worker.cancel()
        window.close()
        wait_until(app, lambda: not window.isVisible())
        window.deleteLater()
        app.processEvents()
        if state == "dark":
            apply_scheme(app, False)
    return out
