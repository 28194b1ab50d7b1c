"""The stand-in hosting platform of ``examples/platform`` served in-process for tests."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

STANDIN = Path(__file__).resolve().parent.parent / "examples" / "platform" / "standin.py"


def _module() -> ModuleType:
    name = "warroom_examples_standin"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, STANDIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


standin = _module()


@dataclass
class RunningPlatform:
    url: str
    platform: Any

    def calls(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.platform.lock:
            return [c for c in self.platform.calls if path is None or c["path"] == path]

    def break_(self, mode: str) -> None:
        with self.platform.lock:
            self.platform.break_(mode)

    def repair(self) -> None:
        with self.platform.lock:
            self.platform.repair()

    def chaos(self, fail_next: int = 0, delay_seconds: float = 0.0) -> None:
        with self.platform.lock:
            self.platform.fail_next = fail_next
            self.platform.delay_seconds = delay_seconds

    @property
    def state(self) -> Any:
        return self.platform.state


@contextmanager
def running_platform(token: str | None = None) -> Iterator[RunningPlatform]:
    platform = standin.Platform(token)
    server = standin.make_server(platform, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="standin-platform", daemon=True)
    thread.start()
    try:
        yield RunningPlatform(url=f"http://127.0.0.1:{server.server_address[1]}", platform=platform)
    finally:
        server.shutdown()
        server.server_close()
