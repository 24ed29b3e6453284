"""The ``tiny-trained`` shape before training: its processor (a BPE trained on the corpus) and fresh weights.

The runtime loads the shipped folder (``resources/tiny-trained``) with ``from_pretrained``; this module makes what
training starts from.
"""

from __future__ import annotations

import functools
from typing import Any

from inference.weights.tiny import TRAINED_TEXT, build_config, build_generation_config, build_processor, build_tokenizer
from training.corpus import SEED, corpus_topics, train_tokenizer_core


@functools.lru_cache(maxsize=1)
def _trained_bpe() -> str:
    """The trained BPE as JSON: trained once per process (seconds), each processor gets its own copy."""
    return train_tokenizer_core(corpus_topics()[0]).to_str()


def build_trained_processor() -> Any:
    """The ``tiny-trained`` processor: a BPE tokenizer trained on the corpus of :mod:`training.train`."""
    from tokenizers import Tokenizer

    return build_processor(build_tokenizer(Tokenizer.from_str(_trained_bpe())))


def build_trained(train: bool = False) -> tuple[Any, Any]:
    """An untrained model and processor of the ``tiny-trained`` shape (:func:`build_trained_processor`);
    :mod:`training.train` trains it and writes the shipped folder."""
    import torch
    from transformers import DiffusionGemmaForBlockDiffusion

    processor = build_trained_processor()
    config = build_config(processor.tokenizer, **TRAINED_TEXT)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = DiffusionGemmaForBlockDiffusion(config)
    model.generation_config = build_generation_config(processor.tokenizer)
    return (model.train() if train else model.eval()), processor


POSITION_TABLE = "model.encoder.vision_tower.patch_embedder.position_embedding_table"


def widen_vision_positions(state: dict[str, Any], size: int) -> dict[str, Any]:
    """``state`` with its vision position table grown to ``size`` rows per axis (new rows are ones, as a fresh table
    is: the vision tower is never trained, the model learns to ignore the image), so that weights saved with a
    smaller table load into the current shape."""
    import torch

    table = state.get(POSITION_TABLE)
    if table is None or table.shape[1] >= size:
        return state
    grown = torch.ones(table.shape[0], size, table.shape[2], dtype=table.dtype)
    grown[:, : table.shape[1]] = table
    return {**state, POSITION_TABLE: grown}


def widen_folder(folder: Any) -> None:
    """Rewrite a saved model folder with the current vision position table (its other weights unchanged)."""
    from pathlib import Path

    from training.train import load_stage

    model, _ = build_trained()
    load_stage(model, Path(folder))
    model.save_pretrained(folder)
