"""The sampler pieces, on hand-made logits, against transformers' own DiffusionGemma classes."""

from __future__ import annotations

import pytest
import torch
from transformers.models.diffusion_gemma.generation_diffusion_gemma import (
    EntropyBoundSampler,
    EntropyBoundSamplerConfig,
    LinearTemperatureScheduleLogitsProcessor,
    StableAndConfidentStoppingCriteria,
)

import inference.runtime.sampling as sampling


def logits(seed=0, shape=(2, 16, 50), scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * scale


@pytest.mark.parametrize("steps,t_min,t_max", [(48, 0.4, 0.8), (12, 0.2, 1.0), (7, 0.0, 0.3)])
def test_temperature_matches_processor_bitwise(steps, t_min, t_max):
    proc = LinearTemperatureScheduleLogitsProcessor(t_min=t_min, t_max=t_max, max_denoising_steps=steps)
    x = logits()
    for step in range(steps, 0, -1):
        step_t = torch.tensor(step, dtype=torch.int32)
        ours = x / sampling.temperature_at(step_t, t_min, t_max, steps)
        assert torch.equal(ours, proc(None, x, cur_step=step_t))


def test_python_float_temperature_differs_somewhere():
    # Why the schedule takes an int32 tensor: a Python float differs from generate() at some steps.
    diffs = [
        step
        for step in range(1, 49)
        if float(sampling.temperature_at(torch.tensor(step, dtype=torch.int32), 0.4, 0.8, 48))
        != 0.4 + (0.8 - 0.4) * (step / 48)
    ]
    assert diffs


def test_entropy_equals_categorical_bitwise():
    for seed in range(3):
        x = logits(seed, scale=5.0)
        x[0, 0, :] = -1e30  # extreme values take the clamp path
        x[0, 0, 3] = 10.0
        expected = torch.distributions.Categorical(logits=x).entropy()
        assert torch.equal(sampling.token_entropy(x), expected)


@pytest.mark.parametrize("bound", [0.1, 1.0, 5.0])
def test_acceptance_matches_entropy_bound_sampler(bound):
    x = logits(1, scale=4.0)
    sampler = EntropyBoundSampler(
        EntropyBoundSamplerConfig(entropy_bound=bound), canvas_length=16, vocab_size=50, max_denoising_steps=10
    )
    current = torch.randint(0, 50, (2, 16))
    denoised = torch.randint(0, 50, (2, 16))
    accepted_canvas = sampler.accept_canvas(current, denoised, x, cur_step=3)
    mask = sampling.entropy_bound_accept(sampling.token_entropy(x), bound)
    assert torch.equal(mask, sampler.accepted_token_mask)
    assert torch.equal(torch.where(mask, denoised, current), accepted_canvas)
    assert mask.any(dim=-1).all(), "the lowest-entropy position is always accepted"


def test_acceptance_rule_by_hand():
    entropy = torch.tensor([[0.5, 0.01, 0.02, 3.0, 0.05]])
    # sorted: .01 .02 .05 .5 3.0 ; sum - max: 0, .01, .03, .08, .58  -> first four accepted at bound 0.1
    assert sampling.entropy_bound_accept(entropy, 0.1).tolist() == [[True, True, True, False, True]]


def test_stopping_matches_stable_and_confident():
    reference = StableAndConfidentStoppingCriteria(stability_threshold=2, confidence_threshold=0.5)
    ours = sampling.StabilityTracker(2)
    sharp = logits(2, scale=40.0)
    canvases = [torch.randint(0, 50, (2, 16)) for _ in range(2)]
    sequence = [canvases[0], canvases[1], canvases[1], canvases[1], canvases[0]]
    for i, canvas in enumerate(sequence):
        x = sharp if i % 2 else logits(i)
        expected = reference(canvas, x)
        got = ours.update(canvas) & sampling.confident(sampling.token_entropy(x), 0.5)
        assert torch.equal(got, expected), i
    ours.reset()
    assert ours.history is None


def test_stability_zero_is_always_stable():
    assert sampling.StabilityTracker(0).update(torch.zeros(3, 4, dtype=torch.long)).all()


def test_per_row_draws_are_each_rows_own_multinomial_and_randint():
    """Rows sampled together (one transform, one argmax) get the tokens of ``torch.multinomial`` and ``randint`` on
    each row's own generator, in the same order, leaving each generator where those calls leave it; a row that does
    not draw keeps its generator untouched; multinomial's checks hold."""
    probs = torch.softmax(logits(3, (3, 16, 50)), dim=-1)
    probs[:, :, :7] = 0  # masked tokens, as a template's allowed sets leave them
    rows = [True, False, True]
    seeds = (1, 2, 3)
    assert sampling._vector_exponential_matches()  # the vectorised draw is the path under test on this torch
    noise = sampling.Noise([torch.Generator().manual_seed(s) for s in seeds])
    plain = [torch.Generator().manual_seed(s) for s in seeds]
    for _ in range(3):  # steps: each step's sample then canvas
        sampled = noise.sample(probs, rows)
        canvas = noise.canvas(3, 16, 50, torch.device("cpu"), rows)
        for i in (0, 2):
            assert torch.equal(sampled[i], torch.multinomial(probs[i], 1, generator=plain[i]).view(-1))
            assert torch.equal(canvas[i], torch.randint(0, 50, (1, 16), generator=plain[i])[0])
        assert not sampled[1].any() and not canvas[1].any()
    for ours, theirs in zip(noise.generators, plain, strict=True):
        assert torch.equal(ours.get_state(), theirs.get_state())
    with pytest.raises(RuntimeError, match="nan"):
        noise.sample(torch.full_like(probs, float("nan")), rows)
    with pytest.raises(RuntimeError, match="sum of probabilities"):
        noise.sample(torch.zeros_like(probs), rows)


def test_global_generator_sample_is_torch_multinomials():
    """Without per-row generators the batch draws from torch's global generator exactly as ``torch.multinomial``
    does, and leaves it in the same state."""
    probs = torch.softmax(logits(4, (2, 64, 300)), dim=-1)
    torch.manual_seed(11)
    expected = torch.multinomial(probs.view(-1, 300), 1).view(2, 64)
    after = torch.rand(3)
    torch.manual_seed(11)
    assert torch.equal(sampling.Noise().sample(probs), expected)
    assert torch.equal(torch.rand(3), after)


@pytest.mark.parametrize("chunk", [1 << 20, 50 * 5])  # the whole canvas at once, or five positions at a time
@pytest.mark.parametrize("seeded", [False, True])
def test_sampling_only_where_accepted_gives_the_full_samples_tokens_there(monkeypatch, chunk, seeded):
    """The sample computed only at the accepted positions equals the full multinomial sample there, and leaves every
    generator where the full draw leaves it, with per-row generators (a row that does not draw) and the global one;
    the noise drawn in chunks of positions is the same noise."""
    monkeypatch.setattr(sampling, "_DRAW_CHUNK", chunk)
    scaled = logits(5, (3, 16, 50)) / 0.6
    scaled[:, :, :7] = float("-inf")  # masked tokens, as a template's allowed sets leave them
    positions = torch.rand(3, 16, generator=torch.Generator().manual_seed(9)) < 0.3
    rows = [True, False, True]

    def noise():
        return sampling.Noise([torch.Generator().manual_seed(s) for s in (1, 2, 3)] if seeded else None)

    full, restricted = noise(), noise()
    for _ in range(2):
        torch.manual_seed(4)
        expected = full.sample(torch.softmax(scaled, -1, dtype=torch.float32), rows)
        after = torch.rand(2)
        torch.manual_seed(4)
        got = restricted.sample_at(scaled, positions, rows)
        assert torch.equal(torch.rand(2), after)
        drawn = positions & torch.tensor(rows)[:, None]
        assert drawn.sum() > 5 and torch.equal(got[drawn], expected[drawn])
        assert not got[~drawn].any()
    if seeded:
        for ours, theirs in zip(restricted.generators, full.generators, strict=True):
            assert torch.equal(ours.get_state(), theirs.get_state())
    bad = scaled.clone()
    bad[2, 3, 9] = float("nan")
    with pytest.raises(RuntimeError, match="nan"):
        restricted.sample_at(bad, positions, rows)
