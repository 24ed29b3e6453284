"""Shared fixtures, and nothing else: helpers are in ``helpers.py``, ``model_helpers.py`` and ``qt_helpers.py``.
The hub is never contacted: every model here is built in memory or read from a temp folder."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DWB_QUANT_CACHE", tempfile.mkdtemp(prefix="dwb-test-quant-"))  # never the user's cache
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # Qt tests draw offscreen: no display needed

import pytest

from tests.helpers import serving, shared_path

# Files whose tests take a minute or more on 2 cores: collected first, so that ``-n 2 --dist loadfile`` hands them
# out while both workers are fresh and the short files even out the end (in collection order, one of them last would
# leave the other worker idle for its whole length)
LONG_FILES = (
    "test_quant.py",
    "test_cluster.py",
    "test_batch.py",
    "test_tiny_training.py",
    "test_tiny_trained.py",
    "test_cli.py",
    "test_tasks.py",
    "test_packaging.py",
    "test_pinned_extraction.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))  # stable: order within a file kept


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; the test skips when it is absent."""
    return shared_path("data")


@pytest.fixture(autouse=True)
def _isolated_qt_settings(tmp_path_factory):
    """QSettings (recent files, export folder, export formats, models) go to a temp folder of each test's own, never
    the user's: what one test chose never reaches the next, whatever order the tests run in."""
    try:
        from PySide6.QtCore import QSettings
    except ImportError:  # the headless tests run without PySide6
        yield
        return
    folder = tmp_path_factory.mktemp("qsettings")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield


@pytest.fixture(scope="session")
def tiny_pair():
    """The built-in tiny model and processor, built once per session (tests copy before changing them)."""
    from inference.weights.tiny import build_tiny

    return build_tiny()


@pytest.fixture
def tiny_model(tiny_pair):
    return copy.deepcopy(tiny_pair[0])


@pytest.fixture(scope="session")
def processor(tiny_pair):
    return tiny_pair[1]


@pytest.fixture(scope="module")
def loaded():
    """The built-in tiny model as ``dwb`` loads it (fp32, CPU), once per module."""
    from inference.weights.loading import load_model

    return load_model("tiny", dtype="fp32", device="cpu")


@pytest.fixture(scope="module")
def served(request, loaded):
    """``dwb serve`` over ``loaded`` on loopback for the module's tests: ``(runner, base URL)``. A module sets the
    runner's and the server's options in ``SERVE_RUNNER`` and ``SERVE_CONFIG`` (keyword arguments as dicts)."""
    runner = getattr(request.module, "SERVE_RUNNER", {})
    config = getattr(request.module, "SERVE_CONFIG", {})
    with serving(loaded, runner=runner, config=config) as running:
        yield running


@pytest.fixture
def window(qtbot):
    """The window as a user closes it: close (which waits for a running job without blocking), then delete. Not
    ``qtbot.addWidget``: pytest-qt closes and deletes its widgets before fixtures are torn down, so a close that is
    still waiting for the worker would be cut short by the delete."""
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow
    from tests.qt_helpers import TIMEOUT, delete_now

    before = {id(w) for w in QApplication.topLevelWidgets()}
    win = MainWindow()
    win.show()
    yield win
    win.close()
    qtbot.waitUntil(lambda: not win.isVisible() and not win.worker.thread.isRunning(), timeout=TIMEOUT)
    delete_now(win)
    # no thread or top-level widget outlives the test
    assert not win.worker.thread.isRunning()
    leaked = [w for w in QApplication.topLevelWidgets() if id(w) not in before and w.isVisible()]
    assert not leaked, leaked
