"""The window's session: written when the window closes (``session.json`` beside the settings file), read back on
the worker when it opens, so that the documents, every parse of each, the answers and the extractions come back.

File -> New session starts afresh. A session file that cannot be read never stops the window from opening: it is
set aside (renamed beside itself) and the banner says so. The format lives in ``inference.session_file``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMessageBox

from app.gui.runs import Run, runs_of
from app.gui.views import DocEntry, ask_first
from app.gui.worker import Job

SESSION_FILE = "session.json"


class SessionKeeper:
    """Saves and restores the session of ``window`` (the ``MainWindow``); ``enabled`` False (screenshots,
    benchmarks) neither reads nor writes it."""

    def __init__(self, window: Any, enabled: bool = True) -> None:
        self.window = window
        self.enabled = enabled
        self.restored: Any = None  # the inference.session_file.SessionState read at start, once shown
        self.reading = False  # the saved session is being read: closing now must not save over it
        self.new_session_box: QMessageBox | None = None  # the confirmation of File -> New session, while shown

    @property
    def path(self) -> Path:
        return Path(self.window.settings.fileName()).with_name(SESSION_FILE)

    # saving -------------------------------------------------------------------------------------------------------
    def state(self) -> Any:
        """The window's session now (documents in list order, their runs, answers, extractions)."""
        from inference.session_file import SavedDocument, SavedRun, SessionState

        w = self.window
        documents = []
        for path, entry in w.entries.items():
            runs = runs_of(entry)
            shown = next((i for i, r in enumerate(runs) if r.parsed is entry.parsed), -1)
            saved = [SavedRun(r.parsed, r.engine, r.model, r.params, r.seconds) for r in runs]
            documents.append(SavedDocument(path, saved, shown, w.page_of.get(path, 1)))
        scope = w.tasks.extraction_scope
        return SessionState(
            documents=documents,
            answers=list(w.tasks.answer_log),
            extractions=list(w.tasks.extractions),
            extraction_scope=sorted(scope) if scope is not None else None,
            current=w.current,
            selected=w.doc_list.selected_paths(),
            scope_all=w.scope_box.currentIndex() == 1,
        )

    def save(self) -> Path | None:
        """Write the session now (the window is closing: the worker is joined, nothing else runs)."""
        if not self.enabled or self.reading:  # closed before the saved session was read: the file is kept
            return None
        from inference.session_file import save_session

        try:
            return save_session(self.path, self.state())
        except (OSError, TypeError, ValueError) as exc:  # a full disk never keeps the window from closing
            self.window.status_label.setText(f"The session could not be saved: {exc}")
            return None

    # restoring ----------------------------------------------------------------------------------------------------
    def restore(self) -> Job | None:
        """Read the saved session on the worker; its documents are opened again when it comes back."""
        if not self.enabled or not self.path.exists():
            return None
        path = self.path

        def work(job: Job) -> Any:
            from inference.session_file import SessionError, load_session, set_aside

            try:
                return load_session(path), ""
            except SessionError as exc:
                try:
                    moved = set_aside(path)
                except OSError as move_error:
                    return None, f"The saved session ({path}) could not be read: {exc}; {move_error}."
                return None, (
                    f"The saved session could not be read ({exc.message}): it was set aside as {moved.name} "
                    "and the window starts with a new session."
                )

        job = Job("restoring the saved session", work, key=("session",), detail="restoring the saved session")
        job.succeeded.connect(lambda result: self._restored(*result))
        job.failed.connect(self.window.show_error)
        job.failed.connect(self._not_read)
        job.cancelled.connect(self._not_read)
        self.reading = True
        return self.window.worker.submit(job)

    def _not_read(self, *_: Any) -> None:
        """The read failed or was cancelled. When the window is closing, nothing of the saved session is in it: the
        file stays as it is (never the empty window saved over it). Otherwise (Esc during the read) the window's work
        from here is what is saved on close."""
        if not self.window.closing:
            self.reading = False

    def _restored(self, state: Any, notice: str) -> None:
        self.reading = False
        self._show(state, notice)

    def _show(self, state: Any, notice: str) -> None:
        w = self.window
        if notice:
            w.banner.show_message(notice, error=False)
            w.status_label.setText(notice.split(":")[0] + ".")
        if state is None or state.empty:
            return
        self.restored = state
        missing, reading = [], None
        for saved in state.documents:
            if saved.path in w.entries:
                continue
            if not Path(saved.path).is_file():
                missing.append(Path(saved.path).name)
                continue
            entry = DocEntry(saved.path)
            runs_of(entry).extend(Run(r.parsed, r.engine, r.model, r.params, r.seconds) for r in saved.runs)
            if saved.runs:
                entry.parsed = saved.runs[saved.shown].parsed if 0 <= saved.shown < len(saved.runs) else None
            w.page_of[saved.path] = saved.page
            w.entries[saved.path] = entry
            w.doc_list.add_entry(entry)
            reading = w.reopen(saved.path)
        tasks = w.tasks
        tasks.answer_log = list(state.answers) + tasks.answer_log
        for paths, answer in state.answers:  # the Answer tab shows every answer, each with the documents it is about
            w.results.about[id(answer)] = [Path(p).name for p in paths]
        w.results.show_thread([answer for _, answer in tasks.answer_log])
        tasks.extractions = list(state.extractions) + tasks.extractions
        if state.extractions:
            tasks.extraction_scope = set(state.extraction_scope or [])
            w.results.show_extraction(state.extractions[-1])
        current = state.current if state.current in w.entries else next(iter(w.entries), None)
        if current is not None:
            w.doc_list.setCurrentItem(w.doc_list.item_for(current))
        for path in state.selected:
            item = w.doc_list.item_for(path)
            if item is not None:
                item.setSelected(True)
        w.scope_box.setCurrentIndex(1 if state.scope_all else 0)
        tasks.scope_changed()
        gone = f" {len(missing)} document(s) are no longer there: {', '.join(missing[:3])}." if missing else ""
        said = (
            f"Reopened the saved session: {len(w.entries)} document(s), {len(tasks.answer_log)} answer(s), "
            f"{len(tasks.extractions)} extraction(s).{gone}"
        )
        if missing:
            w.banner.show_message(said, error=False)
        w.status_label.setText(said)
        if reading is not None:  # said again once the documents are read (their progress replaces it meanwhile)
            reading.done.connect(lambda: w.status_label.setText(said))

    def losses(self) -> list[str]:
        """What a new session would close, named for the confirmation ("8 documents", "1 OCR correction");
        empty when there is nothing to lose."""
        w = self.window
        corrected = sum(
            len((blk.attrs or {}).get("edited") or {})
            for entry in w.entries.values()
            for run in runs_of(entry)
            for page in run.parsed.document.pages
            for blk in page.blocks
        )
        counts = [
            (len(w.entries), "document"),
            (len(w.tasks.answer_log), "answer"),
            (len(w.tasks.extractions), "extraction"),
            (corrected, "OCR correction"),
        ]
        return [f"{n} {name}{'s' if n != 1 else ''}" for n, name in counts if n]

    def ask_new_session(self) -> QMessageBox | None:
        """File -> New session: with anything to lose, ask first (without blocking the UI thread; Cancel is the
        default) and start afresh only on *New session*; with nothing to lose, start afresh at once."""
        losses = self.losses()
        if not losses:
            self.new_session()
            return None
        named = ", ".join(losses[:-1]) + (" and " if len(losses) > 1 else "") + losses[-1]

        def go() -> None:
            self.new_session_box = None
            self.new_session()

        def cancelled() -> None:
            self.new_session_box = None
            self.window.status_label.setText("New session cancelled: nothing was closed.")

        self.new_session_box = ask_first(
            self.window,
            "New session?",
            f"Close {named}? The saved session is replaced.",
            "New session",
            QMessageBox.ButtonRole.DestructiveRole,
            go,
            cancelled,
        )
        return self.new_session_box

    def new_session(self) -> None:
        """Forget the documents, their parses, the answers and the extractions (File -> New session)."""
        w = self.window
        w.clear_documents()
        w.tasks.conversations.clear()
        w.tasks.answer_log.clear()
        w.tasks.extractions.clear()
        w.tasks.extraction_scope = None
        w.results.clear_thread()
        w.results.clear_extraction("Nothing extracted yet.")
        w.banner.hide()
        w.status_label.setText("New session: drop documents here or open them (Ctrl+O).")
