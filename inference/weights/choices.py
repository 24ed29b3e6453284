"""The choices every front end offers for loading a model, defined once (the CLI's argument choices, the model
dialog's lists, the loaders' checks). Nothing heavy is imported here."""

from __future__ import annotations

from typing import Literal, get_args

Dtype = Literal["auto", "bf16", "fp16", "fp32"]
Device = Literal["auto", "cuda", "mps", "cpu"]
Quant = Literal["auto", "none", "nf4"]

DTYPES: tuple[str, ...] = get_args(Dtype)
DEVICES: tuple[str, ...] = get_args(Device)
QUANT_CHOICES: tuple[str, ...] = get_args(Quant)
QUANT_HELP = (
    "4-bit NF4 weights (cached after the first load); auto: NF4 when the plain weights do not fit the device and NF4 "
    "does"
)
