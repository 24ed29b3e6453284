"""Measured confidence of schema-pinned extraction on generated pages (``tests/benchmarks/extract.py --held-out``).

Pages come from :mod:`training.documents`: one made-up invoice, receipt, form or letter per PDF, written and ingested
as a user's file is, and a schema of three of its fields. Held-out pages carry only values that training never saw;
``--fit`` pages are drawn on the training side of the split (other seeds than any training step used) and fit
:data:`inference.tasks.confidence.COEFFICIENTS`. Each page is extracted once (seed = page index, the agreement
re-denoise included); a field is right when its value equals the page's exactly.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

THRESHOLD = 0.5
FIELDS_PER_PAGE = 3


def generated_page(index: int, seed: int, evaluation: bool, tokenizer: Any, folder: Path) -> tuple[Any, dict, dict]:
    """The documents, schema and expected values of generated page ``index``."""
    from inference.documents import ingest
    from training.documents import fits, make_page, schema_for, write_pdf

    rng = random.Random((seed * 100_003 + index) * (7 if evaluation else 13) + 1)
    while True:
        page = make_page(rng, evaluation)
        fields = [f for f in page.fields if fits(tokenizer, f.value)]
        if len(fields) >= FIELDS_PER_PAGE:
            break
    fields = rng.sample(fields, FIELDS_PER_PAGE)
    path = folder / f"{page.kind}-{index}.pdf"
    write_pdf([page], path)
    docs = [r.document for r in ingest([str(path)])]
    return docs, schema_for(fields, rng), {f.name: f.value for f in fields}


def measure(engine: Any, pages: int, seed: int, evaluation: bool, redo_rounds: int) -> dict[str, Any]:
    """Extract every page; per field its stats vector, shown confidence and rightness; the wrong low-confidence fields
    re-denoised (held-out pages only)."""
    rows, scores, right = [], [], []
    wrong_low = fixed = 0
    base = engine.params
    with tempfile.TemporaryDirectory() as folder:
        for i in range(pages):
            docs, schema, want = generated_page(i, seed, evaluation, engine.loaded.tokenizer, Path(folder))
            engine.params = base.replace(seed=i)
            result = engine.extract(docs, schema)
            run = engine.last_pinned
            for name, expected in want.items():
                rows.append(run.stats[name].vector())
                scores.append(result.confidence[name])
                right.append(result.value.get(name) == expected)
                if evaluation and not right[-1] and scores[-1] < THRESHOLD and redo_rounds:
                    wrong_low += 1
                    for _ in range(redo_rounds):
                        run = engine.redenoise(run, [name])
                        if run.extraction.confidence[name] >= THRESHOLD:
                            break
                    fixed += run.extraction.value.get(name) == expected
            print(f"page {i}: " + json.dumps({k: [result.value.get(k), want[k], result.confidence[k]] for k in want}))
    engine.params = base
    return {"rows": rows, "scores": scores, "right": right, "wrong_low": wrong_low, "fixed": fixed}


def run_confidence(model: str, device: str, held_out: int, fit_pages: int, redo_rounds: int, seed: int) -> None:
    from inference.tasks import confidence
    from inference.tasks.model import ModelEngine
    from inference.weights.loading import load_model

    loaded = load_model(model, device=device)
    engine = ModelEngine(loaded)
    t0 = time.perf_counter()
    if fit_pages:
        train = measure(engine, fit_pages, seed + 1, False, 0)
        coefficients = confidence.fit(train["rows"], train["right"])
        print(f"fitted on {fit_pages} training-side pages ({len(train['right'])} fields): {json.dumps(coefficients)}")
        confidence.COEFFICIENTS.update(coefficients)
    result = measure(engine, held_out, seed, True, redo_rounds)
    scores, right = result["scores"], result["right"]
    print(f"model: {loaded.label}; {held_out} held-out pages, {len(right)} fields, page seed {seed}")
    print(f"field_exact={sum(right) / len(right):.3f}")
    print(f"confidence_auroc={confidence.auroc(scores, right):.3f}")
    print(f"ece={confidence.ece(scores, right):.3f}")
    rate = result["fixed"] / result["wrong_low"] if result["wrong_low"] else 0.0
    print(
        f"redenoise_fix_rate={rate:.3f} ({result['fixed']} of {result['wrong_low']} wrong fields under {THRESHOLD}, "
        f"up to {redo_rounds} re-denoises each)"
    )
    print(f"seconds={time.perf_counter() - t0:.0f}")
