"""One error hierarchy for everything headless.

Every error carries a short user-facing message (``str(err)``) and, where it applies, the file and page it
concerns. The GUI and the CLI map these types to messages in one place; a traceback is never the message.
"""

from __future__ import annotations

from pathlib import Path


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""

    def __init__(
        self, message: str, *, path: str | Path | None = None, page: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.page = page
        self.hint = hint

    def user_message(self) -> str:
        """The message as a user should read it: where, what, and what to do."""
        where = ""
        if self.path:
            where = f"{self.path}"
            if self.page is not None:
                where += f", page {self.page}"
            where += ": "
        text = f"{where}{self.message}"
        if self.hint:
            text += f"\n{self.hint}"
        return text


class ConfigError(WorkbenchError):
    """A parameter or configuration value is invalid."""


class ModelLoadError(WorkbenchError):
    """A model could not be found, read or placed on the chosen device."""


class WeightsMissingError(ModelLoadError):
    """The model's configuration was found but its weights were not."""


class InsufficientMemoryError(ModelLoadError):
    """The model's weights, or the KV cache of a prompt, will not fit on the chosen device."""


class GenerationError(WorkbenchError):
    """Prefill or block diffusion failed."""


class IngestError(WorkbenchError):
    """A document or one of its pages could not be read."""


class CancelledError(WorkbenchError):
    """The user cancelled the task; what finished before stays."""


class ModelRuntimeMissingError(ModelLoadError):
    """This build has no model runtime (torch, transformers): only the builtin engine is available."""


class ClusterError(WorkbenchError):
    """The Ray cluster could not be reached, or stopped during a run."""
