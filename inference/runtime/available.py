"""Whether this installation can run DiffusionGemma at all: the light app bundle ships without torch and
transformers. Checked by name (``find_spec``), so nothing heavy is imported to find out."""

from __future__ import annotations

import importlib.util

from inference.errors import ModelRuntimeMissingError

RUNTIME_PACKAGES = ("torch", "torchvision", "transformers")
NO_RUNTIME = (
    "this build of Diffusion Workbench has no model runtime (torch and transformers are not included), "
    "so DiffusionGemma and the tiny demo model cannot run; parse, ask and extract work with the builtin "
    "engine"
)
NO_RUNTIME_HINT = (
    "For the model, download the full build (DiffusionWorkbench-...-full), or install from source "
    "with `pip install -e .` in a checkout."
)


def missing_runtime() -> list[str]:
    """The model-runtime packages that cannot be imported here (empty when the model can run)."""
    missing = []
    for name in RUNTIME_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def has_model_runtime() -> bool:
    return not missing_runtime()


def require_model_runtime() -> None:
    """Raise the workbench's own error, never a ``ModuleNotFoundError``, where the model cannot run."""
    if missing_runtime():
        raise ModelRuntimeMissingError(NO_RUNTIME, hint=NO_RUNTIME_HINT)


def is_runtime_module(name: str | None) -> bool:
    """Whether a ``ModuleNotFoundError.name`` is one of the model runtime's packages (or one of their modules)."""
    return bool(name) and name.split(".")[0] in RUNTIME_PACKAGES


def runtime_error_for(exc: ModuleNotFoundError) -> ModelRuntimeMissingError | None:
    """The workbench's error for a runtime module that could not be imported, or None for any other module: no
    runtime at all (the light build), or a runtime that lacks one module (a bundle built without it)."""
    if not is_runtime_module(exc.name):
        return None
    if missing_runtime():
        return ModelRuntimeMissingError(NO_RUNTIME, hint=NO_RUNTIME_HINT)
    return ModelRuntimeMissingError(
        f"the model runtime of this installation is incomplete: no module {exc.name!r}",
        hint="Reinstall, or report it if this is a downloaded build.",
    )
