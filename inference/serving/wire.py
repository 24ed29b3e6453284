"""What crosses the wire between ``dwb serve`` and the remote engine, with no web framework imported.

- Events: each engine event becomes one small JSON object; its arrays are packed as binary in base64 (ids as
  little-endian integers of the smallest width that holds them, masks as bits, entropies as float16), so a step of a
  256-token canvas is about 1.3 KB of bytes instead of 7 KB of JSON lists. ``decode_event(encode_event(e))`` gives
  back an equal event of the same type.
- Prompts: a ``Prompt``'s parts become OpenAI chat ``content`` parts (text, and images as PNG data URLs, lossless);
  the server turns them back into the processor's chat messages.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
from typing import Any

import numpy as np

from inference.errors import WorkbenchError
from inference.runtime.events import EVENT_TYPES, Event, Stats, frozen_array

EVENT_BY_KIND: dict[str, type[Event]] = {cls.kind: cls for cls in EVENT_TYPES}
EXTENSION = "dwb"  # the request and chunk field of the extension; plain OpenAI clients ignore it


class WireError(WorkbenchError):
    """A request or a streamed chunk does not follow the protocol (the server answers 400)."""


# ---------------------------------------------------------------------------------------------- arrays
def pack_array(array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array)
    if array.dtype == bool:
        data, code = np.packbits(array, axis=None).tobytes(), "bits"
    elif array.dtype.kind in "iu":
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        code = next(
            (
                c
                for c, lo, hi in (("u1", 0, 255), ("u2", 0, 65_535), ("u3", 0, 2**24 - 1), ("i4", -(2**31), 2**31 - 1))
                if lo <= low and high <= hi
            ),
            "i8",
        )
        if code == "u3":
            raw = array.astype("<u4").reshape(-1, 1).view(np.uint8)[:, :3]
            data = raw.tobytes()
        else:
            data = array.astype("<" + code).tobytes()
    elif array.dtype == np.float16:
        data, code = array.astype("<f2").tobytes(), "f2"
    else:
        data, code = array.astype("<f4").tobytes(), "f4"
    return {
        "dtype": code,
        "like": array.dtype.str,
        "shape": list(array.shape),
        "b64": base64.b64encode(data).decode("ascii"),
    }


def unpack_array(packed: dict[str, Any]) -> np.ndarray:
    try:
        shape = tuple(int(n) for n in packed["shape"])
        data = base64.b64decode(packed["b64"], validate=True)
        code, like = packed["dtype"], np.dtype(packed["like"])
        count = int(np.prod(shape)) if shape else 1
        if code == "bits":
            flat = np.unpackbits(np.frombuffer(data, np.uint8), count=count).astype(bool)
        elif code == "u3":
            raw = np.frombuffer(data, np.uint8).reshape(-1, 3)
            flat = np.zeros((raw.shape[0], 4), np.uint8)
            flat[:, :3] = raw
            flat = flat.view("<u4").reshape(-1)
        else:
            flat = np.frombuffer(data, "<" + code)
        return frozen_array(flat.reshape(shape), like)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise WireError(f"a packed array is malformed: {exc}") from exc


# ---------------------------------------------------------------------------------------------- events
def encode_event(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"event": event.kind}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, np.ndarray):
            value = pack_array(value)
        elif isinstance(value, Stats):
            value = dataclasses.asdict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def decode_event(data: dict[str, Any]) -> Event:
    """The typed event back from ``encode_event``'s object; unknown kinds or fields are a ``WireError``."""
    try:
        cls = EVENT_BY_KIND[data["event"]]
    except (KeyError, TypeError) as exc:
        raise WireError(f"unknown event: {str(data)[:80]}") from exc
    values: dict[str, Any] = {}
    try:
        for f in dataclasses.fields(cls):
            if f.name not in data:
                if f.default is not dataclasses.MISSING:
                    continue
                raise WireError(f"event {cls.kind} lacks {f.name}")
            value = data[f.name]
            if isinstance(value, dict) and "b64" in value:
                value = unpack_array(value)
            elif f.name == "stats":
                stats: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
                value = Stats(**stats)
            elif isinstance(value, list):
                value = tuple(value)
            values[f.name] = value
        return cls(**values)
    except TypeError as exc:
        raise WireError(f"event {cls.kind} is malformed: {exc}") from exc


# ---------------------------------------------------------------------------------------------- images
def image_to_data_url(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_from_data_url(url: str, max_pixels: int = 50_000_000) -> Any:
    from PIL import Image

    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
        raise WireError("images must be data URLs (data:image/...;base64,...); remote URLs are not fetched")
    try:
        data = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > max_pixels:
            raise WireError(f"an image of {image.width}x{image.height} pixels is over the limit ({max_pixels})")
        image.load()
    except WireError:
        raise
    except Exception as exc:
        raise WireError(f"an image could not be decoded: {type(exc).__name__}: {exc}") from exc
    return image if image.mode == "RGB" else image.convert("RGB")


def prompt_content(prompt: Any) -> list[dict[str, Any]]:
    """A ``Prompt``'s parts as OpenAI chat content parts, in order."""
    return [
        {"type": "image_url", "image_url": {"url": image_to_data_url(p.image)}}
        if p.kind == "image"
        else {"type": "text", "text": p.text}
        for p in prompt.parts
    ]


def processor_messages(messages: Any, max_pixels: int = 50_000_000) -> tuple[list[dict[str, Any]], list[Any]]:
    """OpenAI chat messages -> the processor's chat messages and the images in order; a ``WireError`` when malformed."""
    if not isinstance(messages, list) or not messages:
        raise WireError("'messages' must be a non-empty list")
    out, images = [], []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise WireError(f"messages[{i}] must be an object with a role of system, user or assistant")
        content = message.get("content")
        if isinstance(content, str):  # a plain string is one text part
            text_part: dict[str, Any] = {"type": "text", "text": content}
            content = [text_part]
        if not isinstance(content, list):
            raise WireError(f"messages[{i}].content must be a string or a list of parts")
        parts = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": part["text"]})
            elif kind == "image_url" and isinstance(part.get("image_url"), dict):
                image = image_from_data_url(part["image_url"].get("url"), max_pixels)
                images.append(image)
                parts.append({"type": "image", "image": image})
            else:
                raise WireError(f"messages[{i}].content[{j}] must be a text or image_url part")
        out.append({"role": message["role"], "content": parts})
    return out, images
