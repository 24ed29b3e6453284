"""Conversations and citations in ``inference.tasks``: a model answer over several documents cites the right one,
and a follow-up question sends only its own turn after the cached ones (the tiny random model: the path is real,
the text random)."""

from __future__ import annotations

import pymupdf
import pytest

from inference.documents import open_document
from inference.runtime.events import PrefillStarted
from inference.tasks import TaskContext
from inference.tasks.conversation import Conversation, cite


@pytest.fixture()
def two_reports(tmp_path):
    """Two documents of two pages each: page 2 of each is about something else."""
    paths = []
    for name, pages in (
        ("harbour", ["The harbour opens at six.", "Fishing boats pay a mooring fee of twelve euros."]),
        ("library", ["The library opens at nine.", "Overdue books cost forty cents a day in fines."]),
    ):
        path = tmp_path / f"{name}.pdf"
        pdf = pymupdf.open()
        for text in pages:
            pdf.new_page().insert_text((72, 72), text, fontsize=12)
        pdf.save(path)
        paths.append(path)
    docs = [open_document(p) for p in paths]
    assert all(len(d.pages) == 2 for d in docs), [len(d.pages) for d in docs]
    return docs


def test_a_named_citation_points_at_the_named_document(two_reports):
    harbour, library = two_reports
    cited = cite(
        "Books cost forty cents a day [library.pdf, p. 2]. Boats pay twelve euros [harbour, page 2].", two_reports
    )
    assert [(c.document, c.page) for c in cited] == [(library.source, 2), (harbour.source, 2)]


def test_an_unnamed_citation_points_at_the_document_whose_page_says_it(two_reports):
    """[p. 2] exists in both documents: the one whose page 2 shares the statement's words is cited, not the first."""
    harbour, library = two_reports
    cited = cite("Overdue books are fined forty cents a day [p. 2].", two_reports)
    assert [(c.document, c.page) for c in cited] == [(library.source, 2)]
    cited = cite("Boats pay a mooring fee [p. 2].", list(reversed(two_reports)))
    assert [(c.document, c.page) for c in cited] == [(harbour.source, 2)]


def test_a_page_no_document_has_is_not_cited(two_reports):
    assert [c.page for c in cite("Nothing here [p. 9].", two_reports)] == []


def test_several_documents_ask_the_model_to_name_the_document(two_reports):
    from inference.tasks.conversation import ask_instruction

    assert "[document name, p. N]" in ask_instruction("q", two_reports)
    assert "[p. N]" in ask_instruction("q", two_reports[:1])


@pytest.fixture(scope="module")
def engine():
    from inference.tasks.model import ModelEngine
    from inference.weights.loading import load_model

    eng = ModelEngine(load_model("tiny", dtype="fp32", device="cpu"))
    eng.params = eng.engine.default_params(max_new_tokens=32, max_denoising_steps=2, seed=0)
    return eng


def test_a_follow_up_sends_only_its_own_turn_and_a_cut_turn_starts_afresh(engine, two_reports):
    from inference.errors import CancelledError
    from inference.runtime.cancel import CancelToken

    conversation = Conversation()
    first: list = []
    engine.ask(two_reports, "When does the harbour open?", TaskContext(on_event=first.append), conversation)
    assert conversation.follows_up and conversation.turns == 1
    counted = engine.count_prompt(two_reports, "And the library?", conversation)
    second: list = []
    engine.ask(two_reports, "And the library?", TaskContext(on_event=second.append), conversation)
    prefill = [e for e in second if isinstance(e, PrefillStarted)][0]
    full = [e for e in first if isinstance(e, PrefillStarted)][0]
    assert counted.follow_up and prefill.prompt_tokens == counted.tokens < full.prompt_tokens
    assert prefill.cached_tokens >= full.prompt_tokens and conversation.turns == 2  # the first turn is cached

    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(CancelledError):
        engine.ask(two_reports, "Cut short?", TaskContext(cancel=cancel), conversation)
    assert not conversation.follows_up  # the next question reads the documents afresh
    assert not engine.count_prompt(two_reports, "Again?", conversation).follow_up


def test_without_a_conversation_every_question_reads_the_documents(engine, two_reports):
    events: list = []
    engine.ask(two_reports[:1], "When does the harbour open?", TaskContext(on_event=events.append))
    prefill = [e for e in events if isinstance(e, PrefillStarted)][0]
    assert (
        prefill.cached_tokens == 0
        and prefill.prompt_tokens == engine.count_prompt(two_reports[:1], "When does the harbour open?").tokens
    )
