"""Files the app ships (``resources/``) and its version, found the same way from a source checkout, an installed
wheel and a frozen bundle (PyInstaller puts data under ``sys._MEIPASS``)."""

from __future__ import annotations

from inference import __version__
from inference.resources import frozen, resource_path, resources_dir

__all__ = ["app_version", "frozen", "resource_path", "resources_dir"]


def app_version() -> str:
    """The version from the package metadata (copied into the bundle), or "development" without it."""
    return __version__
