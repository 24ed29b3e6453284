"""``dwb serve`` takes the chat-completions fields as vLLM does for this model, with the official ``openai`` client:
``max_tokens`` cuts at exactly that many tokens (``length``), sampling fields vLLM's diffusion sampler ignores are
accepted (said once), fields the engine cannot honour are refused naming them, and the limits work at any size."""

from __future__ import annotations

import dataclasses
import logging
import math

import httpx
import openai
import pytest

from inference.documents import open_document
from inference.serving.runner import Limits
from inference.tasks.remote import RemoteEngine, load_processor
from inference.weights.loading import load_model
from tests.model_helpers import towards
from tests.serve_helpers import serving

STEPS = {"max_denoising_steps": 4}


@pytest.fixture(scope="module")
def endless():
    """The tiny model biased to one letter: it never writes end-of-sequence, so every answer runs to its cap."""
    loaded = load_model("tiny", dtype="fp32", device="cpu")
    towards(loaded.model, loaded.tokenizer.convert_tokens_to_ids("a"), strength=30.0)
    return loaded


@pytest.fixture(scope="module")
def client(loaded):
    with serving(loaded) as (_runner, _app, _server, url), openai.OpenAI(base_url=url, api_key="-", max_retries=0) as c:
        yield c


def _ask(client, **kw):
    kw.setdefault("messages", [{"role": "user", "content": "Say hello."}])
    kw.setdefault("extra_body", {"dwb": {"params": STEPS}})
    return client.chat.completions.create(model="tiny", seed=3, **kw)


def test_max_tokens_cuts_at_exactly_that_many_tokens_with_length(endless):
    with serving(endless) as (_runner, _app, _server, url), openai.OpenAI(base_url=url, api_key="-") as client:
        for cap, field in ((5, "max_tokens"), (7, "max_completion_tokens")):
            whole = _ask(client, **{field: cap})
            assert whole.choices[0].finish_reason == "length"
            assert whole.usage.completion_tokens == cap
            assert (
                len(endless.tokenizer(whole.choices[0].message.content, add_special_tokens=False)["input_ids"]) == cap
            )
            chunks = list(_ask(client, stream=True, **{field: cap}))
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
                whole.choices[0].message.content
            )
            assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_sampling_fields_vllm_ignores_are_accepted_and_said_once(client, caplog):
    with caplog.at_level(logging.WARNING, logger="inference.serving.request"):
        for _ in range(2):
            answer = _ask(
                client,
                max_tokens=64,
                temperature=0.7,
                top_p=0.9,
                n=None,
                response_format={"type": "text"},
                tool_choice="none",
                messages=[
                    {"role": "developer", "content": "Answer briefly."},
                    {"role": "user", "content": "Say hello."},
                ],
                extra_body={"top_k": 20, "dwb": {"params": STEPS}},
            )
            assert answer.choices[0].finish_reason in ("stop", "length")
    said = [r.getMessage() for r in caplog.records]
    for name in ("temperature", "top_p", "top_k"):
        assert sum(f"'{name}'" in line for line in said) == 1, said


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"logprobs": True}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
        ({"response_format": {"type": "json_object"}}, "json_object"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": []}}}, "json_schema"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"n": 2}, "n:"),
        ({"temperature": 3.0}, "temperature"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role must be"),
    ],
)
def test_fields_the_engine_cannot_honour_get_400_naming_them(client, fields, needle):
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(client, max_tokens=16, **fields)
    assert needle in caught.value.message


def test_no_time_limit_lists_valid_json_and_the_remote_engine_connects(loaded):
    with serving(loaded, Limits(request_timeout=math.inf)) as (_runner, _app, _server, url):
        listing = httpx.get(url + "/models")
        assert listing.status_code == 200 and listing.json()["data"][0]["dwb"]["request_timeout"] is None
        engine = RemoteEngine(url, load_processor("tiny"), http_retries=0)
        assert engine.generator.connect().model == "tiny"


def test_a_small_prompt_limit_serves_plain_requests_and_the_remote_engine_budgets_below_it(loaded, tmp_path):
    with serving(loaded, Limits(max_prompt_tokens=600)) as (runner, _app, _server, url):
        with openai.OpenAI(base_url=url, api_key="-", max_retries=0) as client:
            assert _ask(client, max_tokens=32).choices[0].message.content is not None  # the prefill chunk adapts
            with pytest.raises(openai.BadRequestError) as caught:
                _ask(client, max_tokens=32, extra_body={"dwb": {"params": {**STEPS, "prefill_chunk": 2048}}})
            assert "prefill_chunk=2048" in caught.value.message
        long = tmp_path / "long.txt"
        long.write_text("\n\n".join(f"Paragraph {i}: the quick brown fox jumps over the lazy dog." for i in range(80)))
        engine = RemoteEngine(
            url, load_processor("tiny"), params={**STEPS, "max_new_tokens": 64}, http_retries=0, concurrency=1
        )
        engine.policy = dataclasses.replace(engine.policy, budget_tokens=3000)  # as --budget-tokens 3000 sets it
        answer = engine.ask([open_document(long)], "What does the fox do?")
        assert engine.generator.connect().max_prompt_tokens == 600 and engine.policy.budget_tokens == 600
        assert any("lowered to 600" in n for n in engine.generator.notices)
        assert answer.text and len(runner.recent) > 2  # read in parts under the limit, then combined; never a 400
        assert all(r.prompt_tokens <= 600 for r in runner.recent)


def test_a_json_schema_response_format_is_pinned_on_the_canvas(client):
    """``response_format: json_schema`` (vLLM answers 400 for this model): the schema is laid out as a canvas
    template, so the answer is JSON of that shape by construction, streamed or whole."""
    import json

    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer"}, "kind": {"enum": ["a", "b"]}},
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "doc", "schema": schema}}
    whole = _ask(client, max_tokens=256, response_format=response_format)
    value = json.loads(whole.choices[0].message.content)
    assert set(value) == {"title", "year", "kind"} and whole.choices[0].finish_reason == "stop"
    assert value["year"] is None or isinstance(value["year"], int)
    assert value["kind"] in ("a", "b", None)
    chunks = list(_ask(client, max_tokens=256, response_format=response_format, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert set(json.loads(streamed)) == {"title", "year", "kind"}
