"""``dwb serve``: the engine behind the OpenAI chat-completions protocol (Starlette + uvicorn).

- ``GET /v1/models`` (with ``max_model_len`` as vLLM lists it, and this server's limits under ``dwb``),
  ``POST /v1/chat/completions`` (streaming as server-sent events, and not), images as data URLs, ``GET /metrics``
  (Prometheus text), ``GET /health``.
- Extension: a request with ``"dwb": {"events": true}`` gets every engine event in the stream, one chunk each, in a
  ``dwb`` field with its arrays packed as binary base64 (``wire.encode_event``); plain clients ignore the field.
- Limits, checked before any prefill: prompt tokens (the model's context or ``max_prompt_tokens``), images, new
  tokens, denoising steps, finite parameters; anything over or malformed gets 400 naming the allowed range, OpenAI
  fields this engine cannot honour get 400 naming them (``stop`` strings are honoured). A request runs at most
  ``request_timeout`` seconds: then its run is cancelled and its stream ends with an error chunk.
- A client that goes away cancels its run (the engine stops before its next step); the server keeps serving.
- A full queue answers 503 with ``Retry-After``; a bearer token is required when one is configured; bodies over
  the limit get 413; no error ever answers with a traceback. Each request writes one access-log line (logger
  ``dwb.access``: client, method, path, status, seconds, tokens; never the prompt or the token).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from inference.runtime.events import Cancelled, CanvasCommitted, Event, Failed, Finished
from inference.serving.runner import QueueFullError, Run, Runner
from inference.serving.wire import EXTENSION, WireError, encode_event

log = logging.getLogger(__name__)
access = logging.getLogger("dwb.access")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
# OpenAI fields the diffusion engine cannot honour, with the value that asks for nothing (then they are accepted)
UNSUPPORTED = {
    "temperature": None,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logit_bias": None,
    "logprobs": False,
    "top_logprobs": None,
    "tools": None,
    "tool_choice": None,
    "functions": None,
    "function_call": None,
    "response_format": None,
    "best_of": None,
}
MAX_STOPS = 4


@dataclass(frozen=True)
class ServeConfig:
    model_name: str
    api_key: str | None = None
    max_body_bytes: int = 64 * 1024 * 1024
    max_messages: int = 256


def error(status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}}, status_code=status, headers=headers
    )


class _Disconnect:
    """Cancels a run when the client goes away (the body is read already, so ``receive`` waits for that)."""

    def __init__(self, receive: Any, run: Run) -> None:
        self.task = asyncio.ensure_future(self._watch(receive, run))

    @staticmethod
    async def _watch(receive: Any, run: Run) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                run.cancel.cancel()
                return

    def stop(self) -> None:
        self.task.cancel()


@dataclass(frozen=True)
class Options:
    """How one request is answered (beyond what the runner runs)."""

    stream: bool = False
    events: bool = False
    usage: bool = False  # stream_options.include_usage
    stops: tuple[str, ...] = ()


class _RunResponse(Response):
    """Runs ``run`` while watching for the client going away; streams it or answers once it ends."""

    def __init__(self, run: Run, app: ChatApp, options: Options) -> None:
        super().__init__()
        self.run, self.app, self.options = run, app, options
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        watcher = _Disconnect(receive, self.run)
        try:
            if self.options.stream:
                await self._stream(send)
            else:
                await self._whole(scope, send)
        except OSError:  # the client went away while we wrote
            self.run.cancel.cancel()
        finally:
            watcher.stop()
            if not isinstance(self.run.last, (Finished, Failed, Cancelled)):
                self.run.cancel.cancel()
            scope.setdefault("state", {})["dwb_tokens"] = (self.run.prompt_tokens, self._completion_tokens())

    def _completion_tokens(self) -> int:
        last = self.run.last
        return last.stats.new_tokens if isinstance(last, Finished) else 0

    def _usage(self) -> dict[str, int]:
        done = self._completion_tokens()
        return {
            "prompt_tokens": self.run.prompt_tokens,
            "completion_tokens": done,
            "total_tokens": self.run.prompt_tokens + done,
        }

    async def _events(self) -> Any:
        while True:
            event = await self.run.events.get()
            if event is None:
                return
            yield event

    def _chunk(self, delta: dict | None, finish: str | None = None, event: Event | None = None, **extra: Any) -> bytes:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.app.config.model_name,
            "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        if event is not None:
            body[EXTENSION] = encode_event(event)
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    async def _stream(self, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )

        async def emit(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await emit(self._chunk({"role": "assistant", "content": ""}))
        text = _TextDeltas(self.app.runner.engine, self.options.stops)
        async for event in self._events():
            if self.options.events:
                await emit(self._chunk(None, event=event))
            if isinstance(event, CanvasCommitted):
                delta = text.committed(event)
                if delta:
                    await emit(self._chunk({"content": delta}))
            elif isinstance(event, Finished):
                delta = text.finished(event)
                await emit(self._chunk({"content": delta} if delta else {}, finish=text.reason))
            elif isinstance(event, Failed):
                await emit(_error_chunk(self._failed(event), "server_error"))
            elif isinstance(event, Cancelled) and self.run.timed_out:
                await emit(_error_chunk(self._timeout_message(), "timeout"))
        if self.options.usage:
            await emit(self._chunk(None, usage=self._usage()))
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    def _failed(self, event: Failed) -> str:
        """The operator's log gets one line per failed request (the traceback is the engine's, at INFO for -v)."""
        log.error("request %s failed: %s: %s", self.id, event.error_type, event.message)
        return f"generation failed: {event.message}"

    def _timeout_message(self) -> str:
        limit = self.app.runner.limits.request_timeout
        return f"the request ran past this server's time limit ({limit:g} s) and was cancelled"

    async def _whole(self, scope: Any, send: Any) -> None:
        async for _event in self._events():
            pass
        last = self.run.last
        if isinstance(last, Finished):
            deltas = _TextDeltas(self.app.runner.engine, self.options.stops)
            content = deltas.finished(last)
            response: Response = JSONResponse(
                {
                    "id": self.id,
                    "object": "chat.completion",
                    "created": self.created,
                    "model": self.app.config.model_name,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": deltas.reason,
                        }
                    ],
                    "usage": self._usage(),
                    EXTENSION: encode_event(last),
                }
            )
        elif isinstance(last, Failed):
            response = error(500, self._failed(last), "server_error")
        elif self.run.timed_out:
            response = error(504, self._timeout_message(), "timeout")
        else:
            response = error(499, "the run was cancelled", "cancelled")
        await response(scope, _never, send)


def _error_chunk(message: str, kind: str) -> bytes:
    return b"data: " + json.dumps({"error": {"message": message, "type": kind}}).encode() + b"\n\n"


async def _never() -> dict:
    await asyncio.Event().wait()
    return {}


class _TextDeltas:
    """Text as it is committed, canvas by canvas: decoded from all ids so far, so that a character split between
    two canvases comes out whole; the last delta makes the streamed text equal ``Finished.text`` (cut at the first
    stop string, if any; text that could begin a stop string is held back until it cannot)."""

    def __init__(self, engine: Any, stops: tuple[str, ...] = ()) -> None:
        self.engine, self.stops = engine, stops
        self.ids: list[int] = []
        self.sent = ""
        self.reason = "stop"
        self.stopped = False

    def _cut(self, text: str, final: bool) -> str:
        for stop in self.stops:
            at = text.find(stop)
            if at >= 0:
                text, self.stopped = text[:at], True
        if not final and not self.stopped and self.stops:
            hold = max(len(s) for s in self.stops) - 1
            text = text[: max(len(self.sent), len(text) - hold)]
        return text

    def committed(self, event: CanvasCommitted) -> str:
        if self.stopped:
            return ""
        self.ids.extend(int(i) for i in event.ids[0])
        text = self._cut(self.engine._decode(_array(self.ids)).rstrip("\ufffd"), final=False)
        if not text.startswith(self.sent):
            return ""
        delta, self.sent = text[len(self.sent) :], text
        return delta

    def finished(self, event: Finished) -> str:
        text = self.sent if self.stopped else self._cut(event.text, final=True)
        self.reason = "stop" if self.stopped else self.reason_of(event)
        return text[len(self.sent) :] if text.startswith(self.sent) else ""

    def reason_of(self, event: Finished) -> str:
        """``stop`` when the row ended by itself (an end-of-sequence or padding token), ``length`` when it ran out
        of new tokens."""
        ends = set(self.engine.eos_token_ids)
        if self.engine.pad_token_id is not None:
            ends.add(int(self.engine.pad_token_id))
        return "stop" if any(int(i) in ends for i in event.ids[0]) else "length"


def _array(ids: list[int]) -> Any:
    import numpy as np

    return np.array(ids, dtype=np.int64)


class ChatApp:
    """The Starlette application around a ``Runner``."""

    def __init__(self, runner: Runner, config: ServeConfig) -> None:
        self.runner, self.config = runner, config
        self.started = time.monotonic()
        self.starlette = Starlette(
            routes=[
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/health", self.health, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
            ],
            exception_handlers={Exception: self._crash, 404: self._not_found, 405: self._not_allowed},
        )

    @property
    def app(self) -> Any:
        """The ASGI application (an object, so that servers see an ASGI 3 callable)."""
        return _Asgi(self.serve)

    async def serve(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI entry: the routes, with one access-log line and a status count per HTTP request."""
        if scope["type"] != "http":
            return await self.starlette(scope, receive, send)
        started, status = time.perf_counter(), [0]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.starlette(scope, receive, sending)
        finally:
            self.runner.metrics.request(status[0] or 499)
            prompt, done = scope.get("state", {}).get("dwb_tokens", (0, 0))
            if prompt:
                self.runner.metrics.add("prompt_tokens", prompt)
            client = scope.get("client") or ("-", 0)
            access.info(
                '%s "%s %s" %s %.3fs prompt_tokens=%d completion_tokens=%d',
                client[0],
                scope.get("method", "-"),
                scope.get("path", "-"),
                status[0] or "-",
                time.perf_counter() - started,
                prompt,
                done,
            )

    async def _crash(self, request: Request, exc: Exception) -> Response:
        log.error("request failed: %s: %s", type(exc).__name__, exc)  # one line; the traceback with -v
        log.info("request failed", exc_info=exc)
        return error(500, f"internal error: {type(exc).__name__}", "server_error")

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return error(404, f"no such endpoint: {request.url.path}", "not_found")

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        return error(405, f"{request.method} is not allowed on {request.url.path}", "not_allowed")

    def _unauthorized(self, request: Request) -> Response | None:
        key = self.config.api_key
        if not key:
            return None
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode()):
            return None
        return error(
            401,
            "a valid bearer token is required (Authorization: Bearer ...)",
            "authentication_error",
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "queued": self.runner.waiting})

    async def metrics(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied:
            return denied
        runner = self.runner
        text = runner.metrics.render(
            {
                "queue_depth": ("Requests waiting for the engine.", lambda: runner.waiting),
                "running_batch_size": (
                    "Rows of the batch the engine is running (0: idle).",
                    lambda: runner.running_rows,
                ),
                "in_flight": ("Requests queued or running.", lambda: runner.in_flight),
            }
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def models(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied:
            return denied
        limits = self.runner.limits
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.config.model_name,
                        "object": "model",
                        "created": 0,
                        "owned_by": "dwb",
                        "max_model_len": self.runner.context,
                        EXTENSION: {
                            "extension": True,
                            "max_prompt_tokens": limits.max_prompt_tokens,
                            "max_new_tokens": limits.max_new_tokens,
                            "max_steps": limits.max_steps,
                            "max_images": limits.max_images,
                            "max_batch": self.runner.max_batch,
                            "request_timeout": limits.request_timeout,
                        },
                    }
                ],
                # takes dwb.template (a pinned canvas, inference.runtime.template) in chat requests
                EXTENSION: {"template": True, "canvas_length": int(self.runner.loaded.model.config.canvas_length)},
            }
        )

    async def _body(self, request: Request) -> dict[str, Any]:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise _TooLarge(limit)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge(limit)
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise WireError(f"the body is not valid JSON: {str(exc)[:200] or type(exc).__name__}") from exc
        if not isinstance(body, dict):
            raise WireError("the body must be a JSON object")
        if isinstance(body.get("messages"), list) and len(body["messages"]) > self.config.max_messages:
            raise WireError(f"more than {self.config.max_messages} messages")
        return body

    async def chat(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied:
            return denied
        self.runner.arrival(+1)  # the worker waits for this request to join a batch
        try:
            body = await self._body(request)
            model = body.get("model")
            if model is not None and model != self.config.model_name:
                return error(
                    404,
                    f"model {model!r} is not served here; this server serves {self.config.model_name!r}",
                    "model_not_found",
                )
            options = request_options(body)
            text, images, soft, params, inputs = await run_in_threadpool(self._prepare, body)
            template = self.runner.template_for(body.get(EXTENSION) or {})
            run = self.runner.submit(
                inputs, params, text=text, images=images, soft=soft, template=template, quiet=not options.stream
            )
        except _TooLarge as exc:
            return error(413, f"the request is larger than {exc.limit} bytes", "request_too_large")
        except WireError as exc:
            return error(400, exc.message)
        except QueueFullError as exc:
            return error(503, exc.message, "overloaded", headers={"Retry-After": str(exc.retry_after)})
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError, OverflowError) as exc:
            # a shape of body no check above foresaw: still the request's fault, never a 500
            return error(400, f"the request is malformed ({type(exc).__name__}: {str(exc)[:200]})")
        finally:
            self.runner.arrival(-1)
        return _RunResponse(run, self, options)

    def _prepare(self, body: dict[str, Any]) -> tuple[str, list[Any], int, Any, dict[str, Any]]:
        text, images, soft, params = self.runner.parse_request(body)
        return text, images, soft, params, self.runner.encode(text, images, soft)


