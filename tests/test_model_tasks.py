"""The model engine end to end with the tiny random-weights model: prompts built, engine run, output parsed or
validated, exports written. The text is random; the path is the real one."""

from __future__ import annotations

import json

import numpy as np
import pymupdf
import pytest
from PIL import Image

from app.cli import main as dwb
from inference.documents import open_document
from inference.exports import parse_formats, write_parse
from inference.runtime.events import DenoisingStep, Finished, PrefillStarted
from inference.tasks import TaskContext
from inference.tasks.base import ParseOptions
from inference.tasks.model import ModelEngine
from inference.tasks.schema import parse_json_object
from inference.weights.loading import load_model


@pytest.fixture(scope="module")
def engine():
    loaded = load_model("tiny", dtype="fp32", device="cpu")
    eng = ModelEngine(loaded, retries=1)
    eng.params = eng.engine.default_params(max_new_tokens=256, max_denoising_steps=4, seed=0)
    return eng


@pytest.fixture()
def pdf(tmp_path):
    path = tmp_path / "memo.pdf"
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Memo: the budget for 2026 is 4,200 euros.", fontsize=12)
    img = Image.fromarray((np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8))
    img_path = tmp_path / "chart.png"
    img.save(img_path)
    page.insert_image(pymupdf.Rect(72, 100, 372, 300), filename=str(img_path))
    doc.new_page().insert_text((72, 72), "Second page: signed by the treasurer.", fontsize=12)
    doc.save(path)
    return path


def test_model_parse_runs_the_engine_per_page_and_exports(engine, pdf, tmp_path):
    events = []
    result = engine.parse(open_document(pdf), ParseOptions(batch_size=1), context=TaskContext(on_event=events.append))
    assert result.engine == "model" and len(result.pages) == 2
    assert sum(isinstance(e, PrefillStarted) for e in events) == 2  # one generation per page
    assert sum(isinstance(e, Finished) for e in events) == 2
    assert any(isinstance(e, DenoisingStep) for e in events)
    generated = [e.texts[0].strip() for e in events if isinstance(e, Finished)]
    for page, md, text in zip(result.document.pages, result.pages, generated, strict=True):
        assert md.startswith(f"<!-- page {page.number} -->")
        assert page.blocks[0].attrs["source"] == "model" and page.blocks[0].text == text
    written = write_parse(result, tmp_path / "out", "memo", parse_formats("md,json,txt,html"))
    assert len(written) == 4 and all(p.stat().st_size > 0 for p in written)
    assert json.loads((tmp_path / "out" / "memo.json").read_text())["engine"] == "model"


def test_model_ask_builds_a_prompt_with_every_page_and_cites(engine, pdf):
    seen = []
    original = engine.builder.build

    def spy(docs, instruction, policy=None, **kw):
        prompt = original(docs, instruction, policy, **kw)
        seen.append(prompt)
        return prompt

    engine.builder.build = spy
    try:
        answer = engine.ask([open_document(pdf)], "What is the budget for 2026?")
    finally:
        engine.builder.build = original
    assert answer.kind == "generated" and answer.engine == "model"
    prompt = seen[0]
    assert "What is the budget for 2026?" in prompt.instruction
    assert [r.page for r in prompt.reports] == [1, 2] and not prompt.dropped
    assert answer.citations and answer.citations[0].page == 1  # random text cites nothing: retrieval fills in


def test_model_extract_validates_and_retries_with_the_errors(engine, pdf):
    prompts = []
    original = engine.builder.build

    def spy(docs, instruction, policy=None):
        prompts.append(instruction)
        return original(docs, instruction, policy)

    engine.builder.build = spy
    engine.template = False  # the prompt path (the canvas template is tests/test_pinned_extraction.py)
    schema = {"type": "object", "required": ["budget"], "properties": {"budget": {"type": "number"}}}
    try:
        result = engine.extract([open_document(pdf)], schema)
    finally:
        engine.builder.build = original
        del engine.template
    assert result.kind == "generated"
    assert result.attempts == 2 and len(prompts) == 2  # random output is never valid: asked again once
    assert not result.valid and result.errors
    assert "Your previous reply was not valid" in prompts[1] and result.errors[0].split(":")[0] in prompts[1]


