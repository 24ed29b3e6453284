"""One error hierarchy for everything headless.

Every error carries a short user-facing message (``str(err)``) and, where it applies, the file and page it
concerns. The GUI and the CLI map these types to messages in one place; a traceback is never the message.
"""

from __future__ import annotations

from pathlib import Path
from string import Template
from typing import Literal

FrontEnd = Literal["cli", "window"]

# What a user can do about an error, phrased the way each front end offers it. Hints name these as ``$name`` and
# :meth:`WorkbenchError.user_message` renders them for the front end asking, so a message is written once.
ACTIONS: dict[str, dict[FrontEnd, str]] = {
    "use_tiny": {
        "cli": "`--model tiny` runs the built-in random-weight model",
        "window": "choose \u201ctiny\u201d as the source for the built-in random-weight model",
    },
    "local_folder": {"cli": "pass a local folder", "window": "choose a local folder"},
    "device_cpu": {"cli": "Use --device cpu.", "window": "Choose the device \u201ccpu\u201d."},
    "quant_nf4": {"cli": "4-bit loading (--quant nf4)", "window": "4-bit loading (quantization \u201cnf4\u201d)"},
    "give_password": {
        "cli": "Give it with --password or --password-file.",
        "window": "Open it again and enter its password.",
    },
}


def render_hint(hint: str, front: FrontEnd = "cli") -> str:
    """A hint with its ``$action`` names in the words of ``front``."""
    return Template(hint).safe_substitute({name: words[front] for name, words in ACTIONS.items()})


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

    def user_message(self, front: FrontEnd = "cli") -> str:
        """The message as a user of ``front`` should read it: where, what, and what to do."""
        where = ""
        if self.path:
            where = f"{self.path}"
            if self.page is not None:
                where += f", page {self.page}"
            where += ": "
        text = f"{where}{self.message}"
        if self.hint:
            text += f"\n{render_hint(self.hint, front)}"
        return text


class ConfigError(WorkbenchError):
    """A parameter or configuration value is invalid."""


class ModelLoadError(WorkbenchError):
    """A model could not be found, read or placed on the chosen device."""


class WeightsMissingError(ModelLoadError):
    """The model's configuration was found but its weights were not."""


class DamagedFileError(ModelLoadError):
    """A weights file is cut short, has an unreadable header, or its bytes no longer match their checksum."""


class InsufficientMemoryError(ModelLoadError):
    """The model's weights, or the KV cache of a prompt, will not fit on the chosen device."""


class GenerationError(WorkbenchError):
    """Prefill or block diffusion failed."""


class IngestError(WorkbenchError):
    """A document or one of its pages could not be read."""


class PasswordRequiredError(IngestError):
    """An encrypted document: no password was given (``wrong`` False) or the one given is wrong (``wrong`` True).
    Front ends answer it by asking for one."""

    def __init__(self, message: str, *, wrong: bool, path: str | Path | None = None) -> None:
        super().__init__(message, path=path, hint="$give_password")
        self.wrong = wrong


class CancelledError(WorkbenchError):
    """The user cancelled the task; what finished before stays."""


class ModelRuntimeMissingError(ModelLoadError):
    """This build has no model runtime (torch, transformers): only the builtin engine is available."""


class ClusterError(WorkbenchError):
    """The Ray cluster could not be reached, or stopped during a run."""
