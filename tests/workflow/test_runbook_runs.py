"""Runbook runs on the real Temporal dev server, against the stand-in platform.

Each run is its own workflow, started by the incident's ``run_runbook`` update.
Durations are second-scale; no test sleeps longer than a fraction of a second.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Replayer

from tests.conftest import Harness, fast_policy, running_worker
from tests.standin import RunningPlatform, running_platform
from warroom.models.ids import incident_workflow_id, runbook_run_workflow_id
from warroom.models.incident import IncidentInput, ResolveInput
from warroom.models.runbook import (
    AbortRunInput,
    ApprovalInput,
    Runbook,
    RunbookRunInput,
    RunbookRunState,
    RunStatus,
    StepDecisionInput,
    StepStatus,
    parse_runbook,
)
from warroom.models.severity import Severity
from warroom.models.tables import RunbookRunRow, RunbookStepClaim, RunbookStepRow
from warroom.runbooks import load_catalogue
from warroom.runbooks.steps import RunbookConfig
from warroom.temporal import DATA_CONVERTER
from warroom.workflows import WORKFLOWS, IncidentWorkflow, RunbookRunWorkflow

NUMBERS = itertools.count(random.randrange(10**6, 10**8, 1000))
TOKEN = "platform-t0ken-for-tests"


def runbook(*steps: dict[str, Any], parameters: dict[str, Any] | None = None, rid: str = "test-runbook") -> Runbook:
    data = {"title": rid.replace("-", " ").capitalize(), "when_to_use": "in tests", "steps": list(steps)}
    if parameters:
        data["parameters"] = parameters
    return parse_runbook(data, rid, f"{rid}.yaml")


def http(path: str, method: str = "POST", **extra: Any) -> dict[str, Any]:
    return {"name": f"{method} {path}", "kind": "http", "endpoint": "platform", "method": method, "path": path,
            **extra}


def wait(timeout: str = "3s") -> dict[str, Any]:
    return {"name": "healthy", "kind": "wait_until_healthy", "endpoint": "platform", "interval": "0.1s",
            "expect_json": {"status": "ok"}, "timeout": timeout}


def manual(name: str = "check by hand", timeout: str = "1h") -> dict[str, Any]:
    return {"name": name, "kind": "manual", "instruction": "Look at the dashboard.", "timeout": timeout}


@pytest.fixture
async def h(client: Client, engine: Engine, platform: RunningPlatform) -> AsyncIterator[Harness]:
    config = RunbookConfig(endpoints={"platform": platform.url}, secrets={"platform_token": TOKEN})
    async with running_worker(client, engine, runbook_config=config) as harness:
        yield harness


async def declare(h: Harness) -> tuple[int, WorkflowHandle[Any, Any]]:
    number = next(NUMBERS)
    handle = await h.client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(number=number, title="Control panel errors", severity=Severity.SEV4,
                      policy=fast_policy(first_status_within="1h")),
        id=incident_workflow_id(number),
        task_queue=h.task_queue,
    )
    return number, handle


async def start(incident: WorkflowHandle[Any, Any], rb: Runbook, actor: str = "alice", **kw: Any) -> Any:
    cmd = RunbookRunInput(runbook=rb, actor=actor, **({"can_run_destructive": True, "confirm_destructive": True} | kw))
    return await incident.execute_update(IncidentWorkflow.run_runbook, cmd)


def run_of(client: Client, number: int, run: int = 1) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(runbook_run_workflow_id(number, run))


async def finished(client: Client, number: int, run: int = 1) -> RunbookRunState:
    return RunbookRunState.model_validate(await asyncio.wait_for(run_of(client, number, run).result(), 20))


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def step_status(client: Client, number: int, index: int, status: StepStatus, run: int = 1) -> None:
    async def check() -> bool:
        state = await run_of(client, number, run).query(RunbookRunWorkflow.view)
        return state.steps[index - 1].status == status

    await until(check)


async def timeline(incident: WorkflowHandle[Any, Any]) -> list[str]:
    view = await incident.query(IncidentWorkflow.view)
    return [e.text for e in view.state.timeline if e.kind == "runbook"]


async def rejected(call: Awaitable[Any]) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await call
    return str(getattr(err.value.cause, "message", err.value.cause))


def rows(engine: Engine, number: int) -> tuple[RunbookRunRow, list[RunbookStepRow]]:
    with Session(engine) as session:
        run = session.scalars(select(RunbookRunRow).where(RunbookRunRow.incident_number == number)).one()
        steps = list(session.scalars(
            select(RunbookStepRow).where(RunbookStepRow.incident_number == number).order_by(RunbookStepRow.step_index)
        ))
        session.expunge_all()
        return run, steps


# --- the shipped rollback, end to end ------------------------------------------------------------


async def test_deployment_rollback_recovers_the_platform_and_records_every_step(client: Client, engine: Engine) -> None:
    with running_platform(token=TOKEN) as platform:
        config = RunbookConfig(endpoints={"platform": platform.url}, secrets={"platform_token": TOKEN})
        async with running_worker(client, engine, runbook_config=config) as h:
            platform.break_("deploy")
            number, incident = await declare(h)
            rb = load_catalogue().runbooks["deployment-rollback"]
            started = await start(incident, rb, reason="errors since the 14:02 release")
            assert started.run == 1 and started.workflow_id == runbook_run_workflow_id(number, 1)
            final = await finished(client, number)
            assert final.status == RunStatus.SUCCEEDED
            assert [s.status for s in final.steps] == [StepStatus.SUCCEEDED] * 3
            assert platform.state.deployments[-1].version == "2024.11.2" and not platform.state.problems()
            assert len(platform.calls("/deployment/rollback")) == 1

            run_row, step_rows = rows(engine, number)
            assert run_row.status == "succeeded" and run_row.started_by == "alice"
            assert [s.status for s in step_rows] == ["succeeded"] * 3
            assert all(s.duration_seconds is not None and s.started_at and s.finished_at for s in step_rows)
            assert '"rolled_back_from": "2024.11.3"' in step_rows[1].output
            assert step_rows[1].idempotency_key == f"incident-{number}/run-1/step-2/attempt-1"

            await until(lambda: _has(incident, "succeeded after"))
            lines = await timeline(incident)
            assert "started by alice (destructive steps confirmed): errors since the 14:02 release" in lines[0]
            for i, name in enumerate([s.name for s in rb.steps], start=1):
                assert any(f"step {i}/3 '{name}' started" in line for line in lines)
                assert any(f"step {i}/3 '{name}' succeeded after" in line for line in lines)
            assert any("HTTP 200" in line and "output:" in line for line in lines)
            everything = " ".join(lines) + " ".join(s.output + s.result for s in step_rows)
            assert TOKEN not in everything

            # Both workflows replay deterministically from their recorded histories.
            replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
            for handle in (incident, run_of(client, number)):
                await replayer.replay_workflow(await handle.fetch_history())


async def _has(incident: WorkflowHandle[Any, Any], text: str) -> bool:
    return any(text in line for line in await timeline(incident))


# --- the shipped runbooks for DNS, mail, payments and certificates, with their people ------------------


@pytest.fixture
async def shipped(client: Client, engine: Engine) -> AsyncIterator[tuple[Harness, RunningPlatform]]:
    """A worker and the stand-in with its token and its TLS site, as the shipped runbooks expect."""
    with running_platform(token=TOKEN, tls=True) as platform:
        config = RunbookConfig(endpoints={"platform": platform.url}, secrets={"platform_token": TOKEN})
        async with running_worker(client, engine, runbook_config=config) as h:
            yield h, platform


async def _waits_then_confirm(client: Client, number: int, index: int, actor: str = "bob") -> RunbookRunState:
    """Step ``index`` waits for a person; return the run's state then, after confirming it."""
    await step_status(client, number, index, StepStatus.WAITING)
    state = await run_of(client, number).query(RunbookRunWorkflow.view)
    await run_of(client, number).execute_update(
        RunbookRunWorkflow.confirm_step, StepDecisionInput(step=index, actor=actor, note="done")
    )
    return state


