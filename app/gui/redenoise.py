"""Re-denoise selection: select text in the raw Markdown of a model parse and denoise just that span again.

The page's transcription is pinned on the canvas around the span (``ModelEngine.redenoise_span``), so the text
around the selection stays token for token; the span is written afresh against the page's prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt

SELECTION_ACTION = "Re-denoise selection"


@dataclass
class Target:
    """The selection, located in one page's model transcription."""

    entry: Any
    index: int  # the page's index in the parsed document
    offset: int  # where the page's transcription starts in the Markdown
    text: str  # the page's transcription
    start: int  # the selection within ``text``
    end: int


def install(window: Any) -> None:
    """Add "Re-denoise selection" to the raw Markdown view's context menu (after the standard actions)."""
    raw = window.results.raw
    raw.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def menu(pos: Any) -> None:
        popup = raw.createStandardContextMenu()
        popup.addSeparator()
        action = popup.addAction(SELECTION_ACTION, lambda: redenoise_selection(window))
        action.setEnabled(target(window) is not None and not window.worker.busy)
        popup.popup(raw.viewport().mapToGlobal(pos))

    raw.customContextMenuRequested.connect(menu)


def _model_block(page: Any) -> Any:
    return next((b for b in page.blocks if b.attrs.get("source") == "model"), None)


def target(window: Any) -> Target | None:
    """The selection in the raw Markdown, if it lies inside one page's transcription by a loaded model."""
    engine = window.model_engine
    entry = window.entries.get(window.current) if window.current else None
    parsed = getattr(entry, "parsed", None)
    if engine is None or not hasattr(engine, "redenoise_span") or parsed is None or parsed.engine != "model":
        return None
    cursor = window.results.raw.textCursor()
    start, end = cursor.selectionStart(), cursor.selectionEnd()
    if start == end:
        return None
    markdown, pos = parsed.markdown, 0
    for index, page in enumerate(parsed.document.pages):
        block = _model_block(page)
        if block is None or not block.text:
            continue
        at = markdown.find(block.text, pos)
        if at < 0:
            continue
        pos = at + len(block.text)
        if at <= start and end <= pos:
            return Target(entry, index, at, block.text, start - at, end - at)
    return None


def redenoise_selection(window: Any) -> Any:
    """Run the re-denoising on the worker; the Markdown shows the page's new transcription."""
    from app.gui.worker import Job

    found = target(window)
    if found is None or window.worker.busy:
        window.status_label.setText("Select text inside one page of a model parse, with the model loaded.")
        return None
    engine, parsed = window.model_engine, found.entry.parsed
    page = parsed.document.pages[found.index]

    def work(job: Job) -> str:
        return engine.redenoise_span(
            parsed.document, page.number, found.text, found.start, found.end, window.tasks.context(job)
        )

    def done(new_text: str) -> None:
        block = _model_block(page)
        if block is None or block.text != found.text:  # the page changed meanwhile: keep what is there
            return
        block.text = new_text
        parsed.markdown = parsed.markdown[: found.offset] + new_text + parsed.markdown[found.offset + len(found.text) :]
        if found.index < len(parsed.pages):
            parsed.pages[found.index] = parsed.pages[found.index].replace(found.text, new_text, 1)
        if window.current is not None and window.entries.get(window.current) is found.entry:
            window.results.show_parse(parsed)
        window.status_label.setText(f"Re-denoised the selection on page {page.number}; the text around it is kept.")

    window.tasks.start_task(engine)
    job = Job("re-denoising", work)
    return window.worker.submit(window.tasks.connect(job, done))
