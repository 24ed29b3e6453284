"""Everything headless: documents, prompts, model loading, the diffusion engine, tasks, exports.

This package never imports Qt or ``app``. Heavy libraries (torch, transformers) are imported by the modules that
need them, not here.
"""

from importlib.metadata import PackageNotFoundError, version

DIST_NAME = "diffusion-workbench"

try:  # the one source of the version is pyproject.toml, read back from the installed metadata
    __version__ = version(DIST_NAME)
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "development"
