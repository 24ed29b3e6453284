"""Where the model engine's tokens come from: the :class:`Generator` interface, what one generation returns, and the
answers that did not end by themselves.

The model engine (:mod:`inference.tasks.model`) builds the prompts and reads the answers; a generator turns prompts
into text. Two implement the interface: :class:`inference.tasks.local.LocalGenerator` (DiffusionGemma loaded here)
and :class:`inference.tasks.remote.HttpGenerator` (a server speaking the OpenAI chat-completions protocol).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from inference.prompts import Prompt, PromptBuilder, PromptPolicy
from inference.tasks.base import TaskContext

ENDED = (None, "stop")  # finish reasons of an answer that ended by itself (a generator that names none is believed)


@dataclass(frozen=True)
class Generation:
    """One prompt's answer. ``finish`` says why it ended: ``None`` or ``"stop"`` by itself; ``"length"``,
    ``"abort"``, ``"error"``, ``"repetition"`` cut off. A templated run also carries its events (the canvas is read
    from them) and, generated here, the session that keeps its prompt cache for re-denoising."""

    text: str
    finish: str | None = None
    events: tuple[Any, ...] = ()
    session: Any = None  # an inference.runtime.session.Session, or None


class Pinning(NamedTuple):
    """What a schema template is laid out for: the tokenizer, the vocabulary, end-of-sequence and the canvas."""

    tokenizer: Any
    vocab_size: int
    eos: int | None
    canvas_length: int


class Generator(Protocol):
    """Prompts in, text out: what differs between a model loaded here and one behind a server."""

    name: str  # the engine's name in results: "model" (loaded here), "remote" (a server)
    concurrency: int  # documents a batch may run at once through this generator
    params: Any  # what steers a run: a local model's DiffusionParams; a server's overrides (see remote.py)

    @property
    def builder(self) -> PromptBuilder:
        """The prompt builder (the processor of the model that generates)."""
        ...

    @property
    def max_images(self) -> int | None:
        """Images one prompt may hold (``None``: no limit but the budget)."""
        ...

    def budget(self, policy: PromptPolicy) -> PromptPolicy:
        """``policy`` within the generator's limits (a server's prompt limit lowers its budget)."""
        ...

    def generate(self, prompts: Sequence[Prompt], context: TaskContext) -> list[Generation]:
        """One answer per prompt; engine events go to ``context.on_event``; a cancel or failure raises."""
        ...

    def pinning(self) -> Pinning | None:
        """What a schema template is laid out for; ``None`` when this generator takes no template."""
        ...

    def templated(self, prompt: Prompt, template: Any, context: TaskContext) -> Generation:
        """One run over ``prompt`` with the canvas ``template``: its events (and its session, generated here)."""
        ...

    def default_batch_size(self) -> int:
        """Prompts per :meth:`generate` call when the caller does not say."""
        ...

    def identity(self) -> dict[str, Any]:
        """What makes the pages it writes what they are: pages kept by a run with another identity are made again."""
        ...

    def close(self) -> None: ...


class CutOffs:
    """The answers that did not end by themselves, by the pages of their prompts (``(None, None)``: a prompt over no
    page): such a page is an error of its document (a rerun asks again), an answer carries the reason, an extraction
    is invalid. Safe to share between the threads of a batch."""

    def __init__(self) -> None:
        self._reasons: dict[tuple[str | None, int | None], str] = {}
        self._lock = threading.Lock()

    def record(self, prompt: Prompt, finish: str | None) -> None:
        """Records ``prompt``'s pages as cut off unless its answer ended by itself."""
        if finish in ENDED:
            return
        pages = {(p.document, p.page) for p in prompt.parts if p.page is not None} or {(None, None)}
        with self._lock:
            self._reasons.update(dict.fromkeys(pages, finish))

    def holds(self, document: str | None, page: int | None) -> bool:
        with self._lock:
            return (document, page) in self._reasons

    def take(self, documents: Iterable[str | None]) -> dict[tuple[str | None, int | None], str]:
        """The cut-off answers recorded for these documents (``None``: answers over no page), forgotten here."""
        wanted = set(documents)
        with self._lock:
            taken = {k: v for k, v in self._reasons.items() if k[0] in wanted}
            for key in taken:
                del self._reasons[key]
        return taken


def cut_off_message(reason: str) -> str:
    """What a page (or answer) that did not end by itself says, by its ``finish_reason``."""
    why = {
        "length": "at max_tokens",
        "abort": "by the server (the run was aborted)",
        "error": "by an error on the server",
        "repetition": "by the server's repetition check",
    }
    return f"the answer was cut off {why.get(reason, 'before its end')} (finish_reason: {reason})"
