"""Plain text made safe to write into Markdown: what a CommonMark renderer would take for markup is escaped, so that
the rendered page shows the text as it was read.

Without this, text that mentions a tag (``<config>``, ``List<T>``) vanishes as raw HTML, ``&copy;`` turns into a
sign, ``2*3*4`` loses its stars to emphasis, and a line that starts with ``# `` or ``>`` becomes a heading or a
quote. Only what a renderer would swallow is escaped (a backslash before it, which CommonMark drops): ``a < b``,
``C++``, ``snake_case`` and a lone ``*`` stay as they are, and so does everything inside a code span. Text that is
Markdown already (a ``.md`` file's source, code blocks) never comes here.

Used by the Markdown writer (``inference.tasks.markdown``) and by the backends that write Markdown lists of their
own (HTML, Word, PowerPoint).
"""

from __future__ import annotations

import re

TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # a tag, a comment, an autolink: raw HTML to a renderer
ENTITY = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
BACKSLASH = re.compile(r"\\(?=[!-/:-@\[-`{-~])")  # a backslash before punctuation would escape it
# a line that opens a block: a heading, a quote, a fence, a setext underline or a thematic break
LINE_START = re.compile(
    r"^([ \t]*)(?=#{1,6}(?:[ \t]|$)|>|`{3,}|~{3,}|=+[ \t]*$|-+[ \t]*$|(?:[*_][ \t]*){3,}$|(?:-[ \t]*){3,}$)", re.M
)
MARKUP = re.compile(rf"{BACKSLASH.pattern}|{TAG_START.pattern}|{ENTITY.pattern}")
SPECIAL = re.compile(r"[\\<&*_`]")  # text without these needs only its line starts looked at
HEADING_CLOSE = re.compile(r"(^|[ \t])(#+[ \t]*)$")  # "Section #": a closing sequence to a renderer


def escape_markdown(text: str, block: bool = True) -> str:
    """``text`` as Markdown that renders as ``text``. ``block``: the text starts lines of its own (a paragraph, a
    list item's text), so that line starts that open a block are escaped too; table cells and headings are inline.
    Code spans (text between matching backticks) are kept as they are: a renderer shows them literally."""
    if not SPECIAL.search(text):
        return LINE_START.sub(r"\1\\", text) if block else text
    parts = _split_code_spans(text)
    plain = "".join(p for p, code in parts if not code)
    free = {ch for ch in "*_" if len(_free_marks(plain, ch)) >= 2}  # one star alone never makes emphasis
    out = "".join(p if code else _escape_plain(p, free) for p, code in parts)
    return LINE_START.sub(r"\1\\", out) if block else out


def escape_heading(text: str) -> str:
    """A heading's text, on one line, escaped; a trailing ``#`` is kept (a renderer takes it for a closing mark)."""
    text = escape_markdown(" ".join(text.split("\n")), block=False)
    return HEADING_CLOSE.sub(r"\1\\\2", text)


def _split_code_spans(text: str) -> list[tuple[str, bool]]:
    """``text`` cut into (part, is_code_span) in order. A run of three or more backticks at a line's start opens a
    fence, not a span: it stays in the plain text (and is escaped there)."""
    parts: list[tuple[str, bool]] = []
    pos = start = 0
    for m in re.finditer(r"`+", text):
        if m.start() < pos:
            continue
        run = m.group()
        at_line_start = not text[text.rfind("\n", 0, m.start()) + 1 : m.start()].strip()
        if len(run) >= 3 and at_line_start:
            continue
        close = re.compile(rf"(?<!`){run}(?!`)").search(text, m.end())
        if close is None:
            continue
        parts.append((text[start : m.start()], False))
        parts.append((text[m.start() : close.end()], True))
        pos = start = close.end()
    parts.append((text[start:], False))
    return [p for p in parts if p[0]]


def _free_marks(text: str, ch: str) -> list[int]:
    """Where ``ch`` (``*`` or ``_``) could open or close emphasis: next to text on at least one side, and for ``_``
    not inside a word (``snake_case`` never emphasises)."""
    found = []
    for i, c in enumerate(text):
        if c != ch:
            continue
        before, after = text[i - 1 : i], text[i + 1 : i + 2]
        if not (before.strip() or after.strip()):
            continue
        if ch == "_" and before.isalnum() and after.isalnum():
            continue
        found.append(i)
    return found


def _escape_plain(text: str, free: set[str]) -> str:
    """Text outside code spans with a backslash before each character a renderer would take for markup."""
    if not free:
        return MARKUP.sub(r"\\\g<0>", text)
    marks = {i for ch in free for i in _free_marks(text, ch)}
    out = []
    for i, c in enumerate(text):
        if (
            i in marks
            or (c == "\\" and BACKSLASH.match(text, i))
            or (c == "<" and TAG_START.match(text, i))
            or (c == "&" and ENTITY.match(text, i))
        ):
            out.append("\\")
        out.append(c)
    return "".join(out)
