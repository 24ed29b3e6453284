"""The prompt builder: documents plus an instruction -> interleaved chat messages with exact token counts.

Counts come from the processor itself: the chat template is rendered and tokenized (text only, cheap), and each
image costs the soft tokens the processor will give it at the chosen ``max_soft_tokens`` budget (set by its aspect
ratio) plus its begin/end-of-image tokens. The total equals the length of the processor's ``input_ids``.
Over budget, the builder lowers the image budget, then drops page images where a text layer exists, then leaves
out whole pages from the end, reporting each decision page by page; ``chunks`` splits a document set into prompts
that each fit (for map-reduce tasks), cutting a page larger than the budget into passages (at paragraph breaks, else
sentence ends, else spaces) that each keep their page and character span, so that every part of every page reaches
the model in some chunk.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from inference.documents.model import Document, Page
from inference.errors import ConfigError
from inference.ocr.scan import page_image

CONTEXT_TOKENS = 262_144
SOFT_TOKEN_LEVELS = (1120, 560, 280, 140, 70)
MODES = ("auto", "text", "image", "both")
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
SENTENCE_END = re.compile(r"(?<=[.!?\u3002])\s+")
WHITESPACE = re.compile(r"\s+")
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class PromptPolicy:
    budget_tokens: int | None = None  # default: the context minus reserve_tokens
    reserve_tokens: int = 8192  # kept free for generation
    mode: str = "auto"  # per page: text layer, image, or both
    max_soft_tokens: int = 280  # per image, one of SOFT_TOKEN_LEVELS
    min_soft_tokens: int = 70
    dpi: float = 110
    clean_scans: bool = True  # scanned pages go in upright, deskewed and cleaned (documents.scan)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"Unknown page mode {self.mode!r}; choose one of {', '.join(MODES)}.")
        for name in ("max_soft_tokens", "min_soft_tokens"):
            if getattr(self, name) not in SOFT_TOKEN_LEVELS:
                raise ConfigError(f"{name} must be one of {SOFT_TOKEN_LEVELS}.")

    def budget(self, context_tokens: int) -> int:
        return self.budget_tokens if self.budget_tokens is not None else context_tokens - self.reserve_tokens


@dataclass
class PromptPart:
    kind: str  # "text" | "image"
    text: str = ""
    image: Any = None
    document: str | None = None
    page: int | None = None
    tokens: int = 0
    span: tuple[int, int] | None = None  # a passage: its characters in the page's text


PageMode = Literal["text", "image", "both", "none"]
PageStatus = Literal["included", "downsampled", "text_only", "dropped"]


@dataclass
class PageReport:
    document: str
    page: int
    label: str
    mode: PageMode  # what went in
    tokens: int  # what went in; for a dropped page or passage, what it would have cost
    status: PageStatus
    note: str = ""
    span: tuple[int, int] | None = None  # a passage of the page: its characters in the page's text


@dataclass
class Prompt:
    instruction: str
    parts: list[PromptPart]
    max_soft_tokens: int
    total_tokens: int
    template_tokens: int
    budget: int
    reports: list[PageReport] = field(default_factory=list)

    @property
    def images(self) -> list[Any]:
        return [p.image for p in self.parts if p.kind == "image"]

    @property
    def dropped(self) -> list[PageReport]:
        return [r for r in self.reports if r.status == "dropped"]

    def messages(self) -> list[dict[str, Any]]:
        content = [
            {"type": "image", "image": p.image} if p.kind == "image" else {"type": "text", "text": p.text}
            for p in self.parts
        ]
        return [{"role": "user", "content": content}]


def one_at_a_time(method: Callable[Concatenate[PromptBuilder, P], R]) -> Callable[Concatenate[PromptBuilder, P], R]:
    """A builder method that calls the processor, run under the builder's lock: a tokenizer is not safe to share
    between threads, and a remote engine builds the prompts of several documents at once (page images, the slow
    part, still render in parallel)."""

    @functools.wraps(method)
    def locked(self: PromptBuilder, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.lock:
            return method(self, *args, **kwargs)

    return locked


class PromptBuilder:
    """Prompts from documents with the processor of the model that reads them; safe to share between threads (its
    calls of the processor run one at a time)."""

    def __init__(self, processor: Any, context_tokens: int = CONTEXT_TOKENS) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.context_tokens = context_tokens
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ counting
    @one_at_a_time
    def render(self, parts: Sequence[PromptPart]) -> str:
        messages = Prompt("", list(parts), 0, 0, 0, 0).messages()
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    @one_at_a_time
    def image_tokens(self, image: Any, max_soft_tokens: int) -> int:
        """Soft tokens for this image at this budget, plus its begin- and end-of-image tokens."""
        data = self.processor._get_num_multimodal_tokens(
            image_sizes=[(image.height, image.width)], max_soft_tokens=max_soft_tokens
        )
        return int(data.num_image_tokens[0]) + 2

    @one_at_a_time
    def count(self, parts: Sequence[PromptPart], max_soft_tokens: int) -> tuple[int, int]:
        """Exact total for these parts, and the template's share; fills each part's ``tokens``."""
        rendered = self.render(parts)
        enc = self.tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        starts = [a for a, _ in offsets]
        cursor, attributed = 0, 0
        placeholder = self.processor.image_token
        for part in parts:
            if part.kind == "image":
                part.tokens = self.image_tokens(part.image, max_soft_tokens)
                at = rendered.find(placeholder, cursor)
                cursor = at + len(placeholder) if at >= 0 else cursor
                attributed += 1  # the placeholder token, replaced by the image's tokens
                continue
            at = rendered.find(part.text, cursor)
            if at < 0:
                part.tokens = len(self.tokenizer(part.text, add_special_tokens=False)["input_ids"])
                continue
            end = at + len(part.text)
            part.tokens = sum(1 for s in starts if at <= s < end)
            attributed += part.tokens
            cursor = end
        template = len(enc["input_ids"]) - attributed
        total = template + sum(p.tokens for p in parts)
        return total, template

    @one_at_a_time
    def inputs(self, prompt: Prompt, return_tensors: str = "pt") -> Any:
        """The processor's model inputs for this prompt."""
        rendered = self.render(prompt.parts)
        images = prompt.images or None
        return self.processor(
            text=rendered,
            images=images,
            return_tensors=return_tensors,
            add_special_tokens=False,
            max_soft_tokens=prompt.max_soft_tokens,
        )

    @one_at_a_time
    def batch_inputs(self, prompts: Sequence[Prompt], return_tensors: str = "pt") -> Any:
        """One left-padded batch of model inputs for several prompts (images in order, row by row)."""
        budgets = {p.max_soft_tokens for p in prompts}
        if len(budgets) > 1:
            raise ValueError("prompts of one batch must share their image budget")
        texts = [self.render(p.parts) for p in prompts]
        images = [list(p.images) for p in prompts]
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            return self.processor(
                text=texts,
                images=images if any(images) else None,
                return_tensors=return_tensors,
                add_special_tokens=False,
                padding=True,
                max_soft_tokens=budgets.pop(),
            )
        finally:
            tokenizer.padding_side = side

    # ------------------------------------------------------------------ building
    def page_parts(self, doc: Document, page: Page, mode: str, policy: PromptPolicy) -> tuple[list[PromptPart], str]:
        if page.error:
            return [], "none"
        use = mode
        if use == "auto":
            if doc.kind == "video":
                use = "image"
            elif doc.kind == "text" or (page.has_text_layer and not any(b.kind == "figure" for b in page.blocks)):
                use = "text"
            elif page.has_text_layer:
                use = "both"
            else:
                use = "image"
        if doc.kind == "text" and use != "text":
            use = "text"
        marker = prompt_marker(doc, page)
        parts = []
        if use in ("text", "both"):
            body = page.text.strip()
            parts.append(
                PromptPart(
                    "text", text=f"{marker}\n{body}\n" if body else f"{marker}\n", document=doc.source, page=page.number
                )
            )
        if use in ("image", "both"):
            if use == "image":
                parts.append(PromptPart("text", text=f"{marker}\n", document=doc.source, page=page.number))
            image = page_image(doc, page.number, policy.dpi, clean=policy.clean_scans)
            parts.append(PromptPart("image", image=image, document=doc.source, page=page.number))
        return parts, use

    def build(
        self,
        documents: Sequence[Document],
        instruction: str,
        policy: PromptPolicy | None = None,
        on_page: Callable[[int, int], None] | None = None,
    ) -> Prompt:
        """The prompt of ``documents`` and ``instruction`` within the policy's budget. ``on_page(done, total)`` is
        called after each page is read (rendering a page image is the slow part): a caller shows progress there, or
        raises there to stop (a cancelled job)."""
        policy = policy or PromptPolicy()
        budget = policy.budget(self.context_tokens)
        pages: list[tuple[Document, Page, list[PromptPart], str]] = []
        total = sum(len(doc.pages) for doc in documents)
        for doc in documents:
            for page in doc.pages:
                parts, use = self.page_parts(doc, page, policy.mode, policy)
                pages.append((doc, page, parts, use))
                if on_page is not None:
                    on_page(len(pages), total)
        return self._fit(pages, instruction, policy, budget)

    def _assemble(self, pages: list, instruction: str, soft: int, budget: int) -> Prompt:
        parts = [p for _, _, page_parts, _ in pages for p in page_parts]
        parts.append(PromptPart("text", text=instruction))
        total, template = self.count(parts, soft)
        return Prompt(instruction, parts, soft, total, template, budget)

    def _fit(self, pages: list, instruction: str, policy: PromptPolicy, budget: int) -> Prompt:
        levels = [lv for lv in SOFT_TOKEN_LEVELS if policy.min_soft_tokens <= lv <= policy.max_soft_tokens]
        soft = levels[0]
        prompt = self._assemble(pages, instruction, soft, budget)
        notes: dict[tuple, tuple[PageStatus, str, int]] = {}
        # 1. lower the image budget
        for level in levels[1:]:
            if prompt.total_tokens <= budget or not prompt.images:
                break
            soft = level
            prompt = self._assemble(pages, instruction, soft, budget)
            for entry in pages:
                if any(p.kind == "image" for p in entry[2]):
                    notes[_key(entry)] = ("downsampled", f"images at {soft} soft tokens", 0)
        # 2. pages that have a text layer go in as text only
        if prompt.total_tokens > budget:
            for i, (doc, page, parts, use) in enumerate(pages):
                if use == "both":
                    pages[i] = (doc, page, [p for p in parts if p.kind == "text"], "text")
                    notes[_key(pages[i])] = ("text_only", "image left out to fit the budget", 0)
            prompt = self._assemble(pages, instruction, soft, budget)
        # 3. leave out whole pages from the end, estimating from part counts, then checking exactly
        if prompt.total_tokens > budget:
            cost = [sum(p.tokens for p in parts) for _, _, parts, _ in pages]
            over = prompt.total_tokens - budget
            keep = len(pages)
            while keep > 0 and over > 0:
                keep -= 1
                over -= cost[keep]
            while True:
                trial = pages[:keep] + [(d, pg, [], "none") for d, pg, _, _ in pages[keep:]]
                prompt = self._assemble(trial, instruction, soft, budget)
                if prompt.total_tokens <= budget or keep == 0:
                    break
                keep -= 1
            for index in range(keep, len(pages)):
                notes[_key(pages[index])] = ("dropped", "left out: over the token budget", cost[index])
            pages = [(d, pg, parts, use, _span(old)) for (d, pg, parts, use), old in zip(trial, pages, strict=True)]
        by_part: dict[tuple, int] = {}
        for part in prompt.parts:
            if part.document is not None:
                key = (part.document, part.page, part.span)
                by_part[key] = by_part.get(key, 0) + part.tokens
        for entry in pages:
            doc, page, _, use = entry[:4]
            key = (doc.source, page.number, entry[4] if len(entry) > 4 else _span(entry))
            status, note, would = notes.get(key, ("included", "", 0))
            if page.error:
                status, note, use = "dropped", f"page error: {page.error}", "none"
            tokens = would if status == "dropped" else by_part.get(key, 0)
            prompt.reports.append(PageReport(doc.name, page.number, page.label, use, tokens, status, note, span=key[2]))
        return prompt

    def chunks(
        self, documents: Sequence[Document], instruction: str, policy: PromptPolicy | None = None
    ) -> list[Prompt]:
        """Consecutive groups of pages, each a prompt within the budget; a page larger than the room a chunk has
        for pages is cut into passages (:meth:`passages`) that go into chunks of their own."""
        policy = policy or PromptPolicy()
        budget = policy.budget(self.context_tokens)
        soft = policy.max_soft_tokens
        overhead = self._assemble([], instruction, soft, budget).total_tokens
        room = budget - overhead
        empty = self.count([], soft)[0]
        units = []
        for doc in documents:
            for page in doc.pages:
                parts, use = self.page_parts(doc, page, policy.mode, policy)
                if not parts:
                    continue
                cost = self.count(parts, soft)[0] - empty
                if cost <= room or use not in ("text", "both") or not page.text.strip():
                    units.append(((doc, page, parts, use), cost))
                    continue
                images = [p for p in parts if p.kind == "image"]
                if images:
                    image_unit = [
                        PromptPart("text", text=f"{prompt_marker(doc, page)}\n", **_where(doc, page)),
                        *images,
                    ]
                    units.append(((doc, page, image_unit, "image"), self.count(image_unit, soft)[0] - empty))
                for passage in self.passages(doc, page, room, soft):
                    units.append(((doc, page, [passage], "text"), passage.tokens))
        if not units:
            return []
        groups: list[list] = [[]]
        used = overhead
        for entry, cost in units:
            if groups[-1] and used + cost > budget:
                groups.append([])
                used = overhead
            groups[-1].append(entry)
            used += cost
        return [self._fit(group, instruction, policy, budget) for group in groups]

    def passages(self, doc: Document, page: Page, room: int, soft: int) -> list[PromptPart]:
        """The page's text as passages of at most ``room`` tokens each (marker included), cut at paragraph breaks,
        else sentence ends, else spaces; each part keeps its page and its character span in ``page.text``."""
        text = page.text
        empty = self.count([], soft)[0]
        whole = self.count([PromptPart("text", text=text)], soft)[0] - empty
        max_chars = max(16, int(len(text) * room / max(whole, 1) * 0.9))
        for _attempt in range(8):
            parts = []
            for start, end in passage_spans(text, max_chars):
                marker = prompt_marker(doc, page, (start, end))
                part = PromptPart("text", text=f"{marker}\n{text[start:end].strip()}\n", span=(start, end))
                part.document, part.page = doc.source, page.number
                part.tokens = self.count([part], soft)[0] - empty
                parts.append(part)
            worst = max(p.tokens for p in parts)
            if worst <= room or max_chars <= 16:
                return parts
            max_chars = max(16, int(max_chars * room / worst * 0.9))
        return parts


