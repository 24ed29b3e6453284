"""Every parse a document has had, kept: the builtin parse and each model parse (the model, its parameters and the
time it took). The bar above the results switches between them and compares two side by side.

A parse never replaces another: ``DocEntry.extra["runs"]`` holds them in the order made and ``DocEntry.parsed`` is
the one shown.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)


@dataclass
class Run:
    """One parse of one document: what made it and what it gave."""

    parsed: Any  # inference.tasks.ParseResult
    engine: str
    model: str = ""  # the model's label (model and remote engines)
    params: str = ""  # the diffusion parameters that shape the output
    seconds: float = 0.0
    finished: float = field(default_factory=time.time)  # when it came back
    number: int = 0  # its place among the document's runs (two runs of one engine differ by it)

    @property
    def label(self) -> str:
        who = self.engine if not self.model else f"{self.engine}: {self.model}"
        extra = f", {self.params}" if self.params else ""
        clock = time.strftime("%H:%M:%S", time.localtime(self.finished))
        took = f"{self.seconds:.2f} s" if self.seconds < 10 else f"{self.seconds:.1f} s"
        number = f"run {self.number} \u00b7 " if self.number else ""
        return f"{who}{extra} \u00b7 {number}{clock} \u00b7 {took}"


def describe_params(params: Any) -> str:
    """The parameters a reader compares two model parses by (steps, tokens, seed)."""
    if params is None:
        return ""
    seed = getattr(params, "seed", None)
    parts = [f"{getattr(params, 'max_denoising_steps', '?')} steps", f"{getattr(params, 'max_new_tokens', '?')} tokens"]
    return ", ".join(parts + ([f"seed {seed}"] if seed is not None else []))


def runs_of(entry: Any) -> list[Run]:
    return entry.extra.setdefault("runs", [])


def add_run(entry: Any, run: Run) -> None:
    """Keep ``run`` and show it; the earlier runs stay."""
    runs_of(entry).append(run)
    entry.parsed = run.parsed


CHANGED = {"left": "#f8d7da", "right": "#d4edda"}  # light fills, read with dark text in either theme


def diff_rows(left: list[str], right: list[str]) -> list[tuple[str, str, bool]]:
    """(left line, right line, differ) aligned side by side; a line only one side has faces an empty cell."""
    rows = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            a = left[i1 + k] if i1 + k < i2 else ""
            b = right[j1 + k] if j1 + k < j2 else ""
            rows.append((a, b, tag != "equal"))
    return rows


def diff_html(left: Run, right: Run) -> str:
    """The two parses' Markdown side by side in two equal columns that wrap at words; the lines that differ are
    filled (red on the left, green on the right)."""
    from html import escape

    def cell(text: str, side: str, differ: bool) -> str:
        style = f"background-color: {CHANGED[side]}; color: #000000;" if differ and text else ""
        return f'<td width="50%" style="{style} white-space: pre-wrap;">{escape(text)}</td>'

    head = f'<tr><th width="50%">{escape(left.label)}</th><th width="50%">{escape(right.label)}</th></tr>'
    rows = [
        f"<tr>{cell(a, 'left', differ)}{cell(b, 'right', differ)}</tr>"
        for a, b, differ in diff_rows(left.parsed.markdown.splitlines(), right.parsed.markdown.splitlines())
    ]
    table = f'<table width="100%" cellspacing="0" cellpadding="2">{head}{"".join(rows)}</table>'
    return f"<html><body>{table}</body></html>"


class RunsBar(QWidget):
    """Above the results: which parse of the current document is shown, and Compare."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.choice = QComboBox()
        # a long label (model, parameters, time) never widens the pane: the box keeps a modest width and elides
        self.choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.choice.setMinimumContentsLength(12)
        self.choice.setToolTip("The parses of this document, each with its engine, model, parameters and time")
        self.compare = QPushButton("Compare\u2026")
        self.compare.setToolTip("The shown parse beside another, the lines that differ marked")
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        row.addWidget(QLabel("Result"))
        row.addWidget(self.choice, 1)
        row.addWidget(self.compare)
        self.hide()

    def show_runs(self, runs: list[Run], shown: Any) -> None:
        """List ``runs``, ``shown`` (a ParseResult) selected; hidden while a document has fewer than two."""
        self.choice.blockSignals(True)
        self.choice.clear()
        for run in runs:
            self.choice.addItem(run.label)
        index = next((i for i, r in enumerate(runs) if r.parsed is shown), len(runs) - 1)
        self.choice.setCurrentIndex(index)
        self.choice.blockSignals(False)
        self.setVisible(len(runs) > 1)


