"""Helpers of the tests (fixtures are in ``conftest.py``): where the shared data lives, a chat prompt as inputs, and
``dwb serve`` on loopback."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

# The data, models and tools the tests read beside the checkout (``../shared``); DWB_SHARED points elsewhere (a
# folder that does not exist shows which tests need it: they skip, naming what is missing).
SHARED = Path(os.environ.get("DWB_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
DATA = SHARED / "data"


def needs_shared(*parts: str) -> pytest.MarkDecorator:
    """A mark that skips a test or module unless ``../shared/<parts>`` exists."""
    return pytest.mark.skipif(
        not SHARED.joinpath(*parts).exists(), reason=f"../shared/{'/'.join(parts)} is not present"
    )


def shared_path(*parts: str) -> Path:
    """``../shared/<parts>``, or a skip naming it when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/{'/'.join(parts)} is not present")
    return path


def chat_inputs(processor, text: str, images=()):
    """One user turn (``images`` then ``text``) through the processor's chat template, as model inputs."""
    content = [{"type": "image", "image": img} for img in images] + [{"type": "text", "text": text}]
    return processor.apply_chat_template(
        [{"role": "user", "content": content}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )


@contextmanager
def serving(loaded, app_class=None, *, runner: dict | None = None, config: dict | None = None):
    """``dwb serve`` over ``loaded`` on 127.0.0.1 and a free port, for the ``with`` block: ``(runner, base URL)``.
    ``runner`` and ``config`` are keyword arguments of :class:`Runner` and :class:`ServeConfig`."""
    from inference.serving.runner import Runner
    from inference.serving.server import ChatApp, ServeConfig, start

    serve_runner = Runner(loaded, **(runner or {}))
    app = (app_class or ChatApp)(serve_runner, ServeConfig(model_name="tiny", **(config or {})))
    server, thread, port = start(app, "127.0.0.1", 0)
    try:
        yield serve_runner, f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join()
        serve_runner.close()
