"""Subscriber fan-out on the real Temporal dev server: every subscriber gets exactly
one message, through provider failures, outages and continue-as-new."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from warroom.activities.notify import NotifierRegistry, PermanentDeliveryError, TransientDeliveryError
from warroom.activities.statuspage import StatusPageActivities
from warroom.models.components import DEFAULT_STATUSPAGE_PATH, load_catalog
from warroom.models.incident import NotificationRequest
from warroom.models.subscribers import FanoutInput, FanoutResult, PublicEvent, PublicEventKind
from warroom.models.tables import SubscriberDeliveryRow, SubscriberRow
from warroom.workflows import WORKFLOWS, SubscriberFanoutWorkflow

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


@dataclass
class FlakyProvider:
    """Fails a seeded-random share of sends before delivering anything (like a 503)."""

    failure_rate: float = 0.0
    seed: int = 8
    down: bool = False
    refuse: set[str] = field(default_factory=set)
    provider: str = "flaky"
    delivered: Counter[str] = field(default_factory=Counter)
    texts: dict[str, list[str]] = field(default_factory=dict)
    failures: int = 0
    attempted: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def send(self, contact: str, req: NotificationRequest) -> str:
        self.attempted.add(contact)
        if contact in self.refuse:
            raise PermanentDeliveryError("the number is not a mobile phone")
        if self.down or self.rng.random() < self.failure_rate:
            self.failures += 1
            raise TransientDeliveryError("provider answered 503")
        self.delivered[contact] += 1
        self.texts.setdefault(contact, []).append(req.text)
        return f"msg-{sum(self.delivered.values())}"


def add_subscribers(engine: Engine, n: int, components: list[str] | None = None, status: str = "confirmed",
                    start: int = 0) -> list[str]:
    rows = []
    for i in range(start, start + n):
        sms = i % 3 == 0
        rows.append({
            "channel": "sms" if sms else "email",
            "contact": f"+1415555{i:04d}" if sms else f"user{i}@example.com",
            "components": components or [],
            "status": status,
            "nonce": f"n{i}",
            "code_attempts": 0,
            "created_at": NOW,
        })
    with Session(engine) as session, session.begin():
        session.execute(insert(SubscriberRow), rows)
    return [r["contact"] for r in rows]


@asynccontextmanager
async def fanout_worker(client: Client, engine: Engine, provider: FlakyProvider) -> AsyncIterator[str]:
    queue = f"fanout-{uuid.uuid4().hex[:8]}"
    acts = StatusPageActivities(
        engine, NotifierRegistry(fallback=provider), load_catalog(DEFAULT_STATUSPAGE_PATH), "secret",
        "http://warroom.test",
    )
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=acts.all(),
                          activity_executor=executor, max_concurrent_activities=100):
            yield queue


def event(key: str, components: list[str] | None = None) -> PublicEvent:
    return PublicEvent(key=f"incident-{key}/update-1", kind=PublicEventKind.UPDATE, incident_number=7,
                       title="DNS changes publish slowly", components=components or ["dns"],
                       message="We have rolled back the publisher.", at=NOW)


async def run_fanout(client: Client, queue: str, inp: FanoutInput) -> FanoutResult:
    return await client.execute_workflow(
        SubscriberFanoutWorkflow.run, inp, id=f"test-fanout-{uuid.uuid4().hex[:8]}", task_queue=queue
    )


def delivery_statuses(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(dict(session.execute(
            select(SubscriberDeliveryRow.status, func.count()).group_by(SubscriberDeliveryRow.status)
        ).all()))


async def test_thousand_subscribers_each_get_exactly_one_message_while_ten_percent_of_sends_fail(
    client: Client, engine: Engine
) -> None:
    contacts = add_subscribers(engine, 1000)
    provider = FlakyProvider(failure_rate=0.10, seed=1234)
    async with fanout_worker(client, engine, provider) as queue:
        result = await run_fanout(client, queue, FanoutInput(
            event=event("1000"), concurrency=10, page_size=300,
            retry_initial_interval_seconds=0.2, retry_max_interval_seconds=1,
        ))
    assert provider.failures >= 50, "the provider should have failed about a tenth of the sends"
    assert set(provider.delivered) == set(contacts)
    assert set(provider.delivered.values()) == {1}
    assert result == FanoutResult(sent=1000, skipped=0, failed=0)
    assert delivery_statuses(engine) == Counter({"sent": 1000})
    with Session(engine) as session:
        attempts = session.scalar(select(func.sum(SubscriberDeliveryRow.attempts)))
    assert attempts == 1000 + provider.failures  # each failed send was retried on its own row


async def test_a_provider_outage_delays_messages_but_loses_none(client: Client, engine: Engine) -> None:
    import asyncio

    contacts = add_subscribers(engine, 12)
    provider = FlakyProvider(down=True)
    async with fanout_worker(client, engine, provider) as queue:
        handle = await client.start_workflow(
            SubscriberFanoutWorkflow.run,
            FanoutInput(event=event("outage"), concurrency=1, batch_size=4, send_concurrency=2),
            id=f"test-fanout-{uuid.uuid4().hex[:8]}", task_queue=queue,
        )
        await asyncio.sleep(2.5)
        # Nothing got through, and the fan-out kept to its one batch of 4 in flight, retrying it.
        assert not provider.delivered and len(provider.attempted) == 4 and provider.failures >= 8
        provider.down = False
        result = await handle.result()
    assert result.sent == 12
    assert provider.delivered == Counter({c: 1 for c in contacts})


async def test_only_confirmed_subscribers_who_want_the_component_are_told_and_refusals_are_recorded(
    client: Client, engine: Engine
) -> None:
    everything = add_subscribers(engine, 4)
    dns_only = add_subscribers(engine, 3, components=["dns"], start=100)
    billing_only = add_subscribers(engine, 3, components=["billing"], start=200)
    pending = add_subscribers(engine, 2, status="pending", start=300)
    gone = add_subscribers(engine, 2, status="unsubscribed", start=400)
    provider = FlakyProvider(refuse={everything[0]})
    async with fanout_worker(client, engine, provider) as queue:
        result = await run_fanout(client, queue, FanoutInput(event=event("filters", ["DNS"]), page_size=3))
    assert set(provider.delivered) == set(everything[1:] + dns_only)
    assert not set(provider.delivered) & set(billing_only + pending + gone)
    assert result == FanoutResult(sent=6, skipped=0, failed=1)
    assert delivery_statuses(engine) == Counter({"sent": 6, "failed": 1})
    # The message names the component and carries a one-click unsubscribe link.
    text = provider.texts[dns_only[1]][0]
    assert "DNS" in text and "http://warroom.test/status/unsubscribe?token=" in text


async def test_large_audiences_continue_as_new_without_sending_twice(client: Client, engine: Engine) -> None:
    contacts = add_subscribers(engine, 40)
    provider = FlakyProvider()
    async with fanout_worker(client, engine, provider) as queue:
        handle = await client.start_workflow(
            SubscriberFanoutWorkflow.run,
            FanoutInput(event=event("can"), concurrency=2, batch_size=3, page_size=7, history_limit=40),
            id=f"test-fanout-{uuid.uuid4().hex[:8]}", task_queue=queue,
        )
        result = await handle.result()
        first = await client.get_workflow_handle(handle.id, run_id=handle.result_run_id).describe()
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW, "the history limit should force continue-as-new"
    assert result.sent == 40
    assert provider.delivered == Counter({c: 1 for c in contacts})


async def test_running_the_same_event_again_sends_nothing_new(client: Client, engine: Engine) -> None:
    add_subscribers(engine, 5)
    provider = FlakyProvider()
    async with fanout_worker(client, engine, provider) as queue:
        first = await run_fanout(client, queue, FanoutInput(event=event("again")))
        second = await run_fanout(client, queue, FanoutInput(event=event("again")))
    assert first.sent == 5 and second.sent == 5  # duplicates count as delivered...
    assert sum(provider.delivered.values()) == 5  # ...but nothing went out twice
