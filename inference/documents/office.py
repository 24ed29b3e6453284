"""Office files: Word (DOCX), PowerPoint (PPTX, in ``slides``) and Excel (XLSX, in ``sheets``) into the document
model through python-docx, python-pptx and openpyxl.

An Office file is a zip archive of XML parts; which kind it is comes from the parts it holds (``word/document.xml``,
``ppt/presentation.xml``, ``xl/workbook.xml``), not from its suffix. A password-protected one is an OLE compound
file holding an ``EncryptedPackage``: it is decrypted in memory (msoffcrypto-tool) with the password the caller
gives, as for PDFs. Legacy binary files (.doc, .xls, .ppt) are refused with what to do.

The documents have no page images: ``Document.kind`` is ``"text"`` (read as text everywhere, never OCR'd) and
``metadata["format"]`` names the format. A Word file's pages are its explicit page and section breaks.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from inference.documents.model import Block, BlockKind, Document, Page, clean_text, file_sha256, require_file
from inference.documents.text import list_markdown
from inference.errors import IngestError, PasswordRequiredError

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
OFFICE_SUFFIXES = {
    ".docx": "docx",
    ".docm": "docx",
    ".dotx": "docx",
    ".pptx": "pptx",
    ".pptm": "pptx",
    ".ppsx": "pptx",
    ".potx": "pptx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xltx": "xlsx",
}
LEGACY_SUFFIXES = {".doc": "Word 97-2003", ".xls": "Excel 97-2003", ".ppt": "PowerPoint 97-2003"}
PARTS = (("word/document.xml", "docx"), ("ppt/presentation.xml", "pptx"), ("xl/workbook.xml", "xlsx"))
NAMES = {"docx": "Word", "pptx": "PowerPoint", "xlsx": "Excel"}
MAX_XML_BYTES = 512 * 1024 * 1024  # the XML parts of a Word or PowerPoint file, unpacked (a zip bomb stops here)

PasswordCallback = Callable[[str], str | None]


def zip_kind(path: Path) -> str | None:
    """``docx``, ``pptx``, ``xlsx`` or ``epub`` for a zip archive by the parts it holds; None for another zip or a
    damaged one (the suffix then decides, and the backend says what is wrong)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            for part, kind in PARTS:
                if part in names:
                    return kind
            if "mimetype" in names and archive.read("mimetype")[:64].strip() == b"application/epub+zip":
                return "epub"
            if "META-INF/container.xml" in names:
                return "epub"
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return None
    return None


