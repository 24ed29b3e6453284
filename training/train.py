"""Train the built-in ``tiny-trained`` demonstration model: a small DiffusionGemma that transcribes its prompt.

Run ``python -m training.train --out DIR`` for one stage; ``python -m training.recipe DIR`` reruns the
five stages of the shipped weights in order (neither is run by the tests; docs/training.md gives their run times). The
task is the workbench's own parse prompt (the page marker, the page's text layer as the hint, the page image,
:data:`inference.tasks.model.PARSE_INSTRUCTION`) and the answer is the page's text, so that ``dwb parse --engine
model --model tiny-trained`` transcribes short text pages. It is a demonstration of block diffusion that
visibly denoises, not a document model: it copies the text layer and ignores the image.

The objective matches the sampler (:mod:`inference.runtime.sampling`):

- the clean canvas is the target's tokens, the end-of-turn token, then padding to the canvas length;
- each canvas token is replaced, with probability ``t ~ U(0, 1)`` per example, by a token drawn uniformly from the
  vocabulary (the sampler's own noise, :func:`inference.runtime.sampling.random_canvas`);
- with probability 0.5 per batch the decoder is self-conditioned on a first, gradient-free pass's logits divided
  by a temperature drawn from the schedule's range ``[t_min, t_max]`` (the sampler feeds back scaled logits);
- the loss is cross-entropy against the clean canvas, padding positions weighted ``PAD_WEIGHT`` (they would swamp it);
- the encoder prefill runs with gradients into one cache that both decoder passes read;
- an auxiliary loss (:func:`guide_loss`) guides one decoder head to the hint token each canvas position copies.

Texts are spans of the English prose that ships with CPython (``pydoc_data.topics`` of CPython 3.11.7, a snapshot in
``training/tiny-corpus.json.gz``): one topic in eight is held out for evaluation. The tokenizer is a byte-level BPE
trained on that prose (Gemma 4's special tokens kept), so a short page fits in one 256-token canvas. The BPE splits a
page's everyday words, which help text seldom has, into pieces of one to three characters; ``--varied`` draws a share
of the texts from :func:`varied_topics`, the help text with made-up English-like words, repeated names, acronyms and
numbers in it. ``--varied-headers`` names made-up documents and pages 1-999 in the prompt (:func:`page_header`): the
hint then starts at many token offsets, so the copy cannot find it by its position.

Everything random about a step (the spans, the page picture, the noise, the self-conditioning draw) comes from the
step's own seed (:class:`BatchMaker`), so batches made ahead by worker processes (``--workers``) equal those made
inline, a resumed run equals an uninterrupted one, and the same settings on the same device and library versions
reproduce the weights. ``--device cuda``
trains on a GPU; ``--init-from`` starts a later stage from an earlier stage's folder (its record is kept).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.corpus import (
    DOC_NAMES,
    SEED,
    PseudoWords,
    SpanSampler,
    corpus_topics,
    page_header,
    varied_topics,
)
from training.pages import clean_canvas, page_image, parse_parts, prompt_inputs

PAD_WEIGHT = 0.05
PAGE_SIZES = ((612, 792), (595, 842), (792, 612), (640, 640))  # Letter, A4, landscape, square (points)
IMAGE_BUDGETS = (70, 140, 280)  # soft tokens per page image; the parse prompt uses 280, cheaper ones train faster


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
    init: str = ""  # a model folder whose weights start the run (a later stage of a schedule); "" = fresh weights
    varied: float = 0.0  # share of texts drawn from the varied corpus (:func:`varied_topics`); 0: the help text only
    headers: bool = False  # prompts name made-up documents and pages 1-999 (:func:`page_header`); False: 7 names, 1-40
    documents: float = 0.0  # share of steps on made-up documents (:mod:`training.doc_batches`); 0: parse steps only
    questions: float = 0.35  # of the document steps, the share of extractive questions (the rest: pinned extraction)


# how a run is carried out, not what it computes: not part of the saved settings, free to differ on resume
RUN_OPTIONS = ("threads", "device", "workers")


def learning_rate(step: int, s: TrainSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def longest_at(step: int, s: TrainSettings) -> int:
    """The longest hint (tokens) of the length curriculum at ``step``: 24, growing to ``max_tokens``."""
    if s.grow_until <= 0:
        return s.max_tokens
    grown = min(1.0, step / max(1, s.steps * s.grow_until))
    return int(24 + (s.max_tokens - 24) * grown)


@dataclass
class Batch:
    """Everything random about one step, drawn from the step's own seed (:class:`BatchMaker`): a step's data is the
    same whichever process, device or resumed run computes it."""

    step: int
    inputs: dict[str, Any]  # the prompts; pixel values and image positions of the first row only (one shared image)
    clean: Any  # (rows, canvas) the target canvases
    noisy: Any  # (rows, canvas) the canvases with uniform-token noise
    temperature: Any  # (rows, 1, 1) self-conditioning temperatures, or None when this step does not self-condition
    guide_targets: Any  # (rows, canvas) the prompt position each canvas position copies, -1 where none
    weight: Any = None  # (rows, canvas) loss weights; None: 1, padding PAD_WEIGHT


@dataclass(frozen=True)
class BatchSpec:
    """What a :class:`BatchMaker` needs besides the processor (picklable, for worker processes)."""

    settings: TrainSettings
    vocab: int
    canvas: int  # the model's canvas length
    temperatures: tuple[float, float]  # self-conditioning temperatures: the generation config's [t_min, t_max]
    eos: int = 1  # the end-of-sequence id a pinned template ends with (the engine's first)


class BatchMaker:
    """Draws :class:`Batch` es: the corpus spans, the prompts (the engine's parse prompt) and the noise."""

    def __init__(self, processor: Any, spec: BatchSpec) -> None:
        from inference.prompts import PromptBuilder

        self.spec = spec
        self.tokenizer = processor.tokenizer
        self.builder = PromptBuilder(processor)
        train = corpus_topics()[0]
        self.sampler = SpanSampler(train, self.tokenizer)
        self.varied = SpanSampler(varied_topics(train), self.tokenizer) if spec.settings.varied > 0 else None
        self.pseudo = PseudoWords(train) if spec.settings.headers else None
        self.documents = None
        if spec.settings.documents > 0:
            from training.doc_batches import DocumentBatches

            self.documents = DocumentBatches(processor, spec)

    def __call__(self, step: int) -> Batch:
        import torch

        s = self.spec.settings
        seed = s.seed * 1_000_003 + step
        if self.documents is not None and random.Random(seed * 7 + 3).random() < s.documents:
            return self.documents(step, seed)
        rng = random.Random(seed)
        gen = torch.Generator().manual_seed(seed)
        while True:
            n = rng.randint(s.min_tokens, max(s.min_tokens, longest_at(step, s)))
            hints = [h for h in (self.pick(rng).span(n, rng) for _ in range(s.batch)) if h is not None]
            if len(hints) >= s.batch // 2:
                break
        if self.pseudo is not None:
            name, page = page_header(rng, self.pseudo)
        else:
            name, page = rng.choice(DOC_NAMES), rng.randint(1, 40)
        image = page_image(rng.choice(PAGE_SIZES), rng, rng.randint(3, 40))
        inputs = dict(
            prompt_inputs(self.builder, [parse_parts(name, page, h, image) for h in hints], rng.choice(IMAGE_BUDGETS))
        )
        for key in ("pixel_values", "image_position_ids"):
            inputs[key] = inputs[key][:1].clone()
        pad = self.tokenizer.pad_token_id
        clean = torch.tensor([clean_canvas(self.tokenizer, h, self.spec.canvas) for h in hints])
        t = torch.rand(len(hints), 1, generator=gen)
        noise = torch.randint(0, self.spec.vocab, clean.shape, generator=gen)
        noisy = torch.where(torch.rand(clean.shape, generator=gen) < t, noise, clean)
        temperature = None
        if rng.random() < s.self_conditioning:  # per batch: the gradient-free pass costs a whole decoder forward
            temperature = torch.empty(len(hints), 1, 1).uniform_(*self.spec.temperatures, generator=gen)
        return Batch(step, inputs, clean, noisy, temperature, guide_targets(inputs["input_ids"], clean, pad))

    def pick(self, rng: random.Random) -> SpanSampler:
        """The help text, or (a share ``varied`` of rows) the varied corpus; no draw when there is none, so that a
        run without it draws what it drew before the varied corpus existed."""
        if self.varied is not None and rng.random() < self.spec.settings.varied:
            return self.varied
        return self.sampler


def guide_targets(prompt_ids: Any, clean: Any, pad: int) -> Any:
    """For each canvas position of the text and its end of turn, the prompt position of the hint token it copies (the
    token after the hint for the end of turn); -1 elsewhere and in rows whose hint is not found verbatim."""
    import torch

    rows, canvas = clean.shape
    n = int((clean[0] != pad).sum())  # the text and its end of turn (one length per batch)
    hint = clean[:, : n - 1]
    targets = torch.full((rows, canvas), -1, dtype=torch.long)
    for r in range(rows):
        windows = prompt_ids[r].unfold(0, n - 1, 1)
        match = (windows == hint[r]).all(dim=1).nonzero()
        if len(match):
            start = int(match[0])
            targets[r, :n] = torch.arange(start, start + n)
    return targets


def guide_loss(attention: Any, targets: Any) -> Any:
    """An auxiliary loss that teaches the copy's alignment: the guided head's attention from canvas position ``i`` (of
    the text and its end of turn) should fall on the prompt position of the hint's ``i``-th token
    (:func:`guide_targets`). ``attention``: (rows, heads, canvas, prompt + canvas) from the eager kernel.
    Inference is unchanged: this only shapes what the denoising loss has to discover alone."""
    keep = targets >= 0
    if not bool(keep.any()):
        return attention.new_zeros(())
    head = attention[:, 0]  # (rows, canvas, keys)
    picked = head.gather(2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked.clamp(min=1e-6).log() * keep).sum() / keep.sum()


_WORKER_MAKER: BatchMaker | None = None


def _worker_start(spec: BatchSpec) -> None:
    global _WORKER_MAKER
    import torch

    from training.model import build_trained_processor

    torch.set_num_threads(1)
    _WORKER_MAKER = BatchMaker(build_trained_processor(), spec)


def _worker_batch(step: int) -> Batch:
    assert _WORKER_MAKER is not None
    return _WORKER_MAKER(step)


def batch_stream(processor: Any, spec: BatchSpec, steps: range, workers: int) -> Iterator[Batch]:
    """The batches of ``steps`` in order: made inline, or ahead of time by ``workers`` processes (the same batches:
    each is a function of its step; the workers build the processor the same way, :func:`build_trained_processor`)."""
    if workers <= 0:
        maker = BatchMaker(processor, spec)
        for step in steps:
            yield maker(step)
        return
    import collections

    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")  # never fork a process that may hold CUDA
    with ctx.Pool(workers, _worker_start, (spec,)) as pool:
        ahead: collections.deque = collections.deque()
        upcoming = iter(steps)
        for step in upcoming:
            ahead.append(pool.apply_async(_worker_batch, (step,)))
            if len(ahead) >= 3 * workers:
                break
        while ahead:
            batch = ahead.popleft().get()
            nxt = next(upcoming, None)
            if nxt is not None:
                ahead.append(pool.apply_async(_worker_batch, (nxt,)))
            yield batch


def shared_image_features(model: Any, inputs: Any, rows: int) -> Any:
    """The page image's features, computed once without gradients and given to every row (a batch shares one
    image, and the vision tower only has to be ignored: it is not trained)."""
    import torch
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    with torch.no_grad():
        out = model.model.encoder.get_image_features(
            inputs["pixel_values"][:1], inputs["image_position_ids"][:1], return_dict=True
        )
    pooled = out.pooler_output
    pooled = torch.cat([pooled] * rows, dim=0)
    return BaseModelOutputWithPooling(pooler_output=pooled)


def fit_experts_to(model: Any, device: Any) -> None:
    """Keep the default grouped-matmul experts where this build runs them in float32 (the CPU does); otherwise (some
    CUDA builds run grouped matmuls in bfloat16 only) use the per-expert loop."""
    import torch
    from transformers.integrations.moe import _grouped_mm

    if device.type == "cpu":
        return
    try:
        weight = torch.randn(2, 64, 32, device=device, requires_grad=True)
        _grouped_mm(
            torch.randn(4, 64, device=device), weight, torch.tensor([2, 4], dtype=torch.int32, device=device)
        ).sum().backward()
    except Exception:  # noqa: BLE001 - any refusal means: not this implementation here
        model.set_experts_implementation("eager")


STATE_EVERY = 100  # a save takes a few milliseconds; a killed run loses at most this many steps
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


class _Terminate:
    """Set by SIGTERM while training: the step in progress finishes and the state is saved (a stopped session or a
    ``kill`` loses nothing). Outside the main thread, where signals cannot be caught, it is never set."""

    def __init__(self) -> None:
        import signal

        self._set, self._before = False, None
        try:
            self._before = signal.signal(signal.SIGTERM, self._on_signal)
        except ValueError:  # not the main thread
            pass

    def _on_signal(self, *_: Any) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def restore(self) -> None:
        import signal

        if self._before is not None:
            signal.signal(signal.SIGTERM, self._before)


def train(
    model: Any,
    processor: Any,
    s: TrainSettings,
    log: Any = print,
    state_dir: Path | None = None,
    stop_after: int | None = None,
    device: str = "cpu",
    workers: int = 0,
    threads: int = 1,
    seconds: float | None = None,
) -> tuple[list[dict[str, float]], int, float, list[dict[str, Any]]]:
    """Train in place; returns ``(history, steps done, seconds, sittings)`` (a sitting: one call's device, first
    and last step and seconds). With ``state_dir`` the whole state (weights, optimizer, step) is saved every
    ``STATE_EVERY`` steps and at the end, and a later call resumes from it exactly (a step's data comes from the
    step's own seed), so a schedule longer than one sitting runs as if uninterrupted;
    ``stop_after`` ends this call at that step (the shipped model is the schedule stopped at a named step) and
    ``seconds`` after that much time. ``device``, ``workers`` (processes making batches ahead) and ``threads`` change
    how fast it runs, not what it computes (up to floating-point order on another device)."""
    import torch
    from transformers import DynamicCache

    torch.manual_seed(s.seed)
    torch.set_num_threads(threads)
    dev = torch.device(device)
    model.to(dev)
    fit_experts_to(model, dev)
    config = model.config
    vocab = config.text_config.vocab_size
    gen = model.generation_config
    eos = gen.eos_token_id
    eos = int(eos[0] if isinstance(eos, (list, tuple)) else eos)
    spec = BatchSpec(s, vocab, int(config.canvas_length), (float(gen.t_min), float(gen.t_max)), eos)
    pad = processor.tokenizer.pad_token_id
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": s.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=s.lr,
        betas=(0.9, 0.98),
    )
    history: list[dict[str, float]] = []
    sittings: list[dict[str, Any]] = []
    start, before = 0, 0.0
    settings = asdict(s)
    if state_dir is not None and (state_dir / STATE_FILE).is_file():
        state = torch.load(state_dir / STATE_FILE, weights_only=False, map_location=dev)
        saved = {**asdict(TrainSettings()), **state["settings"]}  # a setting added later: its default
        saved = {k: v for k, v in saved.items() if k not in RUN_OPTIONS}
        if saved != settings:
            raise ValueError(
                f"{state_dir} holds a run with other settings ({saved}); pass another --state folder or remove it"
            )
        from training.model import widen_vision_positions

        size = int(config.vision_config.position_embedding_size)
        model.load_state_dict(widen_vision_positions(state["model"], size))
        opt.load_state_dict(state["optimizer"])
        start, history, before = state["step"], state["history"], state["seconds"]
        sittings = state.get("sittings", [])
        log(json.dumps({"resumed_at": start}))
    last = min(s.steps, stop_after) if stop_after is not None else s.steps
    guided = model.model.decoder.layers[s.guide_layer].self_attn
    attn_implementation = config._attn_implementation
    if s.guide:
        model.set_attn_implementation("eager")  # the guided layer's attention weights are returned by eager only
    model.train()
    t0, window, step = time.perf_counter(), [], start

    def this_sitting() -> list[dict[str, Any]]:
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu, {threads} thread(s)"
        return [{"device": name, "from": start, "to": step, "seconds": round(time.perf_counter() - t0, 1)}]

    def snapshot() -> dict[str, Any]:
        return {
            "settings": settings,
            "step": step,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "history": history,
            "seconds": before + time.perf_counter() - t0,
            "sittings": sittings + this_sitting(),
        }

    stopping = _Terminate()
    for batch in batch_stream(processor, spec, range(start, last), workers):
        if (seconds is not None and time.perf_counter() - t0 > seconds) or stopping.is_set():
            break
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, s)
        inputs = {k: v.to(dev) for k, v in batch.inputs.items()}
        clean, noisy = batch.clean.to(dev), batch.noisy.to(dev)
        b = clean.shape[0]
        prompt_len = inputs["input_ids"].shape[1]
        cache = DynamicCache(config=config.get_text_config(decoder=True))
        position_ids = torch.arange(prompt_len, device=dev)[None]
        decoder_position_ids = torch.arange(prompt_len, prompt_len + clean.shape[1], device=dev)[None]
        encoder_kwargs = {
            k: v
            for k, v in inputs.items()
            if k not in ("input_ids", "attention_mask", "pixel_values", "image_position_ids")
        }
        if "pixel_values" in inputs:  # a document step's prompts are text only
            encoder_kwargs["mm_encoder_outputs"] = {"image": shared_image_features(model, inputs, b)}
        ids = inputs["input_ids"]
        masks = model.model.encoder.create_masks_for_generate(  # as the engine does: image runs bidirectional
            config=config,
            inputs_embeds=torch.empty((b, prompt_len, 0), device=dev),
            attention_mask=inputs["attention_mask"].bool(),  # left padding of a document step's rows
            cache=cache,
            position_ids=position_ids,
            mm_token_type_ids=inputs.get("mm_token_type_ids"),
        )
        model.model.encoder(
            input_ids=ids, attention_mask=masks, cache=cache, position_ids=position_ids, **encoder_kwargs
        )
        sc_logits = None
        if batch.temperature is not None:
            with torch.no_grad():
                first = model(decoder_input_ids=noisy, cache=cache, decoder_position_ids=decoder_position_ids).logits
            sc_logits = (first / batch.temperature.to(dev)).detach()
        seen: list[Any] = []
        hook = guided.register_forward_hook(lambda _m, _i, out, seen=seen: seen.append(out[1])) if s.guide else None
        try:
            logits = model(
                decoder_input_ids=noisy,
                cache=cache,
                decoder_position_ids=decoder_position_ids,
                self_conditioning_logits=sc_logits,
            ).logits
        finally:
            if hook is not None:
                hook.remove()
        weight = torch.where(clean == pad, PAD_WEIGHT, 1.0) if batch.weight is None else batch.weight.to(dev)
        loss_all = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), clean.reshape(-1), reduction="none")
        loss = (loss_all * weight.reshape(-1)).sum() / weight.sum()
        if s.guide and seen and seen[0] is not None:
            loss = loss + s.guide * guide_loss(seen[0], batch.guide_targets.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            text = (clean != pad) & (weight > 0)
            acc = float(((logits.argmax(-1) == clean) & text).sum() / text.sum())
        window.append((float(loss.detach()), acc))
        step += 1
        if step % 100 == 0 or step == s.steps:
            mean_loss = sum(x for x, _ in window) / len(window)
            mean_acc = sum(a for _, a in window) / len(window)
            row = {
                "step": step,
                "loss": round(mean_loss, 4),
                "text_token_acc": round(mean_acc, 4),
                "hint_tokens": clean.shape[1] - int((clean == pad).sum(1).min()) - 1,
                "seconds": round(before + time.perf_counter() - t0, 1),
            }
            history.append(row)
            log(json.dumps(row))
            window.clear()
        if state_dir is not None and step % STATE_EVERY == 0:
            save_state(state_dir, snapshot())
    stopping.restore()
    if state_dir is not None and step > start:
        save_state(state_dir, snapshot())  # also where a time limit or SIGTERM ended the call between two saves
    if s.guide:
        model.set_attn_implementation(attn_implementation)
    model.to("cpu").eval()
    if step > start:
        sittings = sittings + this_sitting()
    return history, step, before + time.perf_counter() - t0, sittings


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
        return (
            f"texts={self.texts} char_accuracy={self.char_accuracy:.3f} exact={self.exact:.3f} "
            f"mean_steps_per_canvas={self.mean_steps_per_canvas:.1f}"
        )


def held_out_hints(
    processor: Any, count: int, min_tokens: int, max_tokens: int, seed: int = 7, varied: bool = False
) -> list[str]:
    """Spans of the held-out topics (never trained on); ``varied``: of those topics varied as
    :func:`varied_topics` varies the training text (other made-up words and names than any training text has)."""
    rng = random.Random(seed)
    _, held = corpus_topics()
    sampler = SpanSampler(varied_topics(held, seed=SEED + 1) if varied else held, processor.tokenizer)
    hints: list[str] = []
    while len(hints) < count:
        hint = sampler.span(rng.randint(min_tokens, max_tokens), rng)
        if hint is not None:
            hints.append(hint)
    return hints


def char_accuracy(reference: str, output: str) -> float:
    from rapidfuzz.distance import Levenshtein

    return max(0.0, 1.0 - Levenshtein.distance(reference, output) / max(1, len(reference)))


def evaluate(model: Any, processor: Any, hints: Sequence[str], seed: int = 0) -> Evaluation:
    """Each hint through :class:`inference.runtime.engine.DiffusionEngine` with the model's default parameters."""
    import numpy as np

    from inference.prompts import PromptBuilder
    from inference.runtime.engine import DiffusionEngine
    from inference.runtime.events import DenoisingStep, Finished

    engine = DiffusionEngine(model, processor.tokenizer)
    builder = PromptBuilder(processor)
    rng = random.Random(seed)
    pseudo = PseudoWords(corpus_topics()[1])  # names made from the held-out topics' words
    scores, exact, steps, curves, samples = [], 0, [], [], []
    for i, hint in enumerate(hints):
        image = page_image(rng.choice(PAGE_SIZES), rng, rng.randint(3, 40))
        inputs = prompt_inputs(builder, [parse_parts(*page_header(rng, pseudo), hint, image)])
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
def load_stage(model: Any, folder: Path) -> dict[str, Any] | None:
    """Load an earlier stage's weights (``folder/model.safetensors``, written by this script) into ``model``;
    returns that stage's ``training.json`` record (kept in the new one, so the whole chain is on record)."""
    from transformers import DiffusionGemmaForBlockDiffusion

    from training.model import widen_vision_positions

    earlier = DiffusionGemmaForBlockDiffusion.from_pretrained(folder, dtype="float32")  # the checkpoint's key names
    size = int(model.config.vision_config.position_embedding_size)
    model.load_state_dict(widen_vision_positions(earlier.state_dict(), size))  # strict otherwise: the same shape
    record = folder / "training.json"
    return json.loads(record.read_text()) if record.is_file() else None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to write the model to (resources/tiny-trained)")
    ap.add_argument("--steps", type=int, default=TrainSettings.steps, help="the schedule's length")
    ap.add_argument(
        "--stop-after", type=int, help="end at this step of the schedule (the shipped model's is in its training.json)"
    )
    ap.add_argument("--batch", type=int, default=TrainSettings.batch, help="rows per step")
    ap.add_argument("--lr", type=float, default=TrainSettings.lr, help="peak learning rate")
    ap.add_argument("--warmup", type=int, default=TrainSettings.warmup, help="steps of linear learning-rate warmup")
    ap.add_argument("--max-tokens", type=int, default=TrainSettings.max_tokens)
    ap.add_argument(
        "--grow-until",
        type=float,
        default=TrainSettings.grow_until,
        help="share of the schedule over which the longest text grows from 24 tokens (0: all lengths)",
    )
    ap.add_argument(
        "--varied",
        type=float,
        default=TrainSettings.varied,
        help="share of texts from the varied corpus: made-up words, names, acronyms, numbers (0: none)",
    )
    ap.add_argument(
        "--varied-headers",
        action="store_true",
        help="prompts name made-up documents and pages 1-999 (default: 7 names, pages 1-40)",
    )
    ap.add_argument(
        "--documents",
        type=float,
        default=TrainSettings.documents,
        help="share of steps on made-up invoices, receipts, forms and letters: pinned extraction and questions",
    )
    ap.add_argument("--init-from", type=Path, help="start from this model folder's weights (a later stage)")
    ap.add_argument(
        "--seed",
        type=int,
        default=TrainSettings.seed,
        help="seeds the weights and every step's data (a later stage on other batches than the last)",
    )
    ap.add_argument(
        "--state",
        type=Path,
        default=default_state_dir(),
        help="folder for the resumable training state (default: %(default)s)",
    )
    ap.add_argument("--eval", type=int, default=40, help="held-out texts evaluated at the end (0: none)")
    run = ap.add_argument_group("how it runs (not what it computes)")
    run.add_argument("--device", default="cpu", help="torch device to train on (cpu, cuda)")
    run.add_argument("--workers", type=int, default=0, help="processes that make batches ahead (0: inline)")
    run.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (more threads than free cores make every small op wait on the others; "
        "on a CPU another count sums in another order, so the weights differ in the last bits)",
    )
    run.add_argument("--minutes", type=float, help="stop after this long, saving the state (resume later)")
    return ap


def settings_of(args: argparse.Namespace) -> TrainSettings:
    return TrainSettings(
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        warmup=args.warmup,
        max_tokens=args.max_tokens,
        grow_until=args.grow_until,
        init=str(args.init_from) if args.init_from else "",
        varied=args.varied,
        headers=args.varied_headers,
        seed=args.seed,
        documents=args.documents,
    )


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from training.model import build_trained

    args = parser().parse_args(argv)
    settings = settings_of(args)
    model, processor = build_trained(train=True)
    earlier = None
    if args.init_from is not None:
        earlier = load_stage(model, args.init_from)
    history, done, seconds, sittings = train(
        model,
        processor,
        settings,
        state_dir=args.state,
        stop_after=args.stop_after,
        device=args.device,
        workers=args.workers,
        threads=args.threads,
        seconds=None if args.minutes is None else args.minutes * 60,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    trained = longest_at(done, settings)  # held-out texts of the lengths trained so far
    evaluations: dict[bool, dict[str, Any]] = {}  # varied or not -> the record
    end = min(settings.steps, args.stop_after) if args.stop_after is not None else settings.steps
    kinds = ((False, True) if settings.varied > 0 else (False,)) if args.eval > 0 and done >= end else ()
    if done < end:
        print(f"stopped at step {done} of {end}; the same command resumes from {args.state}")
    for varied in kinds:
        hints = held_out_hints(processor, args.eval, settings.min_tokens, trained, varied=varied)
        with torch.no_grad():
            result = evaluate(model, processor, hints)
        print(("varied: " if varied else "") + result.summary())
        evaluations[varied] = {k: v for k, v in asdict(result).items() if k != "samples"}
    (args.out / "training.json").write_text(
        json.dumps(
            {
                "settings": asdict(settings),
                "stopped_after": done,
                "longest_trained_tokens": trained,
                "train_seconds": round(seconds, 1),
                "sittings": sittings,
                "history": history,
                "evaluation": evaluations.get(False),
                "evaluation_varied": evaluations.get(True),
                "initialised_from": earlier,
                "torch": torch.__version__,
                "device": args.device,
            },
            indent=1,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
