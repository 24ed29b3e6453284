"""Images of chat requests with bounded memory.

A data URL's image is opened lazily: PIL reads only the header, so every image's decoded size is known before any
is decoded. A request whose images hold more pixels than ``ImageLimits.per_request`` (or one image more than
``per_image``) is refused then, with nothing decoded. Images are then decoded one at a time, each resized at once by
the processor's own resize at the request's image budget (``shrinker``), so a request holds at most one full-size
image at a time and the model sees the pixels it would have seen. Decoding across requests is bounded too: the
requests being prepared together (those that may form one batch) decode at most ``per_batch`` pixels at once; the
others wait their turn.
After a request's images are read, freed memory is handed back to the system (``malloc_trim``).
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import gc
import io
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inference.serving.wire import WireError


@dataclass(frozen=True)
class ImageLimits:
    """Decoded pixels one image, one request, and all requests decoding at once may hold."""

    per_image: int = 50_000_000
    per_request: int = 800_000_000
    per_batch: int = 100_000_000


class PixelGate:
    """Pixels being decoded at once, over all requests: ``hold(n)`` waits until ``n`` more fit under the limit (an
    image larger than the whole limit waits until nothing else is decoding)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    def hold(self, pixels: int) -> _Held:
        with self._cond:
            self._cond.wait_for(lambda: self.used == 0 or self.used + pixels <= self.limit)
            self.used += pixels
            self.peak = max(self.peak, self.used)
        return _Held(self, pixels)

    def release(self, pixels: int) -> None:
        with self._cond:
            self.used -= pixels
            self._cond.notify_all()


class _Held:
    def __init__(self, gate: PixelGate, pixels: int) -> None:
        self.gate, self.pixels = gate, pixels

    def __enter__(self) -> _Held:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.gate.release(self.pixels)


def open_header(url: Any, index: int, limits: ImageLimits) -> Any:
    """The image of a data URL, opened but not decoded (its size read from the header)."""
    from PIL import Image

    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
        raise WireError("images must be data URLs (data:image/...;base64,...); remote URLs are not fetched")
    try:
        data = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
        image = Image.open(io.BytesIO(data))
    except (binascii.Error, ValueError, OSError) as exc:
        raise WireError(f"image {index + 1} could not be decoded: {type(exc).__name__}: {exc}") from exc
    if image.width * image.height > limits.per_image:
        raise WireError(
            f"image {index + 1} is {image.width}x{image.height} pixels, over this server's limit of "
            f"{limits.per_image} per image"
        )
    return image


def check_request(images: list[Any], limits: ImageLimits) -> int:
    """The request's decoded pixels, refused over ``limits.per_request`` before any image is decoded."""
    total = sum(image.width * image.height for image in images)
    if total > limits.per_request:
        sizes = ", ".join(f"{i.width}x{i.height}" for i in images[:4]) + (", ..." if len(images) > 4 else "")
        raise WireError(
            f"the images hold {total} pixels when decoded ({sizes}); this server takes at most "
            f"{limits.per_request} per request"
        )
    return total


LARGE = 4096 * 4096  # pixels over which an image is first reduced by a whole factor (a box filter) before the resize


def shrinker(processor: Any, max_soft_tokens: int) -> Callable[[Any], Any] | None:
    """The processor's own resize at this image budget, applied here as soon as an image is decoded (the processor
    then finds it at its size and keeps it as it is, so the model sees the same pixels); None for a processor whose
    resize is unknown (images are then kept whole)."""
    image_processor = getattr(processor, "image_processor", None)
    resize = getattr(image_processor, "aspect_ratio_preserving_resize", None)
    patch = getattr(image_processor, "patch_size", None)
    pooling = getattr(image_processor, "pooling_kernel_size", None)
    if resize is None or not isinstance(patch, int) or not isinstance(pooling, int):
        return None
    if int(getattr(image_processor, "resample", 3)) != 3:  # bicubic, the processor's default
        return None

    def shrink(image: Any) -> Any:
        import numpy as np
        import torch
        from PIL import Image
        from torchvision.transforms import InterpolationMode

        tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1)
        out = resize(
            image=tensor,
            patch_size=patch,
            max_patches=max_soft_tokens * pooling**2,
            pooling_kernel_size=pooling,
            resample=InterpolationMode.BICUBIC,
        )
        if out is tensor:
            return image
        return Image.fromarray(out.permute(1, 2, 0).contiguous().numpy())

    return shrink


def decode(image: Any, index: int, shrink: Callable[[Any], Any] | None, gate: PixelGate) -> Any:
    """The image decoded (under ``gate``), in RGB, resized as the processor will resize it. An image over ``LARGE``
    pixels is first reduced by a whole factor to at most that (JPEG while decoding), so that the resize never holds
    more than that in floats; the processor's resize from there differs slightly from one from the full image."""
    from PIL import Image

    pixels = image.width * image.height
    with gate.hold(pixels):
        try:
            if shrink is not None and pixels > LARGE:
                factor = math.ceil(math.sqrt(pixels / LARGE))
                image.draft("RGB", (image.width // factor, image.height // factor))
            image.load()
            if image.mode != "RGB":
                image = image.convert("RGB")
            if shrink is None:
                return image
            if image.width * image.height > LARGE:
                factor = math.ceil(math.sqrt(image.width * image.height / LARGE))
                image = image.reduce(factor)
            return shrink(image)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise WireError(f"image {index + 1} could not be decoded: {type(exc).__name__}: {exc}") from exc


def give_back_memory() -> None:
    """Hand freed heap pages back to the system (glibc keeps them otherwise, and the process stays large)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def read_messages(
    messages: list[dict[str, Any]],
    limits: ImageLimits,
    max_images: int,
    shrink: Callable[[Any], Any] | None,
    gate: PixelGate,
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Chat messages -> the processor's chat messages and their images in order, decoded within ``limits``: every
    part checked and every image's size read before the first image is decoded."""
    out, opened = [], []
    for i, message in enumerate(messages):
        content = message["content"]
        if isinstance(content, str):  # a plain string is one text part
            text_part: dict[str, Any] = {"type": "text", "text": content}
            content = [text_part]
        parts: list[dict[str, Any]] = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": part["text"]})
            elif kind == "image_url" and isinstance(part.get("image_url"), dict):
                if len(opened) == max_images:
                    raise WireError(f"over {max_images} images in one request; this server takes at most {max_images}")
                opened.append(open_header(part["image_url"].get("url"), len(opened), limits))
                parts.append({"type": "image", "image": len(opened) - 1})
            else:
                raise WireError(f"messages[{i}].content[{j}] must be a text or image_url part")
        out.append({"role": message["role"], "content": parts})
    if not opened:
        return out, []
    check_request(opened, limits)
    images = []
    for k, image in enumerate(opened):
        images.append(decode(image, k, shrink, gate))
        opened[k] = None  # the full-size image goes as soon as it is read
    for message in out:
        for part in message["content"]:
            if part["type"] == "image":
                part["image"] = images[part["image"]]
    give_back_memory()
    return out, images
