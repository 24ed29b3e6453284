"""The remote engine against a server that answers as vLLM does (tests/vllm_contract_server.py): the server's context
and images per prompt respected by splitting, the image budget sent as vLLM reads it, options vLLM ignores said once
and not sent, ``finish_reason: length`` making a page partial, and the processor named by the served model."""

from __future__ import annotations

import logging

import pytest
from PIL import Image, ImageDraw

from inference.batch.runner import run_parse
from inference.documents import open_document
from inference.errors import ModelLoadError
from inference.tasks import ParseOptions
from inference.tasks.remote import RemoteEngine, load_processor
from inference.weights.loading import load_model
from tests.vllm_contract_server import ContractServer, serve

PARAMS = {"max_denoising_steps": 4, "seed": 3, "max_new_tokens": 128}


@pytest.fixture
def contract(loaded, request):
    server = ContractServer(loaded, **getattr(request, "param", {}))
    running, thread, url = serve(server)
    yield server, url
    running.should_exit = True
    thread.join()


def _scans(folder, count):
    paths = []
    for i in range(count):
        image = Image.new("RGB", (600, 800), "white")  # a page of lines, so the scan cleaner keeps its shape
        draw = ImageDraw.Draw(image)
        for line in range(30):
            draw.text((30, 20 + 25 * line), f"Scanned page {i + 1}, line {line + 1}: some words here.", fill="black")
        path = folder / f"scan{i}.png"
        image.save(path)
        paths.append(path)
    return paths


def _engine(url, **kw):
    return RemoteEngine(url, load_processor("tiny"), params=dict(PARAMS), concurrency=2, http_retries=0, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("contract", [{"image_limit": 4, "max_model_len": 32_768}], indirect=True)
def test_ask_over_more_images_than_the_server_takes_is_split_and_ignored_options_said_once(contract, tmp_path, caplog):
    server, url = contract
    docs = [open_document(p) for p in _scans(tmp_path, 6)]
    engine = _engine(url, max_images=4)  # vLLM lists no image limit: named as its --limit-mm-per-prompt says
    with caplog.at_level(logging.WARNING, logger="inference.tasks.remote"):
        answer = engine.ask(docs, "What page numbers are there?")
        engine.ask(docs[:1], "And here?")
    assert 400 not in server.answers and len(server.requests) >= 3  # two parts and their combination, then one
    images = [
        sum(1 for m in r["messages"] for p in m["content"] if p.get("type") == "image_url") for r in server.requests
    ]
    assert max(images) <= 4 and sum(images) >= 7
    assert all(r["mm_processor_kwargs"] == {"max_soft_tokens": 280} for r in server.requests)
    assert not any("dwb" in r or "seed" in r for r in server.requests) and not server.ignored  # nothing sent in vain
    said = [r.getMessage() for r in caplog.records if "ignored there" in r.getMessage()]
    assert len(said) == 1 and "max_denoising_steps" in said[0] and "seed" in said[0]
    assert answer.text and answer.engine == "remote"


@pytest.mark.slow
@pytest.mark.parametrize("contract", [{"max_model_len": 1024}], indirect=True)
def test_prompts_fit_the_context_the_server_lists(contract, tmp_path):
    server, url = contract
    long = tmp_path / "long.txt"
    long.write_text("\n\n".join(f"Paragraph {i}: the quick brown fox jumps over the lazy dog." for i in range(120)))
    engine = _engine(url)
    answer = engine.ask([open_document(long)], "What does the fox do?")
    assert engine.generator.connect().context == 1024
    assert 400 not in server.answers and len(server.requests) > 2  # read in parts that fit, then combined
    assert answer.text


@pytest.mark.slow
def test_a_page_cut_off_at_max_tokens_makes_the_document_partial(tmp_path):
    """A model that never writes end-of-sequence (its logits biased to one letter) runs every page to max_tokens:
    the server answers ``finish_reason: length`` and each document is partial with the reason, never done."""
    from tests.model_helpers import towards

    biased = load_model("tiny", dtype="fp32", device="cpu")
    towards(biased.model, biased.tokenizer.convert_tokens_to_ids("a"), strength=30.0)
    server = ContractServer(biased, max_model_len=32_768)
    running, thread, url = serve(server)
    try:
        result = run_parse(_scans(tmp_path, 2), tmp_path / "out", _engine(url), options=ParseOptions(batch_size=1))
    finally:
        running.should_exit = True
        thread.join()
    assert server.answers == ["length", "length"]
    assert [i.status for i in result.items] == ["partial", "partial"]
    assert all("cut off at max_tokens" in i.message for i in result.items)


def test_the_processor_is_the_served_models_or_a_clear_message(contract):
    server, url = contract
    engine = RemoteEngine(url, None, http_retries=0)
    with pytest.raises(ModelLoadError) as caught:
        engine.generator.connect()
    message = caught.value.user_message()
    assert "google/diffusion-gemma-test" in message and "--model" in message


@pytest.mark.slow
@pytest.mark.parametrize("reason", ["abort", "error", "repetition"])
def test_an_answer_the_server_cut_off_is_never_done(loaded, tmp_path, reason):
    """vLLM's finish reasons other than ``stop``: parse makes the page an error naming the reason (partial, asked
    again on a rerun), ask carries ``cut_off`` and says so, extract is invalid with the reason."""
    server = ContractServer(loaded, max_model_len=32_768, cut_with=reason)
    running, thread, url = serve(server)
    try:
        scans = _scans(tmp_path, 1)
        first = run_parse(scans, tmp_path / "out", _engine(url), options=ParseOptions(batch_size=1))
        assert first.items[0].status == "partial" and f"finish_reason: {reason}" in first.items[0].message
        asked = len(server.requests)
        again = run_parse(scans, tmp_path / "out", _engine(url), options=ParseOptions(batch_size=1))
        assert len(server.requests) > asked and again.items[0].status == "partial"  # asked again, not kept
        engine = _engine(url)
        answer = engine.ask([open_document(scans[0])], "What is on the page?")
        assert answer.cut_off == reason and answer.to_json()["cut_off"] == reason
        assert any(f"finish_reason: {reason}" in n for n in engine.notices)
        engine.template = False
        extraction = engine.extract(
            [open_document(scans[0])], {"type": "object", "properties": {"title": {"type": "string"}}}
        )
        assert not extraction.valid and any(f"finish_reason: {reason}" in e for e in extraction.errors)
    finally:
        running.should_exit = True
        thread.join()
