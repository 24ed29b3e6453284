"""The text of one answer as its canvases commit: deltas for a stream, the whole at the end, cut at stop strings and
at the client's ``max_tokens``, with the ``finish_reason`` and token count that go with it."""

from __future__ import annotations

from typing import Any

import numpy as np

from inference.runtime.events import CanvasCommitted, Finished


class AnswerText:
    """Text as it is committed, canvas by canvas: decoded from all ids so far, so that a character split between
    two canvases comes out whole; the last delta makes the streamed text equal the answer's text. The answer is cut
    at the first stop string (text that could begin one is held back until it cannot) and at ``cap`` tokens: its
    ``reason`` is ``stop`` when it ended by itself (an end-of-sequence or padding token within ``cap`` tokens, or a
    stop string), else ``length``; ``tokens`` counts the answer's tokens (its end-of-sequence included)."""

    def __init__(self, engine: Any, stops: tuple[str, ...], cap: int, reader: Any = None) -> None:
        self.engine, self.stops, self.cap = engine, stops, cap
        self.reader = reader  # a canvas template's: the answer is the JSON it reads from the ids, given at the end
        pad = {int(engine.pad_token_id)} if engine.pad_token_id is not None else set()
        self.ends = set(engine.eos_token_ids) | pad
        self.ids: list[int] = []
        self.sent = ""
        self.reason = "stop"
        self.stopped = False
        self.tokens = 0

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
        if self.stopped or len(self.ids) >= self.cap or self.reader is not None:
            return ""
        self.ids.extend(int(i) for i in event.ids[0])
        text = self._cut(self.engine._decode(_array(self.ids[: self.cap])).rstrip("\ufffd"), final=False)
        if not text.startswith(self.sent):
            return ""
        delta, self.sent = text[len(self.sent) :], text
        return delta

    def finished(self, event: Finished) -> str:
        if self.reader is not None:  # JSON laid out on the canvas: whole by construction
            self.reason, self.tokens = "stop", int(np.asarray(event.ids[0]).size)
            return self.reader(event.ids[0])
        ids = [int(i) for i in event.ids[0]]
        end = next((i for i, token in enumerate(ids) if token in self.ends), None)
        if end is not None and end < self.cap:
            whole, self.reason, self.tokens = event.text, "stop", end + 1
        elif len(ids) <= self.cap:
            whole, self.reason, self.tokens = event.text, "length", len(ids)
        else:
            whole, self.reason, self.tokens = self.engine._decode(_array(ids[: self.cap])), "length", self.cap
        text = self.sent if self.stopped else self._cut(whole, final=True)
        if self.stopped:
            self.reason = "stop"
        return text[len(self.sent) :] if text.startswith(self.sent) else ""


def _array(ids: list[int]) -> Any:
    import numpy as np

    return np.array(ids, dtype=np.int64)
