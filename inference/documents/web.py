"""HTML and EPUB into the document model through lxml's HTML parser (libxml2, which reads real-world tag soup).

HTML is decoded as a browser would: a byte-order mark, else the encoding the page declares (``<meta charset>``,
``http-equiv``, an XML declaration; Latin-1 and ASCII read as Windows-1252 as browsers do), else UTF-8, else
Windows-1252. A declaration the bytes contradict (bytes that are not valid in it, or a single-byte declaration over
valid UTF-8) is overruled, and the page says so in a note. Headings, paragraphs, lists (with their depth), tables
(with column spans), preformatted text (as code, verbatim) and images' alternative text become blocks in the order
of the page; scripts, styles and the head are left out. A table used for layout (cells holding paragraphs, lists or
tables) is read as its contents.

An EPUB is a zip of XHTML chapters: one page per chapter in the order of its spine, labelled with its first heading.
"""

from __future__ import annotations

import codecs
import posixpath
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from inference.documents.model import Block, BlockKind, Document, Page, clean_text, file_sha256, require_file
from inference.documents.text import decode_text, fenced, list_markdown
from inference.errors import IngestError

HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml")
HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)
DECLARED = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.I
)
BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
MAX_CHAPTER_BYTES = 64 * 1024 * 1024  # an EPUB chapter unpacked (a zip bomb stops here)

SKIP = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "select", "button"}
Furniture = Literal["header", "footer", ""]  # a site's navigation, a page footer, or neither
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
CONTAINERS = {
    "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "blockquote", "figure", "address",
    "form", "fieldset", "details", "summary", "center", "dl", "dd", "dt", "body", "html", "caption", "legend", "hr",
    "li", "figcaption", "tbody", "thead", "tfoot", "tr", "td", "th",
}  # fmt: skip
BLOCKY = {"p", "div", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "section"}
# elements a browser sets on lines of their own: inside a heading, list item or cell, their text is kept apart
LINE_BLOCKS = (CONTAINERS | BLOCKY | {"hgroup", "menu", "dir"}) - {"body", "html"}
OWN_BLOCKS = {*HEADINGS, "ul", "ol", "table", "pre"}  # blocks of their own even inside a heading (<h1>A<h2>B</h2>)


def sniff_html(head: bytes) -> bool:
    """Whether the start of a file is an HTML document (a UTF-16 one is read as text first)."""
    for bom, encoding in BOMS:
        if head.startswith(bom):
            head = head.decode(encoding, "ignore").encode("utf-8")
            break
    return bool(HTML_START.match(head))


