"""The window's tasks: scope, parse, ask (a conversation per scope), extract, the model, export.

``TaskController`` (``window.tasks``): each task collects its inputs on the UI thread, calls an engine's public
interface (``inference.tasks``: parse, ask with a ``Conversation``, extract, ``count_prompt``) as a ``Job`` on the
worker and shows its result when the job's signal comes back. Conversations, follow-ups and citations are the
engine's; the window renders events and results. Nothing here reads a file or runs the model on the UI thread.

This module keeps what every task shares: the scope (the documents a task covers, and the prompt's token count shown
beside them), the engine chosen, a job's context and its signals to the window, starting and cancelling. Each kind
of task is a part of its own (``tasks_parse``, ``tasks_ask``, ``tasks_extract``, ``tasks_model``, ``tasks_export``)
that ``TaskController`` takes in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMessageBox

from app.gui.messages import NO_DOCUMENT
from app.gui.tasks_ask import AskTasks
from app.gui.tasks_export import ExportTasks
from app.gui.tasks_extract import ExtractTasks
from app.gui.tasks_model import ModelTasks
from app.gui.tasks_parse import ParseTasks
from app.gui.views import DocEntry
from app.gui.worker import NOT_STARTED, Job


class TaskController(AskTasks, ParseTasks, ExtractTasks, ModelTasks, ExportTasks, QObject):
    """The window's tasks and what they keep (answers, conversations, extractions). ``window`` is the
    ``MainWindow``: its widgets show inputs and results (``doc_list``, ``results``, ``panel``, ``worker``...).

    Public for the task parts and for the window's other parts (Re-denoise, Extract's table, the scan view):
    ``context(job)`` (the engines' ``TaskContext`` of a job), ``connect(job, on_success)`` (a job's signals to the
    window), ``start_task``, and ``ready()`` (the engine and the documents in scope, or None after saying why not).
    They are defined on this class itself, not on a base between it and ``QObject``: PySide6 answers
    ``self.connect`` with ``QObject.connect`` unless the instance's own class defines it. Ask comes before Parse:
    the builtin engine's Ask parses what it answers from."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.w = window
        from inference.tasks.conversation import Conversation

        self.conversations: dict[tuple, Conversation] = {}  # (engine, *documents): the engine's follow-up state
        self.answer_log: list[tuple[tuple, Any]] = []  # (documents, answer) in the order asked, whatever the engine
        self.extractions: list[Any] = []
        self.extraction_scope: set[str] | None = None  # the documents the Extract tab is about
        self.exported: list[Path] = []
        self.overwrite_box: QMessageBox | None = None
        self.prompt_tokens: int | None = None  # the count shown by the question box (model engine)
        self._count_job: Job | None = None
        self.panel_waits = False  # a model task queued behind another: the panel is reset when it starts
        self.count_timer = QTimer(self)
        self.count_timer.setSingleShot(True)
        self.count_timer.setInterval(300)
        self.count_timer.timeout.connect(self.count_tokens)

    # scope ------------------------------------------------------------------------------------------------
    def scope_entries(self) -> list[DocEntry]:
        """The documents a task covers: the selected ones (else the current one), or all; only those read."""
        if self.w.scope_box.currentIndex() == 1:
            chosen = list(self.w.entries.values())
        else:
            paths = self.w.doc_list.selected_paths() or ([self.w.current] if self.w.current in self.w.entries else [])
            chosen = [self.w.entries[p] for p in paths if p in self.w.entries]
        return [e for e in chosen if e.document is not None]

    def scope_key(self, entries: list[DocEntry]) -> tuple:
        return (self.w.engine_box.currentText(), *sorted(e.path for e in entries))

    def scope_changed(self) -> None:
        entries = self.scope_entries()
        names = ", ".join(e.name for e in entries[:2]) + (f" +{len(entries) - 2}" if len(entries) > 2 else "")
        self.prompt_tokens = None
        self.w.scope_label.setText(f" {names or 'no document'} " if entries else " no document ")
        self.w.scope_label.set_detail("\n".join(e.path for e in entries) or "No document in scope")
        self.count_timer.start()

    def recount(self, *_: Any) -> None:
        """The question, the scope or the conversation changed: the count shown is stale until counted again, so it
        is not shown meanwhile (an Ask sent before the count came back showed the last question's figure)."""
        self.prompt_tokens = None
        names, _, figure = self.w.scope_label.text().partition(" \u00b7 ")
        if figure:
            self.w.scope_label.setText(f"{names.rstrip()} \u00b7 counting prompt tokens\u2026 ")
        self.count_timer.start()

    def count_tokens(self) -> None:
        """The exact prompt token count of an Ask on this scope with the model engine, counted on the worker."""
        entries = self.scope_entries()
        question = self.w.question.text().strip()
        engine = self.generating_engine()
        if engine is None or not entries or self.w.closing:
            return
        if self._count_job is not None:
            self._count_job.cancel()
        conversation = self.conversations.get(self.scope_key(entries))
        docs = [e.document for e in entries]

        def work(job: Job) -> Any:
            from inference.errors import CancelledError

            def stop_if_cancelled(*_: int) -> None:  # a task submitted meanwhile, or the window closing
                if job.cancelled_requested:
                    raise CancelledError("superseded")

            stop_if_cancelled()
            return engine.count_prompt(docs, question, conversation, on_page=stop_if_cancelled)

        def done(count: Any) -> None:  # inference.tasks.conversation.PromptCount
            if self.scope_entries() != entries or self.w.question.text().strip() != question:
                return  # out of date
            self.prompt_tokens = count.tokens
            note = " (follow-up: new tokens)" if count.follow_up else ""
            note = " (too long: read in parts)" if count.too_long else note
            names = self.w.scope_label.text().split(" \u00b7 ")[0].rstrip()
            self.w.scope_label.setText(f"{names} \u00b7 {count.tokens:,} prompt tokens{note} ")

        def dropped(*_: Any) -> None:  # cancelled (a task came first, or Cancel) or failed: count again when idle
            if self._count_job is job:
                self._count_job = None
                if not self.w.closing:
                    self.count_timer.start()

        job = Job("counting prompt tokens", work, quiet=True)
        job.succeeded.connect(done)
        job.cancelled.connect(dropped)
        job.failed.connect(dropped)
        self._count_job = job
        self.w.worker.submit(job)

    # running tasks ------------------------------------------------------------------------------------------
    def generating_engine(self) -> Any:
        """The engine chosen when it generates (the model loaded here, or the remote server), else None."""
        return {"model": self.w.model_engine, "remote": self.w.remote_engine}.get(self.w.engine_box.currentText())

    def chosen_engine(self) -> Any:
        """The engine of the Engine box, or None after saying what to load or connect first."""
        name = self.w.engine_box.currentText()
        if name == "builtin":
            from inference.tasks import BuiltinEngine

            return BuiltinEngine()
        engine = self.generating_engine()
        if engine is None:
            self.w.show_error(
                "Connect to a server first (Tasks \u2192 Model\u2026, Engine: Remote server), or choose another engine."
                if name == "remote"
                else "Load a model first (Tasks \u2192 Model\u2026), or choose the builtin engine."
            )
        return engine

    def ready(self) -> tuple[Any, list[DocEntry]] | None:
        """The engine and the documents in scope, or None after saying what is missing."""
        entries = self.scope_entries()
        if not entries:
            self.w.show_error(
                NO_DOCUMENT
                if not self.w.entries
                else "No document in scope is ready: select one in the list, or choose All documents."
            )
            return None
        engine = self.chosen_engine()
        return None if engine is None else (engine, entries)

    def context(self, job: Job) -> Any:
        from inference.errors import CancelledError
        from inference.tasks import TaskContext

        def progress(done: int, total: int, what: str) -> None:
            if job.cancelled_requested:
                raise CancelledError("cancelled")
            job.progress.emit(done, total, what)

        return TaskContext(progress=progress, on_event=job.event.emit, cancel=job.cancel_token)

    def connect(self, job: Job, on_success: Any, stream: tuple[str, str] | None = None) -> Job:
        job.fresh_panel, self.panel_waits = self.panel_waits, False
        job.event.connect(self.w.panel.on_event)
        job.event.connect(self.w.show_engine_progress)
        if stream is not None:  # before on_success: the stream ends, then the result replaces it
            self._stream_results(job, *stream)
        job.progress.connect(self.w.show_progress)
        job.succeeded.connect(on_success)
        job.failed.connect(self.w.show_error)
        job.cancelled.connect(lambda why, j=job: self._cancelled(j, why))
        return job

    def _stream_results(self, job: Job, kind: str, title: str) -> None:
        """Committed text into the results tab of the task (``Results.begin_stream``) as each canvas commits."""
        from inference.runtime.events import CanvasCommitted, PrefillStarted

        runs: list[Any] = []

        def on_event(event: Any) -> None:
            if isinstance(event, PrefillStarted):  # a run starts: the first, or the next page's
                self.w.results.stream_break() if runs else self.w.results.begin_stream(kind, title)
                runs.append(event)
            elif isinstance(event, CanvasCommitted) and runs:
                self.w.results.stream_text(event.texts[0])

        def end(*_: Any) -> None:
            if runs:
                self.w.results.end_stream()

        job.event.connect(on_event)
        for signal in (job.succeeded, job.failed, job.cancelled):
            signal.connect(end)

    def start_task(self, engine: Any) -> None:
        self.w.banner.hide()  # the last task's message is not this one's
        if engine.name in ("model", "remote"):
            if self.w.worker.jobs():  # queued behind another task: the panel shows that one's steps until it starts
                self.panel_waits = True  # taken by the job in connect; the window resets the panel when it starts
                return
            self.w.panel.reset()
            self.w.toggle_panel(True)

    def _cancelled(self, job: Job, why: str = "") -> None:
        if why == NOT_STARTED:  # taken off the queue: the running task's position is not about it
            self.w.status_label.setText(f"Cancelled {job.title} before it started.")
            return
        where = self.w.panel.position()
        message = f"Cancelled {where}. Earlier results are kept." if where else "Cancelled. Earlier results are kept."
        self.w.banner.show_message(message, error=False)
        self.w.status_label.setText(message)

    def cancel(self) -> None:
        if self.w.worker.busy:
            self.w.worker.cancel()
            self.w.status_label.setText("Cancelling\u2026")