def request_options(body: dict[str, Any]) -> Options:
    """The answering options of a request; a ``WireError`` for fields that are malformed or cannot be honoured."""
    stream = body.get("stream", False)
    extension = body.get(EXTENSION) or {}
    if not isinstance(stream, bool) or not isinstance(extension, dict):
        raise WireError("'stream' must be a boolean and 'dwb' an object")
    refused = sorted(k for k, neutral in UNSUPPORTED.items() if body.get(k) is not None and body.get(k) != neutral)
    if refused:
        raise WireError(
            f"not supported by this diffusion engine: {', '.join(refused)} (leave them out; the sampler's "
            "parameters go in dwb.params)"
        )
    stops = body.get("stop")
    stops = [stops] if isinstance(stops, str) else (stops or [])
    if not isinstance(stops, list) or len(stops) > MAX_STOPS or not all(isinstance(s, str) and s for s in stops):
        raise WireError(f"'stop' must be a string or a list of at most {MAX_STOPS} non-empty strings")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise WireError("'stream_options' must be an object")
    return Options(
        stream=stream,
        events=bool(extension.get("events")),
        usage=bool(stream_options.get("include_usage")),
        stops=tuple(stops),
    )


class _Asgi:
    def __init__(self, call: Any) -> None:
        self.call = call

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.call(scope, receive, send)


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def check_host(host: str, api_key: str | None, insecure: bool = False) -> str | None:
    """Why the server must not start: it would listen beyond this machine with no token (unless ``insecure``)."""
    if host in LOOPBACK or api_key or insecure:
        return None
    return (
        f"dwb serve would listen on {host} without a token: anyone who reaches this address could use the model. "
        "Set --api-key-env VAR (the variable holding the token), or pass --insecure to accept that."
    )


def start(app: ChatApp, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, Any, int]:
    """Serve ``app`` on a background thread; returns ``(server, thread, port)`` once it listens (port 0: a free one).
    Stop it with ``server.should_exit = True; thread.join()``."""
    import threading

    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app.app, host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, name="dwb-serve", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise OSError(f"dwb serve could not listen on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, bound
