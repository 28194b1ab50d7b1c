"""``make run``'s launcher (``python -m warroom.run``) as a newcomer runs it: on the
shipped default policy, it brings up Temporal (UI on the port +1000), the worker and the
API, keeps Temporal's SQLite file durable and write-ahead logged, and stops every process
it started on Ctrl-C; a child killed under it comes back, and one that keeps crashing
stops the whole launcher with a non-zero exit."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


Launched = tuple[subprocess.Popen[bytes], dict[str, int], Path, Path]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Launched]]:
    """Starts ``python -m warroom.run`` (with extra ``WARROOM_*`` settings); kills what is left after."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(**settings: str) -> Launched:
        http, temporal = _ports()
        data = tmp_path / "var"
        log = tmp_path / "launcher.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
        env.update(WARROOM_DATA_DIR=str(data), WARROOM_HTTP_PORT=str(http), WARROOM_TEMPORAL_PORT=str(temporal),
                   **settings)
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "warroom.run"], cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        started.append((proc, data))
        return proc, {"http": http, "temporal": temporal, "ui": temporal + 1000}, data, log

    yield start
    for proc, data in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _started_by(data):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def launcher(launch: Callable[..., Launched]) -> Launched:
    return launch()


def _worker_pids(data: Path) -> list[int]:
    pids = []
    for pid in _started_by(data):
        try:
            if b"warroom.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return pids


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
    said = log.read_text()
    assert "stopped" in said
    # Ctrl-C is a clean stop: no screenful of the Temporal server's poll warnings.
    assert "level=WARN" not in said and "Failed to poll" not in said, said[-3000:]
    deadline = time.monotonic() + 10
    while _started_by(data) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _started_by(data), "every process the launcher started has exited"
    assert all(_free(port) for port in ports.values())


def test_a_killed_worker_is_started_again_and_the_api_stays_up(launcher) -> None:  # noqa: ANN001
    proc, ports, data, log = launcher
    base = f"http://127.0.0.1:{ports['http']}"
    _wait("healthy API", lambda: httpx.get(f"{base}/healthz", timeout=5).status_code == 200, proc, log)
    _wait("a worker", lambda: _worker_pids(data), proc, log)
    [first] = _worker_pids(data)

    os.kill(first, signal.SIGKILL)
    _wait("the restart message", lambda: "worker exited with code -9; restarting it in 1 s" in log.read_text(),
          proc, log, timeout=30)
    _wait("a new worker", lambda: _worker_pids(data) and first not in _worker_pids(data), proc, log, timeout=30)
    assert "worker restarted (pid" in log.read_text()
    _wait("healthy API", lambda: httpx.get(f"{base}/healthz", timeout=5).status_code == 200, proc, log, timeout=60)
    assert proc.poll() is None, "the launcher keeps running"

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]


def test_a_worker_that_keeps_crashing_stops_the_launcher_with_a_non_zero_exit(launch, tmp_path: Path) -> None:  # noqa: ANN001
    policy = tmp_path / "policy.yaml"
    policy.write_text((ROOT / "warroom" / "policies" / "default.yaml").read_text())
    proc, ports, data, log = launch(WARROOM_POLICY=str(policy))
    base = f"http://127.0.0.1:{ports['http']}"
    _wait("healthy API", lambda: httpx.get(f"{base}/healthz", timeout=5).status_code == 200, proc, log)
    _wait("a worker", lambda: _worker_pids(data), proc, log)

    # The launcher's own checks passed; now the policy goes bad and the worker dies: every
    # restart fails at once on the policy, which a restart cannot fix.
    policy.write_text("people: [unterminated\n")
    for pid in _worker_pids(data):
        os.kill(pid, signal.SIGKILL)
    try:
        code = proc.wait(timeout=150)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the launcher kept restarting a worker that cannot start:\n{log.read_text()[-3000:]}")
    text = log.read_text()
    assert code != 0, text[-3000:]
    assert "worker exited 5 times within 60 s" in text
    assert "stopped" in text
    deadline = time.monotonic() + 10
    while _started_by(data) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _started_by(data), "the API and Temporal were stopped too"


def test_an_api_port_that_is_the_temporal_uis_stops_start_up_with_the_reason(tmp_path: Path) -> None:
    """The UI takes WARROOM_TEMPORAL_PORT + 1000: giving the API that port used to crash-loop the
    API five times before stopping; now nothing starts and the message names both settings."""
    http, temporal = _ports()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    env.update(WARROOM_DATA_DIR=str(tmp_path / "var"), WARROOM_TEMPORAL_PORT=str(temporal),
               WARROOM_HTTP_PORT=str(temporal + 1000))
    done = subprocess.run([sys.executable, "-m", "warroom.run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "is also the Temporal UI's port" in done.stderr and "WARROOM_TEMPORAL_PORT" in done.stderr, done.stderr
    assert not (tmp_path / "var" / "temporal.db").exists(), "nothing was started"