def decode_html(raw: bytes) -> tuple[str, str, str | None]:
    """The text of an HTML file, the encoding read, and a note when the declared encoding was overruled."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            return raw.decode(encoding, "replace"), encoding.removesuffix("-sig"), None
    m = DECLARED.search(raw[:4096])
    if not m:
        return *_undeclared(raw), None
    declared = (m.group(1) or m.group(2)).decode("ascii").lower()
    try:
        name = codecs.lookup(declared).name
    except LookupError:
        text, encoding = _undeclared(raw)
        return text, encoding, f"the page declares an unknown encoding {declared!r}: read as {encoding}"
    if name in ("latin-1", "iso8859-1", "ascii"):
        name = "cp1252"  # as browsers read them (the WHATWG encoding standard)
    if name.startswith("utf-16"):
        name = "utf-8"  # a page whose declaration could be read is not UTF-16 (the standard again)
    if name != "utf-8" and _is_utf8(raw):
        return raw.decode("utf-8"), "utf-8", f"the page declares {declared} but is UTF-8: read as UTF-8"
    try:
        return raw.decode(name), name, None
    except UnicodeDecodeError as exc:
        text, encoding = _undeclared(raw)
        return (
            text,
            encoding,
            f"the page declares {declared} but byte {exc.start} is not valid in it: read as {encoding}",
        )


def _undeclared(raw: bytes) -> tuple[str, str]:
    """UTF-8, else Windows-1252 (else Latin-1, which decodes anything)."""
    text, encoding = decode_text(raw)
    return text, "utf-8" if encoding == "utf-8-sig" else encoding


def _is_utf8(raw: bytes) -> bool:
    """Bytes that hold non-ASCII characters and decode as UTF-8 (no other encoding gives such byte pairs by chance)."""
    if raw.isascii():
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def open_html(path: str | Path) -> Document:
    path = Path(path)
    require_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read the file ({exc.strerror})", path=path) from exc
    text, encoding, note = decode_html(raw)
    blocks, title = html_blocks(text, path)
    page = Page(number=1, label="1", width=0, height=0, text_layer="visible", blocks=blocks)
    if note:
        page.note(note)
    metadata: dict[str, Any] = {"format": "html", "encoding": encoding}
    if title:
        metadata["title"] = title
    return Document(source=str(path), sha256=file_sha256(path), kind="text", pages=[page], metadata=metadata)


def html_blocks(text: str, path: Path | str) -> tuple[list[Block], str]:
    """The blocks of an HTML document in reading order, and its title."""
    import lxml.etree
    import lxml.html

    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)  # lxml refuses a str that declares its encoding
    if not text.strip():
        return [], ""
    try:
        root = lxml.html.document_fromstring(text, parser=lxml.html.HTMLParser(remove_comments=True, huge_tree=True))
    except (lxml.etree.ParserError, ValueError) as exc:
        raise IngestError(f"not a readable HTML document ({exc})", path=path) from exc
    title = " ".join(clean_text(" ".join(root.xpath("//title//text()"))).split())
    walker = _Walker()
    walker.walk(root)
    walker.flush()
    return walker.blocks, title


def _furniture(el: Any) -> Furniture:
    """ "header" for a site's navigation, "footer" for a page footer (not an article's): furniture, left out of the
    Markdown as running headers are (kept in the JSON, and with --keep-furniture)."""
    tag = el.tag.lower()
    if tag == "nav" or el.get("role") in ("navigation", "banner"):
        return "header"
    if (tag == "footer" or el.get("role") == "contentinfo") and not el.xpath("ancestor::article | ancestor::section"):
        return "footer"
    return ""


class _Walker:
    """Turns an HTML tree into blocks: inline text gathers into a paragraph until the next block-level element."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.inline: list[str] = []
        self.furniture: Furniture = ""  # inside a site's navigation ("header") or page footer ("footer")

    def add(self, kind: BlockKind, text: str, **extra: Any) -> None:
        kind = self.furniture or kind
        self.blocks.append(Block(kind=kind, text=text, bbox=(0, 0, 0, 0), order=len(self.blocks), **extra))

    def flush(self) -> None:
        text = "".join(self.inline).replace("\u00ad", "")  # soft hyphens: where a word may break
        lines = [" ".join(clean_text(line).split()) for line in text.split("\n")]
        self.inline = []
        if text := "\n".join(line for line in lines if line):
            self.add("text", text)

    def walk(self, el: Any) -> None:
        if _skipped(el):
            return
        tag = el.tag.lower()
        role = _furniture(el) if not self.furniture else ""
        if role:
            self.flush()
            self.furniture = role
            self.walk_block(el, tag)
            self.flush()
            self.furniture = ""
        else:
            self.walk_block(el, tag)

    def walk_block(self, el: Any, tag: str) -> None:
        if tag in HEADINGS:
            self.flush()
            self.heading(el, HEADINGS[tag])
        elif tag == "pre":
            self.flush()
            variants = el.xpath("./code")  # one <pre>, several versions of the code (tabs): one after the other
            texts = [raw_text(c) for c in variants] if len(variants) > 1 else [raw_text(el)]
            code = "\n\n".join(t.removeprefix("\n").rstrip() for t in texts if t.strip())
            if code:
                self.add("code", code, attrs={"markdown": fenced(code)})
        elif tag in ("ul", "ol"):
            self.flush()
            if items := list(list_items(el, 0)):
                self.add("list", list_markdown(items), attrs={"markdown": list_markdown(items, escape=True)})
        elif tag == "table" and not el.xpath(".//td//*[self::p or self::div or self::table or self::ul or self::ol]"):
            self.flush()
            self.table(el)
        elif tag == "img":
            alt = " ".join(clean_text(el.get("alt") or "").split())
            if alt or _content_image(el):  # alt="" or a pixel: decorative, said nothing of by the page either
                self.flush()
                self.add("figure", alt, attrs={"src": (el.get("src") or "").rsplit("/", 1)[-1][:200]})
        elif tag == "br":
            self.inline.append("\n")
        elif tag == "math":
            self.inline.append(mathml_text(el))
        elif tag in CONTAINERS or tag == "table":
            self.flush()
            self.children(el)
            self.flush()
        else:
            self.children(el)

    def heading(self, el: Any, level: int) -> None:
        """A heading. One left unclosed holds what follows it (libxml2 nests ``<h2>`` in an open ``<h1>``): its own
        words are those before the first heading, list, table or ``<pre>`` inside it, and the rest is read after it
        as the blocks it is."""
        inner = _blocks_inside(el)
        if not inner:
            if text := inline_text(el):
                self.add("heading", text, level=level)
            return
        top = inner[0]
        while top.getparent() is not el:
            top = top.getparent()
        kids = list(el)
        start = next(i for i, kid in enumerate(kids) if kid is top)
        lead = "".join([el.text or "", *(raw_text(kid) + (kid.tail or "") for kid in kids[:start])])
        if text := " ".join(clean_text(lead.replace("\u00ad", "")).split()):
            self.add("heading", text, level=level)
        for kid in kids[start:]:
            self.walk(kid)
            if kid.tail:
                self.inline.append(kid.tail.replace("\n", " "))
        self.flush()

    def children(self, el: Any) -> None:
        """Inline text (a line break in the source is a space; ``<br>`` is a line break) and block children."""
        if el.text:
            self.inline.append(el.text.replace("\n", " "))
        for child in el:
            self.walk(child)
            if child.tail:
                self.inline.append(child.tail.replace("\n", " "))

    def table(self, el: Any) -> None:
        rows: list[list[str]] = []
        spans: list[list[int]] = []
        for tr in el.xpath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr"):
            row: list[str] = []
            span_row: list[int] = []
            for cell in tr.xpath("./td | ./th"):
                width = int(cell.get("colspan")) if (cell.get("colspan") or "").isdigit() else 1
                width = max(1, min(width, 1000))
                row += [inline_text(cell)] + [""] * (width - 1)
                span_row += [width] + [0] * (width - 1)
            rows.append(row)
            spans.append(span_row)
        if caption := el.xpath("./caption"):
            if text := inline_text(caption[0]):
                self.add("caption", text)
        width = max((len(r) for r in rows), default=0)
        if not width:
            return
        for row, span_row in zip(rows, spans, strict=True):
            row += [""] * (width - len(row))
            span_row += [1] * (width - len(span_row))
        if len(rows) == 1 and width == 1:  # a one-cell table is a framed paragraph (a box, a link), not a table
            if rows[0][0]:
                self.add("text", rows[0][0])
            return
        merged = any(s > 1 for r in spans for s in r)
        self.add("table", "\n".join(" | ".join(r) for r in rows), rows=rows, attrs={"spans": spans} if merged else {})


