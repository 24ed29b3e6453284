"""The engine reproduces ``model.generate()`` token for token and draft for draft.

``generate()`` is the reference sampler: its drafts are taken through a streamer's ``put_draft``, its tokens from
the returned sequences. Every case runs both on the same real ``DiffusionGemmaForBlockDiffusion`` (tiny random
config) with the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inference.runtime.engine import DiffusionEngine
from inference.runtime.events import CanvasCommitted, DenoisingStep, Finished
from inference.runtime.params import DiffusionParams
from tests.helpers import chat_inputs
from tests.model_helpers import sharpen


class DraftRecorder:
    """A streamer with ``put_draft``: what transformers hands a viewer per step."""

    def __init__(self):
        self.drafts = []

    def put(self, value):
        pass

    def put_draft(self, value):
        self.drafts.append(value.numpy().copy())

    def end(self):
        pass


def reference(model, inputs, seed, **kwargs):
    recorder = DraftRecorder()
    torch.manual_seed(seed)
    out = model.generate(**inputs, streamer=recorder, **kwargs)
    return out, recorder.drafts


def engine_run(model, processor, inputs, seed, **kwargs):
    engine = DiffusionEngine(model, processor.tokenizer)
    events = list(engine.generate(inputs, engine.default_params(seed=seed, **kwargs)))
    assert isinstance(events[-1], Finished), events[-1]
    return events


def assert_parity(model, processor, inputs, seed, **kwargs):
    out, drafts = reference(model, inputs, seed, **kwargs)
    events = engine_run(model, processor, inputs, seed, **kwargs)
    steps = [e for e in events if isinstance(e, DenoisingStep)]
    assert len(steps) == len(drafts) > 0
    for i, (ours, theirs) in enumerate(zip(steps, drafts, strict=True)):
        assert np.array_equal(ours.draft, theirs), f"draft differs at step event {i}"
    prompt_len = inputs["input_ids"].shape[1]
    np.testing.assert_array_equal(events[-1].ids, out.sequences[:, prompt_len:].numpy())
    if out.tokens_per_forward.numel() == 1:
        assert events[-1].stats.tokens_per_forward == pytest.approx(out.tokens_per_forward.item())
    return out, events


def test_text_only(tiny_model, processor):
    inputs = chat_inputs(processor, "Summarise the attached contract in three bullet points.")
    out, events = assert_parity(tiny_model, processor, inputs, seed=0)
    assert sum(isinstance(e, CanvasCommitted) for e in events) == 1


def test_image_and_text(tiny_model, processor):
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8))
    inputs = chat_inputs(processor, "What does this page say?", images=[image])
    assert "pixel_values" in inputs and (inputs["input_ids"] == processor.tokenizer.image_token_id).sum() > 0
    assert_parity(tiny_model, processor, inputs, seed=1)


def test_two_canvases_eos_in_second(tiny_model, processor):
    inputs = chat_inputs(processor, "Hello there")
    eos = torch.tensor(tiny_model.generation_config.eos_token_id)
    out, events = assert_parity(tiny_model, processor, inputs, seed=1, max_new_tokens=512)
    new = out.sequences[0, inputs["input_ids"].shape[1] :]
    first_eos = int(torch.isin(new, eos).nonzero()[0])
    assert 256 <= first_eos < 511, "the case needs end-of-sequence inside the second canvas"
    assert (new[first_eos + 1 :] == tiny_model.generation_config.pad_token_id).all()
    commits = [e for e in events if isinstance(e, CanvasCommitted)]
    assert len(commits) == 2 and commits[-1].finished.all()


def record_canvases(model):
    """What the decoder is fed each step: the accepted tokens kept, the rest re-noised."""
    seen = []
    model.model.decoder.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append((kwargs.get("decoder_input_ids", args[0] if args else None)).clone()),
        with_kwargs=True,
    )
    return seen


def test_custom_schedule(tiny_model, processor):
    """12 steps, t 1.0 to 0.2, entropy bound 1.0: the bound reaches generate() through its ``sampler_config`` (a
    plain ``entropy_bound=`` keyword is silently ignored there). A sharpened model makes the bound matter (the random
    tiny model's entropies are so high that any bound accepts one token per step); the canvases fed to the decoder
    show what each step accepted, on both sides."""
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

    model = sharpen(tiny_model, [8.0])
    canvases = record_canvases(model)
    inputs = chat_inputs(processor, "Custom schedule")
    schedule = {"max_denoising_steps": 12, "t_max": 1.0, "t_min": 0.2}
    out, drafts = reference(model, inputs, 2, sampler_config=EntropyBoundSamplerConfig(entropy_bound=1.0), **schedule)
    theirs = list(canvases)
    canvases.clear()
    events = engine_run(model, processor, inputs, 2, entropy_bound=1.0, **schedule)
    ours = list(canvases)
    steps = [e for e in events if isinstance(e, DenoisingStep)]
    assert len(steps) == len(drafts) and all(np.array_equal(a.draft, b) for a, b in zip(steps, drafts, strict=True))
    assert len(ours) == len(theirs) and all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    np.testing.assert_array_equal(events[-1].ids, out.sequences[:, inputs["input_ids"].shape[1] :].numpy())
    assert steps[0].temperature == pytest.approx(1.0) and steps[-1].temperature > 0.2
    # the bound changes what is accepted: the default 0.1 accepts fewer tokens per step, in both implementations
    canvases.clear()
    default = engine_run(model, processor, inputs, 2, **schedule)
    ours_default = list(canvases)
    canvases.clear()
    reference(model, inputs, 2, **schedule)
    assert all(torch.equal(a, b) for a, b in zip(ours_default, canvases, strict=True))
    accepted = [int(e.accepted.sum()) for e in steps]
    accepted_default = [int(e.accepted.sum()) for e in default if isinstance(e, DenoisingStep)]
    assert sum(accepted[:5]) > sum(accepted_default[:5]), (accepted, accepted_default)
    assert any(not torch.equal(a, b) for a, b in zip(ours, ours_default, strict=False))


def test_bf16(tiny_model, processor):
    model = tiny_model.to(torch.bfloat16)
    inputs = chat_inputs(processor, "Half precision")
    assert_parity(model, processor, inputs, seed=4)


def test_adaptive_stopping_fires(tiny_model, processor):
    model = sharpen(tiny_model, [12.0])
    inputs = chat_inputs(processor, "Sharp")
    _, events = assert_parity(model, processor, inputs, seed=5)
    steps = [e for e in events if isinstance(e, DenoisingStep)]
    assert len(steps) < DiffusionParams().max_denoising_steps, "adaptive stopping should end the canvas early"
    assert steps[-1].finished.all()


def test_batch_rows_stop_at_different_steps(tiny_model, processor):
    model = sharpen(tiny_model, [20.0, 7.0])
    texts = ["Row A prompt", "Row B prompt"]
    inputs = processor.apply_chat_template(
        [[{"role": "user", "content": [{"type": "text", "text": t}]}] for t in texts],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        padding=True,
    )
    _, events = assert_parity(model, processor, inputs, seed=6)
    steps = [e for e in events if isinstance(e, DenoisingStep)]
    stop_step = [next(i for i, e in enumerate(steps) if e.finished[row]) for row in range(2)]
    assert stop_step[0] < stop_step[1], stop_step
    # a row that stopped is no longer re-noised or accepted
    after = steps[stop_step[0] + 1]
    assert not after.accepted[0].any() and not after.renoised[0].any()
