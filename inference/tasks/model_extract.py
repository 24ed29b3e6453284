"""Extraction on the model engine: the schema laid out on the canvas (:mod:`inference.tasks.pinned`) and denoised,
its agreement measured and fields re-denoised against the cached prompt; or, with ``template`` off, the schema in
the prompt and the reply's JSON validated and asked for again with its errors.

A part of :class:`~inference.tasks.model.ModelEngine` (its ``extract``, ``redenoise`` and ``check_agreement``): it
uses the engine's generator, prompt builder, policy and cut-off record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from inference.documents.model import Document
from inference.errors import ConfigError
from inference.prompts import Prompt, PromptBuilder, PromptPolicy
from inference.tasks.base import Citation, Extraction, TaskContext
from inference.tasks.generation import CutOffs, Generation, Generator, Pinning, cut_off_message
from inference.tasks.local import LocalGenerator
from inference.tasks.pinned_run import PinnedRun

EXTRACT_INSTRUCTION = (
    "Extract the fields described by this JSON Schema from the documents above. Reply with one JSON "
    "object valid against the schema and nothing else.\nSchema:\n{schema}"
)
PINNED_INSTRUCTION = (
    "Extract the fields described by this JSON Schema from the documents above. For each field give its value, "
    "the page it is on and a short quote from that page that shows it, as "
    '{{"field": {{"value": ..., "page": N, "quote": "..."}}}}.\nSchema:\n{schema}'
)
RETRY_INSTRUCTION = "\nYour previous reply was not valid:\n{errors}\nReply again with only the corrected JSON object."
AGREEMENT_SEED = 7919  # the agreement re-denoise's seed: the run's seed plus this


class ExtractTasks:
    """The extraction methods of :class:`~inference.tasks.model.ModelEngine`, which provides what is declared here."""

    name: str
    template: bool  # the canvas template (pinned extraction) where the generator takes one
    agreement: bool  # re-denoise every field once with another seed and record whether it agrees
    retries: int  # prompted extraction: asked again this many times with the validation errors
    generator: Generator
    cut_offs: CutOffs
    last_pinned: PinnedRun | None
    builder: PromptBuilder
    policy: PromptPolicy

    def generate(self, prompt: Prompt, context: TaskContext) -> str:
        raise NotImplementedError

    def _local(self) -> LocalGenerator:
        raise NotImplementedError

    def extract(
        self,
        docs: Sequence[Document],
        schema: dict[str, Any],
        context: TaskContext | None = None,
        redo: Sequence[str] = (),
        redo_below: float | None = None,
        redo_rounds: int = 1,
    ) -> Extraction:
        """Fields of ``schema`` from ``docs``: through the canvas template unless ``self.template`` is off or the
        generator takes none. Then the ``redo`` fields, and up to ``redo_rounds`` times those whose confidence is
        under ``redo_below``, are re-denoised against the cached prompt. An answer that did not end by itself makes
        the result invalid, with the reason among its errors."""
        from inference.tasks.schema import check_schema

        check_schema(schema)
        context = context or TaskContext()
        sources = {d.source for d in docs} | {None}
        self.cut_offs.take(sources)  # left by an earlier task on the same documents
        pinning = self.generator.pinning() if self.template else None
        if pinning is None:
            result = self._extract_prompted(docs, schema, context)
        else:
            result = self._extract_pinned(docs, schema, context, pinning, redo, redo_below, redo_rounds).result
        reasons = sorted(set(self.cut_offs.take(sources).values()))
        if reasons:
            result.errors = [*result.errors, *(cut_off_message(r) for r in reasons)]
            result.valid = False
        return result

    def _extract_pinned(
        self,
        docs: Sequence[Document],
        schema: dict[str, Any],
        context: TaskContext,
        pinning: Pinning,
        redo: Sequence[str],
        redo_below: float | None,
        redo_rounds: int,
    ) -> PinnedRun:
        """The schema laid out on the canvas and denoised, its agreement measured (with a prompt cache), then the
        fields asked for re-denoised."""
        run = self._pinned_run(docs, schema, context, pinning)
        if self.agreement and run.session is not None:
            self.check_agreement(run, context)
        if redo:
            run = self.redenoise(run, list(redo), context)
        if redo_below is not None:
            for _ in range(redo_rounds):
                low = [k for k, v in run.result.confidence.items() if v < redo_below]
                if not low:
                    break
                run = self.redenoise(run, low, context)
        return run

    def _pinned_run(
        self, docs: Sequence[Document], schema: dict[str, Any], context: TaskContext, pinning: Pinning
    ) -> PinnedRun:
        from inference.tasks.pinned import layout_schema, vocabulary

        tokenizer, vocab_size, eos, canvas_length = pinning
        vocab = vocabulary(tokenizer, vocab_size, eos)
        layout = layout_schema(schema, vocab, sum(len(d.pages) for d in docs), canvas_length)
        if context.extra.get("on_layout"):  # a viewer that shows the slots as they denoise
            context.extra["on_layout"](layout)
        instruction = PINNED_INSTRUCTION.format(schema=json.dumps(schema, ensure_ascii=False, indent=1))
        prompt = self.builder.build(list(docs), instruction, self.policy)
        generated = self._templated(prompt, layout.template, context)
        run = PinnedRun(
            layout=layout, session=generated.session, docs=list(docs), engine=self.name, canvas_length=canvas_length
        )
        run.take(list(generated.events), layout.template, span=None)
        self.last_pinned = run
        return run

    def _templated(self, prompt: Prompt, template: Any, context: TaskContext) -> Generation:
        """One templated run over ``prompt``; an answer that did not end by itself is recorded against its pages."""
        generated = self.generator.templated(prompt, template, context)
        self.cut_offs.record(prompt, generated.finish)
        return generated

    def redenoise(self, run: PinnedRun, fields: Sequence[str], context: TaskContext | None = None) -> PinnedRun:
        """Re-open ``run``'s canvas with these fields' value and evidence slots re-noised, everything else pinned,
        and denoise them again against the cached prompt; the run is updated and returned."""
        context = context or TaskContext()
        if run.session is None:
            raise ConfigError(
                "re-denoising needs the prompt cache of a local model", hint="Use --engine model for --redo."
            )
        span = run.layout.span(fields)
        template = run.layout.template.reopened(run.ids, span)
        before = run.values()
        events = self._local().reopen(run.session, template, context)
        run.redone.extend(fields)
        run.take(events, template, span=span)
        run.compare(before, list(fields))
        self.last_pinned = run
        return run

    def check_agreement(self, run: PinnedRun, context: TaskContext) -> None:
        """Re-denoise every field once more with another seed, everything else pinned, and record per field whether
        it wrote the same value (a confidence feature); the run keeps its first tokens. The events are not shown."""
        import numpy as np

        from inference.tasks.pinned import read_canvas

        local = self._local()
        span = run.layout.span(list(run.layout.fields))
        template = run.layout.template.reopened(run.ids, span)
        seed = None if local.params.seed is None else local.params.seed + AGREEMENT_SEED
        params = local.params.replace(seed=seed)
        events = local.reopen(run.session, template, TaskContext(cancel=context.cancel), params)
        ids = np.where(span, np.asarray(events[-1].ids[0, : template.length]), run.ids)
        again = read_canvas(run.layout, ids, run.logprobs, run.choice_probs).value
        first = run.values()
        run.agree = {name: 1.0 if again.get(name) == first.get(name) else 0.0 for name in run.layout.fields}
        run.refresh()

    def _extract_prompted(self, docs: Sequence[Document], schema: dict[str, Any], context: TaskContext) -> Extraction:
        from inference.tasks.schema import parse_json_object, validate

        base = EXTRACT_INSTRUCTION.format(schema=json.dumps(schema, ensure_ascii=False, indent=1))
        instruction = base
        value: Any = {}
        errors: list[str] = []
        attempts = 0
        for attempt in range(self.retries + 1):
            attempts = attempt + 1
            prompt = self.builder.build(list(docs), instruction, self.policy)
            text = self.generate(prompt, context)
            try:
                value = parse_json_object(text)
                errors = validate(value, schema)
            except ValueError as exc:
                value, errors = {}, [f"/: {exc}"]
            if not errors:
                break
            instruction = base + RETRY_INSTRUCTION.format(errors="\n".join(errors[:20]))
        sources = value_sources(value, docs) if isinstance(value, dict) else {}
        return Extraction(
            value=value if isinstance(value, dict) else {"value": value},
            sources=sources,
            valid=not errors,
            errors=errors,
            kind="generated",
            engine=self.name,
            attempts=attempts,
        )


def value_sources(value: dict[str, Any], docs: Sequence[Document]) -> dict[str, Citation]:
    """For each string or number value, the first page whose text contains it."""
    out = {}
    for key, item in value.items():
        if isinstance(item, (dict, list)) or item is None or str(item).strip() == "":
            continue
        needle = str(item).strip().lower()
        for doc in docs:
            page = next((p for p in doc.pages if needle in p.text.lower()), None)
            if page is not None:
                out[f"/{key}"] = Citation(document=doc.source, page=page.number, label=page.label, text=str(item))
                break
    return out
