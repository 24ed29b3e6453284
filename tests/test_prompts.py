"""Token accounting: the builder's count equals the processor's input_ids, and budgets are kept."""

from __future__ import annotations

import pymupdf
import pytest

from inference.documents import open_document
from inference.prompts import PromptBuilder, PromptPolicy
from tests.helpers import DATA, needs_shared

pytestmark = needs_shared("data")


@pytest.fixture(scope="module")
def builder(tiny_pair):
    return PromptBuilder(tiny_pair[1])


def check_exact(builder, prompt):
    ids = builder.inputs(prompt)["input_ids"]
    assert prompt.total_tokens == ids.shape[1]
    assert prompt.total_tokens == prompt.template_tokens + sum(p.tokens for p in prompt.parts)


def test_text_only(builder):
    prompt = builder.build(
        [open_document(DATA / "docling/pdf/multi_page.pdf")], "Summarise.", PromptPolicy(mode="text")
    )
    assert all(p.kind == "text" for p in prompt.parts)
    check_exact(builder, prompt)


@pytest.mark.parametrize("soft", [70, 140, 280, 560, 1120])
def test_image_only_at_every_budget(builder, soft):
    docs = [open_document(DATA / "ocrmypdf/linn.png"), open_document(DATA / "docling/ocr/qr_bill_example.jpg")]
    prompt = builder.build(docs, "Transcribe.", PromptPolicy(mode="image", max_soft_tokens=soft))
    assert sum(p.kind == "image" for p in prompt.parts) == 2
    check_exact(builder, prompt)
    tokens = [p.tokens for p in prompt.parts if p.kind == "image"]
    assert all(t <= soft + 2 for t in tokens)  # the budget, plus begin- and end-of-image


def test_aspect_ratio_sets_the_image_cost(builder):
    """At one budget a square image and a long one (tall or wide alike) cost different numbers of soft tokens."""
    from PIL import Image

    square, tall, wide = (
        builder.image_tokens(Image.new("RGB", size), 280) for size in [(800, 800), (200, 1600), (1600, 200)]
    )
    assert tall == wide and tall != square and max(square, tall) <= 282


def test_interleaved(builder):
    docs = [
        open_document(DATA / "docling/pdf/picture_classification.pdf"),
        open_document(DATA / "ocrmypdf/skew.pdf"),
        open_document(DATA / "docling/media/sample_10s_video.mp4"),
    ]
    prompt = builder.build(docs, "What is shown?")
    kinds = {p.kind for p in prompt.parts}
    assert kinds == {"text", "image"}
    check_exact(builder, prompt)
    video_markers = [p.text for p in prompt.parts if p.kind == "text" and "sample_10s_video.mp4, 00:" in p.text]
    assert video_markers  # each frame is preceded by its mm:ss timestamp


def test_thousand_pages_against_256k(builder, tmp_path):
    path = tmp_path / "long.pdf"
    pdf = pymupdf.open()
    line = "The quick brown fox jumps over the lazy dog near the riverbank. " * 6
    for i in range(1000):
        page = pdf.new_page()
        page.insert_textbox(pymupdf.Rect(50, 50, 550, 800), f"Section {i + 1}. " + line, fontsize=10)
    pdf.save(path)
    doc = open_document(path)
    prompt = builder.build([doc], "Summarise.", PromptPolicy())
    budget = 262_144 - 8192
    assert prompt.total_tokens <= budget
    dropped = prompt.dropped
    assert dropped and dropped[0].page > 1 and dropped[-1].page == 1000
    included = [r for r in prompt.reports if r.status == "included"]
    assert len(included) + len(dropped) == 1000
    check_exact(builder, prompt)
    chunks = builder.chunks([doc], "Summarise.", PromptPolicy())
    assert len(chunks) >= 2 and all(c.total_tokens <= budget for c in chunks)
    assert sum(len([r for r in c.reports if r.status == "included"]) for c in chunks) == 1000
