"""``/metrics`` of ``dwb serve`` in the Prometheus text format (version 0.0.4), with no client library: counters
and gauges kept under one lock, written out on request."""

from __future__ import annotations

import threading
from collections.abc import Callable

PREFIX = "dwb_"
COUNTERS = {
    "prompt_tokens": "Prompt tokens of accepted requests.",
    "generated_tokens": "Tokens generated (committed canvases of finished rows).",
    "denoising_steps": "Denoising steps run by the engine (one per batch step).",
    "prefill_seconds": "Seconds spent in prefill.",
    "denoising_seconds": "Seconds spent in denoising steps.",
    "timeouts": "Requests stopped by the request time limit.",
    "batches": "Engine runs (batches of one or more requests).",
    "batch_rows": "Requests run in batches (rows over all batches).",
}


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = dict.fromkeys(COUNTERS, 0.0)
        self._requests: dict[int, int] = {}

    def add(self, name: str, amount: float) -> None:
        with self._lock:
            self._values[name] += amount

    def count(self, name: str) -> None:
        self.add(name, 1)

    def observe_batch(self, rows: int) -> None:
        with self._lock:
            self._values["batches"] += 1
            self._values["batch_rows"] += rows

    def request(self, status: int) -> None:
        with self._lock:
            self._requests[status] = self._requests.get(status, 0) + 1

    def render(self, gauges: dict[str, tuple[str, Callable[[], float]]]) -> str:
        """The exposition text: every counter, requests by status, and ``gauges`` (name: (help, read))."""
        with self._lock:
            values, requests = dict(self._values), dict(self._requests)
        lines = [
            f"# HELP {PREFIX}requests_total Requests answered, by HTTP status.",
            f"# TYPE {PREFIX}requests_total counter",
        ]
        lines += [f'{PREFIX}requests_total{{status="{s}"}} {n}' for s, n in sorted(requests.items())]
        for name, text in COUNTERS.items():
            lines += [f"# HELP {PREFIX}{name}_total {text}", f"# TYPE {PREFIX}{name}_total counter"]
            lines.append(f"{PREFIX}{name}_total {_number(values[name])}")
        for name, (text, read) in gauges.items():
            lines += [f"# HELP {PREFIX}{name} {text}", f"# TYPE {PREFIX}{name} gauge", f"{PREFIX}{name} {read()}"]
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
