"""The ``dwb`` command line's arguments: every command and option, checked as far as the value alone tells."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli_checks import add_diffusion_args, positive_int
from app.cli_documents import add_document_args
from app.resources import app_version
from inference.weights.choices import DEVICES, DTYPES, QUANT_CHOICES, QUANT_HELP

MODEL_HELP = (
    "'tiny' (built-in random weights), 'tiny-trained' (built-in demonstration model that transcribes short "
    "text pages), a Hugging Face id, or a local folder"
)


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny", help=f"model source: {MODEL_HELP} (default: tiny)")
    parser.add_argument("--dtype", default="auto", choices=DTYPES)
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--quant", default="auto", choices=QUANT_CHOICES, help=QUANT_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dwb", description="Diffusion Workbench: documents in, DiffusionGemma out.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks) to stderr")
    parser.add_argument("--version", action="version", version=f"%(prog)s {app_version()}")
    sub = parser.add_subparsers(dest="command")
    for add in (_add_generate, _add_model_info, _add_window_commands, _add_parse, _add_ask, _add_extract):
        add(sub)
    from app.remote_cli import add_serve_parser

    add_serve_parser(sub, _add_model_args)
    return parser


def _add_generate(sub: Any) -> None:
    """dwb generate."""
    gen = sub.add_parser("generate", help="run prefill and block diffusion on a prompt, streaming the text")
    _add_model_args(gen)
    gen.add_argument("--image", action="append", default=[], metavar="FILE", help="an image to put before the text")
    gen.add_argument("--json", action="store_true", help="print one JSON object per event, one per line")
    gen.add_argument("--prompt-file", metavar="FILE", help="read the prompt from FILE (- for standard input)")
    gen.add_argument("prompt", nargs="?", help="the prompt; - reads it from standard input")
    add_diffusion_args(gen, seed_default=0)


def _add_model_info(sub: Any) -> None:
    """dwb model-info."""
    info = sub.add_parser("model-info", help="parameter counts by group and memory estimates, from the config alone")
    info.add_argument("source", help=MODEL_HELP)
    info.add_argument(
        "--context",
        type=int,
        default=262_144,
        metavar="N",
        help="tokens of context for the KV cache estimate (default 262144)",
    )
    info.add_argument(
        "--quant",
        default="auto",
        choices=QUANT_CHOICES,
        help="accepted for symmetry; model-info shows every quantization",
    )


def _add_window_commands(sub: Any) -> None:
    """dwb gui and dwb screenshot."""
    gui = sub.add_parser("gui", help="open the window (the default without a command), optionally with files")
    gui.add_argument("files", nargs="*", metavar="FILE")
    shot = sub.add_parser("screenshot", help="render the window offscreen in a state and save it as PNG")
    shot.add_argument("out", metavar="OUT.png")
    from app.gui.screenshot import STATES  # no Qt at import: the window's states, named once

    shot.add_argument("--state", default="done", choices=STATES)
    shot.add_argument("--size", default="1400x860", help="WIDTHxHEIGHT (default 1400x860)")


def _add_parse(sub: Any) -> None:
    """dwb parse."""
    parse = sub.add_parser("parse", help="documents to Markdown / JSON / text / HTML / CSV, resumable")
    parse.add_argument("inputs", nargs="+", metavar="FILE|DIR")
    parse.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parse.add_argument(
        "--format",
        default="md",
        help="comma-separated: md,json,txt,html,csv,pdf (pdf: searchable, pages + invisible text; default: md)",
    )
    parse.add_argument("--per-page", action="store_true", help="one Markdown file per page: <stem>_pg<N>.md")
    parse.add_argument("--keep-furniture", action="store_true", help="keep running headers, footers, page numbers")
    parse.add_argument("--force", action="store_true", help="parse again documents a previous run finished")
    parse.add_argument(
        "--doc-timeout",
        type=float,
        metavar="S",
        help="seconds per document; past it the document fails (a rerun retries)",
    )
    parse.add_argument("--json-events", action="store_true", help="progress as JSON events on stderr")
    parse.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="pages per engine run with --engine model (default: chosen from free memory, at most 8)",
    )
    _add_engine_args(parse)
    add_document_args(parse)
    from app.cluster_cli import add_cluster_args

    add_cluster_args(parse)


def _add_ask(sub: Any) -> None:
    """dwb ask."""
    ask = sub.add_parser("ask", help="a question over documents; the answer cites its pages")
    ask.add_argument(
        "inputs", nargs="+", metavar="FILE ... QUESTION", help="documents, then the question (or --question-file)"
    )
    ask.add_argument("--question-file", metavar="FILE", help="read the question from FILE (- for standard input)")
    ask.add_argument(
        "--allow-truncation",
        action="store_true",
        help="exit 0 even when parts of the documents could not be given to the model (they are still listed) or "
        "the server cut the answer off (it is still said)",
    )
    ask.add_argument(
        "--json", action="store_true", help="the answer as JSON on stdout; progress as JSON events on stderr"
    )
    ask.add_argument(
        "--budget-tokens",
        type=positive_int,
        metavar="N",
        help="tokens one prompt may hold with --engine model or remote (default: the context less 8192 kept for the "
        "answer; a server's own limits cap it); more is read in chunks",
    )
    _add_engine_args(ask)
    add_document_args(ask)


def _add_extract(sub: Any) -> None:
    """dwb extract."""
    extract = sub.add_parser("extract", help="fields described by a JSON Schema, with the page of each value")
    extract.add_argument("inputs", nargs="+", metavar="FILE")
    extract.add_argument("--schema", required=True, metavar="SCHEMA.json")
    extract.add_argument("--out", metavar="FILE.json", help="also write the result here")
    extract.add_argument(
        "--no-template",
        action="store_true",
        help="--engine model: ask for JSON in the prompt and retry on errors, instead of pinning the schema on the "
        "canvas (docs/extraction.md)",
    )
    extract.add_argument(
        "--redo", action="append", default=[], metavar="FIELD", help="re-denoise this field once more (repeatable)"
    )
    extract.add_argument(
        "--redo-below",
        type=float,
        metavar="P",
        help="re-denoise the fields whose measured confidence is under P (0..1; 0.5 is the window's threshold: "
        "empty and ungrounded values are always under it), up to --redo-rounds times",
    )
    extract.add_argument("--redo-rounds", type=int, default=2, metavar="N")
    extract.add_argument("--json-events", action="store_true", help="progress as JSON events on stderr")
    _add_engine_args(extract)
    add_document_args(extract)


def _add_engine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=("builtin", "model", "remote"),
        default=None,
        help="builtin (no weights; the default without --model), model (DiffusionGemma), or remote "
        "(an OpenAI-compatible server: dwb serve, vLLM)",
    )
    parser.add_argument("--model", default=None, help=f"model source for --engine model: {MODEL_HELP}")
    parser.add_argument("--dtype", default="auto", choices=DTYPES)
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--quant", default="auto", choices=QUANT_CHOICES, help=f"with --engine model: {QUANT_HELP}")
    add_diffusion_args(parser)
    from app.remote_cli import add_remote_args

    add_remote_args(parser)
