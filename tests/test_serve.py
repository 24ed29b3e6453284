"""``dwb serve`` on 127.0.0.1 and a free port, with the tiny model: the real ``openai`` client, real HTTP."""

from __future__ import annotations

import json

import httpx
import numpy as np
import openai
import pytest

from inference.runtime.events import EVENT_TYPES, Cancelled, DenoisingStep, Finished, Stats
from inference.serving.runner import Runner
from inference.serving.server import ChatApp, ServeConfig, check_host, start
from inference.serving.wire import decode_event, encode_event

STEPS = {"max_denoising_steps": 4}
LONG = {"max_denoising_steps": 1000, "stability_threshold": None, "confidence_threshold": None}  # minutes
SERVE_CONFIG = {"max_body_bytes": 2_000_000}  # the ``served`` fixture's server


def _serve(loaded, **config):
    queue_size = config.pop("queue_size", 16)
    runner = Runner(loaded, queue_size=queue_size)
    app = ChatApp(runner, ServeConfig(model_name="tiny", **config))
    server, thread, port = start(app, "127.0.0.1", 0)
    return runner, server, thread, f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def client(served):
    with openai.OpenAI(base_url=served[1], api_key="unused", max_retries=0) as c:
        yield c


def _ask(client, stream=False, extension=None, **kw):
    return client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=512,
        seed=3,
        stream=stream,
        extra_body={"dwb": extension or {"params": STEPS}},
        **kw,
    )


def test_models_and_text_streaming_and_not(client):
    assert [m.id for m in client.models.list()] == ["tiny"]
    whole = _ask(client)
    assert whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage.completion_tokens > 0 and whole.usage.prompt_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in _ask(client, stream=True) if c.choices)
    assert text == whole.choices[0].message.content  # same seed, same text; streamed canvas by canvas


def test_events_extension_round_trips_the_engine_events(client):
    chunks = list(_ask(client, stream=True, extension={"events": True, "params": STEPS}))
    events = [decode_event(c.model_extra["dwb"]) for c in chunks if c.model_extra.get("dwb")]
    kinds = [type(e) for e in events]
    assert set(kinds) <= set(EVENT_TYPES)
    assert kinds[0].kind == "prefill_started" and kinds[-1] is Finished and DenoisingStep in kinds
    step = next(e for e in events if isinstance(e, DenoisingStep))
    assert step.draft.shape == (1, 256) and step.entropy.dtype == np.float16
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == events[-1].text


def test_step_event_packs_small_and_exact():
    rng = np.random.default_rng(0)
    step = DenoisingStep(
        canvas=1,
        step=2,
        remaining=3,
        draft=rng.integers(0, 262_144, (1, 256)),
        accepted=rng.random((1, 256)) < 0.3,
        renoised=rng.random((1, 256)) < 0.5,
        entropy=rng.random((1, 256)).astype(np.float16),
        temperature=0.5,
        finished=np.array([False]),
        seconds=0.01,
    )
    packed = json.dumps(encode_event(step))
    back = decode_event(json.loads(packed))
    assert type(back) is DenoisingStep
    for name in ("draft", "accepted", "renoised", "entropy", "finished"):
        assert np.array_equal(getattr(back, name), getattr(step, name))
        assert getattr(back, name).dtype == np.asarray(getattr(step, name)).dtype
    assert len(packed) < 2400  # 1.3 KB of bytes, in base64 with its field names
    assert len(json.dumps(step.to_json())) > 2.5 * len(packed)  # the plain JSON lists
    done = Finished(texts=("a",), ids=np.array([[1, 2]]), stats=Stats(2, 1, 2.0, (1,), 1.0, 0.1, 0.2))
    assert decode_event(json.loads(json.dumps(encode_event(done)))).stats == done.stats


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"model": "tiny"}).encode(), "messages"),
        (json.dumps({"messages": [{"role": "robot", "content": "x"}]}).encode(), "role"),
        (json.dumps({"messages": [{"role": "user", "content": [{"type": "video"}]}]}).encode(), "content[0]"),
        (
            json.dumps(
                {
                    "messages": [
                        {
                            "role": "user",
                            "content": [{"type": "image_url", "image_url": {"url": "https://example.org/a.png"}}],
                        }
                    ]
                }
            ).encode(),
            "data URL",
        ),
        (
            json.dumps(
                {
                    "messages": [
                        {
                            "role": "user",
                            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
                        }
                    ]
                }
            ).encode(),
            "decoded",
        ),
        (json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}).encode(), "max_new_tokens"),
        (
            json.dumps({"messages": [{"role": "user", "content": "x"}], "dwb": {"params": {"nope": 1}}}).encode(),
            "Unknown diffusion parameter",
        ),
        (json.dumps({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}).encode(), "stream"),
    ],
)
def test_malformed_requests_get_400_with_a_message(served, body, needle):
    r = httpx.post(served[1] + "/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]
    assert "Traceback" not in r.text


def test_limits_and_unknowns(served):
    big = json.dumps({"messages": [{"role": "user", "content": "x" * 2_100_000}]})
    r = httpx.post(served[1] + "/chat/completions", content=big)
    assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]
    r = httpx.post(
        served[1] + "/chat/completions", json={"model": "other", "messages": [{"role": "user", "content": "x"}]}
    )
    assert r.status_code == 404 and "not served" in r.json()["error"]["message"]
    assert httpx.get(served[1] + "/nowhere").status_code == 404


