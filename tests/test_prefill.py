"""Chunked prefill: the same tokens and drafts as one-shot prefill, cancellable between chunks, refused up front
when the cache will not fit. All on the real tiny DiffusionGemma in fp32."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest
import torch
from PIL import Image

from inference.engine import DiffusionEngine, Session
from inference.events import (
    Cancelled,
    DenoisingStep,
    Failed,
    Finished,
    PrefillFinished,
    PrefillProgress,
    PrefillStarted,
)
from inference.prefill import chunk_bounds

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


def test_cancel_during_a_128k_prefill_comes_within_one_chunk(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    from inference.cancel import CancelToken

    ids = torch.randint(20, 260, (1, 131_072), generator=torch.Generator().manual_seed(0))
    cancel = CancelToken()
    session = Session()
    events, chunk_seconds, asked = [], [], None
    last = 0.0
    params = engine.default_params(seed=0, prefill_chunk=2048, **PARAMS)
    for event in engine.generate({"input_ids": ids}, params, cancel=cancel, session=session):
        events.append(event)
        if isinstance(event, PrefillProgress):
            chunk_seconds.append(event.seconds - last)
            last = event.seconds
            if len(chunk_seconds) == 4:
                asked = time.perf_counter()
                cancel.cancel()
    took = time.perf_counter() - asked
    assert isinstance(events[-1], Cancelled) and events[-1].canvas == -1
    progress = [e for e in events if isinstance(e, PrefillProgress)]
    assert len(progress) == 4  # nothing ran after the chunk during which cancel was asked
    assert session.cache is None and session.pending_ids is None  # a half-filled cache is not kept
    print(f"cancel -> Cancelled in {took * 1000:.1f} ms; median chunk {statistics.median(chunk_seconds) * 1000:.0f} ms")


def test_a_cancelled_follow_up_does_not_resend_the_previous_answer(tiny_model, processor):
    from inference.cancel import CancelToken

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
