"""``dwb serve``: the engine behind the OpenAI chat-completions protocol (Starlette + uvicorn, server-sent events by
``sse-starlette``, requests validated by ``inference.serving.request``).

- ``GET /v1/models`` (with ``max_model_len`` as vLLM lists it, and this server's limits under ``dwb``),
  ``POST /v1/chat/completions`` (streaming as server-sent events, and not), images as data URLs, ``GET /metrics``
  (Prometheus, ``inference.serving.metrics``), ``GET /health``.
- Extension: a request with ``"dwb": {"events": true}`` gets every engine event in the stream, one chunk each, in a
  ``dwb`` field with its arrays packed as binary base64 (``wire.encode_event``); plain clients ignore the field.
- Limits, checked before any prefill: prompt tokens (the model's context or ``max_prompt_tokens``), images and their
  decoded pixels, new tokens, denoising steps, finite parameters; anything over or malformed gets 400 naming the
  allowed range. ``max_tokens`` cuts the answer at exactly that many tokens (``finish_reason: "length"``), as OpenAI
  and vLLM do. A request runs at most ``request_timeout`` seconds: then its run is cancelled, its stream ends with
  an error chunk, and a whole answer gets 504 with ``x-should-retry: false`` (the same request would run out of
  time again).
- A client that goes away cancels its run (the engine stops before its next step); the server keeps serving, and
  logs it as a disconnect (no traceback, never a 500).
- Shutdown (``begin_shutdown``, on SIGTERM): new requests get 503; in-flight runs go on for at most
  ``ServeConfig.shutdown_grace`` seconds, then are stopped and their streams end with ``finish_reason: "abort"``
  and an error chunk.
- A full queue answers 503 with ``Retry-After``; a bearer token is required when one is configured; bodies over
  the limit get 413; no error ever answers with a traceback. Each request writes one access-log line (logger
  ``dwb.access``: client, method, path, status, outcome, seconds, tokens; never the prompt or the token).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inference.runtime.events import Cancelled, CanvasCommitted, Event, Failed, Finished
from inference.serving.metrics import CONTENT_TYPE
from inference.serving.request import ChatRequest, parse_chat
from inference.serving.runner import QueueFullError, Run, Runner
from inference.serving.text import AnswerText
from inference.serving.wire import EXTENSION, WireError, encode_event

log = logging.getLogger(__name__)
access = logging.getLogger("dwb.access")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
NO_RETRY = {"x-should-retry": "false"}  # the OpenAI clients read it: a retry would fail the same way
_SHUTDOWN, _DEADLINE = object(), object()  # put in a run's queue: the server began to shut down; its grace ran out


@dataclass(frozen=True)
class ServeConfig:
    model_name: str
    api_key: str | None = None
    max_body_bytes: int = 64 * 1024 * 1024
    max_messages: int = 256
    shutdown_grace: float = 10.0  # seconds in-flight runs may go on once shutdown begins


def error(status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}}, status_code=status, headers=headers
    )


@dataclass(frozen=True)
class Options:
    """How one request is answered (beyond what the runner runs)."""

    stream: bool = False
    events: bool = False
    usage: bool = False  # stream_options.include_usage
    stops: tuple[str, ...] = ()


class _Exchange:
    """One accepted request's answer: its run's events until the end, the text cut as asked, how it ended."""

    def __init__(self, run: Run, app: ChatApp, options: Options, reader: Any = None) -> None:
        self.run, self.app, self.options = run, app, options
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.text = AnswerText(app.runner.engine, options.stops, run.params.max_new_tokens, reader)
        self.outcome = "disconnected"  # until it ends otherwise
        self.aborted = False

    def shutdown_started(self) -> None:
        self.run.events.put_nowait(_SHUTDOWN)

    async def events(self) -> AsyncIterator[Event]:
        """The run's events; at the end of the shutdown grace the run is stopped (``aborted``) and they end."""
        self.app.active.add(self)
        if self.app.closing_at is not None:
            self.shutdown_started()
        try:
            while True:
                event = await self.run.events.get()
                if event is None:
                    return
                if event is _SHUTDOWN:
                    closing_at = self.app.closing_at
                    if closing_at is None:  # begin_shutdown() sets it before it queues _SHUTDOWN
                        raise RuntimeError("a shutdown event reached a request before the server began closing")
                    left = max(0.0, closing_at + self.app.config.shutdown_grace - time.monotonic())
                    asyncio.get_running_loop().call_later(left, self.run.events.put_nowait, _DEADLINE)
                    continue
                if event is _DEADLINE:
                    self.aborted = True
                    self.outcome = "abort"
                    self.run.cancel.cancel()
                    return
                yield event
        finally:
            self.app.active.discard(self)

    def ended(self) -> None:
        """Whatever ended the exchange, its run is not left running, and the access log gets its outcome."""
        if not isinstance(self.run.last, (Finished, Failed, Cancelled)):
            self.run.cancel.cancel()

    def usage(self) -> dict[str, int]:
        done = self.text.tokens
        return {
            "prompt_tokens": self.run.prompt_tokens,
            "completion_tokens": done,
            "total_tokens": self.run.prompt_tokens + done,
        }

    def chunk(self, delta: dict | None, finish: str | None = None, event: Event | None = None, **extra: Any) -> str:
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
        return json.dumps(body, separators=(",", ":"))

    async def stream(self) -> AsyncIterator[str]:
        """The server-sent events' data: chunks as the canvases commit, the end, ``[DONE]``."""
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            async for event in self.events():
                if self.options.events:
                    yield self.chunk(None, event=event)
                for data in self._answer(event):
                    yield data
            if self.aborted:
                yield self.chunk({}, finish="abort")
                yield _error_data(self.app.shutdown_message(), "shutdown")
            if self.options.usage:
                yield self.chunk(None, usage=self.usage())
            yield "[DONE]"
        finally:
            self.ended()

    def _answer(self, event: Event) -> list[str]:
        if isinstance(event, CanvasCommitted):
            delta = self.text.committed(event)
            return [self.chunk({"content": delta})] if delta else []
        if isinstance(event, Finished):
            delta = self.text.finished(event)
            self.outcome = self.text.reason
            return [self.chunk({"content": delta} if delta else {}, finish=self.text.reason)]
        if isinstance(event, Failed):
            self.outcome = "error"
            return [self.chunk({}, finish="error"), _error_data(self.failed(event), "server_error")]
        if isinstance(event, Cancelled) and self.run.timed_out:
            self.outcome = "timeout"
            return [self.chunk({}, finish="abort"), _error_data(self.app.timeout_message(), "timeout")]
        return []

    def failed(self, event: Failed) -> str:
        """The operator's log gets one line per failed request (the traceback is the engine's, at INFO for -v)."""
        log.error("request %s failed: %s: %s", self.id, event.error_type, event.message)
        return f"generation failed: {event.message}"

    async def whole(self) -> Response:
        """The answer in one response once the run ends."""
        async for _event in self.events():
            pass
        last = self.run.last
        if self.aborted:
            return error(503, self.app.shutdown_message(), "shutdown")
        if isinstance(last, Finished):
            content = self.text.finished(last)
            self.outcome = self.text.reason
            return JSONResponse(
                {
                    "id": self.id,
                    "object": "chat.completion",
                    "created": self.created,
                    "model": self.app.config.model_name,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": self.text.reason,
                        }
                    ],
                    "usage": self.usage(),
                    EXTENSION: encode_event(last),
                }
            )
        if isinstance(last, Failed):
            self.outcome = "error"
            return error(500, self.failed(last), "server_error")
        if self.run.timed_out:
            self.outcome = "timeout"
            return error(504, self.app.timeout_message(), "timeout", headers=NO_RETRY)
        return error(499, "the run was cancelled", "cancelled")


