"""Chunked prefill: the same tokens and drafts as one-shot prefill, cancellable between layers, refused up front
when the cache will not fit. All on the real tiny DiffusionGemma in fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inference.runtime.cancel import CancelToken
from inference.runtime.engine import DiffusionEngine, Session
from inference.runtime.events import (
    Cancelled,
    DenoisingStep,
    Failed,
    Finished,
    PrefillFinished,
    PrefillProgress,
    PrefillStarted,
)
from inference.runtime.prefill import PrefillClock, chunk_bounds, text_layers

PARAMS = {"max_new_tokens": 256, "max_denoising_steps": 6}


def interleaved(processor, n_tokens: int, n_images: int = 3, seed: int = 0):
    """About ``n_tokens`` of text with ``n_images`` images spread through it."""
    rng = np.random.default_rng(seed)
    words = ("invoice", "total", "page", "clause", "party", "amount", "signed", "date", "annex", "table")
    per_part = max(1, (n_tokens - 80 * n_images) // (n_images + 1))
    content = []
    for i in range(n_images + 1):
        text = " ".join(rng.choice(words, size=per_part // 6))
        content.append({"type": "text", "text": text[:per_part]})
        if i < n_images:
            content.append(
                {"type": "image", "image": Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))}
            )
    return processor.apply_chat_template(
        [{"role": "user", "content": content}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )


def run(model, processor, inputs, seed, chunk, session=None, **kwargs):
    engine = DiffusionEngine(model, processor.tokenizer)
    params = engine.default_params(seed=seed, prefill_chunk=chunk, **{**PARAMS, **kwargs})
    events = list(engine.generate(dict(inputs), params, session=session))
    assert isinstance(events[-1], Finished), events[-1]
    return events


def same_run(a, b):
    steps_a = [e.draft for e in a if isinstance(e, DenoisingStep)]
    steps_b = [e.draft for e in b if isinstance(e, DenoisingStep)]
    assert len(steps_a) == len(steps_b) > 0
    assert all(np.array_equal(x, y) for x, y in zip(steps_a, steps_b, strict=True))
    np.testing.assert_array_equal(a[-1].ids, b[-1].ids)


@pytest.mark.parametrize("n_tokens,chunk", [(1024, 256), (4096, 1000), (8192, 2048)])
def test_chunked_equals_one_shot_with_images_interleaved(tiny_model, processor, n_tokens, chunk):
    inputs = interleaved(processor, n_tokens)
    length = inputs["input_ids"].shape[1]
    assert length > chunk and "pixel_values" in inputs
    one_shot = run(tiny_model, processor, inputs, 0, chunk=length)
    chunked = run(tiny_model, processor, inputs, 0, chunk=chunk)
    same_run(one_shot, chunked)
    progress = [e for e in chunked if isinstance(e, PrefillProgress)]
    assert not any(isinstance(e, PrefillProgress) for e in one_shot)
    assert len(progress) >= length // chunk and progress[-1].done == progress[-1].total == length
    assert all(a.done < b.done for a, b in zip(progress, progress[1:], strict=False))
    kinds = [type(e) for e in chunked[: len(progress) + 2]]
    assert kinds[0] is PrefillStarted and kinds[-1] is PrefillFinished


def test_chunk_bounds_never_split_an_image_run():
    mm = torch.zeros(2, 40, dtype=torch.long)
    mm[0, 8:14] = 1  # an image run across the first boundary (10)
    mm[1, 18:35] = 1  # a run longer than a chunk, starting at a boundary of its own
    bounds = chunk_bounds(40, 10, mm)
    assert bounds[0] == (0, 8) and bounds[-1][1] == 40
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    runs = [(8, 14), (18, 35)]
    for start, stop in bounds:
        for r0, r1 in runs:
            assert not (start < r0 < stop < r1) and not (r0 < start < r1), (bounds, start, stop)


def test_batch_of_two_with_left_padding(tiny_model, processor):
    texts = ["alpha beta gamma " * 90, "delta " * 40]
    inputs = processor.apply_chat_template(
        [[{"role": "user", "content": [{"type": "text", "text": t}]}] for t in texts],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        padding=True,
    )
    assert (inputs["attention_mask"][1] == 0).sum() > 300  # the second row is mostly left padding
    length = inputs["input_ids"].shape[1]
    same_run(run(tiny_model, processor, inputs, 3, chunk=length), run(tiny_model, processor, inputs, 3, chunk=128))


def test_follow_up_turn(tiny_model, processor):
    first = interleaved(processor, 600, n_images=1, seed=1)
    follow = processor.tokenizer(
        "<turn|>\n<|turn>user\n" + "and the annex? " * 100 + "<turn|>\n<|turn>model\n",
        return_tensors="pt",
        add_special_tokens=False,
    )
    results = []
    for chunk in (4096, 200):
        session = Session()
        run(tiny_model, processor, first, 0, chunk=chunk, session=session)
        second = run(tiny_model, processor, {"input_ids": follow["input_ids"]}, 1, chunk=chunk, session=session)
        started = second[0]
        assert started.cached_tokens == first["input_ids"].shape[1]
        results.append(second)
    same_run(*results)
    assert any(isinstance(e, PrefillProgress) for e in results[1])


def layer_log(model):
    """Record each layer of the encoder's text stack that runs to its end; returns the log and the hook handles."""
    calls, handles = [], []
    for index, layer in enumerate(text_layers(model.model.encoder)):
        handles.append(layer.register_forward_hook(lambda _m, _a, _o, index=index: calls.append(index)))
    return calls, handles


