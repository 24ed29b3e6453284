"""Batch parse: many inputs to an output folder, resumable.

Each document's files are written (atomically) as soon as it finishes, then its entry in the folder's manifest
(``.dwb-manifest.json``, also written atomically) records the input's content hash, the options and the files. A
rerun skips a document whose entry matches and whose files are all there (unless ``force``), so a batch killed at
any point keeps what finished and completes the rest. Bad files never stop the batch: they are listed in the result
and recorded in the manifest as failed (a rerun tries them again). A partial document (a page failed, was cut off,
or the server went away) is not finished either: a rerun parses it again. ``doc_timeout`` bounds each document: past
it, its run is cancelled and the document fails with the reason (the batch goes on). ``batch.cluster`` runs the
same steps on Ray.

Pages are kept as they finish too (``inference.batch.kept``), in ``.dwb-pages/<sub-folder>/<stem>/``: a
document stopped part way (killed, cancelled, past ``doc_timeout``) keeps its finished pages, and a rerun with the
same input, engine and options parses only the pages missing, then writes the document's files as one uninterrupted
run would. The folder goes once its document is done; ``force`` and changed options discard it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inference.batch.kept import PageStore
from inference.batch.partial import PartialMarkdown
from inference.documents import Page, expand, open_document, sniff
from inference.documents.model import file_sha256
from inference.errors import CancelledError, WorkbenchError
from inference.exports import inside, parse_formats, write_parse
from inference.files import write_atomic
from inference.runtime.cancel import CancelToken
from inference.tasks.base import ParseOptions, TaskContext, TaskEngine

log = logging.getLogger(__name__)
MANIFEST = ".dwb-manifest.json"
PAGES = ".dwb-pages"  # kept pages, one folder per unfinished document


@dataclass
class Item:
    path: Path
    subdir: str  # the sub-folder of a folder input, kept in the output
    stem: str


ItemStatus = Literal["done", "partial", "skipped", "failed"]


@dataclass
class ItemResult:
    path: str
    status: ItemStatus
    outputs: list[str] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # every page error (message has the first three)
    kept: int = 0  # pages taken whole from an earlier run's kept pages
    pages: str = ""  # the folder of its kept pages, while the document is not done
    low_confidence: list[int] = field(default_factory=list)  # pages read with low confidence (Page.low_confidence)
    unsure_words: dict[int, int] = field(default_factory=dict)  # page -> its unsure OCR words (marked in Markdown)


@dataclass
class BatchResult:
    items: list[ItemResult] = field(default_factory=list)

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if i.status == "failed"]

    @property
    def partial(self) -> list[ItemResult]:
        return [i for i in self.items if i.status == "partial"]

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)


def plan(inputs: Iterable[str | Path]) -> list[Item]:
    """Every file to parse, with its output sub-folder and a stem unique within that sub-folder."""
    items: list[Item] = []
    for raw in inputs:
        root = Path(raw)
        for path in expand([root]):
            subdir = path.parent.relative_to(root).as_posix() if root.is_dir() and path != root else ""
            items.append(Item(path, "" if subdir == "." else subdir, path.stem))
    seen: dict[tuple[str, str], int] = {}
    for item in items:
        key = (item.subdir, item.stem.lower())
        seen[key] = seen.get(key, 0) + 1
    for item in items:  # a.pdf and a.png in one folder: a_pdf, a_png
        if seen[(item.subdir, item.stem.lower())] > 1:
            item.stem = f"{item.stem}_{item.path.suffix.lstrip('.').lower()}"
    return items


class Manifest:
    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / MANIFEST
        try:
            self.entries: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))["documents"]
        except (OSError, ValueError, KeyError, TypeError):
            self.entries = {}

    def finished(self, key: str, sha256: str, options: dict[str, Any], out_dir: Path) -> bool:
        entry = self.entries.get(key)
        return (
            entry is not None
            and entry.get("status") == "done"
            and entry.get("sha256") == sha256
            and entry.get("options") == options
            and all((out_dir / f).is_file() for f in entry.get("outputs", []))
        )

    def record(self, key: str, entry: dict[str, Any]) -> None:
        """Add or replace one document's entry; the file lists documents by key, whatever order they finished in."""
        self.entries[key] = entry
        documents = dict(sorted(self.entries.items()))
        write_atomic(self.path, json.dumps({"version": 1, "documents": documents}, ensure_ascii=False, indent=1))

    def record_result(self, key: str, sha256: str, options: dict[str, Any], result: ItemResult) -> None:
        """A parsed document's files and page errors, or why it failed (then no files: a rerun tries it again)."""
        errors = result.errors if result.status != "failed" else [result.message]
        entry = {"sha256": sha256, "options": options, "outputs": result.outputs, "status": result.status}
        self.record(key, {**entry, "errors": errors, **({"pages": result.pages} if result.pages else {})})


