"""The workbench window. It arranges panels and sends work to the worker; the work itself lives in ``inference``."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox

from app.gui.actions import install_actions
from app.gui.controller import TaskController
from app.gui.menus import passage_blocks, restore_theme, set_theme_of, shortcut_rows, show_shortcuts
from app.gui.model_dialog import ModelChoice
from app.gui.panes import central_panes, docks, status_bar
from app.gui.prefs import stored_list
from app.gui.reading import DocumentReader
from app.gui.session import SessionKeeper
from app.gui.views import DocEntry, DropTarget
from app.gui.worker import Job, Worker

log = logging.getLogger(__name__)
MAX_RECENT = 10
MINIMUM_SIZE = (760, 480)


def settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "DiffusionWorkbench", "workbench")


class MainWindow(DropTarget, QMainWindow):
    def __init__(self, sample_dir: Path | None = None, session: bool = True) -> None:
        """``session``: reopen the saved session and save this one on close (off for screenshots and benchmarks,
        which must neither show nor replace the user's)."""
        super().__init__()
        self.setWindowTitle("Diffusion Workbench")
        self.setAcceptDrops(True)
        self.entries: dict[str, DocEntry] = {}
        self.current: str | None = None
        self.loaded: Any = None  # inference.weights.loading.LoadedModel
        self.model_choice: ModelChoice | None = None
        self.model_engine: Any = None  # inference.tasks.model.ModelEngine once a model is loaded
        self.remote_engine: Any = None  # a ModelEngine on an inference.tasks.remote.HttpGenerator once connected
        self.worker = Worker(self)
        self.worker.busy_changed.connect(self._busy)
        self.worker.job_started.connect(self._job_started)
        self.settings = settings()
        self.last_error = ""
        self.running_text = ""  # the status bar's text while a job runs (_running_status)
        self.closing = False
        self.page_of: dict[str, int] = {}  # the page shown last, per document
        self.dialog: Any = None  # the dialog opened last (kept referenced while it is open)
        self.tasks = TaskController(self)
        self.reader = DocumentReader(self)
        self._build()
        install_actions(self)
        restore_theme(self)
        self.resize(1400, 860)
        self.setMinimumSize(MINIMUM_SIZE[0], MINIMUM_SIZE[1])  # below it the toolbar and status texts overlap
        self._restore_geometry()
        self.sessions = SessionKeeper(self, session)
        self.sessions.restore()

    # layout ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        """The panes (``panes``), connected to the window's slots before the docks connect their own."""
        central_panes(self)
        self._connect_panes()
        status_bar(self)
        docks(self)

    def _connect_panes(self) -> None:
        self.doc_list.currentItemChanged.connect(self._select_item)
        self.doc_list.itemSelectionChanged.connect(self.tasks.scope_changed)
        self.doc_list.customContextMenuRequested.connect(self._doc_menu)
        self.page_view.block_clicked.connect(self._block_clicked)
        self.page_view.page_changed.connect(self._page_changed)
        self.page_view.dropped.connect(self.take_drop)
        self.cleaned_box.toggled.connect(self._cleaned_toggled)
        self.results.citation_clicked.connect(self.show_citation)
        self.results.cursor_block.connect(self._results_cursor)

    # the window's task actions (menus, toolbar, shortcuts): the controller runs them ---------------------------
    def parse(self, paths: list[str] | None = None) -> Job | None:
        return self.tasks.parse(paths)

    def ask(self, question: str) -> Job | None:
        return self.tasks.ask(question)

    def extract(self, schema: str | dict[str, Any]) -> Job | None:
        return self.tasks.extract(schema)

    def extract_dialog(self) -> Any:
        return self.tasks.extract_dialog()

    def export_dialog(self, paths: list[str] | None = None) -> None:
        self.tasks.export_dialog(paths)

    def export_to(self, choice: Any, formats: str | None = None) -> Job | None:
        return self.tasks.export_to(choice, formats)

    def model_dialog(self) -> None:
        self.tasks.model_dialog()

    def load_model(self, choice: ModelChoice) -> Job:
        return self.tasks.load_model(choice)

    def cancel(self) -> None:
        self.tasks.cancel()

    def clear_conversation(self) -> None:
        self.tasks.clear_conversation()

    # documents ------------------------------------------------------------------------------------------
    def take_drop(self, mime: Any) -> None:
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if paths:
            self.add_paths(paths)
        elif mime.hasImage():
            self._add_image(mime.imageData())

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
        from inference.documents import OPEN_SUFFIXES

        patterns = " ".join(f"*{suffix}" for suffix in OPEN_SUFFIXES)
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open documents", self.settings.value("last_dir", ""), f"Documents ({patterns});;All files (*)"
        )
        if files:
            self.settings.setValue("last_dir", str(Path(files[0]).parent))
            self.add_paths(files)

    def add_paths(self, paths: Iterable[str]) -> list[str]:
        from inference.documents import expand

        if self.banner.isVisible() and self.banner.error:
            self.banner.hide()  # an earlier open's error is not about these files; their own errors will show
        added = []
        for path in expand(paths):
            key = str(Path(path).resolve())
            if key in self.entries:
                if self.entries[key].status == "failed":  # opened again: read it again (a password, a fixed file)
                    self.reopen(key)
                continue
            entry = DocEntry(key)
            self.entries[key] = entry
            self.doc_list.add_entry(entry)
            self.reader.read(entry)
            added.append(key)
        if added:  # the files just opened become the selection (and the scope)
            self._remember(added)
            self.doc_list.clearSelection()
            for key in added:
                item = self.doc_list.item_for(key)
                if item is not None:
                    item.setSelected(True)
            first = self.doc_list.item_for(added[0])
            self.doc_list.setCurrentItem(first, QItemSelectionModel.SelectionFlag.NoUpdate)
            self.show_entry(added[0])
        return added

    def reopen(self, path: str) -> Job | None:
        """Read a document again (after it failed, with a password, or from the saved session)."""
        entry = self.entries.get(path)
        if entry is None:
            return None
        entry.message = ""
        return self.reader.read(entry)

    def remove_selected(self) -> None:
        for path in self.doc_list.selected_paths() or ([self.current] if self.current else []):
            self.remove_document(path)

    def remove_document(self, path: str) -> None:
        if path not in self.entries:
            return
        item = self.doc_list.item_for(path)
        if item is not None:
            self.doc_list.takeItem(self.doc_list.row(item))
        del self.entries[path]
        self.page_of.pop(path, None)
        if self.current == path:
            self.current = None
            item = self.doc_list.currentItem()
            if item is not None:
                self.show_entry(item.data(Qt.ItemDataRole.UserRole))
            else:
                self._show_nothing()
        self.tasks.scope_changed()

    def clear_documents(self) -> None:
        for path in list(self.entries):
            self.remove_document(path)

    def _show_nothing(self, hint: str | None = None) -> None:
        self.page_view.document = None
        self.page_view.show_hint(*([hint] if hint else []))
        self.page_spin.setSpecialValueText("\u2013")
        self.page_spin.setRange(0, 0)
        self.page_spin.setEnabled(False)
        self.page_total.setText("/ 0")
        self.cleaned_box.setEnabled(False)
        self.results.show_parse(None)
        self.runs_bar.hide()

    def _doc_menu(self, pos: Any) -> None:
        item = self.doc_list.itemAt(pos)
        if item is not None:
            self.document_menu(item.data(Qt.ItemDataRole.UserRole)).popup(self.doc_list.viewport().mapToGlobal(pos))

    def document_menu(self, path: str) -> QMenu:
        """A document's menu: only what can be done with it (a failed one: open again, show, remove)."""
        menu = QMenu(self)
        entry = self.entries.get(path)
        if entry is not None and entry.status == "failed":
            menu.addAction("Open again", lambda: self.reopen(path))
        if entry is not None and entry.document is not None:
            menu.addAction("Parse again", lambda: self.parse([path]))
        if entry is not None and entry.parsed is not None:
            menu.addAction("Export\u2026", lambda: self.export_dialog([path]))
        menu.addAction("Show in folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent))))
        menu.addSeparator()
        menu.addAction("Remove", lambda: self.remove_document(path))
        return menu

    def _select_item(self, item: Any, _previous: Any = None) -> None:
        if item is not None:
            self.show_entry(item.data(Qt.ItemDataRole.UserRole))

    def show_entry(self, path: str, page: int | None = None) -> None:
        self.current = path
        self.doc_list.mark_shown(path)
        entry = self.entries[path]
        if entry.document is None:  # failed to open, or still being read: say so, never the last document's pages
            self._show_nothing(
                f"{entry.name} could not be opened.\n\n{entry.message}"
                if entry.status == "failed"
                else f"Reading {entry.name}\u2026"
            )
            if entry.status == "failed":
                self.status_label.setText(f"{entry.name}: {entry.message.splitlines()[0][:160]}")
            return
        layout = entry.parsed.document if entry.parsed is not None else None
        pages = len(entry.document.pages)
        page = page or min(self.page_of.get(path, 1), max(pages, 1))
        self.page_spin.setEnabled(pages > 0)
        self.page_spin.setSpecialValueText("" if pages else "\u2013")  # shown at the minimum: only when empty
        self.page_spin.setRange(1 if pages else 0, max(pages, 0))
        self.page_total.setText(f"/ {pages}")
        self.results.show_parse(entry.parsed)
        self.runs.refresh(entry)
        scope = self.tasks.extraction_scope
        if scope is not None and path not in scope:  # never the previous document's values beside this one
            self.results.clear_extraction(
                f"The last extraction covered other documents. Extract (Ctrl+J) {entry.name}."
            )
        self.page_view.fit_mode = True
        self.page_view.show_document(entry.document, page, layout)

    def show_citation(self, citation: Any) -> None:
        """Show the cited page with the passage's blocks highlighted."""
        key = str(Path(citation.document).resolve())
        if key not in self.entries:
            return
        item = self.doc_list.item_for(key)
        if item is not None:
            self._list_follows(item)
        if self.current != key or self.page_view.document is not self.entries[key].document:
            self.show_entry(key, citation.page)
        else:
            self.page_view.show_page(citation.page)
        self.finder.clear_marks()  # an earlier find's marks are not about this passage
        self.page_view.highlight_many(passage_blocks(self.page_view.blocks, citation.text))

    def _list_follows(self, item: Any) -> None:
        """The cited document's row becomes the current one, never changing the scope: with *All documents* it is
        also the one selected; with *Selected* the selection (the scope) stays and the row is marked as shown."""
        flag = QItemSelectionModel.SelectionFlag
        self.doc_list.blockSignals(True)
        if self.scope_box.currentIndex() == 1:  # the selection is not the scope: it follows the citation
            self.doc_list.setCurrentItem(item, flag.ClearAndSelect)
        else:
            self.doc_list.setCurrentItem(item, flag.NoUpdate)
        self.doc_list.blockSignals(False)

    def next_page(self) -> None:
        self.page_view.show_page(min(self.page_view.page + 1, self.page_view.page_count()))

    def prev_page(self) -> None:
        self.page_view.show_page(max(self.page_view.page - 1, 1))

    def _page_changed(self, number: int) -> None:
        self.page_spin.blockSignals(True)
        self.page_spin.setValue(number)
        self.page_spin.blockSignals(False)
        if self.current is not None:
            self.page_of[self.current] = number
        doc = self.page_view.document
        scanned = doc is not None and doc.pages[number - 1].scanned
        self.cleaned_box.setEnabled(scanned)
        self.results.scroll_to_page(number)
        if scanned and self.cleaned_box.isChecked():
            self.show_cleaned(number)

    def _cleaned_toggled(self, on: bool) -> None:
        if self.page_view.document is None:
            return
        self.page_view.show_page(self.page_view.page)

    def show_cleaned(self, number: int) -> Job:
        """Clean the scanned page on the worker, then show the result (the page as scanned stays one click away)."""
        doc = self.page_view.document
        dpi = 150

        def work(job: Job) -> Any:
            from inference.ocr.scan import clean_scan

            return clean_scan(doc.render(number, dpi))

        def done(result: Any) -> None:
            if self.page_view.document is doc and self.page_view.page == number and self.cleaned_box.isChecked():
                steps = ", ".join(result.steps) or "nothing to do"
                self.page_view.show_image(
                    result.after, f"cleaned: {steps}", dpi, result.matrix, (result.before.width, result.before.height)
                )

        return self.worker.submit(self.tasks.connect(Job("cleaning the scan", work), done))

    def _block_clicked(self, page: int, order: int) -> None:
        self.results.select_block(page, order)

    def _results_cursor(self, page: int, order: int) -> None:
        if page and page != self.page_view.page:
            self.page_view.show_page(page)
        self.page_view.highlight(order)

    def toggle_panel(self, on: bool | None = None) -> None:
        on = self.panel_action.isChecked() if on is None else on
        self.panel_action.setChecked(on)
        self.panel.setVisible(on)

    def engine_changed(self, name: str) -> None:
        """The Engine box changed: the panel shows with an engine that denoises, and the scope is counted again."""
        self.toggle_panel(name != "builtin")  # collapsed with the builtin engine: nothing denoises
        self.tasks.scope_changed()

    # state of the worker ----------------------------------------------------------------------------------
    def _job_started(self, job: Job) -> None:
        if job.quiet:
            return
        if job.fresh_panel:  # a model task that was queued: the panel is its own from now on
            self.panel.reset()
            self.toggle_panel(True)
        self.cancel_action.setEnabled(True)
        self.progress.setRange(0, 0)  # busy until the job reports figures
        self.progress.show()
        self._running_status(f"{job.name}\u2026")

    def _running_status(self, text: str) -> None:
        """A job's progress in the status bar; what is still shown when the worker goes idle is replaced."""
        self.status_label.setText(text)
        self.running_text = self.status_label.text()

    def _busy(self, busy: bool) -> None:
        if busy:
            return
        self.cancel_action.setEnabled(False)
        self.progress.hide()
        self.progress.setRange(0, 1)
        if self.status_label.text() == self.running_text:  # no result said anything since: not "reading..." forever
            self.status_label.setText("Ready.")
        if self.closing:
            QTimer.singleShot(0, self.close)

    def show_engine_progress(self, event: Any) -> None:
        """Prefill and canvases in the status bar (the panel shows the steps)."""
        kind = getattr(event, "kind", "")
        if kind == "prefill_started":
            self.progress.setRange(0, 0)
            cached = f" ({event.cached_tokens:,} cached)" if event.cached_tokens else ""
            self._running_status(f"prefill: {event.prompt_tokens:,} prompt tokens{cached}")
        elif kind == "prefill_progress":
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.done)
            left = event.seconds_left
            when = f", about {format_seconds(left)} left" if left else ""
            self._running_status(f"prefill: {event.done:,} of {event.total:,} tokens{when}")
        elif kind == "prefill_finished":
            self._running_status(f"prefill: {event.prompt_tokens:,} tokens in {event.seconds:.1f} s")
        elif kind == "canvas_started":
            engine = self.tasks.generating_engine()
            params = getattr(engine, "params", None)
            budget = getattr(params, "max_new_tokens", None) or event.canvas_length
            canvases = max(1, -(-budget // max(1, event.canvas_length)))  # at most; end-of-sequence can stop sooner
            self.progress.setRange(0, canvases)
            self.progress.setValue(event.canvas)
            self._running_status(f"canvas {event.canvas + 1} of at most {canvases}")

    def show_progress(self, done: int, total: int, what: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self._running_status(what)

    # messages, settings, closing ----------------------------------------------------------------------------
    def show_error(self, message: str, details: str = "") -> None:
        self.last_error = message
        self.banner.show_message(message, details)
        self.status_label.setText(message.splitlines()[0][:160])

    def show_shortcuts(self) -> QMessageBox:
        return show_shortcuts(self)

    def shortcut_rows(self) -> list[tuple[str, str]]:
        return shortcut_rows(self)

    def set_theme(self, theme: str) -> None:
        set_theme_of(self, theme)

    def show_about(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("diffusion-workbench")
        except PackageNotFoundError:
            number = "development"
        model = self.loaded.label if self.loaded is not None else "none loaded"
        QMessageBox.about(
            self,
            "About Diffusion Workbench",
            f"<b>Diffusion Workbench</b> {number}<br>Documents, OCR and DiffusionGemma's denoising, "
            f"live.<br>Model: {model}<br>DiffusionGemma weights are under Google's Gemma terms.",
        )

    def _remember(self, paths: list[str]) -> None:
        """Open Recent: each file of a small open; an open of many files is one entry, their folder."""
        if len(paths) > 3:
            paths = [os.path.commonpath([str(Path(p).parent) for p in paths])]
        recent = paths + [p for p in stored_list(self.settings, "recent_files") if p not in paths]
        self.settings.setValue("recent_files", recent[:MAX_RECENT])
        QTimer.singleShot(0, self.fill_recent)

    def fill_recent(self) -> None:
        """File -> Open Recent: the files and folders opened last, newest first."""
        self.recent_menu.clear()
        for path in stored_list(self.settings, "recent_files"):
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.add_paths([p]))

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:  # never larger than the screen: a 1280 x 800 screen hid Ask, Extract and Cancel
            room = screen.availableGeometry()
            self.resize(
                max(MINIMUM_SIZE[0], min(self.width(), room.width())),
                max(MINIMUM_SIZE[1], min(self.height(), room.height())),
            )
        for splitter in (self.split, self.right):
            state = self.settings.value(f"window/{splitter.objectName()}")
            if state is not None:
                splitter.restoreState(state)

    def _save_geometry(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        for splitter in (self.split, self.right):
            self.settings.setValue(f"window/{splitter.objectName()}", splitter.saveState())

    def closeEvent(self, event: Any) -> None:
        """Cancel, wait for the worker without blocking the UI thread, then close: a running job is asked to stop
        (it stops within a denoising step or a prefill chunk) and the window closes when the worker is idle. From
        here on nothing new is queued (the token count's timer would start one)."""
        self.closing = True
        self.tasks.count_timer.stop()
        if not self.worker.stop():
            self.status_label.setText("Closing: stopping the task under way\u2026")
            self.setEnabled(False)
            event.ignore()
            return
        self.worker.finish()
        if self.remote_engine is not None:
            self.remote_engine.close()
        self.panel.timer.stop()
        self._save_geometry()
        self.sessions.save()
        self.settings.sync()  # written now: the process may end without Python's teardown (app.gui.leave)
        super().closeEvent(event)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{int(seconds // 60)} min {round(seconds % 60):02d} s"
