"""Excel (XLSX) into the document model through openpyxl: one page per sheet, labelled with the sheet's name, holding
its name as a heading and its used cells as one table.

The workbook is streamed (openpyxl's read-only mode), so memory stays flat whatever the file's size, and each sheet
is read up to ``MAX_ROWS`` rows and ``MAX_COLUMNS`` columns, the workbook up to ``MAX_CELLS`` cells: what lies past
a bound is named in a page note and the document is partial, never cut silently. Cells show their cached values
(what Excel last computed) as Excel shows them: a plain number format's decimals, thousands separator and percent
applied (``2.90``, ``1,234.50``, ``12.5%``), other numbers in the fewest digits that give them back, dates in ISO
form; a formula never computed (a file written by a script) is empty.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
import warnings
import zipfile
import zlib
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from inference.documents.model import Block, Document, Page, clean_text
from inference.errors import IngestError

MAX_ROWS = 10_000
MAX_COLUMNS = 200
MAX_CELLS = 500_000


def _load(source: IO[bytes] | Path) -> Any:
    """The workbook, streamed; openpyxl's warnings about parts it skips (extensions, data validation) are not the
    reader's business and would break the CLI's progress line."""
    import openpyxl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return openpyxl.load_workbook(source, read_only=True, data_only=True)


def read_workbook(
    doc: Document,
    source: IO[bytes] | Path,
    max_rows: int | None = None,
    max_columns: int | None = None,
    max_cells: int | None = None,
) -> Document:
    """Each sheet of the workbook ``source`` as a page of ``doc``, within the bounds (default: the module's)."""
    max_rows, max_columns = max_rows or MAX_ROWS, max_columns or MAX_COLUMNS

    try:
        book = _load(source)
    except KeyError as exc:  # a part listed in [Content_Types].xml but not in the archive: read without it
        try:
            missing, source = _without_missing_parts(source)
            book = _load(source)
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError, zlib.error) as again:
            raise IngestError(f"the Excel file is damaged ({type(again).__name__}: {again})", path=doc.source) from exc
        doc.metadata["missing_parts"] = missing
    except (zipfile.BadZipFile, ValueError, TypeError, OSError, EOFError, zlib.error) as exc:
        raise IngestError(f"the Excel file is damaged ({type(exc).__name__}: {exc})", path=doc.source) from exc
    budget = max_cells or MAX_CELLS
    try:
        for number, sheet in enumerate(book.worksheets, 1):
            page = Page(number=number, label=sheet.title, width=0, height=0, text_layer="visible")
            doc.pages.append(page)
            try:
                with warnings.catch_warnings():  # the sheet's parts openpyxl skips, as in _load
                    warnings.simplefilter("ignore", UserWarning)
                    rows, cut = _sheet_rows(sheet, max_rows, max_columns, budget)
            except Exception as exc:  # noqa: BLE001 - one damaged sheet never loses the others
                doc.add_error(number, f"the sheet {sheet.title!r} could not be read ({type(exc).__name__}: {exc})")
                continue
            budget -= sum(len(r) for r in rows)
            page.blocks.append(Block(kind="heading", text=clean_text(sheet.title), bbox=(0, 0, 0, 0), order=0, level=2))
            if rows:
                page.blocks.append(table_block(rows, order=1))
            if sheet.sheet_state != "visible":
                page.note(f"a {sheet.sheet_state} sheet")
            if cut:
                page.note(cut)
                doc.add_error(None, f"sheet {sheet.title!r}: {cut}", "LimitError")
    finally:
        book.close()
    return doc


def _without_missing_parts(source: IO[bytes] | Path) -> tuple[list[str], IO[bytes]]:
    """The workbook rewritten in memory without the ``[Content_Types].xml`` entries of parts it does not hold (a
    writer that lists a shared-strings part and stores its strings inline), and the names of those parts."""
    out = io.BytesIO()
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as fixed:
        names = set(archive.namelist())
        types = archive.read("[Content_Types].xml").decode("utf-8")
        listed = re.findall(r'PartName="/([^"]+)"', types)
        missing = [name for name in listed if name not in names]
        for name in missing:
            types = re.sub(rf'<Override[^>]*PartName="/{re.escape(name)}"[^>]*/>', "", types)
        for info in archive.infolist():
            fixed.writestr(info, types if info.filename == "[Content_Types].xml" else archive.read(info))
    if not missing:
        raise KeyError("a part the workbook names is missing")
    out.seek(0)
    return missing, out


