"""The HTTP generator: prompts answered by a server speaking the OpenAI chat-completions protocol (``dwb serve``, or
vLLM serving DiffusionGemma), for the model engine's tasks (:func:`RemoteEngine`).

Prompts are built here, as for a model loaded here, with exact token counts from the processor alone (no weights):
the processor of the model the server serves (its name from ``/v1/models``) unless one is named. At connect time the
server's limits are read from ``/v1/models``: its context (``max_model_len``, as vLLM lists it) less the answer's
share, and ``dwb serve``'s own prompt limit (``dwb.max_prompt_tokens``), cap the prompts' budget (``--budget-tokens``
above that is lowered, said once); its images per request (``dwb.max_images``, else ``max_images``, else 8) make the
engine ask questions over more pages in parts that are combined; whether it takes a canvas template
(``dwb.template``). Images go as PNG data URLs with the image budget sent the way vLLM reads it
(``mm_processor_kwargs.max_soft_tokens``) as well as ours. A server without the ``dwb`` extension (vLLM) takes no
steps, diffusion parameters or seed per request: that is said once, and they are not sent.

Each answer comes back with its ``finish_reason`` (only ``stop`` is an answer that ended by itself; the engine makes
the others a page error, an incomplete answer, an invalid extraction). Each generation streams (server-sent events
read by ``httpx-sse``): against ``dwb serve`` the engine's own typed events come back (the ``dwb`` extension) and
reach ``context.on_event`` as they would locally; against another server only the text arrives. Connection errors
and 408/409/429/5xx answers (but those that say ``x-should-retry: false``, as a request past its time limit does)
are retried with exponential backoff and jitter, a bounded number of times, before anything has streamed; every
request has a timeout; a cancelled task closes its stream, which cancels the run on ``dwb serve``. Prompts of one
call go as parallel requests, and batches run documents in parallel, up to ``concurrency``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from inference.errors import CancelledError, GenerationError, ModelLoadError
from inference.prompts import Prompt, PromptBuilder, PromptPolicy
from inference.runtime.events import Cancelled, Failed, Finished
from inference.runtime.params import DiffusionParams
from inference.serving.wire import EXTENSION, WireError, decode_event, prompt_content
from inference.tasks.base import TaskContext
from inference.tasks.generation import Generation, Pinning
from inference.tasks.model import ModelEngine

log = logging.getLogger(__name__)
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
DEFAULT_MAX_IMAGES = 8  # images per request when the server does not say (vLLM's --limit-mm-per-prompt is unlisted)


@dataclass(frozen=True)
class ServerInfo:
    """What the server states about itself in ``/v1/models``."""

    model: str
    context: int | None  # max_model_len: prompt and answer together
    max_images: int
    extension: bool  # takes the dwb extension (events, steps, diffusion parameters, seed)
    max_prompt_tokens: int | None = None  # dwb serve's own limit on a prompt (its --max-prompt-tokens)
    features: dict[str, Any] = field(default_factory=dict)  # the listing's ``dwb`` object: template, canvas_length

    def prompt_limit(self, reserve: int) -> int | None:
        """The most prompt tokens a request may hold here: below the context less the answer's ``reserve``, and
        below the server's own prompt limit."""
        limits = [n for n in (self.context and self.context - reserve, self.max_prompt_tokens) if n]
        return max(1, min(limits)) if limits else None

    @classmethod
    def from_listing(cls, listing: Any, wanted: str | None, max_images: int | None, url: str) -> ServerInfo:
        try:
            entries = [e for e in listing["data"] if isinstance(e, dict) and "id" in e]
        except (KeyError, TypeError) as exc:
            raise GenerationError(f"{url}/models is not a model list") from exc
        if not entries:
            raise GenerationError(f"{url}/models lists no model")
        entry = next((e for e in entries if e["id"] == wanted), entries[0])
        extension = entry.get(EXTENSION)
        ours: dict[str, Any] = extension if isinstance(extension, dict) else {}
        offered = listing.get(EXTENSION)
        context = entry.get("max_model_len")
        stated = ours.get("max_images")
        prompt = ours.get("max_prompt_tokens")
        return cls(
            model=str(wanted or entry["id"]),
            context=int(context) if isinstance(context, int) and context > 0 else None,
            max_images=max_images or (int(stated) if isinstance(stated, int) and stated > 0 else DEFAULT_MAX_IMAGES),
            extension=bool(ours.get("extension")) or isinstance(offered, dict),
            max_prompt_tokens=int(prompt) if isinstance(prompt, int) and prompt > 0 else None,
            features=dict(offered) if isinstance(offered, dict) else {},
        )


