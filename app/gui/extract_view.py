"""The extraction table under a canvas template (inference.tasks.pinned).

While the model runs, each field's value cell shows what its slots hold at the latest denoising step, coloured by
how settled they are; when it is done, every row is coloured by its field's measured confidence
(:mod:`inference.tasks.confidence`) in three bands a legend above the table names, with the evidence in its tooltip.
A value not found on its cited page, or empty, is never coloured as confident. Low and ungrounded rows say so in
their page cell and are offered for re-denoising: the table's context menu re-denoises one field against the cached
prompt (everything else stays), the legend's button all the uncertain ones.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton, QTableWidgetItem, QWidget

from app.gui.views import fit_columns

REDO_ACTION = "Re-denoise \u201c{field}\u201d"
REDO_UNCERTAIN = "Re-denoise {count} uncertain field(s)"
# the confidence bands (inference.tasks.confidence: LOW = REDO_BELOW = 0.5, HIGH = 0.8) and their colours
BANDS = (("low", 120 - 120, "low or not on the page"), ("check", 40, "check"), ("confident", 120, "confident"))
NOT_ON_PAGE = "not on the page: re-denoise?"
LOW_MARK = "low confidence: re-denoise?"


def band(confidence: float) -> str:
    from inference.tasks.confidence import HIGH, LOW

    return "low" if confidence < LOW else "check" if confidence < HIGH else "confident"


def confidence_brush(confidence: float) -> QBrush:
    """The band's colour (red, amber, green), light enough for dark text."""
    hue = {name: h for name, h, _ in BANDS}[band(confidence)]
    return QBrush(QColor.fromHsv(hue, 70, 250))


def shown_confidence(extraction: Any, name: str) -> float:
    """The confidence a row shows: the measured one, capped for a value that is empty or not on its cited page
    (an extraction from another engine may not have capped it)."""
    from inference.tasks.confidence import UNGROUNDED_CAP, is_empty

    confidence = float(extraction.confidence.get(name, 0.0))
    if not is_grounded(extraction, name) or is_empty(extraction.value.get(name)):
        return min(confidence, UNGROUNDED_CAP)
    return confidence


def is_grounded(extraction: Any, name: str) -> bool:
    if name in extraction.grounded:
        return bool(extraction.grounded[name])
    return bool((extraction.evidence.get(name) or {}).get("grounded"))


def uncertain_fields(extraction: Any) -> list[str]:
    """The fields the window offers for re-denoising: under the threshold, empty or not on the page."""
    from inference.tasks.confidence import REDO_BELOW

    return [name for name in extraction.confidence if shown_confidence(extraction, name) < REDO_BELOW]


class Legend(QWidget):
    """Above the extraction table: what the colours mean, and a button that re-denoises the uncertain fields."""

    def __init__(self, window: Any) -> None:
        super().__init__()
        self.window = window
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        swatches = []
        for name, hue, words in reversed(BANDS):
            colour = QColor.fromHsv(hue, 70, 250).name()
            limits = {"confident": "\u2265 0.80", "check": "0.50\u20130.80", "low": "< 0.50"}[name]
            swatches.append(f'<span style="background:{colour}">&nbsp;&nbsp;&nbsp;&nbsp;</span> {words} ({limits})')
        self.label = QLabel("Confidence: " + " &nbsp; ".join(swatches))
        self.label.setWordWrap(True)
        self.button = QPushButton(REDO_UNCERTAIN.format(count=0))
        self.button.clicked.connect(self._redo)
        row.addWidget(self.label, 1)
        row.addWidget(self.button)
        self.fields: list[str] = []
        self.hide()

    def show_for(self, extraction: Any) -> None:
        self.fields = uncertain_fields(extraction)
        self.button.setText(REDO_UNCERTAIN.format(count=len(self.fields)))
        self.button.setEnabled(bool(self.fields) and getattr(self.window.model_engine, "last_pinned", None) is not None)
        self.show()

    def _redo(self) -> None:
        if self.fields:
            redenoise_fields(self.window, list(self.fields))


