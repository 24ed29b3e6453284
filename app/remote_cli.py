"""The ``dwb`` options for scaling out: ``--engine remote`` on parse/ask/extract, and ``dwb serve``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from inference.errors import ConfigError


def add_remote_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("remote engine (--engine remote)")
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (dwb serve or vLLM)",
    )
    group.add_argument("--remote-model", metavar="NAME", help="the model to ask for (default: the first listed)")
    group.add_argument("--api-key-env", metavar="VAR", help="the environment variable holding the bearer token")
    group.add_argument(
        "--concurrency",
        type=int,
        default=4,
        metavar="N",
        help="requests in flight (documents and pages in parallel; default 4)",
    )
    group.add_argument("--timeout", type=float, default=600.0, metavar="S", help="seconds per request (default 600)")
    group.add_argument(
        "--max-images",
        type=int,
        metavar="N",
        help="images per request the server takes (default: what dwb serve states, else 8, as vLLM's "
        "--limit-mm-per-prompt); questions over more pages are asked in parts",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=4,
        metavar="N",
        help="tries after the first on connection errors and 408/409/429/5xx (default 4)",
    )


def _add_serve_limits(serve: Any) -> None:
    """What one request, and one batch, may take."""
    serve.add_argument(
        "--max-batch", type=int, default=4, metavar="N", help="requests run together as one batch (default 4)"
    )
    serve.add_argument(
        "--request-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds a request may run before it is cancelled (default 600; 0: no limit)",
    )
    serve.add_argument(
        "--max-prompt-tokens", type=int, metavar="N", help="prompt tokens per request (default: the model's context)"
    )
    serve.add_argument(
        "--max-tokens", type=int, default=32_768, metavar="N", help="new tokens per request at most (default 32768)"
    )
    serve.add_argument(
        "--max-steps", type=int, default=1024, metavar="N", help="denoising steps per canvas at most (default 1024)"
    )
    serve.add_argument(
        "--max-images", type=int, default=16, metavar="N", help="images per request at most (default 16)"
    )
    serve.add_argument(
        "--max-request-pixels",
        type=float,
        default=800,
        metavar="MP",
        help="decoded image pixels per request at most, in megapixels, checked before any image is decoded "
        "(default 800; one image at most 50)",
    )
    serve.add_argument(
        "--max-batch-pixels",
        type=float,
        default=100,
        metavar="MP",
        help="image megapixels decoded at once over all requests being prepared; more wait (default 100)",
    )


def add_serve_parser(sub: Any, add_model_args: Any) -> None:
    serve = sub.add_parser("serve", help="serve the engine over the OpenAI chat-completions protocol")
    add_model_args(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key-env", metavar="VAR", help="require the bearer token held by this variable")
    serve.add_argument(
        "--queue",
        type=int,
        default=16,
        metavar="N",
        help="runs waiting at most; more get 503 with Retry-After (default 16)",
    )
    serve.add_argument("--max-body-mb", type=float, default=64, metavar="MB", help="request size limit (default 64)")
    serve.add_argument("--served-name", metavar="NAME", help="the model id clients ask for (default: --model)")
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow a --host beyond this machine without --api-key-env (anyone who reaches it can use the model)",
    )
    _add_serve_limits(serve)
    serve.add_argument(
        "--shutdown-grace",
        type=float,
        default=10.0,
        metavar="S",
        help="on SIGTERM/Ctrl-C, seconds in-flight requests may go on; then they are stopped and their streams end "
        "with finish_reason abort and an error event (default 10)",
    )


def _secret(var: str | None) -> str | None:
    if not var:
        return None
    value = os.environ.get(var, "").strip()
    if not value:
        raise ConfigError(f"--api-key-env {var}: the variable is not set or empty.")
    return value


def remote_spec(args: argparse.Namespace, params: dict[str, Any] | None = None) -> Any:
    """What builds the remote engine, here or on each Ray worker (``dwb parse --cluster``)."""
    from inference.batch.cluster import RemoteSpec

    if not args.base_url:
        raise ConfigError("--engine remote needs --base-url", hint="For example --base-url http://127.0.0.1:8000/v1")
    max_images = getattr(args, "max_images", None)
    if args.concurrency < 1 or args.retries < 0 or args.timeout <= 0 or (max_images is not None and max_images < 1):
        raise ConfigError("--concurrency and --max-images must be >= 1, --retries >= 0 and --timeout > 0.")
    source = args.model  # else the processor of the model the server serves, by its name
    which = source or "the model the server lists"
    print(f"remote: {args.base_url} (prompts built with the processor of {which})", file=sys.stderr)
    return RemoteSpec(
        args.base_url,
        source,
        model=args.remote_model,
        api_key=_secret(args.api_key_env),
        concurrency=args.concurrency,
        timeout=args.timeout,
        http_retries=args.retries,
        params=tuple(sorted((params or {}).items())),
        max_images=max_images,
    )


def make_remote_engine(args: argparse.Namespace, params: dict[str, Any] | None = None) -> Any:
    return remote_spec(args, params).build()


def _log_access_to_stderr() -> None:
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    access = logging.getLogger("dwb.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


def _serve_limits(args: argparse.Namespace) -> Any:
    """The server's limits from its options, each checked (a ``ConfigError`` naming the options otherwise)."""
    from inference.serving.images import ImageLimits
    from inference.serving.runner import Limits

    numbers = (
        args.queue,
        args.max_batch,
        args.max_tokens,
        args.max_steps,
        args.max_images,
        args.max_prompt_tokens or 1,
    )
    positive = (args.max_body_mb, args.max_request_pixels, args.max_batch_pixels)
    if min(numbers) < 1 or min(positive) <= 0 or args.request_timeout < 0 or args.shutdown_grace < 0:
        raise ConfigError(
            "--queue, --max-batch, --max-tokens, --max-steps, --max-images and --max-prompt-tokens must be >= 1, "
            "--max-body-mb, --max-request-pixels and --max-batch-pixels > 0, --request-timeout and --shutdown-grace "
            ">= 0."
        )
    per_image = min(50_000_000, int(args.max_request_pixels * 1e6))
    return Limits(
        max_prompt_tokens=args.max_prompt_tokens or 262_144,
        max_new_tokens=args.max_tokens,
        max_steps=args.max_steps,
        max_images=args.max_images,
        images=ImageLimits(per_image, int(args.max_request_pixels * 1e6), int(args.max_batch_pixels * 1e6)),
        request_timeout=args.request_timeout or float("inf"),
    )


