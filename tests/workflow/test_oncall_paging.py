"""On-call paging on the real dev server: a level that names a schedule pages whoever
is on call at that moment, resolved against the configuration in force; someone
taken off the rotation mid-incident is not paged at the next level and hears no
more follow-ups; a SEV-3 declared outside business hours waits for them.

Schedules and business hours are built around the test's own clock (hand-offs hours
away, business hours opening a few seconds ahead), so nothing depends on the day."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.client import WorkflowHandle

from tests.conftest import Harness
from warroom.models.config_store import save_version
from warroom.models.incident import (
    AckInput,
    IncidentInput,
    IncidentState,
    IncidentView,
    NotificationKind,
    NotificationRequest,
    ResolveInput,
    Role,
    RoleInput,
)
from warroom.models.policy import parse_policy
from warroom.models.severity import Severity
from warroom.workflows import IncidentWorkflow

PEOPLE = {
    "alice": {"name": "Alice Ng", "sms": "+15005550006", "email": "alice@example.com"},
    "bob": {"name": "Bob Ruiz", "sms": "+15005550007", "email": "bob@example.com"},
    "carol": {"name": "Carol Hale", "sms": "+15005550010", "email": "carol@example.com"},
    "erin": {"name": "Erin Cho", "sms": "+15005550008", "email": "erin@example.com"},
}


def rotation_with_second_person_on_call(people: list[str]) -> dict[str, Any]:
    """A daily rotation whose hand-off was two hours ago, with people[1] on call until 22 h from now."""
    handoff = datetime.now(UTC) - timedelta(hours=2)
    return {
        "participants": people,
        "shift": "daily",
        "handoff": handoff.strftime("%H:%M"),
        "start": (handoff.date() - timedelta(days=1)).isoformat(),
    }


def document(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ack_timeout": "3s",
        "first_status_within": "1h",
        "commander_within": "1h",
        "role_reminder_every": "1h",
        "postmortem_required_for": [],
        "page_cap": "0s",
        "engineering_lead": "erin",
        "people": PEOPLE,
        "schedules": {"primary": {"layers": [rotation_with_second_person_on_call(["alice", "bob"])]}},
        "escalation_policies": {
            "default": {"levels": [{"notify": ["schedule:primary"]}], "repeat": 1, "fallback": ["erin"]}
        },
    }
    doc.update(extra)
    return json.loads(json.dumps(doc))


def store(engine: Engine, doc: dict[str, Any]) -> int:
    with Session(engine) as session, session.begin():
        row, _ = save_version(session, doc, source="api", actor="test", now=datetime.now(UTC))
        return row.version


async def declare(h: Harness, doc: dict[str, Any], severity: Severity, title: str) -> tuple[int, WorkflowHandle]:
    number = random.randint(10**8, 10**9)
    inp = IncidentInput(number=number, title=title, severity=severity, policy=parse_policy(doc))
    handle = await h.client.start_workflow(IncidentWorkflow.run, inp, id=f"incident-{number}", task_queue=h.task_queue)
    return number, handle


async def view(handle: WorkflowHandle) -> IncidentView:
    return await handle.query(IncidentWorkflow.view)


async def until(handle: WorkflowHandle, check: Callable[[IncidentState], bool], what: str,
                timeout: float = 10) -> IncidentState:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = (await view(handle)).state
        if check(state):
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; timeline: {lines(state)}")
        await asyncio.sleep(0.05)


def lines(state: IncidentState) -> list[str]:
    return [e.text for e in state.timeline]


def sent(h: Harness, number: int, kind: NotificationKind | None = None) -> list[NotificationRequest]:
    return [r for r in h.channel.sent if r.incident_number == number and (kind is None or r.kind == kind)]


async def test_a_level_that_names_a_schedule_pages_whoever_is_on_call_then(harness: Harness) -> None:
    engine = harness.engine  # the database the worker reads and writes (the primary backend)
    doc = document()
    version = store(engine, doc)
    number, handle = await declare(harness, doc, Severity.SEV2, "DNS updates delayed")
    state = await until(handle, lambda s: bool(s.page_runs), "the first page")
    assert [p.person for p in state.pages] == ["bob"] and state.pages[0].via == "schedule:primary"
    assert any(t.startswith("Paged level 1: schedule primary → bob (on call); acknowledge within 3 s")
               for t in lines(state)), lines(state)
    await until(handle, lambda s: any(a.status == "sent" for r in s.page_runs for a in r.attempts), "the SMS")
    assert [(r.person_id, r.channel) for r in sent(harness, number)] == [("bob", "sms")]
    assert version == 1
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="bob"))


async def test_someone_taken_off_the_rotation_mid_incident_is_not_paged_again_nor_followed_up(
    harness: Harness
) -> None:
    engine = harness.engine  # the database the worker reads and writes (the primary backend)
    doc = document(postmortem_required_for=["SEV-2"])
    store(engine, doc)
    number, handle = await declare(harness, doc, Severity.SEV2, "Mail delivery stalled")
    await until(handle, lambda s: any(a.status == "sent" for r in s.page_runs for a in r.attempts), "bob's SMS")
    # With bob's page out, the team takes him off the rotation: [alice, carol] from now on.
    changed = document(postmortem_required_for=["SEV-2"])
    changed["schedules"]["primary"]["layers"][0]["participants"] = ["alice", "carol"]
    assert store(engine, changed) == 2
    # Nobody acknowledges within 3 s: round 2 of the level resolves the schedule again.
    state = await until(handle, lambda s: len(s.pages) == 2, "round 2")
    assert [(p.person, p.step) for p in state.pages] == [("bob", 0), ("carol", 1)]
    assert any(t.startswith("Paged level 1, round 2: schedule primary → carol (on call) (no acknowledgement in time)")
               for t in lines(state)), lines(state)
    await until(handle, lambda s: sum(a.status == "sent" for r in s.page_runs for a in r.attempts) == 2,
                "carol's SMS")
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Queue drained.", by="carol"))
    # The resolution notice is a follow-up to everyone paged: carol gets it, bob no longer does.
    state = await until(handle, lambda s: any("resolution to bob" in t for t in lines(s)), "bob's notice")
    assert "resolution to bob by sms: dropped (bob is no longer on schedule primary)" in lines(state)
    # Someone who takes on a role keeps hearing, rotation or not: bob becomes scribe.
    await handle.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.SCRIBE, person="bob", by="carol"))
    deadline = asyncio.get_running_loop().time() + 10
    while not sent(harness, number, NotificationKind.ROLE):
        assert asyncio.get_running_loop().time() < deadline, "bob's role notice never went out"
        await asyncio.sleep(0.05)
    await until(handle, lambda s: len(sent(harness, number)) == 4, "carol's notice")
    assert sorted((r.person_id, r.kind.value) for r in sent(harness, number)) == [
        ("bob", "page"), ("bob", "role"), ("carol", "escalation"), ("carol", "resolution"),
    ]


def business_hours_from(opens: datetime) -> dict[str, Any]:
    """A team (UTC) whose business hours open at ``opens`` (to the second) and last an hour, every day."""
    return {
        "members": ["alice", "bob"],
        "time_zone": "UTC",
        "business_hours": [{
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": opens.strftime("%H:%M:%S"),
            "end": (opens + timedelta(hours=1)).strftime("%H:%M:%S"),
        }],
    }


async def test_a_sev3_declared_outside_business_hours_waits_for_them_and_an_ack_cancels_the_wait(
    harness: Harness
) -> None:
    opens = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    doc = document(
        teams={"web": business_hours_from(opens)},
        default_route={"escalation": "default", "team": "web"},
        paging_rules=[
            {"severities": ["SEV-3"], "when": "business_hours", "methods": ["email"]},
            {"severities": ["SEV-3"], "when": "outside_business_hours", "action": "defer"},
        ],
    )
    # No stored configuration here: the incidents resolve with their own copy.
    waits, waiting = await declare(harness, doc, Severity.SEV3, "One region slow")
    acked, cancelled = await declare(harness, doc, Severity.SEV3, "Billing export late")
    first = await view(waiting)
    assert {d.name: d.at for d in first.deadlines}.get("deferred_page") == opens
    assert "acknowledge" not in {d.name for d in first.deadlines}
    until_text = opens.strftime("%a %d %b %H:%M:%S UTC")
    assert (f"SEV-3 declared outside business hours: paging rule 2: SEV-3 outside web's business hours "
            f"(Mon-Sun {opens:%H:%M:%S}-{opens + timedelta(hours=1):%H:%M:%S} UTC) waits for business hours; "
            f"level 1 will be paged at {until_text}") in lines(first.state)
    await cancelled.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    assert "deferred_page" not in {d.name for d in (await view(cancelled)).deadlines}
    assert datetime.now(UTC) < opens, "too slow for this test's margin: the ack came after business hours began"
    assert not sent(harness, waits)
    state = await until(waiting, lambda s: bool(s.pages), "the page at opening time")
    assert state.pages[0].at >= opens and state.pages[0].person == "bob"
    assert any(t.startswith("Paged level 1: schedule primary → bob (on call) (business hours have started)")
               for t in lines(state)), lines(state)
    await until(waiting, lambda s: any(a.status == "sent" for r in s.page_runs for a in r.attempts), "the email")
    assert [(r.person_id, r.channel) for r in sent(harness, waits)] == [("bob", "email")]
    acked_state = (await view(cancelled)).state
    assert "The page waiting for business hours is cancelled: acknowledged by alice" in lines(acked_state)
    assert not acked_state.pages and not sent(harness, acked)
    await waiting.execute_update(IncidentWorkflow.acknowledge, AckInput(person="bob"))
