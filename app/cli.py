"""The ``dwb`` command line. Headless commands never import Qt."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from app.cli_checks import (
    check_images,
    checked_params,
    describe_params,
    diffusion_overrides,
    read_text,
)
from app.cli_documents import ocr_jobs, ocr_lang, password_source
from app.cli_parser import build_parser
from app.cli_progress import EventView, ProgressBar, interruptible
from inference.errors import CancelledError, WorkbenchError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)  # also for libraries that set their own logger to DEBUG (bm25s does)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    try:
        if args.command in (None, "gui"):
            from app.gui import run

            return run(getattr(args, "files", []))
        commands = {"model-info": cmd_model_info, "screenshot": cmd_screenshot, "serve": lambda a: _cmd_serve(a)}
        if args.command in commands:
            return commands[args.command](args)
        running = {"generate": cmd_generate, "parse": cmd_parse, "ask": cmd_ask, "extract": cmd_extract}
        return interruptible(lambda cancel: running[args.command](args, cancel))
    except CancelledError as exc:
        print(f"\ndwb: {exc.user_message()}", file=sys.stderr)
        return 130
    except WorkbenchError as exc:
        print(f"dwb: {exc.user_message()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ndwb: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # a build without the model runtime: its message, never a traceback
        from inference.runtime.available import runtime_error_for

        error = runtime_error_for(exc)
        if error is None:
            raise
        print(f"dwb: {error.user_message()}", file=sys.stderr)
        return 2


def cmd_model_info(args: argparse.Namespace) -> int:
    from inference.runtime.available import require_model_runtime

    require_model_runtime()
    from inference.weights.sizing import BYTES_PER_PARAM, count_parameters, estimate_memory, kv_cache_bytes
    from inference.weights.sources import load_config, source_label

    config = load_config(args.source)
    counts = count_parameters(config)
    print(f"model: {source_label(args.source)}")
    text = config.text_config
    print(
        f"layers {text.num_hidden_layers}, hidden {text.hidden_size}, vocab {text.vocab_size}, "
        f"canvas {config.canvas_length}, experts {counts.num_experts} (top {counts.top_k_experts})"
    )
    print("parameters by group:")
    for group, n in counts.groups.items():
        print(f"  {group:<11} {n:>16,}")
    print(f"  {'total':<11} {counts.total:>16,}")
    print(f"  {'active':<11} {counts.active:>16,}  (per token)")
    print(f"memory estimate (weights + KV cache for {args.context:,} tokens + runtime overhead):")
    for quant in ("none", "nf4"):
        for dtype in BYTES_PER_PARAM:
            est = estimate_memory(counts, dtype, quant, config, args.context)
            print(
                f"  {est.label:<24} weights {_size(est.weights_bytes)}   cache {_size(est.cache_bytes)}   "
                f"total {_size(est.total_bytes)}"
            )
    text = config.text_config
    full = sum(t == "full_attention" for t in text.layer_types)
    window = text.sliding_window
    per_1k = kv_cache_bytes(config, window + 1024, "bf16") - kv_cache_bytes(config, window, "bf16")
    print(
        f"KV cache: {full} full-attention layers hold every token, {len(text.layer_types) - full} sliding layers "
        f"the last {window}; in bf16 {_size(kv_cache_bytes(config, window, 'bf16')).strip()} for the first "
        f"{window} tokens, then {_size(per_1k).strip()} per 1K tokens"
    )
    from inference.weights.sources import generation_defaults

    print(describe_params(generation_defaults(args.source)))
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
    return processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )


def cmd_generate(args: argparse.Namespace, cancel: Any) -> int:
    """Every argument is checked (prompt, images, parameters against the checkpoint) before the model loads."""
    prompt = read_text(args.prompt, args.prompt_file, "prompt", "--prompt-file")
    check_images(args.image)
    from inference.runtime.available import require_model_runtime

    require_model_runtime()
    overrides = diffusion_overrides(args)
    checked_params(args.model, overrides)
    from inference.runtime.engine import DiffusionEngine
    from inference.weights.loading import load_model

    loaded = load_model(
        args.model, dtype=args.dtype, device=args.device, quant=args.quant, progress=None if args.json else _say
    )
    inputs = _prompt_inputs(loaded.processor, prompt, args.image)
    inputs = {k: v.to(loaded.device) if hasattr(v, "to") else v for k, v in inputs.items()}
    engine = DiffusionEngine(loaded.model, loaded.tokenizer)
    params = engine.default_params(**overrides)
    if not args.json:
        print(_model_line(loaded), file=sys.stderr)
        print(describe_params(params, overrides), file=sys.stderr)
    view = EventView(canvases=False)
    status = 0
    for event in engine.generate(inputs, params, cancel=cancel):
        status = _show_event(event, args.json, status, view)
        if type(event).__name__ == "Finished" and not event.stats.new_tokens and not args.json:
            print(_nothing_written(args.model), file=sys.stderr)
    return status


def _nothing_written(model: str) -> str:
    """What an empty answer means: the model's first canvas began with end-of-sequence (not an error)."""
    from inference.weights.tiny import TRAINED_SOURCE

    message = "dwb: the model wrote nothing: its answer began with end-of-sequence."
    if model == TRAINED_SOURCE:
        message += (
            " tiny-trained only transcribes short text pages; try `dwb parse FILE --engine model --model "
            "tiny-trained`, or a DiffusionGemma checkpoint for open questions."
        )
    return message