def _sheet_rows(sheet: Any, max_rows: int, max_columns: int, budget: int) -> tuple[list[list[str]], str]:
    """The sheet's cells as text, trailing empty rows and columns dropped, and what was left unread (or "")."""
    rows: list[list[str]] = []
    more_rows = more_columns = False
    limit, cells = max_rows, 0  # rows end at max_rows or when the cells read use up the budget
    sheet.reset_dimensions()  # a declared range (A1:XFD1048576) is not trusted: each row is as long as its cells
    source = sheet.iter_rows()
    for index, row in enumerate(source):
        if index >= max_rows or cells >= budget:  # anything past the bound? (stops at the first value found)
            limit = index
            more_rows = any(c.value is not None for r in itertools.chain([row], source) for c in r)
            break
        rows.append([cell_text(c) for c in row[:max_columns]])
        cells += max(1, len(rows[-1]))
        more_columns = more_columns or any(c.value is not None for c in row[max_columns:])
    while rows and not any(rows[-1]):
        rows.pop()
    width = max((i + 1 for r in rows for i, t in enumerate(r) if t), default=0)
    rows = [(r + [""] * width)[:width] for r in rows]
    return rows, bounds_note(limit if more_rows else None, max_columns if more_columns else None)


def table_block(rows: list[list[str]], order: int) -> Block:
    """Rows of cell texts as a table block (its text: a row a line, cells between ``|``)."""
    return Block(kind="table", text="\n".join(" | ".join(r) for r in rows), bbox=(0, 0, 0, 0), order=order, rows=rows)


def bounds_note(rows: int | None, columns: int | None, what: str = "sheet") -> str:
    """What a bound left unread, in words for a page note (``""``: nothing): ``rows`` and ``columns`` are how many
    were read where more lay past them, else None."""
    cut = [f"only the first {rows:,} rows were read"] if rows else []
    if columns:
        cut.append(f"only the first {columns} columns were read")
    return "; ".join(cut) + (f" (the bound that keeps a huge {what} readable)" if cut else "")


def cell_text(cell: Any) -> str:
    """A cell's value as Excel shows it: a number in its format's decimals, thousands separator and percent (else in
    the fewest digits that give back the stored number, at most 15 significant), dates in ISO form."""
    value = getattr(cell, "value", None)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return number_text(value, str(getattr(cell, "number_format", "") or ""))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return "\n".join(" ".join(clean_text(line).split()) for line in str(value).splitlines()).strip()


# a plain number format: digits with optional thousands separator, decimals and percent ("#,##0.00", "0.0%")
PLAIN_FORMAT = re.compile(r"^([$€£¥ ]*)([#0]*)(,)?([#0]*)(?:\.(0+)#*)?(%)?([$€£¥ ]*)$")
CURRENCY = re.compile(r"\[\$([^\]-]*)(?:-[0-9A-Fa-f]+)?\]")  # [$€-407]: the symbol of a locale's currency


def number_text(value: float, fmt: str = "General") -> str:
    section = CURRENCY.sub(r"\1", fmt.split(";")[0]).replace("\\", "").replace('"', "").strip()
    if m := PLAIN_FORMAT.match(section) if section and section != "General" else None:
        prefix, before, thousands, after, decimals, percent, suffix = m.groups()
        try:  # Excel's 15 significant digits, rounded half away from zero as Excel rounds (0.5% with "0%" is 1%)
            shown = Decimal(f"{value * 100 if percent else value:.15g}")
            shown = shown.quantize(Decimal(1).scaleb(-len(decimals or "")), rounding=ROUND_HALF_UP)
        except InvalidOperation:  # too many digits for the format's decimals
            return _shortest(value)
        sign = "-" if shown < 0 else ""  # a negative section's red or brackets: a minus
        text = format(abs(shown), f"{',' if thousands else ''}f")
        whole, dot, fraction = text.partition(".")
        width = (before + after).count("0")  # "00000000": a number padded to eight digits (an ID, a postcode)
        if not thousands and len(whole) < width:
            whole = whole.zfill(width)
        return f"{sign}{prefix}{whole}{dot}{fraction}{'%' if percent else ''}{suffix}"
    if "%" in section:
        return f"{_shortest(value * 100)}%"
    return _shortest(value)


def _shortest(value: float) -> str:
    """The fewest digits that give back ``value``, at most 15 significant (Excel's precision), never an exponent
    (0.1 + 0.2, stored as 0.30000000000000004, is 0.3)."""
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(f"{value:.15g}").normalize(), "f")
    return text if text != "-0" else "0"