ANCHOR_MARKS = {"#", "¶", "§", "🔗", "link", "permalink"}


def _skipped(node: Any, nested: tuple[Any, ...] = ()) -> bool:
    """Scripts, styles, buttons, nested lists read on their own, headings' permalink marks (``#``, ``¶``) and the
    print edition's page-break markers of an EPUB."""
    tag = node.tag.lower() if isinstance(node.tag, str) else ""
    if tag in SKIP or not tag or any(node is n for n in nested):
        return True
    if "pagebreak" in (node.get("epub:type") or "") or node.get("role") == "doc-pagebreak":
        return True  # a book's print-edition page number ("169"), marked where that page began
    href = node.get("href") or ""
    return tag == "a" and href.startswith("#") and node.text_content().strip().lower() in ANCHOR_MARKS


def _blocks_inside(el: Any) -> tuple[Any, ...]:
    """The headings, lists, tables and preformatted blocks inside ``el`` (not those inside another of them)."""
    found: list[Any] = []
    for node in el.iterdescendants():
        tag = node.tag.lower() if isinstance(node.tag, str) else ""
        if tag in OWN_BLOCKS and not any(any(a is f for f in found) for a in node.iterancestors()):
            found.append(node)
    return tuple(found)


def raw_text(el: Any, nested: tuple[Any, ...] = ()) -> str:
    """An element's text as written (line breaks of ``<br>`` kept), skipped parts left out, images by their alt.
    Block elements inside it (``<div>``, ``<p>``, a heading) start and end lines, as a browser sets them: their text
    is never glued to the text beside them."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if _skipped(node, nested):
            return
        tag = node.tag.lower()
        block = tag in LINE_BLOCKS and node is not el
        if block and parts and not parts[-1].endswith("\n"):
            parts.append("\n")
        if tag == "img" and node.get("alt"):
            parts.append(f" {node.get('alt')} ")
        if tag == "br":
            parts.append("\n")
        if tag == "math":
            parts.append(mathml_text(node))
            return
        if node.text:
            parts.append(node.text)
        for child in node:
            walk(child)
            if child.tail:
                parts.append(child.tail)
        if block and parts and not parts[-1].endswith("\n"):
            parts.append("\n")

    walk(el)
    return "".join(parts).replace("\u00ad", "")  # soft hyphens: where a word may break


def mathml_text(el: Any) -> str:
    """A MathML formula as a line of text: its identifiers, numbers and operators in order (``x1+y`` for
    x₁ + y), fences around fenced groups; its ``alttext`` instead where that spells it out."""
    alt = (el.get("alttext") or "").strip()
    if alt and "not available" not in alt.lower():
        return f" {alt} "
    parts: list[str] = []

    def walk(node: Any) -> None:
        tag = node.tag.lower().rsplit(":", 1)[-1] if isinstance(node.tag, str) else ""
        if tag in ("annotation", "annotation-xml"):
            return
        if tag == "mfenced":
            parts.append(node.get("open", "("))
        if tag in ("mi", "mn", "mo", "mtext", "ms") and node.text:
            parts.append(node.text.strip())
        for child in node:
            walk(child)
        if tag == "mfenced":
            parts.append(node.get("close", ")"))

    walk(el)
    return f" {''.join(parts)} "


def inline_text(el: Any, nested: tuple[Any, ...] = ()) -> str:
    """An element's text as one line, whitespace collapsed."""
    return " ".join(clean_text(raw_text(el, nested)).split())


