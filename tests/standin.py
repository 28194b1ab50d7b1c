"""The stand-in hosting platform of ``examples/platform`` served in-process for tests."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "platform"
STANDIN = EXAMPLES / "standin.py"


def _module(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


standin = _module("warroom_examples_standin", STANDIN)
certs = _module("warroom_examples_standin_certs", EXAMPLES / "certs.py")


@dataclass
class RunningPlatform:
    url: str
    platform: Any
    site_port: int | None = None
    """Port of the customers' TLS site (``running_platform(tls=True)``), on 127.0.0.1."""
    ca_file: Path | None = None
    """The CA that signed the TLS site's certificates."""

    def calls(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.platform.lock:
            return [c for c in self.platform.calls if path is None or c["path"] == path]

    def break_(self, mode: str) -> None:
        with self.platform.lock:
            self.platform.break_(mode)

    def repair(self) -> None:
        with self.platform.lock:
            self.platform.repair()

    def renew_certificate(self) -> None:
        with self.platform.lock:
            self.platform.renew_certificate()

    @property
    def health_checks(self) -> int:
        with self.platform.lock:
            return int(self.platform.health_checks)

    def chaos(self, fail_next: int = 0, delay_seconds: float = 0.0) -> None:
        with self.platform.lock:
            self.platform.fail_next = fail_next
            self.platform.delay_seconds = delay_seconds

    @property
    def state(self) -> Any:
        return self.platform.state


@contextmanager
def running_platform(token: str | None = None, tls: bool = False) -> Iterator[RunningPlatform]:
    """The stand-in on a free port; with ``tls``, also its TLS site, with certificates for
    ``localhost`` made for this platform alone."""
    with tempfile.TemporaryDirectory(prefix="standin-certs-") as tmp:
        site_certs = certs.make_site_certs(Path(tmp)) if tls else None
        platform = standin.Platform(token, site_certs)
        servers = [standin.make_server(platform, "127.0.0.1", 0, quiet=True)]
        if site_certs is not None:
            servers.append(standin.make_site(platform, "127.0.0.1", 0))
        for server in servers:
            threading.Thread(target=server.serve_forever, args=(0.05,), name="standin", daemon=True).start()
        try:
            yield RunningPlatform(
                url=f"http://127.0.0.1:{servers[0].server_address[1]}",
                platform=platform,
                site_port=servers[1].server_address[1] if tls else None,
                ca_file=site_certs / "ca.pem" if site_certs is not None else None,
            )
        finally:
            for server in servers:
                server.shutdown()
                server.server_close()
