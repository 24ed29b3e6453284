"""Benchmark: schema-pinned extraction against the prompt path, same model, schema and document.

For each seed, both paths extract the same schema from ``resources/sample.pdf``: the template path (the schema pinned
on the canvas, one attempt) and the prompt path (the schema in the prompt, JSON validated, retried up to twice).
Steps are the decoder passes the engine reports (every canvas, every attempt). Prints the medians and, last,
``template_steps_ratio=<template median / prompt median>``, ``template_valid_rate=`` and ``prompt_valid_rate=``.

    .venv/bin/python -m tests.benchmarks.extract [--model tiny|tiny-trained|ID] [--seeds 5] [--device auto]
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
    args = parser.parse_args()
    if args.seeds < 3:
        parser.error("--seeds must be at least 3")

    import dataclasses
    from importlib import resources

    from inference.documents import ingest
    from inference.events import Finished
    from inference.loading import load_model
    from inference.tasks.base import TaskContext
    from inference.tasks.model import ModelEngine

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
            engine.params = dataclasses.replace(base, seed=seed)
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


if __name__ == "__main__":
    main()
