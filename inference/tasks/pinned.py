"""Schema-pinned extraction: a JSON Schema laid out as a canvas template, and the answer read back from the canvas.

The canvas holds, for each top-level field, ``"name": {"value": V, "page": P, "quote": "Q"}``: braces, keys,
quotes and commas are pinned (:mod:`inference.runtime.template`); only the slots inside are denoised:

- strings: ``maxLength`` tokens (``STRING_TOKENS`` without it, ``STRING_TOKENS_CAP`` at most), each a token that
  cannot break a JSON string (no quote, backslash or control character) or padding; padding is stripped when read,
  and a value over ``maxLength`` characters (a token may hold several) is cut there;
- integers and numbers: a sign position (unless ``minimum`` >= 0), digit positions (as many as ``maximum`` needs,
  else ``INTEGER_DIGITS``), for numbers a point and ``FRACTION_DIGITS`` more;
- booleans, enums and the evidence page: one choice among whole labels (``true``/``false``, each enum value as
  JSON, page numbers ``1..N`` over the documents' pages in order); each label is scored as a whole from the slot's
  distributions and its probability is the confidence;
- objects nest; arrays hold ``maxItems`` item slots (``MAX_ITEMS`` by default, ``MAX_ITEMS_CAP`` at most), empty
  items are dropped;
- ``null`` where the type allows it: an empty string or number slot reads as null, a choice gets a ``null`` label.

Not laid out (a ConfigError says so; ``--no-template`` takes the prompt path): ``anyOf``/``oneOf``/``allOf``,
``$ref``, arrays of arrays. A field's confidence is the mean of its value slots' confidences: a choice's label
probability, else the geometric mean of the committed tokens' probabilities under the last step's distributions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.errors import ConfigError
from inference.runtime.template import FREE, CanvasTemplate, Choice

STRING_TOKENS = 12  # a string slot without maxLength
QUOTE_TOKENS = 16  # the evidence quote
INTEGER_DIGITS = 8  # an integer without maximum
FRACTION_DIGITS = 3
MAX_ITEMS = 3  # an array without maxItems
MAX_ITEMS_CAP = 16  # item slots at most, whatever maxItems says (validation reports a shortfall against minItems)
STRING_TOKENS_CAP = 48  # string slot tokens at most, whatever maxLength says
MIN_QUOTE = 3  # characters a quote needs to be checked against its page


@dataclass
class Vocabulary:
    """The token classes a template needs, from one tokenizer."""

    tokenizer: Any
    pad: int
    eos: int
    string: np.ndarray  # tokens safe inside a JSON string
    digits: np.ndarray
    minus: int | None
    point: int | None

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids if int(i) != self.pad], skip_special_tokens=True)


_VOCABULARIES: dict[tuple[int, int], Vocabulary] = {}


def vocabulary(tokenizer: Any, vocab_size: int, eos: int | None = None) -> Vocabulary:
    """Token classes of ``tokenizer`` (decoded once per tokenizer and kept)."""
    key = (id(tokenizer), vocab_size)
    if key in _VOCABULARIES:
        return _VOCABULARIES[key]
    size = min(vocab_size, len(tokenizer))
    pieces = tokenizer.batch_decode([[i] for i in range(size)], skip_special_tokens=False)
    special = set(tokenizer.all_special_ids)
    safe, digits, single = [], [], {}
    for i, text in enumerate(pieces):
        if i in special or not text or "\ufffd" in text or i in tokenizer.added_tokens_decoder:
            continue
        if any(c in '"\\' or ord(c) < 32 or ord(c) == 127 for c in text):
            continue
        safe.append(i)
        if text.isascii() and text.isdigit():
            digits.append(i)
        single.setdefault(text, i)
    pad = tokenizer.pad_token_id
    if pad is None or not digits:
        raise ConfigError("this tokenizer has no padding token or no digit tokens: use --no-template")
    vocab = Vocabulary(
        tokenizer=tokenizer,
        pad=int(pad),
        eos=int(eos if eos is not None else tokenizer.eos_token_id),
        string=np.array(safe),
        digits=np.array(digits),
        minus=single.get("-"),
        point=single.get("."),
    )
    _VOCABULARIES[key] = vocab
    return vocab


@dataclass
class Slot:
    """Denoised positions ``start .. start + width`` of one value."""

    kind: str  # string | integer | number | choice
    start: int
    width: int
    nullable: bool = False
    labels: tuple[Any, ...] = ()  # a choice's values
    tokens: tuple[tuple[int, ...], ...] = ()  # ... and their padded token ids (the Choice's labels)
    absent_label: bool = False  # (array items) the last label means "no item"
    max_chars: int | None = None  # a string's maxLength: a token may hold several characters, the value is cut there


@dataclass
class Node:
    kind: str  # object | array | slot
    children: dict[str, Node] = field(default_factory=dict)  # object properties
    items: list[Node] = field(default_factory=list)  # array items
    slot: Slot | None = None

    def slots(self) -> list[Slot]:
        if self.slot is not None:
            return [self.slot]
        return [s for child in (*self.children.values(), *self.items) for s in child.slots()]


@dataclass
class FieldLayout:
    value: Node
    page: Slot
    quote: Slot


class _Canvas:
    """Pins, sets and choices as they are laid out, position by position."""

    def __init__(self, vocab: Vocabulary, canvas_length: int) -> None:
        self.vocab = vocab
        self.canvas_length = canvas_length
        self.pins: list[int] = []
        self.sets: list[int] = []
        self.token_sets: list[np.ndarray] = []
        self._set_ids: dict[tuple[int, ...], int] = {}
        self.choices: list[Choice] = []

    def pin(self, text: str) -> None:
        for token in self.vocab.encode(text):
            self.pins.append(token)
            self.sets.append(FREE)

    def allowed(self, tokens: Sequence[int] | np.ndarray) -> int:
        key = tuple(sorted({int(t) for t in tokens}))
        if key not in self._set_ids:
            self._set_ids[key] = len(self.token_sets)
            self.token_sets.append(np.array(key))
        return self._set_ids[key]

    def slot(self, per_position: Sequence[int]) -> int:
        start = len(self.pins)
        for set_id in per_position:
            self.pins.append(FREE)
            self.sets.append(set_id)
        return start

    def choice(self, labels: Sequence[list[int]]) -> Choice:
        width = max(len(label) for label in labels)
        if (len(self.pins) % self.canvas_length) + width > self.canvas_length:  # a choice never straddles canvases
            while len(self.pins) % self.canvas_length:
                self.pins.append(self.vocab.pad)
                self.sets.append(FREE)
        padded = tuple(tuple(label) + (self.vocab.pad,) * (width - len(label)) for label in labels)
        start = self.slot([self.allowed([label[k] for label in padded]) for k in range(width)])
        self.choices.append(Choice(start, padded))
        return self.choices[-1]

    def template(self) -> CanvasTemplate:
        self.pin("}")
        self.pins.append(self.vocab.eos)
        self.sets.append(FREE)
        while len(self.pins) % self.canvas_length:  # the rest of the last canvas: padding, nothing to denoise
            self.pins.append(self.vocab.pad)
            self.sets.append(FREE)
        return CanvasTemplate(
            pins=np.array(self.pins),
            sets=np.array(self.sets),
            token_sets=tuple(self.token_sets),
            choices=tuple(self.choices),
        )


@dataclass
class PinnedLayout:
    """A schema laid out on the canvas: the template and where each field's slots are."""

    schema: dict[str, Any]
    template: CanvasTemplate
    fields: dict[str, FieldLayout]
    vocab: Vocabulary

    def span(self, names: Sequence[str]) -> np.ndarray:
        """The positions of these fields' value and evidence slots (for re-denoising)."""
        span = np.zeros(self.template.length, dtype=bool)
        for name in names:
            if name not in self.fields:
                raise ConfigError(f"no field {name!r} to re-denoise (fields: {', '.join(self.fields)})")
            layout = self.fields[name]
            for slot in (*layout.value.slots(), layout.page, layout.quote):
                span[slot.start : slot.start + slot.width] = True
        return span


