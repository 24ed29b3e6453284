"""The remote engine against ``dwb serve`` (tiny model, 127.0.0.1, a free port): the same events and, with the same
seed, the same tokens as the local model engine; documents in parallel; a closed port; cancel closes the stream."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from app.cli import main as dwb
from inference.batch.runner import run_parse
from inference.documents import open_document
from inference.errors import CancelledError
from inference.runtime.events import Cancelled, DenoisingStep, Finished
from inference.tasks import ParseOptions, TaskContext
from inference.tasks.model import ModelEngine
from inference.tasks.remote import RemoteEngine, load_processor
from inference.weights.loading import load_model
from tests.helpers import serving

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "sample.pdf"


@pytest.fixture(scope="module")
def params(loaded):
    return ModelEngine(loaded).engine.default_params(max_new_tokens=512, max_denoising_steps=4, seed=5)


def remote(url, params, **kw):
    return RemoteEngine(url, load_processor("tiny"), params=params, **kw)


def test_remote_parse_gives_the_local_events_and_tokens(loaded, params, served):
    local = ModelEngine(loaded)
    local.params = params
    doc = open_document(SAMPLE)
    options = ParseOptions(batch_size=1)
    local_events, remote_events = [], []
    mine = local.parse(doc, options, TaskContext(on_event=local_events.append))
    engine = remote(served[1], params, concurrency=1)
    theirs = engine.parse(doc, options, TaskContext(on_event=remote_events.append))
    assert [type(e) for e in remote_events] == [type(e) for e in local_events]
    finished = [(e.ids.tolist(), e.texts) for e in local_events if isinstance(e, Finished)]
    assert len(finished) == len(doc.pages) == 2
    assert [(e.ids.tolist(), e.texts) for e in remote_events if isinstance(e, Finished)] == finished
    steps = [
        (e.draft.tolist(), e.accepted.tolist(), e.entropy.tolist())
        for e in local_events
        if isinstance(e, DenoisingStep)
    ]
    assert [
        (e.draft.tolist(), e.accepted.tolist(), e.entropy.tolist())
        for e in remote_events
        if isinstance(e, DenoisingStep)
    ] == steps
    assert theirs.markdown == mine.markdown and not theirs.document.errors
    assert theirs.engine == "remote"


def test_four_documents_in_parallel(params, served, tmp_path):
    runner, url = served
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(4):
        shutil.copy(SAMPLE, inputs / f"doc{i}.pdf")
    runner.peak_in_flight = 0
    result = run_parse(
        [inputs],
        tmp_path / "out",
        remote(url, params, concurrency=4),
        formats=("md",),
        options=ParseOptions(batch_size=1),
    )
    assert [i.status for i in result.items] == ["done"] * 4
    assert runner.peak_in_flight == 4  # four documents' requests at the server at once
    alone = run_parse(
        [inputs / "doc2.pdf"],
        tmp_path / "alone",
        remote(url, params, concurrency=1),
        options=ParseOptions(batch_size=1),
    )
    assert alone.items[0].status == "done"  # the same seed gives the same pages whatever ran alongside
    assert (tmp_path / "alone" / "doc2.md").read_text() == (tmp_path / "out" / "doc2.md").read_text()


def test_closed_port_gives_page_errors_after_bounded_retries(params, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    engine = remote(f"http://127.0.0.1:{port}/v1", params, model="tiny", http_retries=2, backoff=0.01)
    parsed = engine.parse(open_document(SAMPLE), ParseOptions(batch_size=1))
    assert [e.page for e in parsed.document.errors] == [1, 2]
    assert all("gave up after 3 tries" in e.message for e in parsed.document.errors)
    result = run_parse([SAMPLE], tmp_path / "out", engine)
    assert result.items[0].status == "partial" and "gave up" in result.items[0].message


def test_cancel_closes_the_stream_and_the_server_stops_the_run(served, loaded):
    runner, url = served
    long = ModelEngine(loaded).engine.default_params(
        max_new_tokens=512, max_denoising_steps=1000, seed=77, stability_threshold=None, confidence_threshold=None
    )
    engine = remote(url, long, concurrency=1)
    from inference.runtime.cancel import CancelToken

    cancel = CancelToken()

    def on_event(event):
        if isinstance(event, DenoisingStep):
            cancel.cancel()

    with pytest.raises(CancelledError):
        engine.ask([open_document(SAMPLE)], "What is it?", TaskContext(on_event=on_event, cancel=cancel))
    import time

    for _ in range(600):  # a bound on waiting, not a timing assertion
        done = [r for r in runner.recent if r.params.seed == 77]
        if done:
            break
        time.sleep(0.05)
    assert isinstance(done[-1].last, Cancelled) and done[-1].steps_after_cancel <= 1


def test_cli_parse_ask_extract_remote(served, tmp_path, capsys):
    url = served[1]
    common = ["--engine", "remote", "--base-url", url, "--model", "tiny", "--steps", "4", "--max-new-tokens", "256"]
    code = dwb(["parse", str(SAMPLE), "--out", str(tmp_path / "out"), "--format", "md,json", *common])
    entry = json.loads((tmp_path / "out" / ".dwb-manifest.json").read_text())["documents"]["sample.pdf"]
    assert entry["options"]["engine"] == "remote"
    assert code == (0 if entry["status"] == "done" else 1)  # each outcome is forced in the test below
    assert dwb(["ask", str(SAMPLE), "What is the sample about?", "--json", *common]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["engine"] == "remote" and answer["citations"]
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"title": {"type": "string"}}}))
    code = dwb(["extract", str(SAMPLE), "--schema", str(schema), *common])
    extraction = json.loads(capsys.readouterr().out)
    assert extraction["engine"] == "remote"
    assert extraction["valid"] and code == 0  # the schema's template pins the JSON's shape, whatever the model writes


@pytest.mark.parametrize(
    ("writes", "status", "code"),
    [("a short line", "done", 0), ("past max_tokens", "partial", 1)],
    ids=["ends-in-time", "cut-off"],
)
def test_cli_remote_parse_is_done_or_partial_as_the_server_finished(tmp_path, writes, status, code):
    """A server whose model ends its answers in time: every page done, exit code 0. One whose model never writes
    end-of-sequence: the server says so (finish_reason: length), each page is an error, the document partial and the
    exit code 1."""
    from tests.model_helpers import towards, writes_then_ends

    biased = load_model("tiny", dtype="fp32", device="cpu")
    letter = biased.tokenizer.convert_tokens_to_ids("a")
    if writes == "a short line":
        writes_then_ends(biased.model, letter, biased.tokenizer.eos_token_id)
    else:
        towards(biased.model, letter, strength=30.0)
    with serving(biased) as (_runner, url):
        common = ["--engine", "remote", "--base-url", url, "--model", "tiny", "--steps", "4", "--max-new-tokens", "256"]
        assert dwb(["parse", str(SAMPLE), "--out", str(tmp_path / "out"), *common]) == code
    entry = json.loads((tmp_path / "out" / ".dwb-manifest.json").read_text())["documents"]["sample.pdf"]
    assert entry["status"] == status
    if status == "done":
        assert entry["errors"] == []
    else:
        assert entry["errors"] and all("finish_reason: length" in error for error in entry["errors"])


def test_cli_seed_gives_the_same_pages_again_locally_and_through_the_server(served, tmp_path):
    """``--seed`` seeds every engine run: the same pages, batch size and seed give the same text in another run and
    through ``dwb serve``; another seed other text (random weights: the text is the sampler's draw)."""
    common = ["--model", "tiny", "--steps", "4", "--max-new-tokens", "256", "--per-page"]
    local = [*common, "--engine", "model", "--dtype", "fp32", "--device", "cpu", "--batch-size", "1"]

    def pages(name, *extra):
        assert dwb(["parse", str(SAMPLE), "--out", str(tmp_path / name), *extra]) == 0
        return {f.name: f.read_text() for f in sorted((tmp_path / name).glob("*_pg*.md"))}

    first = pages("first", *local, "--seed", "3")
    assert len(first) == 2 and all(text.strip() for text in first.values())
    assert pages("again", *local, "--seed", "3") == first
    assert pages("served", *common, "--engine", "remote", "--base-url", served[1], "--seed", "3") == first
    assert pages("other", *local, "--seed", "4") != first


def test_cli_remote_needs_a_url(capsys):
    assert dwb(["ask", str(SAMPLE), "q", "--engine", "remote"]) == 2
    assert "--base-url" in capsys.readouterr().err
