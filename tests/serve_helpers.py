"""``dwb serve`` on 127.0.0.1 and a free port, for the serving tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from inference.serving.runner import Limits, Runner
from inference.serving.server import ChatApp, ServeConfig, start


@contextlib.contextmanager
def serving(loaded: Any, limits: Limits | None = None, **config: Any) -> Iterator[tuple[Runner, ChatApp, Any, str]]:
    """``(runner, app, uvicorn server, base url)``; stopped (and the runner closed) on leaving."""
    runner = Runner(loaded, limits=limits)
    app = ChatApp(runner, ServeConfig(model_name="tiny", **config))
    server, thread, port = start(app, "127.0.0.1", 0)
    try:
        yield runner, app, server, f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join()
        runner.close()
