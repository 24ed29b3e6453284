"""A test server that answers as vLLM's OpenAI server answers DiffusionGemma requests, on the points our remote
engine depends on. vLLM cannot run here; this tests our client's handling of those answers, not vLLM. Each behaviour
names the vLLM file it mirrors (vllm-project/vllm); no code is taken from it. Generation is the tiny model's real
engine with server-wide diffusion settings, as vLLM's are.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from inference.runtime.engine import DiffusionEngine
from inference.runtime.events import Finished
from inference.serving.wire import WireError, processor_messages

log = logging.getLogger("vllm_contract")
# vllm/entrypoints/openai/protocol.py: ChatCompletionRequest's own fields; anything else is ignored with a warning
KNOWN_FIELDS = {
    "messages", "model", "max_tokens", "max_completion_tokens", "stream", "stream_options", "seed", "temperature",
    "top_p", "stop", "n", "mm_processor_kwargs", "logprobs", "presence_penalty", "frequency_penalty",
}  # fmt: skip


@dataclass
class ContractServer:
    loaded: Any
    name: str = "google/diffusion-gemma-test"
    max_model_len: int = 4096  # vLLM's --max-model-len: prompt and completion together
    image_limit: int = 8  # --limit-mm-per-prompt '{"image": 8}'
    denoising_steps: int = 4  # vllm/config/diffusion.py: server-wide, not per request
    ignored: list[list[str]] = field(default_factory=list)  # the unknown fields of each request
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int | str] = field(default_factory=list)  # per request: its 400, or its finish_reason
    # answer with this finish_reason and half the text (vllm/v1/engine: FinishReason abort, error, repetition), as
    # a run that was aborted, failed or stopped for repetition leaves it; None: the reason the run gives
    cut_with: str | None = None
    lock: Any = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
            ]
        )

    async def models(self, request: Request) -> Response:
        # vllm/entrypoints/openai/serving_models.py (show_available_models) and protocol.py (ModelCard):
        # each card carries max_model_len; no limit on images is listed
        card = {"id": self.name, "object": "model", "created": int(time.time()), "owned_by": "vllm"}
        card.update(root=self.name, parent=None, max_model_len=self.max_model_len, permission=[])
        return JSONResponse({"object": "list", "data": [card]})

    @staticmethod
    def bad_request(message: str) -> Response:
        # vllm/entrypoints/openai/protocol.py (ErrorResponse) as serving_engine.py's create_error_response sends it
        body = {"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}}
        log.warning("400: %s", message)
        return JSONResponse(body, status_code=400)

    async def chat(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.requests.append(body)
        unknown = sorted(set(body) - KNOWN_FIELDS)
        if unknown:  # vllm/entrypoints/openai/protocol.py (OpenAIBaseModel): logged, then ignored
            log.warning("The following fields were present in the request but ignored: %s", unknown)
            self.ignored.append(unknown)
        messages, images = processor_messages(body["messages"])
        if len(images) > self.image_limit:
            self.answers.append(400)  # vllm/entrypoints/chat_utils.py (the item tracker's limit per prompt)
            return self.bad_request(f"At most {self.image_limit} image(s) may be provided in one prompt.")
        # vllm/model_executor/models/gemma4_mm.py: the image budget from mm_processor_kwargs, else 280
        soft = (body.get("mm_processor_kwargs") or {}).get("max_soft_tokens", 280)
        processor = self.loaded.processor
        rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        try:
            inputs = processor(
                text=rendered,
                images=images or None,
                return_tensors="pt",
                add_special_tokens=False,
                max_soft_tokens=soft,
            )
        except (ValueError, WireError) as exc:
            return self.bad_request(str(exc))
        prompt = int(inputs["input_ids"].shape[-1])
        wanted = body.get("max_completion_tokens") or body.get("max_tokens") or self.max_model_len - prompt
        if prompt + wanted > self.max_model_len:  # vllm/entrypoints/openai/serving_engine.py (input validation)
            self.answers.append(400)
            return self.bad_request(
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                f"{prompt + wanted} tokens ({prompt} in the messages, {wanted} in the completion). Please reduce "
                "the length of the messages or completion."
            )
        return StreamingResponse(self._stream(inputs, wanted), media_type="text/event-stream")

    async def _stream(self, inputs: dict[str, Any], wanted: int) -> Any:
        # vllm/model_executor/models/diffusion_gemma.py: steps and canvas from the server's diffusion config; the
        # sampler's noise comes from no per-request generator, so a request's seed changes nothing
        engine = DiffusionEngine(self.loaded.model, self.loaded.tokenizer)
        params = engine.default_params(max_new_tokens=wanted, max_denoising_steps=self.denoising_steps)

        def run() -> list[Any]:
            # one run at a time on this one model (vLLM schedules; the tiny engine is not thread-safe), the lock taken
            # in the worker thread: the event loop goes on serving the requests that wait for it
            with self.lock:
                return list(engine.generate(inputs, params))

        events = await run_in_threadpool(run)
        done = events[-1]
        if not isinstance(done, Finished):
            raise RuntimeError(f"the engine did not finish: {done}")
        ends = set(engine.eos_token_ids) | {engine.pad_token_id}
        # vllm/entrypoints/openai/serving_chat.py: "length" when max_tokens ran out, else "stop"
        reason = "stop" if any(int(i) in ends for i in done.ids[0]) else "length"
        text = done.text
        if self.cut_with is not None:
            reason, text = self.cut_with, text[: len(text) // 2]
        self.answers.append(reason)
        chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": self.name}
        yield _sse({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        yield _sse({**chunk, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
        yield _sse({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
        yield "data: [DONE]\n\n"


def _sse(body: dict[str, Any]) -> str:
    return "data: " + json.dumps(body) + "\n\n"


def serve(server: ContractServer) -> tuple[Any, Any, str]:
    """The server on 127.0.0.1 and a free port: ``(uvicorn server, thread, base url)``."""
    import uvicorn

    running = uvicorn.Server(uvicorn.Config(server.app(), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.01)
    return running, thread, f"http://127.0.0.1:{running.servers[0].sockets[0].getsockname()[1]}/v1"
