"""A document's finished pages, kept on disk the moment each finishes, so that a stopped parse goes on from them.

One folder per document (``dwb parse`` puts it at ``<out>/.dwb-pages/<sub-folder>/<stem>/``): ``meta.json`` holds
what the pages were made from (the input's SHA-256, the engine and the options that change a page), and every
finished page is one small JSON file per stage, ``<stage>-<number>.json``, written to a temporary file and renamed,
so that a process killed at any moment leaves whole pages or none:

- ``read``: a PDF page as read from its file (text layer, tables, figures);
- ``ocr``: a page read by OCR (builtin engine);
- ``model``: a page's transcription (model and remote engines).

A page with an error is never kept (a rerun tries it again). Opening the folder for another input or other options,
or ``fresh`` (``--force``), discards the pages in it. Nothing is written until the first page is kept.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from inference.documents.model import Page
from inference.files import write_atomic

Stage = Literal["read", "ocr", "model"]
META = "meta.json"
RECORD = re.compile(r"^(read|ocr|model)-(\d+)\.json$")


class PageStore:
    """The kept pages of one document. Thread-safe: OCR workers keep pages while others are being read."""

    def __init__(self, folder: Path, fingerprint: dict[str, Any], names: set[str]) -> None:
        self.folder = folder
        self.fingerprint = fingerprint
        self._names = names  # records on disk
        self._lock = threading.Lock()
        self._reused: set[int] = set()  # pages with a record taken from an earlier run
        self._redone: set[int] = set()  # pages with a stage done in this run

    @classmethod
    def open(cls, folder: Path, fingerprint: dict[str, Any], fresh: bool = False) -> PageStore:
        """The store in ``folder``; its pages are discarded when they were made from another input or with other
        options (``fingerprint``), or when ``fresh``."""
        fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back: tuples become lists
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
        if fresh or meta != fingerprint:
            shutil.rmtree(folder, ignore_errors=True)
            return cls(folder, fingerprint, set())
        names = set()
        for path in folder.iterdir():
            if path.name.endswith(".part"):  # a write cut off by a kill
                path.unlink(missing_ok=True)
            elif RECORD.match(path.name):
                names.add(path.name)
        return cls(folder, fingerprint, names)

    # ------------------------------------------------------------------ reading kept pages
    def page(self, stage: Stage, number: int) -> Page | None:
        """The page kept at ``stage``, or None (then the caller does the work, and this page counts as redone)."""
        record = self._record(stage, number)
        try:
            return Page.from_dict(record["page"]) if record is not None else None
        except (KeyError, TypeError, ValueError):
            return self._missed(number)

    def text(self, stage: Stage, number: int) -> str | None:
        record = self._record(stage, number)
        text = record.get("text") if record is not None else None
        return text if isinstance(text, str) else self._missed(number)

    # ------------------------------------------------------------------ keeping finished pages
    def keep_page(self, stage: Stage, page: Page) -> None:
        """Write ``page`` as finished at ``stage``, unless it has an error."""
        if page.error is None:
            self._write(stage, page.number, {"page": asdict(page)})

    def keep_text(self, stage: Stage, number: int, text: str) -> None:
        self._write(stage, number, {"text": text})

    # ------------------------------------------------------------------ what a run did
    @property
    def kept(self) -> int:
        """Pages this run took whole from an earlier run (no stage of them done again)."""
        with self._lock:
            return len(self._reused - self._redone)

    @property
    def pages_on_disk(self) -> int:
        """Pages with at least one kept stage."""
        with self._lock:
            return len({int(m.group(2)) for n in self._names if (m := RECORD.match(n))})

    def discard(self, root: Path | None = None) -> None:
        """Remove the folder (its document is finished), and the empty folders above it up to ``root``."""
        shutil.rmtree(self.folder, ignore_errors=True)
        if root is None:
            return
        parent = self.folder.parent
        while root in (parent, *parent.parents):
            try:
                parent.rmdir()
            except OSError:
                return
            parent = parent.parent

    # ------------------------------------------------------------------ files
    def _record(self, stage: Stage, number: int) -> dict[str, Any] | None:
        name = _name(stage, number)
        with self._lock:
            known = name in self._names
        if not known:
            return self._missed(number)
        try:
            record = json.loads((self.folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return self._missed(number)
        if not isinstance(record, dict):
            return self._missed(number)
        with self._lock:
            self._reused.add(number)
        return record

    def _missed(self, number: int) -> None:
        with self._lock:
            self._redone.add(number)
        return None

    def _write(self, stage: Stage, number: int, record: dict[str, Any]) -> None:
        name = _name(stage, number)
        with self._lock:
            self._redone.add(number)
            if not (self.folder / META).is_file():
                self.folder.mkdir(parents=True, exist_ok=True)
                write_atomic(self.folder / META, json.dumps(self.fingerprint, ensure_ascii=False), sync=False)
        write_atomic(self.folder / name, json.dumps(record, ensure_ascii=False), sync=False)
        with self._lock:
            self._names.add(name)


def _name(stage: Stage, number: int) -> str:
    return f"{stage}-{number:05d}.json"
