"""``dwb serve`` runs requests that arrive together as one engine batch: each row gets the tokens of the engine's
own batched run of the same prompts and seeds, and a row whose client goes away leaves the other rows' tokens
unchanged. Each row draws from its own seeded generator, so a seeded request gets the same tokens batched with others
as alone."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import numpy as np
import pytest
import torch

from inference.prompts import Prompt, PromptBuilder, PromptPart
from inference.runtime.engine import DiffusionEngine
from inference.runtime.events import Finished
from inference.runtime.params import DiffusionParams
from inference.serving.request import parse_chat
from inference.serving.runner import Runner, step_threads
from inference.serving.wire import decode_event

PARAMS = {"max_denoising_steps": 6}
QUESTIONS = ["Say hello.", "Name a colour, please.", "What is two plus two?", "Write one short line about rain."]
SEEDS = [20, 21, 22, 23]
SERVE_RUNNER = {"max_batch": 4, "batch_wait": 1.0, "batch_wait_max": 3.0}  # a wide window: the four surely meet


def _request(url, question, out, index, leave_after_step=False):
    body = {
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 512,
        "seed": SEEDS[index],
        "stream": True,
        "dwb": {"events": True, "params": PARAMS},
    }
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=300) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if "dwb" not in chunk:
                continue
            event = decode_event(chunk["dwb"])
            if leave_after_step and event.kind == "step":
                out[index] = "left"
                return  # closing the stream: the server cancels this row
            if isinstance(event, Finished):
                out[index] = event


def _concurrently(url, leave=None):
    out = [None] * len(QUESTIONS)
    threads = [threading.Thread(target=_request, args=(url, q, out, i, i == leave)) for i, q in enumerate(QUESTIONS)]
    for t in threads:
        t.start()
        time.sleep(0.15)  # in question order, all within the server's batching window
    for t in threads:
        t.join()
    return out


@pytest.mark.slow
def test_four_requests_run_as_one_batch_with_the_engines_batched_tokens(served, loaded):
    runner, url = served
    rows = _concurrently(url)
    batched = list(runner.recent)[-4:]  # in the batch's row order (they end together)
    assert [r.batch_size for r in batched] == [4, 4, 4, 4]
    order = [next(i for i, q in enumerate(QUESTIONS) if q in r.text) for r in batched]  # the rows' arrival order
    assert order == [0, 1, 2, 3]
    builder = PromptBuilder(loaded.processor)
    prompts = [Prompt("", [PromptPart("text", text=QUESTIONS[i])], 280, 0, 0, 0) for i in order]
    engine = DiffusionEngine(loaded.model, loaded.tokenizer)
    params = DiffusionParams.from_dict({**PARAMS, "max_new_tokens": 512}, engine.default_params())
    batch = builder.batch_inputs(prompts)
    reference = [e for e in engine.generate(batch, params, seeds=[SEEDS[i] for i in order]) if isinstance(e, Finished)]
    expected = {q: (reference[0].ids[row], reference[0].texts[row]) for row, q in enumerate(order)}
    for q, got in enumerate(rows):
        assert isinstance(got, Finished)
        assert np.array_equal(got.ids[0], expected[q][0]), f"question {q}"
        assert got.texts == (expected[q][1],)
        alone = list(engine.generate(builder.inputs(prompts[order.index(q)]), params.replace(seed=SEEDS[q])))
        assert alone[-1].texts == got.texts, f"question {q} alone"  # its seed, whatever else ran beside it

    left = _concurrently(url, leave=1)  # the same batch again; question 1's client leaves after its first step
    assert left[1] == "left"
    for q in (0, 2, 3):
        assert np.array_equal(left[q].ids[0], expected[q][0]), f"question {q} after question 1 left"
    gone = next(r for r in reversed(runner.recent) if r.steps_at_cancel is not None)
    assert gone.batch_size == 4 and gone.steps_after_cancel <= 1


@pytest.mark.slow
def test_a_seeded_request_batched_with_others_answers_as_alone(served):
    runner, url = served
    body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 256, "dwb": {"params": PARAMS}}
    alone = httpx.post(url + "/chat/completions", json={**body, "seed": 3}, timeout=300).json()
    assert runner.recent[-1].batch_size == 1
    out = [None] * 3

    def ask(i, seed):
        out[i] = httpx.post(url + "/chat/completions", json={**body, "seed": seed}, timeout=300).json()

    threads = [threading.Thread(target=ask, args=(i, seed)) for i, seed in enumerate([4, 3, None])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.batch_size for r in list(runner.recent)[-3:]] == [3, 3, 3]
    assert out[1]["choices"][0]["message"]["content"] == alone["choices"][0]["message"]["content"]
    assert out[0]["choices"][0]["message"]["content"] != alone["choices"][0]["message"]["content"]


def test_a_request_still_being_read_joins_the_batch(loaded):
    """The worker holds a batch open while the server is still reading or tokenizing a request (``arrival``), well
    past ``batch_wait``, and runs it with the one already queued."""
    runner = Runner(loaded, max_batch=4, batch_wait=0.005, batch_wait_max=30.0)
    inputs = runner.encode(
        runner.parse_request(parse_chat({"messages": [{"role": "user", "content": "Hi"}]}))[0], [], 280
    )
    params = DiffusionParams(max_new_tokens=256, max_denoising_steps=2)

    async def both():
        runner.arrival(+1)  # the second request is being read
        first = runner.submit(inputs, params, text="Hi")
        await asyncio.sleep(0.5)  # a hundred times batch_wait
        second = runner.submit(inputs, params, text="Hi")
        runner.arrival(-1)
        for run in (first, second):
            while await run.events.get() is not None:
                pass
        return first, second

    try:
        first, second = asyncio.run(both())
    finally:
        runner.close()
    assert (first.batch_size, second.batch_size) == (2, 2)
    assert isinstance(first.last, Finished) and isinstance(second.last, Finished)


def test_a_whole_answer_counts_its_steps_without_being_handed_them(served):
    """A request that is not streamed is answered from its end alone: the same text and the same count of steps as
    the same request streamed with every step event."""
    runner, url = served
    streamed = [None]
    _request(url, QUESTIONS[0], streamed, 0)
    streamed_run = runner.recent[-1]
    body = {"messages": [{"role": "user", "content": QUESTIONS[0]}], "max_tokens": 512, "seed": SEEDS[0]}
    whole = httpx.post(url + "/chat/completions", json={**body, "dwb": {"params": PARAMS}}, timeout=300).json()
    whole_run = runner.recent[-1]
    assert whole_run is not streamed_run and whole_run.quiet and not streamed_run.quiet
    assert whole_run.steps == streamed_run.steps == sum(streamed[0].stats.steps_per_canvas) > 0
    assert whole["choices"][0]["message"]["content"] == streamed[0].texts[0].strip()


def test_a_step_too_small_to_split_runs_on_one_thread_and_a_batch_of_canvases_on_more(loaded):
    """A tiny model's one canvas runs on one intra-op thread (a team would wait at every barrier for the core the
    HTTP loop and the clients use); a batch of four canvases, or one canvas of a real model, gets the threads;
    threads started afterwards get the process's count again."""
    tiny_width = 256 * 64  # canvas x hidden width of the random tiny model
    assert step_threads(1, tiny_width, 2) == 1
    assert step_threads(4, tiny_width, 2) == 2
    assert step_threads(4, tiny_width, 1) == 1
    assert step_threads(1, 256 * 2816, 16) == 16  # one canvas of the full-size model: every thread
    runner = Runner(loaded, max_batch=4, batch_wait=0.005, batch_wait_max=30.0)
    inputs = runner.encode(
        runner.parse_request(parse_chat({"messages": [{"role": "user", "content": "Hi"}]}))[0], [], 280
    )
    params = DiffusionParams(max_new_tokens=256, max_denoising_steps=2)

    async def alone_then_four():
        alone = runner.submit(inputs, params, text="Hi")
        while await alone.events.get() is not None:
            pass
        runner.arrival(+1)  # the others are still being read: the worker waits for them
        four = [runner.submit(inputs, params, text="Hi") for _ in range(4)]
        runner.arrival(-1)
        for run in four:
            while await run.events.get() is not None:
                pass
        return alone, four

    try:
        alone, four = asyncio.run(alone_then_four())
    finally:
        runner.close()
    assert (alone.batch_size, alone.threads) == (1, 1)
    assert [(r.batch_size, r.threads) for r in four] == [(4, min(2, runner.max_threads))] * 4
    seen = []
    later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    later.start()
    later.join()
    assert seen == [runner.max_threads]