def _error_data(message: str, kind: str) -> str:
    return json.dumps({"error": {"message": message, "type": kind}})


class _WholeResponse(Response):
    """Answers once the run ends, cancelling the run when the client goes away first."""

    def __init__(self, exchange: _Exchange) -> None:
        super().__init__()
        self.exchange = exchange

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        exchange = self.exchange
        watcher = asyncio.ensure_future(_watch_disconnect(receive, exchange.run))
        try:
            response = await exchange.whole()
            await response(scope, _never, send)
        except OSError:  # the client went away while we wrote
            exchange.outcome = "disconnected"
        finally:
            watcher.cancel()
            exchange.ended()
            _note(scope, exchange)


async def _watch_disconnect(receive: Any, run: Run) -> None:
    """Cancels a run when the client goes away (the body is read already, so ``receive`` waits for that)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            run.cancel.cancel()
            return


class _StreamResponse(EventSourceResponse):
    """The exchange as server-sent events; its run is cancelled when the client goes away."""

    def __init__(self, exchange: _Exchange) -> None:
        super().__init__(
            exchange.stream(),
            sep="\n",
            headers={"Cache-Control": "no-cache"},
            shutdown_grace_period=exchange.app.config.shutdown_grace + 1,
        )
        self.exchange = exchange

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except OSError:  # the client went away while we wrote
            self.exchange.run.cancel.cancel()
        finally:
            self.exchange.ended()
            _note(scope, self.exchange)


def _note(scope: Any, exchange: _Exchange) -> None:
    """What the access log and the metrics say of this request: its tokens and outcome."""
    state = scope.setdefault("state", {})
    state["dwb_tokens"] = (exchange.run.prompt_tokens, exchange.text.tokens)
    state["dwb_outcome"] = exchange.outcome
    if exchange.outcome == "disconnected":
        log.info("request %s: the client went away; its run was cancelled", exchange.id)


async def _never() -> dict:
    await asyncio.Event().wait()
    return {}


class ChatApp:
    """The Starlette application around a ``Runner``."""

    def __init__(self, runner: Runner, config: ServeConfig) -> None:
        self.runner, self.config = runner, config
        self.started = time.monotonic()
        self.closing_at: float | None = None  # monotonic time shutdown began
        self.active: set[_Exchange] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.starlette = Starlette(
            routes=[
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/health", self.health, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
            ],
            exception_handlers={Exception: self._crash, 404: self._not_found, 405: self._not_allowed},
        )
        runner.metrics.gauges(
            {
                "queue_depth": ("Requests waiting for the engine.", lambda: runner.waiting),
                "running_batch_size": ("Rows of the running batch (0: idle).", lambda: runner.running_rows),
                "in_flight": ("Requests queued or running.", lambda: runner.in_flight),
            }
        )

    @property
    def app(self) -> Any:
        """The ASGI application (an object, so that servers see an ASGI 3 callable)."""
        return _Asgi(self.serve)

    def begin_shutdown(self) -> None:
        """Refuse new requests and give in-flight runs ``shutdown_grace`` seconds (callable from any thread)."""
        if self.closing_at is not None:
            return
        self.closing_at = time.monotonic()
        log.warning(
            "shutting down: %d request(s) in flight get at most %g s to finish",
            len(self.active),
            self.config.shutdown_grace,
        )
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(lambda: [e.shutdown_started() for e in list(self.active)])

    def shutdown_message(self) -> str:
        return (
            f"the server shut down; this run was stopped after the {self.config.shutdown_grace:g} s it was given "
            "to finish"
        )

    def timeout_message(self) -> str:
        limit = self.runner.limits.request_timeout
        return (
            f"the request ran past this server's time limit ({limit:g} s) and was cancelled; the same request would "
            "run out of time again: do not retry it unchanged (ask for fewer tokens or steps)"
        )

    async def serve(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI entry: the routes, with one access-log line and a count per HTTP request."""
        if scope["type"] != "http":
            return await self.starlette(scope, receive, send)
        self.loop = self.loop or asyncio.get_running_loop()
        started, status = time.perf_counter(), [0]

        async def sending(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.starlette(scope, receive, sending)
        finally:
            state = scope.get("state", {})
            code = status[0] or 499
            outcome = state.get("dwb_outcome") or ("refused" if code >= 400 else "none")
            self.runner.metrics.request(code, outcome)
            prompt, done = state.get("dwb_tokens", (0, 0))
            if prompt:
                self.runner.metrics.add("prompt_tokens", prompt)
            client = scope.get("client") or ("-", 0)
            access.info(
                '%s "%s %s" %s outcome=%s %.3fs prompt_tokens=%d completion_tokens=%d',
                client[0],
                scope.get("method", "-"),
                scope.get("path", "-"),
                status[0] or "-",
                outcome,
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
        status = "shutting down" if self.closing_at is not None else "ok"
        return JSONResponse({"status": status, "queued": self.runner.waiting})

    async def metrics(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied:
            return denied
        return Response(self.runner.metrics.render(), media_type=CONTENT_TYPE)

    async def models(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied:
            return denied
        limits = self.runner.limits
        timeout = None if math.isinf(limits.request_timeout) else limits.request_timeout  # JSON has no Infinity
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
                            "max_image_pixels": limits.images.per_image,
                            "max_request_pixels": limits.images.per_request,
                            "max_batch": self.runner.max_batch,
                            "request_timeout": timeout,
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
        if self.closing_at is not None:
            return error(503, "the server is shutting down", "shutdown")
        self.runner.arrival(+1)  # the worker waits for this request to join a batch
        try:
            parsed = parse_chat(await self._body(request))
            if parsed.model is not None and parsed.model != self.config.model_name:
                return error(
                    404,
                    f"model {parsed.model!r} is not served here; this server serves {self.config.model_name!r}",
                    "model_not_found",
                )
            text, images, soft, params, inputs = await run_in_threadpool(self._prepare, parsed)
            template, reader = self.runner.template_for(parsed)
            run = self.runner.submit(
                inputs, params, text=text, images=images, soft=soft, template=template, quiet=not parsed.stream
            )
        except ClientDisconnect:
            log.info("a client went away while sending its request")
            request.scope.setdefault("state", {})["dwb_outcome"] = "disconnected"
            return Response(status_code=499)  # never sent: the client is gone
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
        options = Options(
            stream=parsed.stream,
            events=parsed.extension.events,
            usage=bool(parsed.stream_options and parsed.stream_options.include_usage),
            stops=parsed.stops,
        )
        exchange = _Exchange(run, self, options, reader)
        return _StreamResponse(exchange) if options.stream else _WholeResponse(exchange)

    def _prepare(self, request: ChatRequest) -> tuple[str, list[Any], int, Any, dict[str, Any]]:
        text, images, soft, params = self.runner.parse_request(request)
        return text, images, soft, params, self.runner.encode(text, images, soft)


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


def make_server(app: ChatApp, host: str, port: int) -> Any:
    """The uvicorn server of ``app``: a shutdown signal (or ``handle_exit``) begins ``app``'s shutdown, and uvicorn
    waits for connections a little past its grace before it closes them."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.begin_shutdown()
            super().handle_exit(sig, frame)

    grace = app.config.shutdown_grace
    config = uvicorn.Config(
        app.app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=math.ceil(grace) + 2,
    )
    return Server(config)


def start(app: ChatApp, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, Any, int]:
    """Serve ``app`` on a background thread; returns ``(server, thread, port)`` once it listens (port 0: a free one).
    Stop it with ``server.should_exit = True; thread.join()`` (after ``app.begin_shutdown()`` for a graceful one)."""
    import threading

    server = make_server(app, host, port)
    thread = threading.Thread(target=server.run, name="dwb-serve", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise OSError(f"dwb serve could not listen on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, bound