def _statuses(state: RunbookRunState) -> list[StepStatus]:
    return [st.status for st in state.steps]


async def test_dns_propagation_restarts_the_stuck_publisher(shipped: tuple[Harness, RunningPlatform]) -> None:
    h, platform = shipped
    platform.break_("dns")
    assert any("DNS publisher is stuck" in p for p in platform.state.problems())
    number, incident = await declare(h)
    rb = load_catalogue().runbooks["dns-propagation-issues"]
    # Nothing in it is destructive: a responder without that right may run it.
    await start(incident, rb, params={"domain": "shop.example.com"}, can_run_destructive=False,
                confirm_destructive=False)
    waiting = await _waits_then_confirm(h.client, number, 5)
    S = StepStatus
    assert _statuses(waiting) == [S.SUCCEEDED] * 4 + [S.WAITING]
    compared, publisher = waiting.steps[0].output, waiting.steps[1].output
    assert '"in_sync": false' in compared and "203.0.113.10" in compared, "the stale record was shown"
    assert '"state": "stuck"' in publisher and '"queue": 42' in publisher
    assert platform.state.problems() == [], "repaired before the person's last check"
    assert len(platform.calls("/dns/publisher/restart")) == 1
    final = await finished(h.client, number)
    assert final.status == RunStatus.SUCCEEDED and final.steps[4].actor == "bob"


