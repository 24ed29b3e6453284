"""Errors to user messages, in one place. Never a traceback as the message; the details stay available."""

from __future__ import annotations

NO_DOCUMENT = "Add a document first: drop files on the window, or File \u2192 Open (Ctrl+O)."
TITLES = {
    "WeightsMissingError": "The model's weights are missing",
    "InsufficientMemoryError": "Not enough memory for this model",
    "ModelLoadError": "The model could not be loaded",
    "IngestError": "A document could not be read",
    "GenerationError": "Generation failed",
    "ConfigError": "A setting is not valid",
    "CancelledError": "Cancelled",
}


def title_for(exc: BaseException) -> str:
    for cls in type(exc).__mro__:
        if cls.__name__ in TITLES:
            return TITLES[cls.__name__]
    return "Something went wrong"


def describe(exc: BaseException) -> str:
    """The message a user reads: the workbench's own wording, or a short generic line naming the error."""
    from inference.errors import WorkbenchError

    if isinstance(exc, WorkbenchError):
        return f"{title_for(exc)}: {exc.user_message('window')}"
    if isinstance(exc, MemoryError):
        return "Out of memory: close other documents or choose a smaller model or dtype."
    if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch here
        return "The GPU ran out of memory: choose a smaller model, a lower dtype or the CPU."
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"Something went wrong ({type(exc).__name__}{': ' + text[:200] if text else ''})."
