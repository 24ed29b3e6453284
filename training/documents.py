"""Made-up business documents for the document stage of ``tiny-trained``: invoices, receipts, forms and letters.

Each page is a list of lines (a title, the sender's address, ``Label: value`` lines in varied order and wording,
line items or body text); its text is what :func:`inference.documents.ingest` reads from a PDF written line by line
(:func:`write_pdf`): blocks joined by a blank line. Field values (names, numbers, dates, amounts) are drawn from
made-up words and digits; a value is *held out* when its CRC-32 is divisible by ``HOLD_OUT``: training pages never
carry one, evaluation pages (``held_out=True``) carry only those, so the model is measured on values it never saw.

Two tasks are made from a document (:mod:`training.train` turns them into batches):

- **pinned extraction**: a schema of two to four of its string fields, laid out by
  :func:`inference.tasks.pinned.layout_schema`; the target canvas fills each value slot and quote slot with the
  value's tokens as they stand on the page (after a space: the slot's decoded text is stripped) and the page slot
  with the page it is on;
- **extractive questions**: the Ask prompt (:data:`inference.tasks.model.ASK_INSTRUCTION`) with a question about one
  field; the answer is the value and its page, ``VALUE [p. N]``.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HOLD_OUT = 5  # a value whose CRC-32 is divisible by this is held out of training
VALUE_TOKENS = 15  # a value's tokens at most (with its leading space): fits the narrowest slot and the quote
KINDS = ("invoice", "receipt", "form", "letter")
SYLLABLES = (
    "ka ro ve lin tor mar sel den bri os al fen gar hul ith jor kel lum nor pra quin ras sto tam ul vor wen yst zel "
    "ber cor dal em fir gos han ir jan kor lo mis nat or pel rin sul tev un vas wil"
).split()
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
STREETS = ("Road", "Street", "Lane", "Avenue", "Way", "Court")
COMPANY = ("Ltd", "GmbH", "Inc", "& Co", "Trading", "Supplies", "Works")


@dataclass
class Field:
    name: str  # the schema's property name
    value: str  # as written on the page
    label: str  # the page's words before it ("Invoice number")
    question: str  # an extractive question about it


@dataclass
class Page:
    kind: str
    lines: list[str]
    fields: list[Field] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The page text as ingest reads it from :func:`write_pdf`'s PDF: one block per line, blank-line separated."""
        return "\n\n".join(" ".join(line.split()) for line in self.lines if line.strip())


def held_out(value: str) -> bool:
    return zlib.crc32(value.encode()) % HOLD_OUT == 0


class Values:
    """Draws field values on one side of the hold-out split."""

    def __init__(self, rng: random.Random, evaluation: bool) -> None:
        self.rng, self.evaluation = rng, evaluation

    def _keep(self, make: Any) -> str:
        for _ in range(200):
            value = make()
            if held_out(value) == self.evaluation:
                return value
        raise RuntimeError("no value on this side of the split")

    def word(self, low: int = 2, high: int = 3) -> str:
        return "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(low, high))).capitalize()

    def person(self) -> str:
        return self._keep(lambda: f"{self.word()} {self.word()}")

    def company(self) -> str:
        return self._keep(lambda: f"{self.word()} {self.rng.choice(COMPANY)}")

    def city(self) -> str:
        return self._keep(lambda: self.word(2, 3))

    def number(self, prefix: str) -> str:
        return self._keep(lambda: f"{prefix}{self.rng.randrange(1000, 99999)}")

    def date(self) -> str:
        r = self.rng
        styles = (
            lambda: f"{r.randint(1, 28)} {r.choice(MONTHS)} {r.randint(2015, 2027)}",
            lambda: f"{r.randint(2015, 2027)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
            lambda: f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(2015, 2027)}",
        )
        style = r.choice(styles)
        return self._keep(style)

    def amount(self) -> str:
        r = self.rng
        return self._keep(lambda: f"{r.randrange(1, 9999):,}.{r.randrange(100):02d}")

    def phone(self) -> str:
        r = self.rng
        return self._keep(lambda: f"0{r.randrange(10, 99)} {r.randrange(1000, 9999)} {r.randrange(1000, 9999)}")


def _address(v: Values) -> str:
    return f"{v.rng.randint(1, 240)} {v.word()} {v.rng.choice(STREETS)}, {v.word()}"