def load_processor(source: str) -> Any:
    """The processor (tokenizer, image processor, chat template) of a model, without its weights."""
    from inference.weights.sources import builtin_folder, is_tiny
    from inference.weights.tiny import TRAINED_SOURCE

    if is_tiny(source):
        from inference.weights.tiny import build_processor

        return build_processor()
    try:
        from transformers import AutoProcessor

        where = str(builtin_folder(source)) if source == TRAINED_SOURCE else source
        return AutoProcessor.from_pretrained(where, trust_remote_code=False)
    except Exception as exc:
        raise ModelLoadError(
            f"The processor of {source!r} could not be loaded: {exc}",
            hint="The remote engine builds prompts here: give --model a Hugging Face id or folder "
            "holding the processor and tokenizer files (no weights needed).",
        ) from exc


class _Retry(Exception):
    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def RemoteEngine(  # named as the engine it builds, which front ends and tests construct
    base_url: str,
    processor: Any | None,
    model: str | None = None,
    *,
    params: DiffusionParams | dict[str, Any] | None = None,
    policy: PromptPolicy | None = None,
    retries: int = 2,
    **http: Any,
) -> ModelEngine:
    """The model engine's tasks (same prompts, citations, schema retries, chunking) on a server: a
    :class:`~inference.tasks.model.ModelEngine` given an :class:`HttpGenerator` (``http``: its connection options)."""
    generator = HttpGenerator(base_url, processor, model, params=params, **http)
    return ModelEngine(policy=policy, retries=retries, generator=generator)


