"""Schema-pinned extraction: the schema laid out on the canvas, read back, grounded, and fields re-denoised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference.errors import ConfigError
from inference.runtime.template import FREE

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "sample.pdf"
SCHEMA = json.loads((ROOT / "tests" / "data" / "sample-schema.json").read_text())


@pytest.fixture(scope="module")
def vocab(tiny_pair):
    from inference.tasks.pinned import vocabulary

    model, processor = tiny_pair
    return vocabulary(processor.tokenizer, model.config.text_config.vocab_size)


@pytest.fixture(scope="module")
def sample_docs():
    from inference.documents import ingest

    return [r.document for r in ingest([str(SAMPLE)])]


def write_values(layout, vocab, values: dict, pages: dict, quotes: dict) -> np.ndarray:
    """Committed template tokens with these values written into the slots by hand (choices by label)."""
    ids = np.where(layout.template.pinned, layout.template.pins, vocab.pad).copy()

    def put(slot, value):
        if slot.kind == "choice":
            ids[slot.start : slot.start + slot.width] = slot.tokens[slot.labels.index(value)]
            return
        tokens = vocab.encode(str(value))
        assert len(tokens) <= slot.width
        ids[slot.start : slot.start + len(tokens)] = tokens

    for name, f in layout.fields.items():
        node = f.value
        if node.kind == "array":
            for item, value in zip(node.items, values[name], strict=False):
                put(item.slot, value)
        else:
            put(node.slot, values[name])
        put(f.page, pages[name])
        put(f.quote, quotes[name])
    return ids


def test_layout_reads_back_what_the_slots_hold(vocab):
    from inference.tasks.pinned import layout_schema, read_canvas

    layout = layout_schema(SCHEMA, vocab, pages=2, canvas_length=256)
    template = layout.template
    assert template.length % 256 == 0 and template.length > 256, "the tiny byte tokenizer needs two canvases"
    values = {"title": "Sample", "canvas_tokens": 256, "kind": "invoice", "has_figures": True, "topics": ["a b"]}
    quotes = {k: "canvases of 256" for k in values}
    ids = write_values(layout, vocab, values, dict.fromkeys(values, 1), quotes)
    reading = read_canvas(layout, ids, np.zeros(template.length), {})
    assert reading.value == values
    assert reading.evidence["kind"] == {"page": 1, "quote": "canvases of 256"}
    # the canvas itself is the evidence form of the schema: valid JSON once padding is stripped
    text = vocab.decode([t for t in ids if t != vocab.eos])
    parsed = json.loads(text)
    assert parsed["kind"] == {"value": "invoice", "page": 1, "quote": "canvases of 256"}


def test_layout_of_nested_nullable_and_number_fields(vocab):
    from inference.tasks.pinned import layout_schema, read_canvas

    schema = {
        "type": "object",
        "properties": {
            "party": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "vat": {"type": ["string", "null"]}},
            },
            "total": {"type": "number"},
            "due": {"type": ["integer", "null"], "minimum": 0, "maximum": 90},
            "status": {"enum": ["open", "paid"], "type": ["string", "null"]},
        },
    }
    layout = layout_schema(schema, vocab, pages=3, canvas_length=256)
    due = layout.fields["due"].value.slot
    assert due.width == 2, "0..90 needs two digits and no sign"
    status = layout.fields["status"].value.slot
    assert status.labels == ("open", "paid", None)
    ids = np.where(layout.template.pinned, layout.template.pins, vocab.pad).copy()
    name = layout.fields["party"].value.children["name"].slot
    ids[name.start : name.start + 3] = vocab.encode("ACM")
    total = layout.fields["total"].value.slot
    written = vocab.encode("-12.5")
    ids[total.start : total.start + 3] = written[:3]  # sign and two digits
    ids[total.start + total.width - 4] = written[3]  # the point
    ids[total.start + total.width - 3] = written[4]
    ids[status.start : status.start + status.width] = status.tokens[2]
    reading = read_canvas(layout, ids, np.zeros(layout.template.length), {})
    assert reading.value == {"party": {"name": "ACM", "vat": None}, "total": -12.5, "due": None, "status": None}
    # a page choice offers exactly the documents' pages
    assert layout.fields["total"].page.labels == (1, 2, 3)


def test_slots_exclude_tokens_that_break_a_json_string(vocab):
    from inference.tasks.pinned import layout_schema

    layout = layout_schema({"type": "object", "properties": {"a": {"type": "string"}}}, vocab, 1, 256)
    slot = layout.fields["a"].value.slot
    allowed = layout.template.token_sets[layout.template.sets[slot.start]]
    texts = {vocab.tokenizer.decode([int(t)]) for t in allowed if t != vocab.pad}
    assert not any('"' in t or "\\" in t or "\n" in t for t in texts)
    assert vocab.pad in allowed and vocab.eos not in allowed and len(texts) > 60


def test_unsupported_schema_says_use_no_template(vocab):
    from inference.tasks.pinned import layout_schema

    with pytest.raises(ConfigError, match="anyOf") as info:
        layout_schema({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}}, vocab, 1, 256)
    assert "--no-template" in info.value.user_message()


def test_evidence_is_grounded_only_on_its_page(sample_docs):
    from inference.tasks.pinned import ground

    evidence = {
        "on_page": {"page": 1, "quote": "Block  diffusion writes text"},
        "wrong_page": {"page": 2, "quote": "Block diffusion writes text"},
        "made_up": {"page": 1, "quote": "nowhere in the sample"},
        "no_page": {"page": None, "quote": "Block diffusion"},
    }
    out = ground(evidence, sample_docs)
    assert out["on_page"]["grounded"] and out["on_page"]["document"].endswith("sample.pdf")
    block = next(b for b in sample_docs[0].pages[0].blocks if "Block diffusion writes text" in b.text)
    assert out["on_page"]["box"] == [round(v, 1) for v in block.bbox]
    assert not out["wrong_page"]["grounded"] and not out["made_up"]["grounded"] and not out["no_page"]["grounded"]
    assert out["made_up"]["box"] is None


@pytest.fixture(scope="module")
def tiny_engine():
    from inference.tasks.model import ModelEngine
    from inference.weights.loading import load_model

    engine = ModelEngine(load_model("tiny"))
    return engine


@pytest.mark.slow
def test_valid_on_the_first_attempt_for_twenty_seeds(tiny_engine, sample_docs):
    """Validity is by construction, whatever the steps: six steps per canvas keep twenty runs short on a CPU (the
    command-line test below runs the default schedule)."""

    base = tiny_engine.params
    try:
        for seed in range(20):
            tiny_engine.params = base.replace(seed=seed, max_denoising_steps=6)
            result = tiny_engine.extract(sample_docs, SCHEMA)
            assert result.valid and result.attempts == 1 and result.kind == "pinned", (seed, result.errors)
            assert set(result.confidence) == set(SCHEMA["properties"]) == set(result.evidence)
            assert all(0.0 <= c <= 1.0 for c in result.confidence.values())
            for e in result.evidence.values():
                assert e["page"] in (1, 2) and isinstance(e["quote"], str) and isinstance(e["grounded"], bool)
    finally:
        tiny_engine.params = base


@pytest.mark.slow
def test_redo_renoises_only_the_field(tiny_engine, sample_docs):

    base = tiny_engine.params
    tiny_engine.params = base.replace(seed=3, max_denoising_steps=6)
    try:
        tiny_engine.extract(sample_docs, SCHEMA)
        run = tiny_engine.last_pinned
        before = run.ids.copy()
        confidence = dict(run.extraction.confidence)
        tiny_engine.params = base.replace(seed=4, max_denoising_steps=6)
        tiny_engine.redenoise(run, ["title"])
    finally:
        tiny_engine.params = base
    span = run.layout.span(["title"])
    np.testing.assert_array_equal(run.ids[~span], before[~span])
    assert (run.ids[span] != before[span]).any()
    assert run.extraction.valid and run.redone == ["title"]
    assert {k: v for k, v in run.extraction.confidence.items() if k != "title"} == {
        k: v for k, v in confidence.items() if k != "title"
    }
    assert (run.layout.template.pins[run.layout.template.pinned] == run.ids[run.layout.template.pinned]).all()
    assert FREE not in run.ids


@pytest.mark.slow
def test_cli_extract_pins_the_schema_by_default(tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "app.cli", "extract", str(SAMPLE), "--schema", str(schema), "--engine", "model"]
    args += ["--model", "tiny", "--seed", "7", "--steps", "8", "--out", str(out), "--redo", "kind"]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["valid"] and result["attempts"] == 1 and result["kind"] == "pinned"
    assert set(result["evidence"]["topics"]) >= {"page", "quote", "grounded", "box"}
    assert result["value"]["kind"] in ("sample", "invoice", "letter")
    bad = subprocess.run(args[:-2] + ["--redo", "nosuch"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert bad.returncode != 0 and "no field 'nosuch'" in bad.stderr and "Traceback" not in bad.stderr


def test_a_string_over_max_length_is_cut_when_tokens_hold_several_characters():
    """The trained tokenizer has multi-character tokens: ``maxLength`` tokens can spell more than ``maxLength``
    characters, and the value read back is cut to ``maxLength``."""
    from transformers import AutoTokenizer

    from inference.tasks.pinned import layout_schema, read_canvas, vocabulary
    from inference.weights.tiny import trained_folder

    tokenizer = AutoTokenizer.from_pretrained(str(trained_folder()))
    vocab = vocabulary(tokenizer, len(tokenizer))
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 4}}}
    layout = layout_schema(schema, vocab, pages=1, canvas_length=256)
    slot = layout.fields["a"].value.slot
    long_tokens = [t for t in vocab.string if len(vocab.decode([t]).strip()) >= 3][:4]
    assert len(long_tokens) == 4, "the trained tokenizer has tokens of three characters or more"
    ids = np.where(layout.template.pinned, layout.template.pins, vocab.pad).copy()
    ids[slot.start : slot.start + 4] = long_tokens
    value = read_canvas(layout, ids, np.zeros(layout.template.length), {}).value["a"]
    assert len(value) <= 4 and value == vocab.decode(long_tokens).strip()[:4].strip()
