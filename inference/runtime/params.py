"""Diffusion parameters: a frozen pydantic model, validated when built, unknown keys rejected.

The rules for every value live here, once: the CLI, the server and the window build parameters through
:meth:`DiffusionParams.from_dict`, whose error is :func:`invalid_params`'s ``ConfigError`` naming the field (or the
option that set it). Defaults come from the checkpoint's generation config, then from the defaults ``transformers``
applies in ``DiffusionGemmaForBlockDiffusion.generate()``, so that the engine and ``generate()`` agree when a user
sets nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError

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
RULES = {  # what a value must be, by the kind of pydantic error
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
}
BOUNDS = {"seed": f"must be between 0 and 2**63 - 1 ({MAX_SEED})"}  # a range said in one go
OFF = {"stability_threshold", "confidence_threshold"}  # None turns adaptive stopping off


class DiffusionParams(BaseModel):
    """Everything that steers one block-diffusion run.

    ``seed`` seeds torch's global generator right before the run, as a caller of ``generate()`` would with
    ``torch.manual_seed``; ``None`` leaves the generator as it is. Strict: a whole number is never a float or a
    bool, a number never a string.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    max_new_tokens: int = Field(LIBRARY_DEFAULTS["max_new_tokens"], ge=1)
    max_denoising_steps: int = Field(LIBRARY_DEFAULTS["max_denoising_steps"], ge=1)
    t_min: float = Field(LIBRARY_DEFAULTS["t_min"], ge=0)
    t_max: float = LIBRARY_DEFAULTS["t_max"]
    entropy_bound: float = Field(LIBRARY_DEFAULTS["entropy_bound"], gt=0)
    stability_threshold: int | None = Field(LIBRARY_DEFAULTS["stability_threshold"], ge=0)
    confidence_threshold: float | None = Field(LIBRARY_DEFAULTS["confidence_threshold"], gt=0)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    prefill_chunk: int = Field(2048, ge=1)  # prompt tokens per encoder call (runtime/prefill.py)

    @field_validator("t_max")
    @classmethod
    def above_t_min(cls, t_max: float, info: ValidationInfo) -> float:
        t_min = info.data.get("t_min")  # absent when t_min itself was invalid
        if t_min is not None and t_max <= t_min:
            raise PydanticCustomError("t_max_order", "must be greater than t_min ({t_min})", {"t_min": t_min})
        return t_max

    @property
    def adaptive_stopping(self) -> bool:
        return self.stability_threshold is not None and self.confidence_threshold is not None

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any], base: DiffusionParams | None = None, names: Mapping[str, str] | None = None
    ) -> DiffusionParams:
        """Built from a mapping: missing keys keep ``base``'s values (or the defaults); an unknown key or a bad value
        is a ``ConfigError`` (:func:`invalid_params`; ``names``: how the user named the fields, a CLI's options)."""
        merged = {**(base.to_dict() if base is not None else {}), **values}
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            raise invalid_params(exc, names) from exc

    def replace(self, **changes: Any) -> DiffusionParams:
        """A copy with ``changes``, validated as a new one is (``model_copy`` would not validate)."""
        return DiffusionParams.from_dict(changes, self)

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
        return self.model_dump()


def invalid_params(error: ValidationError, names: Mapping[str, str] | None = None) -> ConfigError:
    """A validation error of :class:`DiffusionParams` as the project's ``ConfigError``: unknown keys listed beside
    the known ones, else the first bad value, its field and what it must be (``Invalid diffusion parameter t_max=0.3:
    must be greater than t_min (0.4).``); a field in ``names`` under that name (``--steps: must be at least 1, not
    0.``)."""
    problems = error.errors()
    unknown = sorted(str(p["loc"][0]) for p in problems if p["type"] == "extra_forbidden" and p["loc"])
    if unknown:
        known = ", ".join(sorted(DiffusionParams.model_fields))
        return ConfigError(f"Unknown diffusion parameter(s): {', '.join(unknown)}. Known: {known}.")
    first = problems[0]
    name = str(first["loc"][0]) if first["loc"] else "parameters"
    value, why = first["input"], _why(name, first)
    if names and name in names:
        return ConfigError(f"{names[name]}: {why}, not {value}.")
    return ConfigError(f"Invalid diffusion parameter {name}={value!r}: {why}.")


def _why(name: str, problem: ErrorDetails) -> str:
    kind = problem["type"]
    if name in BOUNDS and kind in ("greater_than_equal", "less_than_equal"):
        why = BOUNDS[name]
    elif kind in RULES:
        bounds = {k: f"{v:g}" if isinstance(v, float) else v for k, v in problem.get("ctx", {}).items()}
        why = RULES[kind].format(**bounds)
    else:
        why = problem["msg"]
    return f"{why}, or None to turn adaptive stopping off" if name in OFF else why
