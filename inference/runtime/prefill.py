"""Chunked prefill with attention memory bounded by the chunk, whatever the prompt's length.

The uncached prompt goes through the encoder in chunks (never splitting an image's soft-token run: image tokens
attend to each other both ways), the KV cache filling as it goes. What would grow with the square of the prompt
is the attention mask and the score matrix of a chunk against everything cached. So the encoder runs, during the
prefill, with an attention implementation of our own registered in transformers' interfaces:

- its *mask* function returns a :class:`LazyMask` (transformers' own composed mask function, with the padding,
  sliding-window and bidirectional-image rules, and its offsets) instead of a dense ``(chunk, kv)`` tensor;
- its *attention* function materialises that mask one block of keys at a time and runs an online softmax over the
  blocks (the flash-attention recurrence in plain torch), so scores and mask never exceed ``SCORE_BUDGET``
  elements however long the cache is. Small problems (``chunk * kv`` within the budget) take one dense block and
  PyTorch's SDPA, exactly as transformers' ``sdpa`` path would.

Why not SDPA with a dense mask: on the CPU a boolean mask is turned into a float bias of ``chunk x kv`` (1 GiB for a
2048-token chunk against 128K tokens) and the math kernel materialises the scores per head; ``is_causal`` cannot
express "all of the cache, then causal", and flex attention would need ``torch.compile`` on every machine.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from inference.runtime.cancel import CancelToken
from inference.runtime.events import PrefillProgress

IMPLEMENTATION = "dwb_chunked"
SCORE_BUDGET = 1 << 24  # elements of one block's scores (per batch x heads x queries x keys): 64 MiB in fp32


@dataclass
class LazyMask:
    """A transformers mask, described instead of materialised: ``block(a, b)`` is the dense mask of keys ``a:b``."""

    batch_size: int
    q_length: int
    kv_length: int
    q_offset: int
    kv_offset: int
    mask_function: Any
    attention_mask: torch.Tensor | None
    use_vmap: bool
    device: Any

    def block(self, start: int, stop: int, first_row: int = 0, rows: int | None = None) -> torch.Tensor:
        from transformers.masking_utils import sdpa_mask

        mask = sdpa_mask(
            batch_size=self.batch_size,
            q_length=self.q_length if rows is None else rows,
            kv_length=stop - start,
            q_offset=self.q_offset + first_row,
            kv_offset=self.kv_offset + start,
            mask_function=self.mask_function,
            attention_mask=self.attention_mask,
            allow_is_causal_skip=False,
            use_vmap=self.use_vmap,
            device=self.device,
        )
        if mask is None:  # only with allow_is_causal_skip, which is off
            raise RuntimeError("transformers' sdpa_mask returned no mask")
        return mask

    def fully_visible(self, start: int, stop: int) -> bool:
        """Whether every query sees every key of ``start:stop``: checked on the first and the last query row. The
        masks this engine meets (causal or sliding-window causal, with padding and bidirectional image runs) see a
        key from a set of consecutive queries, so two rows that see it bound all the rows between them."""
        if self.kv_offset + stop > self.q_offset + 1:  # the block reaches into the chunk itself
            return False
        return bool(self.block(start, stop, 0, 1).all()) and bool(self.block(start, stop, self.q_length - 1, 1).all())


def lazy_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    mask_function: Any = None,
    attention_mask: torch.Tensor | None = None,
    use_vmap: bool = False,
    device: Any = "cpu",
    **_kwargs: Any,
) -> LazyMask:
    from transformers.masking_utils import causal_mask_function

    return LazyMask(
        batch_size,
        q_length,
        kv_length,
        q_offset,
        kv_offset,
        mask_function or causal_mask_function,
        attention_mask,
        use_vmap,
        device,
    )


def blocked_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    softcap: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention over keys in blocks with an online softmax; ``attention_mask`` is a :class:`LazyMask`. The cancel
    flag of :func:`stop_between_layers` is checked between blocks, so one long layer is cut short too."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_len, _ = query.shape
    kv_len = key.shape[2]
    if not isinstance(attention_mask, LazyMask):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, softcap=softcap, **kwargs
        )
    if batch * heads * q_len * kv_len <= SCORE_BUDGET and softcap is None:
        dense = attention_mask.block(0, kv_len)
        return sdpa_attention_forward(module, query, key, value, dense, dropout=dropout, scaling=scaling, **kwargs)
    scale: float = module.head_dim**-0.5 if scaling is None else scaling
    groups = heads // key.shape[1]
    step = max(256, SCORE_BUDGET // max(1, batch * heads * q_len))
    out = torch.zeros((batch, heads, q_len, value.shape[-1]), dtype=torch.float32, device=query.device)
    running_max = torch.full((batch, heads, q_len, 1), float("-inf"), dtype=torch.float32, device=query.device)
    running_sum = torch.zeros((batch, heads, q_len, 1), dtype=torch.float32, device=query.device)
    for start in range(0, kv_len, step):
        check_cancelled()
        stop = min(start + step, kv_len)
        keys = key[:, :, start:stop].repeat_interleave(groups, dim=1)
        values = value[:, :, start:stop].repeat_interleave(groups, dim=1)
        scores = torch.matmul(query, keys.transpose(2, 3)).float().mul_(scale)
        if softcap is not None:
            scores = torch.tanh(scores / softcap) * softcap
        if not attention_mask.fully_visible(start, stop):  # most blocks lie wholly in the cached past
            scores = scores.masked_fill(~attention_mask.block(start, stop), float("-inf"))
        new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))
        safe_max = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)
        weights = torch.exp(scores - safe_max)
        correction = torch.exp(running_max - safe_max)
        running_sum = running_sum * correction + weights.sum(dim=-1, keepdim=True)
        out = out * correction + torch.matmul(weights, values.float())
        running_max = new_max
        del scores, weights, keys, values
    out = torch.where(running_sum > 0, out / running_sum.clamp_min(1e-30), torch.zeros_like(out))
    return out.to(query.dtype).transpose(1, 2).contiguous(), None


def register() -> None:
    """Register the implementation with transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(IMPLEMENTATION, blocked_attention)
    AttentionMaskInterface.register(IMPLEMENTATION, lazy_mask)


