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
