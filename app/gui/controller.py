"""The window's tasks: scope, parse, ask (a conversation per scope), extract, the model, export.

``TaskController`` (``window.tasks``): each task collects its inputs on the UI thread, calls an engine's public
interface (``inference.tasks``: parse, ask with a ``Conversation``, extract, ``count_prompt``) as a ``Job`` on the
worker and shows its result when the job's signal comes back. Conversations, follow-ups and citations are the
engine's; the window renders events and results. Nothing here reads a file or runs the model on the UI thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from app.gui.export_dialog import ExportChoice, ExportDialog, existing_targets
from app.gui.model_dialog import ModelChoice, ModelDialog
from app.gui.prefs import stored_list
from app.gui.schema_editor import SchemaEditor
from app.gui.views import DocEntry
from app.gui.worker import NOT_STARTED, Job

MAX_RECENT = 10
NO_DOCUMENT = "Add a document first: drop files on the window, or File \u2192 Open (Ctrl+O)."


def spare_a_core() -> int:
    """Worker thread, before the model runs on the CPU: its threads (this thread's OpenMP team) use every core but
    one, which stays with the UI thread. A team as large as the machine makes the UI thread wait for a core on every
    step (tests/benchmarks/ui.py measures the stall), and on a machine busy with other work the team's threads wait
    on each other at every barrier."""
    import os

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, min(torch.get_num_threads(), cores - 1))
    torch.set_num_threads(threads)
    return threads


def own_parse(entry: DocEntry, engine: str) -> Any:
    """The latest parse of ``entry`` made by ``engine`` (a ParseResult), or None: the builtin Ask quotes the
    document's own text, never a model's transcription shown beside it."""
    from app.gui.runs import runs_of

    if entry.parsed is not None and getattr(entry.parsed, "engine", None) == engine:
        return entry.parsed
    return next((r.parsed for r in reversed(runs_of(entry)) if r.engine == engine), None)


def check_remote_choice(choice: ModelChoice) -> tuple[str, str | None]:
    """The base URL and the bearer token of a remote choice, or a ConfigError that says what to fix."""
    import os
    from urllib.parse import urlsplit

    from inference.errors import ConfigError

    url = choice.base_url.strip()
    parts = urlsplit(url)
    if not url:
        raise ConfigError("Give the server's base URL, for example http://127.0.0.1:8000/v1 (dwb serve prints it).")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"The base URL {url!r} is not an http:// or https:// address with a host, such as http://127.0.0.1:8000/v1."
        )
    key = None
    if choice.api_key_env:
        key = os.environ.get(choice.api_key_env, "").strip()
        if not key:
            raise ConfigError(
                f"The environment variable {choice.api_key_env} (API key env var) is not set or "
                "empty. Set it before starting the workbench, or leave the field empty."
            )
    return url, key


def names_of(entries: list[DocEntry]) -> str:
    """The documents of a task as the task queue lists them: two names, then how many more."""
    names = ", ".join(e.name for e in entries[:2])
    return names + (f" +{len(entries) - 2}" if len(entries) > 2 else "")


class TaskController(QObject):
    """The window's tasks and what they keep (answers, conversations, extractions). ``window`` is the
    ``MainWindow``: its widgets show inputs and results (``doc_list``, ``results``, ``panel``, ``worker``...).

    Public for the window's other parts (Re-denoise, Extract's table, the scan view): ``context(job)`` (the engines'
    ``TaskContext`` of a job), ``connect(job, on_success)`` (a job's signals to the window) and ``start_task``."""

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

    def _engine(self) -> Any:
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

    def _ready(self) -> tuple[Any, list[DocEntry]] | None:
        """The engine and the documents in scope, or None after saying what is missing."""
        entries = self.scope_entries()
        if not entries:
            self.w.show_error(
                NO_DOCUMENT
                if not self.w.entries
                else "No document in scope is ready: select one in the list, or choose All documents."
            )
            return None
        engine = self._engine()
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

    def parse(self, paths: list[str] | None = None) -> Job | None:
        if paths is not None:
            chosen = [self.w.entries[p] for p in paths if p in self.w.entries]
            unread = [e for e in chosen if e.document is None]
            if unread:
                e = unread[0]
                failed = f"{e.name} could not be opened, so it cannot be parsed. {e.message}".strip()
                self.w.show_error(failed if e.status == "failed" else f"{e.name} is still being read: parse it later.")
            chosen = [e for e in chosen if e.document is not None]
            if not chosen:
                return None
        ready = self._ready() if paths is None else (self._engine(), chosen)
        if ready is None or ready[0] is None:
            return None
        engine, entries = ready
        if paths is None and len(entries) > 1:  # several in scope: those this engine parsed already are kept
            fresh = [e for e in entries if e.parsed is None or getattr(e.parsed, "engine", None) != engine.name]
            if not fresh:
                self.w.status_label.setText(
                    f"Already parsed with the {engine.name} engine. To parse one again: right-click it \u2192 "
                    "Parse again."
                )
                return None
            entries = fresh
        key = ("parse", engine.name, *sorted(e.path for e in entries))
        if self.w.task_queue.already(key):  # Ctrl+R again while it runs: one parse, not four identical ones
            return None
        self.start_task(engine)
        before = {e.path: e.status for e in entries}

        def work(job: Job) -> Any:
            from inference.tasks.base import ParseOptions

            context = self.context(job)
            # Page by page: the panel follows one page's run at a time (the CLI batches pages: --batch-size).
            options = ParseOptions(batch_size=1)
            out = []
            for e in entries:
                started = time.perf_counter()
                out.append((e.path, engine.parse(e.document, options, context=context), time.perf_counter() - started))
            return out

        def restore(*_: Any) -> None:  # cancelled or failed: each document goes back to what it was
            for e in entries:
                if e.status == "parsing":
                    e.status = before[e.path]
                    self.w.doc_list.refresh(e)

        for e in entries:
            e.status = "parsing"
            self.w.doc_list.refresh(e)
        detail = f"parsing {names_of(entries)} ({engine.name})"
        job = self.connect(Job("parsing", work, key=key, detail=detail), self._parsed, stream=("markdown", ""))
        job.cancelled.connect(restore)
        job.failed.connect(restore)
        return self.w.worker.submit(job)

    def _parsed(self, results: list[tuple[Any, ...]], announce: bool = True) -> None:
        """``(path, parse, seconds)`` per document: each parse is kept beside the earlier ones and shown."""
        for path, parsed, *took in results:
            entry = self.w.entries.get(path)
            if entry is None:
                continue
            self.w.runs.record(entry, parsed, took[0] if took else 0.0)
            entry.status = "partial" if parsed.document.errors else "parsed"
            self.w.doc_list.refresh(entry)
        if self.w.current in {r[0] for r in results}:  # refresh the document shown; never switch to another one
            self.w.show_entry(self.w.current, self.w.page_view.page or None)
        if results and announce:
            engine = results[-1][1].engine
            partial = [parsed for _path, parsed, *_ in results if parsed.document.errors]
            if not partial:
                self.w.status_label.setText(f"Parsed {len(results)} document(s) with the {engine} engine.")
                return
            first = partial[0].document
            where = f"page {first.errors[0].page}: " if first.errors[0].page else ""
            self.w.show_error(
                f"{len(partial)} of {len(results)} document(s) parsed with the {engine} engine are partial: "
                f"{first.name}, {where}{first.errors[0].message}."
            )
            self.w.status_label.setText(f"Parsed {len(results)} document(s), {len(partial)} partial.")

    def ask(self, question: str) -> Job | None:
        if not question.strip():
            self.w.show_error("Type a question first.") if self.w.entries else self.w.show_error(NO_DOCUMENT)
            self.w.question.setFocus(Qt.FocusReason.ShortcutFocusReason)  # where to type it
            return None
        ready = self._ready()
        if ready is None:
            return None
        engine, entries = ready
        key = self.scope_key(entries)
        task = ("ask", question.strip(), *key)
        if self.w.task_queue.already(task, double_click=True):  # a double-click, or Enter then Ctrl+K: one answer
            return None
        self.start_task(engine)
        from inference.tasks.conversation import Conversation

        conversation = self.conversations.setdefault(key, Conversation())
        builtin = {e.path: own_parse(e, "builtin") for e in entries} if engine.name == "builtin" else {}

        def work(job: Job) -> Any:
            context = self.context(job)
            if engine.name == "builtin":  # its own OCR and layout (never a model's text), once per document
                unread = [e for e in entries if builtin[e.path] is None]
                parsed = []
                for e in unread:
                    started = time.perf_counter()
                    parsed.append((e.path, engine.parse(e.document, context=context), time.perf_counter() - started))
                fresh = {path: result for path, result, _took in parsed}
                docs = [(fresh.get(e.path) or builtin[e.path]).document for e in entries]
                return engine.ask(docs, question, context=context), parsed
            return engine.ask([e.document for e in entries], question, context=context, conversation=conversation), []

        def done(result: tuple[Any, list[tuple[str, Any]]]) -> None:
            answer, parsed = result
            if parsed:
                shown = {path: self.w.entries[path].parsed for path, *_ in parsed if path in self.w.entries}
                self._parsed(parsed, announce=False)
                for path, before in shown.items():  # kept as a run; the parse shown stays the one the user chose
                    if before is not None:
                        self.w.entries[path].parsed = before
                        self.w.runs.refresh(self.w.entries[path])
            self.answer_log.append((key[1:], answer))
            self.w.results.show_answer(answer, about=[e.name for e in entries])  # every answer stays in view
            self.say_answered(answer, len(entries))
            self.recount()

        detail = f"asking \u201c{question.strip()}\u201d about {names_of(entries)} ({engine.name})"
        job = Job("asking", work, key=task, detail=detail)
        return self.w.worker.submit(self.connect(job, done, stream=("answer", question)))

    def say_answered(self, answer: Any, documents: int) -> None:
        """The status of an answer: an empty one is said to be empty, never "Answered"; a retrieval that found no
        passage says so, never "Answered"."""
        if answer.kind == "retrieved" and not answer.citations:
            self.w.status_label.setText(f"No passage matched in {documents} document(s).")
            return
        if answer.text.strip():
            self.w.status_label.setText(f"Answered from {documents} document(s).")
            return
        message = (
            f"The {answer.engine} engine gave an empty answer from {documents} document(s). Rephrase the question, "
            "allow more denoising steps or new tokens (Tasks \u2192 Model\u2026), or use a larger model."
        )
        self.w.banner.show_message(message, error=False)  # a notice: the answer is kept, nothing failed
        self.w.status_label.setText("Empty answer.")

    def clear_conversation(self) -> None:
        """Forget the answers about the documents in scope, with every engine, and their KV caches."""
        docs = self.scope_key(self.scope_entries())[1:]
        self.conversations = {k: v for k, v in self.conversations.items() if k[1:] != docs}
        self.answer_log = [(k, a) for k, a in self.answer_log if k != docs]
        self.w.results.show_thread([a for _, a in self.answer_log])
        self.recount()

    def extract_dialog(self) -> SchemaEditor | None:
        """The schema editor: the fields to extract (the schema used last, else one empty field); Extract runs it."""
        if self._ready() is None:
            return None
        editor = SchemaEditor(self.w, str(self.w.settings.value("schema_dir", "")))
        last = str(self.w.settings.value("last_schema", "") or "")
        if last:
            editor.load(last)
        else:
            editor.add_field()

        def remember(path: str) -> None:
            self.w.settings.setValue("last_schema", path)
            self.w.settings.setValue("schema_dir", str(Path(path).parent))

        editor.loaded.connect(remember)
        editor.saved.connect(remember)
        editor.accepted.connect(lambda: self.extract(editor.schema()))
        editor.open()
        self.w.dialog = editor
        return editor

    def extract(self, schema_path: str | dict[str, Any]) -> Job | None:
        """Extract the fields of a JSON Schema (a file, or the schema itself) from the documents in scope."""
        ready = self._ready()
        if ready is None:
            return None
        engine, entries = ready
        import json

        schema_key = schema_path if isinstance(schema_path, str) else json.dumps(schema_path, sort_keys=True)
        key = ("extract", schema_key, engine.name, *sorted(e.path for e in entries))
        if self.w.task_queue.already(key):
            return None
        self.start_task(engine)
        asked: dict[str, Any] = {}  # the schema's fields, read on the worker
        from app.gui.extract_view import LiveExtraction, decorate, install_menu

        live = LiveExtraction(self.w.results)  # a templated extraction's values denoise in place in the table

        def work(job: Job) -> Any:
            from inference.tasks.schema import load_schema

            schema = schema_path if isinstance(schema_path, dict) else load_schema(schema_path)
            asked.update(schema.get("properties") or {})
            context = self.context(job)
            context.extra["on_layout"] = live.set_layout
            docs = [e.parsed.document if e.parsed is not None else e.document for e in entries]
            return engine.extract(docs, schema, context=context)

        def done(extraction: Any) -> None:
            self.extractions.append(extraction)
            self.extraction_scope = {e.path for e in entries}  # the Extract tab is about these documents only
            self.w.results.show_extraction(extraction)
            decorate(self.w.results, extraction)
            install_menu(self.w)
            fields = list(asked)
            if not extraction.value:  # an empty object is valid against most schemas: say why it is empty
                how = (
                    "The builtin engine reads \u201cname: value\u201d lines and table rows whose label is a "
                    "field's name, title or alias; load a model (Tasks \u2192 Model\u2026) to read running text."
                    if extraction.engine == "builtin"
                    else "The model's reply held none of them."
                )
                more = ", \u2026" if len(fields) > 5 else ""
                named = f" ({', '.join(fields[:5])}{more})" if fields else ""
                self.w.banner.show_message(f"No field{named} was found in the documents in scope. {how}", error=False)
                self.w.status_label.setText("Extracted nothing.")
            else:
                self.w.status_label.setText(
                    f"Extracted {len(extraction.sources)} value(s) of {len(fields) or len(extraction.value)} field(s)."
                )

        job = Job("extracting", work, key=key, detail=f"extracting from {names_of(entries)} ({engine.name})")
        job.event.connect(live.on_event)
        return self.w.worker.submit(self.connect(job, done, stream=("extract", "")))

    # model ------------------------------------------------------------------------------------------------
    def model_dialog(self) -> None:
        from inference.runtime.available import NO_RUNTIME, NO_RUNTIME_HINT, has_model_runtime

        if not has_model_runtime():  # the light build: say so instead of a dialog whose every choice fails
            self.w.show_error(f"{NO_RUNTIME[:1].upper()}{NO_RUNTIME[1:]}.\n{NO_RUNTIME_HINT}")
            return
        recent = stored_list(self.w.settings, "recent_models")
        dialog = ModelDialog(self.w, recent, self.w.model_choice)
        dialog.accepted.connect(lambda: self.load_model(dialog.choice()))
        dialog.open()
        self.w.dialog = dialog

    def load_model(self, choice: ModelChoice) -> Job:
        if choice.engine == "remote":
            return self.connect_remote(choice)

        def work(job: Job) -> Any:
            from inference.runtime.available import require_model_runtime

            require_model_runtime()
            from inference.runtime.params import DiffusionParams
            from inference.tasks.model import ModelEngine
            from inference.weights.loading import load_model

            job.progress.emit(0, 3, f"reading {choice.source}\u2026")
            params = DiffusionParams.from_dict(choice.params)  # a ConfigError naming the field
            job.progress.emit(1, 3, "loading weights\u2026")

            def progress(message: Any) -> None:  # quantizing reports layer k of n with the time left
                if getattr(message, "total", None):
                    job.progress.emit(message.done, message.total, str(message))
                else:
                    job.progress.emit(1, 3, f"{message}\u2026")

            loaded = load_model(
                choice.source,
                dtype=choice.dtype,
                device=choice.device,
                quant=getattr(choice, "quant", "auto"),
                progress=progress,
            )
            job.progress.emit(2, 3, "ready")
            if loaded.device == "cpu":
                spare_a_core()
            engine = ModelEngine(loaded, params=params)
            return loaded, engine

        def done(result: tuple[Any, Any]) -> None:
            self.w.loaded, self.w.model_engine = result
            self.w.model_choice = choice
            for key, conversation in self.conversations.items():
                if key[0] == "model":  # the old model's cache means nothing to this one; its answers stay
                    conversation.forget()
            quant = ", NF4" if getattr(self.w.loaded, "quant", "none") == "nf4" else ""
            loaded = self.w.loaded
            self.w.model_label.setText(f"model: {loaded.label} [{loaded.dtype}{quant}, {loaded.device}]")
            self.w.panel.set_decoder(lambda i: self.w.loaded.tokenizer.decode([i]))
            if self.w.engine_box.currentText() != "model":  # the Engine stays the user's choice
                self.w.status_label.setText(f"Loaded {self.w.loaded.label}: choose Engine \u2192 model to use it.")
            else:
                self.w.status_label.setText(f"Loaded {self.w.loaded.label}.")
            recent = [choice.source] + [s for s in stored_list(self.w.settings, "recent_models") if s != choice.source]
            self.w.settings.setValue("recent_models", recent[:MAX_RECENT])

        key = ("model", choice.source, choice.dtype, choice.device, repr(sorted(choice.params.items())))
        job = Job("loading the model", work, key=key, detail=f"loading the model {choice.source}")
        return self.w.worker.submit(self.connect(job, done))

    def connect_remote(self, choice: ModelChoice) -> Job:
        """Build the remote engine on the worker (the processor of ``choice.source`` for prompts, no weights) and
        ask the server for its models: a wrong address is reported now, not at the first task."""

        def work(job: Job) -> Any:
            from inference.errors import GenerationError, ModelLoadError
            from inference.runtime.params import DiffusionParams
            from inference.tasks.remote import RemoteEngine, load_processor

            base_url, key = check_remote_choice(choice)
            job.progress.emit(0, 2, f"reading the processor of {choice.source}\u2026")
            try:
                processor = load_processor(choice.source)
            except ModelLoadError as exc:  # the hint names the dialog's field, not a command-line option
                raise ModelLoadError(
                    exc.message,
                    hint="Choose as Source the model the server runs: a Hugging Face id "
                    "or a local folder with its processor and tokenizer files (no weights "
                    "needed).",
                ) from exc
            job.progress.emit(1, 2, f"connecting to {base_url}\u2026")
            engine = RemoteEngine(
                base_url,
                processor,
                model=choice.remote_model or None,
                api_key=key,
                concurrency=choice.concurrency,
                params=DiffusionParams.from_dict(choice.params),
            )
            try:
                engine.generator.connect()
            except GenerationError as exc:
                engine.close()
                raise GenerationError(
                    f"{base_url} did not answer as an OpenAI-compatible server ({exc.message})",
                    hint="Check the address (it usually ends in /v1) and that the server is running.",
                ) from exc
            except BaseException:
                engine.close()
                raise
            return engine

        def done(engine: Any) -> None:
            if self.w.remote_engine is not None:
                self.w.remote_engine.close()
            self.w.remote_engine = engine
            self.w.model_choice = choice
            self.conversations = {k: v for k, v in self.conversations.items() if k[0] != "remote"}
            server = engine.generator  # inference.tasks.remote.HttpGenerator
            self.w.model_label.setText(f"remote: {server.model} at {server.base_url}")
            tokenizer = getattr(engine.processor, "tokenizer", None)
            if tokenizer is not None:
                self.w.panel.set_decoder(lambda i: tokenizer.decode([i]))
            self.w.engine_box.setCurrentText("remote")
            self.w.status_label.setText(f"Connected to {server.base_url} ({server.model}).")

        return self.w.worker.submit(self.connect(Job("connecting to the server", work), done))

    # export ------------------------------------------------------------------------------------------------
    def export_dialog(self, paths: list[str] | None = None) -> None:
        parsed = [
            (e.path, e.name)
            for e in self.w.entries.values()
            if e.parsed is not None and (paths is None or e.path in paths)
        ]
        answers = len(self.answer_log)
        dialog = ExportDialog(
            self.w,
            parsed,
            str(self.w.settings.value("export_dir", "")),
            str(self.w.settings.value("export_formats", "md,json")),
            answers,
            len(self.extractions),
        )

        def accepted() -> None:
            choice = dialog.choice()
            self.w.settings.setValue("export_dir", choice.folder)
            self.w.settings.setValue("export_formats", ",".join(choice.formats))
            from inference.exports import unique_stems

            stems = unique_stems(choice.documents)
            existing = existing_targets(choice, stems, len(self.extractions) if choice.extractions else 0)
            if existing:
                self.confirm_overwrite(existing, lambda: self.export_to(choice))
            else:
                self.export_to(choice)

        dialog.accepted.connect(accepted)
        dialog.open()
        self.w.dialog = dialog

    def confirm_overwrite(self, existing: list[Path], go: Any) -> QMessageBox:
        """Ask (without blocking the UI thread) before files are replaced; ``go()`` runs on Replace."""
        shown = "\n".join(p.name for p in existing[:8]) + ("\n\u2026" if len(existing) > 8 else "")
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Replace files?",
            f"{len(existing)} file(s) already in {existing[0].parent} would be replaced:\n{shown}",
            QMessageBox.StandardButton.Cancel,
            self.w,
        )
        replace = box.addButton("Replace", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered(button: Any) -> None:
            if button is replace:
                go()
            else:
                self.w.status_label.setText("Export cancelled: nothing was replaced.")

        box.buttonClicked.connect(answered)
        box.open()
        self.overwrite_box = box
        return box

    def export_to(self, choice: ExportChoice | str | Path, formats: str | None = None) -> Job | None:
        """Write the chosen documents, formats, answers and extractions on the worker; files get the umask's mode."""
        if not isinstance(choice, ExportChoice):  # a folder: every parsed document, the saved formats, everything
            formats = formats or str(self.w.settings.value("export_formats", "md,json,txt,html,csv"))
            choice = ExportChoice(
                str(choice), [p for p, e in self.w.entries.items() if e.parsed is not None], tuple(formats.split(","))
            )
        from inference.exports import unique_stems

        chosen = [p for p in choice.documents if p in self.w.entries and self.w.entries[p].parsed is not None]
        results = list(zip(unique_stems(chosen), [self.w.entries[p].parsed for p in chosen], strict=True))
        answers = [a for _, a in self.answer_log] if choice.answers else []
        extractions = list(self.extractions) if choice.extractions else []
        if not (results and choice.formats) and not answers and not extractions:
            self.w.status_label.setText("Nothing to export: parse a document, ask a question or extract first.")
            return None

        def work(job: Job) -> list[Path]:
            from inference.exports import (
                answer_markdown,
                extraction_json,
                inside,
                parse_formats,
                write_atomic,
                write_parse,
            )

            folder = Path(choice.folder)
            written: list[Path] = []
            for stem, parsed in results:
                if choice.formats:
                    written += write_parse(parsed, folder, stem, parse_formats(choice.formats))
            if answers:
                text = "\n---\n\n".join(answer_markdown(a) for a in answers)
                written.append(write_atomic(inside(folder, "answers.md"), text))
            for i, extraction in enumerate(extractions, 1):
                written.append(write_atomic(inside(folder, f"extraction-{i}.json"), extraction_json(extraction)))
            return list(dict.fromkeys(written))  # each file once: the count said is the files on disk

        def done(written: list[Path]) -> None:
            self.exported = written
            self.w.status_label.setText(f"Exported {len(written)} file(s) to {choice.folder}")

        return self.w.worker.submit(self.connect(Job("exporting", work), done))
