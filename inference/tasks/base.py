"""What the document tasks return, and the interface both engines (builtin, model) implement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from inference.documents.model import Document

Progress = Callable[[int, int, str], None]  # (done, total, what)


@dataclass(frozen=True)
class ParseOptions:
    furniture: bool = False  # keep running headers, footers and page numbers in the Markdown
    markers: bool = True  # page markers (HTML comments) between pages
    ocr: bool = True  # OCR scanned pages (builtin engine)
    batch_size: int | None = None  # pages per engine run (model engine); None: chosen from free memory
    ocr_lang: str | None = None  # Tesseract languages, "eng+deu+jpn"; None: each page's script picks one installed
    ocr_jobs: int | None = None  # pages OCR'd at once (builtin engine); None: the core count, bounded by free memory


@dataclass
class ParseResult:
    document: Document  # analysed: reading order set, furniture marked, OCR blocks added
    markdown: str
    pages: list[str]  # Markdown per page, same order as document.pages
    engine: str

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "document": self.document.to_dict()}


@dataclass
class Citation:
    document: str  # source path
    page: int  # physical, 1-based
    label: str
    text: str  # the passage it rests on
    score: float = 0.0

    @property
    def where(self) -> str:
        """The document and the page as printed on it (the PDF's page label, "iv" or "30"), the way a reader
        finds it: ``report.pdf, p. 30``; the file's own page number follows when the label is not it."""
        name = Path(self.document).name
        label = self.label.strip() if self.label else ""
        if not label or label == str(self.page):
            return f"{name}, p. {self.page}"
        return f"{name}, p. {label} (page {self.page} of the file)"


@dataclass(frozen=True)
class LeftOut:
    """A page, or a passage of one, that never reached the model, and why."""

    document: str
    page: int
    tokens: int  # what it would have cost
    reason: str
    span: tuple[int, int] | None = None  # a passage: its characters in the page's text

    def describe(self) -> str:
        where = f"{self.document} p. {self.page}"
        if self.span:
            where += f" characters {self.span[0]}-{self.span[1]}"
        return f"{where} ({self.tokens:,} tokens): {self.reason}"


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation]
    kind: Literal["retrieved", "generated"]  # retrieved: evidence, no generation
    engine: str
    left_out: list[LeftOut] = field(default_factory=list)  # never read by the model: the answer may miss them
    cut_off: str | None = None  # the finish_reason(s) of an answer that did not end by itself (length, abort, ...)

    @property
    def pages(self) -> list[int]:
        return [c.page for c in self.citations]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Extraction:
    value: dict[str, Any]
    sources: dict[str, Citation]  # JSON pointer of a value -> where it came from
    valid: bool
    errors: list[str]
    kind: Literal["best-effort", "generated", "pinned"]  # best-effort: builtin, from key-value pairs and tables;
    # pinned: the schema's scaffold on the canvas
    engine: str
    attempts: int = 1
    confidence: dict[str, float] = field(default_factory=dict)  # pinned: field -> 0..1
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)  # pinned: field -> page, quote, grounded, box

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskContext:
    progress: Progress | None = None
    on_event: Callable[[Any], None] | None = None  # engine events (model engine: denoising steps)
    cancel: Any = None  # an inference.runtime.engine.CancelToken
    pages: Any = None  # an inference.batch.kept.PageStore: finished pages kept as they finish, reused on a rerun
    extra: dict[str, Any] = field(default_factory=dict)

    def report(self, done: int, total: int, what: str) -> None:
        if self.progress:
            self.progress(done, total, what)


class TaskEngine(Protocol):
    """What every engine (builtin, model, remote) offers the front ends and the batch runner."""

    name: str
    concurrency: int  # documents a batch may run at once on this engine (a remote server takes several)

    def page_identity(self) -> dict[str, Any]:
        """What makes this engine's pages what they are beside the parse options (a model and its parameters):
        pages kept by a run with another identity are parsed again."""
        ...

    def parse(
        self, doc: Document, options: ParseOptions | None = None, context: TaskContext | None = None
    ) -> ParseResult: ...

    def ask(
        self,
        docs: Sequence[Document],
        question: str,
        context: TaskContext | None = None,
        conversation: Any = None,  # inference.tasks.conversation.Conversation: follow-ups keep its KV cache
    ) -> Answer: ...

    def extract(
        self, docs: Sequence[Document], schema: dict[str, Any], context: TaskContext | None = None
    ) -> Extraction: ...
