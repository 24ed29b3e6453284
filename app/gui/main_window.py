"""The workbench window. It arranges panels and sends work to the worker; the work itself lives in ``inference``."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from .denoise_panel import DenoisePanel
from .messages import describe
from .model_dialog import ModelChoice, ModelDialog
from .panels import DocEntry, DocumentList, PageView, Results
from .worker import Job, Worker

log = logging.getLogger(__name__)
MAX_RECENT = 10


def settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "DiffusionWorkbench", "workbench")


class Banner(QWidget):
    """A message strip at the top of the window: errors never block in a modal dialog; details on request."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.details_button = QPushButton("Details")
        self.close_button = QPushButton("\u2715")
        self.close_button.setFixedWidth(28)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.label, 1)
        row.addWidget(self.details_button)
        row.addWidget(self.close_button)
        self.details = ""
        self.details_button.clicked.connect(self.show_details)
        self.close_button.clicked.connect(self.hide)
        self.setStyleSheet("Banner { background: #f8d7da; } QLabel { color: #58151c; }")
        self.hide()

    def show_message(self, message: str, details: str = "", error: bool = True) -> None:
        self.label.setText(message)
        self.details = details
        self.details_button.setVisible(bool(details))
        self.setStyleSheet("QLabel { color: #58151c; }" if error else "QLabel { color: #0f5132; }")
        self.show()

    def show_details(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Details", self.label.text(), parent=self)
        box.setDetailedText(self.details)
        box.open()


class MainWindow(QMainWindow):
    def __init__(self, sample_dir: Path | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Diffusion Workbench")
        self.setAcceptDrops(True)
        self.entries: dict[str, DocEntry] = {}
        self.current: str | None = None
        self.loaded: Any = None  # inference.loading.LoadedModel
        self.model_choice: ModelChoice | None = None
        self.model_engine: Any = None
        self.worker = Worker(self)
        self.worker.busy_changed.connect(self._busy)
        self.settings = settings()
        self.last_error = ""
        self._build()
        self._actions()
        self.resize(1400, 860)

    # layout ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.doc_list = DocumentList()
        self.doc_list.currentItemChanged.connect(self._select_item)
        self.page_view = PageView()
        self.page_view.block_clicked.connect(self._block_clicked)
        self.page_view.page_changed.connect(self._page_changed)
        self.page_spin = QSpinBox()
        self.page_spin.setMinimum(1)
        self.page_spin.valueChanged.connect(lambda n: self.page_view.show_page(n) if n != self.page_view.page
                                            else None)
        self.page_total = QLabel("/ 0")
        self.cleaned_box = QCheckBox("Cleaned")
        self.cleaned_box.setToolTip("Scanned pages: show the page after clean-up (upright, deskewed, denoised, "
                                    "cropped) instead of as scanned")
        self.cleaned_box.toggled.connect(lambda _: self.page_view.show_page(self.page_view.page))
        nav = QHBoxLayout()
        for text, slot in (("\u25c0", self.prev_page), ("\u25b6", self.next_page)):
            button = QPushButton(text)
            button.setFixedWidth(32)
            button.clicked.connect(slot)
            nav.addWidget(button)
        nav.addWidget(self.page_spin)
        nav.addWidget(self.page_total)
        nav.addWidget(self.cleaned_box)
        nav.addStretch(1)
        for text, slot in (("\u2212", lambda: self.page_view.zoom_by(1 / 1.25)),
                           ("+", lambda: self.page_view.zoom_by(1.25)), ("Fit", self.page_view.fit)):
            button = QPushButton(text)
            button.setFixedWidth(44)
            button.clicked.connect(slot)
            nav.addWidget(button)
        viewer = QWidget()
        column = QVBoxLayout(viewer)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(nav)
        column.addWidget(self.page_view, 1)
        self.results = Results()
        self.results.page_link.connect(self.jump_to)
        self.results.cursor_block.connect(self._results_cursor)
        self.panel = DenoisePanel()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.results)
        right.addWidget(self.panel)
        right.setSizes([430, 430])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.doc_list)
        split.addWidget(viewer)
        split.addWidget(right)
        split.setSizes([230, 620, 550])
        self.banner = Banner()
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.banner)
        outer.addWidget(split, 1)
        self.setCentralWidget(central)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.hide()
        self.status_label = QLabel("Drop PDFs, scans, images or videos here.")
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.model_label = QLabel("model: none (builtin engine)")
        self.statusBar().addPermanentWidget(self.model_label)

    def _actions(self) -> None:
        bar = QToolBar("Tasks")
        bar.setObjectName("tasks")
        self.addToolBar(bar)
        file_menu = self.menuBar().addMenu("&File")
        edit_menu = self.menuBar().addMenu("&Edit")
        view_menu = self.menuBar().addMenu("&View")
        task_menu = self.menuBar().addMenu("&Tasks")

        def action(text: str, slot: Any, shortcut: Any = None, menu: Any = None, toolbar: bool = False) -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(slot)
            if menu is not None:
                menu.addAction(act)
            if toolbar:
                bar.addAction(act)
            return act

        action("&Open\u2026", self.open_dialog, QKeySequence.StandardKey.Open, file_menu, True)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._fill_recent()
        action("&Export\u2026", self.export_dialog, QKeySequence.StandardKey.Save, file_menu, True)
        file_menu.addSeparator()
        action("&Quit", self.close, QKeySequence.StandardKey.Quit, file_menu)
        action("&Paste image", self.paste_image, QKeySequence.StandardKey.Paste, edit_menu)
        action("Zoom &in", lambda: self.page_view.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn, view_menu)
        action("Zoom &out", lambda: self.page_view.zoom_by(1 / 1.25), QKeySequence.StandardKey.ZoomOut, view_menu)
        action("&Fit page", self.page_view.fit, "Ctrl+0", view_menu)
        action("&Next page", self.next_page, QKeySequence.StandardKey.MoveToNextPage, view_menu)
        action("&Previous page", self.prev_page, QKeySequence.StandardKey.MoveToPreviousPage, view_menu)
        bar.addSeparator()
        self.engine_box = QComboBox()
        self.engine_box.addItems(["builtin", "model"])
        self.engine_box.setToolTip("builtin: no weights (layout, OCR, retrieval); model: DiffusionGemma")
        bar.addWidget(QLabel(" Engine "))
        bar.addWidget(self.engine_box)
        action("&Model\u2026", self.model_dialog, "Ctrl+M", task_menu, True)
        self.parse_action = action("&Parse", self.parse, "Ctrl+R", task_menu, True)
        self.question = QLineEdit()
        self.question.setPlaceholderText("Ask a question about the documents\u2026")
        self.question.setMinimumWidth(260)
        self.question.returnPressed.connect(lambda: self.ask(self.question.text()))
        bar.addWidget(self.question)
        action("&Ask", lambda: self.ask(self.question.text()), "Ctrl+K", task_menu, True)
        action("E&xtract\u2026", self.extract_dialog, "Ctrl+J", task_menu, True)
        self.cancel_action = action("&Cancel", self.cancel, QKeySequence.StandardKey.Cancel, task_menu, True)
        self.cancel_action.setEnabled(False)

    # documents ------------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: Any) -> None:  # noqa: N802
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:  # noqa: N802
        mime = event.mimeData()
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if paths:
            self.add_paths(paths)
        elif mime.hasImage():
            self._add_image(mime.imageData())
        event.acceptProposedAction()

    def paste_image(self) -> None:
        clip = QGuiApplication.clipboard()
        mime = clip.mimeData()
        if mime is not None and mime.hasUrls():
            self.add_paths([u.toLocalFile() for u in mime.urls() if u.isLocalFile()])
        elif not clip.image().isNull():
            self._add_image(clip.image())
        else:
            self.banner.show_message("The clipboard holds no image or file.", error=False)

    def _add_image(self, image: Any) -> None:
        folder = Path(tempfile.gettempdir()) / "diffusion-workbench"
        folder.mkdir(exist_ok=True)
        path = folder / f"pasted-{len(list(folder.glob('pasted-*.png'))) + 1}.png"
        image.save(str(path), "PNG")
        self.add_paths([str(path)])

    def open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open documents", self.settings.value("last_dir", ""),
                                                "Documents (*.pdf *.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif "
                                                "*.mp4 *.mov *.mkv *.webm *.txt *.md);;All files (*)")
        if files:
            self.settings.setValue("last_dir", str(Path(files[0]).parent))
            self.add_paths(files)

    def add_paths(self, paths: Iterable[str]) -> list[str]:
        from inference.documents import expand

        added = []
        for path in expand(paths):
            key = str(Path(path).resolve())
            if key in self.entries:
                continue
            entry = DocEntry(key)
            self.entries[key] = entry
            self.doc_list.add_entry(entry)
            self._remember(key)
            self.worker.submit(self._ingest_job(entry))
            added.append(key)
        if added and self.doc_list.currentItem() is None:
            self.doc_list.setCurrentRow(0)
        return added

    def _ingest_job(self, entry: DocEntry) -> Job:
        def work(job: Job) -> Any:
            from inference.documents import open_document

            doc = open_document(entry.path)
            thumb = None
            try:
                thumb = doc.render(1, 24)
                thumb.thumbnail((96, 128))
            except Exception:  # noqa: BLE001 - no thumbnail is not an error
                thumb = None
            return doc, thumb

        job = Job(f"ingest {entry.name}", work)
        entry.status = "ingesting"
        self.doc_list.refresh(entry)
        job.succeeded.connect(lambda result, e=entry: self._ingested(e, *result))
        job.failed.connect(lambda message, details, e=entry: self._entry_failed(e, message, details))
        return job

    def _ingested(self, entry: DocEntry, doc: Any, thumb: Any) -> None:
        entry.document, entry.thumbnail = doc, thumb
        entry.status = "partial" if doc.errors else "done"
        entry.message = "; ".join(e.message for e in doc.errors[:3])
        self.doc_list.refresh(entry)
        if self.current == entry.path or self.current is None:
            self.show_entry(entry.path)

    def _entry_failed(self, entry: DocEntry, message: str, details: str) -> None:
        entry.status, entry.message = "failed", message
        self.doc_list.refresh(entry)
        self.show_error(message, details)

    def _select_item(self, item: Any, _previous: Any = None) -> None:
        if item is not None:
            self.show_entry(item.data(Qt.ItemDataRole.UserRole))

    def show_entry(self, path: str) -> None:
        self.current = path
        entry = self.entries[path]
        if entry.document is None:
            return
        layout = entry.parsed.document if entry.parsed is not None else None
        self.page_view.show_document(entry.document, 1, layout)
        self.page_view.fit()
        self.page_spin.setMaximum(max(1, len(entry.document.pages)))
        self.page_total.setText(f"/ {len(entry.document.pages)}")
        self.results.show_parse(entry.parsed)

    def jump_to(self, document: str, page: int) -> None:
        key = str(Path(document).resolve())
        if key in self.entries:
            item = self.doc_list.item_for(key)
            if item is not None:
                self.doc_list.setCurrentItem(item)
            self.show_entry(key)
            self.page_view.show_page(page)

    def next_page(self) -> None:
        self.page_view.show_page(min(self.page_view.page + 1, self.page_view.page_count()))

    def prev_page(self) -> None:
        self.page_view.show_page(max(self.page_view.page - 1, 1))

    def _page_changed(self, number: int) -> None:
        self.page_spin.blockSignals(True)
        self.page_spin.setValue(number)
        self.page_spin.blockSignals(False)
        doc = self.page_view.document
        scanned = doc is not None and doc.pages[number - 1].scanned
        self.cleaned_box.setEnabled(scanned)
        if scanned and self.cleaned_box.isChecked():
            self.show_cleaned(number)

    def show_cleaned(self, number: int) -> Job:
        """Clean the scanned page on the worker, then show the result (the page as scanned stays one click away)."""
        doc = self.page_view.document

        def work(job: Job) -> Any:
            from inference.documents.scan import clean_scan

            return clean_scan(doc.render(number, 150))

        def done(result: Any) -> None:
            if self.page_view.document is doc and self.page_view.page == number and self.cleaned_box.isChecked():
                steps = ", ".join(result.steps) or "nothing to do"
                self.page_view.show_image(result.after, f"cleaned: {steps}")

        return self.worker.submit(self._connect(Job("clean scan", work), done))

    def _block_clicked(self, page: int, order: int) -> None:
        block = next((b for b in self.page_view.blocks if b.order == order), None)
        if block is not None and block.text:
            self.results.select_text(block.text)

    def _results_cursor(self, page: int, line: str) -> None:
        if page and page != self.page_view.page:
            self.page_view.show_page(page)
        probe = line.lstrip("#-|> ").strip()[:40]
        for blk in self.page_view.blocks:
            if probe and probe in blk.text:
                self.page_view.highlight(blk.order)
                return

    # tasks ------------------------------------------------------------------------------------------
    def ready_entries(self) -> list[DocEntry]:
        chosen = [self.entries[self.current]] if self.current in self.entries else list(self.entries.values())
        return [e for e in chosen if e.document is not None]

    def _engine(self) -> Any:
        if self.engine_box.currentText() == "builtin":
            from inference.tasks import BuiltinEngine

            return BuiltinEngine()
        if self.model_engine is None:
            self.show_error("Load a model first (Tasks \u2192 Model\u2026), or choose the builtin engine.")
            return None
        return self.model_engine

    def _context(self, job: Job) -> Any:
        from inference.errors import CancelledError
        from inference.tasks import TaskContext

        def progress(done: int, total: int, what: str) -> None:
            if job.cancelled_requested:
                raise CancelledError("cancelled")
            job.progress.emit(done, total, what)

        return TaskContext(progress=progress, on_event=job.event.emit, cancel=job.cancel_token)

    def _connect(self, job: Job, on_success: Any) -> Job:
        job.event.connect(self.panel.on_event)
        job.event.connect(self._engine_progress)
        job.progress.connect(self._progress)
        job.succeeded.connect(on_success)
        job.failed.connect(self.show_error)
        job.cancelled.connect(lambda why: self.banner.show_message(f"Cancelled ({why}). Earlier results are kept.",
                                                                   error=False))
        return job

    def parse(self) -> Job | None:
        engine = self._engine()
        entries = self.ready_entries()
        if engine is None or not entries:
            return None
        if engine.name == "model":
            self.panel.reset()

        def work(job: Job) -> Any:
            context = self._context(job)
            return [(e.path, engine.parse(e.document, context=context)) for e in entries]

        for e in entries:
            e.status = "parsing"
            self.doc_list.refresh(e)
        return self.worker.submit(self._connect(Job("parse", work), self._parsed))

    def _parsed(self, results: list[tuple[str, Any]]) -> None:
        for path, parsed in results:
            entry = self.entries[path]
            entry.parsed = parsed
            entry.status = "partial" if parsed.document.errors else "done"
            self.doc_list.refresh(entry)
        if results:
            self.show_entry(results[-1][0])
            self.status_label.setText(f"Parsed {len(results)} document(s) with the {results[-1][1].engine} engine.")

    def ask(self, question: str) -> Job | None:
        engine = self._engine()
        entries = [e for e in self.entries.values() if e.document is not None]
        if engine is None or not entries or not question.strip():
            return None
        if engine.name == "model":
            self.panel.reset()

        def work(job: Job) -> Any:
            context = self._context(job)
            parsed = []
            if engine.name == "builtin":  # OCR and layout first, once: the results are kept for the next question
                parsed = [(e.path, engine.parse(e.document, context=context)) for e in entries if e.parsed is None]
            fresh = dict(parsed)
            docs = []
            for e in entries:
                result = fresh.get(e.path) or e.parsed
                docs.append(result.document if result is not None else e.document)
            return engine.ask(docs, question, context=context), parsed

        def done(result: tuple[Any, list[tuple[str, Any]]]) -> None:
            answer, parsed = result
            if parsed:
                self._parsed(parsed)
            self.results.show_answer(answer)

        return self.worker.submit(self._connect(Job("ask", work), done))

    def extract_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "JSON Schema", "", "JSON Schema (*.json)")
        if path:
            self.extract(path)

    def extract(self, schema_path: str) -> Job | None:
        engine = self._engine()
        entries = [e for e in self.entries.values() if e.document is not None]
        if engine is None or not entries:
            return None

        def work(job: Job) -> Any:
            from inference.tasks.schema import load_schema

            schema = load_schema(schema_path)
            context = self._context(job)
            docs = [e.parsed.document if e.parsed is not None else e.document for e in entries]
            return engine.extract(docs, schema, context=context)

        return self.worker.submit(self._connect(Job("extract", work), self.results.show_extraction))

    def cancel(self) -> None:
        self.worker.cancel()
        self.status_label.setText("Cancelling\u2026")

    def _busy(self, busy: bool) -> None:
        self.cancel_action.setEnabled(busy)
        self.progress.setVisible(busy)
        if not busy:
            self.progress.setRange(0, 1)
            for entry in self.entries.values():
                if entry.status == "parsing":
                    entry.status = "partial" if entry.document.errors else "done"
                    self.doc_list.refresh(entry)

    def _engine_progress(self, event: Any) -> None:
        """Prefill and canvases in the status bar (the panel shows the steps)."""
        kind = getattr(event, "kind", "")
        if kind == "prefill_started":
            self.progress.setRange(0, 0)  # busy indicator: one forward pass, no steps to count
            self.status_label.setText(f"prefill: {getattr(event, 'prompt_tokens', '?')} prompt tokens")
        elif kind == "canvas_started":
            budget = self.model_engine.params.max_new_tokens if self.model_engine is not None else event.canvas_length
            canvases = max(1, -(-budget // max(1, event.canvas_length)))  # at most; end-of-sequence can stop sooner
            self.progress.setRange(0, canvases)
            self.progress.setValue(event.canvas)
            self.status_label.setText(f"canvas {event.canvas + 1} of at most {canvases}")

    def _progress(self, done: int, total: int, what: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status_label.setText(what)

    # model ------------------------------------------------------------------------------------------
    def model_dialog(self) -> None:
        recent = [s for s in (self.settings.value("recent_models", []) or []) if isinstance(s, str)]
        dialog = ModelDialog(self, recent, self.model_choice)
        dialog.accepted.connect(lambda: self.load_model(dialog.choice()))
        dialog.open()

    def load_model(self, choice: ModelChoice) -> Job:
        def work(job: Job) -> Any:
            from inference.loading import load_model
            from inference.params import DiffusionParams
            from inference.tasks.model import ModelEngine

            job.progress.emit(0, 3, f"reading {choice.source}\u2026")
            params = DiffusionParams(**{k: v for k, v in choice.params.items()})
            job.progress.emit(1, 3, "loading weights\u2026")
            loaded = load_model(choice.source, dtype=choice.dtype, device=choice.device)
            job.progress.emit(2, 3, "ready")
            engine = ModelEngine(loaded, params=params)
            return loaded, engine

        def done(result: tuple[Any, Any]) -> None:
            self.loaded, self.model_engine = result
            self.model_choice = choice
            self.model_label.setText(f"model: {self.loaded.label} [{self.loaded.dtype}, {self.loaded.device}]")
            self.panel.set_decoder(lambda i: self.loaded.tokenizer.decode([i]))
            self.engine_box.setCurrentText("model")
            recent = [choice.source] + [s for s in (self.settings.value("recent_models", []) or [])
                                        if s != choice.source]
            self.settings.setValue("recent_models", recent[:MAX_RECENT])

        return self.worker.submit(self._connect(Job("load model", work), done))

    # export ------------------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.settings.value("export_dir", ""))
        if folder:
            self.settings.setValue("export_dir", folder)
            self.export_to(folder)

    def export_to(self, folder: str | Path, formats: str | None = None) -> list[Path]:
        from inference.errors import WorkbenchError
        from inference.exports import parse_formats, write_parse

        formats = formats or str(self.settings.value("export_formats", "md,json,txt,html,csv"))
        written: list[Path] = []
        try:
            for entry in self.entries.values():
                if entry.parsed is not None:
                    written += write_parse(entry.parsed, Path(folder), Path(entry.path).stem, parse_formats(formats))
        except (WorkbenchError, OSError) as exc:
            self.show_error(describe(exc))
            return written
        self.status_label.setText(f"Exported {len(written)} file(s) to {folder}"
                                  if written else "Nothing to export: parse a document first.")
        return written

    # messages, settings, closing ----------------------------------------------------------------------------
    def show_error(self, message: str, details: str = "") -> None:
        self.last_error = message
        self.banner.show_message(message, details)
        self.status_label.setText(message.splitlines()[0][:160])

    def _remember(self, path: str) -> None:
        recent = [path] + [p for p in (self.settings.value("recent_files", []) or []) if p != path]
        self.settings.setValue("recent_files", recent[:MAX_RECENT])
        QTimer.singleShot(0, self._fill_recent)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.value("recent_files", []) or []:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.add_paths([p]))

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        self.worker.shutdown()
        self.panel.timer.stop()
        super().closeEvent(event)
