"""The extraction table under a canvas template (inference.tasks.pinned).

While the model runs, each field's value cell shows what its slots hold at the latest denoising step, coloured by
how settled they are; when it is done, every row is coloured by its field's confidence, with the evidence in its
tooltip, and the table's context menu re-denoises one field against the cached prompt (everything else stays).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QMenu, QTableWidgetItem

from app.gui.views import fit_columns

REDO_ACTION = "Re-denoise \u201c{field}\u201d"


def confidence_brush(confidence: float) -> QBrush:
    """Red (0) through amber to green (1), light enough for dark text."""
    hue = int(120 * min(1.0, max(0.0, confidence)))
    return QBrush(QColor.fromHsv(hue, 70, 250))


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
    """After ``Results.show_extraction``: rows coloured by their field's confidence, evidence in the tooltip."""
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
        confidence = extraction.confidence[name]
        evidence = extraction.evidence.get(name) or {}
        grounded = "grounded" if evidence.get("grounded") else "NOT found on that page"
        quote = evidence.get("quote", "")
        tip = f"confidence {confidence:.2f}; p. {evidence.get('page')}: \u201c{quote}\u201d ({grounded})"
        for column in range(table.columnCount()):
            item = table.item(row, column)
            if item is not None:
                item.setBackground(confidence_brush(confidence))
                item.setToolTip(tip + "\nRight-click to re-denoise this field.")


def field_at(results: Any, row: int) -> str | None:
    item = results.table.item(row, 0)
    return None if item is None else item.text().split("/")[0]


def install_menu(window: Any) -> None:
    """The extraction table's context menu: re-denoise the field under the pointer (model engine, templated)."""
    table = window.results.table
    if getattr(table, "_redo_menu", False):
        return
    table._redo_menu = True
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
    from app.gui.worker import Job

    engine = window.model_engine
    run = getattr(engine, "last_pinned", None) if engine is not None else None
    if run is None or window.worker.busy:
        window.status_label.setText("Nothing to re-denoise: extract with the model first.")
        return None
    live = LiveExtraction(window.results)

    def work(job: Job) -> Any:
        live.set_layout(run.layout)
        return engine.redenoise(run, [name], window.tasks.context(job)).extraction

    def done(extraction: Any) -> None:
        if window.tasks.extractions:
            window.tasks.extractions[-1] = extraction
        window.results.show_extraction(extraction)
        decorate(window.results, extraction)
        window.status_label.setText(f"Re-denoised \u201c{name}\u201d: confidence {extraction.confidence[name]:.2f}.")

    job = Job("re-denoising", work)
    job.event.connect(live.on_event)
    return window.worker.submit(window.tasks.connect(job, done))
