"""Benchmark: text-layer ingestion of the PDFs under ../shared/data against pymupdf4llm, in the same run.

Both read every page of every PDF (our ``open_document``: blocks, headings, lists, tables, figures, scan
detection; pymupdf4llm: ``to_markdown``), alternating file by file, three rounds; pages/s from the median round.
Then the time to open a synthetic 1000-page PDF and render its first page, the builtin engine's parse speed on a
synthetic 300-page born-digital PDF (``born_digital_pages_per_s=``) and on a made book of over 600 pages against
pymupdf4llm (``book_pages_per_s=``, ``book_ratio=``: see ``long_book``), and the reading order of both tools' Markdown
against the reference Markdown of the born-digital PDFs in ``docling/`` (``reading_order_ours=``,
``reading_order_pymupdf4llm=``: the share of the reference's words that come out in the reference's order). The
last line is ``ingest_ratio=<our pages/s / pymupdf4llm pages/s>``.

    .venv/bin/python -m tests.benchmarks.ingest [--rounds 3] [--book 70] [--book-theirs PAGES]
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import io
import re
import statistics
import tempfile
import time
import warnings
from pathlib import Path

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--book", type=int, default=70, help="chapters of the made book (0: no book)")
    parser.add_argument("--book-theirs", type=int, default=0, help="pages of the book pymupdf4llm reads (0: all)")
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
        long_document(Path(tmp))
        if args.book:
            long_book(Path(tmp), args.book, args.book_theirs)
    reading_order()
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


def long_document(tmp: Path, pages: int = 300) -> None:
    """Parse speed of the builtin engine (text layer, layout, Markdown) on a born-digital PDF of ``pages`` pages."""
    import pymupdf

    from inference.documents import open_document
    from inference.tasks.builtin import BuiltinEngine

    path = tmp / "long.pdf"
    pdf = pymupdf.open()
    for i in range(pages):
        page = pdf.new_page()
        page.insert_text((72, 60), f"Chapter {i // 10 + 1}, section {i + 1}", fontsize=16)
        page.insert_textbox(pymupdf.Rect(72, 90, 520, 760), f"Paragraph {i}: the board met and agreed. " * 40)
        page.insert_text((300, 800), str(i + 1), fontsize=9)
    pdf.save(path)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        BuiltinEngine().parse(open_document(path))
        times.append(time.perf_counter() - t0)
    print(f"born_digital_pages_per_s={pages / statistics.median(times):.1f}")


def long_book(tmp: Path, chapters: int = 70, theirs_pages: int = 0) -> None:
    """The made book (``tests.benchmarks.book``, 70 chapters: over 600 pages) to Markdown: the builtin engine
    (``open_document`` + ``parse``) against ``pymupdf4llm.to_markdown`` (with PyMuPDF's layout model when
    ``pymupdf.layout`` is installed), one round each; wall time and the process's CPU time (all threads), which
    stays fair on a shared machine. ``theirs_pages``: pymupdf4llm reads only the book's first pages (its layout
    model takes about a CPU second a page); the ratio compares seconds per page."""
    import pymupdf4llm

    from inference.documents import open_document
    from inference.tasks.builtin import BuiltinEngine
    from tests.benchmarks.book import make_book

    path = tmp / "book.pdf"
    pages = make_book(path, chapters)
    t0, c0 = time.perf_counter(), time.process_time()
    BuiltinEngine().parse(open_document(path))
    ours, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    layout = getattr(pymupdf4llm, "_use_layout", False)
    read = min(theirs_pages or pages, pages)
    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        pymupdf4llm.to_markdown(str(path), pages=list(range(read)))
    theirs, theirs_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"book ({pages} pages): ours {ours:.1f} s ({ours_cpu:.1f} s CPU) for {pages} pages; pymupdf4llm "
        f"{'with' if layout else 'without'} its layout model {theirs:.1f} s ({theirs_cpu:.1f} s CPU) for {read} pages"
    )
    print(f"book_pages_per_s={pages / ours:.1f}")
    print(f"book_pages_per_cpu_s={pages / ours_cpu:.1f}")
    print(f"pymupdf4llm_book_pages_per_cpu_s={read / theirs_cpu:.2f}")
    print(f"book_ratio={(theirs_cpu / read) / (ours_cpu / pages):.2f}")


WORD = re.compile(r"[^\W_]{4,}")


def order_score(reference: str, produced: str) -> float:
    """The share of the reference's words (those of four or more letters that occur once in both texts) that the
    produced text has in the reference's order: the longest increasing run of their positions over their count."""
    ref_words = WORD.findall(reference.lower())
    out_words = WORD.findall(produced.lower())
    ref_count, out_count = collections.Counter(ref_words), collections.Counter(out_words)
    position = {w: i for i, w in enumerate(out_words) if out_count[w] == 1}
    seq = [position[w] for w in ref_words if ref_count[w] == 1 and w in position]
    if not seq:
        return 0.0
    tails: list[int] = []
    for p in seq:
        k = bisect.bisect_left(tails, p)
        tails[k : k + 1] = [p]
    return len(tails) / len(seq)


def reading_order() -> None:
    import pymupdf4llm

    from inference.documents import open_document
    from inference.tasks.builtin import BuiltinEngine

    ours, theirs = [], []
    for reference in sorted((DATA / "docling" / "groundtruth").glob("*.md")):
        pdf = DATA / "docling" / "pdf" / f"{reference.stem}.pdf"
        if not pdf.exists():
            continue
        truth = reference.read_text(encoding="utf-8")
        ours.append(order_score(truth, BuiltinEngine().parse(open_document(pdf)).markdown))
        with contextlib.redirect_stdout(io.StringIO()):
            theirs.append(order_score(truth, pymupdf4llm.to_markdown(str(pdf))))
    if ours:
        print(f"reading_order_ours={statistics.mean(ours):.3f} ({len(ours)} PDFs with reference Markdown)")
        print(f"reading_order_pymupdf4llm={statistics.mean(theirs):.3f}")


if __name__ == "__main__":
    main()
