"""Rows of a batch with seeds of their own: each row draws its noise from its own generator, so a seeded row gets
the same tokens alone (where it equals ``model.generate()`` after ``torch.manual_seed``) and beside any other rows."""

from __future__ import annotations

import numpy as np

from inference.runtime.engine import DiffusionEngine
from inference.runtime.events import DenoisingStep, Failed, Finished
from tests.helpers import chat_inputs
from tests.model_helpers import echo_canvas

PROMPTS = ["Row A prompt", "A longer prompt for row B, padded less", "C"]


def batch_inputs(processor, texts):
    return processor.apply_chat_template(
        [[{"role": "user", "content": [{"type": "text", "text": t}]}] for t in texts],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        padding=True,
    )


def finished(engine, inputs, params, seeds):
    events = list(engine.generate(inputs, params, seeds=seeds))
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1], [e for e in events if isinstance(e, DenoisingStep)]


def assert_same_row(alone: np.ndarray, batched: np.ndarray, pad: int) -> None:
    """A row's tokens in a batch are its tokens alone, then whole padding canvases while the other rows go on."""
    assert np.array_equal(batched[: alone.size], alone)
    assert (batched[alone.size :] == pad).all()


def test_a_seeded_row_gets_the_same_tokens_alone_and_in_any_batch(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    params = engine.default_params(max_new_tokens=512, max_denoising_steps=8)
    seeded = engine.default_params(max_new_tokens=512, max_denoising_steps=8, seed=11)
    torch_seeded = list(engine.generate(chat_inputs(processor, PROMPTS[0]), seeded))[-1]
    alone = {i: finished(engine, chat_inputs(processor, t), params, [11 + i])[0] for i, t in enumerate(PROMPTS)}
    # one row seeded s draws what a single run after torch.manual_seed(s) draws (the generate() parity path)
    assert np.array_equal(alone[0].ids, torch_seeded.ids)
    batch, _ = finished(engine, batch_inputs(processor, PROMPTS), params, [11, 12, 13])
    reordered, _ = finished(engine, batch_inputs(processor, [PROMPTS[2], PROMPTS[0]]), params, [13, 11])
    for i in range(3):
        assert_same_row(alone[i].ids[0], batch.ids[i], engine.pad_token_id)
        assert batch.texts[i] == alone[i].texts[0]
    assert_same_row(alone[2].ids[0], reordered.ids[0], engine.pad_token_id)
    assert_same_row(alone[0].ids[0], reordered.ids[1], engine.pad_token_id)
    assert not np.array_equal(batch.ids[0], batch.ids[2])  # the rows' seeds differ, and so do their tokens


def test_a_row_that_stops_early_draws_no_more_noise(tiny_model, processor):
    """Row 0 keeps its starting noise and stops after a step or two of each canvas while row 1 denoises every step:
    row 0's next canvases start from the noise its generator would give it alone."""
    engine = DiffusionEngine(echo_canvas(tiny_model, [30.0]), processor.tokenizer)
    engine.eos_token_ids = []  # three whole canvases for both rows
    params = engine.default_params(max_new_tokens=768, max_denoising_steps=8)
    alone, _ = finished(engine, chat_inputs(processor, PROMPTS[0]), params, [5])
    batch, batch_steps = finished(engine, batch_inputs(processor, PROMPTS[:2]), params, [5, 6])
    assert max(alone.stats.steps_per_canvas) < 8 and batch.stats.steps_per_canvas == (8, 8, 8)
    stopped = [next(e.step for e in batch_steps if e.canvas == c and e.finished[0]) + 1 for c in range(3)]
    assert tuple(stopped) == alone.stats.steps_per_canvas  # row 0 stops where it stops alone
    assert np.array_equal(batch.ids[0], alone.ids[0])


def test_one_seed_per_row(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    events = list(engine.generate(batch_inputs(processor, PROMPTS[:2]), engine.default_params(), seeds=[1]))
    assert isinstance(events[-1], Failed)
    assert "1 seeds for a batch of 2 prompts" in events[-1].message
