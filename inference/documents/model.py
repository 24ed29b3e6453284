"""One document model for every input kind: document -> pages -> blocks.

Serialisable to JSON and back without loss (``to_dict`` / ``from_dict``). Page images are rendered on demand by
the backend that opened the document (``Document.render``); they are not part of the serialised form.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, get_args

BlockKind = Literal[
    "text", "heading", "list", "table", "figure", "caption", "code", "formula", "header", "footer", "page_number"
]
BLOCK_KINDS: tuple[str, ...] = get_args(BlockKind)
_UNSAFE = re.compile(r"[\ud800-\udfff\x00-\x1f\x7f-\x9f\ufb50-\ufdff\ufe70-\ufefc]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
# Arabic presentation forms (lam-alef ligatures, contextual letter shapes): NFKC gives the letters they stand for,
# which is safe here, unlike NFKC of the whole text (it would also fold superscripts, fractions and full-width forms)
_PRESENTATION = re.compile(r"[\ufb50-\ufdff\ufe70-\ufefc]+")


def clean_text(text: str) -> str:
    """Text fit for the document model: encodable as UTF-8 and free of control characters.

    A surrogate pair is joined into its character and a lone surrogate (from a font's broken Unicode map) becomes
    U+FFFD, so that no character can fail a writer and the damage stays visible. Control characters (tabs and line
    breaks inside a form field's value) become spaces; Arabic presentation forms become the letters they show.
    """
    if not _UNSAFE.search(text):
        return text
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = _PRESENTATION.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    return _CONTROL.sub(" ", text)


LOW_CONFIDENCE = 0.75  # a page read with less (OCR's mean word confidence, 0-1) is flagged for a reader to check
UNSURE_WORD = 60.0  # an OCR word read with less (Tesseract's confidence, 0-100) is unsure: marked, worth a look


def unsure_words(blk: Block) -> list[int]:
    """The indices in ``blk.attrs["words"]`` (``[text, x0, y0, x1, y1, confidence]``, OCR's) of the words read with
    a confidence under ``UNSURE_WORD`` and not corrected since (``attrs["edited"]``); a word without a confidence
    (a table cell read on its own) is not counted unsure."""
    edited = blk.attrs.get("edited") or {}
    out = []
    for i, word in enumerate(blk.attrs.get("words") or ()):
        conf = word[5] if len(word) > 5 else None
        if conf is not None and conf < UNSURE_WORD and str(i) not in edited:
            out.append(i)
    return out


class Status(StrEnum):
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"


@dataclass
class Block:
    kind: BlockKind
    text: str
    bbox: tuple[float, float, float, float]
    order: int
    level: int = 0  # heading level, list depth
    rows: list[list[str]] | None = None  # table cells, row by row
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in BLOCK_KINDS:
            raise ValueError(f"unknown block kind {self.kind!r}")
        x0, y0, x1, y1 = self.bbox
        self.bbox = (float(x0), float(y0), float(x1), float(y1))


@dataclass
class PageError:
    page: int | None
    message: str
    error_type: str = "IngestError"


@dataclass
class Page:
    number: int  # physical, 1-based
    label: str
    width: float
    height: float
    text_layer: str = "none"  # none | visible | invisible | garbage
    scanned: bool = False
    blocks: list[Block] = field(default_factory=list)
    timestamp: float | None = None  # video frames: seconds from the start
    error: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    # how the page was read: {"method": "ocr", "engine": "tesseract", "lang": "eng", "model": ..., "script": ...};
    # empty where the backend that opened it set nothing (``reading`` then says it from ``text_layer``)
    provenance: dict[str, Any] = field(default_factory=dict)
    confidence: float | None = None  # 0-1: OCR's mean word confidence (by characters); None: not measured

    @property
    def reading(self) -> dict[str, Any]:
        """How the page was read: its provenance, or what its text layer says (a born-digital page's text)."""
        if self.provenance:
            return dict(self.provenance)
        if self.timestamp is not None:
            return {"method": "video frame"}
        if self.blocks and self.text_layer == "visible":
            return {"method": "text layer"}
        return {"method": "none"} if not self.blocks else {"method": "document"}

    @property
    def low_confidence(self) -> bool:
        """Whether the page was read with a confidence under ``LOW_CONFIDENCE`` (only OCR measures one)."""
        return self.confidence is not None and self.confidence < LOW_CONFIDENCE

    @property
    def ocr_words(self) -> tuple[int, int]:
        """How many of the page's OCR words (blocks' ``attrs["words"]``) are unsure (:func:`unsure_words`), of how
        many; (0, 0) for a page not read by OCR."""
        unsure = total = 0
        for blk in self.blocks:
            unsure += len(unsure_words(blk))
            total += len(blk.attrs.get("words") or ())
        return unsure, total

    def count_unsure(self) -> int:
        """How many of the page's OCR words are unsure, recorded in ``attrs["unsure_words"]`` (for the JSON and the
        batch summary; no key where none is)."""
        unsure = self.ocr_words[0]
        if unsure:
            self.attrs["unsure_words"] = unsure
        else:
            self.attrs.pop("unsure_words", None)
        return unsure

    def note(self, text: str) -> None:
        """A note for the reader: in the page's JSON (``attrs.notes``) and as a comment in its Markdown."""
        self.attrs.setdefault("notes", []).append(text)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Page:
        data = dict(data)
        data["blocks"] = [Block(**{**b, "bbox": tuple(b["bbox"])}) for b in data["blocks"]]
        return cls(**data)

    @property
    def has_text_layer(self) -> bool:
        return self.text_layer == "visible"

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in sorted(self.blocks, key=lambda b: b.order) if b.text)


@dataclass
class Document:
    source: str
    sha256: str
    kind: str
    pages: list[Page] = field(default_factory=list)
    errors: list[PageError] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    renderer: Callable[[int, float], Any] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return Path(self.source).name

    @property
    def status(self) -> Status:
        if not self.pages or all(p.error for p in self.pages):
            return Status.FAILED if self.errors or not self.pages else Status.COMPLETE
        return Status.PARTIAL if self.errors else Status.COMPLETE

    def add_error(self, page: int | None, message: str, error_type: str = "IngestError") -> None:
        self.errors.append(PageError(page=page, message=message, error_type=error_type))
        if page is not None and 1 <= page <= len(self.pages):
            self.pages[page - 1].error = message

    def render(self, number: int, dpi: float = 144) -> Any:
        """The page as a PIL image (rendered now, not stored)."""
        if self.renderer is None:
            raise RuntimeError(f"{self.source}: this document has no page renderer (was it loaded from JSON?)")
        return self.renderer(number, dpi)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("renderer")
        out["status"] = self.status.value
        for page, data in zip(self.pages, out["pages"], strict=True):
            data["provenance"] = page.reading
        return out

    @property
    def low_confidence_pages(self) -> list[int]:
        """The pages read with low confidence (``Page.low_confidence``), for a summary to list."""
        return [p.number for p in self.pages if p.low_confidence]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        data = dict(data)
        data.pop("status", None)
        pages = [Page.from_dict(p) for p in data.pop("pages")]
        errors = [PageError(**e) for e in data.pop("errors")]
        return cls(pages=pages, errors=errors, **data)


def require_file(path: Path) -> None:
    """Raise a clear ``IngestError`` for a missing or empty file, before any backend touches it."""
    from inference.errors import IngestError

    if not path.is_file():
        raise IngestError("file not found", path=path)
    if path.stat().st_size == 0:
        raise IngestError("the file is empty (0 bytes)", path=path)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            digest.update(data)
    return digest.hexdigest()
