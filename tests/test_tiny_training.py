"""The training script of ``tiny-trained`` (:mod:`training.train`): a step's data is a function of the
step, whoever makes it; a resumed run equals an uninterrupted one; the guide points at the tokens copied."""

from __future__ import annotations

import random
import re
import shutil

import pytest
import torch

from training.model import build_trained, build_trained_processor
from training.train import (
    DOC_NAMES,
    BatchSpec,
    PseudoWords,
    TrainSettings,
    batch_stream,
    corpus_topics,
    page_header,
    train,
    varied_topics,
)

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
        assert bool((batch.guide_targets[row, n_text + 1 :] == -1).all())


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


def test_the_varied_corpus_is_reproducible_and_splits_like_a_page_s_own_words(processor):
    """The varied corpus stands for the words documents have and the help text lacks (names repeated, made-up
    English-like words, acronyms, numbers): it is a function of its seed, it keeps the text's lines, and the BPE
    splits it into pieces about as short as an everyday page's words (the help text: about 2.8 characters a token)."""
    train_topics, _ = corpus_topics()
    topics = train_topics[:12]
    varied = varied_topics(topics, seed=5)
    assert varied == varied_topics(topics, seed=5)
    assert varied != varied_topics(topics, seed=6)
    assert [t.count("\n") for t in varied] == [t.count("\n") for t in topics]  # lines kept
    before = [w for t in topics for w in t.split()]
    after = [w for t in varied for w in t.split()]
    changed = sum(a != b for a, b in zip(before, after, strict=False)) / len(before)
    assert 0.1 < changed < 0.8

    def chars_per_token(texts):
        joined = "\n".join(texts)
        return len(joined) / len(processor.tokenizer(joined, add_special_tokens=False)["input_ids"])

    plain, hard = chars_per_token(topics), chars_per_token(varied)
    assert hard < plain - 0.4, (plain, hard)
    vocabulary = {w.lower() for t in topics for w in re.findall(r"[A-Za-z]+", t)}
    new_words = {w.lower() for t in varied for w in re.findall(r"[A-Za-z]{4,}", t)} - vocabulary
    assert len(new_words) > 500  # words the help text never has
    # the trigram and bigram word models draw the same words from the same seed, and the bigram one shorter pieces
    words = PseudoWords(topics)
    assert [words.word(random.Random(3)) for _ in range(2)] == [words.word(random.Random(3)) for _ in range(2)]
    rng = random.Random(0)
    tri = [words.word(rng) for _ in range(300)]
    bi = [words.word(rng, order=2) for _ in range(300)]
    assert chars_per_token([" ".join(bi)]) < chars_per_token([" ".join(tri)])


def test_the_varied_share_picks_the_corpus_a_text_comes_from(processor):
    """``varied`` 0 (the earlier stages' settings) draws help text only, the same batch for the same step; a share of
    1 draws every text from the varied corpus, whose words the help text does not have."""
    spec = BatchSpec(TrainSettings(batch=3), 1024, 256, (0.4, 0.8))
    plain = next(batch_stream(processor, spec, range(11, 12), workers=0))
    again = next(batch_stream(processor, spec, range(11, 12), workers=0))
    assert torch.equal(plain.clean, again.clean)
    vocabulary = {w for t in corpus_topics()[0] for w in re.findall(r"[A-Za-z]+", t)}

    def unknown_words(batch):
        texts = processor.tokenizer.batch_decode(batch.clean, skip_special_tokens=True)
        return {w for t in texts for w in re.findall(r"[A-Za-z]+", t)} - vocabulary

    varied_spec = BatchSpec(TrainSettings(batch=3, varied=1.0), 1024, 256, (0.4, 0.8))
    varied = next(batch_stream(processor, varied_spec, range(11, 12), workers=0))
    assert not unknown_words(plain) and unknown_words(varied)


def test_page_headers_start_the_hint_at_many_token_offsets(processor):
    """The prompt's ``[name, page N]`` line (:func:`page_header`): made-up file names and pages 1-999, so that the
    hint starts at many token offsets. A model trained on seven names and pages 1-40 found the hint by its position
    and copied pages 1-3 (one token shorter) at 0.74 character accuracy, pages 4-33 at 1.0."""
    pseudo = PseudoWords(corpus_topics()[0])
    draws = [page_header(random.Random(seed), pseudo) for seed in range(300)]
    assert draws[:20] == [page_header(random.Random(seed), pseudo) for seed in range(20)]
    pages = [page for _, page in draws]
    assert min(pages) == 1 and max(pages) > 500
    assert sum(page <= 3 for page in pages) >= 30  # the pages users parse most
    names = {name for name, _ in draws}
    assert len(names) > 150 and all(re.fullmatch(r"[^\]\n/]+\.[A-Za-z]+", name) for name in names)
    lengths = {
        len(processor.tokenizer(f"[{name}, page {page}]\n", add_special_tokens=False)["input_ids"])
        for name, page in draws
    }
    assert len(lengths) >= 10

    def header(batch):
        prompt = processor.tokenizer.decode(batch.inputs["input_ids"][0])
        name, page = re.search(r"\[([^\]\n]+), page (\d+)\]\n", prompt).groups()
        return name, int(page)

    # without the setting (the earlier stages) the seven names and pages 1-40, as they were drawn
    fixed = [
        header(
            next(
                batch_stream(
                    processor,
                    BatchSpec(TrainSettings(batch=2), 1024, 256, (0.4, 0.8)),
                    range(step, step + 1),
                    workers=0,
                )
            )
        )
        for step in range(6)
    ]
    assert all(name in DOC_NAMES and 1 <= page <= 40 for name, page in fixed)
    spec = BatchSpec(TrainSettings(batch=2, headers=True), 1024, 256, (0.4, 0.8))
    varied = [header(next(batch_stream(processor, spec, range(step, step + 1), workers=0))) for step in range(6)]
    assert any(name not in DOC_NAMES for name, _ in varied)


