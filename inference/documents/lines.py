"""Lines of text as readers see them: list marks, paragraph joins, and text cleaned where it enters the model.

Used by every reader that produces lines (the PDF text layer, OCR) and by the Markdown writer, so that a list mark,
a hyphenated line end or a ligature means the same thing whatever read it.
"""

from __future__ import annotations

import re
import unicodedata

# a list item's mark; U+FFFD: a bullet glyph of a symbol font with no Unicode map
BULLET = re.compile(r"^\s*(?:[-•▪‣◦●*·–®¢■□◆◇▶►▸➢➤✓✔❖○◼◾]|\ufffd+|\(?[0-9]{1,3}[.)]|\(?[a-zA-Z][.)])\s+")
# a bullet glyph (not a number or a letter: "2. Methods" may be a heading), then text
MARKED = re.compile(r"^\s*(?:[•▪‣◦●■□◆◇▶►▸➢➤✓✔❖○◼◾]|\ufffd)\s*\S")
LONE_BULLET = re.compile(r"\s*[•▪‣◦●·■□◆◇▶►▸➢➤✓✔❖○◼◾]\s*")
SOFT_HYPHEN = "\u00ad"
# Latin ligature characters (U+FB00-FB06) and their letters: NFKC of these is always safe (search, spelling)
LIGATURES = {chr(c): unicodedata.normalize("NFKC", chr(c)) for c in range(0xFB00, 0xFB07)}
_LIGATURE = re.compile("[\ufb00-\ufb06]")


def expand_ligatures(text: str) -> str:
    """``ﬁ`` -> ``fi``, ``ﬄ`` -> ``ffl``: the letters a ligature glyph stands for (nothing else is folded)."""
    return _LIGATURE.sub(lambda m: LIGATURES[m.group()], text) if _LIGATURE.search(text) else text


def attach_lone_bullets(lines: list[str]) -> list[str]:
    """A bullet glyph set as a line of its own (its item's text starts a little to the right: a separate line to
    PyMuPDF) goes back to the front of the line after it, so that the block reads as a list, item by item."""
    out: list[str] = []
    for line in lines:
        if out and LONE_BULLET.fullmatch(out[-1]):
            out[-1] = f"{out[-1].strip()} {line.strip()}"
        else:
            out.append(line)
    return out


def join_lines(lines: list[str]) -> str:
    """Lines of one paragraph as one string: a word hyphenated across a line break (a hyphen or a soft hyphen at
    the line's end) is joined again, and soft hyphens inside lines (break points the layout did not use) go. A hard
    hyphen goes only before a lowercase letter (a word's rest); before a digit, a capital or a letter of a script
    without case it is part of the text and stays, the lines joined without a space (``COVID-`` ``19``, Hebrew
    ``ו-`` ``3``)."""
    return joined_lines(lines)[0]


_LINE_START = "\ue000"  # a private-use mark where a line starts, in place of the space, while the lines are joined


def joined_lines(lines: list[str], new_rows: list[bool] | None = None) -> tuple[str, list[int]]:
    """:func:`join_lines`, and where the printed lines after the first start: the index, in ``text.split()``, of
    each one's first word (a word joined across a line break belongs to the line it starts on). ``new_rows[i]``
    says whether ``lines[i]`` starts a printed line (False: a piece of the line before, set apart on the same
    baseline, as a table's cells are); all do by default. Quotes are cut at these where a paragraph's sentences run
    over many lines (an address, rows of a table set as text), so that a line comes out whole."""
    text = lines[0].rstrip()
    for i, line in enumerate(lines[1:], 1):
        line = line.strip()
        if text.endswith(SOFT_HYPHEN) or (text.endswith("-") and text[-2:-1].isalpha() and line[:1].islower()):
            text = text[:-1] + line
        elif text.endswith("-") and text[-2:-1].isalpha() and line[:1].isalnum():
            text += line
        elif not text:
            text = line
        else:
            text = f"{text}{_LINE_START if new_rows is None or new_rows[i] else ' '}{line}"
    text = drop_soft_hyphens(text)
    starts, words = [], 0
    for piece in text.split(_LINE_START)[:-1]:
        words += len(piece.split())
        if words and (not starts or starts[-1] != words):
            starts.append(words)
    return text.replace(_LINE_START, " "), starts


def drop_soft_hyphens(text: str) -> str:
    """Soft hyphens are break opportunities, never text: ``Be\\u00ad standteil`` -> ``Bestandteil``."""
    if SOFT_HYPHEN not in text:
        return text
    return re.sub(r"\u00ad\s*", "", text)
