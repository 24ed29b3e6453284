"""Where the files the package ships (``resources/``) are: a source checkout, an installed package, or a frozen
bundle (PyInstaller puts data under ``sys._MEIPASS``). ``app.resources`` re-exports these for the window."""

from __future__ import annotations

import sys
from pathlib import Path


def frozen() -> bool:
    """True inside a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def resources_dir() -> Path:
    if frozen():
        return Path(sys._MEIPASS) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def resource_path(name: str) -> Path:
    """A file under ``resources/`` (``sample.pdf``, ``icon.png``, ...); the path may not exist if it was not
    shipped, which callers report as a missing file."""
    return resources_dir() / name
