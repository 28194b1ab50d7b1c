"""Paging and escalation on the real dev server, with second-scale policies.

The first-status deadline is pushed out to an hour in these tests, so the only
notifications are the pages the escalation policy sends.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.conftest import Harness, fast_policy
from tests.workflow.helpers import (
    deadline_names,
    eventually,
    incident_row,
    sent,
    sleep_until,
    slots,
    start_incident,
    state,
    stays,
    timeline_rows,
)
from warroom.models.incident import AckInput, IncidentStatus, SeverityInput
from warroom.models.severity import Severity
from warroom.workflows import IncidentWorkflow


def paging_policy(ack_timeout: str = "1s", **overrides: object):
    return fast_policy(ack_timeout=ack_timeout, first_status_within="1h", **overrides)


async def test_ack_before_the_deadline_stops_all_paging(harness: Harness) -> None:
    handle, n = await start_incident(harness, policy=paging_policy("3s"))
    await eventually(lambda: slots(sent(harness, n)) == ["step-0/alice/0-sms"], what="the page to level 1")

    result = await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    assert result.status == IncidentStatus.ACKNOWLEDGED
    s = await state(handle)
    assert s.acknowledged_by == "alice"
    assert s.acknowledged_at is not None and s.acknowledged_at < s.pages[0].at + timedelta(seconds=3)
    assert s.escalation.deadline is None
    assert "acknowledge" not in deadline_names(await handle.query(IncidentWorkflow.view))

    # the deadline the page set goes by: nobody else is paged
    await sleep_until(s.pages[0].at + timedelta(seconds=4))
    assert slots(sent(harness, n)) == ["step-0/alice/0-sms"]
    after = await state(handle)
    assert [(p.step, p.person) for p in after.pages] == [(0, "alice")]
    assert after.escalation.step == 0

    # the read model shows the acknowledged incident and its timeline
    row = await eventually(lambda: (r := incident_row(harness, n)) is not None and r.status == "acknowledged" and r)
    assert row.acknowledged_by == "alice" and row.severity == "SEV-2"
    assert [t.kind for t in timeline_rows(harness, n) if t.kind != "notify"] == ["declared", "page", "ack"]


async def test_no_ack_walks_every_level_repeats_then_tells_the_fallback_once(harness: Harness) -> None:
    handle, n = await start_incident(harness, policy=paging_policy("1s"))
    await eventually(lambda: sent(harness, n, "fallback"), timeout=12, what="the fallback notice")

    expected = ["step-0/alice/0-sms", "step-1/bob/0-sms", "step-2/alice/0-sms", "step-3/bob/0-sms", "fallback/erin/0-sms"]
    assert slots(sent(harness, n)) == expected
    assert [row.kind for row in sent(harness, n)] == ["page", "escalation", "escalation", "escalation", "fallback"]
    assert "again" in sent(harness, n)[2].text  # the repeat round says it is a repeat

    s = await state(handle)
    assert [(p.level, p.round, p.person) for p in s.pages] == [(1, 0, "alice"), (2, 0, "bob"), (1, 1, "alice"), (2, 1, "bob")]
    for earlier, later in zip(s.pages, s.pages[1:]):
        gap = (later.at - earlier.at).total_seconds()
        assert 1.0 <= gap < 3.0, f"one escalation per 1 s deadline, got a {gap:.2f} s gap"
    assert s.escalation.exhausted and s.escalation.deadline is None
    assert s.escalation.fallback_notified_at is not None
    assert s.status == IncidentStatus.TRIGGERED

    # and then nothing more, ever
    await stays(lambda: len(sent(harness, n)) == len(expected), for_seconds=2.5, what="the silence after the fallback")
    assert len((await state(handle)).pages) == 4
    assert sorted(r.key for r in harness.channel.sent) == sorted(r.key for r in sent(harness, n))
    exhausted = [t for t in timeline_rows(harness, n) if "exhausted" in t.text]
    assert len(exhausted) == 1 and "erin" in exhausted[0].text


async def _ack_at_deadline(harness: Harness, offset: float) -> None:
    handle, n = await start_incident(harness, policy=paging_policy("3s"))
    await eventually(lambda: sent(harness, n, "page"), what="the page to level 1")
    deadline = (await state(handle)).escalation.deadline
    assert deadline is not None

    await sleep_until(deadline + timedelta(seconds=offset))
    result = await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    assert result.status == IncidentStatus.ACKNOWLEDGED

    # wait past the level-2 deadline too: a missed stop would page step 2 by then
    await asyncio.sleep(3.5)
    s = await state(handle)
    level2 = [p for p in s.pages if p.step == 1]
    assert s.acknowledged_at is not None
    # The one rule: nothing pages after the ack. (On a loaded machine the ack may reach the
    # workflow after even the level-2 deadline; a step-2 page is then earlier than the ack.)
    assert [p for p in s.pages if p.at > s.acknowledged_at] == []
    assert len(level2) <= 1
    to_bob = [r for r in harness.channel.sent if r.incident_number == n and "/step-1/" in r.key]
    dropped = [t for t in s.timeline if t.kind == "notify" and ("dropped" in t.text or "withdrawn" in t.text)
               and "to bob" in t.text]
    if level2:  # escalated first, then acknowledged
        assert s.acknowledged_at is not None and level2[0].at <= s.acknowledged_at
        assert len(to_bob) + len(dropped) == 1
    else:  # acknowledged in time: level 2 never heard of it
        assert to_bob == [] and dropped == []
    # The read model agrees: a level-2 page went out exactly when bob received it
    # (a page withdrawn by the ack may leave a row, but never a sent one).
    escalated = [r for r in harness.channel.sent if r.incident_number == n and r.step >= 1]
    assert len([r for r in sent(harness, n, "escalation") if r.status == "sent"]) == len(escalated)


async def test_ack_racing_the_escalation_deadline_has_exactly_one_outcome(harness: Harness) -> None:
    """Six incidents at once, acknowledged from just before to just after the deadline."""
    await asyncio.gather(*(_ack_at_deadline(harness, offset) for offset in (-0.05, 0.0, 0.05, 0.1, 0.2, 0.4)))


async def test_sev4_does_not_page_until_raised(harness: Harness) -> None:
    handle, n = await start_incident(harness, severity=Severity.SEV4, policy=paging_policy("1s"))
    await eventually(
        lambda: any("does not page" in t.text for t in timeline_rows(harness, n)), what="the 'does not page' entry"
    )
    await stays(lambda: sent(harness, n) == [], for_seconds=2, what="no page for a SEV-4")
    s = await state(handle)
    assert s.pages == [] and s.escalation.step == -1
    assert "acknowledge" not in deadline_names(await handle.query(IncidentWorkflow.view))

    await handle.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV2))
    await eventually(lambda: slots(sent(harness, n)) == ["step-0/alice/0-sms"], timeout=3, what="the page after raising")
