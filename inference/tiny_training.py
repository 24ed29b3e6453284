"""Train the built-in ``tiny-trained`` demonstration model: a small DiffusionGemma that transcribes its prompt.

Run ``python -m inference.tiny_training --out resources/tiny-trained`` (not run by the tests; the README gives its
run time). The task is the workbench's own parse prompt (the page marker, the page's text layer as the hint, the
page image, :data:`inference.tasks.model.PARSE_INSTRUCTION`) and the answer is the page's text, so that ``dwb parse
--engine model --model tiny-trained`` transcribes short text pages. It is a demonstration of block diffusion that
visibly denoises, not a document model: it copies the text layer and ignores the image.

The objective matches the sampler (:mod:`inference.sampling`):

- the clean canvas is the target's tokens, the end-of-turn token, then padding to the canvas length;
- each canvas token is replaced, with probability ``t ~ U(0, 1)`` per example, by a token drawn uniformly from the
  vocabulary (the sampler's own noise, :func:`inference.sampling.random_canvas`);
- with probability 0.5 per batch the decoder is self-conditioned on a first, gradient-free pass's logits divided
  by a temperature drawn from the schedule's range ``[t_min, t_max]`` (the sampler feeds back scaled logits);
- the loss is cross-entropy against the clean canvas, padding positions weighted ``PAD_WEIGHT`` (they would swamp it);
- the encoder prefill runs with gradients into one cache that both decoder passes read;
- an auxiliary loss (:func:`guide_loss`) guides one decoder head to the hint token each canvas position copies.

Texts are spans of the English prose that ships with CPython (``pydoc_data.topics``): one topic in eight is held
out for evaluation. The tokenizer is a byte-level BPE trained on that prose (Gemma 4's special tokens kept), so a
short page fits in one 256-token canvas. A fixed seed, a step-based learning-rate schedule and one thread make a
rerun reproduce the weights on the same machine and library versions.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SEED = 1234
PAD_WEIGHT = 0.05
VOCAB_SIZE = 1024
HOLD_OUT_EVERY = 8  # one topic in eight is held out
PAGE_SIZES = ((612, 792), (595, 842), (792, 612), (640, 640))  # Letter, A4, landscape, square (points)
IMAGE_BUDGETS = (70, 140, 280)  # soft tokens per page image; the parse prompt uses 280, cheaper ones train faster
DOC_NAMES = ("sample.pdf", "report.pdf", "scan.tiff", "notes.pdf", "invoice.pdf", "paper.pdf", "letter.png")


# ---------------------------------------------------------------------------------------------------- the corpus
def corpus_topics() -> tuple[list[str], list[str]]:
    """``(train, held_out)`` topic texts from CPython's bundled help, cleaned to printable ASCII lines."""
    from pydoc_data.topics import topics

    train, held = [], []
    for i, key in enumerate(sorted(topics)):
        text = topics[key].encode("ascii", "ignore").decode()
        lines = [ln.strip() for ln in text.splitlines()]
        lines = [re.sub(r"\s+", " ", ln) for ln in lines if ln and not set(ln) <= set("*=-~^")]
        (held if i % HOLD_OUT_EVERY == 0 else train).append("\n".join(lines))
    return train, held


