"""Loading through the real path: the tiny model saved as safetensors to a temp folder and loaded back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.errors import ConfigError, InsufficientMemoryError, ModelLoadError, WeightsMissingError
from inference.runtime.engine import DiffusionEngine
from inference.runtime.events import Finished
from inference.weights.loading import load_model
from inference.weights.sizing import check_fits, count_parameters, estimate_memory
from inference.weights.sources import load_config
from tests.helpers import chat_inputs
from tests.model_helpers import save_tiny


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("dtype,expected", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_saved_tiny_loads_back(saved_tiny, tiny_pair, dtype, expected):
    assert list(saved_tiny.glob("*.safetensors")) and not list(saved_tiny.glob("*.bin"))
    loaded = load_model(str(saved_tiny), dtype=dtype, device="cpu")
    assert loaded.model.dtype == expected and not loaded.random_weights
    original = tiny_pair[0].state_dict()
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor.float(), original[name].to(expected).float()), name
    # it runs, and in fp32 gives the same tokens as the in-memory tiny model
    inputs = chat_inputs(loaded.processor, "Loaded back")
    engine = DiffusionEngine(loaded.model, loaded.tokenizer)
    out = list(engine.generate(inputs, engine.default_params(seed=0, max_denoising_steps=4)))[-1]
    assert isinstance(out, Finished)
    if dtype == "fp32":
        ref = list(
            DiffusionEngine(tiny_pair[0], tiny_pair[1].tokenizer).generate(
                chat_inputs(tiny_pair[1], "Loaded back"), engine.default_params(seed=0, max_denoising_steps=4)
            )
        )[-1]
        np.testing.assert_array_equal(out.ids, ref.ids)


def test_missing_weights_give_one_clear_message(saved_tiny, tmp_path):
    folder = tmp_path / "noweights"
    folder.mkdir()
    for f in saved_tiny.iterdir():
        if f.suffix != ".safetensors":
            (folder / f.name).write_bytes(f.read_bytes())
    with pytest.raises(WeightsMissingError) as err:
        load_model(str(folder), device="cpu")
    msg = err.value.user_message()
    assert "no *.safetensors weights" in msg and "hf download" in msg and "Traceback" not in msg


def test_unknown_hub_id_offline_says_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(WeightsMissingError) as err:
        load_model("google/diffusiongemma-26B-A4B-it", device="cpu")
    msg = err.value.user_message()
    assert "HF_HUB_OFFLINE is set" in msg and "hf download google/diffusiongemma-26B-A4B-it" in msg


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path), device="cpu")


def test_counts_and_estimate_from_config_alone():
    counts = count_parameters(load_config("tiny"))
    assert set(counts.groups) == {"embeddings", "attention", "dense_mlp", "experts", "vision", "other"}
    assert all(counts.groups[g] > 0 for g in ("embeddings", "attention", "dense_mlp", "experts", "vision"))
    assert counts.active < counts.total
    fp32, bf16 = estimate_memory(counts, "fp32"), estimate_memory(counts, "bf16")
    assert fp32.weights_bytes == 4 * counts.total and bf16.weights_bytes == 2 * counts.total


def test_refuses_when_it_will_not_fit():
    counts = count_parameters(load_config("tiny"))
    with pytest.raises(InsufficientMemoryError, match="GiB free"):
        check_fits(estimate_memory(counts, "fp32"), "cpu", available=10 * 2**20)


def test_bad_dtype_and_device():
    with pytest.raises(ConfigError):
        load_model("tiny", dtype="int3")
    with pytest.raises(ConfigError):
        load_model("tiny", device="tpu")


@pytest.mark.parametrize("source", ["/some/folder", "./models/missing", "~/nowhere/model"])
def test_a_missing_folder_is_named_as_a_folder(source):
    with pytest.raises(ModelLoadError) as err:
        load_config(source)
    message = err.value.user_message()
    assert "There is no folder" in message and "hf download" not in message


def test_an_unreachable_hub_answers_once_and_quickly(monkeypatch, capfd):
    """With HF_HUB_OFFLINE unset and the hub unreachable (a closed loopback port), one lookup, one message, no
    repeated warnings."""
    from huggingface_hub import hf_api

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_api.api, "endpoint", "http://127.0.0.1:9")
    with pytest.raises(WeightsMissingError) as err:
        load_config("nobody-here/no-such-model")
    assert "the Hugging Face Hub could not be reached" in err.value.user_message()
    captured = capfd.readouterr()
    assert captured.err.count("Retrying") == 0 and captured.err.count("WARNING") <= 1, captured.err


def test_hints_are_written_once_and_rendered_for_each_front_end(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(WeightsMissingError) as err:
        load_config("someone/some-model")
    cli, window = err.value.user_message("cli"), err.value.user_message("window")
    assert "`--model tiny` runs the built-in random-weight model" in cli and "pass a local folder" in cli
    assert "\u201ctiny\u201d" in window and "choose a local folder" in window
    assert "--model" not in window and "$" not in cli + window
    from app.gui.messages import describe  # the window's one place for messages (no Qt imported)

    assert describe(err.value).endswith(window)