def test_parse_json_object_finds_fenced_and_bare_objects():
    assert parse_json_object('Sure!\n```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_object('noise {"a": {"b": [1, 2]}} tail') == {"a": {"b": [1, 2]}}
    with pytest.raises(ValueError):
        parse_json_object("no json here {")


def test_cli_parse_with_the_tiny_model(pdf, tmp_path, capsys):
    out = tmp_path / "cli"
    code = dwb(
        [
            "parse",
            str(pdf),
            "--engine",
            "model",
            "--model",
            "tiny",
            "--max-new-tokens",
            "256",
            "--steps",
            "2",
            "--out",
            str(out),
            "--format",
            "md,json",
        ]
    )
    assert code == 0
    assert (out / "memo.md").read_text().startswith("<!-- page 1 -->") and (out / "memo.json").is_file()
    assert "random weights" in capsys.readouterr().err
    assert dwb(["parse", str(pdf), "--engine", "model", "--out", str(out)]) == 2  # no --model: a clear message
    assert "--model tiny" in capsys.readouterr().err


def test_model_ask_over_budget_reads_chunk_by_chunk_and_combines(engine, pdf):
    from inference.prompts import PromptPolicy

    full = engine.builder.build([open_document(pdf)], "x", PromptPolicy(max_soft_tokens=70))
    saved = engine.policy
    engine.policy = PromptPolicy(budget_tokens=full.total_tokens - 20, max_soft_tokens=70, min_soft_tokens=70)
    events, steps = [], []
    try:
        answer = engine.ask(
            [open_document(pdf)],
            "Who signed the memo?",
            context=TaskContext(on_event=events.append, progress=lambda d, t, w: steps.append(w)),
        )
    finally:
        engine.policy = saved
    runs = sum(isinstance(e, PrefillStarted) for e in events)
    assert runs >= 2 and steps[-1] == "combining"  # at least one chunk (map), then one combining run (reduce)
    assert answer.kind == "generated" and answer.citations


def test_passages_cut_at_paragraphs_then_sentences_and_cover_the_text():
    from inference.prompts import passage_spans

    text = "One two. Three four.\n\nFive six seven. Eight.\n\nNine ten eleven twelve thirteen."
    spans = passage_spans(text, 30)
    assert spans[0] == (0, text.index("Five"))  # the paragraph break, not the sentence end before it
    assert all(b - a <= 30 for a, b in spans) and spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))  # no gap, no overlap
    assert text[slice(*spans[1])] == "Five six seven. Eight.\n\n"
    assert passage_spans("x" * 25, 10) == [(0, 10), (10, 20), (20, 25)]  # no boundary at all: hard cuts


def test_one_page_over_the_budget_reaches_the_model_passage_by_passage(engine, tmp_path):
    """A text file is one page; over the budget it is cut into passages and every passage is in some prompt the
    model is given, with its page and character span; nothing is left out and the page is cited once."""
    from inference.prompts import PromptPolicy

    path = tmp_path / "log.txt"
    paragraphs = [f"Entry {i} of the harbour log was filed by clerk{i} on a calm day." for i in range(24)]
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    doc = open_document(path)
    saved = engine.policy
    engine.policy = PromptPolicy(budget_tokens=700)
    assert engine.builder.build([doc], "x", engine.policy).reports[0].tokens > 1400  # the page alone: over twice
    sent, original = [], engine.generate

    def spy(prompt, context):
        sent.append(prompt)
        return original(prompt, context)

    engine.generate = spy
    try:
        answer = engine.ask([doc], "Who filed entry 7?")
    finally:
        engine.policy, engine.generate = saved, original
    chunks = [p for p in sent if any(part.document for part in p.parts)]
    assert len(chunks) >= 3 and all(c.total_tokens <= 700 for c in chunks)
    passages = [part for c in chunks for part in c.parts if part.span is not None]
    assert all(part.page == 1 and part.document == str(path) for part in passages)
    spans = [part.span for part in passages]
    assert spans[0][0] == 0 and spans[-1][1] == len(doc.pages[0].text)
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    sent_text = "\n".join(part.text for part in passages)
    assert all(paragraph in sent_text for paragraph in paragraphs)
    assert f"characters {spans[1][0]}-{spans[1][1]}" in passages[1].text  # the model sees where a passage sits
    assert answer.left_out == [] and [(c.document, c.page) for c in answer.citations] == [(str(path), 1)]


