"""Helpers of the window's tests (the ``window`` fixture is in ``conftest.py``): dropping files, waiting for
ingestion, loading the tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.gui.main_window import MainWindow
from app.gui.model_dialog import ModelChoice

TIMEOUT = 60_000


def delete_now(obj) -> None:
    """``deleteLater`` and run the deferred delete now (processEvents outside an event loop leaves it posted, to
    fire in some later test's event loop)."""
    obj.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    QApplication.processEvents()


def png(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    img = np.full((600, 450, 3), 255, np.uint8)
    img[100:120, 50:400] = 0
    Image.fromarray(img).save(path)
    return path


def drop(win: MainWindow, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(
        QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    assert QApplication.sendEvent(win, enter) and enter.isAccepted()
    event = QDropEvent(
        QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    assert QApplication.sendEvent(win, event)


def ingested(win: MainWindow) -> bool:
    return bool(win.entries) and all(e.status in ("ready", "parsed", "partial", "failed") for e in win.entries.values())


def load_tiny(win: MainWindow, qtbot, choose: bool = True, **params) -> None:
    """Load the tiny model; ``choose``: then pick Engine -> model, as the user does (loading leaves it as it was)."""
    params = {"max_new_tokens": 256, "max_denoising_steps": 6, "seed": 0, **params}
    win.load_model(ModelChoice("tiny", "fp32", "cpu", params))
    qtbot.waitUntil(lambda: win.model_engine is not None and not win.worker.busy, timeout=TIMEOUT)
    if choose:
        win.engine_box.setCurrentText("model")


def parsed_sample(win: MainWindow, qtbot) -> None:
    """The sample document read and parsed by the builtin engine."""
    from app.gui import SAMPLE

    win.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(win), timeout=TIMEOUT)
    win.engine_box.setCurrentText("builtin")
    win.parse()
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=TIMEOUT)
