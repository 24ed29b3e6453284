"""Batch parse on a Ray cluster: the steps, outputs and manifest of ``inference.batch.runner``, spread with Ray Data.

The driver (this process) plans the inputs, hashes them and skips what the manifest says is finished, as a
single-process run does. The rest go to a coordinator actor on the cluster, which runs the dataset (Ray Data cannot
run from a Ray Client) and hands results back as they come. Each document is one row in a block of its own, so that
a worker that dies loses only that document. Its task runs ``batch.parse_item`` (ingest, then the builtin or remote
engine, then the serializers) into a scratch folder on its node and returns the files' bytes; the driver writes them
into the output folder and records the manifest as each document comes back. So the output folder and the manifest
live on the driver alone, and a run stopped at any point resumes. The workers read the inputs by path: on several
machines, keep them on storage that every node mounts at the same path.

A task whose worker dies (killed, out of memory, crashed) is run again up to ``retries`` times by Ray; then its block
is dropped (Ray Data's ``max_errored_blocks``) and the document is listed as failed, never retried forever.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import pickle
import queue
import re
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Protocol

from inference.batch.runner import (
    BatchResult,
    Item,
    ItemResult,
    Manifest,
    ParseJob,
    check_item,
    item_key,
    parse_item,
    plan,
    run_settings,
)
from inference.errors import ClusterError, ConfigError, WorkbenchError
from inference.exports import inside, parse_formats
from inference.files import write_atomic
from inference.tasks.base import ParseOptions

log = logging.getLogger(__name__)
RETRIES = 2  # runs of a document's task after the first when its worker dies
ADDRESS = re.compile(r"ray://[^\s/]+:\d+")
INSTALL_HINT = "Install the cluster extra on this machine and every node: pip install 'diffusion-workbench[cluster]'"
CONNECT_HINT = (
    "Start one with `ray start --head` (then --cluster auto on that machine), or check the address and "
    "that its Ray Client port is reachable. Ray's token authentication is off unless turned on: start the head "
    "with RAY_AUTH_MODE=token (`RAY_AUTH_MODE=token ray start --head`; `ray get-auth-token --generate` makes the "
    "token in ~/.ray/auth_token), and set RAY_AUTH_MODE=token here too, with the token in ~/.ray/auth_token or "
    "RAY_AUTH_TOKEN."
)


class EngineSpec(Protocol):
    """What a worker needs to build an engine: frozen (hashable, so each worker builds it once) and picklable."""

    name: ClassVar[str]

    def build(self) -> Any: ...


@dataclass(frozen=True)
class BuiltinSpec:
    name: ClassVar[str] = "builtin"

    def build(self) -> Any:
        from inference.tasks import BuiltinEngine

        return BuiltinEngine()


@dataclass(frozen=True)
class RemoteSpec:
    """The remote engine: every worker talks to the same OpenAI-compatible server (dwb serve, vLLM)."""

    base_url: str
    processor: str | None  # the model whose processor builds the prompts (no weights); None: the served model's
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 4
    timeout: float = 600.0
    http_retries: int = 4
    params: tuple[tuple[str, Any], ...] = ()  # max_new_tokens, max_denoising_steps, seed
    max_images: int | None = None  # per request; None: what the server states, else 8

    name: ClassVar[str] = "remote"

    def build(self) -> Any:
        from inference.tasks.remote import RemoteEngine, load_processor

        return RemoteEngine(
            self.base_url,
            load_processor(self.processor) if self.processor else None,
            model=self.model,
            api_key=self.api_key,
            concurrency=self.concurrency,
            timeout=self.timeout,
            http_retries=self.http_retries,
            params=dict(self.params),
            max_images=self.max_images,
        )


@dataclass(frozen=True)
class Job:
    """Everything a task needs besides its row."""

    spec: EngineSpec
    formats: tuple[str, ...]
    per_page: bool
    options: ParseOptions


def check_address(address: str) -> str:
    if address == "auto" or ADDRESS.fullmatch(address):
        return address
    raise ConfigError(
        f"--cluster {address!r}: give 'auto' (the cluster this machine belongs to) or ray://HOST:PORT "
        "(its Ray Client port, 10001 by default)"
    )


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ConfigError(
            f"parsing on a cluster needs Ray, which is not installed ({exc.name} is missing)", hint=INSTALL_HINT
        ) from exc
    return ray


@contextlib.contextmanager
def connected(address: str, verbose: bool = False) -> Iterator[Any]:
    """Ray, connected to ``address`` for the block; a connection the caller already made is used as it is."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    check_address(address)
    with _quiet(("ray", "ray.data"), unless=verbose):  # Ray's logs (a dropped block: a traceback) stay in its files
        try:
            ray.init(address=address, log_to_driver=verbose, logging_level=logging.INFO if verbose else logging.ERROR)
        except Exception as exc:
            raise ClusterError(f"cannot connect to the Ray cluster at {address}: {exc}", hint=CONNECT_HINT) from exc
        try:
            yield ray
        finally:
            ray.shutdown()


