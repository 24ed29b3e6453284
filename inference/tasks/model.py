"""The model engine: the document tasks on DiffusionGemma, prompts from ``inference.prompts``, text from a
:class:`~inference.tasks.generation.Generator`: the model loaded here (:mod:`inference.tasks.local`) or a server
(:mod:`inference.tasks.remote`), given to the engine, which runs the same tasks on either.

- parse: one prompt per page: the page image (scans cleaned), with the text layer as a hint where there is one;
  the output is the page's Markdown.
- ask: the whole document set when it fits the budget; otherwise the builder splits every page into chunks that fit
  (a page over the budget into passages), each chunk is asked (map) and the partial answers are combined (reduce);
  what never reached the model is listed in the answer. Citations are the ``[p. N]`` marks the model writes, each
  page once; without any, the pages BM25 retrieves for the question.
- extract: by default the schema is laid out on the canvas (:mod:`inference.tasks.pinned`): its scaffold pinned,
  only the value slots denoised, with an evidence page and quote per field checked against the document; fields can
  be re-denoised against the cached prompt. ``template=False``: the schema goes in the prompt; the output's JSON is
  validated and, when it fails, the model is asked again with the validation errors (up to ``retries`` times).

Engine events (prefill, every denoising step, commits) go to ``context.on_event`` as they happen. An answer that did
not end by itself (a server's ``finish_reason`` other than ``stop``) is never a finished page, answer or extraction:
the page is an error of its document (asked again on a rerun), the answer carries ``cut_off``, the extraction is
invalid. Follow-up turns and re-denoising need the prompt cache a model loaded here keeps.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

from inference.documents.model import Block, Document
from inference.errors import CancelledError, ConfigError
from inference.prompts import Prompt, PromptBuilder, PromptPolicy
from inference.runtime.params import DiffusionParams
from inference.tasks.base import Answer, LeftOut, ParseOptions, ParseResult, TaskContext
from inference.tasks.conversation import Conversation, PromptCount, ask_instruction, cite, follow_up_ids, retrieved
from inference.tasks.generation import CutOffs, Generator, cut_off_message
from inference.tasks.layout import analyse
from inference.tasks.local import LocalGenerator
from inference.tasks.markdown import page_marker, without_furniture
from inference.tasks.model_extract import ExtractTasks
from inference.tasks.pinned_run import PinnedRun

PARSE_INSTRUCTION = (
    "Transcribe this page into Markdown. Keep the reading order, headings (#), lists, and tables "
    "(HTML <table> where cells are merged). Leave out running headers, footers and page numbers. "
    "Write only the transcription."
)
KEEP_FURNITURE = (
    "Leave out running headers, footers and page numbers.",
    "Keep running headers, footers and page numbers.",
)  # --keep-furniture: the instruction says so
REDUCE_INSTRUCTION = (
    "Partial answers to the question, each from a different part of the documents:\n{partials}\n"
    "Combine them into one answer, keeping the [p. N] citations.\nQuestion: {question}"
)
log = logging.getLogger(__name__)


class ModelEngine(ExtractTasks):
    """The document tasks on a language model: prompts built here, text from the injected :class:`Generator` (the
    model loaded here, or a server through :func:`inference.tasks.remote.RemoteEngine`)."""

    template = True  # extract through the canvas template (False: the prompt-and-retry path)
    agreement = True  # a pinned extraction re-denoises every field once more to measure agreement (confidence)

    def __init__(
        self,
        loaded: Any = None,
        params: DiffusionParams | None = None,
        policy: PromptPolicy | None = None,
        retries: int = 2,
        *,
        generator: Generator | None = None,
    ) -> None:
        """A loaded model (generated here with ``params``, else its defaults) or a ``generator``, not both."""
        if (loaded is None) == (generator is None) or (generator is not None and params is not None):
            raise TypeError("ModelEngine takes a loaded model (and its params) or a generator")
        self.generator: Generator = generator or LocalGenerator(loaded, params)
        self.name = self.generator.name
        self.concurrency = self.generator.concurrency  # documents a batch may run at once
        self.policy = policy or PromptPolicy()
        self.retries = retries
        self.last_pinned: PinnedRun | None = None  # the last templated extraction, for re-denoising its fields
        self.cut_offs = CutOffs()  # answers that did not end by themselves, until their task takes them
        self.notices: list[str] = []  # said once each (also logged as warnings)

    # ------------------------------------------------------------------ what the generator provides
    @property
    def policy(self) -> PromptPolicy:
        """The prompt policy, within the generator's limits (a server's prompt limit lowers its budget)."""
        return self.generator.budget(self._policy)

    @policy.setter
    def policy(self, value: PromptPolicy) -> None:
        self._policy = value

    @property
    def builder(self) -> PromptBuilder:
        return self.generator.builder

    @property
    def processor(self) -> Any:
        """The processor prompts are built with (its tokenizer decodes the panel's tokens)."""
        return self.builder.processor

    @property
    def params(self) -> Any:
        """The generator's diffusion parameters: a local model's ``DiffusionParams``, a server's overrides."""
        return self.generator.params

    @params.setter
    def params(self, value: Any) -> None:
        self.generator.params = value

    @property
    def keeps_sessions(self) -> bool:
        """Whether follow-ups reuse the KV cache: only a model loaded here keeps one (a server keeps none)."""
        return isinstance(self.generator, LocalGenerator)

    def _local(self) -> LocalGenerator:
        """The local generator, for what needs a model's cache or internals here."""
        if isinstance(self.generator, LocalGenerator):
            return self.generator
        raise ConfigError(f"this needs a model loaded here, not the {self.name} engine", hint="Use --engine model.")

    @property
    def loaded(self) -> Any:
        """The model loaded here (a local engine only)."""
        return self._local().loaded

    @property
    def engine(self) -> Any:
        """The ``DiffusionEngine`` over the model loaded here (a local engine only): its defaults and sizes."""
        return self._local().engine

    def close(self) -> None:
        self.generator.close()

    def notice(self, text: str) -> None:
        if text not in self.notices:
            self.notices.append(text)
            log.warning("%s", text)

    # ------------------------------------------------------------------ one generation
    def generate(self, prompt: Prompt, context: TaskContext) -> str:
        return self.generate_batch([prompt], context)[0]

    def generate_batch(self, prompts: Sequence[Prompt], context: TaskContext) -> list[str]:
        """One call of the generator (a local batch, parallel requests to a server); an answer that did not end by
        itself is recorded against its prompt's pages."""
        answers = self.generator.generate(prompts, context)
        for prompt, answer in zip(prompts, answers, strict=True):
            self.cut_offs.record(prompt, answer.finish)
        return [answer.text for answer in answers]

    def default_batch_size(self) -> int:
        return self.generator.default_batch_size()

    # ------------------------------------------------------------------ parse
    def parse(
        self, doc: Document, options: ParseOptions | None = None, context: TaskContext | None = None
    ) -> ParseResult:
        """Each page is transcribed from its image (text layer as a hint); ``batch_size`` pages per generation
        (``options.batch_size``, else :meth:`default_batch_size`). A page whose answer did not end by itself is an
        error of the page naming the reason: the document is partial and a rerun asks again."""
        options = options or ParseOptions()
        context = context or TaskContext()
        doc = copy.copy(doc)
        doc.pages = [copy.deepcopy(p) for p in doc.pages]
        doc.errors = list(doc.errors)
        analyse(doc)
        self.cut_offs.take({doc.source})  # left by an earlier task on the same document
        texts = self._transcribe(doc, options, context)
        pages_md = transcribed_pages(doc, texts, options)
        for (_source, page), reason in sorted(self.cut_offs.take({doc.source}).items(), key=lambda kv: kv[0][1] or 0):
            if page is not None:
                doc.add_error(page, cut_off_message(reason), "GenerationError")
        context.report(len(doc.pages), len(doc.pages), f"{doc.name}: done")
        markdown = "\n\n".join(p for p in pages_md if p).strip() + "\n"
        return ParseResult(document=doc, markdown=markdown, pages=pages_md, engine=self.name)

    def _transcribe(self, doc: Document, options: ParseOptions, context: TaskContext) -> dict[int, str]:
        """Each page's transcription by page index: kept from an earlier run, or generated in batches of pages that
        share an image budget."""
        batch_size = options.batch_size or self.default_batch_size()
        texts: dict[int, str] = {}
        pending: list[tuple[int, Prompt]] = []
        instruction = PARSE_INSTRUCTION.replace(*KEEP_FURNITURE) if options.furniture else PARSE_INSTRUCTION
        for i, page in enumerate(doc.pages):
            kept = context.pages.text("model", page.number) if context.pages is not None and not page.error else None
            if kept is not None:
                texts[i] = kept  # transcribed in an earlier run
                context.report(i, len(doc.pages), f"{doc.name}: page {page.number} kept from an earlier run")
                continue
            context.report(i, len(doc.pages), f"{doc.name}: page {page.number}")
            if page.error:
                continue
            try:
                prompt = self._page_prompt(doc, page, instruction)
            except Exception as exc:  # noqa: BLE001 - a page that cannot be rendered is that page's error
                doc.add_error(page.number, f"prompt failed: {exc}", type(exc).__name__)
                continue
            if pending and prompt.max_soft_tokens != pending[0][1].max_soft_tokens:
                self._transcribe_batch(doc, pending, texts, context)
            pending.append((i, prompt))
            if len(pending) >= batch_size:
                self._transcribe_batch(doc, pending, texts, context)
        self._transcribe_batch(doc, pending, texts, context)
        return texts

    def _transcribe_batch(
        self, doc: Document, pending: list[tuple[int, Prompt]], texts: dict[int, str], context: TaskContext
    ) -> None:
        """The ``pending`` page prompts generated (and emptied): each page's text into ``texts``, kept for a rerun
        when its answer ended by itself; a failed batch is an error of each of its pages."""
        if not pending:
            return
        try:
            outs = self.generate_batch([p for _, p in pending], context)
        except CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one batch's failure never loses the other pages
            for index, _ in pending:
                doc.add_error(doc.pages[index].number, f"generation failed: {exc}", "GenerationError")
        else:
            for (index, _), text in zip(pending, outs, strict=True):
                texts[index] = text.strip()
                number = doc.pages[index].number
                if context.pages is not None and not self.cut_offs.holds(doc.source, number):
                    context.pages.keep_text("model", number, texts[index])
        pending.clear()

    def _page_prompt(self, doc: Document, page: Any, instruction: str) -> Prompt:
        """One page's parse prompt: its image, and its text layer as a hint where it has one."""
        policy = PromptPolicy(
            mode="both" if page.has_text_layer else "image",
            max_soft_tokens=self.policy.max_soft_tokens,
            dpi=self.policy.dpi,
        )
        single = copy.copy(doc)
        single.pages = [page]
        return self.builder.build([single], instruction, policy)

    def redenoise_span(
        self,
        doc: Document,
        page_number: int,
        text: str,
        start: int,
        end: int,
        context: TaskContext | None = None,
        furniture: bool = False,
    ) -> str:
        """Denoise ``text[start:end]`` of a page's transcription again, the text around it kept token for token.

        The page's parse prompt is prefilled as the parse did; the transcription's tokens are pinned on the canvas
        (an end-of-sequence after them), except the tokens that overlap the span, which start from noise and are
        denoised against the prompt and the pinned text on both sides. Returns the page's new transcription."""
        import numpy as np

        from inference.runtime.template import FREE, CanvasTemplate

        context = context or TaskContext()
        if not 0 <= start < end <= len(text) or not text[start:end].strip():
            raise ConfigError("Select the text to re-denoise: a span inside one page's transcription.")
        page = next((p for p in doc.pages if p.number == page_number), None)
        if page is None:
            raise ConfigError(f"{doc.name} has no page {page_number}.")
        engine = self._local().engine
        tokenizer, _vocab, eos, _canvas = self._local().pinning()
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
        span = np.array([s < end and e > start for s, e in offsets] + [False], dtype=bool)
        pins = np.array(list(ids) + ([eos] if eos is not None else []), dtype=np.int64)
        span = span[: len(pins)]
        specials = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder) | set(engine.eos_token_ids)
        writable = np.setdiff1d(np.arange(engine.vocab_size), np.array(sorted(specials), dtype=np.int64))
        template = CanvasTemplate(  # the span writes text: no end-of-sequence, padding or other special token
            pins=np.where(span, FREE, pins),
            sets=np.where(span, 0, FREE).astype(np.int64),
            token_sets=(writable,),
        )
        instruction = PARSE_INSTRUCTION.replace(*KEEP_FURNITURE) if furniture else PARSE_INSTRUCTION
        return self._templated(self._page_prompt(doc, page, instruction), template, context).text

    def page_identity(self) -> dict[str, Any]:
        """What makes this engine's pages what they are, beside the parse options: kept pages made otherwise are
        parsed again."""
        policy = self.policy
        return {**self.generator.identity(), "dpi": policy.dpi, "max_soft_tokens": policy.max_soft_tokens}

    # ------------------------------------------------------------------ ask
    def ask(
        self,
        docs: Sequence[Document],
        question: str,
        context: TaskContext | None = None,
        conversation: Conversation | None = None,
    ) -> Answer:
        """One prompt when the documents fit the budget; else every page (a page over the budget cut into
        passages) read chunk by chunk (map) and the partial answers combined (reduce); pages whose images are more
        than one prompt may hold are asked in groups, combined the same way. What still never reached the model is
        listed in ``Answer.left_out``; an answer that did not end by itself carries the reason in ``cut_off``. With
        a ``conversation`` the first answer's KV cache is kept in it, and a later question is a follow-up turn
        sending only its own tokens (a model loaded here; a server keeps no cache, so each question reads afresh)."""
        context = context or TaskContext()
        sources = {d.source for d in docs} | {None}
        self.cut_offs.take(sources)  # left by an earlier task on the same documents
        if conversation is not None and conversation.follows_up and self.keeps_sessions:
            answer = self._follow_up(docs, question, conversation, context)
        else:
            answer = self._ask(docs, question, context, conversation, self.generator.max_images)
        reasons = sorted(set(self.cut_offs.take(sources).values()))
        if reasons:
            answer.cut_off = ", ".join(reasons)
            self.notice(f"the answer is incomplete: {cut_off_message(answer.cut_off)}")
        return answer

    def _ask(
        self,
        docs: Sequence[Document],
        question: str,
        context: TaskContext,
        conversation: Conversation | None,
        max_images: int | None,
    ) -> Answer:
        instruction = ask_instruction(question, docs)
        pages = sum(len(doc.pages) for doc in docs)

        def reading(done: int, total: int) -> None:  # raises once cancelled (the context's progress does)
            context.report(done, total + 1, f"building the prompt: page {done} of {total}")

        prompt = self.builder.build(list(docs), instruction, self.policy, on_page=reading if pages > 1 else None)
        if max_images is not None and len(prompt.images) > max_images:
            return self._ask_in_groups(docs, question, context, max_images)
        if not over_budget(prompt):
            sent = [prompt]
            if conversation is not None and self.keeps_sessions:
                text = self._turn(self.builder.inputs(prompt), context, conversation)
            else:
                text = self.generate(prompt, context)
        else:
            if conversation is not None:
                conversation.forget()  # read in parts: no single cache holds the documents
            sent = self.builder.chunks(list(docs), instruction, self.policy)
            partials = []
            for i, chunk in enumerate(sent):
                context.report(i, len(sent) + 1, f"reading part {i + 1} of {len(sent)}")
                partials.append(self.generate(chunk, context).strip())
            context.report(len(sent), len(sent) + 1, "combining")
            text = self._combine(partials, question, context)
        left_out = [LeftOut(r.document, r.page, r.tokens, r.note, r.span) for chunk in sent for r in chunk.dropped]
        return self._answer(question, text, docs, left_out)

    def _ask_in_groups(self, docs: Sequence[Document], question: str, context: TaskContext, per_group: int) -> Answer:
        """The pages asked in groups of at most ``per_group`` (a page brings at most one image), the partial answers
        combined."""
        groups = page_groups(docs, per_group)
        answers = []
        for i, group in enumerate(groups):
            context.report(i, len(groups) + 1, f"reading pages, part {i + 1} of {len(groups)}")
            answers.append(self._ask(group, question, context, None, None))
        context.report(len(groups), len(groups) + 1, "combining")
        text = self._combine([a.text for a in answers], question, context)
        return self._answer(question, text, docs, [item for a in answers for item in a.left_out])

    def _answer(self, question: str, text: str, docs: Sequence[Document], left_out: list[LeftOut]) -> Answer:
        return Answer(
            question=question,
            text=text.strip(),
            citations=cite(text, docs) or retrieved(docs, question),
            kind="generated",
            engine=self.name,
            left_out=left_out,
        )

    def _follow_up(
        self, docs: Sequence[Document], question: str, conversation: Conversation, context: TaskContext
    ) -> Answer:
        """A follow-up: only the new user turn is sent after the conversation's cached turns."""
        inputs = {"input_ids": follow_up_ids(self.processor, question)}
        return self._answer(question, self._turn(inputs, context, conversation), docs, [])

    def _turn(self, inputs: Any, context: TaskContext, conversation: Conversation | None) -> str:
        """One generation; with a conversation its session carries the cache on (a cut turn leaves none)."""
        from inference.runtime.engine import Session

        local = self._local()
        session = None if conversation is None else conversation.session or Session()
        try:
            text = local.turn(inputs, context, session)
        except BaseException:
            if conversation is not None:
                conversation.forget()  # a cut turn is no context to build on
            raise
        if conversation is not None:
            conversation.session = session
            conversation.turns += 1
        return text

    def count_prompt(
        self, docs: Sequence[Document], question: str, conversation: Conversation | None = None, on_page: Any = None
    ) -> PromptCount:
        """The tokens :meth:`ask` would send now (a follow-up: its new turn and the last canvas not yet cached)."""
        if conversation is not None and conversation.follows_up and self.keeps_sessions:
            pending = conversation.session.pending_ids
            extra = 0 if pending is None else int(pending.shape[1])
            return PromptCount(int(follow_up_ids(self.processor, question or "?").shape[1]) + extra, follow_up=True)
        prompt = self.builder.build(list(docs), ask_instruction(question, docs), self.policy, on_page=on_page)
        return PromptCount(prompt.total_tokens, too_long=over_budget(prompt))

    def _combine(self, partials: list[str], question: str, context: TaskContext) -> str:
        """The partial answers combined into one; when they do not fit one prompt, halves are combined first. A
        single partial answer too long for a combining prompt is the answer as it stands (sent, it would be over the
        context: vLLM answers 400)."""
        instruction = REDUCE_INSTRUCTION.format(partials="\n".join(f"- {p}" for p in partials), question=question)
        prompt = self.builder.build([], instruction, self.policy)
        if prompt.total_tokens > prompt.budget and len(partials) == 1:
            return partials[0]
        if prompt.total_tokens > prompt.budget:
            half = len(partials) // 2
            left = self._combine(partials[:half], question, context).strip()
            right = self._combine(partials[half:], question, context).strip()
            return self._combine([left, right], question, context) if len(partials) > 2 else f"{left}\n{right}"
        return self.generate(prompt, context)


