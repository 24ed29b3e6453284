"""Conversations and citations: what an Ask keeps between questions and how its answer points at the documents.

- A :class:`Conversation` is follow-up questions about one set of documents with one engine. The first question reads
  the documents into a session's KV cache; a follow-up sends only its own turn (``follow_up_ids``: the chat template's
  next user turn and the model's turn opening). A cut turn (cancelled, failed) leaves no session: the next question
  reads the documents afresh. Engines without a cache of their own (builtin, a server) answer every question afresh.
- :func:`cite` reads the ``[p. N]`` and ``[name, p. N]`` marks an answer holds into citations of the right document:
  the named one, else the only one with such a page, else the one whose page N shares most words with the statement
  the mark ends; the citation's passage is the block of that page the statement shares most words with.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.documents.model import Document
from inference.tasks.base import Citation
from inference.tasks.builtin import PassageIndex

ASK_INSTRUCTION = (
    "Answer the question from the documents above. After each statement, cite the page it rests on "
    "as [p. N]. If the documents do not answer it, say so.\nQuestion: {question}"
)
ASK_INSTRUCTION_MANY = (
    "Answer the question from the documents above. After each statement, cite the document and page it rests on "
    "as [document name, p. N]. If the documents do not answer it, say so.\nQuestion: {question}"
)
CITATION = re.compile(r"\[(?:(?P<name>[^\[\],]{1,200}),\s*)?(?:p\.|page)\s*(?P<page>\d{1,5})\]", re.I)
WORD = re.compile(r"\w{3,}")


def ask_instruction(question: str, docs: Sequence[Document]) -> str:
    """The Ask instruction: over several documents the model is asked to name the document it cites."""
    template = ASK_INSTRUCTION_MANY if len(docs) > 1 else ASK_INSTRUCTION
    return template.format(question=question)


@dataclass
class Conversation:
    """One scope's follow-up state with one engine: the session holding the KV cache of the turns so far (None
    before a first answer, after a cut turn, or with an engine that keeps no cache)."""

    session: Any = None  # inference.runtime.engine.Session
    turns: int = 0

    @property
    def follows_up(self) -> bool:
        """Whether the next question is sent as a follow-up turn (only its own tokens)."""
        return self.session is not None

    def forget(self) -> None:
        """The cache means nothing any more (another model, a cut turn): the next question reads afresh."""
        self.session = None


@dataclass(frozen=True)
class PromptCount:
    """What an Ask would send: its prompt tokens (a follow-up: only the new ones), and whether it is over the
    budget (then the documents are read in parts)."""

    tokens: int
    follow_up: bool = False
    too_long: bool = False


def follow_up_ids(processor: Any, question: str) -> Any:
    """Token ids of one more user turn and the model's turn opening, from the processor's own chat template."""
    marker = "\u2063previous answer\u2063"
    text = processor.apply_chat_template(
        [
            {"role": "user", "content": [{"type": "text", "text": "q"}]},
            {"role": "assistant", "content": [{"type": "text", "text": marker}]},
            {"role": "user", "content": [{"type": "text", "text": question}]},
        ],
        add_generation_prompt=True,
        tokenize=False,
    )
    turn = text[text.rindex(marker) + len(marker) :]
    return processor.tokenizer(turn, add_special_tokens=False, return_tensors="pt")["input_ids"]


def cite(text: str, docs: Sequence[Document]) -> list[Citation]:
    """The pages an answer's marks cite, each once, in the order cited; a mark no document has is left out."""
    out: list[Citation] = []
    seen = set()
    start = 0
    for m in CITATION.finditer(text):
        statement, start = text[start : m.start()], m.end()
        number = int(m.group("page"))
        doc = _cited_document(docs, number, m.group("name"), statement)
        if doc is None or (doc.source, number) in seen:
            continue
        page = doc.pages[number - 1]
        seen.add((doc.source, number))
        out.append(Citation(document=doc.source, page=number, label=page.label, text=cited_passage(page, statement)))
    return out


def cited_passage(page: Any, statement: str) -> str:
    """What on the page a statement rests on: the block sharing most of its words (two at least), else the page's
    opening. The window fills that block, not the page's first blocks."""
    words = set(WORD.findall(statement.lower()))

    def shared(block: Any) -> int:
        return len(words & set(WORD.findall(block.text.lower())))

    best = max(page.blocks, key=shared, default=None)
    return best.text if best is not None and shared(best) >= 2 else page.text[:400]


def _cited_document(docs: Sequence[Document], number: int, name: str | None, statement: str) -> Document | None:
    having = [d for d in docs if 1 <= number <= len(d.pages)]
    return _pick(having, lambda d: d.name, lambda d: d.pages[number - 1].text, name, statement)


def mark_target(mark: re.Match[str], statement: str, citations: Sequence[Citation]) -> Citation | None:
    """Which of an answer's citations a ``CITATION`` mark stands for (as :func:`cite` chose it)."""
    number = int(mark.group("page"))
    having = [c for c in citations if c.page == number]
    return _pick(having, lambda c: Path(c.document).name, lambda c: c.text, mark.group("name"), statement)


def _pick(having: list[Any], name_of: Any, text_of: Any, name: str | None, statement: str) -> Any:
    """The named one of ``having``; else the only one; else the one whose text shares most words with the
    statement a mark ends."""
    if name:
        wanted = name.strip().strip("\"'\u201c\u201d").lower()
        named = [h for h in having if wanted in {name_of(h).lower(), Path(name_of(h)).stem.lower()}]
        if not named:
            named = [h for h in having if Path(name_of(h)).stem.lower() in wanted or wanted in name_of(h).lower()]
        if len(named) == 1:
            return named[0]
        having = named or having
    if len(having) <= 1:
        return having[0] if having else None
    words = set(WORD.findall(statement.lower()))
    return max(having, key=lambda h: len(words & set(WORD.findall(text_of(h).lower()))))


def retrieved(docs: Sequence[Document], question: str, pages: int = 3) -> list[Citation]:
    """Without a mark in the answer: the pages the passage index finds for the question, each once, best first."""
    out: list[Citation] = []
    seen = set()
    for passage, score in PassageIndex.build(docs).search(question, k=8):
        if (passage.document, passage.page) in seen:
            continue
        seen.add((passage.document, passage.page))
        out.append(
            Citation(
                document=passage.document,
                page=passage.page,
                label=passage.label,
                text=passage.text,
                score=round(score, 3),
            )
        )
        if len(out) == pages:
            break
    return out