async def test_email_delivery_waits_for_a_person_then_moves_mail_to_the_secondary_relay(
    shipped: tuple[Harness, RunningPlatform],
) -> None:
    h, platform = shipped
    platform.break_("mail")
    assert any("relay primary is down" in p for p in platform.state.problems())
    number, incident = await declare(h)
    rb = load_catalogue().runbooks["email-delivery-failures"]
    await start(incident, rb, can_run_destructive=False, confirm_destructive=False)
    before = await _waits_then_confirm(h.client, number, 2)
    assert '"primary": "down"' in before.steps[0].output and '"queue": 1200' in before.steps[0].output
    assert platform.calls() == [], "nothing changed before the person read the reasons"
    after = await _waits_then_confirm(h.client, number, 6)
    assert _statuses(after) == [StepStatus.SUCCEEDED] * 5 + [StepStatus.WAITING]
    assert platform.state.problems() == []
    assert platform.state.mail_relay == "secondary" and '"delivered": 1200' in after.steps[3].output
    assert (await finished(h.client, number)).status == RunStatus.SUCCEEDED


async def test_payment_outage_switches_provider_only_after_a_second_operator_approves(
    shipped: tuple[Harness, RunningPlatform],
) -> None:
    h, platform = shipped
    platform.break_("payments")
    assert any("payment provider A is down" in p for p in platform.state.problems())
    number, incident = await declare(h)
    await start(incident, load_catalogue().runbooks["payment-processing-outage"])
    first = await _waits_then_confirm(h.client, number, 2, actor="alice")
    assert '"a": "down"' in first.steps[0].output
    await step_status(h.client, number, 3, StepStatus.WAITING)
    assert platform.calls() == [] and platform.state.problems(), "no switch before the approval"
    run = run_of(h.client, number)
    assert "a second operator must approve" in await rejected(run.execute_update(
        RunbookRunWorkflow.approve_step, ApprovalInput(step=3, actor="alice", can_run_destructive=True)
    ))
    await run.execute_update(RunbookRunWorkflow.approve_step,
                             ApprovalInput(step=3, actor="bob", can_run_destructive=True, note="provider A down"))
    last = await _waits_then_confirm(h.client, number, 6)
    assert _statuses(last) == [StepStatus.SUCCEEDED] * 5 + [StepStatus.WAITING]
    assert platform.state.problems() == [] and platform.state.flags["payments-provider-b"] is True
    final = await finished(h.client, number)
    assert final.status == RunStatus.SUCCEEDED and final.steps[2].result == "approved by bob: provider A down"


async def test_certificate_expiry_is_recovered_once_a_person_renews_it(
    shipped: tuple[Harness, RunningPlatform],
) -> None:
    h, platform = shipped
    platform.break_("certificate")
    assert any("certificate has expired" in p for p in platform.state.problems())
    assert platform.site_port is not None and platform.ca_file is not None
    number, incident = await declare(h)
    params = {"host": "localhost", "port": platform.site_port, "ca_bundle": str(platform.ca_file)}
    await start(incident, load_catalogue().runbooks["certificate-expiry-recovery"], params=params)
    await step_status(h.client, number, 2, StepStatus.WAITING)
    shown = (await run_of(h.client, number).query(RunbookRunWorkflow.view)).steps[0]
    assert shown.status == StepStatus.SUCCEEDED and "certificate has expired" in shown.output, shown
    platform.renew_certificate()  # what the person does before confirming
    assert platform.state.problems(), "a renewed certificate is served only after the restart"
    await _waits_then_confirm(h.client, number, 2)
    last = await _waits_then_confirm(h.client, number, 5)
    assert _statuses(last) == [StepStatus.SUCCEEDED] * 4 + [StepStatus.WAITING]
    assert "Verification: OK" in last.steps[3].output and last.steps[3].attempts == 1
    assert platform.state.problems() == [] and platform.state.restarts == 1
    assert (await finished(h.client, number)).status == RunStatus.SUCCEEDED