def open_office(path: str | Path, kind: str | None = None, password: PasswordCallback | None = None) -> Document:
    """The Word, PowerPoint or Excel file at ``path`` (``kind`` as sniffed; encrypted files ask ``password``)."""
    path = Path(path)
    require_file(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    source: IO[bytes] | Path = path
    encrypted = head.startswith(OLE_MAGIC)
    if encrypted:
        source = _decrypt(path, password)
        kind = _kind_of(source) or kind
    kind = kind or OFFICE_SUFFIXES.get(path.suffix.lower())
    if kind not in NAMES:
        if not encrypted and _plain_text(path):  # a text file named like an old Office one (.doc): read as text
            from inference.documents.text import open_text

            doc = open_text(path)
            for page in doc.pages[:1]:
                page.note(f"{path.name} is plain text, not a {path.suffix} file: read as text")
            return doc
        raise IngestError("not a Word, PowerPoint or Excel file", path=path)
    _check_archive(path, source, kind)
    if kind == "xlsx":
        from inference.documents.sheets import read_workbook

        doc = Document(source=str(path), sha256=file_sha256(path), kind="text", metadata={"format": kind})
        read_workbook(doc, source)
    else:
        try:
            if kind == "docx":
                doc = read_docx(path, source)
            else:
                from inference.documents.slides import read_pptx

                doc = read_pptx(path, source)
        except IngestError:
            raise
        except Exception as exc:
            raise IngestError(f"the {NAMES[kind]} file is damaged ({type(exc).__name__}: {exc})", path=path) from exc
    doc.metadata["encrypted"] = encrypted
    return doc


def _kind_of(stream: IO[bytes]) -> str | None:
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        return None
    finally:
        stream.seek(0)
    return next((kind for part, kind in PARTS if part in names), None)


def _check_archive(path: Path, source: IO[bytes] | Path, kind: str) -> None:
    """A clear error for a file that is not a readable zip archive or unpacks past ``MAX_XML_BYTES``."""
    try:
        with zipfile.ZipFile(source) as archive:
            infos = archive.infolist()
            if bad := archive.testzip() if kind != "xlsx" else None:
                raise IngestError(f"the {NAMES[kind]} file is damaged (its part {bad} fails its checksum)", path=path)
    except zipfile.BadZipFile as exc:
        raise IngestError(f"the {NAMES[kind]} file is damaged (not a readable zip archive: {exc})", path=path) from exc
    except (OSError, EOFError, zipfile.LargeZipFile, NotImplementedError, zlib.error) as exc:
        raise IngestError(f"the {NAMES[kind]} file is damaged ({exc})", path=path) from exc
    finally:
        if not isinstance(source, Path):
            source.seek(0)
    xml = sum(i.file_size for i in infos if i.filename.endswith((".xml", ".rels")) and "/worksheets/" not in i.filename)
    if xml > MAX_XML_BYTES:
        raise IngestError(
            f"the {NAMES[kind]} file unpacks to {xml / 2**20:.0f} MB of XML, over the "
            f"{MAX_XML_BYTES / 2**20:.0f} MB limit that guards against zip bombs",
            path=path,
        )


def _decrypt(path: Path, password: PasswordCallback | None) -> IO[bytes]:
    """The decrypted package of a password-protected Office file, in memory; a legacy binary file is refused."""
    import msoffcrypto
    from msoffcrypto.exceptions import DecryptionError, FileFormatError, InvalidKeyError

    with open(path, "rb") as fh:
        try:
            office = msoffcrypto.OfficeFile(fh)
            encrypted = office.is_encrypted()
        except (FileFormatError, OSError, ValueError, AssertionError, KeyError) as exc:
            raise IngestError(f"not a readable Office file ({exc})", path=path) from exc
        if not encrypted or office.format != "ooxml":
            what = LEGACY_SUFFIXES.get(path.suffix.lower(), "legacy binary Office (97-2003)")
            raise IngestError(
                f"a {what} file: this format is not read; save it as .docx, .xlsx or .pptx and open that",
                path=path,
            )
        secret = password(str(path)) if password else None
        if not secret:
            raise PasswordRequiredError(
                "the Office file is encrypted and no password was given", wrong=False, path=path
            )
        out = io.BytesIO()
        try:
            office.load_key(password=secret)
            office.decrypt(out)
        except (InvalidKeyError, DecryptionError) as exc:
            raise PasswordRequiredError(
                "the Office file is encrypted and the password is wrong", wrong=True, path=path
            ) from exc
        except Exception as exc:
            raise IngestError(f"the encrypted Office file cannot be decrypted ({exc})", path=path) from exc
    out.seek(0)
    return out


# Word ---------------------------------------------------------------------------------------------------------------

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
DOCPR = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}docPr"
# what the body of a .docx yields, in reading order: a block's kind, a list item, or a page break
BodyPart = Literal["text", "heading", "caption", "figure", "table", "item", "break"]
LIST_STYLE = re.compile(r"^list\s+(bullet|number)\s*([1-9])?$", re.IGNORECASE)
HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
# parts of a paragraph that are not its text: deleted and moved-away revisions, text boxes (read as blocks of their
# own), the fallback copy of a drawing, field instructions
SKIP = {W + "del", W + "moveFrom", W + "txbxContent", MC_FALLBACK, W + "instrText", W + "delText", W + "pPr", W + "rPr"}


def paragraph_text(p: Any) -> str:
    """The text of a ``w:p`` element as Word shows it: runs, inserted revisions, hyperlinks, fields' results, tabs,
    line breaks and footnote marks ``[^n]``; soft hyphens dropped, non-breaking hyphens kept."""
    parts: list[str] = []

    def walk(el: Any) -> None:
        for child in el:
            tag = child.tag
            if tag in SKIP or not isinstance(tag, str):
                continue
            if tag == W + "t":
                parts.append(child.text or "")
            elif tag == W + "tab":
                parts.append("\t")
            elif tag in (W + "br", W + "cr"):
                parts.append("" if child.get(W + "type") == "page" else "\n")
            elif tag == W + "noBreakHyphen":
                parts.append("-")
            elif tag in (W + "footnoteReference", W + "endnoteReference"):
                parts.append(f"[^{'e' if 'endnote' in tag else ''}{child.get(W + 'id')}]")
            else:
                walk(child)

    walk(p)
    text = "".join(parts).replace("\u00ad", "")  # a soft hyphen is where a word may break, not a character
    return "\n".join(clean_text(line).strip() for line in text.split("\n")).strip()


