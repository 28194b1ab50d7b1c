"""Reminders and notices follow the severity's paging methods: a SEV-4, which pages
nobody, never buzzes a phone over its whole life, while a SEV-2 still texts.

Each incident's own history is replayed afterwards, so the new path is deterministic;
``tests/replay/histories/sev4_notices.json`` (recorded when SEV-4 notices still went
by SMS) keeps the old path replaying.
"""

from __future__ import annotations

from temporalio.worker import Replayer

from tests.conftest import Harness, fast_policy
from tests.workflow.helpers import eventually, sent, start_incident, state, timeline_rows
from warroom.models.incident import ResolveInput, Role, RoleInput
from warroom.models.severity import Severity
from warroom.temporal import DATA_CONVERTER
from warroom.workflows import WORKFLOWS, IncidentWorkflow

LIFE = {"first_status_within": "2s", "reminder_lead": "1s", "ack_timeout": "1h"}
"""First-status reminder at 1 s, holding statement at 2 s; nobody escalated to."""


async def live_a_life(h: Harness, severity: Severity, **policy: object) -> int:
    """Declare, let the first-status reminder and the holding statement go out, name an IC, resolve."""
    handle, n = await start_incident(h, severity=severity, policy=fast_policy(**LIFE, **policy))
    await eventually(lambda: sent(h, n, "status"), timeout=8, what="the holding-statement notice")
    await handle.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.INCIDENT_COMMANDER, person="bob"))
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Cleared the stale cache.", by="bob"))
    await eventually(lambda: sent(h, n, "resolution"), what="the resolution notice")
    replayed = await Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER).replay_workflow(
        await handle.fetch_history(), raise_on_replay_failure=False
    )
    assert replayed.replay_failure is None
    return n


async def test_a_sev4_never_texts_or_calls_anyone_over_its_life(harness: Harness) -> None:
    n = await live_a_life(harness, Severity.SEV4)
    rows = sent(harness, n)
    assert {r.kind for r in rows} >= {"reminder", "status", "role", "resolution"}
    assert {r.channel for r in rows} == {"email"}, [(r.kind, r.channel) for r in rows]
    assert not [s for s in harness.channel.sent if s.incident_number == n and s.channel != "email"]


async def test_a_sev2_still_texts_its_reminders_and_notices(harness: Harness) -> None:
    n = await live_a_life(harness, Severity.SEV2)
    notices = [r for r in sent(harness, n) if r.kind in {"reminder", "status", "role", "resolution"}]
    assert {r.kind for r in notices} == {"reminder", "status", "role", "resolution"}
    assert {r.channel for r in notices} == {"sms"}


async def test_a_sev4_notice_to_someone_without_email_is_skipped_and_says_so(harness: Harness) -> None:
    people = {
        "alice": {"name": "Alice Ng", "sms": "+15005550006"},
        "bob": {"name": "Bob Ruiz", "sms": "+15005550007", "email": "bob@example.com"},
        "erin": {"name": "Erin Cho", "sms": "+15005550008", "email": "erin@example.com"},
    }
    handle, n = await start_incident(harness, severity=Severity.SEV4, policy=fast_policy(**LIFE, people=people))
    await eventually(lambda: any("goes by email only" in t.text for t in timeline_rows(harness, n)),
                     timeout=8, what="the note that alice was not texted")
    s = await state(handle)
    assert any(t.kind == "notify" and "alice" in t.text and "no address" in t.text for t in s.timeline)
    assert sent(harness, n, person="alice") == []