def train_tokenizer_core(texts: Sequence[str], vocab_size: int = VOCAB_SIZE) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` with Gemma 4's special tokens first (ids as in the tiny model)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    from .tiny import SPECIAL_TOKENS

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return core


class SpanSampler:
    """Spans of whole words from the corpus with an exact token count (same count per batch: no padding)."""

    def __init__(self, texts: Sequence[str], tokenizer: Any, rng: random.Random) -> None:
        self.rng = rng
        self.words: list[str] = []  # words with the whitespace before them ("\n" or " "), one topic after another
        self.costs: list[int] = []
        self.starts: list[int] = []  # indexes of words that begin a line
        for text in texts:
            for line in text.split("\n"):
                for j, word in enumerate(line.split(" ")):
                    if not word:
                        continue
                    if j == 0:
                        self.starts.append(len(self.words))
                    self.words.append(("\n" if j == 0 else " ") + word)
        # a word's own token count in context (a leading space merges into the word; a newline stays apart)
        for w in self.words:
            self.costs.append(len(tokenizer(w[1:] if w[0] == "\n" else w, add_special_tokens=False)["input_ids"])
                              + (1 if w[0] == "\n" else 0))
        self.tokenizer = tokenizer

    def span(self, n_tokens: int, tries: int = 200) -> str | None:
        for _ in range(tries):
            start = self.rng.choice(self.starts) if self.rng.random() < 0.5 else self.rng.randrange(len(self.words))
            total, end = -1 if self.words[start][0] == "\n" else 0, start
            while end < len(self.words) and total < n_tokens:
                total += self.costs[end]
                end += 1
            if total != n_tokens:
                continue
            text = ("".join(self.words[start:end])).strip()
            if len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) == n_tokens:
                return text
        return None


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
        page[y:y + 3, x0:int(w * rng.uniform(0.4, 0.9))] = rng.randrange(0, 90)
        y += rng.randrange(6, 10)
    return Image.fromarray(page).convert("RGB")


def parse_parts(name: str, page: int, hint: str, image: Any) -> list[Any]:
    """The model engine's parse prompt for one page with a text layer (``PromptBuilder.page_parts`` in ``both``)."""
    from .prompts import PromptPart
    from .tasks.model import PARSE_INSTRUCTION

    return [PromptPart("text", text=f"[{name}, page {page}]\n{hint}\n"), PromptPart("image", image=image),
            PromptPart("text", text=PARSE_INSTRUCTION)]


def prompt_inputs(builder: Any, parts_rows: Sequence[Sequence[Any]], max_soft_tokens: int = 280) -> Any:
    from .prompts import Prompt

    prompts = [Prompt("", list(parts), max_soft_tokens, 0, 0, 0) for parts in parts_rows]
    return builder.inputs(prompts[0]) if len(prompts) == 1 else builder.batch_inputs(prompts)


def clean_canvas(tokenizer: Any, text: str, canvas_length: int) -> list[int]:
    from .tiny import END_OF_TURN

    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: canvas_length - 1]
    ids.append(tokenizer.convert_tokens_to_ids(END_OF_TURN))
    return ids + [tokenizer.pad_token_id] * (canvas_length - len(ids))


# ---------------------------------------------------------------------------------------------------- training
@dataclass
class TrainSettings:
    steps: int = 30000  # the schedule's length (learning rate, length curriculum)
    batch: int = 8
    lr: float = 3e-3
    warmup: int = 200
    weight_decay: float = 0.01
    min_tokens: int = 4
    max_tokens: int = 150  # the longest hint, in tokens (the canvas holds 255 and the end of turn)
    grow_until: float = 0.5  # the longest length grows linearly from 24 tokens to max_tokens over this share
    self_conditioning: float = 0.5
    guide: float = 1.0  # weight of the attention guide (0: none)
    guide_layer: int = 1  # the decoder layer whose first head is guided to the hint token it copies
    seed: int = SEED
    threads: int = 1  # more threads than free cores make every small op wait on the others


def learning_rate(step: int, s: TrainSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def longest_at(step: int, s: TrainSettings) -> int:
    """The longest hint (tokens) of the length curriculum at ``step``: 24, growing to ``max_tokens``."""
    grown = min(1.0, step / max(1, s.steps * s.grow_until))
    return int(24 + (s.max_tokens - 24) * grown)


def batches(sampler: SpanSampler, builder: Any, s: TrainSettings, rng: random.Random,
            step: int = 0) -> Iterator[tuple[Any, list]]:
    """Forever from ``step``: ``(model inputs, clean canvases)`` for one batch of hints of one token length."""
    import torch

    tokenizer = builder.tokenizer
    while True:
        n = rng.randint(s.min_tokens, max(s.min_tokens, longest_at(step, s)))
        hints = [h for h in (sampler.span(n) for _ in range(s.batch)) if h is not None]
        if len(hints) < s.batch // 2:
            continue
        name, page = rng.choice(DOC_NAMES), rng.randint(1, 40)
        image = page_image(rng.choice(PAGE_SIZES), rng, rng.randint(3, 40))
        budget = rng.choice(IMAGE_BUDGETS)
        inputs = prompt_inputs(builder, [parse_parts(name, page, h, image) for h in hints], budget)
        canvases = torch.tensor([clean_canvas(tokenizer, h, 256) for h in hints])
        step += 1
        yield inputs, canvases


def shared_image_features(model: Any, inputs: Any, rows: int) -> Any:
    """The page image's features, computed once without gradients and given to every row (a batch shares one
    image, and the vision tower only has to be ignored: it is not trained)."""
    import torch
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    with torch.no_grad():
        out = model.model.encoder.get_image_features(inputs["pixel_values"][:1], inputs["image_position_ids"][:1],
                                                     return_dict=True)
    pooled = out.pooler_output
    pooled = torch.cat([pooled] * rows, dim=0)
    return BaseModelOutputWithPooling(pooler_output=pooled)


STATE_EVERY = 500
STATE_FILE = "state.pt"


def default_state_dir() -> Path:
    import os

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "diffusion-workbench" / "tiny-training"


def save_state(folder: Path, state: dict[str, Any]) -> None:
    """Write the whole training state aside, then rename: a run killed while saving resumes from the last one."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{STATE_FILE}.partial"
    torch.save(state, tmp)
    tmp.replace(folder / STATE_FILE)


def guide_loss(attention: Any, prompt_ids: Any, clean: Any, pad: int) -> Any:
    """An auxiliary loss that teaches the copy's alignment: the guided head's attention from canvas position ``i`` (of
    the text and its end of turn) should fall on the prompt position of the hint's ``i``-th token (the token after
    the hint for the end of turn). ``attention``: (rows, heads, canvas, prompt + canvas) from the eager kernel.
    Inference is unchanged: this only shapes what the denoising loss has to discover alone."""
    import torch

    rows, canvas = clean.shape
    n = int((clean[0] != pad).sum())  # the text and its end of turn (one length per batch)
    hint = clean[:, : n - 1]
    targets = torch.full((rows, canvas), -1, dtype=torch.long)
    for r in range(rows):
        ids = prompt_ids[r]
        windows = ids.unfold(0, n - 1, 1)
        match = (windows == hint[r]).all(dim=1).nonzero()
        if len(match):
            start = int(match[0])
            targets[r, :n] = torch.arange(start, start + n)
    keep = targets >= 0
    if not bool(keep.any()):
        return attention.new_zeros(())
    head = attention[:, 0]  # (rows, canvas, keys)
    picked = head.gather(2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked.clamp(min=1e-6).log() * keep).sum() / keep.sum()


def train(model: Any, processor: Any, s: TrainSettings, log: Any = print, state_dir: Path | None = None,
          stop_after: int | None = None) -> tuple[list[dict[str, float]], int, float]:
    """Train in place; returns ``(history, steps done, seconds)``. With ``state_dir`` the whole state (weights,
    optimizer, step, random generators) is saved every ``STATE_EVERY`` steps and a later call resumes from it
    exactly, so a schedule longer than one sitting runs as if uninterrupted; ``stop_after`` ends this call at that
    step (the shipped model is the schedule stopped at a named step)."""
    import torch
    from transformers import DynamicCache

    from .prompts import PromptBuilder

    torch.manual_seed(s.seed)
    torch.set_num_threads(s.threads)
    rng = random.Random(s.seed)
    train_texts, _ = corpus_topics()
    tokenizer = processor.tokenizer
    builder = PromptBuilder(processor)
    sampler = SpanSampler(train_texts, tokenizer, rng)
    config = model.config
    vocab = config.text_config.vocab_size
    gen = model.generation_config
    t_min, t_max = float(gen.t_min), float(gen.t_max)
    pad = tokenizer.pad_token_id
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=s.lr, betas=(0.9, 0.98))
    history: list[dict[str, float]] = []
    start, before = 0, 0.0
    settings = {k: v for k, v in asdict(s).items() if k != "threads"}
    if state_dir is not None and (state_dir / STATE_FILE).is_file():
        state = torch.load(state_dir / STATE_FILE, weights_only=False)
        if state["settings"] != settings:
            raise ValueError(f"{state_dir} holds a run with other settings ({state['settings']}); "
                             "pass another --state folder or remove it")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        rng.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        start, history, before = state["step"], state["history"], state["seconds"]
        log(json.dumps({"resumed_at": start}))
    last = min(s.steps, stop_after) if stop_after is not None else s.steps
    guided = model.model.decoder.layers[s.guide_layer].self_attn
    attn_implementation = config._attn_implementation
    if s.guide:
        model.set_attn_implementation("eager")  # the guided layer's attention weights are returned by eager only
    model.train()
    t0, window, step = time.perf_counter(), [], start
    for step, (inputs, clean) in enumerate(batches(sampler, builder, s, rng, start), start=start):
        if step >= last:
            break
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, s)
        b = clean.shape[0]
        t = torch.rand(b, 1)
        noisy = torch.where(torch.rand(clean.shape) < t, torch.randint(0, vocab, clean.shape), clean)
        prompt_len = inputs["input_ids"].shape[1]
        cache = DynamicCache(config=config.get_text_config(decoder=True))
        position_ids = torch.arange(prompt_len)[None]
        decoder_position_ids = torch.arange(prompt_len, prompt_len + clean.shape[1])[None]
        encoder_kwargs = {k: v for k, v in inputs.items()
                          if k not in ("input_ids", "attention_mask", "pixel_values", "image_position_ids")}
        encoder_kwargs["mm_encoder_outputs"] = {"image": shared_image_features(model, inputs, b)}
        ids = inputs["input_ids"]
        masks = model.model.encoder.create_masks_for_generate(  # as the engine does: image runs bidirectional
            config=config, inputs_embeds=torch.empty((b, prompt_len, 0)), attention_mask=torch.ones_like(ids).bool(),
            cache=cache, position_ids=position_ids, mm_token_type_ids=inputs.get("mm_token_type_ids"))
        model.model.encoder(input_ids=ids, attention_mask=masks, cache=cache, position_ids=position_ids,
                            **encoder_kwargs)
        sc_logits = None
        if rng.random() < s.self_conditioning:  # per batch: the gradient-free pass costs a whole decoder forward
            with torch.no_grad():
                first = model(decoder_input_ids=noisy, cache=cache, decoder_position_ids=decoder_position_ids).logits
            temperature = torch.empty(b, 1, 1).uniform_(t_min, t_max)
            sc_logits = (first / temperature).detach()
        seen: list[Any] = []
        hook = guided.register_forward_hook(lambda _m, _i, out, seen=seen: seen.append(out[1])) if s.guide else None
        try:
            logits = model(decoder_input_ids=noisy, cache=cache, decoder_position_ids=decoder_position_ids,
                           self_conditioning_logits=sc_logits).logits
        finally:
            if hook is not None:
                hook.remove()
        weight = torch.where(clean == pad, PAD_WEIGHT, 1.0)
        loss_all = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), clean.reshape(-1), reduction="none")
        loss = (loss_all * weight.reshape(-1)).sum() / weight.sum()
        if s.guide and seen and seen[0] is not None:
            loss = loss + s.guide * guide_loss(seen[0], ids, clean, pad)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            text = clean != pad
            acc = float(((logits.argmax(-1) == clean) & text).sum() / text.sum())
        window.append((float(loss.detach()), acc))
        if (step + 1) % 100 == 0 or step + 1 == s.steps:
            mean_loss = sum(x for x, _ in window) / len(window)
            mean_acc = sum(a for _, a in window) / len(window)
            row = {"step": step + 1, "loss": round(mean_loss, 4), "text_token_acc": round(mean_acc, 4),
                   "hint_tokens": clean.shape[1] - int((clean == pad).sum(1).min()) - 1,
                   "seconds": round(before + time.perf_counter() - t0, 1)}
            history.append(row)
            log(json.dumps(row))
            window.clear()
        if state_dir is not None and (step + 1) % STATE_EVERY == 0:
            save_state(state_dir, {"settings": settings, "step": step + 1, "model": model.state_dict(),
                                   "optimizer": opt.state_dict(), "python_rng": rng.getstate(),
                                   "torch_rng": torch.get_rng_state(), "history": history,
                                   "seconds": before + time.perf_counter() - t0})
    if s.guide:
        model.set_attn_implementation(attn_implementation)
    model.eval()
    return history, step, before + time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    texts: int
    char_accuracy: float
    exact: float
    mean_steps_per_canvas: float
    accepted_by_step: list[float]  # mean accepted positions (of the text and its end) after each step, first canvas
    samples: list[tuple[str, str]]

    def summary(self) -> str:
        return (f"texts={self.texts} char_accuracy={self.char_accuracy:.3f} exact={self.exact:.3f} "
                f"mean_steps_per_canvas={self.mean_steps_per_canvas:.1f}")


def held_out_hints(processor: Any, count: int, min_tokens: int, max_tokens: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    _, held = corpus_topics()
    sampler = SpanSampler(held, processor.tokenizer, rng)
    hints: list[str] = []
    while len(hints) < count:
        hint = sampler.span(rng.randint(min_tokens, max_tokens))
        if hint is not None:
            hints.append(hint)
    return hints


def char_accuracy(reference: str, output: str) -> float:
    from rapidfuzz.distance import Levenshtein

    return max(0.0, 1.0 - Levenshtein.distance(reference, output) / max(1, len(reference)))


def evaluate(model: Any, processor: Any, hints: Sequence[str], seed: int = 0) -> Evaluation:
    """Each hint through :class:`inference.engine.DiffusionEngine` with the model's default parameters."""
    import numpy as np

    from .engine import DiffusionEngine
    from .events import DenoisingStep, Finished
    from .prompts import PromptBuilder

    engine = DiffusionEngine(model, processor.tokenizer)
    builder = PromptBuilder(processor)
    rng = random.Random(seed)
    scores, exact, steps, curves, samples = [], 0, [], [], []
    for i, hint in enumerate(hints):
        image = page_image(rng.choice(PAGE_SIZES), rng, rng.randint(3, 40))
        inputs = prompt_inputs(builder, [parse_parts(rng.choice(DOC_NAMES), rng.randint(1, 40), hint, image)])
        params = engine.default_params(seed=seed + i)
        n_text = len(processor.tokenizer(hint, add_special_tokens=False)["input_ids"]) + 1
        curve: list[int] = []
        for event in engine.generate(inputs, params):
            if isinstance(event, DenoisingStep) and event.canvas == 0:
                curve.append(int(np.asarray(event.accepted)[0, :n_text].sum()))
            if isinstance(event, Finished):
                out = event.texts[0].strip()
                steps.extend(event.stats.steps_per_canvas)
        scores.append(char_accuracy(hint, out))
        exact += out == hint
        curves.append(curve)
        samples.append((hint, out))
    longest = max(len(c) for c in curves)
    by_step = [float(np.mean([c[min(k, len(c) - 1)] for c in curves])) for k in range(longest)]
    return Evaluation(len(hints), float(np.mean(scores)), exact / len(hints), float(np.mean(steps)), by_step, samples)


# ---------------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from .tiny import build_trained

    ap = argparse.ArgumentParser(prog="python -m inference.tiny_training", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to write the model to (resources/tiny-trained)")
    ap.add_argument("--steps", type=int, default=TrainSettings.steps, help="the schedule's length")
    ap.add_argument("--stop-after", type=int, help="end at this step of the schedule (the shipped model's is in "
                                                   "its training.json)")
    ap.add_argument("--max-tokens", type=int, default=TrainSettings.max_tokens)
    ap.add_argument("--threads", type=int, default=TrainSettings.threads,
                    help="torch threads (the same count on the same machine reproduces the file)")
    ap.add_argument("--state", type=Path, default=default_state_dir(),
                    help="folder for the resumable training state (default: %(default)s)")
    ap.add_argument("--eval", type=int, default=40, help="held-out texts evaluated at the end")
    args = ap.parse_args(argv)
    settings = TrainSettings(steps=args.steps, max_tokens=args.max_tokens, threads=args.threads)
    model, processor = build_trained(train=True)
    history, done, seconds = train(model, processor, settings, state_dir=args.state, stop_after=args.stop_after)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    trained = longest_at(done, settings)  # held-out texts of the lengths trained so far
    hints = held_out_hints(processor, args.eval, settings.min_tokens, trained)
    with torch.no_grad():
        result = evaluate(model, processor, hints)
    print(result.summary())
    (args.out / "training.json").write_text(json.dumps({
        "settings": asdict(settings), "stopped_after": done, "longest_trained_tokens": trained,
        "train_seconds": round(seconds, 1),
        "history": history,
        "evaluation": {k: v for k, v in asdict(result).items() if k != "samples"},
        "torch": torch.__version__,
    }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
