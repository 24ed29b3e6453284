"""Extract: the fields of a JSON Schema, chosen in the schema editor, from the documents in scope; a templated
extraction's values denoise in place in the Extract table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.gui.schema_editor import SchemaEditor
from app.gui.views import names_of
from app.gui.worker import Job


class ExtractTasks:
    """Extract, a part of ``controller.TaskController``: it uses the controller's ``w`` (the window), ``ready``,
    ``context``, ``connect``, ``start_task``, ``extractions`` and ``extraction_scope``."""

    def extract_dialog(self) -> SchemaEditor | None:
        """The schema editor: the fields to extract (the schema used last, else one empty field); Extract runs it."""
        if self.ready() is None:
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
        ready = self.ready()
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