def run_parse(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    engine: TaskEngine,
    formats: Iterable[str] = ("md",),
    per_page: bool = False,
    force: bool = False,
    options: ParseOptions | None = None,
    on_item: Callable[[int, int, Item, ItemResult | None], None] | None = None,
    context: TaskContext | None = None,
    password: Callable[[str], str | None] | None = None,
    doc_timeout: float | None = None,
) -> BatchResult:
    """Parse every input; ``on_item(index, total, item, result)`` is called before (result None) and after each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    formats = parse_formats(list(formats))
    options = options or ParseOptions()
    settings = run_settings(engine.name, formats, per_page, options)
    manifest = Manifest(out)
    context = context or TaskContext()
    items = plan(inputs)
    lock = threading.Lock()  # the manifest and on_item, when documents run in parallel

    def one(index: int, item: Item) -> ItemResult:
        if on_item:
            with lock:
                on_item(index, len(items), item, None)
        key = item_key(item)
        started = time.perf_counter()
        sha, res = check_item(item, key, manifest, settings, out, force)
        if res is None:
            store = PageStore.open(pages_folder(out, item), page_settings(sha, engine, options), fresh=force)
            job = ParseJob(item, out, engine, formats, per_page, options)
            res = _parse_within(doc_timeout, job, dataclasses.replace(context, pages=store), password)
        if res.status != "skipped":
            with lock:
                manifest.record_result(key, sha, settings, res)
        res.seconds = time.perf_counter() - started
        if on_item:
            with lock:
                on_item(index, len(items), item, res)
        return res

    workers = max(1, engine.concurrency)  # a remote engine: documents in parallel
    if workers == 1 or len(items) < 2:
        return BatchResult([one(i, item) for i, item in enumerate(items)])
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="dwb-parse") as pool:
        futures = [pool.submit(one, i, item) for i, item in enumerate(items)]
        try:
            return BatchResult([f.result() for f in futures])
        except BaseException:
            for f in futures:
                f.cancel()
            raise


class _Deadline(CancelToken):
    """A document's cancel flag: the batch's, or its own time running out."""

    def __init__(self, parent: Any, seconds: float) -> None:
        super().__init__()
        self.parent, self.deadline = parent, time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    @property
    def cancelled(self) -> bool:
        return super().cancelled or self.expired or bool(self.parent is not None and self.parent.cancelled)


def _parse_within(doc_timeout: float | None, job: ParseJob, context: TaskContext, password: Any) -> ItemResult:
    """``parse_item(job, context, password)`` under the document's time limit, if any: past it the document
    fails, naming the limit."""
    item = job.item
    if not doc_timeout:
        return parse_item(job, context, password)
    token = _Deadline(context.cancel, doc_timeout)
    try:
        return parse_item(job, dataclasses.replace(context, cancel=token), password)
    except CancelledError:
        if not token.expired or (context.cancel is not None and context.cancel.cancelled):
            raise
        message = f"{item.path}: not parsed within {doc_timeout:g} s (--doc-timeout)"
        store = context.pages
        if store is not None and store.pages_on_disk:
            message += f"; its finished pages are kept for a rerun ({store.pages_on_disk} in {store.folder.name}/)"
        return ItemResult(str(item.path), "failed", message=message, pages=_kept_folder(store, item, job.out))


def run_settings(engine_name: str, formats: tuple[str, ...], per_page: bool, options: ParseOptions) -> dict[str, Any]:
    """The options a manifest entry records: a rerun with other options parses again."""
    return {
        "engine": engine_name,
        "formats": list(formats),
        "per_page": per_page,
        "furniture": options.furniture,
        "markers": options.markers,
        **({"ocr_lang": options.ocr_lang} if options.ocr_lang else {}),  # other languages: parsed again
    }


def page_settings(sha256: str, engine: TaskEngine, options: ParseOptions) -> dict[str, Any]:
    """What a document's kept pages were made from: the input, the engine (a model's identity and parameters) and
    the options that change a page. Output options (formats, per-page files, page markers) keep them."""
    return {
        "version": 1,
        "sha256": sha256,
        "engine": engine.name,
        **engine.page_identity(),
        "furniture": options.furniture,
        "ocr": options.ocr,
        "ocr_lang": options.ocr_lang,
    }


def pages_folder(out: Path, item: Item) -> Path:
    """Where a document's pages are kept while it is not done: ``.dwb-pages/<sub-folder>/<stem>`` in ``out``."""
    return inside(out / PAGES, *Path(item.subdir).parts, item.stem)