# --- retry, failure, timeout ------------------------------------------------------------------------


async def test_a_transient_failure_is_retried_under_a_fresh_attempt_key(
    h: Harness, platform: RunningPlatform, engine: Engine
) -> None:
    platform.break_("crash")
    platform.chaos(fail_next=2)
    number, incident = await declare(h)
    rb = runbook(http("/service/restart", retry={"max_attempts": 3, "initial_interval": "0.1s"}), wait())
    await start(incident, rb)
    final = await finished(h.client, number)
    assert final.status == RunStatus.SUCCEEDED
    assert final.steps[0].attempts == 3 and "(attempt 3)" in final.steps[0].result
    assert platform.state.restarts == 1
    # Three requests, one Idempotency-Key for the step; three claims, one per attempt.
    assert [c["key"] for c in platform.calls("/service/restart")] == [f"incident-{number}/run-1/step-1"] * 3
    with Session(engine) as session:
        keys = session.scalars(
            select(RunbookStepClaim.key)
            .where(RunbookStepClaim.incident_number == number)
            .order_by(RunbookStepClaim.key)
        ).all()
    assert keys == [f"incident-{number}/run-1/step-1/attempt-{n}" for n in (1, 2, 3)]
    assert await _has(incident, "attempt 1 of 3 failed: POST /service/restart -> HTTP 503")


async def test_a_final_failure_stops_the_run_and_skips_the_rest(h: Harness, platform: RunningPlatform) -> None:
    number, incident = await declare(h)
    rb = runbook(
        http("/flags/{{ flag }}", method="PUT", body={"enabled": False}, retry={"max_attempts": 3}),
        http("/service/restart"),
        parameters={"flag": {"type": "string", "required": True}},
    )
    await start(incident, rb, params={"flag": "no-such-flag"})
    final = await finished(h.client, number)
    assert final.status == RunStatus.FAILED
    first, second = final.steps
    assert first.status == StepStatus.FAILED and first.attempts == 1, "a 404 is final: no retry"
    assert "HTTP 404" in first.result and second.status == StepStatus.SKIPPED
    assert platform.calls("/service/restart") == []
    await until(lambda: _has(incident, "failed after"))
    assert await _has(incident, "1 step(s) not run")


async def test_wait_until_healthy_fails_when_the_platform_stays_broken(h: Harness, platform: RunningPlatform) -> None:
    platform.break_("database")
    number, incident = await declare(h)
    await start(incident, runbook(wait(timeout="1s")))
    final = await finished(h.client, number)
    assert final.status == RunStatus.FAILED
    assert "not healthy within 1 s" in final.steps[0].result and "db-a is unreachable" in final.steps[0].output
    assert 1.0 <= final.steps[0].duration_seconds < 5


# --- people: manual steps, approvals, abort --------------------------------------------------------------


async def test_a_manual_step_waits_for_a_person_and_holds_the_resolution(h: Harness) -> None:
    number, incident = await declare(h)
    rb = runbook(manual())
    await start(incident, rb)
    await step_status(h.client, number, 1, StepStatus.WAITING)
    run = run_of(h.client, number)

    # The incident hears of the wait by the run's signal, a moment after the run's own state says so.
    async def refused_as_waiting() -> bool:
        resolve = incident.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="ok"))
        return "still waiting" in await rejected(resolve)

    await until(refused_as_waiting)
    assert "still waiting" in await rejected(start(incident, rb))
    def confirm(step: int, actor: str, note: str = "") -> Awaitable[Any]:
        return run.execute_update(RunbookRunWorkflow.confirm_step, StepDecisionInput(step=step, actor=actor, note=note))

    assert "has no step 4" in await rejected(confirm(4, "bob"))
    assert "'mallory' is not a responder" in await rejected(confirm(1, "mallory"))
    await confirm(1, "bob", "graphs flat")
    final = await finished(h.client, number)
    assert final.status == RunStatus.SUCCEEDED
    assert final.steps[0].actor == "bob" and final.steps[0].result == "confirmed done by bob: graphs flat"
    await until(lambda: _has(incident, "succeeded after"))
    await incident.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="ok"))