def _show_event(event: Any, as_json: bool, status: int, view: EventView) -> int:
    from inference.runtime.events import Cancelled, CanvasCommitted, Failed, Finished

    if as_json:
        print(json.dumps(event.to_json(), ensure_ascii=False), flush=True)
    else:
        view(event)
    if isinstance(event, CanvasCommitted) and not as_json:
        sys.stdout.write(event.text)
        sys.stdout.flush()
    elif isinstance(event, Finished) and not as_json:
        s = event.stats
        print(
            f"\n[{s.new_tokens} tokens, {len(s.steps_per_canvas)} canvas(es), steps "
            f"{', '.join(map(str, s.steps_per_canvas))}, {s.tokens_per_forward:.2f} tokens/forward, "
            f"{s.tokens_per_second:.1f} tokens/s, prefill {s.prefill_seconds:.3f} s]",
            file=sys.stderr,
        )
    if isinstance(event, Cancelled):
        where = "during the prefill" if event.canvas < 0 else f"at canvas {event.canvas}, step {event.step}"
        print(f"\ndwb: cancelled {where}", file=sys.stderr)
        return 130
    if isinstance(event, Failed):
        if not as_json:
            print(f"dwb: {event.message}", file=sys.stderr)
        return 1
    return status


def _model_line(loaded: Any) -> str:
    quant = ", NF4" if loaded.quant == "nf4" else ""
    return f"model: {loaded.label} [{loaded.dtype}{quant}, {loaded.device}]"


def _say(message: Any) -> None:
    """Loading progress on stderr: layer k of n redrawn in place on a terminal, one line per message otherwise."""
    from inference.weights.quant import LayerProgress

    if isinstance(message, LayerProgress) and sys.stderr.isatty():
        end = "\n" if message.done >= message.total else ""
        print(f"\r{message}\x1b[K", end=end, file=sys.stderr, flush=True)
    else:
        print(f"{message}", file=sys.stderr, flush=True)


def cmd_screenshot(args: argparse.Namespace) -> int:
    from app.gui.screenshot import screenshot
    from inference.errors import ConfigError

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError as exc:
        raise ConfigError(f"--size must look like 1400x860, not {args.size!r}") from exc
    path = screenshot(args.out, args.state, (width, height))
    print(path)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from app.remote_cli import cmd_serve

    return cmd_serve(args, _say)


def _engine_kind(args: argparse.Namespace) -> str:
    return args.engine or ("model" if args.model else "builtin")


class _NameOnly:
    """Stands for an engine a batch never calls (every document finished): its name keys the manifest."""

    concurrency = 1

    def __init__(self, name: str) -> None:
        self.name = name

    def page_identity(self) -> dict[str, Any]:
        return {}


def _all_finished(args: argparse.Namespace, formats: tuple[str, ...], options: Any, kind: str) -> bool:
    """Whether the batch manifest in --out already holds every input, done with these settings."""
    from pathlib import Path

    from inference.batch.runner import Manifest, check_item, item_key, plan, run_settings

    out = Path(args.out)
    if not out.is_dir():
        return False
    manifest, settings = Manifest(out), run_settings(kind, formats, args.per_page, options)
    items = plan(args.inputs)
    return bool(items) and all(
        (res := check_item(item, item_key(item), manifest, settings, out, False)[1]) is not None
        and res.status == "skipped"
        for item in items
    )


