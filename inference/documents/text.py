"""Plain text and Markdown files: one page, paragraphs as blocks, Markdown headings and lists kept."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import IngestError
from .model import Block, Document, Page, file_sha256

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def open_text(path: str | Path) -> Document:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read the file ({exc.strerror})", path=path) from exc
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if "\x00" in text:
        raise IngestError("this looks like a binary file, not text", path=path)
    blocks = []
    for _i, para in enumerate(p.strip() for p in re.split(r"\n\s*\n", text)):
        if not para:
            continue
        kind, level, body = "text", 0, para
        if m := HEADING.match(para.splitlines()[0]):
            kind, level, body = "heading", len(m.group(1)), m.group(2)
        elif LIST_ITEM.match(para):
            kind = "list"
        blocks.append(Block(kind=kind, text=body, bbox=(0, 0, 0, 0), order=len(blocks), level=level))
    page = Page(number=1, label="1", width=0, height=0, text_layer="visible", blocks=blocks)
    return Document(
        source=str(path),
        sha256=file_sha256(path),
        kind="text",
        pages=[page],
        metadata={"encoding": encoding, "markdown": path.suffix.lower() in (".md", ".markdown")},
    )