def cmd_serve(args: argparse.Namespace, say: Any) -> int:

    from inference.serving.runner import Runner
    from inference.serving.server import ChatApp, ServeConfig, check_host, make_server
    from inference.weights.loading import load_model

    key = _secret(args.api_key_env)
    refusal = check_host(args.host, key, insecure=args.insecure)
    if refusal:
        raise ConfigError(refusal)
    if args.host not in ("127.0.0.1", "::1", "localhost") and not key:
        print(f"dwb: listening on {args.host} without a token (--insecure)", file=sys.stderr)
    limits = _serve_limits(args)
    loaded = load_model(args.model, dtype=args.dtype, device=args.device, quant=args.quant, progress=say)
    runner = Runner(loaded, queue_size=args.queue, max_batch=args.max_batch, limits=limits)
    app = ChatApp(
        runner,
        ServeConfig(
            model_name=args.served_name or args.model,
            api_key=key,
            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
            shutdown_grace=args.shutdown_grace,
        ),
    )

    _log_access_to_stderr()
    print(
        f"dwb serve: {loaded.label} [{loaded.dtype}, {loaded.device}] on http://{args.host}:{args.port}/v1 "
        f"(batches of up to {args.max_batch}, context {runner.limits.max_prompt_tokens} tokens)",
        file=sys.stderr,
    )
    make_server(app, args.host, args.port).run()
    runner.close()
    return 0