@contextlib.contextmanager
def chunked_attention(config: Any) -> Iterator[None]:
    """Run the encoder with the bounded implementation inside the block; the previous one is restored after."""
    register()
    configs = [config, config.get_text_config(decoder=True)]
    previous = [c._attn_implementation for c in configs]
    try:
        for c in configs:
            c._attn_implementation = IMPLEMENTATION
        yield
    finally:
        for c, value in zip(configs, previous, strict=True):
            c._attn_implementation = value


# ---------------------------------------------------------------------- chunks
def chunk_bounds(length: int, chunk: int, mm_token_type_ids: torch.Tensor | None) -> list[tuple[int, int]]:
    """Split ``0:length`` into chunks of about ``chunk`` tokens, never inside a run of image (or video) tokens in
    any row: a boundary inside a run moves back to the run's start, or past its end when the run began the chunk."""
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    vision = None
    if mm_token_type_ids is not None:
        vision = ((mm_token_type_ids == 1) | (mm_token_type_ids == 2)).any(dim=0).cpu().tolist()
    bounds, start = [], 0
    while start < length:
        stop = min(start + chunk, length)
        if vision is not None and stop < length and vision[stop] and vision[stop - 1]:
            back = stop
            while back > start and vision[back - 1]:
                back -= 1
            if back > start:
                stop = back
            else:  # the run started at the chunk's start and is longer than a chunk: take all of it
                while stop < length and vision[stop]:
                    stop += 1
        bounds.append((start, stop))
        start = stop
    return bounds