def _specs(kind: str, v: Values) -> list[tuple[str, tuple[str, ...], Any, str]]:
    """(property, page labels, value maker, question) per field of a document kind."""
    if kind == "invoice":
        return [
            (
                "invoice_number",
                ("Invoice number", "Invoice No.", "Invoice #"),
                lambda: v.number("INV-"),
                "What is the invoice number?",
            ),
            ("date", ("Date", "Invoice date", "Issued"), v.date, "When was the invoice issued?"),
            ("due_date", ("Due date", "Payment due", "Due"), v.date, "When is payment due?"),
            ("vendor", ("From", "Seller", "Supplier"), v.company, "Who sent the invoice?"),
            ("customer", ("Bill to", "Customer", "Client"), v.person, "Who is the invoice billed to?"),
            ("total", ("Total", "Total due", "Amount due"), v.amount, "What is the total amount?"),
        ]
    if kind == "receipt":
        return [
            ("store", ("Store", "Shop", "Merchant"), v.company, "Which store issued the receipt?"),
            ("receipt_number", ("Receipt", "Receipt no.", "Ref"), lambda: v.number("R"), "What is the receipt number?"),
            ("date", ("Date", "Purchased", "Sold on"), v.date, "When was the purchase made?"),
            ("total", ("Total", "Paid", "Amount"), v.amount, "How much was paid?"),
            ("cashier", ("Cashier", "Served by", "Staff"), v.person, "Who served the customer?"),
        ]
    if kind == "form":
        return [
            ("name", ("Name", "Full name", "Applicant"), v.person, "What is the applicant's name?"),
            ("date_of_birth", ("Date of birth", "Born", "Birth date"), v.date, "When was the applicant born?"),
            ("city", ("City", "Town", "Place of residence"), v.city, "Which city does the applicant live in?"),
            ("phone", ("Phone", "Telephone", "Tel."), v.phone, "What is the phone number?"),
            (
                "reference",
                ("Reference", "Case no.", "File ref"),
                lambda: v.number("F-"),
                "What is the form's reference?",
            ),
        ]
    return [
        ("sender", ("From", "Sender", "Written by"), v.person, "Who wrote the letter?"),
        ("recipient", ("To", "Recipient", "Addressed to"), v.person, "Who is the letter addressed to?"),
        ("date", ("Date", "Dated", "Sent"), v.date, "When was the letter sent?"),
        ("reference", ("Our ref", "Reference", "Ref"), lambda: v.number("L-"), "What is the letter's reference?"),
        ("company", ("Company", "On behalf of", "Firm"), v.company, "Which company is the letter from?"),
    ]


TITLES = {
    "invoice": ("INVOICE", "Invoice", "TAX INVOICE"),
    "receipt": ("RECEIPT", "Sales receipt", "Receipt"),
    "form": ("APPLICATION FORM", "Registration form", "Membership form"),
    "letter": ("Letter", "Notice", "Correspondence"),
}


def make_page(rng: random.Random, evaluation: bool = False, kind: str | None = None) -> Page:
    """One made-up document page: every field of its kind on a ``Label: value`` line, in shuffled order, among
    filler lines (an address, line items, a sentence of made-up words)."""
    v = Values(rng, evaluation)
    kind = kind or rng.choice(KINDS)
    fields = []
    for name, labels, make, question in _specs(kind, v):
        value = make()
        fields.append(Field(name, value, rng.choice(labels), question))
    rng.shuffle(fields)
    lines = [rng.choice(TITLES[kind])]
    if rng.random() < 0.7:
        lines.append(_address(v))
    body = [f"{f.label}: {f.value}" for f in fields]
    for _ in range(rng.randint(0, 3)):
        item = f"{v.word()} {v.word(1, 2).lower()} x {rng.randint(1, 9)}"
        filler = f"{item} {rng.randrange(1, 999)}.{rng.randrange(100):02d}"
        body.insert(rng.randint(0, len(body)), filler)
    if rng.random() < 0.5:
        body.append(" ".join(v.word(1, 3).lower() for _ in range(rng.randint(3, 8))).capitalize() + ".")
    return Page(kind, lines + body, fields)


def write_pdf(pages: Sequence[Page], path: Any) -> None:
    """The pages as a PDF, one text line per line (what ingest reads back is :attr:`Page.text`)."""
    import pymupdf

    pdf = pymupdf.open()
    for page in pages:
        out = pdf.new_page(width=612, height=792)
        y = 60
        for line in page.lines:
            out.insert_text((50, y), line, fontsize=11)
            y += 18
    pdf.save(str(path))
    pdf.close()


