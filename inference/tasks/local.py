"""The local generator: DiffusionGemma loaded in this process, run by ``inference.runtime.engine.DiffusionEngine``.

It is the only generator that keeps a session: a conversation's KV cache for follow-up turns, and a templated run's
prompt cache for re-denoising fields or a span of a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference.prompts import Prompt, PromptBuilder, PromptPolicy
from inference.runtime.events import drain
from inference.runtime.params import DiffusionParams
from inference.tasks.base import TaskContext
from inference.tasks.generation import Generation, Pinning


class LocalGenerator:
    """Prompts through the loaded model, as a left-padded batch per call; events to ``context.on_event``."""

    name = "model"
    concurrency = 1  # one model in this process: documents one after another (pages batched within each)
    max_images = None  # the budget alone bounds a prompt

    def __init__(self, loaded: Any, params: DiffusionParams | None = None) -> None:
        from inference.runtime.engine import DiffusionEngine

        self.loaded = loaded
        self.engine = DiffusionEngine(loaded.model, loaded.tokenizer)
        self.params = params or self.engine.default_params()
        self.builder = PromptBuilder(loaded.processor)

    def budget(self, policy: PromptPolicy) -> PromptPolicy:
        return policy

    def generate(self, prompts: Sequence[Prompt], context: TaskContext) -> list[Generation]:
        """One engine run over the prompts as a left-padded batch; events carry every row."""
        inputs = self.builder.inputs(prompts[0]) if len(prompts) == 1 else self.builder.batch_inputs(prompts)
        events = self.engine.generate(self.on_device(inputs), self.params, cancel=context.cancel)
        return [Generation(text) for text in drain(events, context.on_event).texts]

    def turn(self, inputs: Any, context: TaskContext, session: Any) -> str:
        """One generation whose cache the ``session`` carries on (a conversation's turn)."""
        events = self.engine.generate(self.on_device(inputs), self.params, cancel=context.cancel, session=session)
        return drain(events, context.on_event).texts[0]

    def templated(self, prompt: Prompt, template: Any, context: TaskContext) -> Generation:
        """One templated run over ``prompt``; its session keeps the prompt cache for re-denoising."""
        from inference.runtime.engine import Session

        model = self.loaded.model
        inputs = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in self.builder.inputs(prompt).items()}
        session = Session(keep_prompt=True)
        events = self.engine.generate(inputs, self.params, cancel=context.cancel, session=session, template=template)
        kept = collect(events, context)
        return Generation(kept[-1].text, events=tuple(kept), session=session)

    def reopen(self, session: Any, template: Any, context: TaskContext, params: DiffusionParams | None = None) -> list:
        """A templated run's canvas opened again with ``template`` against its cached prompt: the run's events."""
        events = self.engine.reopen(session, template, params or self.params, cancel=context.cancel)
        return collect(events, context)

    def pinning(self) -> Pinning:
        eos = (self.engine.eos_token_ids or [None])[0]
        return Pinning(self.loaded.tokenizer, self.engine.vocab_size, eos, self.engine.canvas_length)

    def on_device(self, inputs: Any) -> dict[str, Any]:
        """The processor's tensors on the model's device."""
        device = self.loaded.device
        return {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}

    def default_batch_size(self) -> int:
        """Pages per parse batch from free memory: each row holds a canvas's logits a few times over (scaled,
        probabilities, self-conditioning) plus a page prompt's KV cache; at most 8."""
        from inference.weights.devices import available_bytes

        vocab = int(self.loaded.model.config.text_config.vocab_size)
        per_row = 4 * 256 * vocab * 4 + self.engine.cache_bytes(4096)
        free = available_bytes(self.loaded.device)
        if free is None:
            return 1
        return max(1, min(8, int(free * 0.5) // per_row))

    def identity(self) -> dict[str, Any]:
        loaded = self.loaded
        return {"model": loaded.source, "dtype": loaded.dtype, "quant": loaded.quant, "params": self.params.to_dict()}

    def close(self) -> None:
        """Nothing to release: the loaded model belongs to whoever loaded it."""


def collect(events: Any, context: TaskContext) -> list[Any]:
    """The engine's events up to its ``Finished`` (the last), each passed on to ``context.on_event``; a cancel or
    failure raises."""
    out: list[Any] = []

    def keep(event: Any) -> None:
        out.append(event)
        if context.on_event:
            context.on_event(event)

    drain(events, keep)
    return out
