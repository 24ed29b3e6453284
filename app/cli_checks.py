"""The model commands' arguments, checked before any weight is read, and where prompts and questions come from.

Argument types read the form of a value (a whole number, ``MIN:MAX``); the diffusion parameters' rules are
:class:`inference.runtime.params.DiffusionParams`'s, applied to the options given (:func:`diffusion_overrides`) and
then over the checkpoint's generation config, read without its weights (:func:`checked_params`), so that a mistake
costs a second, not a model load. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from inference.errors import ConfigError, IngestError
from inference.runtime.params import MAX_SEED, DiffusionParams

STDIN = "-"
DEFAULTS_NOTE = "default: the checkpoint's (dwb model-info shows them)"


def positive_int(text: str) -> int:
    """A count of at least 1 (pages per batch, tokens in a budget: not diffusion parameters, which the model checks)."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def temperature_range(text: str) -> tuple[float, float]:
    """``MIN:MAX`` (or ``MIN,MAX``): the temperature schedule runs from MAX at the first step down to MIN. Only the
    form is read here; :class:`DiffusionParams` checks the values."""
    low, sep, high = text.replace(",", ":").partition(":")
    try:
        if not sep:
            raise ValueError(text)
        return float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like 0.4:0.8 (MIN:MAX), not {text!r}") from None


# The diffusion options by their DiffusionParams names: an invalid value is reported under its option.
OPTIONS = {
    "max_new_tokens": "--max-new-tokens",
    "max_denoising_steps": "--steps",
    "seed": "--seed",
    "t_min": "--temperature-range MIN",
    "t_max": "--temperature-range MAX",
    "entropy_bound": "--entropy-bound",
    "stability_threshold": "--stability-threshold",
    "confidence_threshold": "--confidence-threshold",
    "prefill_chunk": "--prefill-chunk",
}


def add_diffusion_args(parser: argparse.ArgumentParser, seed_default: int | None = None) -> None:
    """The diffusion parameters as options; each left out keeps the checkpoint's value. Their values are checked by
    :class:`DiffusionParams` (:func:`diffusion_overrides`), not here."""
    group = parser.add_argument_group("diffusion (--engine model; " + DEFAULTS_NOTE + ")")
    group.add_argument("--max-new-tokens", type=whole_number, metavar="N", help="tokens to generate at most")
    group.add_argument("--steps", type=whole_number, metavar="N", help="denoising steps per canvas at most")
    seed_help = (
        "seed of the run: the same prompt, batch and seed give the same text"
        + (f" (default {seed_default})" if seed_default is not None else "; default: unseeded")
        + f"; 0 to {MAX_SEED}"
    )
    group.add_argument("--seed", type=whole_number, default=seed_default, help=seed_help)
    group.add_argument(
        "--temperature-range",
        type=temperature_range,
        metavar="MIN:MAX",
        help="the sampling temperature falls from MAX at the first step to MIN at the last",
    )
    group.add_argument("--entropy-bound", type=number, metavar="X", help="how much uncertainty one step may accept")
    group.add_argument(
        "--stability-threshold",
        type=whole_number,
        metavar="N",
        help="adaptive stopping: steps the draft must stay unchanged",
    )
    group.add_argument(
        "--confidence-threshold", type=number, metavar="X", help="adaptive stopping: confidence to reach"
    )
    group.add_argument(
        "--no-adaptive-stopping", action="store_true", help="always run the maximum number of steps per canvas"
    )
    group.add_argument(
        "--prefill-chunk", type=whole_number, metavar="N", help="prompt tokens per prefill call (default 2048)"
    )


def diffusion_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The diffusion parameters given on the command line, by their :class:`DiffusionParams` names, checked by it
    (a ``ConfigError`` naming the option): a mistake costs a second, whichever engine runs them."""
    given: dict[str, Any] = {
        "max_new_tokens": getattr(args, "max_new_tokens", None),
        "max_denoising_steps": getattr(args, "steps", None),
        "seed": getattr(args, "seed", None),
        "entropy_bound": getattr(args, "entropy_bound", None),
        "stability_threshold": getattr(args, "stability_threshold", None),
        "confidence_threshold": getattr(args, "confidence_threshold", None),
        "prefill_chunk": getattr(args, "prefill_chunk", None),
    }
    if getattr(args, "temperature_range", None):
        given["t_min"], given["t_max"] = args.temperature_range
    out = {k: v for k, v in given.items() if v is not None}
    if getattr(args, "no_adaptive_stopping", False):
        out["stability_threshold"] = out["confidence_threshold"] = None
    DiffusionParams.from_dict(out, names=OPTIONS)
    return out


def checked_params(source: str, overrides: dict[str, Any]) -> Any:
    """The parameters a run will use, the checkpoint's generation config under the ``overrides``, read before any
    weight: ``ConfigError`` names the option at fault."""
    from inference.weights.sources import generation_defaults, load_config

    load_config(source)  # a missing model or a wrong folder says so now
    defaults = generation_defaults(source)
    steps = overrides.get("max_denoising_steps")
    if steps is not None and steps > defaults.max_denoising_steps:
        raise ConfigError(
            f"--steps {steps} is over this model's {defaults.max_denoising_steps} denoising steps per canvas.",
            hint=f"Use --steps 1 to {defaults.max_denoising_steps}.",
        )
    return DiffusionParams.from_dict(overrides, defaults, names=OPTIONS)


def describe_params(params: Any, overrides: dict[str, Any] | None = None) -> str:
    """One line: the diffusion parameters of a run; with ``overrides``, those given on the command line marked *."""
    given = overrides or {}

    def mark(name: str, text: str) -> str:
        return f"{text}*" if name in given else text

    stopping = (
        f"stop when stable {params.stability_threshold} steps and confident {params.confidence_threshold}"
        if params.adaptive_stopping
        else "no adaptive stopping"
    )
    return (
        "diffusion: "
        + ", ".join(
            [
                mark("max_new_tokens", f"max {params.max_new_tokens} tokens"),
                mark("max_denoising_steps", f"{params.max_denoising_steps} steps/canvas"),
                mark("t_min", f"temperature {params.t_max}->{params.t_min}"),
                mark("entropy_bound", f"entropy bound {params.entropy_bound}"),
                mark("stability_threshold", stopping),
                mark("seed", f"seed {params.seed if params.seed is not None else 'none'}"),
            ]
        )
        + (" (* given; the rest the checkpoint's)" if overrides is not None else "")
    )


def read_text(value: str | None, file: str | None, what: str, option: str) -> str:
    """A prompt or question from the argument, ``-`` (standard input) or ``--…-file``; never empty."""
    if value is not None and file is not None:
        raise ConfigError(f"give the {what} either as an argument or with {option}, not both")
    if file is not None:
        source = file
        if file == STDIN:
            text = sys.stdin.read()
        else:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read the {what} file: {exc}", path=file) from exc
    elif value == STDIN:
        source, text = "standard input", sys.stdin.read()
    elif value is not None:
        source, text = "argument", value
    else:
        raise ConfigError(f"no {what}: give it as an argument, - for standard input, or {option} FILE")
    if not text.strip():
        raise ConfigError(f"the {what} is empty ({source})")
    return text


def check_images(paths: list[str]) -> None:
    """Every image readable as an image, before the model loads."""
    from PIL import Image, UnidentifiedImageError

    for name in paths:
        try:
            with Image.open(name) as img:
                img.verify()
        except (OSError, UnidentifiedImageError, SyntaxError) as exc:
            raise IngestError(f"cannot read the image: {exc}", path=name) from exc
