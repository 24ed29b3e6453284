"""The window's panes, built once: the document list, the page viewer with its navigation row, the results side (runs,
results, find bar, denoising panel), the banner over them, the status bar and the docks.

Functions of the ``MainWindow`` (``window``): each builds one part and keeps its widgets on the window, where the rest
of the window reaches them (``window.page_view``, ``window.results``...). Only signals between a pane's own widgets
are connected here; the window connects the panes to its own slots.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.gui import redenoise
from app.gui.banner import Banner
from app.gui.denoise_panel import DenoisePanel
from app.gui.find import FindBar, Finder
from app.gui.ocr_review import OcrReview
from app.gui.page_view import PageView
from app.gui.prefs import ElidedLabel
from app.gui.queue_view import TaskQueue
from app.gui.results import Results
from app.gui.runs import Runs, RunsBar
from app.gui.selection import PageSelection
from app.gui.views import DocumentList


def central_panes(window: Any) -> None:
    """The window's middle: document list | page viewer | results side, under the banner."""
    window.doc_list = DocumentList()
    window.doc_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    viewer = page_viewer(window)
    window.right = results_side(window)
    window.split = QSplitter(Qt.Orientation.Horizontal)
    window.split.setObjectName("main")
    window.split.addWidget(window.doc_list)
    window.split.addWidget(viewer)
    window.split.addWidget(window.right)
    window.split.setSizes([230, 620, 550])
    window.split.setStretchFactor(0, 0)  # the list keeps its width as the window or the other panes change
    window.split.setStretchFactor(1, 1)
    window.split.setStretchFactor(2, 1)
    window.split.setCollapsible(0, False)
    window.banner = Banner()
    central = QWidget()
    outer = QVBoxLayout(central)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(window.split, 1)
    window.setCentralWidget(central)
    window.banner.overlay(central)  # over the panes' top: a message never moves them


def page_viewer(window: Any) -> QWidget:
    """The page view under its navigation row."""
    window.page_view = PageView()
    window.page_spin = QSpinBox()
    window.page_spin.setRange(0, 0)
    window.page_spin.setSpecialValueText("\u2013")  # no document: a dash, not "1"
    window.page_spin.setEnabled(False)
    window.page_spin.valueChanged.connect(
        lambda n: window.page_view.show_page(n) if n and n != window.page_view.page else None
    )
    window.page_total = QLabel("/ 0")
    window.cleaned_box = cleaned_box()
    viewer = QWidget()
    column = QVBoxLayout(viewer)
    column.setContentsMargins(0, 0, 0, 0)
    column.addLayout(page_navigation(window))
    column.addWidget(window.page_view, 1)
    return viewer


def cleaned_box() -> QCheckBox:
    """Cleaned: a scanned page as cleaned up instead of as scanned (enabled on scanned pages)."""
    box = QCheckBox("Cleaned")
    box.setToolTip(
        "Scanned pages: show the page after clean-up (upright, deskewed, denoised, cropped) instead of as scanned"
    )
    box.setEnabled(False)
    # never cut to "Clean": its own width whatever the theme's check box (the viewer's minimum follows)
    box.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
    box.setMinimumWidth(box.sizeHint().width())
    return box


def page_navigation(window: Any) -> QHBoxLayout:
    """Previous and next page, the page number of how many, Cleaned; zoom out, in and fit on the right."""
    nav = QHBoxLayout()
    nav.setSpacing(4)  # at 800 px wide the row keeps Cleaned whole beside the list and the panel
    for text, slot, tip in (
        ("\u25c0", window.prev_page, "Previous page (PgUp)"),
        ("\u25b6", window.next_page, "Next page (PgDown)"),
    ):
        nav.addWidget(small_button(text, slot, tip, 28))
    nav.addWidget(window.page_spin)
    nav.addWidget(window.page_total)
    nav.addWidget(window.cleaned_box)
    nav.addStretch(1)
    for text, slot, tip in (
        ("\u2212", lambda: window.page_view.zoom_by(1 / 1.25), "Zoom out (Ctrl+-)"),
        ("+", lambda: window.page_view.zoom_by(1.25), "Zoom in (Ctrl+=)"),
        ("Fit", window.page_view.fit, "Fit the page (Ctrl+0)"),
    ):
        nav.addWidget(small_button(text, slot, tip, 32))
    return nav


def small_button(text: str, slot: Any, tip: str, width: int) -> QPushButton:
    button = QPushButton(text)
    button.setFixedWidth(width)
    button.setToolTip(tip)
    button.clicked.connect(slot)
    return button


def results_side(window: Any) -> QSplitter:
    """The runs bar, the results and the find bar over the denoising panel."""
    window.results = Results()
    window.results.setMinimumHeight(200)  # at the minimum height the denoising panel keeps its header
    redenoise.install(window)  # "Re-denoise selection" in the raw Markdown of a model parse
    window.panel = DenoisePanel()
    right = QSplitter(Qt.Orientation.Vertical)
    right.setObjectName("right")
    window.find_bar = FindBar()
    window.finder = Finder(window, window.find_bar)
    results_box = QWidget()
    results_column = QVBoxLayout(results_box)
    results_column.setContentsMargins(0, 0, 0, 0)
    results_column.setSpacing(0)
    window.runs_bar = RunsBar()
    window.runs = Runs(window, window.runs_bar)
    window.page_selection = PageSelection(window)
    results_column.addWidget(window.runs_bar)
    results_column.addWidget(window.results, 1)
    results_column.addWidget(window.find_bar)
    right.addWidget(results_box)
    right.addWidget(window.panel)
    right.setSizes([430, 430])
    right.setCollapsible(0, False)
    return right


def status_bar(window: Any) -> None:
    """The status message (one line; whole in its tooltip), a job's progress and the model in use."""
    window.progress = QProgressBar()
    window.progress.setMaximumWidth(220)
    window.progress.hide()
    window.status_label = ElidedLabel("Drop PDFs, scans, images, Office files, web pages or videos here.")
    window.statusBar().addWidget(window.status_label, 3)
    window.statusBar().addPermanentWidget(window.progress)
    window.model_label = ElidedLabel("model: none (builtin engine)")
    window.model_label.setMaximumWidth(320)  # a long model name never pushes the status message out
    window.statusBar().addPermanentWidget(window.model_label, 1)


def docks(window: Any) -> None:
    """The task queue and the OCR review (hidden until asked for)."""
    window.task_queue = TaskQueue(window)
    window.ocr_review = OcrReview(window)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, window.ocr_review)
    window.ocr_review.hide()
