"""Helpers for workflow tests: start an incident, poll for a condition, read what was sent."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.conftest import Harness, fast_policy
from warroom.models.incident import IncidentInput, IncidentState, IncidentView
from warroom.models.policy import Policy
from warroom.models.severity import Severity
from warroom.models.tables import IncidentRow, NotificationRow, StatusUpdateRow, TimelineRow
from warroom.workflows import IncidentWorkflow

T = TypeVar("T")

_numbers = itertools.count(random.randrange(10_000, 1_000_000, 1000))


def unique_number() -> int:
    return next(_numbers)


async def eventually(
    check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.1, what: str = "the condition"
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy without raising
    AssertionError; return that. Fails with the last result after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    last: Any = None
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            last = result
        except AssertionError as err:
            last = err
        if loop.time() >= give_up:
            pytest.fail(f"{what} did not happen within {timeout:g} s; last seen: {last!r}")
        await asyncio.sleep(interval)


async def stays(check: Callable[[], Any], *, for_seconds: float, interval: float = 0.2, what: str = "it") -> None:
    """Assert ``check`` keeps holding for ``for_seconds`` (for "and nothing more happens")."""
    loop = asyncio.get_running_loop()
    until = loop.time() + for_seconds
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        assert result, f"{what} stopped holding"
        if loop.time() >= until:
            return
        await asyncio.sleep(interval)


async def sleep_until(instant: datetime) -> None:
    delay = (instant - datetime.now(UTC)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


async def start_incident(
    h: Harness,
    *,
    severity: Severity = Severity.SEV2,
    policy: Policy | None = None,
    title: str = "DNS changes publish slowly",
    number: int | None = None,
    **fields: Any,
) -> tuple[WorkflowHandle[Any, Any], int]:
    number = number if number is not None else unique_number()
    handle = await h.client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(number=number, title=title, severity=severity, policy=policy or fast_policy(), **fields),
        id=f"incident-{number}-{uuid.uuid4().hex[:8]}",
        task_queue=h.task_queue,
    )
    return handle, number


async def view(handle: WorkflowHandle[Any, Any]) -> IncidentView:
    return await handle.query(IncidentWorkflow.view)


async def state(handle: WorkflowHandle[Any, Any]) -> IncidentState:
    return (await view(handle)).state


def deadline_names(v: IncidentView) -> dict[str, datetime]:
    return {d.name: d.at for d in v.deadlines}


async def refused(call: Awaitable[Any]) -> str:
    """Await a command that must be refused; return the reason the workflow gave."""
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), f"refused for the wrong reason: {cause!r}"
    assert cause.type == "CommandRejected"
    return cause.message


# --- the read model -----------------------------------------------------------------


def sent(h: Harness, number: int, kind: str | None = None, person: str | None = None) -> list[NotificationRow]:
    """Notifications recorded for the incident (oldest first), optionally filtered."""
    return [
        row
        for row in h.notifications(number)
        if (kind is None or row.kind == kind) and (person is None or row.person_id == person)
    ]


def slots(rows: list[NotificationRow]) -> list[str]:
    """The idempotency keys without the incident prefix: ``step-1/bob/sms``."""
    return [row.key.split("/", 1)[1] for row in rows]


def incident_row(h: Harness, number: int) -> IncidentRow | None:
    with Session(h.engine) as session:
        return session.get(IncidentRow, number)


def timeline_rows(h: Harness, number: int) -> list[TimelineRow]:
    with Session(h.engine) as session:
        query = select(TimelineRow).where(TimelineRow.incident_number == number).order_by(TimelineRow.seq)
        return list(session.scalars(query))


def status_rows(h: Harness, number: int) -> list[StatusUpdateRow]:
    with Session(h.engine) as session:
        query = select(StatusUpdateRow).where(StatusUpdateRow.incident_number == number).order_by(StatusUpdateRow.seq)
        return list(session.scalars(query))