def layout_schema(schema: dict[str, Any], vocab: Vocabulary, pages: int, canvas_length: int) -> PinnedLayout:
    """The canvas template of an object schema, with an evidence page (1..``pages``) and quote per field."""
    canvas = _Canvas(vocab, canvas_length)
    fields: dict[str, FieldLayout] = {}
    canvas.pin("{")
    for i, (name, spec) in enumerate((schema.get("properties") or {}).items()):
        canvas.pin(("" if i == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ': {"value": ')
        value = _lay(canvas, spec if isinstance(spec, dict) else {}, name, depth=0)
        canvas.pin(', "page": ')
        numbers = tuple(range(1, max(1, pages) + 1))
        page = _choice(canvas, numbers)
        canvas.pin(', "quote": "')
        quote = _string(canvas, QUOTE_TOKENS)
        canvas.pin('"}')
        fields[name] = FieldLayout(value, page, quote)
    return PinnedLayout(schema, canvas.template(), fields, vocab)


def _types(spec: dict[str, Any]) -> tuple[str, bool]:
    kind = spec.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    nullable = "null" in kinds or (None in spec.get("enum", ()))
    real = [k for k in kinds if k != "null"]
    if "enum" in spec:
        return "enum", nullable
    if "const" in spec:
        return "const", False
    if not real:
        return ("object" if "properties" in spec else "string"), nullable
    return real[0], nullable


def _lay(canvas: _Canvas, spec: dict[str, Any], where: str, depth: int, item: bool = False) -> Node:
    for keyword in ("anyOf", "oneOf", "allOf", "$ref"):
        if keyword in spec:
            raise ConfigError(f"{where}: {keyword} cannot be laid out on the canvas", hint="Use --no-template.")
    kind, nullable = _types(spec)
    if kind == "object":
        node = Node("object")
        canvas.pin("{")
        for i, (name, sub) in enumerate((spec.get("properties") or {}).items()):
            canvas.pin(("" if i == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": ")
            node.children[name] = _lay(canvas, sub if isinstance(sub, dict) else {}, f"{where}.{name}", depth + 1)
        canvas.pin("}")
        return node
    if kind == "array":
        items = spec.get("items")
        sub: dict[str, Any] = items if isinstance(items, dict) else {}
        if _types(sub)[0] == "array":
            raise ConfigError(f"{where}: arrays of arrays cannot be laid out on the canvas", hint="Use --no-template.")
        node = Node("array")
        canvas.pin("[")
        for i in range(min(int(spec.get("maxItems", MAX_ITEMS)), MAX_ITEMS_CAP)):
            canvas.pin("" if i == 0 else ", ")
            node.items.append(_lay(canvas, sub, f"{where}[{i}]", depth + 1, item=i >= int(spec.get("minItems", 0))))
        canvas.pin("]")
        return node
    if kind in ("enum", "boolean", "const"):
        values: list[Any] = (
            list(spec["enum"]) if kind == "enum" else [True, False] if kind == "boolean" else [spec["const"]]
        )
        if nullable and None not in values:
            values.append(None)
        return Node("slot", slot=_choice(canvas, tuple(values), absent=item))
    if kind in ("integer", "number"):
        return Node("slot", slot=_number(canvas, spec, kind, nullable or item))
    canvas.pin('"')
    width = min(int(spec.get("maxLength", STRING_TOKENS)), STRING_TOKENS_CAP)
    slot = _string(canvas, max(1, width))
    slot.nullable = nullable or item
    slot.max_chars = spec.get("maxLength") if isinstance(spec.get("maxLength"), int) else None
    canvas.pin('"')
    return Node("slot", slot=slot)


def _choice(canvas: _Canvas, values: tuple[Any, ...], absent: bool = False) -> Slot:
    """A choice among ``values`` written as JSON (and, for an optional array item, an all-padding "no item")."""
    labels = [canvas.vocab.encode(json.dumps(v, ensure_ascii=False)) for v in values] + ([[]] if absent else [])
    choice = canvas.choice(labels)
    return Slot("choice", choice.start, choice.width, labels=values, tokens=choice.labels, absent_label=absent)


def _string(canvas: _Canvas, width: int) -> Slot:
    allowed = canvas.allowed([*canvas.vocab.string, canvas.vocab.pad])
    return Slot("string", canvas.slot([allowed] * width), width)


def _number(canvas: _Canvas, spec: dict[str, Any], kind: str, may_be_empty: bool) -> Slot:
    vocab = canvas.vocab
    pad = vocab.pad
    digits = canvas.allowed(vocab.digits)
    digits_or_pad = canvas.allowed([*vocab.digits, pad])
    maximum = spec.get("maximum", spec.get("exclusiveMaximum"))
    minimum = spec.get("minimum", spec.get("exclusiveMinimum"))
    count = INTEGER_DIGITS
    if isinstance(maximum, (int, float)) and isinstance(minimum, (int, float)):
        count = max(1, len(str(int(max(abs(maximum), abs(minimum))))))
    positions = []
    if vocab.minus is not None and not (isinstance(minimum, (int, float)) and minimum >= 0):
        positions.append(canvas.allowed([vocab.minus, pad]))
    positions.append(digits_or_pad if may_be_empty else digits)
    positions += [digits_or_pad] * (count - 1)
    if kind == "number" and vocab.point is not None:
        positions.append(canvas.allowed([vocab.point, pad]))
        positions += [digits_or_pad] * FRACTION_DIGITS
    return Slot(kind, canvas.slot(positions), len(positions), nullable=may_be_empty)


# reading the canvas back ------------------------------------------------------------------------------------------
ABSENT = object()


@dataclass
class Reading:
    value: dict[str, Any]
    confidence: dict[str, float]
    evidence: dict[str, dict[str, Any]]  # field -> page, quote (grounding is added by the caller)


def read_canvas(
    layout: PinnedLayout, ids: np.ndarray, logprobs: np.ndarray, choice_probs: dict[int, tuple[float, ...]]
) -> Reading:
    """The schema-shaped value, per-field confidence and raw evidence from committed template tokens.

    ``logprobs``: per position, the committed token's log-probability; ``choice_probs``: per choice start, its
    labels' probabilities."""
    value, confidence, evidence = {}, {}, {}
    for name, f in layout.fields.items():
        item = _read(layout.vocab, f.value, ids)
        value[name] = None if item is ABSENT else item
        scores = [_slot_confidence(s, logprobs, choice_probs) for s in f.value.slots()]
        confidence[name] = round(float(np.mean(scores)) if scores else 1.0, 4)
        page = _read(layout.vocab, Node("slot", slot=f.page), ids)
        page = None if page is ABSENT else page
        quote = _read(layout.vocab, Node("slot", slot=f.quote), ids)
        evidence[name] = {"page": page, "quote": "" if quote is ABSENT else (quote or "")}
    return Reading(value, confidence, evidence)


def _slot_confidence(slot: Slot, logprobs: np.ndarray, choice_probs: dict[int, tuple[float, ...]]) -> float:
    if slot.kind == "choice" and slot.start in choice_probs:
        return float(max(choice_probs[slot.start]))
    return float(math.exp(float(np.mean(logprobs[slot.start : slot.start + slot.width]))))


def _read(vocab: Vocabulary, node: Node, ids: np.ndarray) -> Any:
    if node.kind == "object":
        return {k: (None if (v := _read(vocab, child, ids)) is ABSENT else v) for k, child in node.children.items()}
    if node.kind == "array":
        return [v for child in node.items if (v := _read(vocab, child, ids)) is not ABSENT]
    slot = node.slot
    if slot is None:  # _lay gives every node that is neither object nor array a slot
        raise ValueError(f"a layout node of kind {node.kind!r} has no slot to read")
    tokens = [int(t) for t in ids[slot.start : slot.start + slot.width]]
    if slot.kind == "choice":
        label = tuple(tokens)
        for value, candidate in zip(slot.labels, slot.tokens, strict=False):
            if candidate == label:
                return value
        return ABSENT if slot.absent_label else None
    text = vocab.decode(tokens)
    if slot.kind == "string":
        text = text.strip()[: slot.max_chars].strip()
        return ABSENT if not text and slot.nullable else text
    return _number_value(text, slot)


def _number_value(text: str, slot: Slot) -> Any:
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    whole = "".join(c for c in whole if c.isdigit())
    fraction = "".join(c for c in fraction if c.isdigit())
    if not whole and not fraction:
        return ABSENT if slot.nullable else 0
    if slot.kind == "integer" or not fraction:
        number = int(sign + (whole or "0"))
        return number if slot.kind == "integer" else float(number)
    return float(f"{sign}{whole or '0'}.{fraction}")


def choice_probabilities(template: CanvasTemplate, commits: Sequence[Any]) -> dict[int, tuple[float, ...]]:
    """Per choice start, the label probabilities the commit events report (choices in template order)."""
    reported = [p for commit in commits for p in commit.choices]
    return {c.start: p for c, p in zip(template.choices, reported, strict=False)}


def ground(evidence: dict[str, dict[str, Any]], docs: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Each field's quote looked up on its page (pages counted over ``docs`` in order): ``grounded`` when found
    (case and spacing aside, at least ``MIN_QUOTE`` characters), with the document, the page and the box of the
    block holding it (None when the quote runs over several blocks)."""
    pages = [(doc, page) for doc in docs for page in doc.pages]
    out = {}
    for name, item in evidence.items():
        number, quote = item.get("page"), str(item.get("quote") or "")
        entry = {"page": number, "quote": quote, "grounded": False, "document": None, "box": None}
        needle = _squash(quote)
        if isinstance(number, int) and 1 <= number <= len(pages):
            doc, page = pages[number - 1]
            entry["document"] = doc.source
            if len(needle) >= MIN_QUOTE and needle in _squash(page.text):
                entry["grounded"] = True
                block = next((b for b in page.blocks if needle in _squash(b.text)), None)
                entry["box"] = [round(v, 1) for v in block.bbox] if block is not None else None
        out[name] = entry
    return out


def _squash(text: str) -> str:
    return " ".join(text.lower().split())
