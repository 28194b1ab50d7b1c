"""A policy edited mid-incident, on the real dev server, through the configuration store the
worker reads (as ``PUT /api/oncall/config`` would store it).

The rule (README, "The policy in force"): an incident keeps the timing it was declared
with (ack timeouts, status-update cadence, even after a severity change); who is paged and
how to reach them is resolved at page time from the configuration in force. A new
incident gets the new timing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.client import WorkflowHandle

from tests.conftest import Harness
from tests.workflow.helpers import deadline_names, eventually, start_incident, state, view
from warroom.models.config_store import save_version
from warroom.models.incident import AckInput, IncidentState, NotificationKind, ResolveInput, SeverityInput
from warroom.models.policy import parse_policy
from warroom.models.severity import Severity
from warroom.workflows import IncidentWorkflow

PEOPLE = {
    "alice": {"name": "Alice Ng", "sms": "+15005550006", "email": "alice@example.com"},
    "bob": {"name": "Bob Ruiz", "sms": "+15005550007", "email": "bob@example.com"},
    "carol": {"name": "Carol Hale", "sms": "+15005550010", "email": "carol@example.com"},
    "erin": {"name": "Erin Cho", "sms": "+15005550008", "email": "erin@example.com"},
}
ACK = timedelta(seconds=3)
FIRST_STATUS = timedelta(seconds=3)
EVERY = {Severity.SEV1: timedelta(seconds=2), Severity.SEV2: timedelta(seconds=5)}
SLACK = timedelta(seconds=2)
"""How late a durable timer may fire on a busy test machine and still count as on time."""


def document(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ack_timeout": "3s",
        "first_status_within": "3s",
        "update_every": {"SEV-1": "2s", "SEV-2": "5s"},
        "reminder_lead": "1s",
        "commander_within": "1h",
        "role_reminder_every": "1h",
        "postmortem_required_for": [],
        "page_cap": "0s",
        "engineering_lead": "erin",
        "people": PEOPLE,
        "escalation": {"levels": [{"notify": ["alice"]}, {"notify": ["bob"]}], "repeat": 0, "fallback": ["erin"]},
    }
    doc.update(extra)
    return json.loads(json.dumps(doc))


EDITED = document(
    ack_timeout="1h",
    first_status_within="1h",
    update_every={"SEV-1": "1h", "SEV-2": "1h"},
    people={**PEOPLE, "carol": {**PEOPLE["carol"], "sms": "+15005550099"}},
    escalation={"levels": [{"notify": ["alice"]}, {"notify": ["carol"]}], "repeat": 0, "fallback": ["erin"]},
)
"""Slower timing everywhere; level 2 is carol now, not bob; carol has a new phone."""


def store(engine: Engine, doc: dict[str, Any]) -> int:
    with Session(engine) as session, session.begin():
        row, _ = save_version(session, doc, source="api", actor="dana", now=datetime.now(UTC))
        return row.version


async def until(handle: WorkflowHandle[Any, Any], check: Any, what: str, timeout: float = 10) -> IncidentState:
    async def probe() -> IncidentState | None:
        s = await state(handle)
        return s if check(s) else None

    return await eventually(probe, timeout=timeout, interval=0.05, what=what)


def texts(s: IncidentState) -> list[str]:
    return [e.text for e in s.timeline]


async def test_a_running_incident_keeps_its_timing_but_pages_whom_the_configuration_names_now(
    harness: Harness,
) -> None:
    assert store(harness.engine, document()) == 1
    # Declared the way the API declares: with the configuration in force as its copy.
    handle, number = await start_incident(harness, severity=Severity.SEV2, policy=parse_policy(document()))
    first = await until(handle, lambda s: len(s.pages) == 1, "the first page")
    assert first.pages[0].person == "alice"
    level_1_due = deadline_names(await view(handle))["acknowledge"]
    assert level_1_due == first.declared_at + ACK

    # Mid-incident, an admin slows every timer down and puts carol on level 2 instead of bob.
    assert store(harness.engine, EDITED) == 2

    # Level 2 still falls due after the incident's own 3 s, and pages whom the edit names.
    s = await until(handle, lambda s: len(s.pages) == 2, "the escalation to level 2")
    assert s.pages[1].person == "carol"
    assert level_1_due <= s.pages[1].at < level_1_due + SLACK, (level_1_due, s.pages[1].at)
    assert any(t.startswith("Paged level 2: carol") and t.endswith("acknowledge within 3 s") for t in texts(s)), texts(s)
    level_2_due = deadline_names(await view(handle))["acknowledge"]
    assert ACK <= level_2_due - level_1_due < ACK + SLACK, level_2_due
    carol = await eventually(lambda: [r for r in harness.channel.sent if r.incident_number == number
                                      and r.person_id == "carol"], what="carol's page")
    assert [(r.kind, r.channel, r.person.sms) for r in carol] == [(NotificationKind.ESCALATION, "sms", "+15005550099")]
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="carol"))

    # Nobody posted: the holding statement goes out at the incident's 3 s, not the edit's hour.
    s = await until(handle, lambda s: s.status_plan.first_posted_at is not None, "the automatic first status")
    assert FIRST_STATUS <= s.status_plan.first_posted_at - s.declared_at < FIRST_STATUS + SLACK
    # The cadence is the incident's too, for its severity now and after a change.
    assert deadline_names(await view(handle))["next_status_update"] == s.status_plan.first_posted_at + EVERY[Severity.SEV2]
    await handle.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV1, by="carol"))
    s = await state(handle)
    due = deadline_names(await view(handle))["next_status_update"]
    assert due == s.status_plan.first_posted_at + EVERY[Severity.SEV1], (due, s.status_plan)
    s = await until(handle, lambda s: any(e.kind == "reminder" and "update" in e.text.lower() for e in s.timeline
                                         if e.at >= s.status_plan.first_posted_at), "the SEV-1 update reminder")

    # An incident declared now gets the edited timing.
    later, _ = await start_incident(harness, severity=Severity.SEV2, policy=parse_policy(EDITED))
    fresh = await until(later, lambda s: len(s.pages) == 1, "the new incident's first page")
    deadlines = deadline_names(await view(later))
    assert deadlines["acknowledge"] == fresh.declared_at + timedelta(hours=1)
    assert deadlines["first_status_update"] == fresh.declared_at + timedelta(hours=1)

    for h in (handle, later):
        await h.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Rolled back.", by="alice"))
