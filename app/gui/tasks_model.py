"""The model: the Model dialog, then loading the weights here or connecting to a server, on the worker; the engine
that comes back is the window's (``window.model_engine``, ``window.remote_engine``)."""

from __future__ import annotations

from typing import Any

from app.gui.model_dialog import ModelChoice, ModelDialog
from app.gui.prefs import stored_list
from app.gui.worker import Job

MAX_RECENT = 10


def spare_a_core() -> int:
    """Worker thread, before the model runs on the CPU: its threads (this thread's OpenMP team) use every core but
    one, which stays with the UI thread. A team as large as the machine makes the UI thread wait for a core on every
    step (tests/benchmarks/ui.py measures the stall), and on a machine busy with other work the team's threads wait
    on each other at every barrier."""
    import os

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, min(torch.get_num_threads(), cores - 1))
    torch.set_num_threads(threads)
    return threads


def check_remote_choice(choice: ModelChoice) -> tuple[str, str | None]:
    """The base URL and the bearer token of a remote choice, or a ConfigError that says what to fix."""
    import os
    from urllib.parse import urlsplit

    from inference.errors import ConfigError

    url = choice.base_url.strip()
    parts = urlsplit(url)
    if not url:
        raise ConfigError("Give the server's base URL, for example http://127.0.0.1:8000/v1 (dwb serve prints it).")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"The base URL {url!r} is not an http:// or https:// address with a host, such as http://127.0.0.1:8000/v1."
        )
    key = None
    if choice.api_key_env:
        key = os.environ.get(choice.api_key_env, "").strip()
        if not key:
            raise ConfigError(
                f"The environment variable {choice.api_key_env} (API key env var) is not set or "
                "empty. Set it before starting the workbench, or leave the field empty."
            )
    return url, key


class ModelTasks:
    """The model, a part of ``controller.TaskController``: it uses the controller's ``w`` (the window),
    ``connect`` and ``conversations`` (a new model's cache is not the old one's)."""

    def model_dialog(self) -> None:
        from inference.runtime.available import NO_RUNTIME, NO_RUNTIME_HINT, has_model_runtime

        if not has_model_runtime():  # the light build: say so instead of a dialog whose every choice fails
            self.w.show_error(f"{NO_RUNTIME[:1].upper()}{NO_RUNTIME[1:]}.\n{NO_RUNTIME_HINT}")
            return
        recent = stored_list(self.w.settings, "recent_models")
        dialog = ModelDialog(self.w, recent, self.w.model_choice)
        dialog.accepted.connect(lambda: self.load_model(dialog.choice()))
        dialog.open()
        self.w.dialog = dialog

    def load_model(self, choice: ModelChoice) -> Job:
        if choice.engine == "remote":
            return self.connect_remote(choice)

        def work(job: Job) -> Any:
            from inference.runtime.available import require_model_runtime

            require_model_runtime()
            from inference.runtime.params import DiffusionParams
            from inference.tasks.model import ModelEngine
            from inference.weights.loading import load_model

            job.progress.emit(0, 3, f"reading {choice.source}\u2026")
            params = DiffusionParams.from_dict(choice.params)  # a ConfigError naming the field
            job.progress.emit(1, 3, "loading weights\u2026")

            def progress(message: Any) -> None:  # quantizing reports layer k of n with the time left
                if getattr(message, "total", None):
                    job.progress.emit(message.done, message.total, str(message))
                else:
                    job.progress.emit(1, 3, f"{message}\u2026")

            loaded = load_model(
                choice.source,
                dtype=choice.dtype,
                device=choice.device,
                quant=getattr(choice, "quant", "auto"),
                progress=progress,
            )
            job.progress.emit(2, 3, "ready")
            if loaded.device == "cpu":
                spare_a_core()
            engine = ModelEngine(loaded, params=params)
            return loaded, engine

        def done(result: tuple[Any, Any]) -> None:
            self.w.loaded, self.w.model_engine = result
            self.w.model_choice = choice
            for key, conversation in self.conversations.items():
                if key[0] == "model":  # the old model's cache means nothing to this one; its answers stay
                    conversation.forget()
            quant = ", NF4" if getattr(self.w.loaded, "quant", "none") == "nf4" else ""
            loaded = self.w.loaded
            self.w.model_label.setText(f"model: {loaded.label} [{loaded.dtype}{quant}, {loaded.device}]")
            self.w.panel.set_decoder(lambda i: self.w.loaded.tokenizer.decode([i]))
            if self.w.engine_box.currentText() != "model":  # the Engine stays the user's choice
                self.w.status_label.setText(f"Loaded {self.w.loaded.label}: choose Engine \u2192 model to use it.")
            else:
                self.w.status_label.setText(f"Loaded {self.w.loaded.label}.")
            recent = [choice.source] + [s for s in stored_list(self.w.settings, "recent_models") if s != choice.source]
            self.w.settings.setValue("recent_models", recent[:MAX_RECENT])

        key = ("model", choice.source, choice.dtype, choice.device, repr(sorted(choice.params.items())))
        job = Job("loading the model", work, key=key, detail=f"loading the model {choice.source}")
        return self.w.worker.submit(self.connect(job, done))

    def connect_remote(self, choice: ModelChoice) -> Job:
        """Build the remote engine on the worker (the processor of ``choice.source`` for prompts, no weights) and
        ask the server for its models: a wrong address is reported now, not at the first task."""

        def work(job: Job) -> Any:
            from inference.errors import GenerationError, ModelLoadError
            from inference.runtime.params import DiffusionParams
            from inference.tasks.remote import RemoteEngine, load_processor

            base_url, key = check_remote_choice(choice)
            job.progress.emit(0, 2, f"reading the processor of {choice.source}\u2026")
            try:
                processor = load_processor(choice.source)
            except ModelLoadError as exc:  # the hint names the dialog's field, not a command-line option
                raise ModelLoadError(
                    exc.message,
                    hint="Choose as Source the model the server runs: a Hugging Face id "
                    "or a local folder with its processor and tokenizer files (no weights "
                    "needed).",
                ) from exc
            job.progress.emit(1, 2, f"connecting to {base_url}\u2026")
            engine = RemoteEngine(
                base_url,
                processor,
                model=choice.remote_model or None,
                api_key=key,
                concurrency=choice.concurrency,
                params=DiffusionParams.from_dict(choice.params),
            )
            try:
                engine.generator.connect()
            except GenerationError as exc:
                engine.close()
                raise GenerationError(
                    f"{base_url} did not answer as an OpenAI-compatible server ({exc.message})",
                    hint="Check the address (it usually ends in /v1) and that the server is running.",
                ) from exc
            except BaseException:
                engine.close()
                raise
            return engine

        def done(engine: Any) -> None:
            if self.w.remote_engine is not None:
                self.w.remote_engine.close()
            self.w.remote_engine = engine
            self.w.model_choice = choice
            self.conversations = {k: v for k, v in self.conversations.items() if k[0] != "remote"}
            server = engine.generator  # inference.tasks.remote.HttpGenerator
            self.w.model_label.setText(f"remote: {server.model} at {server.base_url}")
            tokenizer = getattr(engine.processor, "tokenizer", None)
            if tokenizer is not None:
                self.w.panel.set_decoder(lambda i: tokenizer.decode([i]))
            self.w.engine_box.setCurrentText("remote")
            self.w.status_label.setText(f"Connected to {server.base_url} ({server.model}).")

        return self.w.worker.submit(self.connect(Job("connecting to the server", work), done))
