"""Reading documents into the window: each file is read on the worker (its document and a small thumbnail); an
encrypted PDF asks for its password without blocking; a file that fails, or whose reading is cancelled, says why in
the document list and can be opened again.

``DocumentReader`` (``window.reader``) works on the window's ``DocEntry`` rows; which files are added, shown and
removed is the window's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtWidgets import QInputDialog, QLineEdit

from app.gui.views import DocEntry, text_thumbnail
from app.gui.worker import Job


@dataclass(frozen=True)
class Locked:
    """An encrypted document read without its password: ``wrong`` says why the one given failed ("" when none was
    given)."""

    wrong: str


class DocumentReader:
    """Reads the window's documents on its worker. ``window`` is the ``MainWindow``."""

    def __init__(self, window: Any) -> None:
        self.w = window

    def read(self, entry: DocEntry) -> Job:
        """Read ``entry`` on the worker (again, when it was read before); its row says so meanwhile."""
        return self.w.worker.submit(self._job(entry))

    def _job(self, entry: DocEntry) -> Job:
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
        self.w.doc_list.refresh(entry)
        job.succeeded.connect(lambda result, e=entry: self._read_done(e, *result))
        job.failed.connect(lambda message, details, e=entry: self._failed(e, message, details))
        job.cancelled.connect(lambda _why, e=entry: self._not_read(e))
        return job

    def _not_read(self, entry: DocEntry) -> None:
        """Reading was cancelled (Esc, or its Cancel in the task queue): the row says so, never "reading" forever."""
        if entry.path in self.w.entries and entry.document is None:
            entry.status, entry.message = "failed", "Not read: cancelled. Right-click it and choose Open again."
            self.w.doc_list.refresh(entry)

    def _read_done(self, entry: DocEntry, doc: Any, thumb: Any) -> None:
        if entry.path not in self.w.entries:  # removed while it was read
            return
        if isinstance(doc, Locked):
            entry.status = "locked"  # shown as such in the list while the password is asked
            self.w.doc_list.refresh(entry)
            self._ask_password(entry, wrong=doc.wrong)
            return
        entry.document, entry.thumbnail = doc, thumb
        entry.status = "partial" if doc.errors else "parsed" if entry.parsed is not None else "ready"
        entry.message = "; ".join(e.message for e in doc.errors[:3])
        self.w.doc_list.refresh(entry)
        if self.w.current == entry.path or self.w.current is None:
            self.w.show_entry(entry.path)
        self.w.tasks.scope_changed()

    def _ask_password(self, entry: DocEntry, wrong: str = "") -> None:
        """An encrypted PDF: ask for its password without blocking (the window goes on); OK reads it again with it,
        Cancel leaves it failed, saying so. The password stays in memory with the entry only."""
        dialog = QInputDialog(self.w)
        dialog.setWindowTitle("Password")
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
        dialog.setLabelText(
            f"{entry.name}: that password is wrong. Try again:"
            if wrong
            else f"{entry.name} is encrypted. Its password:"
        )

        def given(text: str) -> None:
            entry.extra["password"] = text
            self.w.reopen(entry.path)

        def cancelled() -> None:
            self._failed(
                entry,
                f"{entry.name}: the PDF is encrypted and no password was given. "
                "Right-click it and choose Open again to enter one.",
                "",
            )

        dialog.textValueSelected.connect(given)
        dialog.rejected.connect(cancelled)
        dialog.open()
        self.w.dialog = dialog

    def _failed(self, entry: DocEntry, message: str, details: str) -> None:
        entry.status, entry.message = "failed", message
        self.w.doc_list.refresh(entry)
        self.w.show_error(message if entry.name in message else f"{entry.name}: {message}", details)
        if self.w.current == entry.path:
            self.w.show_entry(entry.path)  # the reason in place of "Reading..."