def _page_break_after(p: Any) -> bool:
    return bool(p.xpath("./w:r/w:br[@w:type='page'] | ./w:pPr/w:sectPr"))


def _style_of(paragraph: Any) -> str:
    try:
        return paragraph.style.name or "" if paragraph.style is not None else ""
    except (KeyError, AttributeError, ValueError):
        return ""


class _Numbering:
    """Whether a numbered paragraph (``w:numPr``) is a bullet or a number, from the document's numbering part."""

    def __init__(self, document: Any) -> None:
        # (numId, ilvl) -> numFmt; either attribute may be missing from a damaged part, so a key may hold None
        self.formats: dict[tuple[str | None, str | None], str] = {}
        try:
            root = document.part.numbering_part.element
        except (NotImplementedError, KeyError, AttributeError):
            return
        abstract = {a.get(W + "abstractNumId"): a for a in root.iterchildren(W + "abstractNum")}
        for num in root.iterchildren(W + "num"):
            ref = num.find(W + "abstractNumId")
            base = abstract.get(ref.get(W + "val")) if ref is not None else None
            for lvl in base.iterchildren(W + "lvl") if base is not None else ():
                fmt = lvl.find(W + "numFmt")
                self.formats[(num.get(W + "numId"), lvl.get(W + "ilvl"))] = (
                    fmt.get(W + "val") if fmt is not None else ""
                )

    def item(self, p: Any, style: str) -> tuple[int, bool] | None:
        """(depth, numbered) for a list paragraph, None for any other."""
        num = p.find(f"{W}pPr/{W}numPr")
        if num is None:
            if m := LIST_STYLE.match(style):  # "List Bullet 2": the style carries the numbering
                return int(m.group(2) or 1) - 1, m.group(1).lower() == "number"
            return None
        ilvl = num.find(W + "ilvl")
        num_id = num.find(W + "numId")
        level = ilvl.get(W + "val", "0") if ilvl is not None else "0"
        ident = num_id.get(W + "val") if num_id is not None else None
        if ident == "0":  # numbering switched off for this paragraph
            return None
        fmt = self.formats.get((ident, level), "bullet")
        return int(level) if level.isdigit() else 0, fmt not in ("bullet", "none", "")


def read_docx(path: Path, source: IO[bytes] | Path) -> Document:
    import docx

    document = docx.Document(source if not isinstance(source, Path) else str(source))
    doc = Document(source=str(path), sha256=file_sha256(path), kind="text", metadata={"format": "docx"})
    if title := (document.core_properties.title or "").strip():
        doc.metadata["title"] = clean_text(title)
    pages: list[list[Block]] = [[]]
    numbering = _Numbering(document)
    items: list[tuple[int, bool, str]] = []

    def add(kind: BlockKind, text: str, **extra: Any) -> None:
        flush_list()
        pages[-1].append(Block(kind=kind, text=text, bbox=(0, 0, 0, 0), order=len(pages[-1]), **extra))

    def flush_list() -> None:
        if items:
            text, markdown = list_markdown(items), list_markdown(items, escape=True)
            pages[-1].append(Block("list", text, (0, 0, 0, 0), len(pages[-1]), attrs={"markdown": markdown}))
            items.clear()

    for kind, value in _body(document, numbering):
        if kind == "break":
            flush_list()
            pages.append([])
        elif kind == "item":
            items.append(value)
        elif kind == "table":
            rows, spans = value
            add("table", "\n".join(" | ".join(r) for r in rows), rows=rows, attrs={"spans": spans} if spans else {})
        elif kind == "heading":
            add("heading", value[1], level=value[0])
        else:
            add(kind, value)
    flush_list()
    for blocks in _notes_and_furniture(document):
        pages[-1 if blocks[0].kind == "text" else 0].extend(blocks)
    while len(pages) > 1 and not pages[-1]:
        pages.pop()
    for number, blocks in enumerate(pages, 1):
        for order, blk in enumerate(blocks):
            blk.order = order
        doc.pages.append(Page(number=number, label=str(number), width=0, height=0, text_layer="visible", blocks=blocks))
    return doc