def test_cancel_between_chunks_runs_no_more_model_work(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    ids = torch.randint(20, 260, (1, 131_072), generator=torch.Generator().manual_seed(0))
    cancel = CancelToken()
    session = Session()
    calls, handles = layer_log(tiny_model)
    events, at_cancel = [], None
    params = engine.default_params(seed=0, prefill_chunk=2048, **PARAMS)
    for event in engine.generate({"input_ids": ids}, params, cancel=cancel, session=session):
        events.append(event)
        if isinstance(event, PrefillProgress) and event.done == 4 * 2048:
            cancel.cancel()
            at_cancel = len(calls)
    assert isinstance(events[-1], Cancelled) and events[-1].canvas == -1
    progress = [e for e in events if isinstance(e, PrefillProgress)]
    assert len(progress) == 4  # nothing ran after the chunk during which cancel was asked
    assert at_cancel == 4 * len(handles) and len(calls) == at_cancel  # not one layer of the fifth chunk
    assert session.cache is None and session.pending_ids is None  # a half-filled cache is not kept
    for handle in handles:
        handle.remove()


def test_cancel_inside_a_chunk_stops_before_the_next_layer(tiny_model, processor):
    """The flag set while a layer of a long chunk runs (as the window's Esc would, from another thread): the chunk
    is abandoned before its next layer, not finished."""
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    ids = torch.randint(20, 260, (1, 40_000), generator=torch.Generator().manual_seed(1))
    cancel = CancelToken()
    calls, handles = layer_log(tiny_model)
    layers = len(handles)
    asked_at = []

    def cancel_in_third_chunk(_module, _args):
        if len(calls) == 2 * layers + 1 and not asked_at:  # the first layer of the third chunk is running
            cancel.cancel()
            asked_at.append(len(calls))

    first = text_layers(tiny_model.model.encoder)[0]
    handles.append(first.register_forward_hook(lambda m, a, o: cancel_in_third_chunk(m, a)))
    params = engine.default_params(seed=0, prefill_chunk=8192, **PARAMS)
    events = list(engine.generate({"input_ids": ids}, params, cancel=cancel))
    assert asked_at == [2 * layers + 1]
    assert len(calls) == asked_at[0]  # no layer ran after the cancel
    assert [e.done for e in events if isinstance(e, PrefillProgress)] == [8192, 16384]
    assert isinstance(events[-1], Cancelled) and events[-1].canvas == -1
    for handle in handles:
        handle.remove()


def test_the_bounded_attention_stops_between_key_blocks():
    """One layer over a long context is cut short too: the blocked attention checks the flag between key blocks."""
    from inference.runtime.prefill import PrefillInterrupted, blocked_attention, lazy_mask, stop_between_layers

    class Module:
        head_dim = 8

    q_len, kv_len = 1024, 65_536
    query = torch.zeros(1, 4, q_len, 8)
    key = value = torch.zeros(1, 4, kv_len, 8)
    mask = lazy_mask(1, q_len, kv_len, q_offset=kv_len - q_len)
    blocks = []
    original = mask.fully_visible

    def count(start, stop):
        blocks.append(start)
        if len(blocks) == 3:
            cancel.cancel()
        return original(start, stop)

    mask.fully_visible = count
    cancel = CancelToken()
    with stop_between_layers([], cancel), pytest.raises(PrefillInterrupted):
        blocked_attention(Module(), query, key, value, mask)
    assert len(blocks) == 3  # the fourth block never started
    out, _ = blocked_attention(Module(), query, key, value, mask)  # outside the block, nothing is watched
    assert out.shape == (1, q_len, 4, 8) and len(blocks) > 4


def clock_with(bounds, a, b, cached=0):
    clock = PrefillClock(bounds, cached)
    return clock, [a * x + b * y for x, y in (clock.features(*bound) for bound in bounds)]


def test_the_prefill_estimate_follows_the_attention_term():
    """Chunk costs that grow with the context (as attention's do): after a few chunks the estimate is the time the
    rest really takes, where a linear extrapolation from the average would promise far less."""
    bounds = [(i, i + 2048) for i in range(0, 40_960, 2048)]
    clock, costs = clock_with(bounds, 1e-4, 2e-8)
    for cost in costs[:3]:
        clock.laps.append(cost)
    truth = sum(costs[3:])
    linear = sum(costs[:3]) * (40_960 - 3 * 2048) / (3 * 2048)
    assert clock.seconds_left() == pytest.approx(truth, rel=1e-6)
    assert linear < 0.5 * truth  # what a linear estimate would have said
    clock.laps.clear()
    clock.laps.append(costs[0])
    assert clock.seconds_left() is None  # one chunk cannot tell the two terms apart


def test_a_slow_first_chunk_does_not_inflate_the_prefill_estimate():
    """The first chunk carries one-time costs (here five times a chunk's): the estimate follows the chunks after it,
    not a fit that the warm-up bends (which said 4 min 38 s for a prefill that ended within 2 min)."""
    bounds = [(i, i + 2048) for i in range(0, 20_480, 2048)]
    clock, costs = clock_with(bounds, 1e-3, 1e-8)
    clock.laps.extend([costs[0] * 5, *costs[1:4]])
    assert clock.seconds_left() == pytest.approx(sum(costs[4:]), rel=0.05)


def test_the_prefill_estimate_with_noisy_or_flat_chunks():
    bounds = [(i, i + 1000) for i in range(0, 10_000, 1000)]
    clock, costs = clock_with(bounds, 2e-3, 0.0)  # all linear: the fit must not invent a negative term
    clock.laps.extend(c * f for c, f in zip(costs[:4], (1.1, 0.9, 1.05, 0.95), strict=True))
    left = clock.seconds_left()
    assert left == pytest.approx(sum(costs[4:]), rel=0.15) and left > 0
    clock, costs = clock_with(bounds, 0.0, 1e-7, cached=50_000)  # a follow-up turn: the cache already long
    clock.laps.extend(costs[:2])
    assert clock.seconds_left() == pytest.approx(sum(costs[2:]), rel=1e-6)


def test_prefill_progress_events_carry_the_estimate(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    ids = torch.randint(20, 260, (1, 5000), generator=torch.Generator().manual_seed(2))
    params = engine.default_params(seed=0, prefill_chunk=1000, **PARAMS)
    progress = [e for e in engine.generate({"input_ids": ids}, params) if isinstance(e, PrefillProgress)]
    assert [e.done for e in progress] == [1000, 2000, 3000, 4000, 5000]
    assert progress[0].seconds_left is None and progress[-1].seconds_left == 0.0
    assert all(e.seconds_left is not None and e.seconds_left >= 0 for e in progress[1:])
    assert PrefillProgress(**{k: v for k, v in progress[2].to_json().items() if k != "event"}) == progress[2]


def test_a_cancelled_follow_up_does_not_resend_the_previous_answer(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    session = Session()
    prompt = processor.tokenizer("<|turn>user\nfirst<turn|>\n<|turn>model\n", return_tensors="pt")
    list(engine.generate({"input_ids": prompt["input_ids"]}, engine.default_params(seed=0, **PARAMS), session=session))
    pending = session.pending_ids.shape[1]
    assert pending > 0
    turn = processor.tokenizer(
        "<turn|>\n<|turn>user\nsecond<turn|>\n<|turn>model\n", return_tensors="pt", add_special_tokens=False
    )["input_ids"]
    cancel = CancelToken()
    seen = []
    for event in engine.generate(
        {"input_ids": turn}, engine.default_params(seed=1, **PARAMS), cancel=cancel, session=session
    ):
        seen.append(event)
        if isinstance(event, DenoisingStep) and event.step == 1:
            cancel.cancel()
    assert isinstance(seen[-1], Cancelled)
    cached = session.cached_tokens
    assert session.pending_ids is None  # the old answer is in the cache already
    third = list(engine.generate({"input_ids": turn}, engine.default_params(seed=2, **PARAMS), session=session))
    assert third[0].cached_tokens == cached and third[0].prompt_tokens == turn.shape[1]
    assert isinstance(third[-1], Finished)


def test_a_cache_that_will_not_fit_is_refused_before_the_prefill(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    engine.available_memory = lambda: 64 * 2**20  # a device with 64 MiB free
    ids = torch.randint(20, 260, (1, 60_000), generator=torch.Generator().manual_seed(0))
    need = engine.cache_bytes(60_000 + 256)
    events = list(engine.generate({"input_ids": ids}, engine.default_params(seed=0, **PARAMS)))
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert "KV cache" in events[0].message and "0.06 GiB free" in events[0].message
    assert need < 64 * 2**20  # the cache alone fits; the chunk's attention and the canvas logits do not
    engine.available_memory = lambda: 8 * 2**30
    assert isinstance(
        list(engine.generate({"input_ids": ids[:, :3000]}, engine.default_params(seed=0, **PARAMS)))[-1], Finished
    )


def test_image_tokens_without_images_are_an_error(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    image_token = processor.tokenizer.image_token_id
    ids = torch.tensor([[2, 30, 40] + [image_token] * 70 + [50, 60]])
    events = list(engine.generate({"input_ids": ids}, engine.default_params(seed=0, **PARAMS)))
    assert isinstance(events[-1], Failed) and "70 image tokens but no images" in events[-1].message
