"""The ``dwb`` command line. Headless commands never import Qt."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from inference.errors import WorkbenchError

MODEL_HELP = "'tiny' (built-in random weights), a Hugging Face id, or a local folder"


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny", help=f"model source: {MODEL_HELP} (default: tiny)")
    parser.add_argument("--dtype", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dwb", description="Diffusion Workbench: documents in, DiffusionGemma out.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks) to stderr")
    sub = parser.add_subparsers(dest="command")

    gen = sub.add_parser("generate", help="run prefill and block diffusion on a prompt, streaming the text")
    _add_model_args(gen)
    gen.add_argument("--image", action="append", default=[], metavar="FILE", help="an image to put before the text")
    gen.add_argument("--max-new-tokens", type=int)
    gen.add_argument("--steps", type=int, help="max denoising steps per canvas")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--json", action="store_true", help="print one JSON object per event, one per line")
    gen.add_argument("prompt")

    info = sub.add_parser("model-info", help="parameter counts by group and memory estimates, from the config alone")
    info.add_argument("source", help=MODEL_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return {"generate": cmd_generate, "model-info": cmd_model_info}[args.command](args)
    except WorkbenchError as exc:
        print(f"dwb: {exc.user_message()}", file=sys.stderr)
        return 2


def cmd_model_info(args: argparse.Namespace) -> int:
    from inference.loading import BYTES_PER_PARAM, count_parameters, estimate_memory, is_tiny, load_config
    from inference.tiny import TINY_LABEL

    config = load_config(args.source)
    counts = count_parameters(config)
    print(f"model: {TINY_LABEL if is_tiny(args.source) else args.source}")
    text = config.text_config
    print(f"layers {text.num_hidden_layers}, hidden {text.hidden_size}, vocab {text.vocab_size}, "
          f"canvas {config.canvas_length}, experts {counts.num_experts} (top {counts.top_k_experts})")
    print("parameters by group:")
    for group, n in counts.groups.items():
        print(f"  {group:<11} {n:>16,}")
    print(f"  {'total':<11} {counts.total:>16,}")
    print(f"  {'active':<11} {counts.active:>16,}  (per token)")
    print("memory estimate (weights + runtime overhead):")
    for dtype in BYTES_PER_PARAM:
        est = estimate_memory(counts, dtype)
        print(f"  {dtype:<5} weights {_size(est.weights_bytes)}   total {_size(est.total_bytes)}")
    return 0


def _size(n: int) -> str:
    return f"{n / 2**30:9.2f} GiB" if n >= 2**30 else f"{n / 2**20:9.2f} MiB"


def _prompt_inputs(processor: Any, prompt: str, images: list[str]) -> dict[str, Any]:
    from PIL import Image, UnidentifiedImageError

    content: list[dict[str, Any]] = []
    for name in images:
        try:
            with Image.open(name) as img:
                content.append({"type": "image", "image": img.convert("RGB")})
        except (OSError, UnidentifiedImageError) as exc:
            raise WorkbenchError(f"cannot read the image: {exc}", path=name) from exc
    content.append({"type": "text", "text": prompt})
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                         return_tensors="pt")


def cmd_generate(args: argparse.Namespace) -> int:
    from inference.engine import CancelToken, DiffusionEngine
    from inference.events import Cancelled, CanvasCommitted, Failed, Finished
    from inference.loading import load_model

    loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    if not args.json:
        print(f"model: {loaded.label} [{loaded.dtype}, {loaded.device}]", file=sys.stderr)
    inputs = _prompt_inputs(loaded.processor, args.prompt, args.image)
    inputs = {k: v.to(loaded.device) if hasattr(v, "to") else v for k, v in inputs.items()}
    engine = DiffusionEngine(loaded.model, loaded.tokenizer)
    params = engine.default_params(max_new_tokens=args.max_new_tokens, max_denoising_steps=args.steps,
                                   seed=args.seed)
    cancel = CancelToken()
    status = 0
    events = engine.generate(inputs, params, cancel=cancel)
    while True:
        try:
            event = next(events)
        except StopIteration:
            break
        except KeyboardInterrupt:
            cancel.cancel()
            continue
        if args.json:
            print(json.dumps(event.to_json(), ensure_ascii=False), flush=True)
        elif isinstance(event, CanvasCommitted):
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, Finished):
            s = event.stats
            print(f"\n[{s.new_tokens} tokens, {len(s.steps_per_canvas)} canvas(es), steps {list(s.steps_per_canvas)}, "
                  f"{s.tokens_per_forward:.2f} tokens/forward, {s.tokens_per_second:.1f} tokens/s, "
                  f"prefill {s.prefill_seconds:.3f} s]", file=sys.stderr)
        elif isinstance(event, Cancelled):
            print(f"\n[cancelled at canvas {event.canvas}, step {event.step}]", file=sys.stderr)
        if isinstance(event, Failed):
            if not args.json:
                print(f"dwb: {event.message}", file=sys.stderr)
            status = 1
        elif isinstance(event, Cancelled):
            status = 130
    return status


if __name__ == "__main__":
    sys.exit(main())
