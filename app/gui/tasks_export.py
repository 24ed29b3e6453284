"""Export: the chosen documents' parses in the chosen formats, the answers and the extractions, written on the
worker after asking before any file is replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMessageBox

from app.gui.export_dialog import ExportChoice, ExportDialog, existing_targets
from app.gui.views import ask_first
from app.gui.worker import Job


class ExportTasks:
    """Export, a part of ``controller.TaskController``: it uses the controller's ``w`` (the window), ``connect``,
    ``answer_log``, ``extractions``, ``exported`` and ``overwrite_box``."""

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
        box = ask_first(
            self.w,
            "Replace files?",
            f"{len(existing)} file(s) already in {existing[0].parent} would be replaced:\n{shown}",
            "Replace",
            QMessageBox.ButtonRole.AcceptRole,
            go,
            lambda: self.w.status_label.setText("Export cancelled: nothing was replaced."),
        )
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
