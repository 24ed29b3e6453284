"""Ask: a question about the documents in scope, one conversation per engine and scope (follow-ups go on from
it); the answer streams into the results as the canvases commit and stays in the thread.

The builtin engine answers from its own parse of each document, never from a model's transcription shown beside
it; what it parses to answer is kept as a run (``ParseTasks.show_parsed``)."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt

from app.gui.messages import NO_DOCUMENT
from app.gui.tasks_parse import ParseTasks
from app.gui.views import DocEntry, names_of
from app.gui.worker import NOT_STARTED, Job


def own_parse(entry: DocEntry, engine: str) -> Any:
    """The latest parse of ``entry`` made by ``engine`` (a ParseResult), or None: the builtin Ask quotes the
    document's own text, never a model's transcription shown beside it."""
    from app.gui.runs import runs_of

    if entry.parsed is not None and getattr(entry.parsed, "engine", None) == engine:
        return entry.parsed
    return next((r.parsed for r in reversed(runs_of(entry)) if r.engine == engine), None)


class AskTasks(ParseTasks):
    """Ask, a part of ``controller.TaskController``: besides what Parse uses, the controller's ``conversations``,
    ``answer_log``, ``scope_key`` and ``recount``."""

    def ask(self, question: str) -> Job | None:
        if not question.strip():
            self.w.show_error("Type a question first.") if self.w.entries else self.w.show_error(NO_DOCUMENT)
            self.w.question.setFocus(Qt.FocusReason.ShortcutFocusReason)  # where to type it
            return None
        ready = self.ready()
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
                self.show_parsed(parsed, announce=False)
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
        self.keep_cancelled(job, question.strip(), key, entries)
        return self.w.worker.submit(self.connect(job, done, stream=("answer", question)))

    def keep_cancelled(self, job: Job, question: str, key: tuple, entries: list[DocEntry]) -> None:
        """A question cancelled while it ran stays in the Answer tab, marked "Cancelled", with the text it had
        streamed so far. It is no answer: not in ``answer_log``, so neither exported nor saved with the session.
        One taken off the queue before it started was never asked: the status bar says so."""
        from inference.runtime.events import CanvasCommitted
        from inference.tasks.base import Answer

        streamed: list[str] = []
        job.event.connect(lambda event: streamed.append(event.texts[0]) if isinstance(event, CanvasCommitted) else None)

        def cancelled(why: str) -> None:
            if why == NOT_STARTED:
                return
            partial = "".join(streamed).strip()
            text = f"{partial}\n\nCancelled: the answer stops here." if partial else "Cancelled before an answer."
            answer = Answer(question, text, [], "generated", key[0], cut_off="cancelled")
            self.w.results.show_answer(answer, about=[e.name for e in entries])

        job.cancelled.connect(cancelled)

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