@contextlib.contextmanager
def _quiet(names: tuple[str, ...], unless: bool) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logger.level if unless else logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def run_parse_cluster(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    spec: EngineSpec,
    formats: Iterable[str] = ("md",),
    per_page: bool = False,
    force: bool = False,
    options: ParseOptions | None = None,
    address: str = "auto",
    retries: int = RETRIES,
    verbose: bool = False,
    on_item: Callable[[int, int, Item, ItemResult | None], None] | None = None,
) -> BatchResult:
    """``batch.run_parse`` on Ray: same files, same manifest; ``on_item(done, total, item, result)`` as each ends."""
    if retries < 0:
        raise ConfigError("--cluster-retries must be 0 or more")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    job = Job(spec, parse_formats(list(formats)), per_page, options or ParseOptions())
    settings = run_settings(spec.name, job.formats, per_page, job.options)
    manifest = Manifest(out)
    items = plan(inputs)
    results: list[ItemResult | None] = [None] * len(items)
    shas: dict[int, str] = {}
    ended = 0

    def finish(index: int, result: ItemResult) -> None:
        nonlocal ended
        results[index] = result
        if result.status != "skipped":
            manifest.record_result(item_key(items[index]), shas.get(index, ""), settings, result)
        if on_item:
            on_item(ended, len(items), items[index], result)
        ended += 1

    for index, item in enumerate(items):
        sha, result = check_item(item, item_key(item), manifest, settings, out, force)
        shas[index] = sha
        if result is not None:
            finish(index, result)
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        _run_on_ray(address, verbose, out, items, todo, job, retries, finish)
    for index in todo:
        if results[index] is None:
            finish(index, _failed(items[index], _gave_up(retries)))
    return BatchResult([r for r in results if r is not None])


def _run_on_ray(
    address: str,
    verbose: bool,
    out: Path,
    items: list[Item],
    todo: list[int],
    job: Job,
    retries: int,
    finish: Callable[[int, ItemResult], None],
) -> None:
    """The documents ``todo`` on Ray, each result written and passed to ``finish`` as it ends; if the cluster goes
    away, what finished is kept and the rest fail saying so."""
    with connected(address, verbose) as ray:
        done: set[int] = set()
        try:
            for index, result, files in _results(ray, [_row(i, items[i]) for i in todo], job, retries):
                done.add(index)
                finish(index, _write_files(out, files, result))
        except ClusterError as exc:
            for index in todo:
                if index not in done:
                    done.add(index)
                    finish(index, _failed(items[index], f"the cluster run stopped before it was parsed ({exc})"))


def _gave_up(retries: int) -> str:
    return (
        f"its Ray task failed {retries + 1} time(s): the worker died (killed, out of memory, crashed) or its node "
        "cannot run dwb; not tried again in this run"
    )


def _row(index: int, item: Item) -> dict[str, Any]:
    return {"index": index, "path": str(item.path), "subdir": item.subdir, "stem": item.stem}


