"""A long incident continues as new and carries its state, timeline and deadlines across."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import WorkflowHandle

from tests.conftest import Harness, fast_policy
from tests.workflow.helpers import eventually, incident_row, start_incident, state, status_rows, timeline_rows
from warroom.models.incident import AckInput, IncidentStatus, ResolveInput, StatusUpdateInput
from warroom.models.severity import Severity
from warroom.workflows import IncidentWorkflow

def _new_run(handle: WorkflowHandle[Any, Any], runs: set[str]) -> Callable[[], Awaitable[str | None]]:
    async def check() -> str | None:
        run_id = (await handle.describe()).run_id
        return run_id if run_id not in runs else None

    return check


POLICY = fast_policy(
    ack_timeout="1h",
    first_status_within="1h",
    update_every={"SEV-1": "1h", "SEV-2": "1h"},
    postmortem_within="1h",
    history_event_limit=60,
)
"""Nothing falls due during the test: every history event comes from the commands."""


async def test_many_updates_continue_as_new_without_losing_anything(harness: Harness) -> None:
    handle, n = await start_incident(harness, severity=Severity.SEV2, policy=POLICY)
    first_run = (await handle.describe()).run_id
    await eventually(lambda: harness.channel.sent, what="the first page")
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))

    # back-to-back commands, each answered before the next is sent
    posted, runs = 0, {first_run}
    for _ in range(30):
        posted += 1
        await handle.execute_update(
            IncidentWorkflow.post_status_update, StatusUpdateInput(message=f"Update {posted}", author="alice")
        )
        runs.add((await handle.describe()).run_id)
    assert len(runs) >= 2, f"no continue-as-new after {posted} updates"

    # bursts of concurrent commands (the dev server admits 10 in flight per workflow)
    # while the next continue-as-new falls due: none is lost, none applied twice
    for _ in range(4):
        burst = [
            handle.execute_update(
                IncidentWorkflow.post_status_update, StatusUpdateInput(message=f"Update {posted + i}", author="alice")
            )
            for i in range(1, 9)
        ]
        for result in await asyncio.gather(*burst):
            assert result.status == IncidentStatus.ACKNOWLEDGED
        posted += len(burst)
    runs.add(await eventually(_new_run(handle, runs), what="a further continue-as-new after the bursts"))

    # no run outgrew the limit unboundedly, however fast the commands came: a run
    # finishes the work in flight before it continues (a read-model write, the
    # subscriber fan-out of the updates already published), some ten events a
    # command, more on a loaded machine; what must never happen is a run that
    # keeps growing because it never gets to continue
    lengths = [wf.history_length async for wf in harness.client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(lengths) >= 3 and max(lengths) <= 5 * POLICY.history_event_limit, lengths

    s = await state(handle)
    assert sorted(u.message for u in s.status_updates) == sorted(f"Update {i}" for i in range(1, posted + 1))
    assert [u.seq for u in s.status_updates] == list(range(1, posted + 1))
    assert [e.seq for e in s.timeline] == list(range(1, len(s.timeline) + 1))
    assert [e.kind for e in s.timeline if e.kind != "notify"][:3] == ["declared", "page", "ack"]
    assert s.acknowledged_by == "alice" and s.status == IncidentStatus.ACKNOWLEDGED
    assert [p.person for p in s.pages] == ["alice"]  # nobody paged again by a new run
    assert s.status_plan.next_due == s.status_updates[-1].at + POLICY.update_every[Severity.SEV2]

    # a command after the continue-as-new reaches the new run
    await handle.execute_update(IncidentWorkflow.post_status_update, StatusUpdateInput(message="Last one", author="alice"))
    result = await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Fixed.", by="alice"))
    assert result.status == IncidentStatus.RESOLVED
    s = await state(handle)
    assert [u.message for u in s.status_updates][-2:] == ["Last one", s.status_updates[-1].message]
    assert len(s.status_updates) == posted + 2

    # the read model got every update and every timeline entry exactly once
    rows = await eventually(
        lambda: (r := status_rows(harness, n)) and len(r) == posted + 2 and r, what="every status update stored"
    )
    assert [r.seq for r in rows] == list(range(1, posted + 3))
    entries = await eventually(
        lambda: (t := timeline_rows(harness, n)) and len(t) == len(s.timeline) and t, what="the whole timeline stored"
    )
    assert [(t.seq, t.kind) for t in entries] == [(e.seq, e.kind) for e in s.timeline]
    await eventually(lambda: (r := incident_row(harness, n)) is not None and r.status == "resolved", what="resolved row")
    assert (await state(handle)).pages == s.pages
    assert len([r for r in harness.channel.sent if r.kind.value == "page"]) == 1


async def test_a_command_retried_after_continue_as_new_is_answered_not_applied_again(harness: Harness) -> None:
    """Temporal deduplicates an update id only within one run; the workflow does it across runs."""
    handle, _ = await start_incident(harness, severity=Severity.SEV2, policy=POLICY)
    await eventually(lambda: harness.channel.sent, what="the first page")
    first_run = (await handle.describe()).run_id
    ack = await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"), id="ack-from-sms-42")
    post = StatusUpdateInput(message="We are rolling back.", author="alice")
    posted = await handle.execute_update(IncidentWorkflow.post_status_update, post, id="post-1")

    filler = 0
    while (await handle.describe()).run_id == first_run and filler < 30:
        filler += 1
        await handle.execute_update(
            IncidentWorkflow.post_status_update, StatusUpdateInput(message=f"Filler {filler}", author="alice")
        )
    await eventually(_new_run(handle, {first_run}), what="a continue-as-new")

    # the same update ids again, as a client retrying after a lost answer would send them
    assert await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"), id="ack-from-sms-42") == ack
    assert await handle.execute_update(IncidentWorkflow.post_status_update, post, id="post-1") == posted
    s = await state(handle)
    assert [u.message for u in s.status_updates].count("We are rolling back.") == 1
    assert [e.kind for e in s.timeline].count("ack") == 1
