"""Running headless work off the UI thread.

A job is a plain Python callable ``fn(job) -> result`` that reports through the ``Job`` it is given: ``job.event(e)``
for engine events, ``job.progress(done, total, what)``; it checks ``job.cancelled`` (and hands ``job.cancel_token``
to the engine, which checks it before every denoising step). Its result, its error or its cancellation come back as
Qt signals on the UI thread. The worker thread never touches a widget; the engine never waits for the UI.

Jobs are the one way work leaves the UI thread. A window's tasks queue on its ``Worker`` (one thread, one job at a
time, joined on close). A dialog's short look-ups (a schema file, a checkpoint's estimate) must not wait behind a
model run, nor hold up closing when a hub lookup hangs: ``run_detached`` runs such a job on a daemon thread of its
own; its signals reach the UI thread the same way, and nobody once its owner is gone.
"""

from __future__ import annotations

import functools
import logging
import threading
import traceback
from collections.abc import Callable, Hashable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from app.gui.messages import describe

log = logging.getLogger(__name__)
NOT_STARTED = "cancelled before it started"  # the reason a queued job that was dropped gives


class Job(QObject):
    """One unit of work and its signals. Emitted from the worker thread, delivered queued to the UI thread."""

    event = Signal(object)  # an inference.runtime.events.Event
    progress = Signal(int, int, str)
    succeeded = Signal(object)
    failed = Signal(str, str)  # user message, details (traceback) for "Show details"
    cancelled = Signal(str)
    done = Signal()  # after any of the three above

    def __init__(
        self, name: str, fn: Callable[[Job], Any], quiet: bool = False, key: Hashable | None = None, detail: str = ""
    ) -> None:
        super().__init__()
        from inference.runtime.cancel import CancelToken

        self.name = name
        self.fn = fn
        self.quiet = quiet  # background bookkeeping (a token count): no progress, no Cancel button
        self.key = key  # what the job does to what: a job with the key of one queued or running is not queued again
        self.detail = detail  # what the task queue lists (the question, the documents); the name when empty
        self.fresh_panel = False  # a model task queued behind another: the denoising panel is reset when it starts
        self.cancel_token = CancelToken()

    @property
    def title(self) -> str:
        return self.detail or self.name

    @property
    def cancelled_requested(self) -> bool:
        return self.cancel_token.cancelled

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def run(self) -> None:
        """Runs on the worker thread."""
        from inference.errors import CancelledError

        try:
            result = self.fn(self)
        except CancelledError as exc:
            self.cancelled.emit(str(exc))
        except BaseException as exc:
            message = describe(exc)
            log.debug("job %s failed", self.name, exc_info=True)
            self.failed.emit(message, "".join(traceback.format_exception(exc)))
        else:
            if self.cancel_token.cancelled:
                self.cancelled.emit("cancelled")
            else:
                self.succeeded.emit(result)
        finally:
            self.done.emit()


class _Runner(QObject):
    """Lives in the worker thread; runs a job's function there. The job itself stays on the UI thread, so that its
    signals, emitted from here, are queued to the UI thread (a Qt connection's context is the sender)."""

    @Slot(object)
    def run(self, job: Job) -> None:
        job.run()


