"""Canvas templates: what is written on the canvas before denoising starts.

A block-diffusion canvas can hold fixed tokens from the first step. A :class:`CanvasTemplate` gives, for each
generated position (counted from the first generated token, across canvases):

- a **pin**: a token id fixed from the first step, never re-noised, always accepted (the JSON scaffold);
- or an **allowed set**: the logits of every other token are masked before sampling, before the argmax draft and
  before the entropy that acceptance and adaptive stopping use (a value slot: digits, string-safe tokens...);
- or nothing: any token (positions past the template are free too).

A :class:`Choice` marks a run of positions whose value is one of a few labels (an enum, a boolean, a page
number), each several tokens long perhaps: when its canvas is committed the engine scores every label as a whole
(the sum of its tokens' log-probabilities under the last step's distributions), writes the best one into the
canvas and reports the labels' probabilities.

The engine applies a template in :meth:`inference.runtime.engine.DiffusionEngine.generate` (``template=``); the schema
side lives in :mod:`inference.tasks.pinned`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from inference.errors import ConfigError

FREE = -1  # a position with no pin (pins) or no allowed set (sets)


@dataclass(frozen=True)
class Choice:
    """Positions ``start .. start + width`` hold one of ``labels`` (token ids, each exactly ``width`` long)."""

    start: int
    labels: tuple[tuple[int, ...], ...]

    @property
    def width(self) -> int:
        return len(self.labels[0])


@dataclass(frozen=True)
class CanvasTemplate:
    """Pins, allowed-token sets and choices over generated positions (see the module docstring).

    ``pins[i]`` is a token id or ``FREE``; ``sets[i]`` an index into ``token_sets`` or ``FREE``. A pinned position
    needs no set. Arrays are copied read-only when built.
    """

    pins: np.ndarray
    sets: np.ndarray
    token_sets: tuple[np.ndarray, ...] = ()
    choices: tuple[Choice, ...] = field(default=())

    def __post_init__(self) -> None:
        pins = np.array(self.pins, dtype=np.int64, copy=True)
        sets = np.array(self.sets, dtype=np.int64, copy=True)
        if pins.ndim != 1 or pins.shape != sets.shape:
            raise ConfigError("a canvas template needs pins and sets of one same length")
        if ((sets != FREE) & ((sets < 0) | (sets >= len(self.token_sets)))).any():
            raise ConfigError("a canvas template names an allowed-token set it does not hold")
        token_sets = tuple(np.unique(np.asarray(s, dtype=np.int64)) for s in self.token_sets)
        if any(len(s) == 0 for s in token_sets):
            raise ConfigError("a canvas template has an empty allowed-token set")
        for choice in self.choices:
            if not choice.labels or len({len(label) for label in choice.labels}) != 1:
                raise ConfigError("a choice needs labels of one same width")
            if choice.start < 0 or choice.start + choice.width > len(pins):
                raise ConfigError("a choice lies outside its template")
        for array in (pins, sets):
            array.flags.writeable = False
        object.__setattr__(self, "pins", pins)
        object.__setattr__(self, "sets", sets)
        object.__setattr__(self, "token_sets", token_sets)

    @property
    def length(self) -> int:
        return int(self.pins.shape[0])

    @property
    def pinned(self) -> np.ndarray:
        return self.pins != FREE

    def reopened(self, ids: np.ndarray, span: np.ndarray) -> CanvasTemplate:
        """This template over committed ``ids`` with everything pinned except ``span`` (a boolean mask over the
        template's positions): the span keeps this template's sets and choices and is denoised afresh."""
        ids = np.asarray(ids, dtype=np.int64)[: self.length]
        span = np.asarray(span, dtype=bool)
        if ids.shape != (self.length,) or span.shape != (self.length,):
            raise ConfigError(f"re-denoising needs the {self.length} committed template tokens and a span over them")
        open_ = span & ~self.pinned
        pins = np.where(open_, FREE, ids)
        choices = tuple(c for c in self.choices if open_[c.start : c.start + c.width].all())
        return CanvasTemplate(pins=pins, sets=self.sets, token_sets=self.token_sets, choices=choices)

    def to_wire(self) -> dict[str, Any]:
        """The template as plain JSON (the ``dwb.template`` field of a chat request)."""
        return {
            "pins": self.pins.tolist(),
            "sets": self.sets.tolist(),
            "token_sets": [s.tolist() for s in self.token_sets],
            "choices": [{"start": c.start, "labels": [list(label) for label in c.labels]} for c in self.choices],
        }

    @classmethod
    def from_wire(cls, data: Any, vocab_size: int) -> CanvasTemplate:
        """The template back from ``to_wire``; a ConfigError says what is wrong (token ids outside the vocabulary
        included)."""
        try:
            template = cls(
                pins=np.asarray(data["pins"], dtype=np.int64),
                sets=np.asarray(data["sets"], dtype=np.int64),
                token_sets=tuple(np.asarray(s, dtype=np.int64) for s in data.get("token_sets", ())),
                choices=tuple(
                    Choice(int(c["start"]), tuple(tuple(int(t) for t in label) for label in c["labels"]))
                    for c in data.get("choices", ())
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"the template is malformed: {exc}") from exc
        ids = [template.pins[template.pinned], *template.token_sets]
        if any(len(a) and (a.min() < 0 or a.max() >= vocab_size) for a in ids):
            raise ConfigError(f"the template holds token ids outside the vocabulary (0..{vocab_size - 1})")
        return template

    def canvas(self, index: int, canvas_length: int, vocab_size: int, device: torch.device) -> CanvasRule | None:
        """The part of the template on canvas ``index`` as device tensors (None when the canvas is past it)."""
        start = index * canvas_length
        if start >= self.length:
            return None
        stop = min(start + canvas_length, self.length)
        pins = np.full(canvas_length, FREE, dtype=np.int64)
        sets = np.full(canvas_length, FREE, dtype=np.int64)
        pins[: stop - start] = self.pins[start:stop]
        sets[: stop - start] = self.sets[start:stop]
        allowed = None
        constrained = (pins != FREE) | (sets != FREE)
        if constrained.any():
            allowed = torch.ones((canvas_length, vocab_size), dtype=torch.bool)
            for i in np.flatnonzero(constrained):
                allowed[i] = False
                if pins[i] != FREE:
                    allowed[i, int(pins[i])] = True
                else:
                    allowed[i, torch.from_numpy(self.token_sets[sets[i]])] = True
            allowed = allowed.to(device)
        choices = tuple(
            Choice(c.start - start, c.labels) for c in self.choices if start <= c.start and c.start + c.width <= stop
        )
        pin_mask = torch.from_numpy(pins != FREE).to(device)
        return CanvasRule(
            pins=torch.from_numpy(np.where(pins == FREE, 0, pins)).to(device),
            pin_mask=pin_mask,
            allowed=allowed,
            choices=choices,
            all_pinned=bool(pins.__ne__(FREE).all()),
        )


@dataclass(frozen=True)
class CanvasRule:
    """One canvas's part of a template, on the device (internal to the engine)."""

    pins: torch.Tensor  # (canvas_length,) token ids (0 where free)
    pin_mask: torch.Tensor  # (canvas_length,) bool
    allowed: torch.Tensor | None  # (canvas_length, vocab) bool, None when nothing is constrained
    choices: tuple[Choice, ...]
    all_pinned: bool

    def place(self, canvas: torch.Tensor) -> torch.Tensor:
        """The pins written over a (batch, canvas_length) canvas."""
        return torch.where(self.pin_mask[None], self.pins[None], canvas)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits with every token outside a position's allowed set (or pin) at -inf."""
        if self.allowed is None:
            return logits
        return logits.masked_fill(~self.allowed[None], float("-inf"))

    def resolve(self, canvas: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """At commit: each choice's labels scored as wholes under ``logits`` (the last step's), the best written
        into ``canvas``. Returns the canvas, the per-position log-probability of its tokens, and per choice the
        labels' probabilities (batch row 0)."""
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        canvas = canvas.clone()
        probabilities = []
        for choice in self.choices:
            positions = torch.arange(choice.start, choice.start + choice.width, device=canvas.device)
            labels = torch.tensor(choice.labels, device=canvas.device)  # (labels, width)
            slot = logprobs[:, positions]  # (batch, width, vocab)
            per_token = slot.gather(-1, labels.T[None].expand(slot.shape[0], -1, -1))  # (batch, width, labels)
            scores = per_token.sum(dim=1)  # (batch, labels)
            best = scores.argmax(dim=-1)
            canvas[:, positions] = labels[best]
            probabilities.append(tuple(float(p) for p in torch.softmax(scores[0], dim=-1)))
        chosen = logprobs.gather(-1, canvas[..., None]).squeeze(-1)
        return canvas, chosen, tuple(probabilities)
