"""Listings in a PDF's text layer: lines set in a monospaced font (code, a struct, a terminal session) as one code
block with each line's indentation and inner spacing kept, where they were joined into a paragraph before.

A line is monospaced when nearly all its characters are in a font PyMuPDF flags as monospaced (flag 8) or whose name
says so (Courier, ...Mono, Consolas, LaTeX's cmtt). Monospaced lines one under the other in a column make a listing
(a gap of a few blank lines, or a part of a row that PyMuPDF set apart, such as a comment far to the right, stays in
it); a line in another font between them ends it. Characters are put in columns by their position, ``(x - the
listing's left edge) / the font's advance``, so that indentation drawn by position (no space characters) and by
spaces comes out alike, and a vertical gap of a line or more is a blank line.

Left as text: a monospaced line alone inside a paragraph (an identifier that wrapped onto a line of its own) unless
it is set in from the paragraph's edge or follows a line ending in a colon; lines set larger than the body (a
heading in a typewriter face); and, on a page whose body is monospaced (a typescript, a screenplay), the paragraphs
that do not read as code (braces, semicolons, assignments, calls, comments).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from statistics import median

from inference.documents.model import Block

MONO_FONT = re.compile(r"mono|courier|consol|menlo|inconsolata|typewriter|cmtt|lmtt|code", re.I)
MONO_SHARE = 0.9  # of a line's characters in a monospaced font, for the line to be monospaced
HEADING_SIZE = 1.18  # a line this many times the body's size is heading type, never code
MONO_BODY = 0.5  # a page with this share of its characters monospaced has a monospaced body
CODE_MARKS = re.compile(r"[{};=<>\[\]]|\w\(|^\s*#")  # braces, assignments, calls, comments and directives
CODE_ROWS = 0.3  # on a monospaced page, the share of a paragraph's rows that must read as code
GAP_LINES = 3.5  # a vertical gap up to this many lines (blank lines) stays inside a listing
MAX_BLANK_ROWS = 2


@dataclass
class Listing:
    """Monospaced lines (PyMuPDF line dicts) that read as one block of code, and their box."""

    lines: list[dict] = field(default_factory=list)
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def add(self, line: dict) -> None:
        self.bbox = _union([line["bbox"], *([self.bbox] if self.lines else [])])
        self.lines.append(line)

    @property
    def rows(self) -> int:
        return len(_rows(self.lines))


def is_mono(span: dict) -> bool:
    return bool(span.get("flags", 0) & 8) or bool(MONO_FONT.search(span.get("font", "")))


def find_listings(text_blocks: list[dict], body: float) -> list[Listing]:
    """The page's listings, in the order their first lines come."""
    candidates = {id(ln) for b in text_blocks for ln in _listing_lines(b, body)}
    listings: list[Listing] = []
    open_: list[Listing] = []
    for ln in (ln for b in text_blocks for ln in b["lines"] if ln["text"].strip()):
        if id(ln) not in candidates:
            open_ = [lst for lst in open_ if not _below_in_column(ln, lst)]  # text in between ends a listing
            continue
        home = next((lst for lst in open_ if _continues(lst, ln)), None)
        if home is None:
            home = Listing()
            listings.append(home)
            open_.append(home)
        home.add(ln)
    if _mono_share(text_blocks) >= MONO_BODY:  # a typescript: only its paragraphs that read as code
        listings = [part for lst in listings for part in _code_parts(lst)]
    return listings


def without_listings(text_blocks: list[dict], listings: list[Listing]) -> list[dict]:
    """The text blocks without the listings' lines, a block cut where a listing took lines from its middle (the
    paragraph before a listing never runs on into the one after it)."""
    taken = {id(ln) for lst in listings for ln in lst.lines}
    out = []
    for b in text_blocks:
        if not any(id(ln) in taken for ln in b["lines"]):
            out.append(b)
            continue
        part: list[dict] = []
        for ln in [*b["lines"], None]:
            if ln is not None and id(ln) not in taken:
                part.append(ln)
            elif part:
                out.append(dict(b, lines=part, bbox=_union([x["bbox"] for x in part])))
                part = []
    return out


