"""Benchmark: OCR of 8 scanned pages with one worker and with ``--jobs`` workers, in the same run.

The pages are made here (text drawn, rendered to a 200 dpi grey picture, only the picture kept), so the figure
does not depend on the shared data. Each setting runs ``--rounds`` times, alternating; the median is used. The
last line is ``ocr_jobs_speedup=<time with 1 job / time with N jobs>``.

    .venv/bin/python -m tests.benchmarks.ocr_jobs [--jobs 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

LINES = [
    "Block diffusion drafts a canvas of tokens and refines it step by step,",
    "accepting the positions it is sure of and masking the rest again.",
    "Scanned pages are cleaned, deskewed and read by Tesseract one paragraph",
    "at a time; the words keep their boxes for the searchable PDF.",
]


def scanned_pdf(path: Path, pages: int = 8) -> None:
    import pymupdf

    drawn, scan = pymupdf.open(), pymupdf.open()
    for n in range(pages):
        page = drawn.new_page()
        for i in range(24):
            page.insert_text((60, 70 + i * 30), f"{n + 1}.{i + 1} {LINES[i % len(LINES)]}", fontsize=11)
        pix = page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
        scan.new_page().insert_image(page.rect, stream=pix.tobytes("png"))
    scan.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from inference.documents import open_document
    from inference.tasks.base import ParseOptions
    from inference.tasks.builtin import BuiltinEngine

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scan.pdf"
        scanned_pdf(path)
        doc = open_document(path)
        engine = BuiltinEngine()
        times: dict[int, list[float]] = {1: [], args.jobs: []}
        words: dict[int, int] = {}
        for _ in range(args.rounds):
            for jobs in times:
                started = time.perf_counter()
                result = engine.parse(doc, ParseOptions(ocr_jobs=jobs, ocr_lang="eng"))
                times[jobs].append(time.perf_counter() - started)
                words[jobs] = len(result.markdown.split())
        for jobs, runs in times.items():
            print(f"jobs={jobs} median_s={statistics.median(runs):.2f} words={words[jobs]}")
        print(f"ocr_jobs_speedup={statistics.median(times[1]) / statistics.median(times[args.jobs]):.2f}")


if __name__ == "__main__":
    main()
