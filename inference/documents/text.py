"""Plain text, Markdown and source code files: one page each.

Plain text: paragraphs as blocks (a line that starts with ``#`` is text, never a heading). Markdown: headings,
lists, paragraphs and fenced code as blocks, each keeping its own source (``attrs["markdown"]``) so that the Markdown
written out is the file's, indentation and code fences included. Source code (by suffix): one code block holding the
file verbatim, fenced with its language."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from inference.documents.markup import escape_markdown
from inference.documents.model import Block, Document, Page, file_sha256
from inference.errors import IngestError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
CODE_SUFFIXES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".jsx": "jsx", ".ts": "typescript",
    ".tsx": "tsx", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".java": "java",
    ".kt": "kotlin", ".rs": "rust", ".go": "go", ".rb": "ruby", ".php": "php", ".sh": "bash", ".bash": "bash",
    ".zsh": "zsh", ".ps1": "powershell", ".sql": "sql", ".r": "r", ".swift": "swift", ".scala": "scala",
    ".lua": "lua", ".pl": "perl", ".cs": "csharp", ".css": "css", ".json": "json", ".yaml": "yaml", ".yml": "yaml",
    ".toml": "toml", ".ini": "ini", ".cfg": "ini", ".xml": "xml", ".tex": "latex", ".diff": "diff", ".patch": "diff",
}  # fmt: skip
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
# fixed-width layout in plain text: a gap between columns (two spaces, three after a sentence's end, or a tab),
# box-drawing characters, and a table's rule line (+----+----+, |---|---|)
COLUMN_GAP = re.compile(r"(?<=[^\s.!?])(?: {2,}|\t)+(?=\S)|(?<=[.!?])(?: {3,}|\t)+(?=\S)")
BOX_DRAWING = re.compile(r"[\u2500-\u257f]")
RULE_LINE = re.compile(r"^\s*[+|][-=+:| ]*[-=]{3}[-=+:| ]*[+|]?\s*$")


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


FALLBACKS = ("utf-8-sig", "cp1252", "latin-1")  # decode_text's encodings after the ones told by the bytes


def head_encoding(head: bytes, complete: bool = True) -> str:
    """The encoding ``decode_text`` reads a file in, judged from its first bytes ``head`` (all of it when
    ``complete``): a character cut by the end of a partial head is not held against UTF-8, UTF-16 or UTF-32."""
    found = [decode_text(head[: len(head) - cut])[1] for cut in range(1 if complete else 4)]
    return min(found, key=lambda enc: FALLBACKS.index(enc) + 1 if enc in FALLBACKS else 0)


def fenced(code: str, language: str = "") -> str:
    """``code`` in a Markdown code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{code}\n{fence}"


def list_markdown(items: Iterable[tuple[int, bool, str]], escape: bool = False) -> str:
    """List items ``(depth, numbered, text)`` as Markdown lines: numbers counted per level (restarting under each
    parent), each level indented to its parent's text as CommonMark nests lists. ``escape``: the items' text escaped
    where a renderer would take it for markup (the Markdown written out; the block's text keeps it plain)."""
    counters: list[int] = []
    widths: list[int] = []
    kinds: list[bool] = []
    lines = []
    for depth, numbered, text in items:
        depth = min(depth, len(counters))  # a level skipped (0 then 2) nests one deeper, never more
        del counters[depth + 1 :], widths[depth:], kinds[depth + 1 :]
        counters += [0] * (depth + 1 - len(counters))
        kinds += [numbered] * (depth + 1 - len(kinds))
        if kinds[depth] != numbered:  # bullets then numbers at one level: the numbers start at 1
            counters[depth], kinds[depth] = 0, numbered
        counters[depth] += 1
        marker = f"{counters[depth]}." if numbered else "-"
        lines.append(f"{' ' * sum(widths)}{marker} {escape_markdown(text) if escape else text}")
        widths.append(len(marker) + 1)
    return "\n".join(lines)


