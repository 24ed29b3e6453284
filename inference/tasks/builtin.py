"""The builtin engine: no model weights. Text layer + layout analysis, Tesseract OCR, BM25 retrieval, key-value extract.

Its ``ask`` answers with retrieved evidence (passages and their pages), never with generated text, and its
``extract`` is a best effort from key-value lines and table rows; both say so in their result's ``kind``.
"""

from __future__ import annotations

import copy
import difflib
import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from inference.documents.model import Document, Page
from inference.errors import CancelledError
from inference.tasks.base import Answer, Citation, Extraction, ParseOptions, ParseResult, TaskContext
from inference.tasks.layout import FURNITURE, analyse
from inference.tasks.markdown import page_markdown
from inference.tasks.quotes import Quote, best_quote, block_units, stem_words

log = logging.getLogger(__name__)
PASSAGE_WORDS = 120
OCR_PAGE_BYTES = 600 * 1024 * 1024


def needs_ocr(doc: Document, page: Page) -> bool:
    if page.error:
        return False
    if doc.kind in ("image", "video"):
        return True
    return doc.kind == "pdf" and not page.has_text_layer


OCR_REASONS = {
    "garbage": "the text layer does not read as text (glyph codes or junk): read by OCR instead",
    "invisible": "the text layer is invisible (a scan's OCR layer): the scan read by OCR instead",
}


