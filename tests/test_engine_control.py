"""Cancellation, follow-up turns, failures and the per-step payload of the engine."""

from __future__ import annotations

import json

import numpy as np
import torch
from test_engine_parity import reference

from inference.runtime.engine import CancelToken, DiffusionEngine, Session
from inference.runtime.events import (
    Cancelled,
    CanvasCommitted,
    CanvasStarted,
    DenoisingStep,
    Failed,
    Finished,
    PrefillFinished,
    PrefillStarted,
)
from tests.helpers import chat_inputs


def test_event_sequence_and_step_payload(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    inputs = chat_inputs(processor, "Events")
    events = list(engine.generate(inputs, engine.default_params(seed=0, max_denoising_steps=6)))
    kinds = [type(e) for e in events]
    assert kinds[:3] == [PrefillStarted, PrefillFinished, CanvasStarted]
    assert kinds[3:9] == [DenoisingStep] * 6 and kinds[9:] == [CanvasCommitted, Finished]
    step = events[3]
    assert step.draft.shape == step.accepted.shape == step.renoised.shape == step.entropy.shape == (1, 256)
    assert step.entropy.dtype == np.float16 and step.draft.dtype == np.int32
    # re-noised is exactly the complement of accepted while the row is still denoising
    assert np.array_equal(step.renoised, ~step.accepted)
    assert not step.draft.flags.writeable
    payload = step.draft.nbytes + step.accepted.nbytes + step.renoised.nbytes + step.entropy.nbytes
    assert payload < 4096, payload  # a few KB per step, never the logits
    line = json.dumps(step.to_json())
    assert json.loads(line)["event"] == "step"
    assert events[-1].stats.steps_per_canvas == (6,)


def test_accepted_tokens_are_recomputed_every_step(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    steps = [
        e
        for e in engine.generate(chat_inputs(processor, "Re-noise"), engine.default_params(seed=3))
        if isinstance(e, DenoisingStep)
    ]
    dropped = sum(int((a.accepted & b.renoised).sum()) for a, b in zip(steps, steps[1:], strict=False))
    assert dropped > 0, "a token accepted at one step is re-noised at the next unless accepted again"


def test_cancel_at_a_given_step_of_the_first_canvas(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    cancel = CancelToken()
    seen = []
    for event in engine.generate(chat_inputs(processor, "Cancel me"), engine.default_params(seed=0), cancel=cancel):
        seen.append(event)
        if isinstance(event, DenoisingStep) and event.step == 4:
            cancel.cancel()
    assert isinstance(seen[-1], Cancelled)
    assert seen[-1].canvas == 0 and seen[-1].step == 5
    steps = [e for e in seen if isinstance(e, DenoisingStep)]
    assert [e.step for e in steps] == [0, 1, 2, 3, 4]  # no step after the one that asked to cancel
    assert not any(isinstance(e, (CanvasCommitted, Finished)) for e in seen)


def test_follow_up_turn_reuses_the_cache(tiny_model, processor):
    first = chat_inputs(processor, "First question")
    second_ids = processor.tokenizer(
        "<turn|>\n<|turn>user\nAnd a second one?<turn|>\n<|turn>model\n", return_tensors="pt", add_special_tokens=False
    )["input_ids"]
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    session = Session()
    events1 = list(engine.generate(first, engine.default_params(seed=0), session=session))
    assert isinstance(events1[-1], Finished)
    cached = session.cached_tokens
    assert cached == first["input_ids"].shape[1]  # the prompt is in the cache; the last canvas is pending
    pending = session.pending_ids.shape[1]
    events2 = list(engine.generate({"input_ids": second_ids}, engine.default_params(seed=1), session=session))
    assert isinstance(events2[-1], Finished)
    started = events2[0]
    assert started.cached_tokens == cached and started.prompt_tokens == pending + second_ids.shape[1]
    # the same two turns through generate(): its returned cache, with the last canvas prepended
    out1, _ = reference(tiny_model, first, seed=0)
    last_canvas = out1.sequences[:, -256:]
    out2, drafts = reference(
        tiny_model, {"input_ids": torch.cat([last_canvas[:, :pending], second_ids], -1)}, seed=1, cache=out1.cache
    )
    steps = [e for e in events2 if isinstance(e, DenoisingStep)]
    assert all(np.array_equal(a.draft, b) for a, b in zip(steps, drafts, strict=True))
    np.testing.assert_array_equal(events2[-1].ids, out2.sequences[:, -256:].numpy())


def test_failure_is_an_event_not_an_exception(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    bad = {"input_ids": torch.tensor([[2, 5, 10_000]])}  # a token id outside the vocabulary
    events = list(engine.generate(bad, engine.default_params(seed=0)))
    assert isinstance(events[-1], Failed)
    assert "Traceback" not in events[-1].message and events[-1].message


def test_padding_after_end_of_sequence_is_not_counted_as_written(tiny_model, processor):
    from tests.model_helpers import towards

    engine = DiffusionEngine(towards(tiny_model, processor.tokenizer.eos_token_id), processor.tokenizer)
    params = engine.default_params(seed=0, max_denoising_steps=4, max_new_tokens=256)
    events = list(engine.generate(chat_inputs(processor, "Nothing"), params))
    commit, finished = [e for e in events if isinstance(e, CanvasCommitted)][-1], events[-1]
    assert isinstance(finished, Finished) and finished.text == ""
    assert commit.ids.shape == (1, 256) and commit.new_tokens == (1,)  # the end-of-sequence; the rest is padding
    stats = finished.stats
    assert stats.new_tokens == 1 and stats.tokens_per_forward == 1 / stats.forward_passes


def test_a_character_split_between_canvases_is_streamed_whole(tiny_model, processor):
    """The tiny tokenizer is byte-level: an "é" whose two bytes fall on either side of a canvas boundary is given
    whole by the second canvas's text, never as two U+FFFD; the canvases' texts add up to the answer."""
    from inference.runtime.template import FREE, CanvasTemplate

    tokenizer = processor.tokenizer
    text = "a" * 255 + "\u00e9" + "b" * 10
    ids = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
    assert len(ids) == 268  # the two bytes of "é" at positions 255 and 256: canvas 1's last, canvas 2's first
    template = CanvasTemplate(pins=np.array(ids), sets=np.full(len(ids), FREE))
    engine = DiffusionEngine(tiny_model, tokenizer)
    params = engine.default_params(seed=0, max_denoising_steps=2, max_new_tokens=512)
    events = list(engine.generate(chat_inputs(processor, "Letters"), params, template=template))
    texts = [e.text for e in events if isinstance(e, CanvasCommitted)]
    assert texts == ["a" * 255, "\u00e9" + "b" * 10]
    assert "".join(texts) == events[-1].text == text
