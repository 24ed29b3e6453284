"""One chat-completions request, validated once (pydantic) with the fields treated as vLLM treats them for this model.

- Accepted and honoured: ``messages`` (roles system, developer (as system), user, assistant), ``max_tokens`` /
  ``max_completion_tokens`` (the answer is cut at exactly that many tokens, ``finish_reason: "length"``), ``stop``,
  ``seed``, ``stream``, ``stream_options.include_usage``, ``n`` (1 or null), ``response_format`` of type ``text``,
  ``tool_choice: "none"`` (with or without ``tools``), ``response_format`` of type ``json_schema`` (an object schema,
  laid out as a canvas template: the answer is JSON of that shape by construction), ``mm_processor_kwargs
  .max_soft_tokens``, the ``dwb`` extension.
- Accepted and ignored, with one warning per field for the server's life (as vLLM's diffusion sampler ignores
  ``temperature``): ``temperature``, ``top_p``, ``top_k``, ``min_p``, ``repetition_penalty``; unknown fields too
  (vLLM logs and ignores them).
- Refused with 400 naming the field (the engine has no such thing, so honouring it silently would be a lie):
  ``logprobs`` / ``top_logprobs`` (the canvas keeps no per-token distribution outside a template), non-zero
  penalties, ``logit_bias``, tools the model should call, ``best_of`` over 1, ``response_format`` ``json_object``
  (no schema to pin).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator

from inference.serving.wire import WireError

log = logging.getLogger(__name__)
MAX_STOPS = 4
IGNORED = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")
_warned: set[str] = set()
_warned_lock = threading.Lock()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_call_id, ... carry nothing the engine reads
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: StrictBool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"]


class Extension(_Strict):
    """The ``dwb`` field: engine events in the stream, diffusion parameters, image budget, canvas template."""

    events: StrictBool = False
    params: dict[str, Any] = Field(default_factory=dict)
    max_soft_tokens: StrictInt | None = None
    template: Any = None

    @field_validator("params", mode="before")
    @classmethod
    def _params_object(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValueError("dwb.params must be an object")
        return value or {}


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    messages: list[Message] = Field(min_length=1)
    model: str | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: StrictInt | None = None
    max_completion_tokens: StrictInt | None = None
    seed: StrictInt | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    n: Literal[1] | None = None
    stop: str | list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: StrictInt | None = Field(default=None, ge=-1)
    min_p: float | None = Field(default=None, ge=0, le=1)
    repetition_penalty: float | None = Field(default=None, gt=0)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = None
    response_format: ResponseFormat | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[Any] | None = None
    function_call: Any = None
    best_of: StrictInt | None = None
    mm_processor_kwargs: dict[str, Any] | None = None
    dwb: Extension | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: Any) -> Any:
        stops = [value] if isinstance(value, str) else (value or [])
        if len(stops) > MAX_STOPS or not all(stops):
            raise ValueError(f"'stop' must be a string or a list of at most {MAX_STOPS} non-empty strings")
        return value

    @property
    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The schema of ``response_format: {"type": "json_schema", "json_schema": {"schema": ...}}`` (None without
        one); a ``WireError`` when it is not an object."""
        if self.response_format is None or self.response_format.type != "json_schema":
            return None
        spec = (self.response_format.model_extra or {}).get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise WireError("response_format.json_schema.schema must be a JSON Schema object")
        return schema

    @property
    def extension(self) -> Extension:
        return self.dwb or Extension()

    @property
    def answer_tokens(self) -> int | None:
        """The cap on the answer's tokens the client asked for (``max_completion_tokens`` first, as OpenAI reads it)."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def chat_messages(self) -> list[dict[str, Any]]:
        """The messages as plain dicts, a ``developer`` message as the ``system`` message it is to this model."""
        return [
            {
                "role": "system" if m.role == "developer" else m.role,
                "content": [{"type": "text", "text": m.content}] if isinstance(m.content, str) else m.content,
            }
            for m in self.messages
        ]


def _refusals(request: ChatRequest) -> list[str]:
    """Fields set to something this engine cannot honour, each with why."""
    out = []
    if request.logprobs or request.top_logprobs:
        out.append("logprobs/top_logprobs (the diffusion sampler keeps no per-token distribution to report)")
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(request, name):
            out.append(f"{name} (the diffusion sampler applies no penalties)")
    if request.logit_bias:
        out.append("logit_bias")
    choice = request.tool_choice
    if (
        request.functions
        or request.function_call not in (None, "none")
        or (choice not in (None, "none", "auto") or (request.tools and choice != "none"))
    ):
        out.append("tools/tool_choice (this model calls no tools; tool_choice 'none' is accepted)")
    if request.best_of not in (None, 1):
        out.append("best_of")
    if request.response_format is not None and request.response_format.type == "json_object":
        out.append("response_format 'json_object' (give a schema: 'json_schema' is pinned on the canvas)")
    return out


def parse_chat(body: Any) -> ChatRequest:
    """The validated request, or a ``WireError`` (400) naming what is wrong or cannot be honoured."""
    if not isinstance(body, dict):
        raise WireError("the body must be a JSON object")
    try:
        request = ChatRequest.model_validate(body)
    except ValidationError as exc:
        raise WireError(_describe(exc)) from None
    refused = _refusals(request)
    if refused:
        raise WireError("not supported by this diffusion engine: " + "; ".join(refused))
    for name in (*IGNORED, *sorted(request.model_extra or ())):
        if name in body and body[name] is not None:
            _warn_once(name)
    return request


def _warn_once(name: str) -> None:
    with _warned_lock:
        if name in _warned:
            return
        _warned.add(name)
    known = name in IGNORED
    log.warning(
        "the request field %r is %s and ignored (said once)",
        name,
        "accepted" if known else "not a chat-completions field",
    )


def _describe(exc: ValidationError) -> str:
    """Pydantic's errors as one line: where (``messages[0].role``) and what, at most three."""
    parts = []
    for error in exc.errors()[:3]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "literal_error" and where.endswith("role"):
            message = "the role must be system, developer, user or assistant"
        parts.append(f"{where or 'body'}: {message}")
    return "; ".join(parts)