async def test_a_manual_step_nobody_confirms_fails_at_its_timeout(h: Harness) -> None:
    number, incident = await declare(h)
    await start(incident, runbook(manual(timeout="0.5s"), http("/service/restart")))
    final = await finished(h.client, number)
    assert final.status == RunStatus.FAILED
    assert final.steps[0].status == StepStatus.FAILED and final.steps[0].result == "nobody confirmed it within 0.5 s"
    assert final.steps[1].status == StepStatus.SKIPPED


async def test_an_approval_needs_a_second_operator_who_holds_the_right(h: Harness, platform: RunningPlatform) -> None:
    number, incident = await declare(h)
    rb = runbook(
        {"name": "second pair of eyes", "kind": "approval", "instruction": "Check the replication lag."},
        http("/database/failover", destructive=True),
    )
    await start(incident, rb)
    await step_status(h.client, number, 1, StepStatus.WAITING)
    run = run_of(h.client, number)

    def approve(actor: str, **kw: Any) -> Awaitable[Any]:
        return run.execute_update(RunbookRunWorkflow.approve_step, ApprovalInput(step=1, actor=actor, **kw))

    assert "a second operator must approve: alice started this run" in await rejected(
        approve("alice", can_run_destructive=True)
    )
    assert "may not approve" in await rejected(approve("bob", can_run_destructive=False))
    assert "not a manual step" in await rejected(
        run.execute_update(RunbookRunWorkflow.confirm_step, StepDecisionInput(step=1, actor="bob"))
    )
    assert platform.calls() == [], "nothing destructive happened before the approval"
    await approve("bob", can_run_destructive=True, note="lag 0.2 s")
    final = await finished(h.client, number)
    assert final.status == RunStatus.SUCCEEDED and final.steps[0].actor == "bob"
    assert platform.state.primary == "db-b"


async def test_a_refused_approval_stops_the_run_before_the_destructive_step(
    h: Harness, platform: RunningPlatform
) -> None:
    number, incident = await declare(h)
    approval = {"name": "ok?", "kind": "approval", "instruction": "Sure?"}
    rb = runbook(approval, http("/database/failover", destructive=True))
    await start(incident, rb)
    await step_status(h.client, number, 1, StepStatus.WAITING)
    await run_of(h.client, number).execute_update(
        RunbookRunWorkflow.approve_step,
        ApprovalInput(step=1, actor="bob", approve=False, note="lag too high", can_run_destructive=True),
    )
    final = await finished(h.client, number)
    assert final.status == RunStatus.FAILED and final.steps[0].result == "refused by bob: lag too high"
    assert final.steps[1].status == StepStatus.SKIPPED and platform.calls() == []


async def test_abort_cancels_a_running_command_and_skips_the_rest(h: Harness, platform: RunningPlatform) -> None:
    number, incident = await declare(h)
    seconds = f"40.{os.getpid()}{random.randrange(1000)}"
    slow = {"name": "slow", "kind": "shell", "argv": ["sleep", seconds], "timeout": "1m"}
    rb = runbook(slow, http("/service/restart"))
    await start(incident, rb)
    await step_status(h.client, number, 1, StepStatus.RUNNING)
    await until(lambda: _async(bool(_pids(seconds))))
    run = run_of(h.client, number)
    began = time.monotonic()
    result = await run.execute_update(RunbookRunWorkflow.abort, AbortRunInput(actor="bob", reason="wrong runbook"))
    assert time.monotonic() - began < 3 and result.status == RunStatus.ABORTED
    # The answer comes once the incident has heard of it: running the runbook again at once
    # is not refused as "still running".
    view = await incident.query(IncidentWorkflow.view)
    assert [(r.run, r.status) for r in view.state.runbook_runs] == [(1, RunStatus.ABORTED)]
    final = await finished(h.client, number)
    assert final.status == RunStatus.ABORTED and final.aborted_by == "bob"
    assert final.steps[0].status == StepStatus.ABORTED and final.steps[1].status == StepStatus.SKIPPED
    assert not _pids(seconds), "the command was killed"
    assert platform.calls() == []
    with pytest.raises(RPCError, match="already completed"):
        await run.execute_update(RunbookRunWorkflow.abort, AbortRunInput(actor="bob"))
    await until(lambda: _has(incident, "aborted after"))
    assert await _has(incident, "aborted by bob: wrong runbook")


