"""Benchmark: character error rate and seconds per page of Tesseract (the nearest installed language, through the
builtin parse with ``--ocr-lang``), RapidOCR (the PP-OCR models inside its wheel, on the image as it is) and the
builtin parse as it chooses by script ("pipeline") on the same scanned pages in several scripts.

The pages are drawn here (tests/ocr_pages.py: known lines, a slight turn, blur and noise); a script whose font is
not installed is left out. CER is the edit distance between the reference and the output with all white space
removed (so that line joining does not count), over the reference's length; a page the parse names as not read
(no model for its script) scores 1.0 with "named" in its row. One line per page and engine, then a summary.

    .venv/bin/python -m tests.benchmarks.ocr_scripts [--pages en,de,zh,...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import unicodedata
from pathlib import Path


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def cer(reference: str, output: str) -> float:
    ref = "".join(unicodedata.normalize("NFKC", reference).split())
    out = "".join(unicodedata.normalize("NFKC", output).split())
    return edit_distance(ref, out) / max(1, len(ref))


TESSERACT_LANG = {"zh": "jpn", "ja": "jpn", "de": "deu"}  # the nearest installed model; eng for the rest


def tesseract(path: Path, lang: str | None = None) -> tuple[str, str]:
    from inference.documents import open_document
    from inference.tasks import BuiltinEngine, ParseOptions

    result = BuiltinEngine().parse(open_document(path), ParseOptions(ocr_lang=lang))
    page = result.document.pages[0]
    how = page.reading
    named = "named" if any("was not read" in n for n in page.attrs.get("notes", ())) else ""
    return page.text, f"{how.get('engine', '')} {how.get('lang', '')} {named}".strip()


def rapid(path: Path) -> tuple[str, str]:
    from inference.ocr.rapid import rapid_engine

    out = rapid_engine()(str(path))
    return "\n".join(out.txts or ()), "rapidocr PP-OCRv6"


def main() -> None:
    from tests.ocr_pages import SCRIPT_PAGES, has_font, script_lines, script_page

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default=",".join([*SCRIPT_PAGES, "ja-vertical"]))
    args = parser.parse_args()
    totals: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.pages.split(","):
            base = name.removesuffix("-vertical")
            if not has_font(base):
                print(f"{name}: font not installed, left out")
                continue
            path = Path(tmp) / f"{name}.png"
            script_page(base, vertical=name.endswith("-vertical")).save(path)
            reference = "".join(script_lines(base))
            lang = TESSERACT_LANG.get(base, "eng")
            readers = (
                ("tesseract", lambda p, lang=lang: tesseract(p, lang)),
                ("rapidocr", rapid),
                ("pipeline", tesseract),
            )
            for engine, read in readers:
                start = time.perf_counter()
                text, how = read(path)
                seconds = time.perf_counter() - start
                score = cer(reference, text)
                totals.setdefault(engine, []).append(seconds)
                shown = " ".join(text.split())[:60]
                print(f"{name:12} {engine:9} cer={score:.3f} s={seconds:.2f} [{how}] {shown}")
    for engine, seconds in totals.items():
        print(f"{engine}_seconds_per_page={sum(seconds) / len(seconds):.2f}")


if __name__ == "__main__":
    main()
