"""The diffusion engine: prefill, then block diffusion canvas by canvas, as a generator of typed events.

The loop follows ``DiffusionGemmaForBlockDiffusion.generate()`` (transformers 5.23+) step for step, so that the
same seed and parameters give the same tokens and the same per-step drafts; the numbered comments mirror the
numbered steps of that method. What it adds: an event per denoising step carrying what a viewer needs (the argmax
draft, the accepted and re-noised masks, float16 entropies) in one small host transfer, cancellation checked
before every step, and a session that keeps the KV cache for a follow-up turn.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

import inference.runtime.sampling as sampling
from inference.errors import GenerationError, WorkbenchError
from inference.runtime.cancel import CancelToken
from inference.runtime.events import (
    Cancelled,
    CanvasCommitted,
    CanvasStarted,
    Event,
    Failed,
    Finished,
    PrefillFinished,
    PrefillStarted,
    Stats,
    frozen_array,
)
from inference.runtime.params import DiffusionParams
from inference.runtime.prefill import ChunkEmbedder, PrefillInputs, chunk_bounds, prefill_in_chunks
from inference.runtime.session import RunState, Session
from inference.runtime.step import CanvasInputs, CanvasState, StepPlace, denoise_step, step_event
from inference.runtime.template import CanvasTemplate
from inference.weights.devices import keep_heap_between_steps

log = logging.getLogger(__name__)

# Keys of a processor's output that only the first encoder call (the prefill) consumes.
PREFILL_ONLY_KEYS = ("pixel_values", "image_position_ids", "mm_token_type_ids")


class DiffusionEngine:
    """Runs a loaded DiffusionGemma model. Not thread-safe: one run at a time per engine."""

    def __init__(self, model: Any, tokenizer: Any = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = model.config
        self.canvas_length = int(model.config.canvas_length)
        self.vocab_size = int(model.config.text_config.vocab_size)
        gen = getattr(model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None)
        self.eos_token_ids: list[int] = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        self.pad_token_id: int | None = getattr(gen, "pad_token_id", None)
        # Free memory on the model's device, in bytes (None: unknown); replaceable, e.g. to model a smaller device.
        self.available_memory: Any = None
        keep_heap_between_steps()  # steps reuse the heap pages freed by the step before (devices.py)

    def cache_bytes(self, tokens: int, batch: int = 1) -> int:
        """Bytes of the KV cache for ``tokens`` of context, per layer type (inference.weights.sizing.kv_cache_bytes)."""
        from inference.weights.sizing import kv_cache_bytes

        dtype = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.model.dtype, "fp32")
        return kv_cache_bytes(self.config, tokens, dtype, batch)

    def check_cache_fits(self, tokens: int, batch: int, cached: int, device: torch.device) -> None:
        """Refuse, before any prefill work, a context whose KV cache (plus one chunk's attention and one canvas's
        logits) will not fit the device's free memory."""
        from inference.errors import InsufficientMemoryError
        from inference.runtime.prefill import SCORE_BUDGET
        from inference.weights.devices import available_bytes

        free = self.available_memory() if self.available_memory is not None else available_bytes(device.type)
        if free is None:
            return
        need = self.cache_bytes(tokens, batch) - self.cache_bytes(cached, batch)
        transient = SCORE_BUDGET * 4 * 2 + batch * self.canvas_length * self.vocab_size * 4 * 3
        if need + transient > free:
            raise InsufficientMemoryError(
                f"This prompt needs a KV cache of about {need / 2**30:.2f} GiB for {tokens:,} tokens of context "
                f"(plus {transient / 2**30:.2f} GiB while it runs), but {device.type} has {free / 2**30:.2f} GiB "
                "free.",
                hint="Use fewer pages or a smaller image budget, or free memory.",
            )

    def default_params(self, **overrides: Any) -> DiffusionParams:
        return DiffusionParams.from_generation_config(getattr(self.model, "generation_config", None), **overrides)

    # ------------------------------------------------------------------ public entry point
    def generate(
        self,
        inputs: Mapping[str, Any] | torch.Tensor,
        params: DiffusionParams | None = None,
        *,
        cancel: CancelToken | None = None,
        session: Session | None = None,
        template: CanvasTemplate | None = None,
        seeds: Sequence[int | None] | None = None,
    ) -> Iterator[Event]:
        """Yield the events of one run. Errors end the stream with a ``Failed`` event; nothing is raised.

        ``template`` pins tokens and restricts positions of the generated canvases (:mod:`inference.runtime.template`);
        the run covers at least the template's canvases. Without one the run is ``generate()``'s.

        ``seeds`` (one per row): each row draws its noise from its own generator seeded with its seed (a ``None``
        row: a seed drawn from torch's global generator), so that a row's noise does not depend on the rows beside
        it. A row seeded with ``s`` draws what a single-row run with ``params.seed = s`` draws; without ``seeds``
        the whole batch draws from the global generator, as ``generate()`` does.
        """
        params = params or self.default_params()
        yield from self._guarded(self._generate(inputs, params, cancel, session, template, seeds=seeds), session)

    def reopen(
        self,
        session: Session,
        template: CanvasTemplate,
        params: DiffusionParams | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> Iterator[Event]:
        """Denoise a templated answer again against the cached prompt: typically ``template.reopened(ids, span)``,
        where everything but the span is pinned to the committed tokens. The session must have run with
        ``keep_prompt``; its prompt cache is copied, never changed, so a span can be re-opened any number of times.
        """
        params = params or self.default_params()
        if session.prompt_cache is None:
            yield Failed(
                error_type="GenerationError",
                message="Nothing to re-open: the Session holds no prompt cache (generate with keep_prompt to keep it).",
            )
            return
        empty = torch.zeros((1, 0), dtype=torch.long, device=self.model.device)
        yield from self._guarded(self._generate(empty, params, cancel, session, template, reopen=True), session)

    def _guarded(self, events: Iterator[Event], session: Session | None) -> Iterator[Event]:
        try:
            yield from events
        except Exception as exc:
            log.info("generation failed", exc_info=True)  # the traceback for -v; the Failed event is the message
            if session is not None:  # a half-written cache cannot be trusted for the next turn
                session.cache, session.pending_ids = None, None
            yield Failed(error_type=type(exc).__name__, message=_user_message(exc))

    # ------------------------------------------------------------------ the loop
    @torch.inference_mode()
    def _generate(
        self,
        inputs: Mapping[str, Any] | torch.Tensor,
        params: DiffusionParams,
        cancel: CancelToken | None,
        session: Session | None,
        template: CanvasTemplate | None = None,
        reopen: bool = False,
        seeds: Sequence[int | None] | None = None,
    ) -> Iterator[Event]:
        """Prepare, prefill, then one canvas at a time: denoise it, commit it; finish (generate()'s 0, 1, 2).
        ``reopen``: the session's prompt cache stands for the prompt, and there is no prefill."""
        run = self._prepare(inputs, params, session, template, reopen, seeds)
        yield PrefillStarted(prompt_tokens=run.prompt_len, cached_tokens=run.cached, images=run.images)
        if not reopen and not (yield from self._prefill(run, params, cancel)):
            if session is not None:  # cancelled between chunks: a half-filled cache is no session to continue
                session.cache, session.pending_ids = None, None
            yield Cancelled(canvas=-1, step=0, texts=())
            return
        if session is not None and session.keep_prompt and not reopen:
            session.prompt_cache = copy.deepcopy(run.cache)
        for canvas_index in range(run.max_new_canvases):
            if canvas_index:
                self._encode_committed(run)
            argmax = yield from self._denoise_canvas(run, canvas_index, params, cancel, session)
            if argmax is None:
                return
            if (yield from self._commit(run, canvas_index, argmax)):
                break
            self._advance(run)
        yield self._finish(run, session)

    # ------------------------------------------------------------------ its phases
    def _prepare(
        self,
        inputs: Mapping[str, Any] | torch.Tensor,
        params: DiffusionParams,
        session: Session | None,
        template: CanvasTemplate | None = None,
        reopen: bool = False,
        seeds: Sequence[int | None] | None = None,
    ) -> RunState:
        """0. Input preparation (as in generate()): the new turn after any pending ids, the cache, positions and
        masks, where the noise comes from; the memory check before any work."""
        pending = session.pending_ids if session is not None and not reopen else None
        input_ids, attention_mask, model_kwargs = self._turn_inputs(inputs, pending)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        batch_size, new_len = input_ids.shape
        device = input_ids.device
        if seeds is not None and len(seeds) != batch_size:
            raise GenerationError(f"{len(seeds)} seeds for a batch of {batch_size} prompts: give one per row.")
        noise = sampling.Noise() if seeds is None else sampling.Noise.per_row(list(seeds), device)
        cache, cached = self._turn_cache(session, reopen)
        cur_len = cached + new_len
        if attention_mask is not None:
            attention_mask = attention_mask.bool()
        else:
            attention_mask = torch.ones((batch_size, cur_len), dtype=torch.bool, device=device)
        run = RunState(
            input_ids=input_ids,
            prompt_len=new_len,
            batch_size=batch_size,
            device=device,
            eos=torch.tensor(self.eos_token_ids, device=device) if self.eos_token_ids else None,
            pad_token_id=self.pad_token_id,
            finished_sequences=torch.zeros(batch_size, dtype=torch.bool, device=device),
            forward_passes=torch.zeros(batch_size, dtype=torch.int, device=device),
            cache=cache,
            cached=cached,
            cur_len=cur_len,
            max_new_canvases=math.ceil(
                max(params.max_new_tokens, template.length if template else 0) / self.canvas_length
            ),
            model_kwargs=model_kwargs,
            attention_mask=attention_mask,
            decoder_attention_mask=torch.nn.functional.pad(attention_mask, (0, self.canvas_length), value=True),
            encoder_position_ids=torch.arange(cur_len - new_len, cur_len, dtype=torch.int32, device=device)[None],
            decoder_position_ids=self._positions(cur_len, device),
            stability=sampling.StabilityTracker(params.stability_threshold)
            if params.adaptive_stopping and params.stability_threshold is not None
            else None,
            noise=noise,
            done_rows=np.zeros(batch_size, dtype=bool),
            images=int(model_kwargs["pixel_values"].shape[0]) if "pixel_values" in model_kwargs else 0,
            template=template,
        )
        self.check_cache_fits(cur_len + run.max_new_canvases * self.canvas_length, batch_size, cached, device)
        return run

    def _turn_cache(self, session: Session | None, reopen: bool) -> tuple[Any, int]:
        """The cache this turn writes into (the session's, a copy of its prompt's when reopening, or a new one) and
        how many tokens it holds already."""
        cache = session.cache if session is not None else None
        if reopen:
            if session is None:
                raise ValueError("reopen=True needs the session to reopen")
            cache = copy.deepcopy(session.prompt_cache)
        if cache is not None:
            return cache, int(cache.get_seq_length())
        from transformers import DynamicCache

        return DynamicCache(config=self.config.get_text_config(decoder=True)), 0

    def _turn_inputs(
        self, inputs: Mapping[str, Any] | torch.Tensor, pending: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        """The new turn's ids (after a session's pending ids), its 2-D mask (None after pending ids) and the rest."""
        model_kwargs = dict(inputs) if isinstance(inputs, Mapping) else {"input_ids": inputs}
        input_ids = model_kwargs.pop("input_ids")
        attention_mask = model_kwargs.pop("attention_mask", None)
        # (the new turn only: a previous answer sent back as pending ids may hold any token)
        image_token = getattr(self.config, "image_token_id", None)
        if image_token is not None and "pixel_values" not in model_kwargs:
            n_image = int((input_ids == image_token).sum())
            if n_image:
                raise GenerationError(
                    f"The prompt holds {n_image} image tokens but no images (pixel_values) came with it.",
                    hint="Build the prompt with the processor from the messages and their images together.",
                )
        if pending is not None:
            if input_ids.shape[0] != 1:
                raise GenerationError("A follow-up turn takes a single prompt, not a batch.")
            input_ids = torch.cat([pending.to(input_ids.device), input_ids], dim=-1)
            attention_mask = None
            if "mm_token_type_ids" in model_kwargs:
                pad = torch.zeros_like(pending).to(model_kwargs["mm_token_type_ids"])
                model_kwargs["mm_token_type_ids"] = torch.cat([pad, model_kwargs["mm_token_type_ids"]], dim=-1)
        return input_ids, attention_mask, model_kwargs

    def _prefill(
        self, run: RunState, params: DiffusionParams, cancel: CancelToken | None
    ) -> Generator[Event, None, bool]:
        """1.a, first canvas: encode the prompt (in chunks when it is longer than one); False when cancelled."""
        t0 = time.perf_counter()
        if run.prompt_len > params.prefill_chunk:
            done = yield from self._prefill_chunks(run, params.prefill_chunk, cancel)
            if not done:
                return False
        else:
            run.cache = self._encode(
                run.input_ids, run.attention_mask, run.encoder_position_ids, run.cache, run.model_kwargs
            )
        _sync(run.device)
        run.prefill_seconds = time.perf_counter() - t0
        yield PrefillFinished(prompt_tokens=run.prompt_len, seconds=run.prefill_seconds)
        for key in PREFILL_ONLY_KEYS:
            run.model_kwargs.pop(key, None)
        return True

    def _encode_committed(self, run: RunState) -> None:
        """1.a, later canvases: encode the last committed canvas into the cache."""
        run.cache = self._encode(
            run.input_ids[:, -self.canvas_length :],
            run.attention_mask,
            run.encoder_position_ids,
            run.cache,
            run.model_kwargs,
        )

    def _denoise_canvas(
        self,
        run: RunState,
        canvas_index: int,
        params: DiffusionParams,
        cancel: CancelToken | None,
        session: Session | None,
    ) -> Generator[Event, None, torch.Tensor | None]:
        """1.b-1.c: one canvas from noise, a ``DenoisingStep`` per step; returns the last step's argmax canvas, or
        None when cancelled (after yielding ``Cancelled``)."""
        run.rule = rule = None
        if run.template is not None:
            run.rule = rule = run.template.canvas(canvas_index, self.canvas_length, self.vocab_size, run.device)
        yield CanvasStarted(
            canvas=canvas_index,
            position=int(run.decoder_position_ids[0, 0]),
            canvas_length=self.canvas_length,
            max_steps=params.max_denoising_steps,
        )
        if rule is not None and rule.all_pinned:  # nothing to denoise: the canvas is its pins
            run.steps_per_canvas.append(0)
            run.last_logits = None
            return rule.place(torch.zeros((run.batch_size, self.canvas_length), dtype=torch.long, device=run.device))
        current, self_conditioning, mask_mapping = self._start_canvas(run)
        if rule is not None:
            current = rule.place(current)
        fixed = CanvasInputs(
            self.model, params, self.vocab_size, run.stability, mask_mapping, run.cache, run.decoder_position_ids,
            run.model_kwargs, run.noise, rule,
        )  # fmt: skip
        finished = torch.zeros(run.batch_size, dtype=torch.bool, device=run.device)
        state = CanvasState(current=current, argmax=current, self_conditioning=self_conditioning, finished=finished)
        finished_host = np.zeros(run.batch_size, dtype=bool)
        # 1.c. Denoising steps, counting down from max_denoising_steps to 1.
        steps_done = 0
        canvas_t0 = time.perf_counter()
        for remaining in range(params.max_denoising_steps, 0, -1):
            if cancel is not None and cancel.cancelled:
                self._keep_session(session, run.cache, None)  # the cache holds the prompt (and pending ids)
                yield Cancelled(canvas=canvas_index, step=steps_done, texts=self._texts(run))
                return None
            where = StepPlace(canvas_index, steps_done, remaining, time.perf_counter())
            run.forward_passes += ~(state.finished | run.finished_sequences)
            was_finished = finished_host
            drawing = ~(was_finished | run.done_rows)
            out = denoise_step(fixed, state, remaining, drawing, bool(was_finished.any()))
            state = out.state
            host = out.packed.cpu().numpy()  # the one host transfer of the step
            finished_host = (host[1][:, 0] & 4).astype(bool)
            yield step_event(host, was_finished, where, out.temperature)
            steps_done += 1
            if finished_host.all():
                break
        self_conditioning, argmax = state.self_conditioning, state.argmax
        run.diffusion_seconds += time.perf_counter() - canvas_t0
        run.steps_per_canvas.append(steps_done)
        run.last_logits = self_conditioning if rule is not None else None
        return argmax

    def _start_canvas(self, run: RunState) -> tuple[torch.Tensor, torch.Tensor | None, Any]:
        """1.b. Prepare the denoising loop: a random canvas (drawn even when a starting canvas is given), the
        starting self-conditioning logits (None unless given) and the decoder's attention mask mapping."""
        drawn = run.noise.canvas(run.batch_size, self.canvas_length, self.vocab_size, run.device, ~run.done_rows)
        current = run.model_kwargs.pop("decoder_input_ids", drawn)
        self_conditioning = run.model_kwargs.pop("self_conditioning_logits", None)
        mask_mapping = self.model.model.decoder.create_diffusion_decoder_attention_mask(
            config=self.config,
            inputs_embeds=current.unsqueeze(-1),
            cache=run.cache,
            decoder_attention_mask=run.decoder_attention_mask,
        )
        if run.stability is not None:
            run.stability.reset()
        return current, self_conditioning, mask_mapping

    def _commit(self, run: RunState, canvas_index: int, argmax: torch.Tensor) -> Generator[Event, None, bool]:
        """1.d-1.e: append the argmax canvas (its choices resolved under a template), apply end-of-sequence and
        padding rules; True when every row is done."""
        logprobs, choices = None, ()
        if run.rule is not None:
            if run.last_logits is None:  # all pinned: every token certain
                logprobs = np.zeros(argmax.shape, dtype=np.float32)
            else:
                argmax, chosen, choices = run.rule.resolve(argmax, run.last_logits)
                logprobs = chosen.cpu().numpy()
        run.input_ids = torch.cat([run.input_ids, argmax], dim=-1)
        self._finalize_canvas(run, last=canvas_index == run.max_new_canvases - 1)
        committed = run.input_ids[:, -self.canvas_length :]
        finished_host = run.finished_sequences.cpu().numpy()
        last = canvas_index == run.max_new_canvases - 1 or bool(finished_host.all())
        written = committed != run.pad_token_id if run.pad_token_id is not None else torch.ones_like(committed)
        run.done_rows = finished_host
        yield CanvasCommitted(
            canvas=canvas_index,
            steps=run.steps_per_canvas[-1],
            ids=frozen_array(committed.cpu().numpy(), np.int64),
            texts=self._canvas_texts(run, finished_host, last),
            finished=frozen_array(finished_host, bool),
            logprobs=None if logprobs is None else frozen_array(logprobs, np.float32),
            choices=choices,
            new_tokens=tuple(int(n) for n in written.sum(dim=-1).tolist()),
        )
        return bool(finished_host.all())

    def _canvas_texts(self, run: RunState, finished: np.ndarray, last: bool) -> tuple[str, ...]:
        """Per row, the text this canvas adds: everything written so far decoded at once, less what earlier canvases
        gave. A character whose bytes straddle two canvases (a byte-level tokenizer) is held back until it is
        whole, never shown as two U+FFFD; a row's last canvas gives all that is left."""
        if not run.shown:
            run.shown = [""] * run.batch_size
        out = []
        for row in range(run.batch_size):
            text = self._decode(run.input_ids[row, run.prompt_len :])
            if not (last or finished[row]):
                text = text.rstrip("\ufffd")
            shown = run.shown[row]
            delta = (
                text[len(shown) :]
                if text.startswith(shown)
                else self._decode(run.input_ids[row, -self.canvas_length :])
            )
            run.shown[row] = shown + delta
            out.append(delta)
        return tuple(out)

    def _advance(self, run: RunState) -> None:
        """1.f. Prepare the next canvas: masks and positions one canvas on."""
        canvas_length = self.canvas_length
        run.cur_len += canvas_length
        run.decoder_attention_mask = torch.nn.functional.pad(run.decoder_attention_mask, (0, canvas_length), value=True)
        run.attention_mask = torch.nn.functional.pad(run.attention_mask, (0, canvas_length), value=True)
        run.encoder_position_ids = run.decoder_position_ids
        run.decoder_position_ids = self._positions(run.cur_len, run.device)

    def _finish(self, run: RunState, session: Session | None) -> Finished:
        """2. Keep the session; the new ids, texts and statistics."""
        self._keep_session(session, run.cache, run.input_ids[:, -self.canvas_length :])
        new_ids = run.input_ids[:, run.prompt_len :]
        valid = int((new_ids != run.pad_token_id).sum()) if run.pad_token_id is not None else new_ids.numel()
        passes = int(run.forward_passes.sum())
        return Finished(
            texts=self._texts(run),
            ids=frozen_array(new_ids.cpu().numpy(), np.int64),
            stats=Stats(
                new_tokens=valid,
                forward_passes=passes,
                tokens_per_forward=valid / passes if passes else 0.0,
                steps_per_canvas=tuple(run.steps_per_canvas),
                tokens_per_second=valid / run.diffusion_seconds if run.diffusion_seconds else 0.0,
                prefill_seconds=run.prefill_seconds,
                diffusion_seconds=run.diffusion_seconds,
            ),
        )

    def _positions(self, start: int, device: torch.device) -> torch.Tensor:
        return torch.arange(start, start + self.canvas_length, dtype=torch.int32, device=device)[None]

    # ------------------------------------------------------------------ pieces of the loop
    def _encode(
        self,
        ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any,
        model_kwargs: dict[str, Any],
    ) -> Any:
        """Run the causal encoder over uncached tokens, writing the KV cache.

        The 4-D mask mapping is built here as ``generate()`` builds it: a 2-D mask handed to the encoder would
        silently give image tokens a causal mask instead of their bidirectional one.
        """
        model = self.model
        ids = ids.clone(memory_format=torch.contiguous_format)
        dummy = torch.empty((ids.shape[0], ids.shape[1], 0), dtype=model.dtype, device=ids.device)
        mask_mapping = model.model.encoder.create_masks_for_generate(
            config=self.config,
            inputs_embeds=dummy,
            attention_mask=attention_mask,
            cache=cache,
            position_ids=position_ids,
            mm_token_type_ids=model_kwargs.get("mm_token_type_ids"),
        )
        extra = {k: v for k, v in model_kwargs.items() if k not in ("decoder_input_ids", "self_conditioning_logits")}
        out = model.model.encoder(
            input_ids=ids, attention_mask=mask_mapping, cache=cache, position_ids=position_ids, **extra
        )
        return out.cache

    def _prefill_chunks(self, run: RunState, chunk: int, cancel: CancelToken | None) -> Generator[Event, None, bool]:
        """Encode the uncached prompt chunk by chunk into ``cache``: a ``PrefillProgress`` after each chunk, the
        cancel flag checked between layers (returns False when cancelled). Attention memory is bounded by the chunk
        (:mod:`inference.runtime.prefill`); the vision tower runs once, before the first chunk."""
        encoder, kwargs = self.model.model.encoder, run.model_kwargs
        mm_ids = kwargs.get("mm_token_type_ids")
        embed = ChunkEmbedder(
            encoder,
            run.input_ids,
            getattr(self.config, "image_token_id", None),
            kwargs.get("pixel_values"),
            kwargs.get("image_position_ids"),
        )
        prompt = PrefillInputs(run.attention_mask, run.encoder_position_ids, run.cache, mm_ids, run.cached)
        bounds = chunk_bounds(run.input_ids.shape[1], chunk, mm_ids)
        return (yield from prefill_in_chunks(encoder, self.config, embed, prompt, bounds, cancel))

    def _finalize_canvas(self, run: RunState, last: bool) -> None:
        """Mark rows that produced end-of-sequence; pad what follows it, and whole canvases of finished rows."""
        canvas_length = self.canvas_length
        canvas = run.input_ids[:, -canvas_length:]
        finished_now = torch.zeros_like(run.finished_sequences)
        if run.eos is not None:
            finished_now = torch.isin(canvas, run.eos).any(dim=-1)
        if last:
            finished_now = torch.ones_like(finished_now)
        before = run.finished_sequences
        run.finished_sequences = before | finished_now
        if run.pad_token_id is not None and bool(run.finished_sequences.any()):
            run.input_ids[before, -canvas_length:] = run.pad_token_id
            if run.eos is not None and bool(finished_now.any()):
                new_tokens = run.input_ids[:, -canvas_length:]
                is_eos = torch.isin(new_tokens, run.eos)
                cumsum = is_eos.cumsum(dim=-1)
                pad_mask = (cumsum > 0) & ~((cumsum == 1) & is_eos)
                new_tokens[pad_mask] = run.pad_token_id

    def _keep_session(self, session: Session | None, cache: Any, last_canvas: torch.Tensor | None) -> None:
        if session is None:
            return
        session.cache = cache
        session.turns += 1
        if last_canvas is None:  # cancelled: the cache holds the prompt (and any pending ids sent with it)
            session.pending_ids = None
            return
        row = last_canvas[0]
        if self.eos_token_ids:
            hits = torch.isin(row, torch.tensor(self.eos_token_ids, device=row.device)).nonzero()
            if len(hits):
                row = row[: int(hits[0]) + 1]
        session.pending_ids = row[None].clone()

    # ------------------------------------------------------------------ text
    def _decode(self, ids: torch.Tensor | np.ndarray) -> str:
        values = ids.tolist()
        for i, token in enumerate(values):
            if token in self.eos_token_ids:
                values = values[:i]
                break
        if self.tokenizer is None:
            return " ".join(str(v) for v in values)
        return self.tokenizer.decode(values, skip_special_tokens=True)

    def _texts(self, run: RunState) -> tuple[str, ...]:
        return tuple(self._decode(row) for row in run.input_ids[:, run.prompt_len :])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _user_message(exc: BaseException) -> str:
    if isinstance(exc, WorkbenchError):
        return exc.user_message()
    if isinstance(exc, torch.OutOfMemoryError):
        return (
            "The device ran out of memory during generation. Try fewer pages or images, a shorter "
            "max_new_tokens, a quantized model, or the CPU."
        )
    return f"Generation failed: {type(exc).__name__}: {exc}"