async def test_an_approval_nobody_gives_fails_at_its_timeout_and_nothing_destructive_runs(
    h: Harness, platform: RunningPlatform
) -> None:
    """An approval step waits for at most its ``timeout`` (default 1 h); then the run fails,
    so a run nobody approves does not hold the incident open for ever."""
    number, incident = await declare(h)
    approval = {"name": "second pair of eyes", "kind": "approval", "instruction": "Sure?", "timeout": "0.5s"}
    await start(incident, runbook(approval, http("/database/failover", destructive=True)))
    final = await finished(h.client, number)
    assert final.status == RunStatus.FAILED
    first, second = final.steps
    assert first.status == StepStatus.FAILED and first.result == "nobody approved it within 0.5 s"
    assert first.actor is None and 0.5 <= first.duration_seconds < 5
    assert second.status == StepStatus.SKIPPED and platform.calls() == []
    with pytest.raises(RPCError, match="already completed"):
        await run_of(h.client, number).execute_update(
            RunbookRunWorkflow.approve_step, ApprovalInput(step=1, actor="bob", can_run_destructive=True)
        )
    await until(lambda: _has(incident, "nobody approved it within 0.5 s"))


async def test_abort_stops_a_health_wait_and_its_polling(h: Harness, platform: RunningPlatform) -> None:
    platform.break_("database")
    number, incident = await declare(h)
    await start(incident, runbook(wait(timeout="30s"), http("/service/restart")))
    await step_status(h.client, number, 1, StepStatus.RUNNING)
    await until(lambda: _async(platform.health_checks >= 3))
    began = time.monotonic()
    result = await run_of(h.client, number).execute_update(
        RunbookRunWorkflow.abort, AbortRunInput(actor="bob", reason="failing over instead")
    )
    assert time.monotonic() - began < 3 and result.status == RunStatus.ABORTED
    # The answer comes once the incident has heard of it: running the runbook again at once
    # is not refused as "still running".
    view = await incident.query(IncidentWorkflow.view)
    assert [(r.run, r.status) for r in view.state.runbook_runs] == [(1, RunStatus.ABORTED)]
    final = await finished(h.client, number)
    assert final.status == RunStatus.ABORTED and final.result == "aborted by bob: failing over instead"
    assert final.steps[0].status == StepStatus.ABORTED and final.steps[1].status == StepStatus.SKIPPED
    assert final.steps[0].result == "stopped: bob aborted the run"
    polls = platform.health_checks
    await asyncio.sleep(0.5)  # it polled every 0.1 s: a wait still running would have polled again
    assert platform.health_checks == polls and platform.calls() == []


async def test_abort_between_retries_of_an_http_step_makes_no_further_attempt(
    h: Harness, platform: RunningPlatform
) -> None:
    platform.chaos(fail_next=100)
    number, incident = await declare(h)
    step = http("/service/restart", retry={"max_attempts": 5, "initial_interval": "20s"})
    await start(incident, runbook(step, wait()))
    await step_status(h.client, number, 1, StepStatus.RETRYING)
    assert len(platform.calls("/service/restart")) == 1
    began = time.monotonic()
    result = await run_of(h.client, number).execute_update(RunbookRunWorkflow.abort, AbortRunInput(actor="bob"))
    assert time.monotonic() - began < 3 and result.status == RunStatus.ABORTED, "it did not wait out the 20 s"
    final = await finished(h.client, number)
    assert final.status == RunStatus.ABORTED and final.steps[0].attempts == 1
    assert final.steps[0].status == StepStatus.ABORTED and final.steps[1].status == StepStatus.SKIPPED
    await asyncio.sleep(0.3)
    assert len(platform.calls("/service/restart")) == 1 and platform.health_checks == 0
    await until(lambda: _has(incident, "attempt 1 of 5 failed"))


