"""Several workers on one task queue send exactly the notifications one worker sends.

The same scenario runs twice, at the same time: once on a single worker, and
once on two workers (each with its own database engine, as two processes would
have) where the second joins half-way and the first then leaves, so the
incidents' workflows are replayed and carried on by a worker that did not start
them. Both runs must produce the same notifications, each delivered once.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowHandle

from tests.conftest import Harness, TestDatabase, running_worker
from warroom.models.incident import (
    AckInput,
    ActionItem,
    IncidentInput,
    IncidentStatus,
    IncidentView,
    PostmortemDocument,
    PostmortemInput,
    ResolveInput,
    Role,
    RoleInput,
    StatusUpdateInput,
)
from warroom.models.policy import parse_policy
from warroom.models.severity import Severity
from warroom.models.tables import NotificationRow
from warroom.temporal import connect
from warroom.workflows import IncidentWorkflow

INCIDENTS_PER_RUN = 3

POLICY = parse_policy(
    {
        # Only the escalation and the postmortem clocks run within the test; every
        # other deadline is an hour away, so the notifications do not depend on timing.
        "ack_timeout": "1s",
        "page_cap": "0s",  # several incidents page the same people within a second
        "first_status_within": "1h",
        "update_every": {"SEV-1": "1h", "SEV-2": "1h"},
        "reminder_lead": "1m",
        "commander_within": "1h",
        "role_reminder_every": "1h",
        "postmortem_within": "6s",
        "postmortem_reminders_before": ["3s"],  # seconds apart, so a loaded machine waking late still sends it
        "postmortem_overdue_repeat": "1h",
        "engineering_lead": "erin",
        "people": {
            "alice": {"name": "Alice Ng", "sms": "+15005550006"},
            "bob": {"name": "Bob Ruiz", "sms": "+15005550007"},
            "erin": {"name": "Erin Cho", "email": "erin@example.com"},
        },
        "escalation": {"levels": [{"notify": ["alice"]}, {"notify": ["bob"]}], "fallback": ["erin"]},
    },
    "multi-worker test policy",
)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def sent_rows(engine: Engine, numbers: list[int]) -> list[NotificationRow]:
    with Session(engine) as session:
        return list(session.scalars(select(NotificationRow).where(NotificationRow.incident_number.in_(numbers))))


def shape(row: NotificationRow) -> tuple[str, str, str, str, str]:
    """A notification without what differs between incidents (number, version counter)."""
    slot = row.key.split("/")[1]
    slot = re.sub(r"^(role-[a-z_]+)-\d+", r"\1", slot)
    return (slot, row.kind, row.person_id, row.channel, row.status)


async def nothing() -> None:
    return None


async def scenario(client: Client, queue: str, engine: Engine, numbers: list[int],
                   halfway: Callable[[], Awaitable[None]]) -> None:
    """Declare, escalate to exhaustion, acknowledge, run and resolve, let the postmortem go overdue, submit it."""
    handles: list[WorkflowHandle[IncidentWorkflow, object]] = [
        await client.start_workflow(
            IncidentWorkflow.run,
            IncidentInput(number=n, title=f"Checkout errors ({n})", severity=Severity.SEV2, policy=POLICY),
            id=f"incident-{n}",
            task_queue=queue,
        )
        for n in numbers
    ]

    async def views() -> list[IncidentView]:
        return [await h.query(IncidentWorkflow.view) for h in handles]

    async def all_exhausted() -> bool:
        return all(v.state.escalation.exhausted for v in await views())

    await eventually(all_exhausted, "every level paged and the fallback told")

    async def first_notifications_sent() -> bool:
        return len([r for r in sent_rows(engine, numbers) if r.status == "sent"]) == 3 * len(numbers)

    await eventually(first_notifications_sent, "the pages and fallback messages")
    for h in handles:
        await h.execute_update(IncidentWorkflow.acknowledge, AckInput(person="bob"))
        await h.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.INCIDENT_COMMANDER, person="alice"))
        await h.execute_update(
            IncidentWorkflow.post_status_update, StatusUpdateInput(message="Rolling back the deploy.", author="alice")
        )

    async def role_messages_sent() -> bool:
        return len([r for r in sent_rows(engine, numbers) if r.status == "sent"]) == 4 * len(numbers)

    await eventually(role_messages_sent, "the role notifications")
    await halfway()
    for h in handles:
        await h.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Rolled back.", by="alice"))

    async def postmortem_overdue() -> bool:
        return all(v.state.postmortem.overdue_notified >= 1 for v in await views())

    await eventually(postmortem_overdue, "the overdue postmortem to be reported")
    doc = PostmortemDocument(
        summary="s", timeline="t", root_cause="r", impact="i", what_went_well="w", what_could_improve="c",
        action_items=[ActionItem(title="Alert on checkout errors", owner="bob",
                                 due=datetime.now(UTC) + timedelta(days=7))],
    )
    for h in handles:
        await h.execute_update(IncidentWorkflow.submit_postmortem, PostmortemInput(document=doc, by="alice"))
    for h in handles:
        final = await asyncio.wait_for(h.result(), 30)
        assert final.status == IncidentStatus.CLOSED  # type: ignore[attr-defined]


async def test_two_workers_send_what_one_worker_sends(
    client: Client, primary_database: TestDatabase, primary_engine: Engine
) -> None:
    base = 1_000_000 + uuid.uuid4().int % 1_000_000_000
    one_numbers = [base + i for i in range(INCIDENTS_PER_RUN)]
    two_numbers = [base + 100 + i for i in range(INCIDENTS_PER_RUN)]
    one_engine = primary_engine
    first_engine, second_engine = primary_database.engine(), primary_database.engine()
    shared_queue = f"test-multi-{uuid.uuid4().hex[:8]}"

    async def run_on_one_worker() -> Harness:
        async with running_worker(client, one_engine) as solo:
            await scenario(client, solo.task_queue, one_engine, one_numbers, halfway=nothing)
            return solo

    # A second connection, as a second worker process would have (the SDK also
    # refuses two workers for one task queue on one client).
    other_client = await connect(client.service_client.config.target_host)

    async def run_on_two_workers() -> tuple[Harness, Harness]:
        first_cm = running_worker(client, first_engine, shared_queue)
        second_cm = running_worker(other_client, second_engine, shared_queue)
        first = await first_cm.__aenter__()
        running = {"first": True, "second": False}
        joined: list[Harness] = []

        async def swap_workers() -> None:
            # The second worker joins; once it polls, the first one leaves.
            joined.append(await second_cm.__aenter__())
            running["second"] = True
            await asyncio.sleep(0.5)
            running["first"] = False
            await first_cm.__aexit__(None, None, None)

        try:
            await scenario(client, shared_queue, first_engine, two_numbers, halfway=swap_workers)
        finally:
            if running["second"]:
                await second_cm.__aexit__(None, None, None)
            if running["first"]:
                await first_cm.__aexit__(None, None, None)
        return first, joined[0]

    async with asyncio.TaskGroup() as group:  # one run failing cancels the other
        one_run = group.create_task(run_on_one_worker())
        two_run = group.create_task(run_on_two_workers())
    solo, (first, second) = one_run.result(), two_run.result()

    one_rows = sent_rows(one_engine, one_numbers)
    two_rows = sent_rows(first_engine, two_numbers)
    per_incident = Counter(shape(r) for r in one_rows if r.incident_number == one_numbers[0])
    # The scenario sends every kind of message a worker can hand over mid-incident:
    # pages, the escalation, the fallback, a role notice, the resolution, postmortem ones.
    assert {kind for _, kind, *_ in per_incident} == {
        "page", "escalation", "fallback", "role", "resolution", "postmortem"
    }
    assert all(count == 1 for count in per_incident.values())
    assert all(status == "sent" for *_, status in per_incident)
    for n in one_numbers + two_numbers:
        rows = one_rows if n in one_numbers else two_rows
        assert Counter(shape(r) for r in rows if r.incident_number == n) == per_incident, n

    # Delivered once each: what the channels were asked to send, not just the rows.
    solo_keys = [req.key for req in solo.channel.sent]
    both_keys = [req.key for req in first.channel.sent + second.channel.sent]
    assert len(both_keys) == len(set(both_keys)) == len(two_rows)
    assert len(solo_keys) == len(set(solo_keys)) == len(one_rows)
    # Both workers did part of the work: the first the paging, the second the end.
    assert any("/step-0/" in req.key for req in first.channel.sent)
    assert any("/pm-overdue-1/" in req.key for req in second.channel.sent)