def open_text(path: str | Path) -> Document:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read the file ({exc.strerror})", path=path) from exc
    text, encoding = decode_text(raw)
    if "\x00" in text:
        raise IngestError("this looks like a binary file, not text", path=path)
    suffix = path.suffix.lower()
    markdown = suffix in MARKDOWN_SUFFIXES
    if language := CODE_SUFFIXES.get(suffix):
        code = text.rstrip("\n")
        blocks = [
            Block("code", code, (0, 0, 0, 0), 0, attrs={"language": language, "markdown": fenced(code, language)})
        ]
        blocks = blocks if code.strip() else []
    else:
        blocks = [_block(chunk, markdown) for chunk in markdown_chunks(text) if chunk.strip()]
    for order, blk in enumerate(blocks):
        blk.order = order
    page = Page(number=1, label="1", width=0, height=0, text_layer="visible", blocks=blocks)
    metadata = {"encoding": encoding, "markdown": markdown, "format": "markdown" if markdown else language or "text"}
    return Document(source=str(path), sha256=file_sha256(path), kind="text", pages=[page], metadata=metadata)


def markdown_chunks(text: str) -> list[str]:
    """Paragraphs split at blank lines, except inside a fenced code block, which is one chunk with its fences."""
    chunks: list[str] = []
    current: list[str] = []
    fence = ""
    for line in text.splitlines():
        if fence:
            current.append(line)
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                chunks.append("\n".join(current))
                current, fence = [], ""
        elif m := FENCE.match(line):
            if current:
                chunks.append("\n".join(current))
            current, fence = [line], m.group(1)
        elif not line.strip():
            if current:
                chunks.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        chunks.append("\n".join(current))
    return chunks


def _block(chunk: str, markdown: bool) -> Block:
    """A paragraph, heading, list or fenced code block; Markdown ones keep their source. In plain text, a fenced
    block and a paragraph set out in fixed-width columns (``preformatted``) are code blocks, their spacing kept."""
    source = chunk.rstrip()
    para = source.strip()
    kind, level, body, attrs = "text", 0, para, {}
    if m := FENCE.match(source):
        lines = source.splitlines()
        closed = len(lines) > 1 and lines[-1].strip().startswith(m.group(1))
        kind, body = "code", "\n".join(lines[1 : -1 if closed else None])
        attrs.update(language=m.group(2), markdown=fenced(body, m.group(2)))
    elif not markdown and preformatted(source):
        kind, body = "code", "\n".join(line.rstrip() for line in source.splitlines())
        attrs.update(preformatted=True, markdown=fenced(body))
    elif markdown and (m := HEADING.match(para.splitlines()[0])):  # plain text: a "#" is text ("# of items: 5")
        kind, level, body = "heading", len(m.group(1)), "\n".join([m.group(2), *para.splitlines()[1:]])
    elif LIST_ITEM.match(para):
        kind = "list"
    if markdown:
        attrs["markdown"] = source
    return Block(kind=kind, text=body, bbox=(0, 0, 0, 0), order=0, level=level, attrs=attrs)


def preformatted(chunk: str) -> bool:
    """Whether a plain text paragraph is set out in fixed-width columns, so that its spacing is part of its meaning:
    a text table whose columns line up (runs of two or more spaces or a tab at the same place on three lines in a
    row, or at two places on two lines), a table or picture drawn with box characters or ``+--+``/``|`` rules, or
    indentation nested three levels deep (code, an outline, a poem). A sentence's two spaces after its full stop do
    not count as a column."""
    tabbed = chunk.replace("\t", "  \t")  # a tab is a gap between columns however few spaces it stands for
    lines = [line.expandtabs(8) for line in tabbed.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    if sum(1 for line in lines if BOX_DRAWING.search(line)) >= 2:
        return True
    if any(RULE_LINE.match(line) for line in lines) and sum(1 for line in lines if line.lstrip()[:1] in "|+") >= 2:
        return True
    if len({len(line) - len(line.lstrip()) for line in lines}) >= 3:
        return True
    gaps = [{i for m in COLUMN_GAP.finditer(line) for i in range(m.start(), m.end())} for line in lines]
    if any(a & b & c for a, b, c in zip(gaps, gaps[1:], gaps[2:], strict=False)):
        return True
    return any(len(_runs(a & b)) >= 2 for a, b in zip(gaps, gaps[1:], strict=False))


def _runs(columns: set[int]) -> list[int]:
    """The first column of each run of consecutive columns."""
    return [c for c in sorted(columns) if c - 1 not in columns]
