"""``make run``'s launcher (``python -m warroom.run``) as a newcomer runs it: on the
shipped default policy, it brings up Temporal (UI on the port +1000), the worker and the
API, keeps Temporal's SQLite file durable and write-ahead logged, and stops every process
it started on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.stack import ROOT, free_port


def _ports() -> tuple[int, int]:
    """A free HTTP port and a free Temporal port whose UI port (+1000) is free too."""
    for _ in range(50):
        temporal = free_port()
        if temporal + 1000 < 65536 and _free(temporal + 1000):
            return free_port(), temporal
    raise RuntimeError("no free port pair for Temporal and its UI")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _started_by(data_dir: Path) -> list[int]:
    """Processes whose command line or environment names this data directory."""
    mark = str(data_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "cmdline").read_bytes() or mark in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, int], Path, Path]]:
    http, temporal = _ports()
    data = tmp_path / "var"
    log = tmp_path / "launcher.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    env.update(WARROOM_DATA_DIR=str(data), WARROOM_HTTP_PORT=str(http), WARROOM_TEMPORAL_PORT=str(temporal))
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "warroom.run"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc, {"http": http, "temporal": temporal, "ui": temporal + 1000}, data, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _started_by(data):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _wait(what: str, check: object, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the launcher exited with {proc.returncode} before {what}:\n{log.read_text()[-3000:]}")
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no {what} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def test_make_run_starts_everything_on_the_default_and_ctrl_c_stops_it_all(launcher) -> None:  # noqa: ANN001
    proc, ports, data, log = launcher
    base = f"http://127.0.0.1:{ports['http']}"
    _wait("healthy API", lambda: httpx.get(f"{base}/healthz", timeout=5).status_code == 200, proc, log)
    assert httpx.get(f"{base}/status", timeout=10).status_code == 200
    _wait("Temporal UI", lambda: httpx.get(f"http://127.0.0.1:{ports['ui']}/", timeout=5).status_code == 200,
          proc, log)
    # An identity is needed for anything but the public pages; nobody is created by default.
    assert httpx.get(f"{base}/api/incidents", timeout=10).status_code == 401

    with sqlite3.connect(data / "temporal.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (data / "warroom.db").exists()
    assert _started_by(data), "the worker, API and Temporal name the data directory"

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    assert "stopped" in log.read_text()
    deadline = time.monotonic() + 10
    while _started_by(data) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _started_by(data), "every process the launcher started has exited"
    assert all(_free(port) for port in ports.values())
