"""Canvas templates in the engine: pins, allowed-token sets, choices, templates over several canvases, re-opening.

Two references: ``model.generate()`` itself for a one-canvas template without choices (the allowed sets as a
logits processor, the pinned starting canvas as ``decoder_input_ids``), and a loop written here from the model's
forward and transformers' own sampler, temperature and stopping classes for everything else.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import DynamicCache
from transformers.models.diffusion_gemma.generation_diffusion_gemma import (
    EntropyBoundSampler,
    EntropyBoundSamplerConfig,
    LinearTemperatureScheduleLogitsProcessor,
    StableAndConfidentStoppingCriteria,
)

from inference.runtime.engine import DiffusionEngine, Session
from inference.runtime.events import CanvasCommitted, DenoisingStep, Failed, Finished
from inference.runtime.params import DiffusionParams
from inference.runtime.template import FREE, CanvasTemplate, Choice
from tests.helpers import chat_inputs

STEPS = 12  # denoising steps per canvas: enough for pins, sets and choices to show, short enough for the CPU
PARAMS = DiffusionParams(max_denoising_steps=STEPS)


def ids_of(processor, text: str) -> list[int]:
    return processor.tokenizer(text, add_special_tokens=False)["input_ids"]


def make_template(processor, length: int, with_choice: bool = True) -> CanvasTemplate:
    """Scaffold pins, a digit slot, a letter slot, a two-label choice, five free positions, letters again; the
    closing brace and end-of-sequence pinned last."""
    tok = processor.tokenizer
    digits = ids_of(processor, "0123456789")
    letters = ids_of(processor, "abcdefghijklmnopqrstuvwxyz ")
    pins = np.full(length, FREE)
    sets = np.full(length, FREE)
    scaffold = ids_of(processor, '{"n": ')
    pins[: len(scaffold)] = scaffold
    at = len(scaffold)
    sets[at : at + 4] = 0  # digits
    at += 4
    pins[at : at + 3] = ids_of(processor, ', "')
    at += 3
    sets[at : at + 20] = 1  # letters
    at += 20
    choices = ()
    if with_choice:
        labels = (tuple(ids_of(processor, "true ")), tuple(ids_of(processor, "false")))
        sets[at : at + 5] = 2
        choices = (Choice(at, labels),)
        at += 5
    # five free positions (any token), letters up to the far end, then the closing brace and end-of-sequence
    sets[at + 5 : length - 2] = 1
    pins[length - 2] = ids_of(processor, "}")[0]
    pins[length - 1] = tok.eos_token_id
    label_tokens = sorted({t for label in labels for t in label}) if with_choice else [0]
    return CanvasTemplate(pins=pins, sets=sets, token_sets=(digits, letters, label_tokens), choices=choices)


def engine_events(model, processor, inputs, template, seed, session=None):
    engine = DiffusionEngine(model, processor.tokenizer)
    params = engine.default_params(seed=seed, max_denoising_steps=STEPS)
    return list(engine.generate(inputs, params, session=session, template=template))


def allowed_mask(template: CanvasTemplate, start: int, canvas_length: int, vocab: int) -> torch.Tensor:
    """The template's allowed tokens per position of one canvas, built from its arrays position by position."""
    allowed = torch.ones(canvas_length, vocab, dtype=torch.bool)
    for i in range(canvas_length):
        j = start + i
        if j >= template.length:
            break
        if template.pins[j] != FREE:
            allowed[i] = False
            allowed[i, int(template.pins[j])] = True
        elif template.sets[j] != FREE:
            allowed[i] = False
            allowed[i, list(template.token_sets[template.sets[j]])] = True
    return allowed