def test_image_request(client, tmp_path):
    from PIL import Image

    from inference.serving.wire import image_to_data_url

    image = Image.fromarray((np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8))
    r = client.chat.completions.create(
        model="tiny",
        max_tokens=256,
        seed=0,
        extra_body={"dwb": {"params": STEPS}},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": image_to_data_url(image)}},
                    {"type": "text", "text": "Describe it."},
                ],
            }
        ],
    )
    assert r.usage.prompt_tokens > 70  # the image's soft tokens are in the prompt


def _first_step(stream):
    """The first step event of a stream, or (``stream`` an iterator of its lines) of lines the caller keeps: a
    stream's ``iter_lines()`` left behind is closed when it is collected, which closes the connection (httpcore), and
    the server cancels the run of a client that went away."""
    for line in stream.iter_lines() if hasattr(stream, "iter_lines") else stream:
        if line.startswith("data: {") and '"dwb":{"event":"step"' in line:
            return decode_event(json.loads(line[6:])["dwb"])
    raise AssertionError("no step event")


def _wait_for(runner, predicate, rounds=600):
    import time

    for _ in range(rounds):  # a bound on waiting, not a timing assertion
        found = [r for r in runner.recent if predicate(r)]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError("the run never ended")


def test_disconnect_cancels_within_one_step_and_server_keeps_serving(served, client):
    runner, url = served
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "long"}],
        "stream": True,
        "max_tokens": 512,
        "seed": 11,
        "dwb": {"events": True, "params": LONG},
    }
    with httpx.Client(timeout=60) as http, http.stream("POST", url + "/chat/completions", json=body) as stream:
        first = _first_step(stream)
    assert first.step == 0
    run = _wait_for(runner, lambda r: r.params.seed == 11)
    assert isinstance(run.last, Cancelled)
    assert run.steps_after_cancel is not None and run.steps_after_cancel <= 1
    assert run.steps < 1000  # it did not run to the end
    assert _ask(client).choices[0].message.content  # still serving


def test_bearer_token(loaded, monkeypatch):
    runner, server, thread, url = _serve(loaded, api_key="s3cret")
    try:
        with openai.OpenAI(base_url=url, api_key="wrong", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError):
                bad.models.list()
            with pytest.raises(openai.AuthenticationError):
                _ask(bad)
        assert httpx.post(url + "/chat/completions", json={}).status_code == 401
        with openai.OpenAI(base_url=url, api_key="s3cret", max_retries=0) as good:
            assert _ask(good).choices[0].message.content
    finally:
        server.should_exit = True
        thread.join()
        runner.close()


def test_full_queue_gets_503_with_retry_after(loaded):
    runner, server, thread, url = _serve(loaded, queue_size=1)
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "long"}],
        "stream": True,
        "max_tokens": 512,
        "dwb": {"events": True, "params": LONG},
    }
    try:
        with httpx.Client(timeout=60) as http:
            with http.stream("POST", url + "/chat/completions", json=body) as running:
                lines = running.iter_lines()  # kept to the end: the run stays connected, so it is not cancelled
                _first_step(lines)  # taken by the worker
                with http.stream("POST", url + "/chat/completions", json=body) as waiting:
                    assert waiting.status_code == 200  # queued
                    full = http.post(url + "/chat/completions", json=body)
                    assert full.status_code == 503
                    assert int(full.headers["retry-after"]) >= 1
                    assert "queue is full" in full.json()["error"]["message"]
                    assert runner.in_flight == 2 and not runner.recent  # the first run was still running
                del lines
    finally:
        server.should_exit = True
        thread.join()
        runner.close()


def test_loopback_default_and_warning():
    from app.cli import build_parser

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert check_host("127.0.0.1", None) is None and check_host("0.0.0.0", "key") is None
    assert check_host("0.0.0.0", None, insecure=True) is None
    assert "without a token" in check_host("0.0.0.0", None)