class LiveExtraction:
    """Follows a templated extraction: ``set_layout`` (from the worker, before the first step) then the engine's
    events on the UI thread; the table shows one row per top-level field while the canvas denoises."""

    def __init__(self, results: Any) -> None:
        self.results = results
        self.layout: Any = None
        self.draft: np.ndarray | None = None
        self.entropy: np.ndarray | None = None
        self.updates = 0  # value cells rewritten from step events (for the tests and the curious)

    def set_layout(self, layout: Any) -> None:
        self.layout = layout

    def on_event(self, event: Any) -> None:
        from inference.runtime.events import DenoisingStep

        layout = self.layout
        if layout is None or not isinstance(event, DenoisingStep):
            return
        table = self.results.table
        if self.draft is None:
            self.draft = np.where(layout.template.pinned, layout.template.pins, layout.vocab.pad)
            self.entropy = np.zeros(layout.template.length, dtype=np.float32)
            table.setRowCount(len(layout.fields))
            for row, name in enumerate(layout.fields):
                table.setItem(row, 0, QTableWidgetItem(name))
                table.setItem(row, 1, QTableWidgetItem(""))
                table.setItem(row, 2, QTableWidgetItem(""))
            fit_columns(table, (0,))
            self.results.setCurrentWidget(self.results.extract_tab)
        start = event.canvas * int(event.draft.shape[1])
        stop = min(start + int(event.draft.shape[1]), layout.template.length)
        if start >= stop:
            return
        self.draft[start:stop] = event.draft[0, : stop - start]
        self.entropy[start:stop] = event.entropy[0, : stop - start]
        for row, f in enumerate(layout.fields.values()):
            slots = f.value.slots()
            text = " \u00b7 ".join(layout.vocab.decode(self.draft[s.start : s.start + s.width]) for s in slots)
            spread = float(np.mean([self.entropy[s.start : s.start + s.width].mean() for s in slots]))
            item = table.item(row, 1)
            item.setText(text)
            item.setBackground(confidence_brush(math.exp(-spread)))
            self.updates += 1


def decorate(results: Any, extraction: Any) -> None:
    """After ``Results.show_extraction``: rows coloured by their field's shown confidence, low and ungrounded rows
    marked in their page cell, the evidence in the tooltip, the legend shown."""
    if not extraction.confidence:
        return
    table = results.table
    for row in range(table.rowCount()):
        name_item = table.item(row, 0)
        if name_item is None:
            continue
        name = name_item.text().split("/")[0]
        if name not in extraction.confidence:
            continue
        confidence = shown_confidence(extraction, name)
        evidence = extraction.evidence.get(name) or {}
        grounded = is_grounded(extraction, name)
        quote = evidence.get("quote", "")
        where = "found on that page" if grounded else "NOT found on that page"
        redone = (extraction.redenoised or {}).get(name, 0)
        tip = f"confidence {confidence:.2f}; p. {evidence.get('page')}: \u201c{quote}\u201d ({where})"
        tip += f"; re-denoised {redone} time(s)" if redone else ""
        mark = NOT_ON_PAGE if not grounded else LOW_MARK if band(confidence) == "low" else None
        if mark is not None and table.item(row, 2) is not None:
            table.item(row, 2).setText(mark)
        for column in range(table.columnCount()):
            item = table.item(row, column)
            if item is not None:
                item.setBackground(confidence_brush(confidence))
                item.setToolTip(tip + "\nRight-click to re-denoise this field.")
    legend = getattr(results, "legend", None)
    if legend is not None:
        legend.show_for(extraction)


def field_at(results: Any, row: int) -> str | None:
    item = results.table.item(row, 0)
    return None if item is None else item.text().split("/")[0]


def install_menu(window: Any) -> None:
    """The extraction table's context menu: re-denoise the field under the pointer (model engine, templated)."""
    table = window.results.table
    if getattr(table, "_redo_menu", False):
        return
    table._redo_menu = True
    window.results.legend = Legend(window)
    window.results.extract_tab.insertWidget(0, window.results.legend)
    table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def menu(pos: Any) -> None:
        row = table.rowAt(pos.y())
        name = field_at(window.results, row) if row >= 0 else None
        engine = window.model_engine
        if name is None or engine is None or getattr(engine, "last_pinned", None) is None:
            return
        popup = QMenu(table)
        popup.addAction(REDO_ACTION.format(field=name), lambda: redenoise_field(window, name))
        popup.popup(table.viewport().mapToGlobal(pos))

    table.customContextMenuRequested.connect(menu)


def redenoise_field(window: Any, name: str) -> Any:
    """Re-denoise one field of the last templated extraction on the worker; the table shows the new result."""
    return redenoise_fields(window, [name])


def redenoise_fields(window: Any, names: list[str]) -> Any:
    """Re-denoise these fields of the last templated extraction on the worker; the table shows the new result."""
    from app.gui.worker import Job

    engine = window.model_engine
    run = getattr(engine, "last_pinned", None) if engine is not None else None
    if run is None or window.worker.busy:
        window.status_label.setText("Nothing to re-denoise: extract with the model first.")
        return None
    live = LiveExtraction(window.results)

    def work(job: Job) -> Any:
        live.set_layout(run.layout)
        return engine.redenoise(run, names, window.tasks.context(job)).extraction

    def done(extraction: Any) -> None:
        if window.tasks.extractions:
            window.tasks.extractions[-1] = extraction
        window.results.show_extraction(extraction)
        decorate(window.results, extraction)
        said = ", ".join(f"\u201c{n}\u201d {shown_confidence(extraction, n):.2f}" for n in names)
        window.status_label.setText(f"Re-denoised {said} (confidence).")

    job = Job("re-denoising", work)
    job.event.connect(live.on_event)
    return window.worker.submit(window.tasks.connect(job, done))