async def test_abort_cancels_an_http_attempt_in_flight_and_tries_no_more(
    h: Harness, platform: RunningPlatform, engine: Engine
) -> None:
    platform.chaos(delay_seconds=4.0)  # the platform holds each request for 4 s before acting
    number, incident = await declare(h)
    step = http("/service/restart", retry={"max_attempts": 3, "initial_interval": "0.1s"}, timeout="30s")
    await start(incident, runbook(step))
    key = f"incident-{number}/run-1/step-1/attempt-1"

    async def claimed() -> bool:
        with Session(engine) as session:
            return session.get(RunbookStepClaim, key) is not None

    await until(claimed)  # the attempt claimed its key: its request is on its way
    await asyncio.sleep(0.3)
    began = time.monotonic()
    result = await run_of(h.client, number).execute_update(RunbookRunWorkflow.abort, AbortRunInput(actor="bob"))
    assert time.monotonic() - began < 3 and result.status == RunStatus.ABORTED, "it waited for the answer"
    final = await finished(h.client, number)
    assert final.steps[0].status == StepStatus.ABORTED and final.steps[0].attempts == 1
    with Session(engine) as session:
        claim = session.get(RunbookStepClaim, key)
        assert claim is not None and claim.status == "running", "the attempt never finished"
    # The platform still acts on the request it already had (as a real one would), but no
    # retry follows it.
    await until(lambda: _async(len(platform.calls("/service/restart")) == 1), timeout=6)
    await asyncio.sleep(0.5)
    assert len(platform.calls("/service/restart")) == 1


async def _async(value: bool) -> bool:
    return value


def _pids(argument: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[:2] == [b"sleep", argument.encode()]:
                    found.append(int(pid))
        except OSError:
            continue
    return found


# --- who may run what ---------------------------------------------------------------------------------


async def test_destructive_runbooks_need_the_right_and_an_explicit_confirmation(
    h: Harness, platform: RunningPlatform
) -> None:
    number, incident = await declare(h)
    rb = runbook(http("/deployment/rollback", destructive=True, name="roll back"),
                 parameters={"why": {"type": "string", "default": "x"}})
    cases = {
        "alice may not run 'Test runbook': it has destructive steps ('roll back')":
            dict(can_run_destructive=False, confirm_destructive=True),
        "has destructive steps ('roll back'); confirm them explicitly":
            dict(can_run_destructive=True, confirm_destructive=False),
        "'mallory' is not a responder": dict(actor="mallory"),
        "why: use letters": dict(params={"why": "-rf"}),
    }
    for reason, kw in cases.items():
        assert reason in await rejected(start(incident, rb, **kw)), reason
    view = await incident.query(IncidentWorkflow.view)
    assert view.state.runbook_runs == [] and platform.calls() == []
    harmless = runbook(http("/deployment", method="GET"), rid="read-only")
    await start(incident, harmless, can_run_destructive=False, confirm_destructive=False)
    assert (await finished(h.client, number)).status == RunStatus.SUCCEEDED


# --- durability ------------------------------------------------------------------------------------------


async def test_a_worker_killed_mid_run_resumes_without_repeating_a_completed_step(
    client: Client, engine: Engine, platform: RunningPlatform
) -> None:
    config = RunbookConfig(endpoints={"platform": platform.url})
    queue = f"kill-{random.randrange(10**9)}"
    platform.break_("database")
    async with running_worker(client, engine, queue, runbook_config=config) as h:
        number, incident = await declare(h)
        await start(incident, runbook(http("/deployment/rollback"), wait(timeout="15s")))
        await step_status(client, number, 2, StepStatus.RUNNING)
        await until(lambda: _async(len(platform.calls()) == 1))
        await asyncio.sleep(0.3)  # the health check is polling when the worker goes away
    platform.repair()
    async with running_worker(client, engine, queue, runbook_config=config):
        final = await finished(client, number)
    assert final.status == RunStatus.SUCCEEDED
    assert len(platform.calls("/deployment/rollback")) == 1, "the completed step was not run again"
    attempts = [
        e.activity_task_started_event_attributes.attempt
        async for e in run_of(client, number).fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) >= 2, "the health check was interrupted and resumed on the new worker"