def make_engine(args: argparse.Namespace) -> Any:
    """The task engine the arguments ask for: builtin unless --engine model or a --model is given."""
    from inference.errors import ConfigError

    kind = _engine_kind(args)
    if kind == "builtin":
        from inference.tasks import BuiltinEngine

        return BuiltinEngine()
    if kind == "remote":
        from app.remote_cli import make_remote_engine

        return make_remote_engine(args, diffusion_overrides(args))
    if not args.model:
        raise ConfigError(
            "--engine model needs --model",
            hint="Use --model tiny for the built-in demo model, or a Hugging Face id or folder.",
        )
    from inference.runtime.available import require_model_runtime

    require_model_runtime()
    overrides = diffusion_overrides(args)
    checked_params(args.model, overrides)  # before any weight is read
    from inference.tasks.model import ModelEngine
    from inference.weights.loading import load_model

    loaded = load_model(args.model, dtype=args.dtype, device=args.device, quant=args.quant, progress=_say)
    print(_model_line(loaded), file=sys.stderr)
    engine = ModelEngine(loaded)
    engine.params = engine.engine.default_params(**overrides)
    print(describe_params(engine.params, overrides), file=sys.stderr)
    return engine


def cmd_parse(args: argparse.Namespace, cancel: Any) -> int:
    from inference.batch.runner import run_parse
    from inference.exports import parse_formats
    from inference.tasks.base import ParseOptions, TaskContext

    formats = parse_formats(args.format)
    options = ParseOptions(
        furniture=args.keep_furniture, batch_size=args.batch_size, ocr_lang=ocr_lang(args), ocr_jobs=ocr_jobs(args)
    )
    if args.cluster:
        from app.cluster_cli import parse_on_cluster

        result = parse_on_cluster(args, formats, options, ProgressBar(), diffusion_overrides(args))
    else:
        kind = _engine_kind(args)
        finished = not args.force and _all_finished(args, formats, options, kind)
        bar = ProgressBar()
        result = run_parse(
            args.inputs,
            args.out,
            _NameOnly(kind) if finished else make_engine(args),  # nothing left to parse: no model to load
            formats=formats,
            per_page=args.per_page,
            force=args.force,
            options=options,
            password=password_source(args),
            on_item=bar,
            context=TaskContext(on_event=EventView(args.json_events), cancel=cancel, progress=bar.page),
            doc_timeout=args.doc_timeout,
        )
    done, skipped = result.count("done"), result.count("skipped")
    print(
        f"{done} parsed, {skipped} already done, {len(result.partial)} partial, {len(result.failed)} failed "
        f"-> {args.out}",
        file=sys.stderr,
    )
    kept = sum(item.kept for item in result.items)
    if kept:
        print(f"{kept} pages kept from an earlier run (not parsed again)", file=sys.stderr)
    unsure = [item for item in result.items if item.unsure_words]
    if unsure:
        pages = sum(len(item.unsure_words) for item in unsure)
        print(f"{pages} page(s) with unsure OCR words, marked ==so== in the Markdown (below)", file=sys.stderr)
    for item in result.partial:
        print(f"  partial: {item.path}: {item.message}", file=sys.stderr)
    for item in result.items:
        if item.low_confidence:
            pages = ", ".join(map(str, item.low_confidence))
            print(f"  low confidence: {item.path}: page(s) {pages} (OCR; check against the images)", file=sys.stderr)
        if item.unsure_words:
            words = ", ".join(f"{n} on page {page}" for page, n in sorted(item.unsure_words.items()))
            print(f"  unsure OCR words: {item.path}: {words}", file=sys.stderr)
    for item in result.failed:
        print(f"  failed:  {item.message}", file=sys.stderr)
    return 1 if result.failed or result.partial else 0  # a partial document is not done: a rerun retries it


def _open_all(paths: Sequence[str], args: argparse.Namespace, skipped: list[str] | None = None) -> list[Any]:
    """The documents at ``paths`` (folders expanded). With ``skipped``, one that cannot be read is named there and on
    stderr and the rest go on (a folder's one unsupported file does not stop a question about the others);
    without it, or when none can be read, the first failure is the error."""
    from inference.documents import ingest
    from inference.errors import IngestError

    docs = []
    for r in ingest(paths, password=password_source(args)):
        if r.document is None:
            if skipped is None:
                raise IngestError(r.error or "could not be read", path=None)
            skipped.append(r.error or f"{r.path}: could not be read")
            print(f"dwb: skipped, could not be read: {skipped[-1]}", file=sys.stderr)
            continue
        docs.append(r.document)
    if not docs:
        raise IngestError(skipped[0] if skipped else "no documents given", path=None)
    return docs


