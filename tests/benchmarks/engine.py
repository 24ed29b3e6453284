"""Benchmark: the engine against ``model.generate()`` on the same model, seed and prompt.

Runs alternate (generate, engine, generate, engine, ...) so that drift of the machine hits both alike; each run
generates 512 new tokens with adaptive stopping off, so both do the same number of denoising steps. Prints the
medians and, last, ``overhead_ratio=<engine median / generate median>``.

    .venv/bin/python -m tests.benchmarks.engine [--model tiny|ID|FOLDER] [--pairs 7] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--steps", type=int, default=48)
    args = parser.parse_args()
    if args.pairs < 5:
        parser.error("--pairs must be at least 5")

    import torch

    from inference.runtime.engine import DiffusionEngine
    from inference.runtime.events import DenoisingStep, Finished
    from inference.runtime.params import DiffusionParams
    from inference.weights.loading import load_model

    loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    model, processor = loaded.model, loaded.processor
    messages = [{"role": "user", "content": [{"type": "text", "text": "Explain block diffusion in detail."}]}]
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    ).to(loaded.device)
    engine = DiffusionEngine(model, loaded.tokenizer)
    # adaptive stopping off and no end-of-sequence: every run does the same work
    params = DiffusionParams.from_dict(
        {"stability_threshold": None, "confidence_threshold": None},
        base=engine.default_params(max_new_tokens=args.new_tokens, max_denoising_steps=args.steps, seed=0),
    )
    eos = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = None
    engine.eos_token_ids = []
    sync = torch.cuda.synchronize if loaded.device == "cuda" else (lambda: None)

    def run_generate() -> float:
        torch.manual_seed(0)
        sync()
        t0 = time.perf_counter()
        model.generate(
            **inputs,
            max_new_tokens=args.new_tokens,
            max_denoising_steps=args.steps,
            stability_threshold=None,
            confidence_threshold=None,
        )
        sync()
        return time.perf_counter() - t0

    def run_engine() -> float:
        sync()
        t0 = time.perf_counter()
        steps = 0
        for event in engine.generate(inputs, params):
            steps += isinstance(event, DenoisingStep)
            last = event
        sync()
        elapsed = time.perf_counter() - t0
        assert isinstance(last, Finished), last
        assert steps == args.steps * -(-args.new_tokens // model.config.canvas_length)
        return elapsed

    run_generate(), run_engine()  # warm-up
    gen_times, eng_times = [], []
    for _ in range(args.pairs):
        gen_times.append(run_generate())
        eng_times.append(run_engine())
    model.generation_config.eos_token_id = eos
    g, e = statistics.median(gen_times), statistics.median(eng_times)
    print(
        f"model: {loaded.label} [{loaded.dtype}, {loaded.device}], {args.new_tokens} new tokens, "
        f"{args.steps} steps per canvas, {args.pairs} alternating pairs"
    )
    print(f"generate(): median {g * 1000:.1f} ms  (runs: {', '.join(f'{t * 1000:.0f}' for t in gen_times)})")
    print(f"engine:     median {e * 1000:.1f} ms  (runs: {', '.join(f'{t * 1000:.0f}' for t in eng_times)})")
    print(f"engine tokens/s: {args.new_tokens / e:.0f}; generate() tokens/s: {args.new_tokens / g:.0f}")
    print(f"overhead_ratio={e / g:.3f}")


if __name__ == "__main__":
    main()
