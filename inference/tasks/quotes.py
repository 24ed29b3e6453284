"""The builtin Ask's quotes: a page's quotable units (sentences, printed lines, table rows), the question's terms
(stemmed), and the window of units that answers the question best, its terms marked ``**bold**``.

A question that asks for an amount ("What is the total due?"), a date ("When ...?") or a count ("How many ...?")
is answered by a unit that holds one of the question's terms and a value of that kind ("Total due: 1,234.56"), so
such a window wins over one that only names the terms (a table's "Total" column heading, "total amount payable by
bank transfer").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

QUOTE_CHARS = 300  # a quote's length at most (a window of units that is longer is cut around its matches)
QUOTE_UNITS = 3  # units (lines, sentences, table rows) in a quote at most
LINES_PER_UNIT = 2  # a sentence over more printed lines than this (an address, table rows set as text) is cut at them

SUFFIXES = (
    "ational",
    "ization",
    "fulness",
    "iveness",
    "ations",
    "ation",
    "ments",
    "ment",
    "ings",
    "ing",
    "edly",
    "ies",
    "ied",
    "ers",
    "er",
    "ed",
    "es",
    "ly",
    "s",
)


def light_stem(word: str) -> str:
    """A small suffix stripper, enough for BM25 to match 'controls' with 'control' and 'masking' with 'mask'."""
    if len(word) <= 4 or not word.isalpha():
        return word
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            return stem + "y" if suffix in ("ies", "ied") else stem
    return word


def stem_words(words: list[str]) -> list[str]:
    """bm25s's stemmer: it is called on the list of the corpus's (or the query's) distinct words."""
    return [light_stem(w) for w in words]


def terms(text: str) -> set[str]:
    """The stems of ``text``'s words that are not English stopwords."""
    from bm25s.stopwords import STOPWORDS_EN

    return {light_stem(w) for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS_EN}


SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]?[A-Z0-9])")


