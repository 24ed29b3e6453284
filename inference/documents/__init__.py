"""Documents in: one backend per input kind, all producing ``inference.documents.model.Document``.

``ingest(paths)`` takes files and folders (recursively), picks the backend by content and suffix, and returns one
``IngestResult`` per file: a document (possibly partial) or the error that stopped it. Nothing raised by one file
stops the others.

Backends: ``pdf``; ``images`` (including HEIC and AVIF); ``video``; ``office`` (Word, with ``slides`` for PowerPoint
and ``sheets`` for Excel); ``web`` (HTML, EPUB); ``delimited`` (CSV, TSV); ``text`` (plain text, Markdown, source
code).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.documents.delimited import CSV_SUFFIXES, open_csv
from inference.documents.images import IMAGE_SUFFIXES, is_heif, open_image
from inference.documents.model import Block, Document, Page, PageError, Status
from inference.documents.office import LEGACY_SUFFIXES, OFFICE_SUFFIXES, OLE_MAGIC, ZIP_MAGIC, open_office, zip_kind
from inference.documents.pdf import open_pdf
from inference.documents.text import CODE_SUFFIXES, TEXT_SUFFIXES, open_text
from inference.documents.web import HTML_SUFFIXES, open_epub, open_html, sniff_html
from inference.errors import IngestError, WorkbenchError

if TYPE_CHECKING:
    from inference.batch.kept import PageStore

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
EPUB_SUFFIXES = (".epub",)
# what the window's Open dialog lists (every other file is still tried: by content, then as text)
OPEN_SUFFIXES = (
    ".pdf", *IMAGE_SUFFIXES, *VIDEO_SUFFIXES, *OFFICE_SUFFIXES, *HTML_SUFFIXES, *EPUB_SUFFIXES, *CSV_SUFFIXES,
    *TEXT_SUFFIXES,
)  # fmt: skip

__all__ = [
    "OPEN_SUFFIXES",
    "Block",
    "Document",
    "IngestResult",
    "Page",
    "PageError",
    "Status",
    "expand",
    "ingest",
    "open_document",
]


@dataclass
class IngestResult:
    path: str
    document: Document | None
    error: str | None = None

    @property
    def status(self) -> Status:
        return self.document.status if self.document is not None else Status.FAILED


def expand(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given, folders recursively in sorted order; hidden files and folders skipped.

    A folder that cannot be listed is yielded itself, so that opening it gives its error: it is never skipped.
    """
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        found: list[Path] = []
        for folder, dirs, files in os.walk(path, onerror=lambda exc, out=found: out.append(Path(exc.filename))):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(here / f for f in files if not f.startswith(".") and (here / f).is_file())
        yield from sorted(found)


# content signatures, checked before the suffix: a PNG named .pdf is a PNG
MAGIC = (
    (b"%PDF", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF87a", "image"),
    (b"GIF89a", "image"),
    (b"II*\x00", "image"),
    (b"MM\x00*", "image"),
)


def sniff(path: Path) -> str:
    """The backend for ``path``: by its content where that has a signature, else by its suffix."""
    suffix = path.suffix.lower()
    if path.is_dir():
        try:
            os.listdir(path)
        except OSError as exc:
            raise IngestError(f"cannot read the folder ({exc.strerror})", path=path) from exc
        raise IngestError("a folder, not a file", path=path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except OSError as exc:
        raise IngestError(f"cannot read the file ({exc.strerror})", path=path) from exc
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or (head[:2] == b"BM" and suffix in (*IMAGE_SUFFIXES, ".pdf")):
        return "image"
    if head[4:8] == b"ftyp":
        return "image" if is_heif(head) else "video"
    if head.startswith(ZIP_MAGIC) and (kind := zip_kind(path)):
        return kind
    if head.startswith(OLE_MAGIC):
        return "ole"  # an encrypted Office file, or a legacy binary one (refused with what to do)
    if b"%PDF" in head or suffix == ".pdf":
        return "pdf"
    by_suffix = {**dict.fromkeys(IMAGE_SUFFIXES, "image"), **dict.fromkeys(VIDEO_SUFFIXES, "video"), **OFFICE_SUFFIXES}
    by_suffix |= {**dict.fromkeys(HTML_SUFFIXES, "html"), **dict.fromkeys(EPUB_SUFFIXES, "epub")}
    by_suffix |= dict.fromkeys(CSV_SUFFIXES, "csv")
    if kind := by_suffix.get(suffix):
        return kind
    if suffix in LEGACY_SUFFIXES:
        return "ole"
    if suffix not in TEXT_SUFFIXES and sniff_html(head):
        return "html"
    if suffix in TEXT_SUFFIXES or suffix in CODE_SUFFIXES:
        return "text"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text"  # README.rst, .json, ...: read as plain text
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 4:  # only a character cut by the 1 KB window
                return "text"
    raise IngestError(f"unsupported file type {suffix or '(no suffix)'!r}", path=path)


def open_document(
    path: str | Path,
    password: Callable[[str], str | None] | None = None,
    pages: PageStore | None = None,
    cancel: Any = None,
    on_page: Callable[[Page, int, bool], None] | None = None,
) -> Document:
    """The document at ``path``; ``pages``, ``cancel`` and ``on_page``: see ``open_pdf`` (other kinds are quick
    to open)."""
    path = Path(path)
    if not path.exists():
        raise IngestError("file not found", path=path)
    kind = sniff(path)
    if kind == "pdf":
        return open_pdf(path, password=password, pages=pages, cancel=cancel, on_page=on_page)
    if kind == "image":
        return open_image(path)
    if kind == "video":
        from inference.documents.video import open_video

        return open_video(path)
    if kind in ("docx", "pptx", "xlsx", "ole"):
        return open_office(path, None if kind == "ole" else kind, password=password)
    if kind == "html":
        return open_html(path)
    if kind == "epub":
        return open_epub(path)
    if kind == "csv":
        return open_csv(path)
    return open_text(path)


def ingest(paths: Iterable[str | Path], password: Callable[[str], str | None] | None = None) -> list[IngestResult]:
    results = []
    for path in expand(paths):
        try:
            results.append(IngestResult(str(path), open_document(path, password=password)))
        except WorkbenchError as exc:
            results.append(IngestResult(str(path), None, exc.user_message()))
        except Exception as exc:  # noqa: BLE001 - an unexpected failure of one file never stops the batch
            results.append(IngestResult(str(path), None, f"{path}: could not be read ({type(exc).__name__}: {exc})"))
    return results
