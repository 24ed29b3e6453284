"""What ``dwb`` shows while it works: engine events and a batch parse as ``tqdm`` status lines redrawn in place on a
terminal, and as one plain line per report elsewhere (a log, a pipe)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from app.cli_progress import EventView, ProgressBar
from inference.runtime.events import (
    CanvasCommitted,
    CanvasStarted,
    DenoisingStep,
    PrefillFinished,
    PrefillProgress,
    PrefillStarted,
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def event(cls, **values):
    """An event with ``values`` and zeros (empty arrays) for its other fields."""
    fields = dataclasses.fields(cls)
    return cls(**{f.name: values.get(f.name, np.zeros(0) if "ndarray" in str(f.type) else 0) for f in fields})


EVENTS = [
    event(PrefillStarted, prompt_tokens=3000),
    event(PrefillProgress, done=512, total=3000, seconds_left=3.0),
    event(PrefillProgress, done=1024, total=3000, seconds_left=2.0),
    event(PrefillFinished, prompt_tokens=3000, seconds=2.5),
    event(CanvasStarted, canvas=0, max_steps=48),
    event(DenoisingStep, canvas=0, step=0, accepted=np.array([True, False]), temperature=0.5),
    event(CanvasCommitted, canvas=0, steps=3),
]


def shown(stream, events=EVENTS):
    view = EventView(stream=stream)
    for e in events:
        view(e)
    view.close()
    return stream.getvalue()


def test_on_a_terminal_the_prefill_and_the_canvas_are_redrawn_in_place():
    screen = shown(Terminal())
    assert screen.startswith("prompt: 3,000 tokens\n")
    assert "\rprefill 512 of 3000 tokens, about 3 s left" in screen and "\rprefill 1024 of" in screen
    assert "\rcanvas 1: step 1 of 48, 1 of 2 positions settled, temperature 0.50" in screen
    lines = screen.split("\n")
    assert [line.rsplit("\r", 1)[-1] for line in lines] == [
        "prompt: 3,000 tokens",
        "prefill done: 3,000 tokens in 2 s",  # the status line is cleared before the line that ends it
        "canvas 1: committed after 3 step(s)",
        "",
    ]


def test_off_a_terminal_each_report_is_one_line_and_steps_are_not_shown():
    assert shown(io.StringIO()).splitlines() == [
        "prompt: 3,000 tokens",
        "prefill 512 of 3,000 tokens, about 3 s left",
        "prefill 1,024 of 3,000 tokens, about 2 s left",
        "prefill done: 3,000 tokens in 2 s",
        "canvas 1: committed after 3 step(s)",
    ]


def parse_batch(stream):
    bar = ProgressBar(stream)
    first, second = SimpleNamespace(path=Path("a.pdf")), SimpleNamespace(path=Path("b.pdf"))
    bar(0, 2, first, None)
    bar.page(1, 3, "a.pdf: page 1 read")
    bar(0, 2, first, SimpleNamespace(status="done", kept=0))
    bar(1, 2, second, None)
    bar(1, 2, second, SimpleNamespace(status="partial", kept=2))
    return stream.getvalue()


def test_a_batch_on_a_terminal_is_one_bar_redrawn_that_ends_its_line_when_done():
    screen = parse_batch(Terminal())
    assert "\r[------------------------] 0/2 parsing  a.pdf, a.pdf: page 1 read (1/3 pages)" in screen
    assert "\r[############------------] 1/2 done     a.pdf" in screen
    assert screen.endswith("\r[########################] 2/2 partial  b.pdf (2 pages kept from an earlier run)\n")
    assert screen.count("\n") == 1


def test_a_batch_off_a_terminal_is_a_line_per_page_and_per_document():
    assert parse_batch(io.StringIO()).splitlines() == [
        "  a.pdf: page 1 read (1/3 pages)",
        "[############------------] 1/2 done     a.pdf",
        "[########################] 2/2 partial  b.pdf (2 pages kept from an earlier run)",
    ]
