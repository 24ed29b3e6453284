"""Benchmark: schema-pinned extraction against the prompt path, same model, schema and document.

For each seed, both paths extract the same schema from ``resources/sample.pdf``: the template path (the schema pinned
on the canvas, one attempt) and the prompt path (the schema in the prompt, JSON validated, retried up to twice).
Steps are the decoder passes the engine reports (every canvas, every attempt). Prints the medians and, last,
``template_steps_ratio=<template median / prompt median>``, ``template_valid_rate=`` and ``prompt_valid_rate=``.

``--copy-pages N`` adds ``copy_field_accuracy=``: the exact share of two fields copied from N made invoice pages.

``--held-out N`` measures the confidence instead (:mod:`tests.benchmarks.confidence`): N generated pages whose
field values were held out of training, one pinned extraction each, printing ``field_exact=``,
``confidence_auroc=``, ``ece=`` and ``redenoise_fix_rate=`` (wrong fields under the threshold re-denoised up to
``--redo-rounds`` times); ``--fit N`` first fits the confidence combination on N training-side pages and prints it.

    .venv/bin/python -m tests.benchmarks.extract [--model tiny|tiny-trained|ID] [--seeds 5] [--device auto]
        [--copy-pages 40] [--held-out 100 [--fit 100] [--redo-rounds 3] [--page-seed 0]]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# string, integer, enum, boolean and array fields (the schema tests/test_pinned_extraction.py uses)
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "data" / "sample-schema.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--copy-pages", type=int, default=0, help="also: N made invoice pages, exact field accuracy")
    parser.add_argument("--held-out", type=int, default=0, help="measure confidence on N held-out generated pages")
    parser.add_argument("--fit", type=int, default=0, help="first fit the combination on N training-side pages")
    parser.add_argument("--redo-rounds", type=int, default=3, help="re-denoises per wrong low-confidence field")
    parser.add_argument("--page-seed", type=int, default=0, help="seeds the generated pages")
    args = parser.parse_args()
    if args.held_out:
        from tests.benchmarks.confidence import run_confidence

        run_confidence(args.model, args.device, args.held_out, args.fit, args.redo_rounds, args.page_seed)
        return
    if args.seeds < 3:
        parser.error("--seeds must be at least 3")

    from importlib import resources

    from inference.documents import ingest
    from inference.runtime.events import Finished
    from inference.tasks.base import TaskContext
    from inference.tasks.model import ModelEngine
    from inference.weights.loading import load_model

    loaded = load_model(args.model, device=args.device)
    engine = ModelEngine(loaded)
    with resources.as_file(resources.files("inference.data") / "sample.pdf") as path:
        docs = [r.document for r in ingest([str(path)])]
    schema = json.loads(SCHEMA_FILE.read_text())
    base = engine.params
    steps: dict[bool, list[int]] = {True: [], False: []}
    valid: dict[bool, list[bool]] = {True: [], False: []}
    for seed in range(args.seeds):
        for template in (True, False):
            passes = []
            context = TaskContext(
                on_event=lambda e, p=passes: p.append(e.stats.forward_passes) if isinstance(e, Finished) else None
            )
            engine.template = template
            engine.params = base.replace(seed=seed)
            result = engine.extract(docs, schema, context)
            steps[template].append(sum(passes))
            valid[template].append(result.valid)
            print(f"seed {seed} {'template' if template else 'prompt  '}: {sum(passes)} steps, valid {result.valid}")
    median = {k: statistics.median(v) for k, v in steps.items()}
    print(f"model: {loaded.label}, {args.seeds} seeds")
    print(f"template: median {median[True]} steps; prompt: median {median[False]} steps")
    print(f"template_steps_ratio={median[True] / median[False]:.3f}")
    print(f"template_valid_rate={sum(valid[True]) / args.seeds:.3f}")
    print(f"prompt_valid_rate={sum(valid[False]) / args.seeds:.3f}")
    if args.copy_pages:
        engine.template, engine.params = True, base
        print(f"copy_field_accuracy={copy_accuracy(engine, args.copy_pages):.3f}")


def copy_accuracy(engine: object, pages: int) -> float:
    """Exact field accuracy on made one-page invoices ("Invoice number: 804113", "Total: 1234"): can the model copy a
    value from the page into its pinned slot? Values are drawn per page (seeded), never seen in training."""
    import random
    import tempfile

    import pymupdf

    from inference.documents import ingest

    schema = {
        "type": "object",
        "properties": {"invoice_number": {"type": "string", "maxLength": 12}, "total": {"type": "integer"}},
    }
    rng = random.Random(7)
    right = total = 0
    with tempfile.TemporaryDirectory() as folder:
        for i in range(pages):
            number, amount = str(rng.randrange(100000, 999999)), rng.randrange(10, 9999)
            path = Path(folder) / f"invoice-{i}.pdf"
            pdf = pymupdf.open()
            page = pdf.new_page(width=400, height=300)
            page.insert_text((30, 50), f"Invoice number: {number}", fontsize=12)
            page.insert_text((30, 80), f"Total: {amount}", fontsize=12)
            pdf.save(path)
            docs = [r.document for r in ingest([str(path)])]
            value = engine.extract(docs, schema).value or {}
            got = (str(value.get("invoice_number")) == number) + (value.get("total") == amount)
            right, total = right + got, total + 2
            print(f"page {i}: {value} (want {number}, {amount})")
    return right / total


if __name__ == "__main__":
    main()