def _body(document: Any, numbering: _Numbering) -> Iterator[tuple[BodyPart, Any]]:
    """The body in reading order as (kind, value): paragraphs, list items, tables, figures, text boxes, breaks."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            yield "table", table_rows(item)
            continue
        if not isinstance(item, Paragraph):
            continue
        p = item._p
        if p.xpath("./w:pPr/w:pageBreakBefore[not(@w:val='0' or @w:val='false')]"):
            yield "break", None
        yield from _paragraph(p, _style_of(item), numbering)
        for box in p.xpath(".//w:txbxContent[not(ancestor::mc:Fallback)]"):
            for inner in box.iterchildren(W + "p"):
                if text := paragraph_text(inner):
                    yield "text", text
        for pr in p.iter(DOCPR):
            if pr.getparent() is not None and not any(a.tag == MC_FALLBACK for a in pr.iterancestors()):
                alt = clean_text(" ".join(filter(None, (pr.get("descr"), pr.get("title"))))).strip()
                yield "figure", alt
        if _page_break_after(p):
            yield "break", None


def _paragraph(p: Any, style: str, numbering: _Numbering) -> Iterator[tuple[BodyPart, Any]]:
    text = paragraph_text(p)
    if not text:
        return
    if m := HEADING_STYLE.match(style):
        yield "heading", (int(m.group(1)), " ".join(text.split()))
    elif style.lower() == "title":
        yield "heading", (1, " ".join(text.split()))
    elif (item := numbering.item(p, style)) is not None:
        yield "item", (*item, " ".join(text.split()))
    elif style.lower().startswith(("caption", "beschriftung")):
        yield "caption", text
    else:
        yield "text", text


def table_rows(table: Any) -> tuple[list[list[str]], list[list[int]] | None]:
    """A Word table's cells row by row; ``spans[r][c]`` is a cell's column span (0: covered by the cell before),
    None when no cell spans columns. A cell continuing a vertical merge is empty; nested tables' text is kept."""
    rows: list[list[str]] = []
    spans: list[list[int]] = []
    merged = False
    for tr in table._tbl.tr_lst:
        row: list[str] = []
        span_row: list[int] = []
        for tc in tr.tc_lst:
            width = max(1, int(tc.grid_span or 1))
            continued = tc.xpath("./w:tcPr/w:vMerge[not(@w:val='restart')]")
            text = "" if continued else _cell_text(tc)
            row += [text] + [""] * (width - 1)
            span_row += [width] + [0] * (width - 1)
            merged = merged or width > 1
        rows.append(row)
        spans.append(span_row)
    width = max((len(r) for r in rows), default=0)
    for row, span_row in zip(rows, spans, strict=True):
        row += [""] * (width - len(row))
        span_row += [1] * (width - len(span_row))
    return rows, spans if merged else None


def _cell_text(tc: Any) -> str:
    texts = [
        paragraph_text(p) for p in tc.iter(W + "p") if not any(a.tag == W + "txbxContent" for a in p.iterancestors())
    ]
    return " ".join(" ".join(t.split()) for t in texts if t)


def _notes_and_furniture(document: Any) -> Iterator[list[Block]]:
    """Headers and footers of the first section (as furniture, on the first page), then footnotes and endnotes (as
    ``[^n]: text`` paragraphs, on the last page)."""
    furniture = []
    for section in document.sections[:1]:
        parts: tuple[tuple[BlockKind, Any], ...] = (("header", section.header), ("footer", section.footer))
        for kind, part in parts:
            try:
                texts = [paragraph_text(p._p) for p in part.paragraphs] if not part.is_linked_to_previous else []
            except (KeyError, AttributeError, ValueError):
                texts = []
            if text := "\n".join(t for t in texts if t):
                furniture.append(Block(kind=kind, text=text, bbox=(0, 0, 0, 0), order=0))
    if furniture:
        yield furniture
    import lxml.etree

    notes = []
    for rel in document.part.rels.values():
        name = rel.reltype.rsplit("/", 1)[-1]
        if name not in ("footnotes", "endnotes") or rel.is_external:
            continue
        root = lxml.etree.fromstring(
            rel.target_part.blob, parser=lxml.etree.XMLParser(resolve_entities=False, huge_tree=True)
        )
        prefix = "e" if name == "endnotes" else ""
        for note in root.iterchildren(W + name[:-1]):
            if note.get(W + "type") in ("separator", "continuationSeparator", "continuationNotice"):
                continue
            text = " ".join(paragraph_text(p) for p in note.iter(W + "p")).strip()
            text = re.sub(r"^\[\^e?\d+\]\s*", "", text)
            if text:
                notes.append(
                    Block(kind="text", text=f"[^{prefix}{note.get(W + 'id')}]: {text}", bbox=(0, 0, 0, 0), order=0)
                )
    if notes:
        yield notes


def _plain_text(path: Path) -> bool:
    """Whether the file is text (its first 64 KiB decode as UTF-8 with no NUL byte): never an Office container."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # cut inside the last character only
    return True
