"""Shared fixtures. The hub is never contacted: every model here is built in memory or read from a temp folder."""

from __future__ import annotations

import copy
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DWB_QUANT_CACHE", tempfile.mkdtemp(prefix="dwb-test-quant-"))  # never the user's cache
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # Qt tests draw offscreen: no display needed

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_qt_settings(tmp_path_factory):
    """QSettings (recent files, export folder, models) go to a temp folder, never the user's."""
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
    from inference.tiny import build_tiny

    return build_tiny()


@pytest.fixture
def tiny_model(tiny_pair):
    return copy.deepcopy(tiny_pair[0])


@pytest.fixture(scope="session")
def processor(tiny_pair):
    return tiny_pair[1]


def chat_inputs(processor, text: str, images=()):
    content = [{"type": "image", "image": img} for img in images] + [{"type": "text", "text": text}]
    return processor.apply_chat_template(
        [{"role": "user", "content": content}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