def listing_block(listing: Listing) -> Block:
    """A listing as a code block: its rows with the columns they are set in."""
    rows = _rows(listing.lines)
    advance = _advance(listing.lines)
    left = min(c["bbox"][0] for ln in listing.lines for s in ln["spans"] for c in s["chars"] if c["c"].strip())
    pitch = _pitch(rows)
    out: list[str] = []
    for i, row in enumerate(rows):
        if i and pitch:
            gap = row[0] - rows[i - 1][0]
            out.extend([""] * min(MAX_BLANK_ROWS, max(0, round(gap / pitch) - 1)))
        out.append(_row_text(row[1], left, advance))
    sizes = [s["size"] for ln in listing.lines for s in ln["spans"] if s["text"].strip()]
    attrs = {"size": round(median(sizes), 2), "monospace": True, "language": ""}
    return Block(kind="code", text="\n".join(out), bbox=listing.bbox, order=0, attrs=attrs)


def _listing_lines(block: dict, body: float) -> list[dict]:
    """The block's lines that may belong to a listing: monospaced lines in body type, except one alone among
    lines of prose, unless it is set in from them or follows a line ending in a colon (``Run:`` ``make``)."""
    lines = [ln for ln in block["lines"] if ln["text"].strip()]
    mono = [_mono_line(ln, body) for ln in lines]
    if all(mono) or not any(mono):
        return lines if all(mono) else []
    prose_left = min(ln["bbox"][0] for ln, m in zip(lines, mono, strict=True) if not m)
    found = []
    for i, (ln, m) in enumerate(zip(lines, mono, strict=True)):
        if not m:
            continue
        alone = not (i and mono[i - 1]) and not (i + 1 < len(lines) and mono[i + 1])
        size = ln["spans"][0]["size"]
        set_in = ln["bbox"][0] - prose_left > 0.5 * size
        after_colon = i > 0 and lines[i - 1]["text"].rstrip().endswith(":")
        if not alone or set_in or after_colon:
            found.append(ln)
    return found


def _mono_line(line: dict, body: float) -> bool:
    chars = [(c, s) for s in line["spans"] for c in s["chars"] if c["c"].strip()]
    if not chars:
        return False
    size = max(s["size"] for _, s in chars)
    return sum(1 for _, s in chars if is_mono(s)) >= MONO_SHARE * len(chars) and size < HEADING_SIZE * body


def _continues(listing: Listing, line: dict) -> bool:
    """Whether ``line`` goes on ``listing``: under it in its column within a few blank lines, or on one of its rows
    to the right (a part of the row PyMuPDF set apart)."""
    x0, y0, x1, y1 = line["bbox"]
    lx0, _, lx1, ly1 = listing.bbox
    size = line["spans"][0]["size"]
    last = listing.lines[-1]
    if abs(last["spans"][0]["size"] - size) > 0.1 * size:
        return False
    if min(x1, lx1) > max(x0, lx0) and -0.5 * size <= y0 - ly1 <= GAP_LINES * size * 1.2:
        return True
    baseline = _baseline(line)
    return any(
        abs(_baseline(ln) - baseline) < 0.3 * size and 0 <= x0 - ln["bbox"][2] < 30 * size for ln in listing.lines
    )


def _below_in_column(line: dict, listing: Listing) -> bool:
    x0, y0, x1, _ = line["bbox"]
    lx0, _, lx1, ly1 = listing.bbox
    return min(x1, lx1) > max(x0, lx0) and y0 >= ly1 - 1


