"""Plain text and Markdown files: one page, paragraphs as blocks, Markdown headings and lists kept."""

from __future__ import annotations

import re
from pathlib import Path

from inference.documents.model import Block, Document, Page, file_sha256
from inference.errors import IngestError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def wide_encoding(raw: bytes) -> str | None:
    """UTF-16/32 without a byte-order mark, told by where the zero bytes fall (text that is mostly ASCII or Latin
    has a zero in one of every two, or three of every four, bytes; binary files have no such pattern)."""
    sample = raw[: 4096 - 4096 % 4]
    if len(sample) < 4:
        return None
    zeros = [sum(1 for b in sample[i::4] if b == 0) / len(sample[i::4]) for i in range(4)]
    if min(zeros[1:]) > 0.9 and zeros[0] < 0.5:
        return "utf-32-le"
    if min(zeros[:3]) > 0.9 and zeros[3] < 0.5:
        return "utf-32-be"
    even = (zeros[0] + zeros[2]) / 2
    odd = (zeros[1] + zeros[3]) / 2
    if odd > 0.6 and even < 0.1:
        return "utf-16-le"
    if even > 0.6 and odd < 0.1:
        return "utf-16-be"
    return None


def decode_text(raw: bytes) -> tuple[str, str]:
    """The text of a file and the encoding it was read in: a byte-order mark, UTF-16/32 by the zero-byte pattern,
    UTF-8, then cp1252 and Latin-1 (which decodes anything)."""
    candidates = [enc for bom, enc in BOMS if raw.startswith(bom)][:1]
    if not candidates and (wide := wide_encoding(raw)):
        candidates = [wide]
    for encoding in (*candidates, "utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"  # not reached: Latin-1 decodes every byte


def open_text(path: str | Path) -> Document:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read the file ({exc.strerror})", path=path) from exc
    text, encoding = decode_text(raw)
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