class HttpGenerator:
    """Prompts as streamed chat completions, up to ``concurrency`` requests in flight over all threads."""

    name = "remote"

    def __init__(
        self,
        base_url: str,
        processor: Any | None,
        model: str | None = None,
        api_key: str | None = None,
        concurrency: int = 4,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        http_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        events: bool = True,
        params: DiffusionParams | dict[str, Any] | None = None,
        max_images: int | None = None,
    ) -> None:
        import httpx

        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.asked_model = model  # as given (``model`` becomes the server's when none was given)
        self.concurrency = concurrency
        self.events = events
        self.params = params  # all of them, some (a dict: the server's defaults for the rest), or None
        self._builder = PromptBuilder(processor) if processor is not None else None
        self._max_images = max_images
        self.info: ServerInfo | None = None
        self.notices: list[str] = []  # said once each (also logged as warnings)
        self.http_retries, self.backoff, self.max_backoff = http_retries, backoff, max_backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=concurrency + 2),
        )
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)  # requests in flight, over all threads
        self._said_prompt_path = False

    def close(self) -> None:
        self.client.close()

    def notice(self, text: str) -> None:
        if text not in self.notices:
            self.notices.append(text)
            log.warning("%s", text)

    # ------------------------------------------------------------------ the server's limits
    def connect(self) -> ServerInfo:
        """Read the server's model, context, image limit and extension (once); load the processor when none was
        given."""
        with self._lock:
            if self.info is not None:
                return self.info
            listing = self._with_retries(lambda: self._get("/models"), TaskContext())
            info = ServerInfo.from_listing(listing, self.model, self._max_images, self.base_url)
            if self._builder is None:
                try:
                    self._builder = PromptBuilder(load_processor(info.model))
                except ModelLoadError as exc:
                    raise ModelLoadError(
                        f"{self.base_url} serves {info.model!r}, whose processor could not be loaded here "
                        f"({exc.message})",
                        hint="Name the model's processor with --model (a Hugging Face id or a folder with its "
                        "tokenizer and processor files; no weights needed).",
                    ) from exc
            if info.context is not None:
                self._builder.context_tokens = info.context
            if not info.extension:
                ignored = sorted(k for k in self._param_values() if k != "max_new_tokens")
                if ignored:
                    self.notice(
                        f"{self.base_url} does not take per-request diffusion options; ignored there: "
                        f"{', '.join(ignored)} (set server-wide, e.g. vLLM's --diffusion-config and generation config)"
                    )
            self.model, self.info = info.model, info
            return info

    @property
    def builder(self) -> PromptBuilder:
        """The prompt builder: the processor given, else the served model's (read at connect time)."""
        if self._builder is None:
            self.connect()
        assert self._builder is not None  # connect() loads it or raises
        return self._builder

    @property
    def max_images(self) -> int | None:
        return self.connect().max_images

    def budget(self, policy: PromptPolicy) -> PromptPolicy:
        """``policy`` with its budget kept under the server's prompt limit once that is known (a larger
        ``budget_tokens`` is lowered to it, said once)."""
        limit = self._prompt_limit(policy)
        if limit is None or (policy.budget_tokens is not None and policy.budget_tokens <= limit):
            return policy
        if policy.budget_tokens is not None:
            self.notice(
                f"{self.base_url} takes prompts of at most {limit} tokens (with the answer's share kept free): the "
                f"budget of {policy.budget_tokens} tokens is lowered to {limit}"
            )
        return dataclasses.replace(policy, budget_tokens=limit)

    def _prompt_limit(self, policy: PromptPolicy) -> int | None:
        """The server's limit on a prompt, the answer's share (``max_new_tokens``, else the policy's reserve up to a
        quarter of the context) kept free; ``None`` before the server is read."""
        info = self.info
        if info is None:
            return None
        reserve = self._param_values().get("max_new_tokens")
        if reserve is None and info.context is not None:
            reserve = min(policy.reserve_tokens, info.context // 4)
        return info.prompt_limit(int(reserve or 0))

    def _param_values(self) -> dict[str, Any]:
        values = self.params.to_dict() if isinstance(self.params, DiffusionParams) else dict(self.params or {})
        return {k: v for k, v in values.items() if v is not None}

    def default_batch_size(self) -> int:
        return self.concurrency

    def identity(self) -> dict[str, Any]:
        """The model asked for and the options sent (not the server's address: the same model elsewhere makes the
        same pages)."""
        return {"model": self.asked_model, "params": self._param_values()}

    def model_name(self) -> str:
        """The model to ask for: as given, else the first the server lists."""
        return self.connect().model

    # ------------------------------------------------------------------ generations
    def request_body(self, prompt: Prompt) -> dict[str, Any]:
        info = self.connect()
        body: dict[str, Any] = {
            "model": info.model,
            "messages": [{"role": "user", "content": prompt_content(prompt)}],
            "stream": True,
            "mm_processor_kwargs": {"max_soft_tokens": prompt.max_soft_tokens},  # how vLLM reads the image budget
        }
        values = self._param_values()
        if values.get("max_new_tokens") is not None:
            body["max_tokens"] = values["max_new_tokens"]
        if info.extension:
            body[EXTENSION] = {"events": self.events, "max_soft_tokens": prompt.max_soft_tokens}
            if values.get("seed") is not None:
                body["seed"] = values["seed"]
            if values:
                body[EXTENSION]["params"] = values
        return body

    def generate(self, prompts: Sequence[Prompt], context: TaskContext) -> list[Generation]:
        """The prompts as parallel requests, up to ``concurrency`` at a time (the server queues or batches them)."""
        if len(prompts) == 1:
            return [self._one(prompts[0], context)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda p: self._one(p, context), prompts))

    def _one(self, prompt: Prompt, context: TaskContext) -> Generation:
        body = self.request_body(prompt)
        limit = self.connect().max_images
        if len(prompt.images) > limit:
            raise GenerationError(
                f"the prompt holds {len(prompt.images)} images; {self.base_url} takes at most {limit} per request",
                hint="Use --max-images to state the server's limit, or fewer pages.",
            )
        with self._slots:
            text, finish = self._with_retries(lambda: self._stream(body, context), context)
        return Generation(text, finish)

    # ------------------------------------------------------------------ extraction on a pinned canvas
    def pinning(self) -> Pinning | None:
        """A server that takes ``dwb.template`` runs the template; others get the prompt path, said once."""
        features = self.connect().features
        if not features.get("template"):
            if not self._said_prompt_path:
                self._said_prompt_path = True
                log.warning(
                    "%s takes no canvas template: extraction asks for JSON in the prompt instead", self.base_url
                )
            return None
        tokenizer = self.builder.tokenizer
        return Pinning(tokenizer, len(tokenizer), tokenizer.eos_token_id, int(features.get("canvas_length", 256)))

    def templated(self, prompt: Prompt, template: Any, context: TaskContext) -> Generation:
        """The run on the server with the template in ``dwb.template``: its events (no session: re-denoising needs
        a model loaded here)."""
        events: list[Any] = []
        forward = context.on_event

        def keep(event: Any) -> None:
            events.append(event)
            if forward:
                forward(event)

        body = self.request_body(prompt)
        body[EXTENSION].update(events=True, template=template.to_wire())
        relay = TaskContext(progress=context.progress, on_event=keep, cancel=context.cancel, extra=context.extra)
        with self._slots:
            text, finish = self._with_retries(lambda: self._stream(body, relay), relay)
        return Generation(text, finish, events=tuple(events))

    # ------------------------------------------------------------------ HTTP
    def _with_retries(self, attempt: Any, context: TaskContext) -> Any:
        import httpx

        for n in range(self.http_retries + 1):
            try:
                return attempt()
            except (_Retry, httpx.TransportError) as exc:
                if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):  # the server took it: do not ask twice
                    raise GenerationError(f"{self.base_url}: no answer within the timeout ({exc})") from exc
                if n == self.http_retries:
                    raise GenerationError(
                        f"{self.base_url}: {_describe(exc)} (gave up after {n + 1} tries)",
                        hint="Check that the server is running and reachable.",
                    ) from exc
                wait = getattr(exc, "wait", None)
                wait = min(self.max_backoff, wait if wait is not None else self.backoff * 2**n)
                wait *= random.uniform(0.5, 1.0)  # jitter: clients that failed together do not retry together
                log.info("%s: %s; retrying in %.2f s", self.base_url, _describe(exc), wait)
                if _cancelled(context, wait):
                    raise CancelledError("cancelled while waiting to retry") from exc
        raise AssertionError("unreachable")

    def _get(self, path: str) -> Any:
        response = self.client.get(self.base_url + path)
        _check(response)
        return response.json()

    def _stream(self, body: dict[str, Any], context: TaskContext) -> tuple[str, str | None]:
        """The answer's text and its ``finish_reason``, read to the end of the stream (``httpx-sse``)."""
        import httpx
        from httpx_sse import SSEError, connect_sse

        with connect_sse(self.client, "POST", self.base_url + "/chat/completions", json=body) as source:
            response = source.response
            if response.status_code >= 400:
                response.read()
            _check(response)
            text: list[str] = []
            state: dict[str, Any] = {"finish": None, "result": None}
            started = False
            try:
                for sse in source.iter_sse():
                    if context.cancel is not None and context.cancel.cancelled:
                        raise CancelledError("cancelled; the stream was closed")  # leaving `with` closes it
                    if sse.data == "[DONE]":
                        result = state["result"]
                        return ("".join(text) if result is None else result), state["finish"]
                    if not sse.data:
                        continue
                    started = True
                    self._chunk(json.loads(sse.data), text, context, state)
            except (WireError, ValueError, SSEError) as exc:
                raise GenerationError(f"{self.base_url} sent a malformed stream: {exc}") from exc
            except httpx.TransportError as exc:
                if started:
                    raise GenerationError(f"{self.base_url}: the stream broke off ({_describe(exc)})") from exc
                raise
        raise GenerationError(f"{self.base_url}: the stream ended without a result")

    def _chunk(self, chunk: dict[str, Any], text: list[str], context: TaskContext, state: dict[str, Any]) -> None:
        if "error" in chunk:
            raise GenerationError(f"the server failed: {chunk['error'].get('message', chunk['error'])}")
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                text.append(content)
            if choice.get("finish_reason"):
                state["finish"] = choice["finish_reason"]
        if EXTENSION not in chunk:
            return None
        event = decode_event(chunk[EXTENSION])
        if context.on_event:
            context.on_event(event)
        if isinstance(event, Finished):
            state["result"] = event.texts[0]
        if isinstance(event, Cancelled) and context.cancel is not None and context.cancel.cancelled:
            raise CancelledError(f"cancelled at canvas {event.canvas}, step {event.step}")
        if isinstance(event, Cancelled):  # stopped by the server (its time limit, its shutdown): its error follows
            state["finish"] = state["finish"] or "abort"
        if isinstance(event, Failed):
            raise GenerationError(event.message)
        return None


def _check(response: Any) -> None:
    if response.status_code < 400:
        return
    try:
        message = response.json()["error"]["message"]
    except Exception:  # noqa: BLE001 - any body that is not the usual error object
        message = response.text[:300]
    if response.status_code in RETRY_STATUS and response.headers.get("x-should-retry", "").lower() != "false":
        after = response.headers.get("retry-after", "")
        raise _Retry(f"HTTP {response.status_code}: {message}", float(after) if after.isdigit() else None)
    raise GenerationError(f"the server answered HTTP {response.status_code}: {message}")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _cancelled(context: TaskContext, wait: float) -> bool:
    """Sleep ``wait`` seconds unless the task is cancelled first; True when it was."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if context.cancel is not None and context.cancel.cancelled:
            return True
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return bool(context.cancel is not None and context.cancel.cancelled)
