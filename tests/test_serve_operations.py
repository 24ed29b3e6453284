"""``dwb serve`` in operation, on loopback with the official ``openai`` client: a graceful shutdown with a cap, a client
that drops mid-upload, failed and timed-out streams counted by outcome, a 504 no client retries, and a request of 16
images of 7000 x 7000 read one at a time at the processor's size."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inference.errors import GenerationError
from inference.serving.images import ImageLimits
from inference.serving.runner import Limits
from inference.tasks.remote import RemoteEngine, load_processor
from inference.weights.loading import load_model
from tests.serve_helpers import serving

STEPS = {"max_denoising_steps": 4}
LONG = {"max_denoising_steps": 1000, "stability_threshold": None, "confidence_threshold": None}  # minutes


@pytest.fixture(scope="module")
def loaded():
    return load_model("tiny", dtype="fp32", device="cpu")


def _long(client, seed, stream=True):
    return client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "long"}],
        max_tokens=512,
        seed=seed,
        stream=stream,
        extra_body={"dwb": {"events": True, "params": LONG}},
    )


def _requests(url):
    """``dwb_requests_total`` by (status, outcome), parsed by prometheus_client."""
    text = httpx.get(url.removesuffix("/v1") + "/metrics").text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "dwb_requests")
    return {
        (s.labels["status"], s.labels["outcome"]): s.value for s in family.samples if s.name == "dwb_requests_total"
    }


def _wait(predicate, rounds=600):
    for _ in range(rounds):  # a bound on waiting, not a timing assertion
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("never happened")


def test_shutdown_gives_in_flight_streams_their_grace_then_an_abort_and_an_error_event(loaded, caplog):
    with serving(loaded, shutdown_grace=1.0) as (runner, app, _server, url):
        with openai.OpenAI(base_url=url, api_key="-", max_retries=0) as client:
            stream = _long(client, seed=41)
            chunks = [next(stream), next(stream)]  # running
            app.begin_shutdown()
            with pytest.raises(openai.APIError) as caught:
                for chunk in stream:
                    chunks.append(chunk)
            assert "shut down" in caught.value.message
            assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "abort"
            refused = httpx.post(url + "/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
            assert refused.status_code == 503 and "shutting down" in refused.json()["error"]["message"]
            _wait(lambda: any(r.params.seed == 41 for r in runner.recent))
            run = next(r for r in runner.recent if r.params.seed == 41)
            assert run.steps < 1000  # stopped at the end of the grace, not run to its end
            assert _requests(url)[("200", "abort")] == 1


def test_a_client_that_drops_mid_upload_is_logged_as_such(loaded, caplog):
    with serving(loaded) as (_runner, _app, _server, url), caplog.at_level(logging.INFO):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n" + b'{"messages": [' + b" " * 1000
            )
        _wait(lambda: any("disconnected" in r.getMessage() for r in caplog.records if r.name == "dwb.access"))
        assert _requests(url).get(("499", "disconnected")) == 1
    assert any("went away while sending" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]  # no traceback, no 500


def test_timed_out_and_failed_streams_are_counted_by_outcome_and_a_504_is_not_retried(loaded, caplog):
    with serving(loaded, Limits(request_timeout=2.0)) as (runner, _app, _server, url), caplog.at_level(logging.INFO):
        with openai.OpenAI(base_url=url, api_key="-", max_retries=3) as client:
            with pytest.raises(openai.APIError) as caught:
                list(_long(client, seed=51))
            assert "time limit (2 s)" in caught.value.message
            with pytest.raises(openai.APIStatusError) as caught:
                _long(client, seed=52, stream=False)
            assert caught.value.status_code == 504 and "do not retry" in caught.value.message
            assert caught.value.response.headers["x-should-retry"] == "false"
        counts = _requests(url)
        assert counts[("200", "timeout")] == 1 and counts[("504", "timeout")] == 1  # the client asked once
        access = [r.getMessage() for r in caplog.records if r.name == "dwb.access"]
        assert any('" 200 outcome=timeout' in line for line in access)
        engine = RemoteEngine(url, load_processor("tiny"), params={**LONG, "max_new_tokens": 512}, http_retries=3)
        with pytest.raises(GenerationError):
            engine.ask([], "anything?")  # streams: its stream ends with the time limit's error
        assert _requests(url)[("200", "timeout")] == 2  # asked once, not retried

    broken = load_model("tiny", dtype="fp32", device="cpu")

    def fail(_module, _inputs, _output):
        raise RuntimeError("the accelerator went away")

    broken.model.lm_head.register_forward_hook(fail)
    with serving(broken) as (_runner, _app, _server, url):
        with openai.OpenAI(base_url=url, api_key="-", max_retries=0) as client:
            chunks = []
            with pytest.raises(openai.APIError):
                for chunk in _long(client, seed=53):
                    chunks.append(chunk)
            assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "error"
        assert _requests(url)[("200", "error")] == 1


def _big_png(side=7000):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (side, side), "white")
    ImageDraw.Draw(image).rectangle((side // 4, side // 4, side // 2, side // 2), fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.mark.slow
def test_sixteen_images_of_7000_squared_are_read_one_at_a_time_at_the_processors_size(loaded):
    url_image = _big_png()
    assert len(url_image) < 400_000  # a small request that decodes to 784 million pixels
    body = {
        "model": "tiny",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url_image}}] * 16}],
        "mm_processor_kwargs": {"max_soft_tokens": 70},
        "dwb": {"params": STEPS},
    }
    with serving(loaded) as (runner, _app, _server, url):
        answer = httpx.post(url + "/chat/completions", json=body, timeout=600)
        assert answer.status_code == 200, answer.text
        run = runner.recent[-1]
        assert len(run.images) == 16 and all(i.width * i.height <= 70 * 64 for i in run.images)  # 70 x (2 x 4)^2
        assert runner.pixels.peak <= 7000 * 7000  # one full-size image decoding at a time
    tight = Limits(images=ImageLimits(per_image=50_000_000, per_request=100_000_000))
    with serving(loaded, tight) as (runner, _app, _server, url):
        started = time.perf_counter()
        refused = httpx.post(url + "/chat/completions", content=json.dumps(body), timeout=600)
        print(f"refused in {time.perf_counter() - started:.2f} s")  # shown with -s
        assert refused.status_code == 400 and "784000000 pixels" in refused.json()["error"]["message"]
        assert runner.pixels.peak == 0  # refused from the headers: nothing was decoded