class DiffDialog(QDialog):
    """Two runs side by side; the two boxes choose which."""

    def __init__(self, parent: QWidget | None, runs: list[Run], left: int, right: int) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare parses")
        self.runs = runs
        self.left, self.right = QComboBox(), QComboBox()
        for box, index in ((self.left, left), (self.right, right)):
            box.addItems([r.label for r in runs])
            box.setCurrentIndex(index)
            box.currentIndexChanged.connect(self.refresh)
        self.view = QTextBrowser()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        pick = QHBoxLayout()
        pick.addWidget(self.left, 1)
        pick.addWidget(self.right, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(pick)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)
        self.view.setLineWrapMode(QTextBrowser.LineWrapMode.WidgetWidth)
        room = (parent.screen() if parent is not None else QGuiApplication.primaryScreen()).availableGeometry()
        self.setMaximumSize(room.size())  # never wider than the screen: the columns wrap instead
        self.resize(min(1000, int(room.width() * 0.9)), min(640, int(room.height() * 0.9)))
        self.refresh()

    def refresh(self, *_: Any) -> None:
        self.view.setHtml(diff_html(self.runs[self.left.currentIndex()], self.runs[self.right.currentIndex()]))


class Runs:
    """The window's side: records each parse as a run, fills the bar, switches and compares (``window`` is the
    ``MainWindow``)."""

    def __init__(self, window: Any, bar: RunsBar) -> None:
        self.window = window
        self.bar = bar
        self.dialog: DiffDialog | None = None
        bar.choice.currentIndexChanged.connect(self.choose)
        bar.compare.clicked.connect(self.compare)

    def record(self, entry: Any, parsed: Any, seconds: float) -> None:
        """A parse came back: keep it beside the earlier ones, with what made it."""
        engine = parsed.engine
        model, params = "", ""
        if engine == "model" and self.window.model_engine is not None:
            model = self.window.loaded.label
            params = describe_params(self.window.model_engine.params)
        elif engine == "remote" and self.window.remote_engine is not None:
            model = str(getattr(self.window.remote_engine.generator, "model", "") or "")
        add_run(entry, Run(parsed, engine, model, params, seconds, number=len(runs_of(entry)) + 1))

    def refresh(self, entry: Any) -> None:
        self.bar.show_runs(runs_of(entry), entry.parsed)

    def current_runs(self) -> tuple[Any, list[Run]]:
        entry = self.window.entries.get(self.window.current)
        return entry, (runs_of(entry) if entry is not None else [])

    def choose(self, index: int) -> None:
        entry, runs = self.current_runs()
        if entry is None or not 0 <= index < len(runs) or entry.parsed is runs[index].parsed:
            return
        entry.parsed = runs[index].parsed
        self.window.show_entry(entry.path, self.window.page_view.page or None)

    def compare(self) -> DiffDialog | None:
        entry, runs = self.current_runs()
        if len(runs) < 2:
            return None
        shown = next((i for i, r in enumerate(runs) if r.parsed is entry.parsed), len(runs) - 1)
        other = shown - 1 if shown > 0 else 1
        self.dialog = DiffDialog(self.window, runs, other, shown)
        self.dialog.open()
        return self.dialog
