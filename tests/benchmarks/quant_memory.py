"""Benchmark: the full-size DiffusionGemma (26B-A4B) in NF4, built and run on the CPU, and its peak memory.

The model comes from ``../shared/models/diffusiongemma-26B-A4B-approx/config.json`` with random bf16 weights
generated tensor by tensor as the streaming quantizer asks for them (no 50 GB file; experts 8 at a time). By
default ``--real-layers 1`` layer is quantized for real (timed: ``quantize_s_per_layer``) and the other 29 are
filled with copies of that quantized layer (each its own tensors, so the memory is real); ``--real-layers 30``
quantizes every layer. Then one forward pass: a 64-token prompt through the encoder (prefill) and one 256-token
canvas step through the decoder. Prints ``quantize_s_per_layer=``, ``quantized_gib=``, ``forward_s=`` and, last,
``peak_gib=`` (the process's peak resident memory). Goal: ``peak_gib`` <= 16.76 (18 GB). Skips with a message when
less than 18 GiB of memory is free. ``--device cuda`` runs it on a GPU and reports the peak GPU memory instead.

    .venv/bin/python -m tests.benchmarks.quant_memory [--real-layers 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CONFIG = Path(__file__).resolve().parents[2].parent / "shared/models/diffusiongemma-26B-A4B-approx"
GOAL_GIB = 16.76


class RandomSource:
    """Random bf16 weights with the checkpoint's names and shapes, generated only when (and as far as) asked."""

    def __init__(self, model, torch) -> None:
        self.torch = torch
        self.shapes = {
            n: tuple(t.shape)
            for n, t in list(model.named_parameters(remove_duplicate=False))
            + list(model.named_buffers(remove_duplicate=False))
        }

    def names(self):
        return self.shapes.keys()

    def get(self, name, start=None, stop=None):
        torch = self.torch
        shape = list(self.shapes[name])
        if start is not None:
            shape[0] = min(stop, shape[0]) - start
        generator = torch.Generator().manual_seed(hash((name, start)) & 0xFFFFFFFF)
        if name.endswith(("norm.weight", "layer_scalar", "scale", "per_expert_scale")):
            return torch.ones(shape, dtype=torch.bfloat16)
        out = torch.empty(shape, dtype=torch.bfloat16)
        flat = out.view(-1)
        step = 1 << 24  # drawn 16M values at a time: no fp32 copy of a whole tensor (the embeddings are 1.4 GiB)
        for begin in range(0, flat.numel(), step):
            part = flat[begin : begin + step]
            part.copy_(torch.randn(part.numel(), generator=generator) * 0.02)
        return out


def copy_layer(model, source_index: int, index: int, torch, device) -> None:
    """Give layer ``index`` its own copies of layer ``source_index``'s quantized modules (same shapes: the same
    layer type), and load its small tensors."""
    import bitsandbytes as bnb

    from inference.weights.quant import DECODER, NF4Experts, install, linear4bit_from_stats

    src = model.model.decoder.layers[source_index]
    prefix = f"{DECODER}layers.{index}."
    for name, module in list(src.named_modules()):
        if isinstance(module, NF4Experts):
            clone = copy.deepcopy(module)
            install(model, prefix + name, clone)
        elif isinstance(module, bnb.nn.Linear4bit):
            state = module.weight.quant_state
            stats = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in state.as_dict(packed=True).items()}
            install(model, prefix + name, linear4bit_from_stats(module.weight.data.clone(), stats, state.dtype, device))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-layers", type=int, default=1, help="layers quantized for real (the rest are copies)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--force", action="store_true", help="run even with less than 18 GiB free")
    args = parser.parse_args()

    from inference.weights.devices import available_bytes

    free = available_bytes("cpu") if args.device == "cpu" else None
    if free is not None and free < 18 * 2**30 and not args.force:
        print(f"SKIPPED: {free / 2**30:.1f} GiB of memory free; the full-size benchmark needs 18 GiB.")
        return 0

    import torch
    from transformers import DiffusionGemmaConfig

    from inference.weights.quant import (
        BUILD_MMAP_THRESHOLD,
        DECODER,
        ENCODER_TEXT,
        QuantSettings,
        _load_meta_tensors,
        _Resolver,
        byte_groups,
        empty_model,
        load_rest,
        quantize_layer,
        steady_heap,
    )

    device = torch.device(args.device)
    dtype = torch.bfloat16
    config = DiffusionGemmaConfig.from_pretrained(CONFIG)
    settings = QuantSettings()
    steady_heap(BUILD_MMAP_THRESHOLD)
    model = empty_model(config, dtype)
    resolver = _Resolver(RandomSource(model, torch))
    layers = model.model.decoder.layers
    types = config.text_config.layer_types
    real = min(max(1, args.real_layers), len(layers))
    timings = []
    first_of_type: dict[str, int] = {}
    for index in range(len(layers)):
        kind = types[index]
        if index < real or kind not in first_of_type:
            t0 = time.perf_counter()
            quantize_layer(model, index, resolver, settings, dtype, device)
            timings.append(time.perf_counter() - t0)
            first_of_type.setdefault(kind, index)
            how = "quantized"
        else:
            copy_layer(model, first_of_type[kind], index, torch, device)
            for owner in (f"{DECODER}layers.{index}.", f"{ENCODER_TEXT}layers.{index}."):
                _load_meta_tensors(model, owner, resolver, dtype, device)
            how = f"copy of layer {first_of_type[kind]}"
        print(f"layer {index + 1}/{len(layers)} ({kind}): {how}", file=sys.stderr, flush=True)
    load_rest(model, resolver, settings, dtype, device)
    steady_heap()
    model.eval()
    groups = byte_groups(model)
    quantized = sum(g["bytes"] for g in groups.values())
    print(
        f"layers quantized for real: {len(timings)} of {len(layers)} (one of each layer type at least); the "
        f"others are copies of a quantized layer of their type"
    )
    for name, group in groups.items():
        print(f"  {name:<12} {group['bytes'] / 2**30:7.2f} GiB  {group['bytes_per_param']:.3f} bytes/param")

    built_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak while building: {built_peak / 2**30:.2f} GiB")
    generator = torch.Generator().manual_seed(0)
    prompt = torch.randint(10, 200_000, (1, 64), generator=generator).to(device)
    canvas = torch.randint(10, 200_000, (1, 256), generator=generator).to(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        logits = model(input_ids=prompt, decoder_input_ids=canvas).logits
        token = int(logits[0, 0].float().argmax())
        del logits
    forward = time.perf_counter() - t0
    print(f"forward: 64-token prompt + one 256-token canvas step in {forward:.1f} s (first token id {token})")
    if device.type == "cuda":  # a second, warm pass: the canvas's 256 tokens per forward
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(input_ids=prompt, decoder_input_ids=canvas)
        torch.cuda.synchronize()
        print(f"tokens_per_s={256 / (time.perf_counter() - t0):.0f}  (256 canvas tokens per full forward, warm)")
    print(f"quantize_s_per_layer={sorted(timings)[len(timings) // 2]:.1f}")
    print(f"quantized_gib={quantized / 2**30:.2f}")
    print(f"forward_s={forward:.1f}")
    if device.type == "cuda":
        print(f"cuda_peak_gib={torch.cuda.max_memory_allocated() / 2**30:.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak_gib={peak / 2**30:.2f}  (goal <= {GOAL_GIB})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
