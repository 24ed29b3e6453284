"""``dwb serve``: the engine behind the OpenAI chat-completions protocol (Starlette + uvicorn).

- ``GET /v1/models``, ``POST /v1/chat/completions`` (streaming as server-sent events, and not), images as data URLs.
- Extension: a request with ``"dwb": {"events": true}`` gets every engine event in the stream, one chunk each, in a
  ``dwb`` field with its arrays packed as binary base64 (``wire.encode_event``); plain clients ignore the field.
- A client that goes away cancels its run (the engine stops before its next step); the server keeps serving.
- A full queue answers 503 with ``Retry-After``; a bearer token is required when one is configured; bodies over
  the limit get 413; anything malformed gets 400 with a message, and no error ever answers with a traceback.
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
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..events import Cancelled, CanvasCommitted, Event, Failed, Finished
from .runner import QueueFullError, Run, Runner
from .wire import EXTENSION, WireError, encode_event

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "::1", "localhost")


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


class _RunResponse(Response):
    """Runs ``run`` while watching for the client going away; streams it or answers once it ends."""

    def __init__(self, run: Run, app: ChatApp, stream: bool, events: bool) -> None:
        super().__init__()
        self.run, self.app, self.stream, self.events = run, app, stream, events
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        watcher = _Disconnect(receive, self.run)
        try:
            if self.stream:
                await self._stream(send)
            else:
                await self._whole(scope, send)
        except OSError:  # the client went away while we wrote
            self.run.cancel.cancel()
        finally:
            watcher.stop()
            if not isinstance(self.run.last, (Finished, Failed, Cancelled)):
                self.run.cancel.cancel()

    async def _events(self) -> Any:
        while True:
            event = await self.run.events.get()
            if event is None:
                return
            yield event

    def _chunk(self, delta: dict | None, finish: str | None = None, event: Event | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.app.config.model_name,
            "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
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
        text = _TextDeltas(self.app.runner.engine)
        async for event in self._events():
            if self.events:
                await emit(self._chunk(None, event=event))
            if isinstance(event, CanvasCommitted):
                delta = text.committed(event)
                if delta:
                    await emit(self._chunk({"content": delta}))
            elif isinstance(event, Finished):
                delta = text.finished(event)
                await emit(self._chunk({"content": delta} if delta else {}, finish=text.reason))
            elif isinstance(event, Failed):
                body = {"error": {"message": f"generation failed: {event.message}", "type": "server_error"}}
                await emit(b"data: " + json.dumps(body).encode() + b"\n\n")
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    async def _whole(self, scope: Any, send: Any) -> None:
        async for _event in self._events():
            pass
        last = self.run.last
        if isinstance(last, Finished):
            reason = _TextDeltas(self.app.runner.engine).reason_of(last)
            response: Response = JSONResponse(
                {
                    "id": self.id,
                    "object": "chat.completion",
                    "created": self.created,
                    "model": self.app.config.model_name,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": last.text}, "finish_reason": reason}
                    ],
                    "usage": {
                        "prompt_tokens": self.run.prompt_tokens,
                        "completion_tokens": last.stats.new_tokens,
                        "total_tokens": self.run.prompt_tokens + last.stats.new_tokens,
                    },
                    EXTENSION: encode_event(last),
                }
            )
        elif isinstance(last, Failed):
            response = error(500, f"generation failed: {last.message}", "server_error")
        else:
            response = error(499, "the run was cancelled", "cancelled")
        await response(scope, _never, send)


async def _never() -> dict:
    await asyncio.Event().wait()
    return {}


class _TextDeltas:
    """Text as it is committed, canvas by canvas: decoded from all ids so far, so that a character split between
    two canvases comes out whole; the last delta makes the streamed text equal ``Finished.text``."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.ids: list[int] = []
        self.sent = ""
        self.reason = "stop"

    def committed(self, event: CanvasCommitted) -> str:
        self.ids.extend(int(i) for i in event.ids[0])
        text = self.engine._decode(_array(self.ids)).rstrip("\ufffd")
        if not text.startswith(self.sent):
            return ""
        delta, self.sent = text[len(self.sent) :], text
        return delta

    def finished(self, event: Finished) -> str:
        self.reason = self.reason_of(event)
        text = event.text
        return text[len(self.sent) :] if text.startswith(self.sent) else ""

    def reason_of(self, event: Finished) -> str:
        eos = set(self.engine.eos_token_ids)
        return "stop" if any(int(i) in eos for i in event.ids[0]) else "length"


def _array(ids: list[int]) -> Any:
    import numpy as np

    return np.array(ids, dtype=np.int64)


class ChatApp:
    """The Starlette application around a ``Runner``."""

    def __init__(self, runner: Runner, config: ServeConfig) -> None:
        self.runner, self.config = runner, config
        self.app = Starlette(
            routes=[
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/health", self.health, methods=["GET"]),
            ],
            exception_handlers={Exception: self._crash, 404: self._not_found, 405: self._not_allowed},
        )

    async def _crash(self, request: Request, exc: Exception) -> Response:
        log.error("request failed", exc_info=exc)
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
        return JSONResponse({"status": "ok", "queued": self.runner.queue.qsize()})

    async def models(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied:
            return denied
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": self.config.model_name, "object": "model", "created": 0, "owned_by": "dwb"}],
                # takes dwb.template (a pinned canvas, inference.template) in chat requests
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
        except (UnicodeDecodeError, ValueError) as exc:
            raise WireError(f"the body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise WireError("the body must be a JSON object")
        if isinstance(body.get("messages"), list) and len(body["messages"]) > self.config.max_messages:
            raise WireError(f"more than {self.config.max_messages} messages")
        return body

    async def chat(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied:
            return denied
        try:
            body = await self._body(request)
            model = body.get("model")
            if model is not None and model != self.config.model_name:
                return error(
                    404,
                    f"model {model!r} is not served here; this server serves {self.config.model_name!r}",
                    "model_not_found",
                )
            stream = body.get("stream", False)
            extension = body.get(EXTENSION) or {}
            if not isinstance(stream, bool) or not isinstance(extension, dict):
                raise WireError("'stream' must be a boolean and 'dwb' an object")
            inputs, params = await run_in_threadpool(self.runner.prepare, body)
            run = self.runner.submit(inputs, params, self.runner.template_for(extension))
        except _TooLarge as exc:
            return error(413, f"the request is larger than {exc.limit} bytes", "request_too_large")
        except WireError as exc:
            return error(400, exc.message)
        except QueueFullError as exc:
            return error(503, exc.message, "overloaded", headers={"Retry-After": str(exc.retry_after)})
        return _RunResponse(run, self, stream=stream, events=bool(extension.get("events")))


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def check_host(host: str, api_key: str | None) -> str | None:
    """A warning when the server listens beyond this machine without a token."""
    if host in LOOPBACK or api_key:
        return None
    return (
        f"dwb serve listens on {host} without a token: anyone who reaches this address can use the model. "
        "Set --api-key-env to require one."
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
