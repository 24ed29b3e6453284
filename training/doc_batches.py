"""The document steps of ``tiny-trained``'s training (``--documents``): batches of pinned extractions and
extractive questions over made-up pages (:mod:`training.documents`).

- **Pinned extraction**: the prompt is the model engine's pinned prompt (page markers, page text,
  :data:`inference.tasks.model_extract.PINNED_INSTRUCTION`); the canvas is the schema's template
  (:func:`inference.tasks.pinned.layout_schema`) with its slots filled. As at inference, pinned positions are never
  noised and carry no loss; every slot position (padding included: it ends the value) is noised with the step's
  ``t`` and weighted 1.
- **Questions**: the Ask prompt; the canvas is ``VALUE [p. N]``, its end of turn and padding, noised as a parse
  canvas is.

The attention guide points each copied token at the page token it copies (the value stands on the page after a
space, and is written into its slot with that space, so the copy is token for token).
"""

from __future__ import annotations

import random
from typing import Any

from training.documents import extraction_example, question_example
from training.pages import clean_canvas, prompt_inputs

SLOT_WEIGHT = 1.0


class DocumentBatches:
    """Draws one step's document batch from the step's seed (like :class:`training.train.BatchMaker`)."""

    def __init__(self, processor: Any, spec: Any) -> None:
        from inference.prompts import PromptBuilder
        from inference.tasks.pinned import vocabulary

        self.spec = spec
        self.tokenizer = processor.tokenizer
        self.builder = PromptBuilder(processor)
        self.vocab = vocabulary(self.tokenizer, spec.vocab, eos=spec.eos)

    def __call__(self, step: int, seed: int) -> Any:
        import torch

        from training.train import Batch

        s = self.spec.settings
        rng = random.Random(seed * 11 + 5)
        gen = torch.Generator().manual_seed(seed * 11 + 5)
        questions = rng.random() < s.questions
        rows, parts, runs, free = [], [], [], []
        while len(rows) < s.batch:
            if questions:
                prompt, answer, asked, _ = question_example(rng)
                tokens = self.tokenizer(" " + asked.value, add_special_tokens=False)["input_ids"]
                rows.append(clean_canvas(self.tokenizer, answer, self.spec.canvas))
                parts.append(prompt)
                runs.append({0: tuple(tokens)})
                free.append([True] * self.spec.canvas)
            else:
                example = extraction_example(self.tokenizer, self.vocab, self.spec.canvas, rng)
                if example is None:
                    continue
                rows.append(example.clean)
                parts.append(example.parts)
                runs.append(example.copies)
                free.append(example.free)
        inputs = dict(prompt_inputs(self.builder, parts))
        clean = torch.tensor(rows)
        free_mask = torch.tensor(free)
        t = torch.rand(len(rows), 1, generator=gen)
        noise = torch.randint(0, self.spec.vocab, clean.shape, generator=gen)
        noisy = torch.where((torch.rand(clean.shape, generator=gen) < t) & free_mask, noise, clean)
        pad = self.tokenizer.pad_token_id
        if questions:
            weight = torch.where(clean == pad, 0.05, 1.0)
        else:
            weight = torch.where(free_mask, SLOT_WEIGHT, 0.0)
        temperature = None
        if rng.random() < s.self_conditioning:
            temperature = torch.empty(len(rows), 1, 1).uniform_(*self.spec.temperatures, generator=gen)
        guide = copy_targets(inputs["input_ids"], runs, self.spec.canvas)
        return Batch(step, inputs, clean, noisy, temperature, guide, weight)


def copy_targets(prompt_ids: Any, runs: list[dict[int, tuple[int, ...]]], canvas: int) -> Any:
    """Per row, each copied run's canvas positions pointed at the first place its tokens stand in the prompt."""
    import torch

    targets = torch.full((len(runs), canvas), -1, dtype=torch.long)
    for r, row_runs in enumerate(runs):
        ids = prompt_ids[r]
        for start, tokens in row_runs.items():
            n = len(tokens)
            if n == 0 or n > ids.shape[0]:
                continue
            match = (ids.unfold(0, n, 1) == torch.tensor(tokens)).all(dim=1).nonzero()
            if len(match):
                first = int(match[0])
                targets[r, start : start + n] = torch.arange(first, first + n)
    return targets
