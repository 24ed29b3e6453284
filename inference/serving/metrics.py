"""``/metrics`` of ``dwb serve`` (``prometheus_client``, one registry per server): counters, requests by HTTP status
and outcome, and gauges read when scraped.

A request's ``outcome`` says how it ended beyond its status, which for a stream is 200 once its first byte left:
``stop`` / ``length`` (its answer's ``finish_reason``), ``error`` (the run failed), ``timeout`` (past the request
time limit), ``abort`` (the server shut down under it), ``disconnected`` (the client went away), ``refused`` (a 4xx or
503 before any run).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

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
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters = {name: Counter(PREFIX + name, text, registry=self.registry) for name, text in COUNTERS.items()}
        self._requests = Counter(
            PREFIX + "requests",
            "Requests answered, by HTTP status and outcome (how a stream ended: stop, length, error, timeout, "
            "abort, disconnected; refused before any run).",
            ["status", "outcome"],
            registry=self.registry,
        )

    def add(self, name: str, amount: float) -> None:
        self._counters[name].inc(amount)

    def count(self, name: str) -> None:
        self.add(name, 1)

    def observe_batch(self, rows: int) -> None:
        self._counters["batches"].inc()
        self._counters["batch_rows"].inc(rows)

    def request(self, status: int, outcome: str) -> None:
        self._requests.labels(status=str(status), outcome=outcome).inc()

    def gauges(self, gauges: dict[str, tuple[str, Callable[[], float]]]) -> None:
        """Gauges read when scraped (name: (help, read))."""
        for name, (text, read) in gauges.items():
            Gauge(PREFIX + name, text, registry=self.registry).set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)
