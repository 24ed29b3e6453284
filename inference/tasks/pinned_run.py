"""A schema-pinned extraction kept for re-denoising, and its per-field measured confidence.

:class:`PinnedRun` reads each templated engine run (the first one and every re-denoise of some fields): the committed
tokens, their probabilities, the choices' label probabilities and the denoising trajectory of every position. From
them and from the page it reads the extraction back and measures each field's confidence
(:mod:`inference.tasks.confidence`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inference.documents.model import Document
from inference.errors import GenerationError
from inference.runtime.events import CanvasCommitted, DenoisingStep
from inference.tasks.base import Citation, Extraction

if TYPE_CHECKING:
    import numpy as np


@dataclass
class PinnedRun:
    """A templated extraction kept for re-denoising: its layout, the session holding the cached prompt, the
    committed template tokens, their log-probabilities, the choices' label probabilities, the trajectory, and per
    field the agreement of its last re-denoise and how many re-denoises it took."""

    layout: Any  # inference.tasks.pinned.PinnedLayout
    session: Any  # inference.runtime.engine.Session (keep_prompt)
    docs: list[Document]
    ids: Any = None
    logprobs: Any = None
    choice_probs: dict[int, tuple[float, ...]] = field(default_factory=dict)
    steps: int = 0
    engine: str = "model"
    redone: list[str] = field(default_factory=list)
    extraction: Extraction | None = None
    canvas_length: int = 256
    trajectory: Any = None  # inference.tasks.confidence.Trajectory
    agree: dict[str, float] = field(default_factory=dict)  # field -> 1 same value after a re-denoise, 0 not
    stats: dict[str, Any] = field(default_factory=dict)  # field -> inference.tasks.confidence.FieldStats

    def take(self, events: list[Any], template: Any, span: Any) -> None:
        """Read a run's events: inside ``span`` (everywhere when None) the new tokens, confidences and trajectory
        replace the old; then the extraction is read, grounded, measured and validated again."""
        import numpy as np

        from inference.tasks.confidence import Trajectory
        from inference.tasks.pinned import choice_probabilities

        finished = events[-1]
        commits = [e for e in events if isinstance(e, CanvasCommitted)]
        length = self.layout.template.length
        ids = np.asarray(finished.ids[0, :length])
        logprobs = np.concatenate([_committed_logprobs(c) for c in commits])[:length]
        probs = choice_probabilities(template, commits)
        steps = [e for e in events if isinstance(e, DenoisingStep)]
        trajectory = Trajectory.of(steps, length, self.canvas_length)
        if span is None:
            self.ids, self.logprobs, self.choice_probs = ids, logprobs, probs
            self.trajectory = trajectory
        else:
            self.ids = np.where(span, ids, self.ids)
            self.logprobs = np.where(span, logprobs, self.logprobs)
            self.choice_probs = {**self.choice_probs, **probs}
            self.trajectory = (self.trajectory or Trajectory.empty(length)).merged(trajectory, span)
        self.steps += int(finished.stats.forward_passes)
        self.refresh()

    @property
    def result(self) -> Extraction:
        """The extraction read from the canvas; a run gets one from its first ``take``."""
        if self.extraction is None:
            raise RuntimeError("this pinned run has read no canvas yet (take() reads its events first)")
        return self.extraction

    def values(self) -> dict[str, Any]:
        """The schema-shaped value the canvas holds now."""
        from inference.tasks.pinned import read_canvas

        return read_canvas(self.layout, self.ids, self.logprobs, self.choice_probs).value

    def compare(self, before: dict[str, Any], fields: list[str]) -> None:
        """After a re-denoise of ``fields``: each agrees when it reads back as it read ``before``."""
        after = self.values()
        for name in fields:
            self.agree[name] = 1.0 if after.get(name) == before.get(name) else 0.0
        self.refresh()

    def refresh(self) -> None:
        """Read the extraction back from the canvas: value, evidence, grounding, measured confidence, validity."""
        from inference.tasks.confidence import FieldStats, combine, is_empty, slot_stats, value_grounded
        from inference.tasks.pinned import ground, read_canvas
        from inference.tasks.schema import validate

        reading = read_canvas(self.layout, self.ids, self.logprobs, self.choice_probs)
        evidence = ground(reading.evidence, self.docs)
        pages = [page for doc in self.docs for page in doc.pages]
        confidence, grounded = {}, {}
        for name, layout in self.layout.fields.items():
            value, e = reading.value[name], evidence[name]
            number = e.get("page")
            text = pages[number - 1].text if isinstance(number, int) and 1 <= number <= len(pages) else None
            grounded[name] = value_grounded(value, e, text)
            entropy_mean, entropy_last, settled = slot_stats(self.trajectory, layout.value.slots())
            self.stats[name] = FieldStats(
                token=reading.confidence[name],
                entropy_mean=entropy_mean,
                entropy_last=entropy_last,
                settled=settled,
                agree=self.agree.get(name, 0.5),
                grounded=grounded[name],
                empty=is_empty(value),
            )
            confidence[name] = combine(self.stats[name])
        errors = validate(reading.value, self.layout.schema)
        sources = {
            f"/{name}": Citation(document=e["document"], page=e["page"], label=str(e["page"]), text=e["quote"])
            for name, e in evidence.items()
            if e["grounded"]
        }
        self.extraction = Extraction(
            value=reading.value,
            sources=sources,
            valid=not errors,
            errors=errors,
            kind="pinned",
            engine=self.engine,
            attempts=1,
            confidence=confidence,
            evidence=evidence,
            grounded=grounded,
            redenoised={name: self.redone.count(name) for name in self.layout.fields},
            token_confidence=dict(reading.confidence),
        )


def _committed_logprobs(commit: CanvasCommitted) -> np.ndarray:
    """Row 0's log-probabilities of a canvas committed under a template (the engine gives them only then)."""
    if commit.logprobs is None:
        raise GenerationError(f"canvas {commit.canvas} was committed without the template's log-probabilities")
    return commit.logprobs[0]
