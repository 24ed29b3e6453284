from __future__ import annotations

import pytest

from inference.errors import ConfigError
from inference.runtime.params import DiffusionParams


def test_defaults_follow_generation_config_then_library(tiny_pair):
    model, _ = tiny_pair
    params = DiffusionParams.from_generation_config(model.generation_config, max_denoising_steps=12)
    assert params.max_denoising_steps == 12 and params.t_min == 0.4 and params.entropy_bound == 0.1
    assert DiffusionParams.from_generation_config(None) == DiffusionParams()


def test_unknown_keys_rejected():
    with pytest.raises(ConfigError, match="Unknown diffusion parameter"):
        DiffusionParams.from_dict({"max_new_token": 5})


@pytest.mark.parametrize(
    "bad",
    [
        {"max_new_tokens": 0},
        {"t_min": 0.9, "t_max": 0.8},
        {"entropy_bound": 0.0},
        {"stability_threshold": -1},
        {"max_denoising_steps": 2.5},
        {"seed": "x"},
    ],
)
def test_invalid_values_rejected(bad):
    with pytest.raises(ConfigError):
        DiffusionParams.from_dict(bad)


def test_the_message_names_the_field_its_value_and_the_rule():
    with pytest.raises(ConfigError) as caught:
        DiffusionParams.from_dict({"t_max": 0.3})
    assert caught.value.message == "Invalid diffusion parameter t_max=0.3: must be greater than t_min (0.4)."
    with pytest.raises(ConfigError) as caught:
        DiffusionParams.from_dict({"max_denoising_steps": 0}, names={"max_denoising_steps": "--steps"})
    assert caught.value.message == "--steps: must be at least 1, not 0."
    with pytest.raises(ConfigError, match="t_min=nan: must be a finite number"):
        DiffusionParams.from_dict({"t_min": float("nan")})
    with pytest.raises(ConfigError, match="max_new_tokens=True: must be a whole number"):
        DiffusionParams.from_dict({"max_new_tokens": True})


def test_replace_validates_again_and_keeps_the_rest():
    params = DiffusionParams(max_denoising_steps=12)
    again = params.replace(seed=3)
    assert again.seed == 3 and again.max_denoising_steps == 12 and params.seed is None
    assert again == DiffusionParams(max_denoising_steps=12, seed=3) and hash(again.replace(seed=None)) == hash(params)
    with pytest.raises(ConfigError, match="seed=-1: must be between 0 and 2"):
        params.replace(seed=-1)
    with pytest.raises(ConfigError, match="Unknown diffusion parameter"):
        params.replace(steps=3)