def over_budget(prompt: Prompt) -> bool:
    """Whether the prompt left out pages for want of room (a page that failed to open is not for want of room)."""
    return any(r.status == "dropped" and not r.note.startswith("page error") for r in prompt.dropped)


def transcribed_pages(doc: Document, texts: dict[int, str], options: ParseOptions) -> list[str]:
    """Each page's Markdown from its transcription (``texts`` by page index; a page without one is its marker
    only), the page's blocks replaced by the transcription; a page the model wrote nothing for is an error."""
    pages_md = []
    for i, page in enumerate(doc.pages):
        marker = page_marker(page) if options.markers else ""
        if i in texts and not texts[i]:  # nothing written is the page's error, never a parsed page
            doc.add_error(page.number, "the model wrote nothing for this page", "GenerationError")
        if not texts.get(i):
            pages_md.append(marker)
            continue
        text = texts[i] if options.furniture else without_furniture(texts[i], page)
        page.attrs["text_layer_blocks"] = len(page.blocks)  # replaced by the model's transcription
        page.blocks = [
            Block(
                kind="text",
                text=text,
                bbox=(0, 0, page.width, page.height),
                order=0,
                attrs={"source": "model", "format": "markdown"},
            )
        ]
        pages_md.append("\n\n".join(p for p in (marker, text) if p))
    return pages_md


def page_groups(docs: Sequence[Document], per_group: int) -> list[list[Document]]:
    """The documents' pages in groups of at most ``per_group`` pages (a page brings at most one image), each group
    as copies of the documents holding only its pages (page numbers kept)."""
    groups: list[list[Document]] = []
    current: list[Document] = []
    room = per_group
    for doc in docs:
        pages = list(doc.pages)
        while pages:
            take, pages = pages[:room], pages[room:]
            part = copy.copy(doc)
            part.pages = take
            current.append(part)
            room -= len(take)
            if room == 0:
                groups.append(current)
                current, room = [], per_group
    if current:
        groups.append(current)
    return groups
