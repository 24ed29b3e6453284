"""The dependency bounds in pyproject.toml hold for what is installed, and the non-public parts of transformers and
bm25s that the code reaches into exist in it. ``.ci/lowest-transformers`` runs this file (and the engine's parity and
prefill tests) against the lowest transformers allowed; ``python tests/test_dependency_bounds.py`` prints that version.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# Every name the code takes from a transformers module that is not its public top level, or an underscored one: a
# release may move or drop them without notice, so the bound on transformers stays on the minor releases tested.
TRANSFORMERS_POINTS = [
    ("transformers.masking_utils", "sdpa_mask"),  # inference/runtime/prefill.py: a mask block by block
    ("transformers.masking_utils", "causal_mask_function"),
    ("transformers.masking_utils", "AttentionMaskInterface"),  # the lazy mask registered beside the attention
    ("transformers.integrations.sdpa_attention", "sdpa_attention_forward"),  # small blocks: the stock attention
    ("transformers.utils", "logging"),  # inference/weights/loading.py: the library's bars off while it shows its own
    ("transformers.utils.logging", "is_progress_bar_enabled"),
    ("transformers.utils.logging", "disable_progress_bar"),
    ("transformers.utils.logging", "enable_progress_bar"),
    ("transformers.models.gemma4", "Gemma4ImageProcessor"),  # inference/weights/tiny.py: the tiny processor
    ("transformers.models.gemma4", "Gemma4VideoProcessor"),
    ("transformers.models.gemma4.feature_extraction_gemma4", "Gemma4AudioFeatureExtractor"),
    ("transformers.models.diffusion_gemma.generation_diffusion_gemma", "DiffusionGemmaGenerationConfig"),
    ("transformers.models.diffusion_gemma.generation_diffusion_gemma", "EntropyBoundSamplerConfig"),
    ("transformers.models.diffusion_gemma.modeling_diffusion_gemma", "DiffusionGemmaEncoderModel"),  # its masks
    ("transformers.modeling_outputs", "BaseModelOutputWithPooling"),  # training/train.py
    ("transformers.integrations.moe", "_grouped_mm"),  # training/train.py
]


def bounds(name: str) -> Requirement:
    """``name``'s requirement as pyproject.toml states it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == name:
            return requirement
    raise LookupError(f"{name} is not a dependency in pyproject.toml")


def lowest(name: str) -> str:
    """The lowest version ``name``'s requirement allows (its ``>=`` bound)."""
    floors = [s.version for s in bounds(name).specifier if s.operator == ">="]
    assert len(floors) == 1, f"{name} needs one lower bound (>=), not {bounds(name).specifier}"
    return floors[0]


@pytest.mark.parametrize("name", ["transformers", "bm25s"])
def test_the_installed_version_is_inside_the_bounds_and_the_bounds_are_closed(name):
    requirement = bounds(name)
    installed = importlib.metadata.version(name)
    assert requirement.specifier.contains(installed, prereleases=True), f"{name} {installed} outside {requirement}"
    uppers = [s for s in requirement.specifier if s.operator == "<"]
    assert uppers, f"{name} is read beyond its public API: give it an upper bound ({requirement})"
    lowest(name)


def test_transformers_is_bounded_to_the_minor_releases_it_was_tested_on():
    """``>=5.A,<5.B`` on one major version: a new minor release is let in once this suite has passed on it."""
    requirement = bounds("transformers")
    low = Version(lowest("transformers"))
    high = Version(next(s.version for s in requirement.specifier if s.operator == "<"))
    assert high.major == low.major and high.minor > low.minor, requirement


@pytest.mark.parametrize(("module", "name"), TRANSFORMERS_POINTS, ids=[f"{m}.{n}" for m, n in TRANSFORMERS_POINTS])
def test_the_non_public_transformers_names_the_code_uses_exist(module, name):
    assert hasattr(importlib.import_module(module), name), f"{module}.{name} is gone in this transformers"


def test_the_encoder_builds_its_masks_from_the_arguments_the_engine_passes():
    """inference/runtime/engine.py and prefill.py call the encoder's ``create_masks_for_generate`` by keyword (its
    ``cache`` argument was ``past_key_values`` before transformers 5.24)."""
    from transformers.models.diffusion_gemma.modeling_diffusion_gemma import DiffusionGemmaEncoderModel

    passed = {"config", "inputs_embeds", "attention_mask", "cache", "position_ids", "mm_token_type_ids"}
    assert passed <= set(inspect.signature(DiffusionGemmaEncoderModel.create_masks_for_generate).parameters)


def test_the_config_keeps_its_attention_implementation_where_the_prefill_switches_it():
    """inference/runtime/prefill.py sets ``_attn_implementation`` on the config and its text config."""
    from inference.weights.tiny import build_config, build_tokenizer

    config = build_config(build_tokenizer())
    for part in (config, config.get_text_config(decoder=True)):
        assert hasattr(part, "_attn_implementation")


def test_bm25s_keeps_the_vocabulary_the_builtin_engine_reads():
    """inference/tasks/builtin.py drops query words the passages never use, through ``BM25.vocab_dict``."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(["the harbour opens at six"], show_progress=False), show_progress=False)
    assert "harbour" in retriever.vocab_dict


def test_the_code_names_no_other_non_public_transformers_module():
    """A new ``from transformers.<module> import`` (other than the top level) must join the list above."""
    listed = {module for module, _ in TRANSFORMERS_POINTS}
    used = set()
    for path in [*ROOT.glob("inference/**/*.py"), *ROOT.glob("app/**/*.py"), *ROOT.glob("training/*.py")]:
        used |= set(re.findall(r"from (transformers\.[\w.]+) import", path.read_text(encoding="utf-8")))
    assert used <= listed, sorted(used - listed)


if __name__ == "__main__":  # the lowest transformers allowed, for the command in the docstring
    print(lowest("transformers"))
    sys.exit(0)