def _rows(lines: list[dict]) -> list[tuple[float, list[dict]]]:
    """The listing's lines grouped into rows by their baseline, top to bottom, each row's lines left to right."""
    rows: list[tuple[float, list[dict]]] = []
    for ln in sorted(lines, key=_baseline):
        size = ln["spans"][0]["size"]
        if rows and abs(rows[-1][0] - _baseline(ln)) < 0.3 * size:
            rows[-1][1].append(ln)
        else:
            rows.append((_baseline(ln), [ln]))
    return [(y, sorted(lns, key=lambda ln: ln["bbox"][0])) for y, lns in rows]


def _advance(lines: list[dict]) -> float:
    """The listing's character pitch: the usual step between neighbouring glyphs (a typesetter may set code wider
    than its glyphs: LaTeX's listings gives CMTT's 0.525 em glyphs 0.6 em), else the glyphs' width."""
    steps, widths = [], []
    for ln in lines:
        chars = [c for s in ln["spans"] for c in s["chars"] if c["c"].strip()]
        widths += [c["bbox"][2] - c["bbox"][0] for c in chars if c["bbox"][2] > c["bbox"][0]]
        steps += [b["bbox"][0] - a["bbox"][0] for a, b in zip(chars, chars[1:], strict=False)]
    glyph = median(widths) if widths else 0.6 * lines[0]["spans"][0]["size"]  # Courier's advance
    near = [s for s in steps if 0.8 * glyph <= s <= 1.4 * glyph]  # neighbours in a word, not across a space
    return median(near) if near else glyph


def _row_text(lines: list[dict], left: float, advance: float) -> str:
    """One row's characters, each at the column its position gives: a glyph right after the one before goes in
    the next column (positions jitter), one further on where its distance from the left edge says."""
    out = ""
    last = None
    for ln in lines:
        for span in ln["spans"]:
            for c in span["chars"]:
                if not c["c"].strip():
                    continue
                x = c["bbox"][0]
                if last is not None and x - last < 1.5 * advance:
                    out += c["c"]
                else:
                    column = round((x - left) / advance)
                    out = out.ljust(max(column, len(out) + (1 if last is not None else 0))) + c["c"]
                last = x
    return out.rstrip()


def _pitch(rows: list[tuple[float, list[dict]]]) -> float:
    """The distance between the baselines of consecutive rows with no blank line between them (the steps near the
    smallest: a blank line makes a step of two)."""
    steps = [b[0] - a[0] for a, b in zip(rows, rows[1:], strict=False)]
    return median(s for s in steps if s <= 1.5 * min(steps)) if steps else 0.0


def _baseline(line: dict) -> float:
    spans = [s for s in line["spans"] if s["text"].strip()] or line["spans"]
    return spans[0]["origin"][1]


def _mono_share(text_blocks: list[dict]) -> float:
    total = mono = 0
    for b in text_blocks:
        for ln in b["lines"]:
            for s in ln["spans"]:
                n = len(s["text"].strip())
                total += n
                mono += n if is_mono(s) else 0
    return mono / total if total else 0.0


def _code_parts(listing: Listing) -> list[Listing]:
    """The runs of the listing's paragraphs (rows apart from the others by a blank line) that read as code: a share
    of their rows with braces, semicolons, assignments, calls or comments."""
    rows = _rows(listing.lines)
    pitch = _pitch(rows)
    paragraphs: list[list[tuple[float, list[dict]]]] = []
    for i, row in enumerate(rows):
        if not i or row[0] - rows[i - 1][0] > 1.5 * pitch:
            paragraphs.append([])
        paragraphs[-1].append(row)
    parts: list[Listing] = []
    joined = False  # the paragraph before was code: this one goes on the same listing
    for para in paragraphs:
        texts = [" ".join(ln["text"] for ln in lines) for _, lines in para]
        if sum(1 for t in texts if CODE_MARKS.search(t)) < CODE_ROWS * len(texts):
            joined = False
            continue
        if not joined:
            parts.append(Listing())
        for _, lines in para:
            for ln in lines:
                parts[-1].add(ln)
        joined = True
    return parts


def _union(boxes: list[tuple]) -> tuple[float, float, float, float]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
