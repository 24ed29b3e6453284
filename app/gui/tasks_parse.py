"""Parse: the documents in scope (or those named) with the engine chosen, page by page on the worker; each parse
is kept as a run of its document and shown."""

from __future__ import annotations

import time
from typing import Any

from app.gui.views import names_of
from app.gui.worker import Job


class ParseTasks:
    """Parse, a part of ``controller.TaskController``: it uses the controller's ``w`` (the window), ``ready``,
    ``chosen_engine``, ``context``, ``connect`` and ``start_task``."""

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
        ready = self.ready() if paths is None else (self.chosen_engine(), chosen)
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
        job = self.connect(Job("parsing", work, key=key, detail=detail), self.show_parsed, stream=("markdown", ""))
        job.cancelled.connect(restore)
        job.failed.connect(restore)
        return self.w.worker.submit(job)

    def show_parsed(self, results: list[tuple[Any, ...]], announce: bool = True) -> None:
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