@pytest.mark.parametrize("record_path", ["resources/tiny-trained/training.json", "training/tiny-rerun/training.json"])
def test_the_recipe_is_the_schedule_the_shipped_weights_record(record_path):
    """``python -m training.recipe`` reruns the stages that ``resources/tiny-trained/training.json`` records
    (each stage's record holds the one before): the same settings, stopped at the same steps; and the record of the
    from-scratch rerun (``training/tiny-rerun``) is that schedule."""
    import json
    from dataclasses import asdict
    from pathlib import Path

    from training.recipe import STAGES
    from training.train import parser, settings_of

    record = json.loads((Path(__file__).parents[1] / record_path).read_text())
    chain = []
    while record:
        chain.insert(0, record)
        record = record["initialised_from"]
    assert len(chain) == len(STAGES)
    for stage, shipped in zip(STAGES, chain, strict=True):
        ours = asdict(settings_of(parser().parse_args(["--out", "x", *stage.argv()])))
        recorded = {**asdict(TrainSettings()), **shipped["settings"]}  # a setting added later: its default
        assert {k: v for k, v in ours.items() if k != "init"} == {k: v for k, v in recorded.items() if k != "init"}, (
            stage.name
        )
        assert stage.end == shipped["stopped_after"], stage.name
    assert chain[0]["settings"]["init"] == ""  # the first stage starts from fresh weights


def test_the_recipe_runs_its_stages_in_order_and_never_reruns_a_finished_one(tmp_path):
    import json

    from training.recipe import Stage, run

    stages = (
        Stage("one", 2, {"steps": 50, "batch": 2, "stop-after": 2, "eval": 0}),
        Stage("two", 3, {"steps": 50, "batch": 2, "seed": 5, "stop-after": 3, "eval": 0}),
    )
    said: list[str] = []
    assert not run(tmp_path, minutes=0, stages=stages, log=said.append)  # no time: nothing runs, it says so
    assert not (tmp_path / "one").exists() and "time is up" in said[-1]
    assert run(tmp_path, stages=stages, log=lambda *_: None)
    one = json.loads((tmp_path / "one" / "training.json").read_text())
    two = json.loads((tmp_path / "two" / "training.json").read_text())
    assert (one["stopped_after"], two["stopped_after"]) == (2, 3)
    assert two["settings"]["init"] == str(tmp_path / "one") and two["initialised_from"] == one
    written = (tmp_path / "two" / "model.safetensors").stat().st_mtime_ns
    said.clear()
    assert run(tmp_path, stages=stages, log=said.append)
    assert len(said) == 1 and "finished" in said[0]  # no stage started again
    assert (tmp_path / "two" / "model.safetensors").stat().st_mtime_ns == written
    shutil.rmtree(tmp_path / "one")  # carried elsewhere with only the last finished stage: still nothing reruns
    said.clear()
    assert run(tmp_path, stages=stages, log=said.append)
    assert len(said) == 1 and "finished" in said[0] and not (tmp_path / "one").exists()


def test_sigterm_saves_the_state_and_the_same_command_goes_on(tmp_path):
    """A stopped session or a ``kill`` ends training at the step in progress with the state saved; the script says
    where it stopped and exits cleanly, and the same command resumes (resumption equals an uninterrupted run:
    ``test_a_resumed_run_equals_an_uninterrupted_one``)."""
    import os
    import signal
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "training.train",
        "--out",
        str(tmp_path / "out"),
        "--state",
        str(tmp_path / "state"),
        "--batch",
        "1",
        "--steps",
        "5000",
        "--eval",
        "0",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith('{"step": 100,'):
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(lines) + rest
    saved = torch.load(tmp_path / "state" / "state.pt", weights_only=False)
    assert 100 <= saved["step"] < 5000
    assert f"stopped at step {saved['step']} of 5000" in rest
    assert (tmp_path / "out" / "model.safetensors").is_file()
