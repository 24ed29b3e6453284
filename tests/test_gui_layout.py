"""The window at small sizes (800 x 600 and the 760 x 480 minimum): every control reachable, nothing cut. Offscreen,
real widgets, the sample document."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QRect
from PySide6.QtWidgets import QLabel

from app.gui import SAMPLE
from tests.qt_helpers import TIMEOUT, ingested


def inside(widget, container) -> bool:
    top_left = widget.mapTo(container, widget.rect().topLeft())
    return container.rect().contains(QRect(top_left, widget.size()))


@pytest.mark.parametrize("size", [(800, 600), (760, 480)])
def test_small_windows_keep_every_control_reachable(window, qtbot, size):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=5000)
    window.scope_label.setText("sample.pdf \u00b7 12,345 prompt tokens (follow-up: new tokens) ")
    qtbot.wait(50)
    bar = window.toolbar
    for action in bar.actions():
        if action.isSeparator():
            continue
        widget = bar.widgetForAction(action)
        assert widget is not None and widget.isVisible() and inside(widget, bar), action.text()  # not in "»"
    cleaned = window.cleaned_box
    assert cleaned.width() >= cleaned.sizeHint().width()  # "Cleaned", not "Clean"
    header = next(w for w in window.panel.findChildren(QLabel) if w.text() == "<b>Denoising</b>")
    assert header.isVisible() and inside(header, window.panel) and header.height() >= header.sizeHint().height()
    tabs = window.results.tabBar()
    assert all(tabs.tabRect(i).width() >= tabs.fontMetrics().horizontalAdvance(tabs.tabText(i)) for i in range(5))


def test_a_text_document_has_a_sign_in_the_list(window, qtbot, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("Some notes.", encoding="utf-8")
    window.add_paths([str(text)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert not window.doc_list.item(0).icon().isNull()


def test_a_new_window_fits_the_screen(qtbot):
    from PySide6.QtGui import QGuiApplication

    from app.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    room = QGuiApplication.primaryScreen().availableGeometry()
    assert room.width() < 1400 or room.height() < 860  # the offscreen screen is smaller than the default size
    assert window.width() <= max(room.width(), 760) and window.height() <= max(room.height(), 480)
    window.worker.finish()
