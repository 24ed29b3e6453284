"""Schema-pinned extraction through ``dwb serve``: the template travels in the ``dwb`` extension and gives what the
local engine gives; a server whose listing offers no template gets the prompt path, said once. Real HTTP on
loopback, the tiny model on both sides."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import numpy as np
import pytest

from inference.documents import ingest
from inference.runtime.events import DenoisingStep
from inference.serving.runner import Runner
from inference.serving.server import ChatApp, ServeConfig, start
from inference.tasks.base import TaskContext
from inference.tasks.model import ModelEngine
from inference.tasks.remote import RemoteEngine, load_processor

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "data" / "sample-schema.json").read_text())


@pytest.fixture(scope="module")
def docs():
    return [r.document for r in ingest([str(ROOT / "resources" / "sample.pdf")])]


class ListingWithoutTemplate(ChatApp):
    """A server as it was before the template: the model listing offers no ``dwb`` extension."""

    async def models(self, request):
        response = await super().models(request)
        listing = json.loads(response.body)
        listing.pop("dwb")
        from starlette.responses import JSONResponse

        return JSONResponse(listing)


def serve(loaded, app_class=ChatApp):
    runner = Runner(loaded)
    server, thread, port = start(app_class(runner, ServeConfig(model_name="tiny")), "127.0.0.1", 0)
    return runner, server, thread, f"http://127.0.0.1:{port}/v1"


def stop(runner, server, thread):
    server.should_exit = True
    thread.join()
    runner.close()


@pytest.mark.slow
def test_remote_template_extraction_equals_the_local_one(loaded, docs):
    local = ModelEngine(loaded)
    local.agreement = False  # the agreement re-denoise needs the prompt cache, which a remote engine does not keep
    params = local.params.replace(seed=9, max_denoising_steps=4)
    local.params = params
    expected = local.extract(docs, SCHEMA)
    runner, server, thread, url = serve(loaded)
    try:
        remote = RemoteEngine(url, load_processor("tiny"), params=params)
        steps = []
        result = remote.extract(docs, SCHEMA, TaskContext(on_event=steps.append))
    finally:
        stop(runner, server, thread)
    assert result.kind == "pinned" and result.engine == "remote" and result.valid
    assert result.value == expected.value and result.confidence == expected.confidence
    assert result.evidence == expected.evidence
    layout = local.last_pinned.layout
    pinned = layout.template.pinned
    drafts = [e for e in steps if isinstance(e, DenoisingStep)]
    assert drafts, "the events came over the wire"
    for e in drafts:  # the pinned canvas shows in every step the server sends
        part = slice(e.canvas * 256, (e.canvas + 1) * 256)
        np.testing.assert_array_equal(e.draft[0][pinned[part]], layout.template.pins[part][pinned[part]])
    with pytest.raises(Exception, match="local model"):
        remote.redenoise(remote.last_pinned, ["title"])


def test_a_server_without_the_template_gets_the_prompt_path_said_once(loaded, docs, caplog):
    runner, server, thread, url = serve(loaded, ListingWithoutTemplate)
    try:
        remote = RemoteEngine(url, load_processor("tiny"), params={"max_denoising_steps": 2, "seed": 1}, retries=0)
        with caplog.at_level(logging.WARNING, logger="inference.tasks.remote"):
            first = remote.extract(docs, SCHEMA)
            second = remote.extract(docs, SCHEMA)
    finally:
        stop(runner, server, thread)
    assert first.kind == second.kind == "generated" and first.attempts == 1
    notices = [r for r in caplog.records if "no canvas template" in r.getMessage()]
    assert len(notices) == 1


def test_a_malformed_template_is_a_clear_400(loaded):
    runner, server, thread, url = serve(loaded)
    try:
        body = {
            "messages": [{"role": "user", "content": "hi"}],
            "dwb": {"template": {"pins": [1, 2], "sets": [-1]}},
        }
        bad = httpx.post(url + "/chat/completions", json=body, timeout=60)
        body["dwb"]["template"] = {"pins": [10**9], "sets": [-1]}
        outside = httpx.post(url + "/chat/completions", json=body, timeout=60)
        listing = httpx.get(url + "/models", timeout=60).json()
    finally:
        stop(runner, server, thread)
    assert bad.status_code == 400 and "dwb.template" in bad.json()["error"]["message"]
    assert outside.status_code == 400 and "outside the vocabulary" in outside.json()["error"]["message"]
    assert listing["dwb"] == {"template": True, "canvas_length": 256}