def _builtin_options(args: argparse.Namespace) -> Any:
    from inference.tasks.base import ParseOptions

    return ParseOptions(ocr_lang=ocr_lang(args), ocr_jobs=ocr_jobs(args))


def cmd_ask(args: argparse.Namespace, cancel: Any) -> int:
    """Documents and question are read and checked before the model loads; what the model never saw is listed
    on stderr and in the JSON, and makes the exit status 1 unless --allow-truncation."""
    from inference.errors import ConfigError
    from inference.exports import answer_markdown
    from inference.tasks.base import TaskContext

    if args.question_file is not None:
        paths, question = args.inputs, read_text(None, args.question_file, "question", "--question-file")
    elif len(args.inputs) < 2:
        raise ConfigError('ask needs at least one document and a question: dwb ask FILE ... "QUESTION"')
    else:
        *paths, question = args.inputs
        question = read_text(question, None, "question", "--question-file")
    skipped: list[str] = []
    docs = _open_all(paths, args, skipped)
    engine = make_engine(args)
    if engine.name == "builtin":  # OCR scanned pages and mark furniture first, so that every page can be searched
        docs = [engine.parse(d, _builtin_options(args)).document for d in docs]
    if args.budget_tokens and engine.name in ("model", "remote"):
        import dataclasses

        engine.policy = dataclasses.replace(engine.policy, budget_tokens=args.budget_tokens)
    view = EventView(args.json)
    answer = engine.ask(docs, question, TaskContext(on_event=view, cancel=cancel))
    view.close()
    print(json.dumps(answer.to_json(), ensure_ascii=False, indent=1) if args.json else answer_markdown(answer))
    for item in answer.left_out:
        print(f"dwb: left out, never read by the model: {item.describe()}", file=sys.stderr)
    if answer.cut_off:
        print(
            f"dwb: the answer is incomplete: the server stopped it before its end (finish_reason: {answer.cut_off})",
            file=sys.stderr,
        )
        if not args.allow_truncation:
            return 1
    if (answer.left_out or skipped) and not args.allow_truncation:
        print(
            f"dwb: {len(answer.left_out) + len(skipped)} part(s) of the documents were left out, so the answer may "
            "miss them (--allow-truncation accepts this)",
            file=sys.stderr,
        )
        return 1
    if not answer.citations:
        print("dwb: the answer cites no passage of the documents", file=sys.stderr)
        return 1
    return 0


def cmd_extract(args: argparse.Namespace, cancel: Any) -> int:
    from inference.errors import ConfigError
    from inference.exports import extraction_json, write_atomic
    from inference.tasks.base import TaskContext
    from inference.tasks.schema import load_schema

    schema = load_schema(args.schema)
    redo = {"redo": args.redo, "redo_below": args.redo_below, "redo_rounds": args.redo_rounds}
    if _engine_kind(args) != "model" and (args.redo or args.redo_below is not None):
        raise ConfigError("--redo and --redo-below re-denoise on the canvas: they need --engine model")
    if args.no_template and (args.redo or args.redo_below is not None):
        raise ConfigError("--redo and --redo-below need the canvas template: drop --no-template")
    fields = list(schema.get("properties", {}))
    for name in args.redo or ():  # named before any document is read or weight loaded
        if name not in fields:
            raise ConfigError(f"no field {name!r} to re-denoise (fields: {', '.join(fields)})")
    docs = _open_all(args.inputs, args)
    engine = make_engine(args)
    if engine.name == "builtin":
        docs = [engine.parse(d, _builtin_options(args)).document for d in docs]
    view = EventView(args.json_events)
    context = TaskContext(on_event=view, cancel=cancel)
    if engine.name in ("model", "remote"):
        engine.template = not args.no_template
        result = engine.extract(docs, schema, context, **redo)
    else:
        result = engine.extract(docs, schema, context)
    view.close()
    text = extraction_json(result)
    if args.out:
        from pathlib import Path

        write_atomic(Path(args.out), text)
    print(text)
    if not result.valid:
        print("dwb: the result is not valid against the schema:\n  " + "\n  ".join(result.errors), file=sys.stderr)
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())
