"""The document stage's examples (training/documents.py): held-out values never reach training pages, and a pinned
example's target canvas reads back, through the engine's own reader, as the page's values, grounded on the page."""

from __future__ import annotations

import random

import numpy as np

from inference.tasks.pinned import ground, read_canvas, vocabulary
from training.documents import extraction_example, held_out, make_page
from training.model import build_trained_processor


def test_training_pages_never_carry_a_held_out_value_and_evaluation_pages_only_those():
    rng = random.Random(3)
    for evaluation in (False, True):
        for _ in range(30):
            page = make_page(rng, evaluation)
            assert all(held_out(f.value) == evaluation for f in page.fields)
            assert all(f"{f.label}: {f.value}" in page.text for f in page.fields)


def test_a_pinned_example_s_target_reads_back_as_the_page_s_values():
    from types import SimpleNamespace

    tokenizer = build_trained_processor().tokenizer
    vocab = vocabulary(tokenizer, 1024, eos=1)
    rng = random.Random(4)
    checked = 0
    while checked < 5:
        example = extraction_example(tokenizer, vocab, 256, rng)
        if example is None:
            continue
        ids = np.array(example.clean)
        reading = read_canvas(example.layout, ids, np.zeros(len(ids)), {})
        texts = [part.text for part in example.parts[:-1]]
        pages = [SimpleNamespace(text=t.split("\n", 1)[1], blocks=[], number=i + 1) for i, t in enumerate(texts)]
        evidence = ground(reading.evidence, [SimpleNamespace(source="doc.pdf", pages=pages)])
        for name, value in reading.value.items():
            assert value and f": {value}" in texts[evidence[name]["page"] - 1]
            assert evidence[name]["grounded"]
        assert all(ids[~np.array(example.free)] == example.layout.template.pins[~np.array(example.free)])
        checked += 1


def test_a_question_example_asks_about_a_field_on_the_page_it_cites():
    from training.documents import question_example

    for seed in range(20):
        parts, answer, asked, number = question_example(random.Random(seed))
        pages = [p.text for p in parts[:-1]]
        assert asked.value in pages[number - 1] and answer == f" {asked.value} [p. {number}]"
        assert asked.question in parts[-1].text  # the Ask prompt's instruction carries the question