def _kept_folder(store: PageStore | None, item: Item, out: Path) -> str:
    """The kept pages' folder relative to ``out``, when there are any."""
    if store is None or not store.pages_on_disk:
        return ""
    return store.folder.relative_to(out.resolve()).as_posix()


def item_key(item: Item) -> str:
    """The document's key in the manifest: its path below the input folder."""
    return str(Path(item.subdir, item.path.name).as_posix())


def check_item(
    item: Item, key: str, manifest: Manifest, settings: dict[str, Any], out: Path, force: bool
) -> tuple[str, ItemResult | None]:
    """The input's hash, and its result when there is nothing to parse: unreadable (failed) or finished (skipped)."""
    try:
        sha = file_sha256(item.path)
    except OSError as exc:
        return "", ItemResult(str(item.path), "failed", message=_unreadable(item.path, exc))
    if not force and manifest.finished(key, sha, settings, out):
        return sha, ItemResult(str(item.path), "skipped", outputs=manifest.entries[key]["outputs"])
    return sha, None


def _unreadable(path: Path, exc: OSError) -> str:
    """Why ``path`` cannot be read; a folder that cannot be listed says so (``expand`` yields it as it is)."""
    if path.is_dir():
        try:
            sniff(path)
        except WorkbenchError as err:
            return err.user_message()
    return f"{path}: cannot read the file ({exc.strerror})"


def _partial_markdown(item: Item, out: Path, formats: tuple[str, ...], per_page: bool) -> PartialMarkdown | None:
    """Where the Markdown of the pages read so far goes while the document is read (one ``.md`` file only)."""
    if "md" not in formats or per_page:
        return None
    parts = [p for p in Path(item.subdir).parts if p not in ("", ".")]
    return PartialMarkdown(inside(out, *parts, f"{item.stem}.md"), str(item.path))


@dataclass(frozen=True)
class ParseJob:
    """One document to parse and where its files go."""

    item: Item
    out: Path
    engine: TaskEngine
    formats: tuple[str, ...]
    per_page: bool
    options: ParseOptions


def parse_item(
    job: ParseJob, context: TaskContext | None = None, password: Callable[[str], str | None] | None = None
) -> ItemResult:
    """Ingest one document, run the engine and write its files under ``out``; any failure is its result.

    With ``context.pages`` (a ``PageStore``), pages kept by an earlier run are reused and finished pages kept as
    they finish; the store is discarded once the document is done (its files hold every page)."""
    item, out, engine, formats, per_page, options = (
        job.item,
        job.out,
        job.engine,
        job.formats,
        job.per_page,
        job.options,
    )
    context = context or TaskContext()
    store = context.pages
    partial = _partial_markdown(item, out, formats, per_page)

    def on_page(page: Page, total: int, kept: bool) -> None:
        done = "kept from an earlier run" if kept else "read"
        context.report(page.number, total, f"{item.path.name}: page {page.number} {done}")
        if partial is not None:
            partial.page(page, total)

    try:
        doc = open_document(item.path, password=password, pages=store, cancel=context.cancel, on_page=on_page)
        parsed = engine.parse(doc, options, context)
        written = write_parse(parsed, out, item.stem, formats, per_page=per_page, subdir=item.subdir)
    except CancelledError:
        if partial is not None:
            partial.write("the run was stopped before the end")
        raise
    except WorkbenchError as exc:
        return ItemResult(str(item.path), "failed", message=exc.user_message(), pages=_kept_folder(store, item, out))
    except Exception as exc:
        log.debug("parse failed", exc_info=True)
        message = f"{item.path}: could not be parsed ({type(exc).__name__}: {exc})"
        return ItemResult(str(item.path), "failed", message=message, pages=_kept_folder(store, item, out))
    outputs = [p.relative_to(out.resolve()).as_posix() for p in written]
    errors = [f"page {e.page}: {e.message}" if e.page else e.message for e in parsed.document.errors]
    result = ItemResult(
        str(item.path), "partial" if errors else "done", outputs=outputs, message="; ".join(errors[:3]), errors=errors
    )
    result.low_confidence = parsed.document.low_confidence_pages
    result.unsure_words = {
        p.number: p.attrs["unsure_words"] for p in parsed.document.pages if p.attrs.get("unsure_words")
    }
    if store is not None:
        result.kept = store.kept
        if errors:
            result.pages = _kept_folder(store, item, out)
        else:
            store.discard(root=(out / PAGES).resolve())
    return result
