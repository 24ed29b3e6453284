"""Benchmark: text-layer ingestion of the PDFs under ../shared/data against pymupdf4llm, in the same run.

Both read every page of every PDF (our ``open_document``: blocks, headings, lists, tables, figures, scan
detection; pymupdf4llm: ``to_markdown``), alternating file by file, three rounds; pages/s from the median round.
Then the time to open a synthetic 1000-page PDF and render its first page. The last line is
``ingest_ratio=<our pages/s / pymupdf4llm pages/s>``.

    .venv/bin/python -m tests.benchmarks.ingest [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import pymupdf
    import pymupdf4llm

    from inference.documents import open_document
    from inference.errors import IngestError

    files = []
    for path in sorted(DATA.rglob("*.pdf")):
        try:
            with pymupdf.open(path) as pdf:
                files.append((path, pdf.page_count))
        except Exception:  # noqa: BLE001 - files neither tool can open are left out of both
            continue
    pages = sum(n for _, n in files)
    ours_rounds, theirs_rounds = [], []
    for _ in range(args.rounds):
        ours = theirs = 0.0
        for path, _n in files:
            t0 = time.perf_counter()
            with contextlib.suppress(IngestError):
                open_document(path)
            ours += time.perf_counter() - t0
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
                pymupdf4llm.to_markdown(str(path))
            theirs += time.perf_counter() - t0
        ours_rounds.append(ours)
        theirs_rounds.append(theirs)
    ours_pps = pages / statistics.median(ours_rounds)
    theirs_pps = pages / statistics.median(theirs_rounds)
    print(f"{len(files)} PDFs, {pages} pages, {args.rounds} rounds")
    print(f"ours:        median {statistics.median(ours_rounds):.2f} s  -> {ours_pps:.1f} pages/s")
    print(f"pymupdf4llm: median {statistics.median(theirs_rounds):.2f} s  -> {theirs_pps:.1f} pages/s "
          f"(pymupdf4llm {getattr(pymupdf4llm, '__version__', '?')})")

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "thousand.pdf"
        pdf = pymupdf.open()
        for i in range(1000):
            pdf.new_page().insert_text((72, 72), f"Page {i + 1}: " + "lorem ipsum dolor sit amet " * 8)
        pdf.save(big)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            doc = open_document(big)
            doc.render(1, dpi=96)
            times.append(time.perf_counter() - t0)
        print(f"1000-page PDF: open (all pages' text) + render page 1: median {statistics.median(times):.2f} s")
    print(f"ingest_ratio={ours_pps / theirs_pps:.2f}")


if __name__ == "__main__":
    main()
