"""Benchmark: model-engine parse, pages per second with batches of 4 pages vs one page per engine run.

An 8-page born-digital PDF (written here), the tiny model (fp32, CPU unless --device), 256 new tokens per page with
adaptive stopping off (every page does the same number of denoising steps), runs alternating batch 1 and batch 4,
medians of --rounds. Prints pages/s for each and, last, ``batch_speedup=`` (pages/s at batch 4 / at batch 1).

    .venv/bin/python -m tests.benchmarks.parse_batch [--model tiny] [--rounds 3] [--steps 24]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--pages", type=int, default=8)
    args = parser.parse_args()

    import pymupdf

    from inference.documents import open_document
    from inference.tasks.base import ParseOptions
    from inference.tasks.model import ModelEngine
    from inference.weights.loading import load_model

    folder = Path(tempfile.mkdtemp())
    pdf = pymupdf.open()
    for i in range(args.pages):
        page = pdf.new_page()
        page.insert_text((72, 72), f"Section {i + 1}", fontsize=16)
        page.insert_textbox(
            pymupdf.Rect(72, 100, 520, 700), f"Line {i}: the committee met and agreed. " * 25, fontsize=10
        )
    pdf.save(folder / "pages.pdf")
    doc = open_document(folder / "pages.pdf")
    loaded = load_model(args.model, dtype="fp32" if args.device == "cpu" else "auto", device=args.device)
    engine = ModelEngine(loaded)
    engine.params = engine.engine.default_params(max_new_tokens=256, max_denoising_steps=args.steps, seed=0).replace(
        stability_threshold=None
    )  # adaptive stopping off: equal work per page
    engine.parse(doc, ParseOptions(batch_size=2))  # warm-up
    rates: dict[int, list[float]] = {1: [], 4: []}
    for _ in range(args.rounds):
        for batch in (1, 4):
            t0 = time.perf_counter()
            engine.parse(doc, ParseOptions(batch_size=batch))
            rates[batch].append(args.pages / (time.perf_counter() - t0))
    one, four = statistics.median(rates[1]), statistics.median(rates[4])
    print(f"batch 1: {one:.2f} pages/s  {[round(r, 2) for r in rates[1]]}")
    print(f"batch 4: {four:.2f} pages/s  {[round(r, 2) for r in rates[4]]}")
    print(f"batch_speedup={four / one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
