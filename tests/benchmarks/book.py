"""A long born-digital book made here, the same every time: chapters with headings, paragraphs set with ligatures
(HarfBuzz shaping through PyMuPDF's Story), bullet lists, ruled tables, numbered notes at the end of each section,
and a running header and page number on every page.

    .venv/bin/python -m tests.benchmarks.book out.pdf [--chapters 70]

The prose is made from a fixed vocabulary by a seeded generator (no text is downloaded): English-like sentences
whose words include the ligature pairs (ff, fi, fl, ffi) that books set as one glyph.
"""

from __future__ import annotations

import argparse
import html
import random
from pathlib import Path

WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when if so no will more can its about up out them "
    "first office effort efforts significant flow fifty affair official different effect field figure final fine "
    "staff offer suffix traffic efficient sufficient difficult influence reflect flight floor fluid confident "
    "committee better letter little matter settle battle bottle harbour river valley mountain village country "
    "history account report council member chapter section table figure number record evidence question answer "
    "people morning evening winter summer garden window station market bridge engine silver stone water light "
    "measure season voyage journey company railway district province parish church school college library"
).split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 22))]
    if rng.random() < 0.15:
        words.insert(rng.randint(1, len(words) - 1), str(rng.randint(1700, 1950)))
    return words[0].capitalize() + " " + " ".join(words[1:]) + rng.choice(".....;?")[0].replace(";", ".")


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(3, 7)))


def chapter_html(rng: random.Random, number: int) -> str:
    out = [f"<h1>Chapter {number}. {sentence(rng)[:40].rstrip('.')}</h1>"]
    notes: list[str] = []
    for section in range(1, rng.randint(4, 6) + 1):
        out.append(f"<h2>{number}.{section} {' '.join(rng.choice(WORDS) for _ in range(3)).title()}</h2>")
        for _ in range(rng.randint(3, 6)):
            text = html.escape(paragraph(rng))
            if rng.random() < 0.3:
                notes.append(sentence(rng))
                text += f"<sup>{len(notes)}</sup>"
            out.append(f"<p>{text}</p>")
        if rng.random() < 0.5:
            items = "".join(f"<li>{html.escape(sentence(rng))}</li>" for _ in range(rng.randint(3, 6)))
            out.append(f"<ul>{items}</ul>")
        if rng.random() < 0.35:
            rows = "".join(
                f"<tr><td>{rng.choice(WORDS).title()}</td><td>{rng.randint(1, 999)}</td>"
                f"<td>{rng.randint(1, 99)}.{rng.randint(0, 99):02d}</td></tr>"
                for _ in range(rng.randint(4, 9))
            )
            out.append(
                "<table border='1' cellpadding='3'><tr><th>Parish</th><th>Families</th><th>Rate</th></tr>"
                f"{rows}</table>"
            )
    if notes:
        out.append("<h3>Notes</h3>")
        out.extend(f"<p style='font-size:8pt'>{i}. {html.escape(n)}</p>" for i, n in enumerate(notes, 1))
    return "\n".join(out)


def make_book(path: Path, chapters: int = 70, seed: int = 1851) -> int:
    """Write the book to ``path``; returns its page count (70 chapters: about 630 pages)."""
    import pymupdf

    rng = random.Random(seed)
    body = "\n".join(chapter_html(rng, n) for n in range(1, chapters + 1))
    css = (
        "body {font-family: serif; font-size: 11pt;} h1 {font-size: 20pt;} h2 {font-size: 14pt;} "
        "td, th {border: 0.5pt solid black; padding: 2pt;}"
    )
    story = pymupdf.Story(html=f"<body>{body}</body>", user_css=css)
    tmp = path.with_suffix(".story.pdf")
    writer = pymupdf.DocumentWriter(str(tmp))
    page_rect, where = pymupdf.paper_rect("a5"), pymupdf.paper_rect("a5") + (50, 60, -50, -60)
    more = True
    while more:
        device = writer.begin_page(page_rect)
        more, _ = story.place(where)
        story.draw(device)
        writer.end_page()
    writer.close()
    with pymupdf.open(tmp) as pdf:
        for page in pdf:
            page.insert_text((50, 40), "A History of the Northern Parishes", fontsize=8)
            page.insert_text((page_rect.width / 2 - 6, page_rect.height - 30), str(page.number + 1), fontsize=8)
        pdf.save(path, garbage=3, deflate=True)
        count = pdf.page_count
    tmp.unlink()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--chapters", type=int, default=70)
    args = parser.parse_args()
    print(f"{args.out}: {make_book(args.out, args.chapters)} pages")


if __name__ == "__main__":
    main()
