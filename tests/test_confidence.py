"""Measured per-field confidence (inference.tasks.confidence): the combination, its cap for ungrounded values, the
trajectory statistics and the measures the benchmark reports, on hand-made inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from inference.tasks.confidence import (
    REDO_BELOW,
    UNGROUNDED_CAP,
    FieldStats,
    Trajectory,
    auroc,
    combine,
    ece,
    fit,
    value_grounded,
)

SURE = {"token": 1.0, "entropy_mean": 0.0, "entropy_last": 0.0, "settled": 0.0, "agree": 1.0}


def test_an_ungrounded_value_is_shown_below_the_threshold_however_sure_the_canvas_was():
    grounded = combine(FieldStats(**SURE, grounded=True, empty=False))
    ungrounded = combine(FieldStats(**SURE, grounded=False, empty=False))
    empty = combine(FieldStats(**SURE, grounded=True, empty=True))
    assert ungrounded <= UNGROUNDED_CAP < REDO_BELOW
    assert empty <= UNGROUNDED_CAP
    assert grounded > REDO_BELOW


def test_disagreement_on_a_re_denoise_lowers_the_confidence():
    agreed = combine(FieldStats(**SURE, grounded=True, empty=False))
    disagreed = combine(FieldStats(**{**SURE, "agree": 0.0}, grounded=True, empty=False))
    assert disagreed < agreed


def test_value_grounding_needs_the_value_itself_on_the_cited_page():
    found = {"grounded": True}
    assert value_grounded("INV-2231", found, "Invoice number:  inv-2231\n\nTotal: 3")
    assert not value_grounded("INV-9999", found, "Invoice number: INV-2231")
    assert not value_grounded("INV-2231", {"grounded": False}, "Invoice number: INV-2231")
    assert not value_grounded("", found, "anything")
    assert value_grounded(True, found, "a choice rests on its quote")


def test_auroc_and_ece_on_hand_made_scores():
    assert auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert np.isnan(auroc([0.5], [True]))
    assert ece([1.0, 1.0, 0.0, 0.0], [True, True, False, False]) == 0.0
    assert ece([1.0, 1.0], [False, False]) == pytest.approx(1.0)
    assert ece([0.75] * 4, [True, True, True, False]) == pytest.approx(0.0)


def test_fit_learns_which_feature_separates_right_from_wrong():
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for _ in range(400):
        right = bool(rng.random() < 0.6)
        stats = FieldStats(
            token=float(rng.uniform(0.5, 1.0)),
            entropy_mean=float(rng.uniform(0, 1)),
            entropy_last=float(rng.uniform(0, 1)),
            settled=float(rng.uniform(0, 1)),
            agree=1.0 if (right or rng.random() < 0.1) else 0.0,
            grounded=right or bool(rng.random() < 0.2),
            empty=False,
        )
        rows.append(stats.vector())
        labels.append(right)
    coefficients = fit(rows, labels)
    assert coefficients["agree"] > 1.0 and coefficients["grounded"] > 1.0
    scores = [combine(FieldStats(*_unvector(r)), coefficients) for r in rows]
    assert auroc(scores, labels) > 0.9


def _unvector(row):
    token = 1 / (1 + np.exp(-row[0]))
    return [float(token), row[1], row[2], row[3], row[4], bool(row[5]), bool(row[6])]


def test_trajectory_records_when_each_position_settled_and_its_entropy():
    def step(draft, entropy):
        return SimpleNamespace(
            canvas=0, draft=np.array([draft]), entropy=np.array([entropy], dtype=np.float16), accepted=None
        )

    steps = [
        step([5, 7, 9, 1], [2.0, 1.0, 0.5, 0.0]),
        step([5, 8, 9, 1], [1.0, 1.0, 0.5, 0.0]),
        step([5, 8, 3, 1], [0.0, 0.0, 0.0, 0.0]),
        step([5, 8, 3, 1], [0.0, 0.0, 0.0, 0.0]),
    ]
    t = Trajectory.of(steps, length=4, canvas_length=4)
    np.testing.assert_allclose(t.settled, [0.0, 0.25, 0.5, 0.0])
    np.testing.assert_allclose(t.entropy_mean, [0.75, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(t.entropy_last, [0, 0, 0, 0])
    redone = Trajectory(np.ones(4), np.ones(4), np.ones(4))
    merged = t.merged(redone, np.array([False, True, False, False]))
    np.testing.assert_allclose(merged.settled, [0.0, 1.0, 0.5, 0.0])


def test_the_model_s_ungrounded_fields_show_under_the_threshold_and_are_redone(tmp_path):
    """Through the model engine on a generated invoice: every field whose value is not on its cited page (the shipped
    tiny-trained copies none) shows a confidence under the threshold, whatever its tokens' probability, and
    ``redo_below`` re-denoises it; the JSON carries confidence, grounding and the re-denoise count per field."""
    import json
    import random

    from inference.documents import ingest
    from inference.exports import extraction_json
    from inference.tasks.confidence import is_empty
    from inference.tasks.model import ModelEngine
    from inference.weights.loading import load_model
    from training.documents import make_page, schema_for, write_pdf

    page = make_page(random.Random(5), evaluation=True, kind="invoice")
    write_pdf([page], tmp_path / "invoice.pdf")
    docs = [r.document for r in ingest([str(tmp_path / "invoice.pdf")])]
    schema = schema_for(page.fields[:2], random.Random(1))
    engine = ModelEngine(load_model("tiny-trained", dtype="fp32", device="cpu"))
    engine.params = engine.params.replace(seed=3, max_denoising_steps=4)
    result = engine.extract(docs, schema, redo_below=REDO_BELOW, redo_rounds=1)
    shown = json.loads(extraction_json(result))
    assert set(shown["confidence"]) == set(shown["grounded"]) == set(shown["redenoised"]) == set(schema["properties"])
    ungrounded = [n for n in schema["properties"] if not result.grounded[n] or is_empty(result.value[n])]
    assert ungrounded, result.value
    for name in ungrounded:
        assert result.confidence[name] < REDO_BELOW, (name, result.confidence, result.token_confidence)
        assert result.redenoised[name] == 1
