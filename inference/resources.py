"""Where the files the app ships are: the checkout's ``resources/`` folder, which the wheel installs as the package
``inference.data`` (read through :mod:`importlib.resources`), or a frozen bundle's ``resources/`` (PyInstaller puts
data under ``sys._MEIPASS``). ``app.resources`` re-exports these for the window."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

DATA_PACKAGE = "inference.data"  # pyproject.toml maps resources/ to this package


def frozen() -> bool:
    """True inside a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def resources_dir() -> Path:
    if frozen():
        # PyInstaller sets sys._MEIPASS at run time (frozen() checked it); sys's stubs do not know it
        return Path(getattr(sys, "_MEIPASS")) / "resources"  # noqa: B009
    try:
        return Path(str(resources.files(DATA_PACKAGE)))
    except ModuleNotFoundError:  # a checkout run without installing it
        return Path(__file__).resolve().parents[1] / "resources"


def resource_path(name: str) -> Path:
    """A file under ``resources/`` (``sample.pdf``, ``icon.png``, ...); the path may not exist if it was not
    shipped, which callers report as a missing file."""
    return resources_dir() / name
