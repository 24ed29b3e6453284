"""Diffusion parameters: validated when built, unknown keys rejected.

Defaults come from the checkpoint's generation config, then from the defaults ``transformers`` applies in
``DiffusionGemmaForBlockDiffusion.generate()``, so that the engine and ``generate()`` agree when a user sets
nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from inference.errors import ConfigError

MAX_SEED = 2**63 - 1  # what torch.manual_seed accepts

# The defaults `DiffusionGemmaGenerationConfig._get_default_generation_params()` applies (transformers 5.23+).
LIBRARY_DEFAULTS: dict[str, Any] = {
    "max_new_tokens": 256,
    "max_denoising_steps": 48,
    "entropy_bound": 0.1,
    "t_min": 0.4,
    "t_max": 0.8,
    "stability_threshold": 1,
    "confidence_threshold": 0.005,
}


@dataclass(frozen=True)
class DiffusionParams:
    """Everything that steers one block-diffusion run.

    ``seed`` seeds torch's global generator right before the run, as a caller of ``generate()`` would with
    ``torch.manual_seed``; ``None`` leaves the generator as it is.
    """

    max_new_tokens: int = LIBRARY_DEFAULTS["max_new_tokens"]
    max_denoising_steps: int = LIBRARY_DEFAULTS["max_denoising_steps"]
    t_min: float = LIBRARY_DEFAULTS["t_min"]
    t_max: float = LIBRARY_DEFAULTS["t_max"]
    entropy_bound: float = LIBRARY_DEFAULTS["entropy_bound"]
    stability_threshold: int | None = LIBRARY_DEFAULTS["stability_threshold"]
    confidence_threshold: float | None = LIBRARY_DEFAULTS["confidence_threshold"]
    seed: int | None = None
    prefill_chunk: int = (
        2048  # prompt tokens per encoder call (inference/runtime/prefill.py; tests/benchmarks/prefill.py)
    )

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"Invalid diffusion parameter {name}={getattr(self, name)!r}: {why}.")

        for name in ("max_new_tokens", "max_denoising_steps", "prefill_chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise bad(name, "must be a positive integer")
        for name in ("t_min", "t_max", "entropy_bound"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad(name, "must be a number")
        if self.t_min < 0:
            raise bad("t_min", "must be >= 0")
        if self.t_max <= self.t_min:
            raise bad("t_max", f"must be greater than t_min ({self.t_min})")
        if self.entropy_bound <= 0:
            raise bad("entropy_bound", "must be > 0")
        if self.stability_threshold is not None and (
            isinstance(self.stability_threshold, bool)
            or not isinstance(self.stability_threshold, int)
            or self.stability_threshold < 0
        ):
            raise bad("stability_threshold", "must be an integer >= 0, or None to turn adaptive stopping off")
        if self.confidence_threshold is not None and (
            not isinstance(self.confidence_threshold, (int, float)) or self.confidence_threshold <= 0
        ):
            raise bad("confidence_threshold", "must be > 0, or None to turn adaptive stopping off")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED
        ):
            raise bad("seed", f"must be an integer from 0 to 2**63 - 1 ({MAX_SEED})")

    @property
    def adaptive_stopping(self) -> bool:
        return self.stability_threshold is not None and self.confidence_threshold is not None

    @classmethod
    def from_dict(cls, values: dict[str, Any], base: DiffusionParams | None = None) -> DiffusionParams:
        """Build from a mapping; unknown keys are an error, missing keys keep ``base`` (or the defaults)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"Unknown diffusion parameter(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}."
            )
        return dataclasses.replace(base or cls(), **values)

    @classmethod
    def from_generation_config(cls, generation_config: Any, **overrides: Any) -> DiffusionParams:
        """Defaults from a checkpoint's ``DiffusionGemmaGenerationConfig``, then the library's, then overrides."""
        values: dict[str, Any] = {}
        if generation_config is not None:
            for name in (
                "max_new_tokens",
                "max_denoising_steps",
                "t_min",
                "t_max",
                "stability_threshold",
                "confidence_threshold",
            ):
                value = getattr(generation_config, name, None)
                if value is not None:
                    values[name] = value
            sampler_config = getattr(generation_config, "sampler_config", None)
            if sampler_config is not None and getattr(sampler_config, "entropy_bound", None) is not None:
                values["entropy_bound"] = sampler_config.entropy_bound
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
