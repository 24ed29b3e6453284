"""Exports: Markdown, JSON, plain text, HTML, CSV per table. One set of serializers for the CLI and the window.

Every file is written atomically (a temporary file in the same folder, then ``os.replace``), so that a batch killed
mid-write never leaves half a file that a rerun would take for finished. Names derived from inputs are sanitised and
resolved inside the chosen output folder: nothing escapes it.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from inference.errors import ConfigError
from inference.files import write_atomic
from inference.tasks.base import Answer, Extraction, ParseResult
from inference.tasks.layout import FURNITURE
from inference.tasks.markdown import table_html, unsure_spans

FORMATS = ("md", "json", "txt", "html", "csv", "pdf")  # pdf: the searchable PDF (page images + invisible text)
UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


def parse_formats(spec: str | Iterable[str]) -> tuple[str, ...]:
    items = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [s for s in items if s not in FORMATS]
    if bad or not items:
        raise ConfigError(f"unknown export format {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(items))


def safe_name(name: str, fallback: str = "document") -> str:
    """A file name with no folder parts, no traversal, no control or reserved characters."""
    name = Path(name.replace("\\", "/")).name
    name = UNSAFE.sub("_", name).strip(" .")
    return name[:150] or fallback


def inside(root: Path, *parts: str) -> Path:
    """``root / parts`` with every part sanitised; raises if the result would leave ``root``."""
    root = root.resolve()
    target = root.joinpath(*[safe_name(p) for p in parts if p not in ("", ".")]).resolve()
    if target != root and root not in target.parents:
        raise ConfigError(f"refusing to write outside the output folder: {target}")
    return target


# serializers --------------------------------------------------------------------------------------------------------


def to_markdown(result: ParseResult) -> str:
    return result.markdown


def to_json(result: ParseResult) -> str:
    return json.dumps(result.to_json(), ensure_ascii=False, indent=1)


def to_text(result: ParseResult, furniture: bool = False) -> str:
    pages = []
    for page in result.document.pages:
        blocks = [b for b in sorted(page.blocks, key=lambda b: b.order) if furniture or b.kind not in FURNITURE]
        body = "\n\n".join(b.text.strip() for b in blocks if b.text.strip())
        pages.append(body)
    return "\n\n\f".join(pages).strip() + "\n"  # a form feed between pages, as pdftotext does


def to_html(result: ParseResult) -> str:
    doc = result.document
    out = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(doc.name)}</title></head><body>",
    ]
    for page in doc.pages:
        out.append(f'<section class="page" id="page-{page.number}" data-label="{html.escape(page.label)}">')
        for blk in sorted(page.blocks, key=lambda b: b.order):
            if blk.kind in FURNITURE:
                continue
            text = _html_text(blk).strip()
            if blk.kind == "code":  # verbatim: its indentation and columns are the content
                out.append(f"<pre><code>{html.escape(blk.text.strip(chr(10)))}</code></pre>")
            elif blk.kind == "heading":
                level = max(1, min(6, blk.level or 2))
                out.append(f"<h{level}>{text}</h{level}>")
            elif blk.kind == "list":
                items = "".join(f"<li>{i.strip()}</li>" for i in text.splitlines() if i.strip())
                out.append(f"<ul>{items}</ul>")
            elif blk.kind == "table" and blk.rows:
                out.append(table_html(blk.rows, blk.attrs.get("spans")))
            elif blk.kind == "figure":
                out.append('<figure class="image"></figure>')
            elif text:
                out.append(f"<p>{text}</p>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _html_text(blk: Any) -> str:
    """The block's text, escaped, its unsure OCR words in ``<mark>`` (as the Markdown sets them between ``==``)."""
    at, out = 0, []
    for start, end in unsure_spans(blk):
        out += [html.escape(blk.text[at:start]), "<mark>", html.escape(blk.text[start:end]), "</mark>"]
        at = end
    return "".join([*out, html.escape(blk.text[at:])])


def tables_csv(result: ParseResult) -> list[tuple[str, str]]:
    """(suffix, CSV text) for every table: ``_p<page>_t<n>``."""
    out = []
    for page in result.document.pages:
        n = 0
        for blk in sorted(page.blocks, key=lambda b: b.order):
            if blk.kind == "table" and blk.rows:
                n += 1
                buf = io.StringIO()
                csv.writer(buf, lineterminator="\n").writerows(blk.rows)
                out.append((f"_p{page.number}_t{n}", buf.getvalue()))
    return out


def write_parse(
    result: ParseResult,
    out_dir: Path,
    stem: str,
    formats: Iterable[str] = ("md",),
    per_page: bool = False,
    subdir: str = "",
) -> list[Path]:
    """Write one document's results; returns the files written (Markdown last, so it marks completion)."""
    written = []
    parts = [p for p in Path(subdir).parts if p not in ("", ".")]
    formats = parse_formats(list(formats))

    def target(name: str) -> Path:
        return inside(out_dir, *parts, name)

    for fmt in formats:
        if fmt == "json":
            written.append(write_atomic(target(f"{stem}.json"), to_json(result)))
        elif fmt == "txt":
            written.append(write_atomic(target(f"{stem}.txt"), to_text(result)))
        elif fmt == "html":
            written.append(write_atomic(target(f"{stem}.html"), to_html(result)))
        elif fmt == "pdf":
            from inference.searchable import to_searchable_pdf

            path = target(f"{stem}.pdf")
            if path == Path(result.document.source).resolve():  # never over the document it was read from
                path = target(f"{stem}.searchable.pdf")
            written.append(write_atomic(path, to_searchable_pdf(result)))
        elif fmt == "csv":
            for suffix, text in tables_csv(result):
                written.append(write_atomic(target(f"{stem}{suffix}.csv"), text))
    if "md" in formats:
        if per_page:
            for page, md in zip(result.document.pages, result.pages, strict=True):
                written.append(write_atomic(target(f"{stem}_pg{page.number}.md"), md.strip() + "\n"))
        else:
            written.append(write_atomic(target(f"{stem}.md"), to_markdown(result)))
    return written


def unique_stems(paths: Sequence[str | Path]) -> list[str]:
    """A file stem per document, unique among them (case-insensitively) so that no export overwrites another:
    ``linn.pdf`` and ``linn.txt`` give ``linn_pdf`` and ``linn_txt`` (as ``dwb parse`` names them); two ``a.pdf``
    from different folders give ``a`` and ``a-2``."""
    plain = [Path(p).stem for p in paths]
    counts: dict[str, int] = {}
    for stem in plain:
        counts[stem.lower()] = counts.get(stem.lower(), 0) + 1
    stems = [
        f"{stem}_{Path(p).suffix.lstrip('.').lower()}" if counts[stem.lower()] > 1 and Path(p).suffix else stem
        for stem, p in zip(plain, paths, strict=True)
    ]
    out: list[str] = []
    taken: set[str] = set()
    for stem in stems:
        unique, n = stem, 1
        while unique.lower() in taken:
            n += 1
            unique = f"{stem}-{n}"
        taken.add(unique.lower())
        out.append(unique)
    return out


def answer_markdown(answer: Answer) -> str:
    lines = [f"**Question:** {answer.question}", "", answer.text, ""]
    if answer.citations:  # each page once, in the order first cited (several passages may rest on one page)
        pages = dict.fromkeys(c.where for c in answer.citations)
        lines.append("Sources: " + "; ".join(pages))
    return "\n".join(lines).strip() + "\n"


def extraction_json(extraction: Extraction) -> str:
    return json.dumps(extraction.to_json(), ensure_ascii=False, indent=1)
