"""Checking and correcting OCR: the words of an OCR'd page with Tesseract's confidence each, counts of the unsure
ones, and a correction that reaches everything made from the parse (its blocks' text, its Markdown, so every export,
the searchable PDF's text layer, and the builtin Ask, which reads the blocks).

An OCR block keeps its words as ``attrs["words"]``: ``[text, x0, y0, x1, y1, confidence]`` in page points, the
confidence Tesseract's (0-100) or None where it gave none. A corrected word keeps what OCR read in
``attrs["edited"]`` (word index -> the text as read) and counts as checked, never as unsure again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inference.documents.model import UNSURE_WORD

LOW_CONFIDENCE = UNSURE_WORD  # Tesseract's word confidence under which a word is worth a look (marked in Markdown)
HIGH_CONFIDENCE = 85.0  # at or above: shown as confident


@dataclass(frozen=True)
class OcrWord:
    page: int
    block: int  # the block's order on the page
    index: int  # the word's index in the block's words
    text: str
    box: tuple[float, float, float, float]  # page points
    confidence: float | None  # 0-100; None: Tesseract gave none
    edited_from: str | None = None  # what OCR read, when the word was corrected

    @property
    def unsure(self) -> bool:
        """Below LOW_CONFIDENCE and not corrected since."""
        return self.edited_from is None and self.confidence is not None and self.confidence < LOW_CONFIDENCE


def page_words(page: Any) -> list[OcrWord]:
    """The OCR words of a page (``Page``), block by block in reading order."""
    out = []
    for blk in sorted(page.blocks, key=lambda b: b.order):
        words = (blk.attrs or {}).get("words") or []
        edited = (blk.attrs or {}).get("edited") or {}
        for i, w in enumerate(words):
            if len(w) < 5:
                continue
            conf = w[5] if len(w) > 5 and w[5] is not None else None
            box = (float(w[1]), float(w[2]), float(w[3]), float(w[4]))
            out.append(OcrWord(page.number, blk.order, i, str(w[0]), box, conf, edited.get(str(i))))
    return out


def unsure_counts(document: Any) -> dict[int, int]:
    """Page number -> how many of its OCR words are unsure (pages without any left out)."""
    counts = {}
    for page in document.pages:
        n = sum(w.unsure for w in page_words(page))
        if n:
            counts[page.number] = n
    return counts


def describe_counts(counts: dict[int, int], at_most: int = 4) -> str:
    """``unsure words: p. 1: 3, p. 2: 11`` for the document list (the first pages, then how many more)."""
    if not counts:
        return ""
    pages = sorted(counts)
    shown = ", ".join(f"p. {p}: {counts[p]}" for p in pages[:at_most])
    more = f", +{len(pages) - at_most} p." if len(pages) > at_most else ""
    return f"unsure words: {shown}{more}"


def _replace_word(text: str, words: list[str], index: int, new: str) -> str:
    """``text`` with the ``index``-th of ``words`` (the block's words in order) replaced by ``new``: each word found
    after the one before it, so that an earlier word with the same spelling stays as it is."""
    pos = 0
    for i, word in enumerate(words):
        at = text.find(word, pos)
        if at < 0:
            break
        if i == index:
            return text[:at] + new + text[at + len(word) :]
        pos = at + len(word)
    old = words[index]
    return text.replace(old, new, 1) if old in text else text


def correct_word(parsed: Any, page_number: int, block_order: int, index: int, text: str) -> OcrWord:
    """Correct one OCR word of ``parsed`` (a ``ParseResult``) in place: the word, its block's text (and table
    cells), and the Markdown of a builtin parse. Returns the word as it is now."""
    text = " ".join(text.split())
    if not text:
        raise ValueError("a word cannot be corrected to nothing")
    page = parsed.document.pages[page_number - 1]
    blk = next(b for b in page.blocks if b.order == block_order)
    words = blk.attrs["words"]
    old = str(words[index][0])
    blk.text = _replace_word(blk.text, [str(w[0]) for w in words], index, text)
    if blk.rows:
        blk.rows = [[cell.replace(old, text, 1) if old in cell.split() else cell for cell in row] for row in blk.rows]
    edited = blk.attrs.setdefault("edited", {})
    edited.setdefault(str(index), old)
    if edited[str(index)] == text:  # corrected back to what OCR read
        del edited[str(index)]
    words[index] = [text, *words[index][1:]]
    page.count_unsure()
    if parsed.engine == "builtin":
        from inference.tasks.markdown import page_markdown

        parsed.pages[page_number - 1] = page_markdown(page)
        parsed.markdown = "\n\n".join(p for p in parsed.pages if p).strip() + "\n"
    return next(w for w in page_words(page) if w.block == block_order and w.index == index)


def reviewable(parsed: Any) -> bool:
    """Whether a parse has OCR words to review."""
    return parsed is not None and any(page_words(p) for p in parsed.document.pages)
