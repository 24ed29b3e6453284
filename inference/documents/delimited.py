"""CSV and TSV files into the document model: one page holding the file's rows as one table, as a sheet is read.

The encoding is the one ``decode_text`` reads text files in (a byte-order mark, UTF-16/32 by its zero bytes, UTF-8,
cp1252, Latin-1), judged from the file's start; the delimiter is sniffed from its first rows (comma, semicolon, tab
or bar; a ``.tsv`` file is tab-separated). The file is streamed and bounded as workbooks are (``sheets.MAX_ROWS``
rows, ``MAX_COLUMNS`` columns, ``MAX_CELLS`` cells): what lies past a bound is named in a page note and the document
is partial, never cut silently. Rows with fewer fields than the widest (a malformed file) are padded with empty
cells and a note says so; a field the csv module cannot read ends the table there, with a note and an error.
"""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from inference.documents import sheets
from inference.documents.model import Document, Page, clean_text, file_sha256
from inference.documents.text import FALLBACKS, head_encoding
from inference.errors import IngestError

CSV_SUFFIXES = {".csv": "", ".tsv": "\t"}  # the delimiter a suffix fixes ("": sniffed)
DELIMITERS = ",;\t|"
HEAD_BYTES = 64 * 1024  # the start of the file that tells its encoding and delimiter


@dataclass
class _Rows:
    """The rows read, and what the reading found on the way."""

    rows: list[list[str]] = field(default_factory=list)
    lengths: Counter[int] = field(default_factory=Counter)  # fields per row, as the file has them
    odd: int = 0  # the first record (1-based) with another number of fields than the first
    more_rows: bool = False
    more_columns: bool = False
    failed: str = ""  # why reading stopped early, where it did


def open_csv(
    path: str | Path, max_rows: int | None = None, max_columns: int | None = None, max_cells: int | None = None
) -> Document:
    """The file at ``path`` as a one-page document holding one table, within the bounds (default: the sheets')."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
            complete = not fh.read(1)
    except OSError as exc:
        raise IngestError(f"cannot read the file ({exc.strerror})", path=path) from exc
    encoding = head_encoding(head, complete)
    sample = head.decode(encoding, "ignore")
    if "\x00" in sample:
        raise IngestError("this looks like a binary file, not text", path=path)
    dialect = _dialect(sample if complete else sample[: sample.rfind("\n") + 1] or sample, path)
    bounds = (max_rows or sheets.MAX_ROWS, max_columns or sheets.MAX_COLUMNS, max_cells or sheets.MAX_CELLS)
    found, encoding = _read_decoded(path, encoding, dialect, bounds)
    suffix = path.suffix.lower()
    metadata = {"format": suffix.lstrip(".") if suffix in CSV_SUFFIXES else "csv", "encoding": encoding}
    metadata["delimiter"] = dialect.delimiter
    doc = Document(source=str(path), sha256=file_sha256(path), kind="text", metadata=metadata)
    doc.pages.append(_page(doc, found, bounds[1]))
    return doc


def _dialect(sample: str, path: Path) -> type[csv.Dialect] | csv.Dialect:
    """The file's delimiter and quoting: fixed by a ``.tsv`` suffix, else sniffed from ``sample`` among
    ``DELIMITERS`` (a comma when the sample does not tell: a file of one column)."""
    if CSV_SUFFIXES.get(path.suffix.lower()):
        return csv.excel_tab
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
    except csv.Error:
        return csv.excel
    return dialect if dialect.delimiter in DELIMITERS and dialect.quotechar else csv.excel


def _read_decoded(
    path: Path, encoding: str, dialect: type[csv.Dialect] | csv.Dialect, bounds: tuple[int, int, int]
) -> tuple[_Rows, str]:
    """The rows read in ``encoding``, or where a byte past the file's start is not valid in it, in the next
    encoding ``decode_text`` would try (Latin-1, the last, reads any byte); and the encoding read in."""
    for candidate in dict.fromkeys((encoding, *FALLBACKS[1:])):
        try:
            return _read(path, candidate, dialect, *bounds), candidate
        except UnicodeDecodeError:
            continue
    return _read(path, "latin-1", dialect, *bounds), "latin-1"  # not reached: Latin-1 is among the fallbacks


def _read(
    path: Path, encoding: str, dialect: type[csv.Dialect] | csv.Dialect, max_rows: int, max_columns: int, cells: int
) -> _Rows:
    """The file's non-blank rows (each cut at ``max_columns``) until a bound, streamed."""
    found = _Rows()
    with open(path, encoding=encoding, newline="") as fh:
        records: Iterator[list[str]] = (row for row in csv.reader(fh, dialect) if row)  # blank lines hold no record
        try:
            for row in records:
                if len(found.rows) >= max_rows or cells < min(len(row), max_columns):
                    # anything past the bound? (stops at the first value found)
                    found.more_rows = any(c.strip() for r in itertools.chain([row], records) for c in r)
                    break
                found.lengths[len(row)] += 1
                if not found.odd and len(found.lengths) > 1:
                    found.odd = len(found.rows) + 1
                found.more_columns = found.more_columns or any(c.strip() for c in row[max_columns:])
                found.rows.append([clean_text(c) for c in row[:max_columns]])
                cells -= len(found.rows[-1])
        except csv.Error as exc:
            found.failed = f"the file could not be read past record {len(found.rows)} ({exc})"
    return found


def _page(doc: Document, found: _Rows, max_columns: int) -> Page:
    """The page of the table read, with notes for padded rows, bounds and a stop; the document partial where the
    file was not read to its end."""
    page = Page(number=1, label="1", width=0, height=0, text_layer="visible")
    rows = found.rows
    width = max((i + 1 for r in rows for i, t in enumerate(r) if t), default=0)  # trailing empty columns dropped
    if width:
        page.blocks.append(sheets.table_block([(r + [""] * width)[:width] for r in rows], order=0))
    if len(found.lengths) > 1:
        widest, most = max(found.lengths), found.lengths.most_common(1)[0][0]
        page.note(
            f"the rows have different numbers of fields ({min(found.lengths)} to {widest}, most have {most}; "
            f"the first that differs is record {found.odd}): shorter rows were padded with empty cells"
        )
    cut = sheets.bounds_note(
        len(rows) if found.more_rows else None, max_columns if found.more_columns else None, "file"
    )
    for problem in (cut, found.failed):
        if problem:
            page.note(problem)
            doc.add_error(None, problem, "LimitError" if problem is cut else "IngestError")
    return page
