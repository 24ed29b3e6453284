"""The training task's prompts: the model engine's parse prompt for a made-up page (its text layer as the hint
and a page-like picture). The tests of ``tiny-trained`` build their prompts the same way."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


# ---------------------------------------------------------------------------------------------------- prompts
def page_image(size: tuple[int, int], rng: random.Random, lines: int) -> Any:
    """A page-like picture (white, dark text-line bars), at about 40 dpi: the model learns to ignore the image."""
    import numpy as np
    from PIL import Image

    w, h = (max(32, s * 40 // 72) for s in size)
    page = np.full((h, w), 255, np.uint8)
    y = int(h * rng.uniform(0.05, 0.12))
    for _ in range(lines):
        if y + 4 >= h:
            break
        x0 = int(w * rng.uniform(0.06, 0.12))
        page[y : y + 3, x0 : int(w * rng.uniform(0.4, 0.9))] = rng.randrange(0, 90)
        y += rng.randrange(6, 10)
    return Image.fromarray(page).convert("RGB")


def parse_parts(name: str, page: int, hint: str, image: Any) -> list[Any]:
    """The model engine's parse prompt for one page with a text layer (``PromptBuilder.page_parts`` in ``both``)."""
    from inference.prompts import PromptPart
    from inference.tasks.model import PARSE_INSTRUCTION

    return [
        PromptPart("text", text=f"[{name}, page {page}]\n{hint}\n"),
        PromptPart("image", image=image),
        PromptPart("text", text=PARSE_INSTRUCTION),
    ]


def prompt_inputs(builder: Any, parts_rows: Sequence[Sequence[Any]], max_soft_tokens: int = 280) -> Any:
    from inference.prompts import Prompt

    prompts = [Prompt("", list(parts), max_soft_tokens, 0, 0, 0) for parts in parts_rows]
    return builder.inputs(prompts[0]) if len(prompts) == 1 else builder.batch_inputs(prompts)


def clean_canvas(tokenizer: Any, text: str, canvas_length: int) -> list[int]:
    from inference.weights.tiny import END_OF_TURN

    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: canvas_length - 1]
    ids.append(tokenizer.convert_tokens_to_ids(END_OF_TURN))
    return ids + [tokenizer.pad_token_id] * (canvas_length - len(ids))