class Worker(QObject):
    """One background thread running jobs one at a time."""

    busy_changed = Signal(bool)
    job_started = Signal(object)  # the Job that starts running
    queue_changed = Signal()  # a job was queued, started, finished or dropped: the task queue lists them again
    job_waiting = Signal(object, object)  # (job, the user's task it waits for): queued behind it
    duplicate = Signal(object)  # the Job already queued or running that a submitted one repeated (not queued)
    _start = Signal(object)
    _launch_later = Signal(object)  # queued to this Worker itself: the next turn of the UI thread's event loop

    def __init__(self, parent: QObject | None = None, name: str = "dwb-worker") -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName(name)
        self._runner = _Runner()
        self._runner.moveToThread(self.thread)
        self._start.connect(self._runner.run)
        self._launch_later.connect(self._launch, Qt.ConnectionType.QueuedConnection)
        self.thread.finished.connect(self._runner.deleteLater)
        self.thread.start()
        self.current: Job | None = None
        self._queue: list[Job] = []
        self.finished = False  # finish() was called: no job runs on this worker again
        # The Worker dies with its parent (the window), which may be deleted while a job still runs (deleteLater while
        # its close waits for the job). The thread is no child of it: it would outlive it, running, and a QThread
        # destroyed running aborts the process. So the Worker's destruction cancels the jobs and joins the thread.
        self.destroyed.connect(functools.partial(_join_on_destroy, self.thread, self._jobs))

    @property
    def busy(self) -> bool:
        return self.current is not None

    def _jobs(self) -> list[Job]:
        return [j for j in (self.current, *self._queue) if j is not None]

    def jobs(self) -> list[Job]:
        """The user's tasks, the running one first, then the queued ones in order (bookkeeping left out)."""
        return [j for j in self._jobs() if not j.quiet]

    def pending(self, key: Hashable) -> Job | None:
        """The job with this key that is queued, or running and not cancelled, if any."""
        return next((j for j in self._jobs() if j.key == key and not j.cancelled_requested), None)

    def submit(self, job: Job) -> Job:
        """Queue ``job``; it starts once the UI thread's event loop runs again (connect to its signals right after
        this call: nothing is emitted before). A job whose key is queued or running already is not queued: that job
        is returned (``duplicate`` says so). After :meth:`finish` (the window closed) it is cancelled at once and
        never runs."""
        if self.finished:
            job.cancel()
            log.debug("job %s submitted after the worker finished: not run", job.name)
            return job
        same = self.pending(job.key) if job.key is not None else None
        if same is not None:
            self.duplicate.emit(same)
            return same
        job.done.connect(self._finished)
        if not job.quiet and self.current is not None and self.current.quiet:
            self.current.cancel()  # bookkeeping (a token count) gives way to the user's task; it is redone later
        self._queue.append(job)
        if self.current is None:
            self._next()
        else:
            ahead = next((j for j in self._jobs() if not j.quiet and j is not job), None)
            if not job.quiet and ahead is not None:
                self.job_waiting.emit(job, ahead)
            self.queue_changed.emit()
        return job

    def drop(self, job: Job) -> None:
        """Cancel one job: the running one stops at its next check; a queued one leaves the queue now, never runs,
        and emits ``cancelled`` (then ``done``) at once."""
        if job is self.current:
            job.cancel()
            self.queue_changed.emit()
            return
        if job not in self._queue:
            return
        self._queue.remove(job)
        job.done.disconnect(self._finished)
        job.cancel()
        job.cancelled.emit(NOT_STARTED)
        job.done.emit()
        job.deleteLater()
        self.queue_changed.emit()

    def cancel(self) -> None:
        for job in self._queue:
            job.cancel()
        if self.current is not None:
            self.current.cancel()

    def _next(self) -> None:
        if not self._queue:
            self.queue_changed.emit()
            self.busy_changed.emit(False)
            return
        self.current = self._queue.pop(0)
        self.queue_changed.emit()  # after ``current`` is set: the queue lists the job as running, not queued
        self.busy_changed.emit(True)
        self.job_started.emit(self.current)  # the window shows it busy now
        self._launch_later.emit(self.current)

    def _launch(self, job: Job) -> None:
        """The job starts on the worker thread once the UI thread is back in its event loop, so that whoever
        submitted it has connected to its signals by then (else a job that is quick to its first event, a follow-up's
        prefill, would emit it before the caller's ``job.event.connect``)."""
        if job is self.current:
            self._start.emit(job)

    def _finished(self) -> None:
        job = self.current
        self.current = None
        if job is not None:
            job.deleteLater()
        self._next()

    def stop(self) -> bool:
        """Cancel the running job and drop the queued ones. Never waits: True when the thread is idle now; else
        ``busy_changed(False)`` follows once the running job has seen the cancellation (one step or chunk)."""
        self.cancel()
        self._queue.clear()
        self.queue_changed.emit()
        return self.current is None

    def finish(self) -> None:
        """Stop the idle thread's event loop and join it (immediate: no job runs). Call only when not busy."""
        if self.current is not None:
            raise RuntimeError("the worker is still running a job: stop() it and wait for busy_changed(False)")
        self._join()

    def shutdown_blocking(self) -> None:
        """Last resort when the event loop is already gone (application quit): cancel, then join the thread."""
        self.stop()
        self._join()

    def _join(self) -> None:
        self.finished = True  # from now on a submitted job is cancelled, never queued
        self.thread.quit()
        self.thread.wait()


def _join_on_destroy(thread: QThread, jobs: Callable[[], list[Job]], *_: Any) -> None:
    """The Worker is being destroyed (``destroyed``): cancel what it still holds and join its thread. The running
    job stops within a step or chunk; what it emits after this reaches no Worker (its queued calls are dropped)."""
    try:
        for job in jobs():
            job.cancel()
        running = thread.isRunning()
    except RuntimeError:  # at interpreter exit the QThread (or a job) may already be gone: nothing left to join
        return
    if running:
        log.debug("worker destroyed while its thread runs: cancelling and joining")
        thread.quit()
        thread.wait()


def run_detached(job: Job, owner: QObject) -> Job:
    """Run ``job`` now on a daemon thread of its own (see the module's docstring); ``owner`` (a dialog) owns it, so
    that its outcome reaches nobody once the dialog is gone. Connect to its signals before the UI thread's event loop
    runs again: they are queued to it."""
    job.setParent(owner)

    def work() -> None:
        try:
            job.run()
        except RuntimeError:  # the owner is gone, and the job with it: nobody is waiting
            log.debug("detached job %s outlived its owner", job.name)

    threading.Thread(target=work, name=f"dwb-{job.name}", daemon=True).start()
    return job


def call_detached(owner: QObject, name: str, fn: Callable[[], Any], done: Callable[[Any, str], None]) -> Job:
    """``fn()`` as a detached job of ``owner``; ``done(result, "")`` or ``done(None, message)`` on the UI thread."""
    job = Job(name, lambda _job: fn())
    job.succeeded.connect(lambda result: done(result, ""))
    job.failed.connect(lambda message, _details: done(None, message))
    return run_detached(job, owner)
