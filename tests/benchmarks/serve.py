"""Benchmark: one generation through ``dwb serve`` (events on, the remote engine as client) against the in-process
engine, same model, prompt, seed and parameters.

The server runs as its own process on 127.0.0.1 and a free port. Runs alternate (in-process, remote, ...) so that
drift of the machine hits both alike; each run generates 2 canvases (512 new tokens) with adaptive stopping and
end-of-sequence off on both sides, so both make the same denoising steps, and every step event is consumed (decoded,
on the remote side). Prints the medians and, last, ``remote_overhead_ratio=<remote median / in-process median>``
(goal: <= 1.25).

Before that, throughput: ``--clients`` (8) clients send the same number of requests (each makes the same 2
canvases) once one after another and once all at once, back to back in each of ``--rounds`` rounds (which goes
first alternates); the server batches the concurrent ones (its default --max-batch 4; the rows per batch it ran are
printed, read from its /metrics). ``batch_throughput_ratio=`` is the median over the rounds of each round's
one-at-a-time seconds / concurrent seconds (goal >= 1.6 on tiny): the two halves of a round run seconds apart, so
the drift of a shared machine, which moves the one-at-a-time time by a third from round to round, cancels in
each ratio. The ratio of the two medians is printed too. The total of generated tokens is checked equal between
the two.

Last, memory: one request of 16 images of 7000 x 7000 (small compressed PNGs, 784 million pixels decoded) at the
default image budget; the server process's peak resident memory during that request (its high-water mark reset
just before, ``/proc/PID/clear_refs``) is ``image_request_peak_gb=`` (goal <= 1.5), printed with its resident memory
before and after (memory handed back).

    .venv/bin/python -m tests.benchmarks.serve [--model tiny|ID|FOLDER] [--pairs 7] [--clients 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, server: subprocess.Popen, seconds: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"dwb serve exited with {server.returncode}")
        try:
            if httpx.get(url.removesuffix("/v1") + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("dwb serve did not start")


def _batches(client, url: str) -> tuple[float, float]:
    """The server's count of batches and of rows run in them (from /metrics)."""
    values = {}
    for line in client.get(url.removesuffix("/v1") + "/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        values[name] = value
    return float(values.get("dwb_batches_total", 0)), float(values.get("dwb_batch_rows_total", 0))


def throughput(url: str, text: str, args: argparse.Namespace) -> tuple[list[float], list[float], float]:
    """Seconds for ``args.clients`` requests one after another and all at once, per round; the mean rows per batch
    of the concurrent requests."""
    import threading

    import httpx

    body = {
        "messages": [{"role": "user", "content": text}],
        "max_tokens": args.new_tokens,
        "dwb": {
            "params": {"max_denoising_steps": args.steps, "stability_threshold": None, "confidence_threshold": None}
        },
    }

    def ask(client: httpx.Client, tokens: list[int]) -> None:
        answer = client.post(url + "/chat/completions", json=body, timeout=3600)
        answer.raise_for_status()
        tokens.append(answer.json()["usage"]["completion_tokens"])

    sequential, concurrent, batches, rows = [], [], 0.0, 0.0
    with httpx.Client(limits=httpx.Limits(max_connections=args.clients + 2)) as client:

        def one_by_one(one: list[int]) -> None:
            t0 = time.perf_counter()
            for _ in range(args.clients):
                ask(client, one)
            sequential.append(time.perf_counter() - t0)

        def all_at_once(many: list[int]) -> None:
            nonlocal batches, rows
            threads = [threading.Thread(target=ask, args=(client, many)) for _ in range(args.clients)]
            before = _batches(client, url)
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            concurrent.append(time.perf_counter() - t0)
            after = _batches(client, url)
            batches, rows = batches + after[0] - before[0], rows + after[1] - before[1]

        ask(client, [])  # warm-up
        for r in range(args.rounds):  # each round both ways, back to back, the order alternating
            one, many = [], []
            for run in (one_by_one, all_at_once) if r % 2 == 0 else (all_at_once, one_by_one):
                run(one if run is one_by_one else many)
            if sum(one) != sum(many) or len(many) != args.clients:
                raise SystemExit(
                    f"the concurrent requests made other tokens ({sum(many)}) than one by one ({sum(one)})"
                )
    return sequential, concurrent, rows / batches


def _memory(pid: int) -> dict[str, float]:
    """Resident and peak resident memory of a process, in GB (Linux)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024**2
    return values


def image_request(url: str, pid: int) -> tuple[float, float, float]:
    """The server's resident GB before, its peak during, and resident after one request of 16 images of 7000^2."""
    import base64
    import io

    import httpx
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (7000, 7000), "white")
    ImageDraw.Draw(image).rectangle((1750, 1750, 3500, 3500), fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    del image
    data = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    body = {
        "max_tokens": 32,
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data}}] * 16}],
        "dwb": {"params": {"max_denoising_steps": 4}},
    }
    before = _memory(pid)["VmRSS"]
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak to the current resident memory
    answer = httpx.post(url + "/chat/completions", json=body, timeout=3600)
    answer.raise_for_status()
    after = _memory(pid)
    return before, after["VmHWM"], after["VmRSS"]


