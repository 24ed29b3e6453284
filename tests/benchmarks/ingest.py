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
    print(
        f"pymupdf4llm: median {statistics.median(theirs_rounds):.2f} s  -> {theirs_pps:.1f} pages/s "
        f"(pymupdf4llm {getattr(pymupdf4llm, '__version__', '?')})"
    )

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
        runaway_page(Path(tmp))
    print(f"ingest_ratio={ours_pps / theirs_pps:.2f}")


def runaway_page(tmp: Path) -> None:
    """A map-like page with 59,000 vector paths, parsed by the builtin engine in a fresh process (peak memory)."""
    import subprocess
    import sys

    script = (
        "import random, resource, sys, time, pymupdf\n"
        "from inference.documents import open_document\n"
        "from inference.tasks import BuiltinEngine\n"
        "random.seed(7); pdf = pymupdf.open(); page = pdf.new_page(width=1190, height=842)\n"
        "page.insert_text((72, 60), 'Map of the district', fontsize=20); shape = page.new_shape()\n"
        "for _ in range(59000):\n"
        "    x, y = random.uniform(0, 1180), random.uniform(100, 832)\n"
        "    shape.draw_polyline([(x, y), (x + random.uniform(-8, 8), y + random.uniform(-8, 8)), (x + 5, y + 3)])\n"
        "    shape.finish(color=(0, 0, 0), width=0.3)\n"
        "shape.commit(); pdf.save(sys.argv[1])\n"
        "t0 = time.perf_counter(); BuiltinEngine().parse(open_document(sys.argv[1]))\n"
        "print(f'{time.perf_counter() - t0:.2f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp / "map.pdf")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    seconds, peak_mb = run.stdout.split()[-2:] if run.returncode == 0 else ("?", "?")
    print(f"runaway page (59,000 vector paths): parse {seconds} s, peak memory {peak_mb} MB")


if __name__ == "__main__":
    main()