def block_units(blk: Any) -> list[str]:
    """A block's quotable units: table rows, list items, lines of a key-value block, sentences of prose; a
    sentence that runs over more than ``LINES_PER_UNIT`` printed lines (``attrs["line_starts"]``: an address, a
    table set as text, a receipt) is cut at its lines, so that a row or a total line can be quoted alone."""
    if blk.kind == "table" and blk.rows:
        return [" | ".join(c.strip() for c in row if c.strip()) for row in blk.rows if any(c.strip() for c in row)]
    if blk.kind == "list" or "\n" in blk.text.strip():
        return [" ".join(ln.split()) for ln in blk.text.splitlines() if ln.strip()]
    words = blk.text.split()
    starts = [s for s in (blk.attrs or {}).get("line_starts") or () if isinstance(s, int) and 0 < s < len(words)]
    sentences = [s for s in SENTENCE_END.split(" ".join(words)) if s]
    if not starts:
        return sentences
    units, at = [], 0
    for sentence in sentences:
        end = at + len(sentence.split())
        inside = [s for s in starts if at < s < end]
        if len(inside) < LINES_PER_UNIT:
            units.append(sentence)
        else:
            cuts = [at, *inside, end]
            units += [" ".join(words[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
        at = end
    return units


# what a question asks for, by its words, and what a unit that answers it holds
AMOUNT = re.compile(
    r"[$€£¥]\s?\d|\d\s?(?:EUR|USD|GBP|CHF|JPY)\b|(?<![\d.,])\d{1,3}(?:[,. ]\d{3})*[.,]\d{2}(?![\d.,]*\d)", re.I
)
MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
DATE = re.compile(
    rf"\b\d{{1,4}}[./-]\d{{1,2}}[./-]\d{{1,4}}\b|\b\d{{1,2}}\s+{MONTH}\s+\d{{2,4}}\b|\b{MONTH}\s+\d{{1,2}},?\s+\d{{4}}\b"
    r"|\b(?:1[5-9]|20)\d{2}\b",
    re.I,
)
NUMBER = re.compile(r"\d")
ASKS_AMOUNT = re.compile(
    r"\b(?:how much|total|amount|price|cost|costs|sum|balance|pay|paid|payable|fee|fees|charge|charged|tax|vat"
    r"|subtotal|owed|owe|spent)\b",
    re.I,
)
ASKS_DATE = re.compile(r"\b(?:when|date|dated|year|deadline|which day|what day)\b", re.I)
ASKS_NUMBER = re.compile(r"\b(?:how many|how long|how old|how far|number of|count|quantity|percent|percentage)\b", re.I)


def asked_value(question: str) -> re.Pattern[str] | None:
    """What kind of value a question asks for, as the pattern a unit that answers it matches: an amount, a date,
    any number; None for other questions."""
    if ASKS_AMOUNT.search(question):
        return AMOUNT
    if ASKS_DATE.search(question):
        return DATE
    if ASKS_NUMBER.search(question):
        return NUMBER
    return None


@dataclass(frozen=True)
class Quote:
    text: str  # the window, cut to the limit, the question's terms marked **bold**
    found: int  # distinct question terms in the window
    answers: bool  # a unit of it holds a question term and a value of the kind the question asks for


def best_quote(passage: str, question: str, limit: int = QUOTE_CHARS) -> Quote:
    """The window of one to ``QUOTE_UNITS`` consecutive units of ``passage`` (its lines) that answers the question
    best: one that holds a value of the kind asked for beside a question term first (for a question that asks for
    one), then the most distinct question terms, then the fewest units, then the first. A window longer than
    ``limit`` is cut around the part that holds the most of its matches."""
    wanted = terms(question)
    value = asked_value(question)
    units = [u for u in passage.splitlines() if u.strip()] or [passage]
    answering = [value is not None and bool(wanted & terms(u)) and bool(value.search(u)) for u in units]
    best, best_key = (0, 1), (False, -1, 0)
    for i in range(len(units)):
        for n in range(1, min(QUOTE_UNITS, len(units) - i) + 1):
            found = len(wanted & terms(" ".join(units[i : i + n])))
            key = (any(answering[i : i + n]), found, -n)
            if key > best_key:
                best, best_key = (i, n), key
    i, n = best
    text = " ".join(units[i : i + n])
    if len(text) > limit:
        text = _cut(text, wanted, value, limit)
    return Quote(mark(text, wanted), best_key[1], best_key[0])


def quote(passage: str, question: str, limit: int = QUOTE_CHARS) -> str:
    """The text of :func:`best_quote`."""
    return best_quote(passage, question, limit).text


def _cut(text: str, wanted: set[str], value: re.Pattern[str] | None, limit: int) -> str:
    """``text`` cut to about ``limit`` characters at word boundaries, around the stretch that holds the most
    distinct question terms (and a value of the kind asked for, where one is asked for), with ellipses."""
    hits = [(m.start(), light_stem(m.group().lower())) for m in re.finditer(r"\w+", text)]
    hits = [(at, stem) for at, stem in hits if stem in wanted]

    def score(start: int) -> tuple[int, int, int]:
        part = text[start : start + limit]
        return (bool(value and value.search(part)), len({s for at, s in hits if start <= at < start + limit}), -start)

    starts = [max(0, at - limit // 3) for at, _ in hits] or [0]
    start = max(starts, key=score)
    start = text.rfind(" ", 0, start) + 1 if start else 0
    part = text[start : start + limit]
    cut = part if start + limit >= len(text) else part.rsplit(" ", 1)[0]
    return ("\u2026 " if start else "") + cut + (" \u2026" if start + len(cut) < len(text) else "")


def mark(text: str, wanted: set[str]) -> str:
    """Each word of ``text`` whose stem is wanted, set in ``**bold**`` (runs of them together)."""
    marked = re.sub(
        r"\w+", lambda m: f"**{m.group()}**" if light_stem(m.group().lower()) in wanted else m.group(), text
    )
    return re.sub(r"\*\*(\s+)\*\*", r"\1", marked)
