"""Incidents drive the status page: component states from severity and edits, restored
at resolution unless another open incident holds them, and subscribers told of each
public event exactly once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session
from temporalio.client import WorkflowHandle

from tests.conftest import Harness, fast_policy
from warroom.models.components import DEFAULT_STATUSPAGE_PATH, ComponentState, ComponentStateInput, load_catalog
from warroom.models.incident import IncidentInput, PublicPhase, ResolveInput, SeverityInput, StatusUpdateInput
from warroom.models.severity import Severity
from warroom.models.tables import ComponentImpactRow, SubscriberRow
from warroom.statuspage import render
from warroom.workflows import IncidentWorkflow

CATALOG = load_catalog(DEFAULT_STATUSPAGE_PATH)


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(0.1)


def states(engine: Engine) -> dict[str, ComponentState]:
    now = datetime.now(UTC)
    with Session(engine) as session:
        snap = render.load(session, now)
    view = render.build(snap, CATALOG, now)
    return {c.component.id: c.state for c in view.components if c.state != ComponentState.OPERATIONAL}


async def declare(h: Harness, severity: Severity, components: list[str]) -> tuple[int, WorkflowHandle]:
    number = random.randint(10**8, 10**9)
    inp = IncidentInput(number=number, title=f"Trouble #{number}", severity=severity, components=components,
                        policy=fast_policy(first_status_within="1h"))
    handle = await h.client.start_workflow(IncidentWorkflow.run, inp, id=f"incident-{number}", task_queue=h.task_queue)
    return number, handle


async def test_component_states_follow_incidents_and_subscribers_hear_each_public_event_once(
    harness: Harness, engine: Engine
) -> None:
    engine = harness.engine  # the database the worker writes (the primary backend)
    with Session(engine) as session, session.begin():
        session.execute(insert(SubscriberRow), [
            {"channel": "email", "contact": "all@example.com", "components": [], "status": "confirmed",
             "nonce": "a", "code_attempts": 0, "created_at": datetime.now(UTC)},
            {"channel": "sms", "contact": "+14155550123", "components": ["billing"], "status": "confirmed",
             "nonce": "b", "code_attempts": 0, "created_at": datetime.now(UTC)},
        ])
    first, h1 = await declare(harness, Severity.SEV2, ["DNS", "email"])
    await eventually(lambda: states(engine) == {"dns": ComponentState.PARTIAL_OUTAGE,
                                                "email": ComponentState.PARTIAL_OUTAGE})

    # Hand-set email to degraded; then raise the severity: DNS follows it, email stays.
    await h1.execute_update(IncidentWorkflow.set_component_state,
                            ComponentStateInput(component="email", state=ComponentState.DEGRADED_PERFORMANCE, by="alice"))
    await h1.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV1, by="alice"))
    await eventually(lambda: states(engine) == {"dns": ComponentState.MAJOR_OUTAGE,
                                                "email": ComponentState.DEGRADED_PERFORMANCE})
    await h1.execute_update(IncidentWorkflow.post_status_update,
                            StatusUpdateInput(message="We found a stuck DNS publisher.", author="alice",
                                              phase=PublicPhase.IDENTIFIED))

    # A second, minor incident on DNS; resolving the first leaves DNS degraded by the second.
    second, h2 = await declare(harness, Severity.SEV3, ["dns"])
    await h1.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Publisher restarted.", by="alice"))
    await eventually(lambda: states(engine) == {"dns": ComponentState.DEGRADED_PERFORMANCE})
    await h2.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Lag gone.", by="alice"))
    await eventually(lambda: states(engine) == {})

    # The intervals recorded for the first incident tell the whole story.
    with Session(engine) as session:
        rows = session.scalars(
            select(ComponentImpactRow).where(ComponentImpactRow.incident_number == first).order_by(ComponentImpactRow.seq)
        ).all()
    assert [(r.component, r.state, r.set_by) for r in rows] == [
        ("DNS", "partial_outage", None),
        ("email", "partial_outage", None),
        ("email", "degraded_performance", "alice"),
        ("DNS", "major_outage", None),
    ]
    assert all(r.ended_at is not None for r in rows)

    # The subscriber to everything heard of both incidents: declared, the update, each resolution.
    def told() -> list[str]:
        return sorted(r.key for r in harness.channel.sent if r.person_id.startswith("subscriber-"))

    expected = sorted([
        f"incident-{first}/declared/subscriber-1",
        f"incident-{first}/update-1/subscriber-1",
        f"incident-{first}/update-2/subscriber-1",
        f"incident-{second}/declared/subscriber-1",
        f"incident-{second}/update-1/subscriber-1",
    ])
    await eventually(lambda: told() == expected)
    # The update's message names the phase it put the incident in, as the page labels it.
    update = next(r for r in harness.channel.sent if r.key == f"incident-{first}/update-1/subscriber-1")
    assert "\nIdentified - We found a stuck DNS publisher.\n" in update.text
    resolution = next(r for r in harness.channel.sent if r.key == f"incident-{first}/update-2/subscriber-1")
    assert resolution.subject.startswith("[Example Hosting status] Resolved:")
    assert "Unsubscribe with one click: http://warroom.test/status/unsubscribe?token=" in resolution.text
    # The billing-only subscriber heard nothing about DNS and email.
    assert not [r for r in harness.channel.sent if r.person_id == "subscriber-2"]


async def test_under_maintenance_cannot_be_set_by_an_incident(harness: Harness) -> None:
    from temporalio.client import WorkflowUpdateFailedError

    _number, handle = await declare(harness, Severity.SEV3, ["api"])
    try:
        await handle.execute_update(
            IncidentWorkflow.set_component_state,
            ComponentStateInput(component="api", state=ComponentState.UNDER_MAINTENANCE),
        )
    except WorkflowUpdateFailedError as err:
        assert "scheduled maintenance window" in str(err.cause)
    else:
        raise AssertionError("the update should have been refused")
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="ok"))