def list_items(el: Any, depth: int) -> Iterator[tuple[int, bool, str]]:
    """(depth, numbered, text) per list item, nested lists after their item one level deeper."""
    numbered = el.tag.lower() == "ol"
    for li in el.xpath("./li"):
        # lists inside this item (also inside its <details> or <div>), not those inside a deeper item
        nested = tuple(sub for sub in li.iter("ul", "ol") if next(sub.iterancestors("li"), None) is li)
        if text := inline_text(li, nested):
            yield depth, numbered, text
        for sub in nested:
            yield from list_items(sub, depth + 1 if text else depth)


# EPUB ---------------------------------------------------------------------------------------------------------------

OPF = "{http://www.idpf.org/2007/opf}"
CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"


def open_epub(path: str | Path) -> Document:
    path = Path(path)
    require_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return _read_epub(path, archive)
    except zipfile.BadZipFile as exc:
        raise IngestError(f"the EPUB file is damaged (not a readable zip archive: {exc})", path=path) from exc


def _read_epub(path: Path, archive: zipfile.ZipFile) -> Document:
    import lxml.etree

    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True)

    def xml(name: str) -> Any:
        try:
            return lxml.etree.fromstring(_member(archive, name, path), parser=parser)
        except (KeyError, lxml.etree.XMLSyntaxError) as exc:
            raise IngestError(f"the EPUB file is damaged ({name}: {exc})", path=path) from exc

    if "META-INF/encryption.xml" in archive.namelist():
        algorithms = xml("META-INF/encryption.xml").xpath("//*[local-name()='EncryptionMethod']/@Algorithm")
        if any("font" not in a and "obfuscation" not in a for a in algorithms):
            raise IngestError("the EPUB is protected by DRM: its chapters are encrypted and cannot be read", path=path)
    rootfile = xml("META-INF/container.xml").find(f".//{CONTAINER}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise IngestError("the EPUB file is damaged (its container names no package file)", path=path)
    opf_name = rootfile.get("full-path")
    opf = xml(opf_name)
    base = posixpath.dirname(opf_name)
    manifest = {i.get("id"): i for i in opf.iter(f"{OPF}item")}
    doc = Document(source=str(path), sha256=file_sha256(path), kind="text", metadata={"format": "epub"})
    if titles := opf.xpath("//*[local-name()='title']/text()"):
        doc.metadata["title"] = " ".join(clean_text(titles[0]).split())
    for ref in opf.iter(f"{OPF}itemref"):
        item = manifest.get(ref.get("idref"))
        if item is None or "html" not in (item.get("media-type") or ""):
            continue
        number = len(doc.pages) + 1
        page = Page(number=number, label=str(number), width=0, height=0, text_layer="visible")
        doc.pages.append(page)
        name = posixpath.normpath(posixpath.join(base, item.get("href", "").split("#")[0]))
        try:
            text, _, note = decode_html(_member(archive, name, path))
            page.blocks, _ = html_blocks(text, path)
        except (IngestError, KeyError) as exc:  # one bad chapter never loses the others
            doc.add_error(number, f"chapter {name} could not be read: {getattr(exc, 'message', exc)}")
            continue
        if note:
            page.note(note)
        if heading := next((b.text for b in page.blocks if b.kind == "heading"), None):
            page.label = heading[:80]
    if not doc.pages:
        raise IngestError("the EPUB has no chapters in its spine", path=path)
    return doc


def _member(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_CHAPTER_BYTES:
        raise IngestError(
            f"{name} unpacks to {info.file_size / 2**20:.0f} MB, over the {MAX_CHAPTER_BYTES / 2**20:.0f} MB limit "
            "that guards against zip bombs",
            path=path,
        )
    with archive.open(info) as fh:
        return fh.read(MAX_CHAPTER_BYTES + 1)


def _content_image(el: Any) -> bool:
    """An ``<img>`` without ``alt`` (a placeholder in the Markdown says a picture stands there): not one the page marks
    decorative (``alt=""``, ``role="presentation"``, ``aria-hidden``) or a tracking pixel (a side of 2 or less)."""
    if el.get("alt") is not None or el.get("role") == "presentation" or el.get("aria-hidden") == "true":
        return False
    for side in (el.get("width"), el.get("height")):
        if side and side.strip().rstrip("px").isdigit() and int(side.strip().rstrip("px")) <= 2:
            return False
    return True