def page_marker(name: str, number: int) -> str:
    return f"[{name}, page {number}]"


def document_name(rng: random.Random, kind: str) -> str:
    return f"{kind}-{rng.randrange(1, 9999)}.pdf"


def schema_for(fields: Sequence[Field], rng: random.Random) -> dict[str, Any]:
    """A string schema over ``fields`` (each ``maxLength`` 16, 20 or 24 characters)."""
    props = {f.name: {"type": "string", "maxLength": rng.choice((16, 20, 24))} for f in fields}
    return {"type": "object", "properties": props}


def fits(tokenizer: Any, value: str) -> bool:
    return len(tokenizer(" " + value, add_special_tokens=False)["input_ids"]) <= VALUE_TOKENS


@dataclass
class ExtractionExample:
    """One pinned-extraction example: the prompt parts, the layout and the clean canvas (template filled)."""

    parts: list[Any]
    layout: Any
    clean: list[int]
    free: list[bool]  # positions the template leaves to the model
    copies: dict[int, tuple[int, ...]]  # canvas start of a copied run -> its tokens (to find in the prompt)


def extraction_example(
    tokenizer: Any, vocab: Any, canvas_length: int, rng: random.Random, evaluation: bool = False
) -> ExtractionExample | None:
    """A one- or two-page document and a schema of two to four of the pages' fields that fits one canvas."""
    from inference.prompts import PromptPart
    from inference.tasks.model_extract import PINNED_INSTRUCTION
    from inference.tasks.pinned import layout_schema

    kinds = rng.sample(KINDS, 1 if rng.random() < 0.75 else 2)
    pages = [make_page(rng, evaluation, kind) for kind in kinds]
    name = document_name(rng, pages[0].kind)
    where = [(number, f) for number, p in enumerate(pages, 1) for f in p.fields if fits(tokenizer, f.value)]
    rng.shuffle(where)
    unique = {}
    for number, f in where:
        unique.setdefault(f.name, (number, f))
    chosen = list(unique.values())[: rng.randint(2, 4)]
    if len(chosen) < 2:
        return None
    schema = schema_for([f for _, f in chosen], rng)
    layout = layout_schema(schema, vocab, len(pages), canvas_length)
    if layout.template.length > canvas_length:
        return None
    clean = [int(t) for t in layout.template.pins]
    free = [t < 0 for t in clean]
    copies = {}
    for (number, f), (_, slots) in zip(chosen, layout.fields.items(), strict=True):
        tokens = tokenizer(" " + f.value, add_special_tokens=False)["input_ids"]
        for slot in (slots.value.slot, slots.quote):
            run = tokens[: slot.width]
            clean[slot.start : slot.start + slot.width] = run + [vocab.pad] * (slot.width - len(run))
            copies[slot.start] = tuple(run)
        label = slots.page.tokens[slots.page.labels.index(number)]
        clean[slots.page.start : slots.page.start + slots.page.width] = list(label)
    clean = [vocab.pad if t < 0 else t for t in clean]
    instruction = PINNED_INSTRUCTION.format(schema=json.dumps(schema, ensure_ascii=False, indent=1))
    parts = [PromptPart("text", text=f"{page_marker(name, n)}\n{p.text}\n") for n, p in enumerate(pages, 1)]
    parts.append(PromptPart("text", text=instruction))
    return ExtractionExample(parts, layout, clean, free, copies)


def question_example(rng: random.Random, evaluation: bool = False) -> tuple[list[Any], str, Field, int]:
    """A one- to three-page document, a question about one field and the answer ``VALUE [p. N]``."""
    from inference.prompts import PromptPart
    from inference.tasks.conversation import ASK_INSTRUCTION

    pages = [make_page(rng, evaluation, kind) for kind in rng.sample(KINDS, rng.randint(1, 3))]
    name = document_name(rng, pages[0].kind)
    number = rng.randint(1, len(pages))
    asked = rng.choice(pages[number - 1].fields)
    parts = [PromptPart("text", text=f"{page_marker(name, n)}\n{p.text}\n") for n, p in enumerate(pages, 1)]
    parts.append(PromptPart("text", text=ASK_INSTRUCTION.format(question=asked.question)))
    return parts, f" {asked.value} [p. {number}]", asked, number