def _failed(item: Item, why: str) -> ItemResult:
    return ItemResult(str(item.path), "failed", message=f"{item.path}: {why}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _write_files(out: Path, files: list[tuple[str, bytes]], result: ItemResult) -> ItemResult:
    """A task's files in the order it wrote them (Markdown last, marking completion), inside ``out`` only; the
    result, or a failure when they cannot be written."""
    try:
        for name, data in files:
            write_atomic(inside(out, *PurePosixPath(name).parts), data)
    except (OSError, ConfigError) as exc:
        return ItemResult(result.path, "failed", message=f"{result.path}: its files cannot be written in {out} ({exc})")
    return result


def _results(
    ray: Any, rows: list[dict[str, Any]], job: Job, retries: int
) -> Iterator[tuple[int, ItemResult, list[tuple[str, bytes]]]]:
    """Each row's result as it comes back, from a coordinator actor on the cluster that runs the dataset (Ray Data
    cannot run from a Ray Client, and one path serves both kinds of address); rows whose task failed ``retries + 1``
    times are left out. Ends the coordinator, and so the run, however the loop ends."""
    coordinator = ray.remote(num_cpus=0, max_restarts=0)(Coordinator).remote(rows, job, retries)
    try:
        while True:
            try:
                batch = ray.get(coordinator.take.remote())
            except ray.exceptions.RayError as exc:
                raise ClusterError(_first_line(exc)) from exc
            for kind, value in batch:
                if kind == "end":
                    return
                if kind == "error":
                    raise ClusterError(value)
                index, payload = value
                result, files = pickle.loads(payload)
                yield index, result, files
    finally:
        with contextlib.suppress(Exception):  # already gone with the cluster: nothing left to stop
            ray.kill(coordinator)


class Coordinator:
    """Runs the dataset on the cluster in a thread; ``take`` hands over what came back since the last call."""

    def __init__(self, rows: list[dict[str, Any]], job: Job, retries: int) -> None:
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        threading.Thread(target=self._drive, args=(rows, job, retries), daemon=True).start()

    def _drive(self, rows: list[dict[str, Any]], job: Job, retries: int) -> None:
        try:
            for row in _dataset(rows, job, retries).iter_rows():
                self.queue.put(("row", (row["index"], row["result"])))
        except Exception as exc:
            log.debug("the cluster run failed", exc_info=True)
            self.queue.put(("error", _first_line(exc)))
        self.queue.put(("end", None))

    def take(self, wait: float = 1.0) -> list[tuple[str, Any]]:
        try:
            got = [self.queue.get(timeout=wait)]
        except queue.Empty:
            return []
        while got[-1][0] != "end":
            try:
                got.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return got


def _dataset(rows: list[dict[str, Any]], job: Job, retries: int) -> Any:
    """One document per block, one task per block; a block that keeps failing is dropped and the run goes on."""
    import ray.data

    context = ray.data.DataContext.get_current()  # this coordinator's own
    context.max_errored_blocks = -1
    context.enable_progress_bars = False
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    with warnings.catch_warnings():  # max_retries has no named parameter yet; Ray Data's default is -1: forever
        warnings.simplefilter("ignore", DeprecationWarning)
        return dataset.map(functools.partial(_parse_row, job=job), num_cpus=1, max_retries=retries)


@functools.lru_cache(maxsize=4)
def _engine(spec: EngineSpec) -> Any:
    """One engine per worker process and spec, built on its first document."""
    return spec.build()


def _parse_row(row: dict[str, Any], job: Job) -> dict[str, Any]:
    """One task: parse one document into a scratch folder; its result and files go back to the driver."""
    item = Item(Path(row["path"]), row["subdir"], row["stem"])
    files: list[tuple[str, bytes]] = []
    try:
        engine = _engine(job.spec)
    except WorkbenchError as exc:
        result = _failed(item, f"the {job.spec.name} engine could not start on a worker: {exc.user_message()}")
    except Exception as exc:  # noqa: BLE001 - reported as this document's failure, never a lost task
        result = _failed(item, f"the {job.spec.name} engine could not start on a worker ({type(exc).__name__}: {exc})")
    else:
        with tempfile.TemporaryDirectory(prefix="dwb-cluster-") as scratch:
            result = parse_item(ParseJob(item, Path(scratch), engine, job.formats, job.per_page, job.options))
            files = [(name, (Path(scratch) / name).read_bytes()) for name in result.outputs]
    return {"index": row["index"], "result": pickle.dumps((result, files))}
