"""The workbench window. It arranges panels and sends work to the worker; the work itself lives in ``inference``."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.gui import redenoise
from app.gui.banner import Banner
from app.gui.controller import TaskController
from app.gui.denoise_panel import DenoisePanel
from app.gui.find import FindBar, Finder
from app.gui.menus import (
    add_engine_menu,
    add_theme_menu,
    passage_blocks,
    restore_theme,
    set_theme_of,
    shortcut_rows,
    show_shortcuts,
)
from app.gui.model_dialog import ModelChoice
from app.gui.ocr_review import OcrReview
from app.gui.page_view import PageView
from app.gui.prefs import ElidedLabel, stored_list
from app.gui.queue_view import TaskQueue
from app.gui.results import Results
from app.gui.runs import Runs, RunsBar
from app.gui.selection import PageSelection
from app.gui.session import SessionKeeper
from app.gui.views import DocEntry, DocumentList, DropTarget, text_thumbnail
from app.gui.worker import Job, Worker

log = logging.getLogger(__name__)
MAX_RECENT = 10
MINIMUM_SIZE = (760, 480)


def settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "DiffusionWorkbench", "workbench")


@dataclass(frozen=True)
class Locked:
    """An encrypted document read without its password: ``wrong`` says why the one given failed ("" when none was
    given)."""

    wrong: str


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
        self._build()
        self._actions()
        restore_theme(self)
        self.resize(1400, 860)
        self.setMinimumSize(MINIMUM_SIZE[0], MINIMUM_SIZE[1])  # below it the toolbar and status texts overlap
        self._restore_geometry()
        self.sessions = SessionKeeper(self, session)
        self.sessions.restore()

    # layout ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.doc_list = DocumentList()
        self.doc_list.currentItemChanged.connect(self._select_item)
        self.doc_list.itemSelectionChanged.connect(self.tasks.scope_changed)
        self.doc_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.doc_list.customContextMenuRequested.connect(self._doc_menu)
        self.page_view = PageView()
        self.page_view.block_clicked.connect(self._block_clicked)
        self.page_view.page_changed.connect(self._page_changed)
        self.page_view.dropped.connect(self.take_drop)
        self.page_spin = QSpinBox()
        self.page_spin.setRange(0, 0)
        self.page_spin.setSpecialValueText("\u2013")  # no document: a dash, not "1"
        self.page_spin.setEnabled(False)
        self.page_spin.valueChanged.connect(
            lambda n: self.page_view.show_page(n) if n and n != self.page_view.page else None
        )
        self.page_total = QLabel("/ 0")
        self.cleaned_box = QCheckBox("Cleaned")
        self.cleaned_box.setToolTip(
            "Scanned pages: show the page after clean-up (upright, deskewed, denoised, cropped) instead of as scanned"
        )
        self.cleaned_box.setEnabled(False)
        self.cleaned_box.toggled.connect(self._cleaned_toggled)
        # never cut to "Clean": its own width whatever the theme's check box (the viewer's minimum follows)
        self.cleaned_box.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.cleaned_box.setMinimumWidth(self.cleaned_box.sizeHint().width())
        nav = QHBoxLayout()
        nav.setSpacing(4)  # at 800 px wide the row keeps Cleaned whole beside the list and the panel
        for text, slot, tip in (
            ("\u25c0", self.prev_page, "Previous page (PgUp)"),
            ("\u25b6", self.next_page, "Next page (PgDown)"),
        ):
            button = QPushButton(text)
            button.setFixedWidth(28)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            nav.addWidget(button)
        nav.addWidget(self.page_spin)
        nav.addWidget(self.page_total)
        nav.addWidget(self.cleaned_box)
        nav.addStretch(1)
        for text, slot, tip in (
            ("\u2212", lambda: self.page_view.zoom_by(1 / 1.25), "Zoom out (Ctrl+-)"),
            ("+", lambda: self.page_view.zoom_by(1.25), "Zoom in (Ctrl+=)"),
            ("Fit", self.page_view.fit, "Fit the page (Ctrl+0)"),
        ):
            button = QPushButton(text)
            button.setFixedWidth(32)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            nav.addWidget(button)
        viewer = QWidget()
        column = QVBoxLayout(viewer)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(nav)
        column.addWidget(self.page_view, 1)
        self.results = Results()
        self.results.citation_clicked.connect(self.show_citation)
        self.results.cursor_block.connect(self._results_cursor)
        self.results.setMinimumHeight(200)  # at the minimum height the denoising panel keeps its header
        redenoise.install(self)  # "Re-denoise selection" in the raw Markdown of a model parse
        self.panel = DenoisePanel()
        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.setObjectName("right")
        self.find_bar = FindBar()
        self.finder = Finder(self, self.find_bar)
        results_box = QWidget()
        results_column = QVBoxLayout(results_box)
        results_column.setContentsMargins(0, 0, 0, 0)
        results_column.setSpacing(0)
        self.runs_bar = RunsBar()
        self.runs = Runs(self, self.runs_bar)
        self.page_selection = PageSelection(self)
        results_column.addWidget(self.runs_bar)
        results_column.addWidget(self.results, 1)
        results_column.addWidget(self.find_bar)
        self.right.addWidget(results_box)
        self.right.addWidget(self.panel)
        self.right.setSizes([430, 430])
        self.right.setCollapsible(0, False)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setObjectName("main")
        self.split.addWidget(self.doc_list)
        self.split.addWidget(viewer)
        self.split.addWidget(self.right)
        self.split.setSizes([230, 620, 550])
        self.split.setStretchFactor(0, 0)  # the list keeps its width as the window or the other panes change
        self.split.setStretchFactor(1, 1)
        self.split.setStretchFactor(2, 1)
        self.split.setCollapsible(0, False)
        self.banner = Banner()
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.banner)
        outer.addWidget(self.split, 1)
        self.setCentralWidget(central)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.status_label = ElidedLabel("Drop PDFs, scans, images, Office files, web pages or videos here.")
        self.statusBar().addWidget(self.status_label, 3)  # one line; whole in its tooltip
        self.statusBar().addPermanentWidget(self.progress)
        self.model_label = ElidedLabel("model: none (builtin engine)")
        self.model_label.setMaximumWidth(320)  # a long model name never pushes the status message out
        self.statusBar().addPermanentWidget(self.model_label, 1)
        self.task_queue = TaskQueue(self)
        self.ocr_review = OcrReview(self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.ocr_review)
        self.ocr_review.hide()

    def _actions(self) -> None:
        bar = QToolBar("Tasks")
        bar.setObjectName("tasks")
        self.addToolBar(bar)
        self.toolbar = bar
        file_menu = self.menuBar().addMenu("&File")
        edit_menu = self.menuBar().addMenu("&Edit")
        view_menu = self.menuBar().addMenu("&View")
        task_menu = self.menuBar().addMenu("&Tasks")
        help_menu = self.menuBar().addMenu("&Help")
        style = self.style()

        def action(
            text: str,
            slot: Any,
            shortcut: Any = None,
            menu: Any = None,
            toolbar: bool = False,
            icon: Any = None,
            checkable: bool = False,
        ) -> QAction:
            act = QAction(text, self)
            act.setCheckable(checkable)
            keys = shortcut if isinstance(shortcut, list) else [] if shortcut is None else [shortcut]
            sequences = []
            for key in keys:
                sequences += (
                    QKeySequence.keyBindings(key) if isinstance(key, QKeySequence.StandardKey) else [QKeySequence(key)]
                )
            act.setShortcuts(sequences)
            plain = text.replace("&", "").rstrip("\u2026")
            named = sequences[0].toString(QKeySequence.SequenceFormat.NativeText) if sequences else ""
            act.setToolTip(f"{plain} ({named})" if named else plain)
            if icon is not None:
                act.setIcon(style.standardIcon(icon))
            # triggered(checked) passes a bool that a slot with optional arguments would take for one of them
            # (parse(paths) got False for its paths): only a checkable action's slot receives it
            act.triggered.connect(slot if checkable else lambda _checked=False, slot=slot: slot())
            if menu is not None:
                menu.addAction(act)
            if toolbar:
                bar.addAction(act)
            return act

        pix = QStyle.StandardPixmap
        action("&New session", lambda: self.sessions.new_session(), None, file_menu)
        action("&Open\u2026", self.open_dialog, QKeySequence.StandardKey.Open, file_menu, True, pix.SP_DialogOpenButton)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._fill_recent()
        action(
            "&Export\u2026", self.export_dialog, QKeySequence.StandardKey.Save, file_menu, True, pix.SP_DialogSaveButton
        )
        # the Delete key only: the platform's Delete bindings include Ctrl+D, the denoising panel's shortcut
        action("&Remove document", self.remove_selected, "Del", file_menu)
        action("C&lear documents", self.clear_documents, None, file_menu)
        file_menu.addSeparator()
        action("&Quit", self.close, QKeySequence.StandardKey.Quit, file_menu)
        action("&Paste image", self.paste_image, QKeySequence.StandardKey.Paste, edit_menu)
        edit_menu.addSeparator()
        action("&Find\u2026", self.finder.open, "Ctrl+F", edit_menu)
        action("Find &next", lambda: self.finder.step(1), "F3", edit_menu)
        action("Find pre&vious", lambda: self.finder.step(-1), "Shift+F3", edit_menu)
        action("Zoom &in", lambda: self.page_view.zoom_by(1.25), [QKeySequence.StandardKey.ZoomIn, "Ctrl+="], view_menu)
        action("Zoom &out", lambda: self.page_view.zoom_by(1 / 1.25), QKeySequence.StandardKey.ZoomOut, view_menu)
        action("&Fit page", self.page_view.fit, "Ctrl+0", view_menu)
        action("&Next page", self.next_page, QKeySequence.StandardKey.MoveToNextPage, view_menu)
        action("&Previous page", self.prev_page, QKeySequence.StandardKey.MoveToPreviousPage, view_menu)
        self.panel_action = action("Denoising &panel", self.toggle_panel, "Ctrl+D", view_menu, checkable=True)
        self.panel_action.setChecked(True)
        view_menu.addAction(self.task_queue.toggle_action())
        view_menu.addAction(self.ocr_review.toggle_action())
        add_theme_menu(self, view_menu, action)
        bar.addSeparator()
        self.engine_box = QComboBox()
        self.engine_box.addItems(["builtin", "model", "remote"])
        self.engine_box.setToolTip(
            "builtin: no weights (layout, OCR, retrieval); model: DiffusionGemma loaded here; "
            "remote: a server (dwb serve, vLLM), chosen in Tasks \u2192 Model\u2026"
        )
        self.engine_box.currentTextChanged.connect(self._engine_changed)
        engine_label = QLabel(" Engine ")
        engine_label.setToolTip(self.engine_box.toolTip())
        bar.addWidget(engine_label)
        bar.addWidget(self.engine_box)
        add_engine_menu(self, task_menu, action)
        action("&Model\u2026", self.model_dialog, "Ctrl+M", task_menu, True, pix.SP_ComputerIcon)
        self.parse_action = action("&Parse", self.parse, "Ctrl+R", task_menu, True, pix.SP_FileDialogDetailedView)
        self.scope_box = QComboBox()
        self.scope_box.addItems(["Selected", "All documents"])
        self.scope_box.setToolTip(
            "Which documents Parse, Ask and Extract cover: the selected ones (Ctrl+click for several) or all"
        )
        self.scope_box.currentIndexChanged.connect(lambda _: self.tasks.scope_changed())
        bar.addWidget(self.scope_box)
        self.question = QLineEdit()
        self.question.setPlaceholderText("Ask a question about the documents\u2026")
        self.question.setMinimumWidth(130)  # narrow windows keep Ask, Extract and Cancel on the toolbar
        self.question.returnPressed.connect(lambda: self.ask(self.question.text()))
        self.question.textChanged.connect(self.tasks.recount)
        bar.addWidget(self.question)
        self.scope_label = ElidedLabel()
        self.scope_label.setObjectName("scope")
        self.scope_label.setMaximumWidth(190)  # one line, elided (the whole text in its tooltip): never taller
        bar.addWidget(self.scope_label)
        action("&Ask", lambda: self.ask(self.question.text()), "Ctrl+K", task_menu, True, pix.SP_MessageBoxQuestion)
        action("Clear &conversation", self.clear_conversation, None, task_menu)
        action("E&xtract\u2026", self.extract_dialog, "Ctrl+J", task_menu, True, pix.SP_FileDialogContentsView)
        self.cancel_action = action(
            "&Cancel", self.cancel, QKeySequence.StandardKey.Cancel, task_menu, True, pix.SP_BrowserStop
        )
        self.cancel_action.setEnabled(False)
        action("&Keyboard shortcuts", self.show_shortcuts, None, help_menu)
        action("&About", self.show_about, None, help_menu)

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
            self.worker.submit(self._ingest_job(entry))
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

    def _ingest_job(self, entry: DocEntry) -> Job:
        secret = entry.extra.get("password")

        def work(job: Job) -> Any:
            from inference.documents import open_document
            from inference.errors import PasswordRequiredError

            try:
                doc = open_document(entry.path, password=lambda _path: secret)
            except PasswordRequiredError as exc:  # the UI thread asks for the password (again, when it was wrong)
                return Locked(exc.user_message() if exc.wrong else ""), None
            thumb = None
            try:
                thumb = doc.render(1, 24)
                thumb.thumbnail((96, 128))
            except Exception:  # noqa: BLE001 - no thumbnail is not an error
                thumb = None
            if thumb is None and doc.renderer is None and doc.pages:  # a text file: its first lines
                thumb = text_thumbnail(doc)
            return doc, thumb

        job = Job(f"reading {entry.name}", work)
        entry.status = "ingesting"
        self.doc_list.refresh(entry)
        job.succeeded.connect(lambda result, e=entry: self._ingested(e, *result))
        job.failed.connect(lambda message, details, e=entry: self._entry_failed(e, message, details))
        job.cancelled.connect(lambda _why, e=entry: self._not_read(e))
        return job

    def _not_read(self, entry: DocEntry) -> None:
        """Reading was cancelled (Esc, or its Cancel in the task queue): the row says so, never "reading" forever."""
        if entry.path in self.entries and entry.document is None:
            entry.status, entry.message = "failed", "Not read: cancelled. Right-click it and choose Open again."
            self.doc_list.refresh(entry)

    def _ingested(self, entry: DocEntry, doc: Any, thumb: Any) -> None:
        if entry.path not in self.entries:  # removed while it was read
            return
        if isinstance(doc, Locked):
            entry.status = "locked"  # shown as such in the list while the password is asked
            self.doc_list.refresh(entry)
            self._ask_password(entry, wrong=doc.wrong)
            return
        entry.document, entry.thumbnail = doc, thumb
        entry.status = "partial" if doc.errors else "parsed" if entry.parsed is not None else "ready"
        entry.message = "; ".join(e.message for e in doc.errors[:3])
        self.doc_list.refresh(entry)
        if self.current == entry.path or self.current is None:
            self.show_entry(entry.path)
        self.tasks.scope_changed()

    def _ask_password(self, entry: DocEntry, wrong: str = "") -> None:
        """An encrypted PDF: ask for its password without blocking (the window goes on); OK reads it again with it,
        Cancel leaves it failed, saying so. The password stays in memory with the entry only."""
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Password")
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
        dialog.setLabelText(
            f"{entry.name}: that password is wrong. Try again:"
            if wrong
            else f"{entry.name} is encrypted. Its password:"
        )

        def given(text: str) -> None:
            entry.extra["password"] = text
            self.reopen(entry.path)

        def cancelled() -> None:
            self._entry_failed(
                entry,
                f"{entry.name}: the PDF is encrypted and no password was given. "
                "Right-click it and choose Open again to enter one.",
                "",
            )

        dialog.textValueSelected.connect(given)
        dialog.rejected.connect(cancelled)
        dialog.open()
        self.dialog = dialog

    def reopen(self, path: str) -> Job | None:
        """Read a document again (after it failed, with a password, or from the saved session)."""
        entry = self.entries.get(path)
        if entry is None:
            return None
        entry.message = ""
        return self.worker.submit(self._ingest_job(entry))

    def _entry_failed(self, entry: DocEntry, message: str, details: str) -> None:
        entry.status, entry.message = "failed", message
        self.doc_list.refresh(entry)
        self.show_error(message if entry.name in message else f"{entry.name}: {message}", details)
        if self.current == entry.path:
            self.show_entry(entry.path)  # the reason in place of "Reading..."

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
        if item is not None and self.doc_list.currentItem() is not item:  # shown, never selected: the scope stays
            self.doc_list.blockSignals(True)
            self.doc_list.setCurrentItem(item, QItemSelectionModel.SelectionFlag.NoUpdate)
            self.doc_list.blockSignals(False)
        if self.current != key or self.page_view.document is not self.entries[key].document:
            self.show_entry(key, citation.page)
        else:
            self.page_view.show_page(citation.page)
        self.finder.clear_marks()  # an earlier find's marks are not about this passage
        self.page_view.highlight_many(passage_blocks(self.page_view.blocks, citation.text))

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

    def _engine_changed(self, name: str) -> None:
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
        QTimer.singleShot(0, self._fill_recent)

    def _fill_recent(self) -> None:
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