def serve_child(args: argparse.Namespace) -> None:
    """The server process: ``dwb serve``'s parts, with end-of-sequence off so that every run makes 2 canvases."""
    import uvicorn

    from inference.serving.runner import Runner
    from inference.serving.server import ChatApp, ServeConfig
    from inference.weights.loading import load_model

    runner = Runner(load_model(args.model, dtype=args.dtype, device=args.device))
    runner.engine.eos_token_ids = []
    app = ChatApp(runner, ServeConfig(model_name=args.model))
    uvicorn.run(app.app, host="127.0.0.1", port=args.child_port, log_level="warning", lifespan="off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_port:
        return serve_child(args)
    if args.pairs < 3:
        parser.error("--pairs must be at least 3")

    from inference.prompts import Prompt, PromptBuilder, PromptPart
    from inference.runtime.engine import DiffusionEngine
    from inference.runtime.events import DenoisingStep, Finished
    from inference.tasks import TaskContext
    from inference.tasks.remote import RemoteEngine
    from inference.weights.loading import load_model

    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.serve",
            "--model",
            args.model,
            "--dtype",
            args.dtype,
            "--device",
            args.device,
            "--child-port",
            str(port),
        ]
    )
    try:
        loaded = load_model(args.model, dtype=args.dtype, device=args.device)
        engine = DiffusionEngine(loaded.model, loaded.tokenizer)
        engine.eos_token_ids = []  # random weights end early on end-of-sequence; every run makes 2 canvases
        params = engine.default_params(
            max_new_tokens=args.new_tokens,
            max_denoising_steps=args.steps,
            seed=0,
            stability_threshold=None,
            confidence_threshold=None,
        )
        builder = PromptBuilder(loaded.processor)
        parts = [PromptPart("text", text="Write a long story about a lighthouse keeper and the sea.")]
        total, template = builder.count(parts, 280)
        prompt = Prompt("", parts, 280, total, template, 10_000)
        inputs = builder.inputs(prompt)
        _wait_ready(url, server)
        sequential, concurrent, per_batch = throughput(url, parts[0].text, args)
        remote = RemoteEngine(url, loaded.processor, params=params, concurrency=1)

        def local_run() -> tuple[float, list[int], int]:
            t0 = time.perf_counter()
            steps, ids = 0, []
            for event in engine.generate(inputs, params):
                steps += isinstance(event, DenoisingStep)
                if isinstance(event, Finished):
                    ids = event.ids[0].tolist()
            return time.perf_counter() - t0, ids, steps

        def remote_run() -> tuple[float, list[int], int]:
            events: list = []
            t0 = time.perf_counter()
            remote.generate(prompt, TaskContext(on_event=events.append))
            seconds = time.perf_counter() - t0
            done = next(e for e in events if isinstance(e, Finished))
            return seconds, done.ids[0].tolist(), sum(isinstance(e, DenoisingStep) for e in events)

        local_run(), remote_run()  # warm-up: first-call costs on both sides
        local_times, remote_times = [], []
        for _ in range(args.pairs):
            t_local, ids_local, steps_local = local_run()
            t_remote, ids_remote, steps_remote = remote_run()
            if ids_local != ids_remote or steps_local != steps_remote:
                raise SystemExit("the remote run differs from the in-process run")
            local_times.append(t_local)
            remote_times.append(t_remote)
        remote.close()
        before, peak, after = image_request(url, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    lm, rm = statistics.median(local_times), statistics.median(remote_times)
    print(
        f"model: {loaded.label} [{loaded.dtype}, {loaded.device}], {args.new_tokens} new tokens, "
        f"{args.steps} steps per canvas, {steps_local} step events per run, {args.pairs} pairs"
    )
    print(f"in-process engine: median {lm * 1000:.1f} ms  (runs: {', '.join(f'{t * 1000:.0f}' for t in local_times)})")
    print(
        f"dwb serve + remote engine (events on): median {rm * 1000:.1f} ms  "
        f"(runs: {', '.join(f'{t * 1000:.0f}' for t in remote_times)})"
    )
    sm, cm = statistics.median(sequential), statistics.median(concurrent)
    ratios = [a / b for a, b in zip(sequential, concurrent, strict=True)]
    print(
        f"{args.clients} clients, one at a time: median {sm:.2f} s; all at once: median {cm:.2f} s "
        f"(rounds: {', '.join(f'{a:.2f}/{b:.2f}' for a, b in zip(sequential, concurrent, strict=True))}); "
        f"{per_batch:.1f} rows per batch; ratio of the medians {sm / cm:.3f}"
    )
    print(f"batch_throughput_ratio={statistics.median(ratios):.3f}")
    print(f"remote_overhead_ratio={rm / lm:.3f}")
    print(f"16 images of 7000x7000: server resident {before:.2f} GB before, {after:.2f} GB after")
    print(f"image_request_peak_gb={peak:.2f}")


if __name__ == "__main__":
    main()
