"""``dwb serve`` runs requests that arrive together as one engine batch: each row gets the tokens of the engine's
own batched run of the same prompts, and a row whose client goes away leaves the other rows' tokens unchanged.
Requests without a seed batch (the server runs in this process, so the global generator is seeded here); a seeded
request runs alone and gives the same tokens as on an idle server."""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import pytest
import torch

from inference.engine import DiffusionEngine
from inference.events import Finished
from inference.loading import load_model
from inference.params import DiffusionParams
from inference.prompts import Prompt, PromptBuilder, PromptPart
from inference.serving.runner import Runner
from inference.serving.server import ChatApp, ServeConfig, start
from inference.serving.wire import decode_event

PARAMS = {"max_denoising_steps": 6}
QUESTIONS = ["Say hello.", "Name a colour, please.", "What is two plus two?", "Write one short line about rain."]


@pytest.fixture(scope="module")
def loaded():
    return load_model("tiny", dtype="fp32", device="cpu")


@pytest.fixture(scope="module")
def served(loaded):
    runner = Runner(loaded, max_batch=4, batch_wait=1.0)  # a wide window: the four requests surely meet
    server, thread, port = start(ChatApp(runner, ServeConfig(model_name="tiny")), "127.0.0.1", 0)
    yield runner, f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join()
    runner.close()


def _request(url, question, out, index, leave_after_step=False):
    body = {
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 512,
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
    torch.manual_seed(7)  # the batch's noise: no request has a seed of its own
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
    torch.manual_seed(7)
    reference = [e for e in engine.generate(builder.batch_inputs(prompts), params) if isinstance(e, Finished)][0]
    expected = {q: (reference.ids[row], reference.texts[row]) for row, q in enumerate(order)}
    for q, got in enumerate(rows):
        assert isinstance(got, Finished)
        assert np.array_equal(got.ids[0], expected[q][0]), f"question {q}"
        assert got.texts == (expected[q][1],)

    left = _concurrently(url, leave=1)  # the same batch again; question 1's client leaves after its first step
    assert left[1] == "left"
    for q in (0, 2, 3):
        assert np.array_equal(left[q].ids[0], expected[q][0]), f"question {q} after question 1 left"
    gone = next(r for r in reversed(runner.recent) if r.steps_at_cancel is not None)
    assert gone.batch_size == 4 and gone.steps_after_cancel <= 1


@pytest.mark.slow
def test_seeded_requests_run_alone_and_reproduce(served):
    runner, url = served
    body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 256, "dwb": {"params": PARAMS}}
    alone = httpx.post(url + "/chat/completions", json={**body, "seed": 3}, timeout=300).json()
    out = [None] * 3

    def ask(i):
        out[i] = httpx.post(url + "/chat/completions", json={**body, "seed": 3}, timeout=300).json()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.batch_size for r in list(runner.recent)[-3:]] == [1, 1, 1]
    assert all(o["choices"][0]["message"]["content"] == alone["choices"][0]["message"]["content"] for o in out)