def test_what_cannot_fit_is_listed_as_left_out(engine, pdf):
    """An image-only page larger than the whole budget cannot be cut: the answer names it, with its cost."""
    from inference.prompts import PromptPolicy

    saved = engine.policy
    engine.policy = PromptPolicy(budget_tokens=150, mode="image", max_soft_tokens=70, min_soft_tokens=70)
    try:
        answer = engine.ask([open_document(pdf)], "What is the budget?")
    finally:
        engine.policy = saved
    assert [item.page for item in answer.left_out] == [1, 2]
    assert all(item.tokens > 0 and "over the token budget" in item.reason for item in answer.left_out)
    assert answer.to_json()["left_out"][0]["document"] == "memo.pdf"


def test_sources_name_each_page_once_in_the_order_first_cited(tmp_path):
    """Several passages of one page cited (the builtin engine quotes passages) give that page once under Sources."""
    from inference.exports import answer_markdown
    from inference.tasks import BuiltinEngine

    path = tmp_path / "notes.txt"
    filler = "Boats, nets and ropes are stored along the quay by the fishermen of the village. " * 12
    paragraphs = [f"The harbour opens at six. {filler}", f"The harbour closes at ten. {filler}", filler]
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    answer = BuiltinEngine().ask([open_document(path)], "When does the harbour open and close?")
    assert len(answer.citations) >= 2 and {c.page for c in answer.citations} == {1}
    assert answer_markdown(answer).splitlines()[-1] == "Sources: notes.txt, p. 1"


def _pages_pdf(path, n):
    doc = pymupdf.open()
    for i in range(n):
        doc.new_page().insert_text(
            (72, 72 + 20 * i), f"Page {i + 1}: item {i * 7} costs {i * 3 + 1} euros." * (i + 1), fontsize=11
        )
    doc.save(path)
    return path


def test_batched_parse_runs_pages_together_and_matches_unbatched_where_sampling_is_settled(tmp_path):
    """4 pages as one left-padded batch: one prefill, a row per page, each page's text from its row. With random
    weights, sampling differs between a batch and single runs (random draws are shared across rows, and padded rows
    sit at shifted positions, as in generate()); on a model whose logits settle every position (sharpened), the
    batched text equals the unbatched text page for page."""
    import copy

    from tests.model_helpers import sharpen

    loaded = load_model("tiny", dtype="fp32", device="cpu")
    loaded.model = sharpen(copy.deepcopy(loaded.model), [40.0] * 8)
    eng = ModelEngine(loaded, retries=1)
    eng.params = eng.engine.default_params(max_new_tokens=256, max_denoising_steps=4, seed=0)
    doc = open_document(_pages_pdf(tmp_path / "four.pdf", 4))
    events = []
    batched = eng.parse(doc, ParseOptions(batch_size=4), context=TaskContext(on_event=events.append))
    assert sum(isinstance(e, PrefillStarted) for e in events) == 1
    finished = [e for e in events if isinstance(e, Finished)]
    assert len(finished) == 1 and len(finished[0].texts) == 4
    assert [p.blocks[0].text for p in batched.document.pages] == [t.strip() for t in finished[0].texts]
    steps = [e for e in events if isinstance(e, DenoisingStep)]
    assert steps and steps[0].draft.shape == (4, 256)  # every row's denoising reaches the viewer
    single = eng.parse(doc, ParseOptions(batch_size=1))
    assert batched.pages == single.pages
    assert 1 <= eng.default_batch_size() <= 8


def test_combining_never_sends_a_prompt_over_the_budget(engine):
    """Partial answers (some longer than a combining prompt holds) are combined in halves; a part that cannot fit
    stays as it is, so no prompt over the budget is ever run."""
    from inference.prompts import PromptPolicy

    saved = engine.policy
    engine.policy = PromptPolicy(budget_tokens=200)
    sent = []
    generate = engine.generate
    engine.generate = lambda prompt, context: sent.append(prompt) or generate(prompt, context)
    try:
        long = "the fox jumps over the lazy dog " * 12  # one partial answer alone is over the 200 tokens
        text = engine._combine([long, "short one", long, "short two"], "What does the fox do?", TaskContext())
    finally:
        engine.policy, engine.generate = saved, generate
    assert sent and all(p.total_tokens <= 200 for p in sent)
    assert long.strip() in text  # the part too long to combine is kept, not lost