# two letters in a row (OCR of pen strokes gives lone letters and dashes), or one ideograph, kana or hangul syllable
# (a word of its own: CJK text has no spaces, and some layers space every character)
WORD = re.compile(r"[^\W\d_]{2,}|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def mark_unreadable(doc: Document, page: Page) -> None:
    """A page with no readable text says so (``attrs.readable`` false and a note), never comes out silently empty.
    Text read as text (an office file, a web page, a CSV of numbers) is readable whatever it holds; pages read from
    a PDF or by OCR need a word."""
    body = [b.text for b in page.blocks if b.kind not in FURNITURE]
    if page.error or any(WORD.search(t) or (doc.kind == "text" and t.strip()) for t in body):
        return
    page.attrs["readable"] = False
    reading = page.provenance
    if reading.get("method") == "not read" and reading.get("script") not in (None, "unknown"):
        return  # its note already names the script that was not read, and why
    if page.attrs.get("ocr"):
        why = "OCR found no printed text (handwriting and text in pictures are not read)"
    elif needs_ocr(doc, page):
        why = "the page has no usable text layer and OCR was off"
    elif any(WORD.search(b.text) for b in page.blocks):
        why = "its only text is a running header, footer or page number (kept with --keep-furniture)"
    else:
        why = "the page has no text"
    page.note(f"no readable text: {why}")


def ocr_jobs(requested: int | None, pages: int) -> int:
    """Pages read at once: as asked (default: the core count), never more than the pages, and bounded by free
    memory (a page at OCR resolution with its cleaned copies takes up to about ``OCR_PAGE_BYTES``)."""
    from inference.weights.devices import host_available_bytes

    jobs = requested or os.cpu_count() or 1
    if (free := host_available_bytes()) is not None:
        jobs = min(jobs, max(1, free // OCR_PAGE_BYTES))
    return max(1, min(jobs, pages))


def ocr_pages(doc: Document, pages: list[Page], options: ParseOptions, context: TaskContext) -> Iterator[Page]:
    """OCR ``pages`` in place, ``options.ocr_jobs`` at a time, yielding each page as it finishes (in any order).

    Rendering goes through one lock (PyMuPDF is not thread-safe); cleaning (OpenCV) and Tesseract release the
    GIL, so worker threads read pages in parallel on every core without copying the document into processes.
    A failed page keeps its error and never stops the others; cancelling stops before the next page starts.
    Each page read is kept in ``context.pages`` (when given) the moment it finishes, from its worker thread, so
    that pages finishing while the others are stopped are kept too.
    """
    from inference.ocr.reader import ocr_page

    lock = threading.Lock()

    def one(page: Page) -> Page:
        if context.cancel is not None and context.cancel.cancelled:
            raise CancelledError("parse cancelled")
        try:
            page.blocks = ocr_page(doc, page, lang=options.ocr_lang, render_lock=lock)
            page.attrs["ocr"] = "tesseract"
            if page.text_layer in OCR_REASONS:
                page.attrs["ocr_reason"] = OCR_REASONS[page.text_layer]
        except Exception as exc:
            log.debug("OCR failed", exc_info=True)
            with lock:
                doc.add_error(page.number, f"OCR failed: {exc}", "OcrError")
            return page
        if context.pages is not None:
            context.pages.keep_page("ocr", page)
        return page

    jobs = ocr_jobs(options.ocr_jobs, len(pages))
    if jobs <= 1:
        yield from map(one, pages)
        return
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="dwb-ocr") as pool:
        futures = [pool.submit(one, page) for page in pages]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


class BuiltinEngine:
    name = "builtin"
    concurrency = 1  # a batch runs one document at a time; OCR spreads a document's pages over threads

    def page_identity(self) -> dict[str, Any]:
        return {}

    def parse(
        self, doc: Document, options: ParseOptions | None = None, context: TaskContext | None = None
    ) -> ParseResult:
        from inference.ocr.tesseract import can_read_script

        context = context or TaskContext()
        options = options or ParseOptions()
        doc = copy.copy(doc)  # the caller's document keeps its blocks; pages are replaced below
        doc.pages = [copy.deepcopy(p) for p in doc.pages]
        doc.errors = list(doc.errors)
        total = len(doc.pages)
        todo, kept = [], 0
        for index, page in enumerate(doc.pages):
            if options.ocr and needs_ocr(doc, page):
                layer = " ".join(b.text for b in page.blocks)
                if page.text_layer in OCR_REASONS and not can_read_script(layer, options.ocr_lang):
                    page.note("text layer kept: no OCR language installed reads its script (see --ocr-lang)")
                    continue
                if context.pages is not None and (read := context.pages.page("ocr", page.number)) is not None:
                    doc.pages[index], kept = read, kept + 1  # read by OCR in an earlier run
                    continue
                todo.append(page)
        done = total - len(todo)
        ahead = f"{kept} page(s) OCR'd in an earlier run, " if kept else ""
        context.report(done, total, f"{doc.name}: {ahead}{len(todo)} page(s) to OCR" if todo or kept else doc.name)
        for page in ocr_pages(doc, todo, options, context):
            done += 1
            context.report(done, total, f"{doc.name}: page {page.number} read")
        context.report(total, total, f"{doc.name}: layout")
        analyse(doc)
        for page in doc.pages:
            mark_unreadable(doc, page)
            page.count_unsure()
        pages = [page_markdown(p, furniture=options.furniture, marker=options.markers) for p in doc.pages]
        markdown = "\n\n".join(p for p in pages if p).strip() + "\n"
        return ParseResult(document=doc, markdown=markdown, pages=pages, engine=self.name)

    # ask: BM25 over passages -------------------------------------------------------------------------------------
    def ask(
        self,
        docs: Sequence[Document],
        question: str,
        context: TaskContext | None = None,
        conversation: Any = None,
        k: int = 5,
    ) -> Answer:
        """The passages BM25 finds for the question, quoted (no model, no conversation to keep)."""
        index = PassageIndex.build(docs)
        hits = answering_first(index.search(question, 2 * k), question)[:k]
        citations = [
            Citation(document=p.document, page=p.page, label=p.label, text=p.text, score=round(s, 3))
            for p, s, _ in hits
        ]
        if citations:
            lines = ["Retrieved evidence (builtin engine: no model, these passages are quoted, not an answer):"]
            for c, (_, _, q) in zip(citations, hits, strict=True):
                lines.append(f"- {c.where}: \u201c{q.text}\u201d")  # the document, not only the page
            text = "\n".join(lines)
        else:
            text = "No passage in the documents matches the question."
        return Answer(question=question, text=text, citations=citations, kind="retrieved", engine=self.name)

    # extract: key-value lines and table rows ---------------------------------------------------------------------
    def extract(
        self, docs: Sequence[Document], schema: dict[str, Any], context: TaskContext | None = None
    ) -> Extraction:
        from inference.tasks.schema import check_schema, coerce, validate

        check_schema(schema)
        pairs = list(_key_values(docs))
        value: dict[str, Any] = {}
        sources: dict[str, Citation] = {}
        for name, spec in (schema.get("properties") or {}).items():
            keys = [name, name.replace("_", " "), spec.get("title", ""), *spec.get("x-aliases", [])]
            best = _best_pair(pairs, [k for k in keys if k])
            if best is None:
                continue
            pair, _ = best
            try:
                value[name] = coerce(pair.value, spec)
            except ValueError:
                continue
            sources[f"/{name}"] = Citation(
                document=pair.document, page=pair.page, label=pair.label, text=f"{pair.key}: {pair.value}"
            )
        errors = validate(value, schema)
        return Extraction(
            value=value, sources=sources, valid=not errors, errors=errors, kind="best-effort", engine=self.name
        )


ANSWER_SCORE = 0.5  # a passage whose quote answers is cited before others that scored at most twice its score


def answering_first(hits: list[tuple[Passage, float]], question: str) -> list[tuple[Passage, float, Quote]]:
    """BM25's hits with their quotes, those whose quote holds the kind of value the question asks for (an amount,
    a date, a number beside a question term: ``quotes.best_quote``) moved ahead of the ones that do not, when
    their score is at least ``ANSWER_SCORE`` of the best: the invoice's total line before its "Total" column
    heading. Otherwise in BM25's order."""
    quoted = [(p, s, best_quote(p.text, question)) for p, s in hits]
    if not quoted:
        return quoted
    floor = ANSWER_SCORE * quoted[0][1]
    return sorted(quoted, key=lambda h: not (h[2].answers and h[1] >= floor))


@dataclass
class Passage:
    document: str
    page: int
    label: str
    text: str


class PassageIndex:
    """BM25 (bm25s) over passages of about ``PASSAGE_WORDS`` words that never cross a page."""

    def __init__(self, passages: list[Passage]) -> None:
        import bm25s

        self.passages = passages
        self.retriever = None
        if passages:
            tokens = bm25s.tokenize([p.text for p in passages], stopwords="en", stemmer=stem_words, show_progress=False)
            self.retriever = bm25s.BM25()
            self.retriever.index(tokens, show_progress=False)

    @classmethod
    def build(cls, docs: Sequence[Document]) -> PassageIndex:
        return cls([p for doc in docs for p in passages(doc)])

    def search(self, query: str, k: int = 5) -> list[tuple[Passage, float]]:
        import bm25s

        if self.retriever is None or not query.strip():
            return []
        words = bm25s.tokenize([query], stopwords="en", stemmer=stem_words, return_ids=False, show_progress=False)
        if not isinstance(words, list):  # return_ids=False gives the words, not a Tokenized of ids
            raise TypeError(f"bm25s.tokenize gave {type(words).__name__}, not the query's words")
        tokens = [[t for t in words[0] if t in self.retriever.vocab_dict]]  # words the passages never use: no help
        if not tokens[0]:
            return []
        docs, scores = self.retriever.retrieve(tokens, k=min(k, len(self.passages)), show_progress=False)
        return [(self.passages[int(i)], float(s)) for i, s in zip(docs[0], scores[0], strict=True) if s > 0]


def passages(doc: Document) -> list[Passage]:
    """Each page's text in passages of about ``PASSAGE_WORDS`` words, one unit a line (a sentence, a list item,
    a table row as ``cell | cell``), so that a quote can be cut from a passage at the units that match."""
    return [
        Passage(doc.source, page.number, page.label, "\n".join(units)) for page in doc.pages for units in _chunks(page)
    ]


def _chunks(page: Page) -> list[list[str]]:
    """The page's units in chunks of about ``PASSAGE_WORDS`` words, each after a heading starting with it."""
    out: list[list[str]] = []
    units: list[str] = []
    heading = ""
    for blk in sorted(page.blocks, key=lambda b: b.order):
        if blk.kind in FURNITURE or not blk.text.strip():
            continue
        if blk.kind == "heading":
            if _words(units) > 20:
                out.append(units)
                units = []
            heading = " ".join(blk.text.split())
            units.append(heading)
            continue
        for unit in block_units(blk):
            units.append(unit)
            if _words(units) >= PASSAGE_WORDS:
                out.append(units)
                units = [heading] if heading else []
    if _words(units) > len(heading.split()):
        out.append(units)
    return out


def _words(units: list[str]) -> int:
    return sum(len(u.split()) for u in units)


@dataclass
class KeyValue:
    key: str
    value: str
    document: str
    page: int
    label: str


KV_LINE = re.compile(r"^\s*([^:\n]{1,60}?)\s*[:：]\s*(\S.{0,200}?)\s*$")


def _key_values(docs: Sequence[Document]):
    for doc in docs:
        for page in doc.pages:
            for blk in sorted(page.blocks, key=lambda b: b.order):
                if blk.kind == "table" and blk.rows:
                    for row in blk.rows:
                        cells = [c for c in row if c.strip()]
                        if len(cells) >= 2:
                            yield KeyValue(cells[0], cells[1], doc.source, page.number, page.label)
                    if len(blk.rows) >= 2:  # header row -> first data row
                        for head, cell in zip(blk.rows[0], blk.rows[1], strict=False):
                            if head.strip() and cell.strip():
                                yield KeyValue(head, cell, doc.source, page.number, page.label)
                    continue
                for line in re.split(r"\n|(?<=[.;])\s+(?=[A-Z][^:]{0,40}:)", blk.text):
                    if m := KV_LINE.match(line):
                        yield KeyValue(m.group(1), m.group(2), doc.source, page.number, page.label)


def _best_pair(pairs: list[KeyValue], keys: list[str]) -> tuple[KeyValue, float] | None:
    best: tuple[KeyValue, float] | None = None
    wanted = [_norm_key(k) for k in keys]
    for pair in pairs:
        have = _norm_key(pair.key)
        score = max(difflib.SequenceMatcher(a=w, b=have).ratio() for w in wanted)
        if score >= 0.8 and (best is None or score > best[1]):
            best = (pair, score)
    return best


def _norm_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
