"""A batch that meets an outage keeps its work: pages lost to a server that went away make their document partial,
a partial document is not done (a rerun parses it again, finished ones stay untouched), any partial or failed
document makes ``dwb parse`` exit non-zero, and ``--doc-timeout`` bounds each document."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from app.cli import main as dwb
from inference.batch.runner import run_parse
from inference.serving.runner import Runner
from inference.serving.server import ChatApp, ServeConfig, start
from inference.weights.loading import load_model

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "sample.pdf"


@pytest.fixture(scope="module")
def url():
    runner = Runner(load_model("tiny-trained", dtype="fp32", device="cpu"))  # ends its pages: none cut off
    server, thread, port = start(ChatApp(runner, ServeConfig(model_name="tiny-trained")), "127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join()
    runner.close()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def _parse(inputs, out, base_url, *extra):
    common = ["--engine", "remote", "--model", "tiny-trained", "--base-url", base_url, "--retries", "0", "--steps", "4"]
    return dwb(["parse", *map(str, inputs), "--out", str(out), *common, *extra])


@pytest.mark.slow
def test_outage_makes_the_exit_non_zero_and_a_rerun_parses_the_partial_documents_only(url, tmp_path, capsys):
    good, hit = tmp_path / "good.pdf", tmp_path / "hit.pdf"
    shutil.copy(SAMPLE, good)
    shutil.copy(SAMPLE, hit)
    out = tmp_path / "out"
    assert _parse([good], out, url) == 0
    kept = (out / "good.md").stat().st_mtime_ns
    assert _parse([good, hit], out, _closed_port()) == 1  # the server is gone: hit.pdf's pages fail
    err = capsys.readouterr().err
    assert "1 already done, 1 partial" in err and "partial: " in err
    assert _parse([good, hit], out, url) == 0  # back: the partial document is parsed, the good one left alone
    err = capsys.readouterr().err
    assert "1 parsed, 1 already done, 0 partial" in err
    assert (out / "good.md").stat().st_mtime_ns == kept


@pytest.mark.slow
def test_doc_timeout_fails_the_document_and_the_batch_goes_on(url, tmp_path):
    from inference.tasks.remote import RemoteEngine, load_processor

    slow = {"max_new_tokens": 512, "max_denoising_steps": 1000, "stability_threshold": None}
    engine = RemoteEngine(
        url, load_processor("tiny-trained"), params={**slow, "confidence_threshold": None}, concurrency=1
    )
    result = run_parse([SAMPLE], tmp_path / "out", engine, doc_timeout=2.0)
    assert result.items[0].status == "failed" and "not parsed within 2 s (--doc-timeout)" in result.items[0].message
