"""The training script of ``tiny-trained`` (:mod:`inference.tiny_training`): a step's data is a function of the
step, whoever makes it; a resumed run equals an uninterrupted one; the guide points at the tokens copied."""

from __future__ import annotations

import pytest
import torch

from inference.tiny import build_trained, build_trained_processor
from inference.tiny_training import BatchSpec, TrainSettings, batch_stream, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def processor():
    return build_trained_processor()


def test_batches_made_by_worker_processes_equal_those_made_inline(processor):
    spec = BatchSpec(TrainSettings(batch=3), 1024, 256, (0.4, 0.8))
    inline = list(batch_stream(processor, spec, range(40, 43), workers=0))
    ahead = list(batch_stream(processor, spec, range(40, 43), workers=1))
    assert [b.step for b in ahead] == [40, 41, 42]
    for a, b in zip(inline, ahead, strict=True):
        assert torch.equal(a.clean, b.clean) and torch.equal(a.noisy, b.noisy)
        assert torch.equal(a.guide_targets, b.guide_targets)
        assert a.inputs.keys() == b.inputs.keys()
        assert all(torch.equal(a.inputs[k], b.inputs[k]) for k in a.inputs)
        assert (a.temperature is None) == (b.temperature is None)
        if a.temperature is not None:
            assert torch.equal(a.temperature, b.temperature)
    # the noise is real: some positions differ from the clean canvas, and one image serves the batch
    assert any(bool((b.noisy != b.clean).any()) for b in inline)
    assert all(b.inputs["pixel_values"].shape[0] == 1 for b in inline)


def test_the_guide_points_at_the_hint_tokens_in_the_prompt(processor):
    spec = BatchSpec(TrainSettings(batch=2), 1024, 256, (0.4, 0.8))
    batch = next(batch_stream(processor, spec, range(7, 8), workers=0))
    pad = processor.tokenizer.pad_token_id
    ids = batch.inputs["input_ids"]
    for row in range(batch.clean.shape[0]):
        n_text = int((batch.clean[row] != pad).sum()) - 1  # the text; then its end of turn
        positions = batch.guide_targets[row, :n_text]
        assert bool((positions >= 0).all())
        assert torch.equal(ids[row, positions], batch.clean[row, :n_text])
        assert int(batch.guide_targets[row, n_text]) == int(positions[-1]) + 1  # end of turn: the token after
        assert bool((batch.guide_targets[row, n_text + 1:] == -1).all())


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    settings = TrainSettings(batch=2, steps=100)

    def weights(model):
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    model, proc = build_trained(train=True)
    _, done, _, _ = train(model, proc, settings, log=lambda *_: None, stop_after=2)
    straight = weights(model)
    assert done == 2

    model, proc = build_trained(train=True)
    train(model, proc, settings, log=lambda *_: None, state_dir=tmp_path, stop_after=1)
    model, proc = build_trained(train=True)  # a new process would start from fresh weights too
    _, done, _, _ = train(model, proc, settings, log=lambda *_: None, state_dir=tmp_path, stop_after=2)
    assert done == 2
    resumed = weights(model)
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    untrained, _ = build_trained()
    assert any(not torch.equal(straight[k], v) for k, v in untrained.state_dict().items())  # it did train
