"""The Markdown of a document's pages read so far, kept on disk while a long document is read.

A run stopped part way (Ctrl-C, SIGTERM, a kill, a crash) leaves ``<stem>.md`` with the pages done, marked partial
in its first line, so that what was read is not lost with the run; the finished run writes the whole file over it.
The file is rewritten at most every ``every`` seconds, and never more often than ten times the last write took
(so that rewriting stays under a tenth of the reading time however long the document), and once more when the
run stops; a kill leaves what was written last.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

from inference.documents.model import Document, Page

PARTIAL_MARK = "<!-- partial:"


class PartialMarkdown:
    """Collects pages as they are read (``page``) and keeps ``path`` up to date with their Markdown."""

    def __init__(self, path: Path, source: str, every: float = 2.0) -> None:
        self.path, self.source, self.every = path, source, every
        self.pages: dict[int, Page] = {}
        self.total = 0
        self.written_at = time.monotonic()
        self.wait = every

    def page(self, page: Page, total: int) -> None:
        """One page read (the engine works on copies of the document's pages: this one stays as read)."""
        self.pages[page.number] = page
        self.total = total
        if time.monotonic() - self.written_at >= self.wait:
            self.write()

    def write(self, why: str = "the run has not finished") -> Path | None:
        """``path`` with the Markdown of the pages so far, its first line saying how many and why it is partial."""
        from inference.exports import write_atomic
        from inference.tasks.layout import analyse
        from inference.tasks.markdown import page_markdown

        if not self.pages:
            return None
        started = time.monotonic()
        pages = [copy.deepcopy(self.pages[n]) for n in sorted(self.pages)]
        analyse(Document(source=self.source, sha256="", kind="pdf", pages=pages))
        head = f"{PARTIAL_MARK} {len(pages)} of {self.total or '?'} pages read; {why} -->"
        body = "\n\n".join(md for md in (page_markdown(p) for p in pages) if md)
        path = write_atomic(self.path, f"{head}\n\n{body}\n")
        self.written_at = time.monotonic()
        self.wait = max(self.every, 10 * (self.written_at - started))
        return path