def prompt_marker(doc: Document, page: Page, span: tuple[int, int] | None = None) -> str:
    """How a page (or a passage of it) is introduced in a prompt: the document's name and the page number the
    model is asked to cite."""
    if doc.kind == "video":
        return f"[{doc.name}, {page.label}]"
    label = f" (label {page.label})" if page.label != str(page.number) else ""
    part = f", characters {span[0]}-{span[1]} of {len(page.text)}" if span else ""
    return f"[{doc.name}, page {page.number}{label}{part}]"


def passage_spans(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Consecutive spans covering ``text``, each at most ``max_chars`` long, cut at the last paragraph break that
    fits, else the last sentence end, else the last whitespace, else at ``max_chars``."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    spans, start = [], 0
    while len(text) - start > max_chars:
        window = text[start : start + max_chars]
        end = 0
        for boundary in (PARAGRAPH_BREAK, SENTENCE_END, WHITESPACE):
            cuts = [m.end() for m in boundary.finditer(window) if m.end() > 0]
            if cuts:
                end = cuts[-1]
                break
        end = start + (end or max_chars)
        spans.append((start, end))
        start = end
    if start < len(text) or not spans:
        spans.append((start, len(text)))
    return spans


def _span(entry: tuple) -> tuple[int, int] | None:
    return next((p.span for p in entry[2] if p.span is not None), None)


def _key(entry: tuple) -> tuple:
    return (entry[0].source, entry[1].number, _span(entry))


def _where(doc: Document, page: Page) -> dict[str, Any]:
    return {"document": doc.source, "page": page.number}
