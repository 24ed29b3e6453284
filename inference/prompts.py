"""The prompt builder: documents plus an instruction -> interleaved chat messages with exact token counts.

Counts come from the processor itself: the chat template is rendered and tokenized (text only, cheap), and each
image costs the soft tokens the processor will give it at the chosen ``max_soft_tokens`` budget (set by its aspect
ratio) plus its begin/end-of-image tokens. The total equals the length of the processor's ``input_ids``.
Over budget, the builder lowers the image budget, then drops page images where a text layer exists, then leaves
out whole pages from the end, reporting each decision page by page; ``chunks`` splits a document set into prompts
that each fit (for map-reduce tasks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .documents.model import Document, Page
from .documents.scan import page_image
from .errors import ConfigError

CONTEXT_TOKENS = 262_144
SOFT_TOKEN_LEVELS = (1120, 560, 280, 140, 70)
MODES = ("auto", "text", "image", "both")


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


@dataclass
class PageReport:
    document: str
    page: int
    label: str
    mode: str  # what went in: text | image | both | none
    tokens: int
    status: str  # included | downsampled | text_only | dropped
    note: str = ""


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


class PromptBuilder:
    def __init__(self, processor: Any, context_tokens: int = CONTEXT_TOKENS) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.context_tokens = context_tokens

    # ------------------------------------------------------------------ counting
    def render(self, parts: Sequence[PromptPart]) -> str:
        messages = Prompt("", list(parts), 0, 0, 0, 0).messages()
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def image_tokens(self, image: Any, max_soft_tokens: int) -> int:
        """Soft tokens for this image at this budget, plus its begin- and end-of-image tokens."""
        data = self.processor._get_num_multimodal_tokens(
            image_sizes=[(image.height, image.width)], max_soft_tokens=max_soft_tokens
        )
        return int(data.num_image_tokens[0]) + 2

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
        name = doc.name
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
        marker = (
            f"[{name}, {page.label}]"
            if doc.kind == "video"
            else f"[{name}, page {page.number}"
            + (f" (label {page.label})" if page.label != str(page.number) else "")
            + "]"
        )
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

    def build(self, documents: Sequence[Document], instruction: str, policy: PromptPolicy | None = None) -> Prompt:
        policy = policy or PromptPolicy()
        budget = policy.budget(self.context_tokens)
        pages: list[tuple[Document, Page, list[PromptPart], str]] = []
        for doc in documents:
            for page in doc.pages:
                parts, use = self.page_parts(doc, page, policy.mode, policy)
                pages.append((doc, page, parts, use))
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
        notes: dict[tuple[str, int], tuple[str, str]] = {}
        # 1. lower the image budget
        for level in levels[1:]:
            if prompt.total_tokens <= budget or not prompt.images:
                break
            soft = level
            prompt = self._assemble(pages, instruction, soft, budget)
            for doc, page, parts, _ in pages:
                if any(p.kind == "image" for p in parts):
                    notes[(doc.source, page.number)] = ("downsampled", f"images at {soft} soft tokens")
        # 2. pages that have a text layer go in as text only
        if prompt.total_tokens > budget:
            for i, (doc, page, parts, use) in enumerate(pages):
                if use == "both":
                    pages[i] = (doc, page, [p for p in parts if p.kind == "text"], "text")
                    notes[(doc.source, page.number)] = ("text_only", "image left out to fit the budget")
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
            for doc, page, _, _ in pages[keep:]:
                notes[(doc.source, page.number)] = ("dropped", "left out: over the token budget")
            pages = trial
        by_page: dict[tuple[str, int], int] = {}
        for part in prompt.parts:
            if part.document is not None:
                key = (part.document, part.page)
                by_page[key] = by_page.get(key, 0) + part.tokens
        for doc, page, _, use in pages:
            key = (doc.source, page.number)
            status, note = notes.get(key, ("included", ""))
            if page.error:
                status, note, use = "dropped", f"page error: {page.error}", "none"
            prompt.reports.append(PageReport(doc.name, page.number, page.label, use, by_page.get(key, 0), status, note))
        return prompt

    def chunks(
        self, documents: Sequence[Document], instruction: str, policy: PromptPolicy | None = None
    ) -> list[Prompt]:
        """Consecutive groups of pages, each a prompt within the budget (a page larger than it stands alone)."""
        policy = policy or PromptPolicy()
        budget = policy.budget(self.context_tokens)
        soft = policy.max_soft_tokens
        pages = []
        for doc in documents:
            for page in doc.pages:
                parts, use = self.page_parts(doc, page, policy.mode, policy)
                if parts:
                    pages.append((doc, page, parts, use))
        if not pages:
            return []
        overhead = self._assemble([], instruction, soft, budget).total_tokens
        groups: list[list] = [[]]
        used = overhead
        for entry in pages:
            cost = self.count(entry[2], soft)[0] - self.count([], soft)[0]
            if groups[-1] and used + cost > budget:
                groups.append([])
                used = overhead
            groups[-1].append(entry)
            used += cost
        return [self._fit(group, instruction, policy, budget) for group in groups]