@torch.inference_mode()
def reference_loop(model, inputs, template: CanvasTemplate, seed: int, params: DiffusionParams) -> np.ndarray:
    """The templated run written from the model's forward: encode, denoise each canvas with transformers' sampler,
    temperature schedule and stopping criteria, choices scored as wholes at commit, end-of-sequence ends the run."""
    torch.manual_seed(seed)
    config, L = model.config, model.config.canvas_length
    vocab = config.text_config.vocab_size
    eos, pad = model.generation_config.eos_token_id, model.generation_config.pad_token_id
    eos = torch.tensor([eos] if isinstance(eos, int) else eos)
    sampler = EntropyBoundSampler(EntropyBoundSamplerConfig(params.entropy_bound), L, vocab, params.max_denoising_steps)
    schedule = LinearTemperatureScheduleLogitsProcessor(params.t_min, params.t_max, params.max_denoising_steps)
    stopping = StableAndConfidentStoppingCriteria(params.stability_threshold, params.confidence_threshold)
    ids = inputs["input_ids"]
    cache = DynamicCache(config=config.get_text_config(decoder=True))
    mask2d = torch.ones_like(ids, dtype=torch.bool)
    new = ids
    out = []
    for c in range(max(1, -(-template.length // L))):
        total = mask2d.shape[1]
        pos = torch.arange(total - new.shape[1], total, dtype=torch.int32)[None]
        dummy = torch.empty((1, new.shape[1], 0), dtype=model.dtype)
        enc_mask = model.model.encoder.create_masks_for_generate(
            config=config, inputs_embeds=dummy, attention_mask=mask2d, cache=cache, position_ids=pos
        )
        cache = model.model.encoder(input_ids=new, attention_mask=enc_mask, cache=cache, position_ids=pos).cache
        allowed = allowed_mask(template, c * L, L, vocab)
        pinned = torch.tensor(
            [template.pins[j] != FREE if j < template.length else False for j in range(c * L, c * L + L)]
        )
        pins = torch.tensor(
            [max(int(template.pins[j]), 0) if j < template.length else 0 for j in range(c * L, c * L + L)]
        )
        dec_pos = torch.arange(total, total + L, dtype=torch.int32)[None]
        if pinned.all():
            canvas = pins[None]
        else:
            canvas = torch.where(pinned, pins, sampler.initialize_canvas(1, torch.device("cpu")))
            dec_mask = model.model.decoder.create_diffusion_decoder_attention_mask(
                config=config,
                inputs_embeds=canvas.unsqueeze(-1),
                cache=cache,
                decoder_attention_mask=torch.nn.functional.pad(mask2d, (0, L), value=True),
            )
            stopping.argmax_canvas_history = None
            conditioning, done = None, torch.zeros(1, dtype=torch.bool)
            for step in range(params.max_denoising_steps, 0, -1):
                logits = model(
                    decoder_input_ids=canvas,
                    self_conditioning_logits=conditioning,
                    decoder_attention_mask=dec_mask,
                    cache=cache,
                    decoder_position_ids=dec_pos,
                ).logits
                scaled = schedule(None, logits, torch.tensor(step, dtype=torch.int32))
                scaled = scaled.masked_fill(~allowed[None], float("-inf"))
                sampled = torch.multinomial(torch.softmax(scaled, -1, dtype=torch.float32).view(-1, vocab), 1).view(
                    1, L
                )
                argmax = torch.argmax(scaled, dim=-1)
                canvas = sampler.renoise_canvas(sampler.accept_canvas(canvas, sampled, scaled, step), step)
                done |= stopping(argmax, scaled)
                conditioning = scaled
                if done.all():
                    break
            canvas = argmax.clone()
            logprobs = torch.log_softmax(conditioning.float(), -1)[0]
            for choice in template.choices:
                if not c * L <= choice.start < c * L + L:
                    continue
                at = choice.start - c * L
                scores = [sum(float(logprobs[at + k, t]) for k, t in enumerate(label)) for label in choice.labels]
                canvas[0, at : at + choice.width] = torch.tensor(choice.labels[int(np.argmax(scores))])
        out.append(canvas)
        new = canvas
        mask2d = torch.nn.functional.pad(mask2d, (0, L), value=True)
        if torch.isin(canvas, eos).any():
            break
    result = torch.cat(out, dim=-1)[0]
    hit = int(torch.isin(result, eos).nonzero()[0])
    result[hit + 1 :] = pad
    return result.numpy()


@pytest.mark.slow
def test_template_over_two_canvases_equals_reference_loop(tiny_model, processor):
    inputs = chat_inputs(processor, "Fill the form")
    template = make_template(processor, 300)
    events = engine_events(tiny_model, processor, inputs, template, seed=3)
    assert isinstance(events[-1], Finished), events[-1]
    ours = events[-1].ids[0]
    theirs = reference_loop(tiny_model, inputs, template, 3, PARAMS)
    np.testing.assert_array_equal(ours[: len(theirs)], theirs)
    commits = [e for e in events if isinstance(e, CanvasCommitted)]
    assert len(commits) == 2, "a 300-token template continues on the second canvas"
    # pins hold in the result up to the first end-of-sequence (a free position may hold one: the rest is padding)
    end = int(np.flatnonzero(np.isin(ours, processor.tokenizer.eos_token_id))[0]) + 1
    pinned = template.pinned.copy()
    pinned[end:] = False
    assert end > 256, "this seed puts no end-of-sequence in the free positions"
    np.testing.assert_array_equal(ours[:300][pinned], template.pins[pinned])
    for i in np.flatnonzero(template.sets[:end] >= 0):
        assert ours[i] in template.token_sets[template.sets[i]], i
    label = tuple(ours[template.choices[0].start : template.choices[0].start + 5])
    assert label in template.choices[0].labels, "a choice commits one whole label"
    probs = commits[0].choices[0]
    assert len(probs) == 2 and sum(probs) == pytest.approx(1.0) and all(0 <= p <= 1 for p in probs)
    assert commits[0].logprobs is not None and (commits[0].logprobs[0][pinned[:256]] == 0).all()


def test_pins_unchanged_at_every_step(tiny_model, processor):
    inputs = chat_inputs(processor, "Fill the form")
    template = make_template(processor, 300)
    events = engine_events(tiny_model, processor, inputs, template, seed=5)
    steps = [e for e in events if isinstance(e, DenoisingStep)]
    assert steps
    for e in steps:
        part = slice(e.canvas * 256, min(e.canvas * 256 + 256, 300))
        n = part.stop - part.start
        pinned = template.pinned[part]
        np.testing.assert_array_equal(e.draft[0, :n][pinned], template.pins[part][pinned])
        assert e.accepted[0, :n][pinned].all() and not e.renoised[0, :n][pinned].any()
        assert (e.entropy[0, :n][pinned] == 0).all()
        for i in np.flatnonzero(template.sets[part] >= 0):
            assert e.draft[0, i] in template.token_sets[template.sets[part][i]]


def test_one_canvas_template_equals_generate_with_masked_logits(tiny_model, processor):
    """generate() as the reference: allowed sets as a logits processor, the pins as its starting canvas."""
    from transformers import LogitsProcessor, LogitsProcessorList

    inputs = chat_inputs(processor, "One canvas")
    template = make_template(processor, 256, with_choice=False)
    allowed = allowed_mask(template, 0, 256, tiny_model.config.text_config.vocab_size)

    class Mask(LogitsProcessor):
        def __call__(self, input_ids, scores, cur_step):
            return scores.masked_fill(~allowed[None], float("-inf"))

    # generate() draws a random canvas even when given one: draw it the same way, pin it, and draw again
    torch.manual_seed(7)
    drawn = torch.randint(0, tiny_model.config.text_config.vocab_size, (1, 256))
    start = torch.where(torch.tensor(template.pinned), torch.tensor(template.pins), drawn)
    torch.manual_seed(7)
    out = tiny_model.generate(
        **inputs, decoder_input_ids=start, logits_processor=LogitsProcessorList([Mask()]), max_denoising_steps=STEPS
    )
    events = engine_events(tiny_model, processor, inputs, template, seed=7)
    np.testing.assert_array_equal(events[-1].ids, out.sequences[:, inputs["input_ids"].shape[1] :].numpy())


@pytest.mark.slow
def test_reopened_span_is_denoised_afresh_and_the_rest_kept(tiny_model, processor):
    inputs = chat_inputs(processor, "Fill the form")
    template = make_template(processor, 512)
    session = Session(keep_prompt=True)
    first = engine_events(tiny_model, processor, inputs, template, seed=11, session=session)[-1]
    assert isinstance(first, Finished) and session.prompt_cache is not None
    ids = first.ids[0, :512]
    span = np.zeros(512, dtype=bool)
    span[9 : 9 + 20] = True  # the string slot
    reopened = template.reopened(ids, span)
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    prompt_cached = session.prompt_cache.get_seq_length()
    redo = list(engine.reopen(session, reopened, engine.default_params(seed=12, max_denoising_steps=STEPS)))
    assert isinstance(redo[-1], Finished), redo[-1]
    again = redo[-1].ids[0, :512]
    np.testing.assert_array_equal(again[~span], ids[~span])
    assert (again[span] != ids[span]).any(), "the span was denoised again"
    steps = [e for e in redo if isinstance(e, DenoisingStep)]
    assert steps[0].canvas == 0 and steps[0].renoised[0, 9:29].any(), "the span starts from noise"
    assert all(e.canvas == 0 for e in steps), "the second canvas, all pinned, takes no step"
    assert session.prompt_cache.get_seq_length() == prompt_cached, "the prompt cache is kept as it was"
    # the re-opened run is the reference loop over the re-opened template against the same prompt
    theirs = reference_loop(tiny_model, inputs, reopened, 12, PARAMS)
    np.testing.assert_array_equal(again, theirs[:512])


def test_reopen_without_a_kept_prompt_fails_clearly(tiny_model, processor):
    engine = DiffusionEngine(tiny_model, processor.tokenizer)
    template = make_template(processor, 40, with_choice=False)
    events = list(engine.reopen(Session(), template))
    assert isinstance(events[-1], Failed) and "keep_prompt" in events[-1].message


def test_template_checks_itself_when_built():
    from inference.errors import ConfigError

    with pytest.raises(ConfigError, match="same length"):
        CanvasTemplate(pins=np.full(4, FREE), sets=np.full(3, FREE))
    with pytest.raises(ConfigError, match="does not hold"):
        CanvasTemplate(pins=np.full(2, FREE), sets=np.array([0, 1]), token_sets=([5],))
    with pytest.raises(ConfigError, match="empty"):
        CanvasTemplate(pins=np.full(1, FREE), sets=np.array([0]), token_sets=([],))
    with pytest.raises(ConfigError, match="outside"):
        CanvasTemplate(pins=np.full(2, FREE), sets=np.full(2, FREE), choices=(Choice(1, ((1, 2), (3, 4))),))
    with pytest.raises(ConfigError, match="one same width"):
        CanvasTemplate(pins=np.full(4, FREE), sets=np.full(4, FREE), choices=(Choice(0, ((1, 2), (3,))),))
    template = CanvasTemplate(pins=np.array([7, FREE, FREE]), sets=np.array([FREE, 0, 0]), token_sets=([4, 5],))
    assert not template.pins.flags.writeable
    with pytest.raises(ConfigError, match="committed template tokens"):
        template.reopened(np.array([7, 4]), np.array([False, True]))
    reopened = template.reopened(np.array([7, 4, 5]), np.array([True, False, True]))
    assert reopened.pins.tolist() == [7, 4, FREE], "the span opens only positions the template left free"