class ChunkEmbedder:
    """Input embeddings for ``ids[:, a:b]`` with the image features scattered in, as the encoder's forward does with
    ``masked_scatter`` (row-major order over the batch). The vision tower runs once, before the first chunk."""

    def __init__(
        self,
        encoder: Any,
        ids: torch.Tensor,
        image_token_id: int | None,
        pixel_values: Any = None,
        image_position_ids: Any = None,
    ) -> None:
        self.encoder = encoder
        self.ids = ids
        self.features = None
        self.is_image = None
        if pixel_values is not None:
            output = encoder.get_image_features(pixel_values, image_position_ids, return_dict=True)
            features = output.pooler_output
            self.features = features.reshape(-1, features.shape[-1])
            self.is_image = ids == image_token_id
            self.order = (torch.cumsum(self.is_image.flatten(), 0) - 1).view_as(ids)
            if int(self.is_image.sum()) != self.features.shape[0]:
                from inference.errors import GenerationError

                raise GenerationError(
                    f"The prompt has {int(self.is_image.sum())} image tokens but its images give "
                    f"{self.features.shape[0]} soft tokens; the prompt and the images do not belong together."
                )

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        embeds = self.encoder.get_input_embeddings()(self.ids[:, start:stop])
        if self.features is not None and self.is_image is not None:
            where = self.is_image[:, start:stop]
            if bool(where.any()):
                picked = self.features[self.order[:, start:stop][where]].to(embeds.device, embeds.dtype)
                embeds = embeds.clone()
                embeds[where] = picked
        return embeds


# ------------------------------------------------------------------ cancelling inside a chunk
class PrefillInterrupted(Exception):
    """The cancel flag was seen inside the encoder (between two layers or two key blocks): the chunk is abandoned."""


_watched = threading.local()


def check_cancelled() -> None:
    """Raise :class:`PrefillInterrupted` when the flag watched by this thread's :func:`stop_between_layers` is set."""
    cancel = getattr(_watched, "cancel", None)
    if cancel is not None and cancel.cancelled:
        raise PrefillInterrupted


@contextlib.contextmanager
def stop_between_layers(layers: Sequence[torch.nn.Module], cancel: CancelToken | None) -> Iterator[None]:
    """Check ``cancel`` before each of ``layers`` runs (and between key blocks of the bounded attention), so a
    cancel costs at most the layer under way, not the rest of a chunk. The hooks live only inside the block."""
    if cancel is None:
        yield
        return
    handles = [layer.register_forward_pre_hook(lambda _module, _args: check_cancelled()) for layer in layers]
    previous = getattr(_watched, "cancel", None)
    _watched.cancel = cancel
    try:
        yield
    finally:
        _watched.cancel = previous
        for handle in handles:
            handle.remove()


def text_layers(encoder: Any) -> Sequence[torch.nn.Module]:
    """The decoder layers of an encoder's text stack (empty when the model is laid out otherwise)."""
    stack = getattr(encoder, "language_model", encoder)
    return list(getattr(stack, "layers", ()))


