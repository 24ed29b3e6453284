"""The ``remote`` task engine: parse, ask and extract against a server speaking the OpenAI chat-completions
protocol (``dwb serve``, or vLLM serving DiffusionGemma).

Prompts are built here, as for the local model engine, with exact token counts from the processor alone (no
weights): the processor of the model the server serves (its name from ``/v1/models``) unless one is named. At
connect time the server's limits are read from ``/v1/models``: its context (``max_model_len``, as vLLM lists it)
less the answer's share, and ``dwb serve``'s own prompt limit (``dwb.max_prompt_tokens``), cap the prompts' budget
(``--budget-tokens`` above that is lowered, said once); its images per request (``dwb.max_images``, else
``max_images``, else 8) split questions over more pages into parts that are asked and combined. Images go as PNG
data URLs with the image budget sent the way vLLM reads it (``mm_processor_kwargs.max_soft_tokens``) as well as ours.
A server without the ``dwb`` extension (vLLM) takes no steps, diffusion parameters or seed per request: that is said
once, and they are not sent.

Only a ``finish_reason`` of ``stop`` is an answer that ended by itself: ``length``, ``abort``, ``error`` and
``repetition`` (vLLM's reasons) make the page an error of its document (partial, asked again on a rerun), the answer
of ``ask`` carry ``cut_off`` (and a notice), and an extraction invalid, each with the reason.

Each generation streams (server-sent events read by ``httpx-sse``): against ``dwb serve`` the engine's own typed
events come back (the ``dwb`` extension) and reach ``context.on_event`` as they would locally; against another
server only the text arrives. Connection errors and 408/409/429/5xx answers (but those that say
``x-should-retry: false``, as a request past its time limit does) are retried with exponential backoff and jitter,
a bounded number of times, before anything has streamed; every request has a timeout; a cancelled task closes its
stream, which cancels the run on ``dwb serve``. Batches run documents in parallel up to ``concurrency``
(``inference.batch.runner.run_parse``).
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
from dataclasses import dataclass
from typing import Any

from inference.errors import CancelledError, GenerationError, ModelLoadError
from inference.prompts import Prompt, PromptBuilder, PromptPolicy
from inference.runtime.events import Cancelled, Failed, Finished
from inference.runtime.params import DiffusionParams
from inference.serving.wire import EXTENSION, WireError, decode_event, prompt_content
from inference.tasks.base import Answer, TaskContext
from inference.tasks.conversation import Conversation, ask_instruction, cite, retrieved
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
        context = entry.get("max_model_len")
        stated = ours.get("max_images")
        prompt = ours.get("max_prompt_tokens")
        return cls(
            model=str(wanted or entry["id"]),
            context=int(context) if isinstance(context, int) and context > 0 else None,
            max_images=max_images or (int(stated) if isinstance(stated, int) and stated > 0 else DEFAULT_MAX_IMAGES),
            extension=bool(ours.get("extension")) or isinstance(listing.get(EXTENSION), dict),
            max_prompt_tokens=int(prompt) if isinstance(prompt, int) and prompt > 0 else None,
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


class _LockedBuilder:
    """The prompt builder, one call at a time (a tokenizer is not safe to share between threads)."""

    def __init__(self, builder: PromptBuilder) -> None:
        self._builder = builder
        self._lock = threading.Lock()

    @property
    def tokenizer(self) -> Any:
        """The tokenizer itself, for the extraction template (laid out on one thread, before any request)."""
        return self._builder.tokenizer

    @property
    def processor(self) -> Any:
        """The processor itself (callable, so ``__getattr__`` would hand back a locked call of it)."""
        return self._builder.processor

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._builder, name)
        if not callable(attr):
            return attr

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return locked


class RemoteEngine(ModelEngine):
    """The model engine's tasks (same prompts, citations, schema retries, chunking), generated by a server."""

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
        policy: PromptPolicy | None = None,
        retries: int = 2,
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
        self._builder = _LockedBuilder(PromptBuilder(processor)) if processor is not None else None
        self.policy = policy or PromptPolicy()
        self.max_images = max_images
        self.info: ServerInfo | None = None
        self.prompt_limit: int | None = None  # the server's, read at connect time
        self.notices: list[str] = []  # said once each (also logged as warnings)
        # (document, page) -> finish_reason, of answers that did not end by themselves (cut at max_tokens, aborted,
        # failed, stopped for repetition): such a page is an error of its document, and a rerun asks again
        self.cut_off: dict[tuple[str | None, int | None], str] = {}
        self.retries = retries  # extract: asks again with the validation errors
        self.http_retries, self.backoff, self.max_backoff = http_retries, backoff, max_backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=concurrency + 2),
        )
        self._model_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)  # requests in flight, over all threads

    def close(self) -> None:
        self.client.close()

    @property
    def policy(self) -> PromptPolicy:
        """The prompt policy, its budget kept under the server's prompt limit once that is known (a larger
        ``budget_tokens`` is lowered to it, said once)."""
        policy, limit = self._policy, self.prompt_limit
        if limit is None or (policy.budget_tokens is not None and policy.budget_tokens <= limit):
            return policy
        if policy.budget_tokens is not None:
            self.notice(
                f"{self.base_url} takes prompts of at most {limit} tokens (with the answer's share kept free): the "
                f"budget of {policy.budget_tokens} tokens is lowered to {limit}"
            )
        return dataclasses.replace(policy, budget_tokens=limit)

    @policy.setter
    def policy(self, value: PromptPolicy) -> None:
        self._policy = value

    # ------------------------------------------------------------------ the server's limits
    @property
    def builder(self) -> Any:
        if self._builder is None:
            self.connect()
        return self._builder

    def connect(self) -> ServerInfo:
        """Read the server's model, context and image limit (once); load the processor when none was given."""
        with self._model_lock:
            if self.info is not None:
                return self.info
            listing = self._with_retries(lambda: self._get("/models"), TaskContext())
            info = ServerInfo.from_listing(listing, self.model, self.max_images, self.base_url)
            if self._builder is None:
                try:
                    self._builder = _LockedBuilder(PromptBuilder(load_processor(info.model)))
                except ModelLoadError as exc:
                    raise ModelLoadError(
                        f"{self.base_url} serves {info.model!r}, whose processor could not be loaded here "
                        f"({exc.message})",
                        hint="Name the model's processor with --model (a Hugging Face id or a folder with its "
                        "tokenizer and processor files; no weights needed).",
                    ) from exc
            if info.context is not None:
                self._builder._builder.context_tokens = info.context
            reserve = self._param_values().get("max_new_tokens")
            if reserve is None and info.context is not None:
                reserve = min(self._policy.reserve_tokens, info.context // 4)
            self.prompt_limit = info.prompt_limit(int(reserve or 0))
            if not info.extension:
                ignored = sorted(k for k in self._param_values() if k != "max_new_tokens")
                if ignored:
                    self.notice(
                        f"{self.base_url} does not take per-request diffusion options; ignored there: "
                        f"{', '.join(ignored)} (set server-wide, e.g. vLLM's --diffusion-config and generation config)"
                    )
            self.model, self.info = info.model, info
            return info

    # ------------------------------------------------------------------ tasks within the server's limits
    def parse(self, doc: Any, options: Any = None, context: TaskContext | None = None) -> Any:
        """As the model engine parses, then every page whose answer did not end by itself (``finish_reason`` other
        than ``stop``) is an error of the page naming the reason: the document is partial, a rerun asks again."""
        self._take_cut_off({doc.source})  # left by an earlier task on the same document
        result = super().parse(doc, options, context)
        for (_source, page), reason in sorted(self._take_cut_off({doc.source}).items(), key=lambda kv: kv[0][1] or 0):
            if page is not None:
                result.document.add_error(page, cut_off_message(reason), "GenerationError")
        return result

    def transcribed_whole(self, doc: Any, number: int) -> bool:
        """A page whose answer was cut off is not whole: it is not kept for a rerun."""
        with self._model_lock:
            return (doc.source, number) not in self.cut_off

    def _take_cut_off(self, sources: set[Any]) -> dict[tuple[str | None, int | None], str]:
        """The cut-off answers recorded for these documents (``None``: answers over no page), forgotten here."""
        with self._model_lock:
            taken = {k: v for k, v in self.cut_off.items() if k[0] in sources}
            for key in taken:
                del self.cut_off[key]
        return taken

    def extract(self, docs: Sequence[Any], schema: dict[str, Any], context: TaskContext | None = None, **redo: Any):
        """As the model engine extracts; an answer that did not end by itself makes the result invalid, with the
        reason among its errors."""
        sources = {d.source for d in docs} | {None}
        self._take_cut_off(sources)
        result = super().extract(docs, schema, context, **redo)
        reasons = sorted(set(self._take_cut_off(sources).values()))
        if reasons:
            result.errors = [*result.errors, *(cut_off_message(r) for r in reasons)]
            result.valid = False
        return result

    def page_identity(self) -> dict[str, Any]:
        """The model asked for, the options sent and the prompts' image budget (not the server's address: the same
        model elsewhere makes the same pages)."""
        return {
            "model": self.asked_model,
            "params": self._param_values(),
            "dpi": self.policy.dpi,
            "max_soft_tokens": self.policy.max_soft_tokens,
        }

    keeps_sessions = False  # the server keeps no cache between requests: each question reads afresh

    def ask(
        self,
        docs: Sequence[Any],
        question: str,
        context: TaskContext | None = None,
        conversation: Conversation | None = None,
    ) -> Answer:
        """As the model engine asks; when the pages' images are more than the server takes in one request, the
        pages are asked in groups that fit and the partial answers combined. A conversation changes nothing here
        (no cache to keep)."""
        sources = {d.source for d in docs} | {None}
        self._take_cut_off(sources)
        answer = self._ask(docs, question, context)
        reasons = sorted(set(self._take_cut_off(sources).values()))
        if reasons:
            answer.cut_off = ", ".join(reasons)
            self.notice(f"the answer is incomplete: {cut_off_message(answer.cut_off)}")
        return answer

    def _ask(self, docs: Sequence[Any], question: str, context: TaskContext | None) -> Answer:
        info = self.connect()
        context = context or TaskContext()
        prompt = self.builder.build(list(docs), ask_instruction(question, docs), self.policy)
        if len(prompt.images) <= info.max_images:
            return super().ask(docs, question, context)
        groups = page_groups(docs, info.max_images)
        answers = []
        for i, group in enumerate(groups):
            context.report(i, len(groups) + 1, f"reading pages, part {i + 1} of {len(groups)}")
            answers.append(super().ask(group, question, context))
        context.report(len(groups), len(groups) + 1, "combining")
        text = self._combine([a.text for a in answers], question, context).strip()
        return Answer(
            question=question,
            text=text,
            citations=cite(text, docs) or retrieved(docs, question),
            kind="generated",
            engine=self.name,
            left_out=[item for a in answers for item in a.left_out],
        )

    def notice(self, text: str) -> None:
        if text not in self.notices:
            self.notices.append(text)
            log.warning("%s", text)

    def _param_values(self) -> dict[str, Any]:
        values = self.params.to_dict() if isinstance(self.params, DiffusionParams) else dict(self.params or {})
        return {k: v for k, v in values.items() if v is not None}

    # ------------------------------------------------------------------ one generation
    def request_body(self, prompt: Prompt) -> dict[str, Any]:
        info = self.connect()
        body: dict[str, Any] = {
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

    def generate(self, prompt: Prompt, context: TaskContext) -> str:
        body = self.request_body(prompt)
        body["model"] = self.model_name()
        if len(prompt.images) > self.connect().max_images:
            raise GenerationError(
                f"the prompt holds {len(prompt.images)} images; {self.base_url} takes at most "
                f"{self.connect().max_images} per request",
                hint="Use --max-images to state the server's limit, or fewer pages.",
            )
        with self._slots:
            text, finish = self._with_retries(lambda: self._stream(body, context), context)
        self._finished(prompt, finish)
        return text

    def _finished(self, prompt: Prompt, finish: str | None) -> None:
        """Records the prompt's pages as cut off unless the answer ended by itself (``stop``; a server that names
        no reason is taken at its word)."""
        if finish in (None, "stop"):
            return
        pages = {(p.document, p.page) for p in prompt.parts if p.page is not None} or {(None, None)}
        with self._model_lock:
            self.cut_off.update(dict.fromkeys(pages, finish))

    def generate_batch(self, prompts: Sequence[Prompt], context: TaskContext) -> list[str]:
        """The prompts as parallel requests, up to ``concurrency`` at a time (the server queues or batches them)."""
        if len(prompts) == 1:
            return [self.generate(prompts[0], context)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda p: self.generate(p, context), prompts))

    def default_batch_size(self) -> int:
        return self.concurrency

    def model_name(self) -> str:
        """The model to ask for: as given, else the first the server lists."""
        return self.connect().model

    # ------------------------------------------------------------------ extraction on a pinned canvas
    def _features(self) -> dict[str, Any]:
        """What the server's ``dwb`` extension offers (from its model listing, asked once)."""
        if getattr(self, "_extension", None) is None:
            listing = self._with_retries(lambda: self._get("/models"), TaskContext())
            offered = listing.get(EXTENSION) if isinstance(listing, dict) else None
            self._extension = offered if isinstance(offered, dict) else {}
        return self._extension

    def _can_pin(self) -> bool:
        """A server that takes ``dwb.template`` runs the template; others get the prompt path, said once."""
        if self._features().get("template"):
            return True
        if not getattr(self, "_said_prompt_path", False):
            self._said_prompt_path = True
            log.warning("%s takes no canvas template: extraction asks for JSON in the prompt instead", self.base_url)
        return False

    def _pin_setup(self) -> tuple[Any, int, int | None, int]:
        tokenizer = self.builder.tokenizer
        return tokenizer, len(tokenizer), tokenizer.eos_token_id, int(self._features().get("canvas_length", 256))

    def _templated(self, prompt: Prompt, template: Any, context: TaskContext) -> tuple[list[Any], Any]:
        """The run on the server with the template in ``dwb.template``: its events (no session: re-denoising needs
        a local model)."""
        events: list[Any] = []
        forward = context.on_event

        def keep(event: Any) -> None:
            events.append(event)
            if forward:
                forward(event)

        body = self.request_body(prompt)
        body["model"] = self.model_name()
        body[EXTENSION].update(events=True, template=template.to_wire())
        relay = TaskContext(progress=context.progress, on_event=keep, cancel=context.cancel, extra=context.extra)
        with self._slots:
            _text, finish = self._with_retries(lambda: self._stream(body, relay), relay)
        self._finished(prompt, finish)
        return events, None

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


def page_groups(docs: Sequence[Any], per_group: int) -> list[list[Any]]:
    """The documents' pages in groups of at most ``per_group`` pages (a page brings at most one image), each group
    as copies of the documents holding only its pages (page numbers kept)."""
    import copy

    groups: list[list[Any]] = []
    current: list[Any] = []
    room = per_group
    for doc in docs:
        pages = list(doc.pages)
        while pages:
            take, pages = pages[:room], pages[room:]
            part = copy.copy(doc)
            part.pages = take
            current.append(part)
            room -= len(take)
            if room == 0:
                groups.append(current)
                current, room = [], per_group
    if current:
        groups.append(current)
    return groups


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


def cut_off_message(reason: str) -> str:
    """What a page (or answer) that did not end by itself says, by its ``finish_reason``."""
    why = {
        "length": "at max_tokens",
        "abort": "by the server (the run was aborted)",
        "error": "by an error on the server",
        "repetition": "by the server's repetition check",
    }
    return f"the answer was cut off {why.get(reason, 'before its end')} (finish_reason: {reason})"


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