# ------------------------------------------------------------------ the estimate
class PrefillClock:
    """Times the chunks and estimates the time left from them.

    A chunk of ``n`` tokens whose queries see ``c`` tokens on average costs about ``a * n + b * n * c``: the
    projections and MLP grow with the chunk, attention with the chunk times the context, so late chunks of a long
    prompt cost more than early ones. ``a`` and ``b`` are fitted (least squares, neither negative) to the chunks
    measured so far; with fewer than two chunks there is no estimate. From three chunks on the first is left out
    of the fit: it carries one-time costs (allocations, kernel choice, caches warming) that the rest do not, and
    fitted it made the estimate more than twice the time the rest took.
    """

    def __init__(self, bounds: Sequence[tuple[int, int]], cached: int = 0) -> None:
        self.bounds = list(bounds)
        self.cached = cached
        self.total = self.bounds[-1][1] if self.bounds else 0
        self.laps: list[float] = []
        self.start = self.last = time.perf_counter()

    def features(self, start: int, stop: int) -> tuple[float, float]:
        n = stop - start
        return float(n), float(n) * (self.cached + start + n / 2)

    def fit(self) -> tuple[float, float] | None:
        skip = 1 if len(self.laps) >= 3 else 0
        rows = [self.features(*b) for b in self.bounds[skip : len(self.laps)]]
        laps = self.laps[skip:]
        if len(rows) < 2:
            return None
        sxx = sum(x * x for x, _ in rows)
        syy = sum(y * y for _, y in rows)
        sxy = sum(x * y for x, y in rows)
        stx = sum(t * x for t, (x, _) in zip(laps, rows, strict=True))
        sty = sum(t * y for t, (_, y) in zip(laps, rows, strict=True))
        det = sxx * syy - sxy * sxy
        if det > 1e-9 * sxx * syy:
            a, b = (stx * syy - sty * sxy) / det, (sty * sxx - stx * sxy) / det
            if a >= 0 and b >= 0:
                return a, b
        linear = (stx / sxx, 0.0)  # one of the two is negative (noise, or equal chunks): the better one alone
        quadratic = (0.0, sty / syy)
        return min((linear, quadratic), key=lambda ab: residual(ab, rows, laps))

    def seconds_left(self) -> float | None:
        fitted = self.fit()
        if fitted is None:
            return None
        a, b = fitted
        return sum(a * x + b * y for x, y in (self.features(*bound) for bound in self.bounds[len(self.laps) :]))

    def lap(self) -> PrefillProgress:
        """Record that the next chunk is done; the progress event with the estimate for the rest."""
        now = time.perf_counter()
        self.laps.append(now - self.last)
        self.last = now
        done = self.bounds[len(self.laps) - 1][1]
        left = 0.0 if done >= self.total else self.seconds_left()
        return PrefillProgress(done=done, total=self.total, seconds=now - self.start, seconds_left=left)


def residual(ab: tuple[float, float], rows: list[tuple[float, float]], laps: list[float]) -> float:
    """Squared error of the cost model ``a * x + b * y`` against the measured laps."""
    return sum((t - ab[0] * x - ab[1] * y) ** 2 for t, (x, y) in zip(laps, rows, strict=True))


# ------------------------------------------------------------------ the loop
@dataclass(frozen=True)
class PrefillInputs:
    """The prompt as the encoder's chunks take it (besides its embeddings)."""

    attention_mask: torch.Tensor  # 2-D, over the cached tokens and the prompt
    position_ids: torch.Tensor
    cache: Any  # written chunk by chunk
    mm_token_type_ids: torch.Tensor | None
    cached: int  # tokens in the cache before the prompt


def prefill_in_chunks(
    encoder: Any,
    config: Any,
    embed: ChunkEmbedder,
    prompt: PrefillInputs,
    bounds: Sequence[tuple[int, int]],
    cancel: CancelToken | None,
) -> Generator[PrefillProgress, None, bool]:
    """Encode ``bounds`` chunk by chunk into ``cache``, yielding a :class:`PrefillProgress` after each. Returns False
    when cancelled: the flag is checked between layers and between key blocks, so what runs after a cancel is at
    most the layer (or key block) under way."""
    attention_mask, position_ids, cache = prompt.attention_mask, prompt.position_ids, prompt.cache
    mm_token_type_ids, cached = prompt.mm_token_type_ids, prompt.cached
    clock = PrefillClock(bounds, cached)
    device = position_ids.device
    with chunked_attention(config), stop_between_layers(text_layers(encoder), cancel):
        try:
            for start, stop in bounds:
                embeds = embed(start, stop)
                block_ids = None
                if mm_token_type_ids is not None:  # the mask indexes image runs by absolute position
                    block_ids = torch.nn.functional.pad(mm_token_type_ids[:, :stop], (cached, 0), value=0)
                mask_mapping = encoder.create_masks_for_generate(
                    config=config,
                    inputs_embeds=embeds,
                    attention_mask=attention_mask[:, : cached + stop],
                    cache=cache,
                    position_ids=position_ids[:, start:stop],
                    mm_token_type_ids=block_ids,
                )
                encoder(
                    inputs_embeds=embeds,
                    attention_mask=mask_mapping,
                    cache=cache,
                    position_ids=position_ids[:, start:stop],
                )
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                yield clock.lap()
                if stop < clock.total and cancel is not None and cancel.cancelled:
                    return False
        except PrefillInterrupted:
            return False
    return True
