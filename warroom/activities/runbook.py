"""Activities of runbook runs: the automated steps and the run's read model.

An automated step with side effects (``http``, ``shell``) claims a unique row per
attempt key (incident, run, step, attempt) *before* acting. If Temporal runs
the same attempt again (the worker died, or its answer was lost), the row says
what happened: a finished attempt returns its recorded outcome without acting
again; an attempt that stopped midway is repeated only when the step declares
itself idempotent (or is an HTTP GET), and is otherwise reported as
unconfirmed so that a person checks. ``wait_until_healthy`` only reads, so it needs no claim; it heartbeats
its start time, and a resumed attempt keeps the original deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity

from warroom.models.ids import (
    PERSIST_RUNBOOK_RUN_ACTIVITY,
    RUNBOOK_HTTP_ACTIVITY,
    RUNBOOK_SHELL_ACTIVITY,
    RUNBOOK_WAIT_ACTIVITY,
    runbook_run_workflow_id,
)
from warroom.models.runbook import HttpStep, PersistRunInput, ShellStep, StepOutcome, StepRequest, WaitStep
from warroom.models.tables import RunbookRunRow, RunbookStepClaim, RunbookStepRow
from warroom.runbooks.steps import RunbookConfig, run_http, run_shell, wait_until_healthy

log = logging.getLogger("warroom.runbooks")

Clock = Callable[[], datetime]
HEARTBEAT_EVERY = 1.0
HEARTBEAT_THROTTLE = timedelta(seconds=1)
"""Give to the Worker as ``max_heartbeat_throttle_interval``: heartbeats reach the
server at least this often, and with them an abort reaches the running step."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@contextlib.asynccontextmanager
async def heartbeating(details: Callable[[], Any] = lambda: None) -> AsyncIterator[None]:
    """Heartbeat every second while the body runs: the server learns quickly that a
    worker died, and a cancellation (an abort) reaches the step."""

    async def loop() -> None:
        while True:
            activity.heartbeat(details())
            await asyncio.sleep(HEARTBEAT_EVERY)

    task = asyncio.ensure_future(loop())
    try:
        yield
    finally:
        task.cancel()


class RunbookActivities:
    def __init__(self, engine: Engine, config: RunbookConfig, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._config = config
        self._clock = clock

    # --- steps -------------------------------------------------------------------------

    @activity.defn(name=RUNBOOK_HTTP_ACTIVITY)
    async def http_step(self, req: StepRequest) -> StepOutcome:
        step = req.step
        assert isinstance(step, HttpStep)
        # A GET only reads: an attempt interrupted midway is repeated like an idempotent one.
        repeatable = step.idempotent or step.method == "GET"
        return await self._claimed(req, repeatable, lambda: run_http(step, req, self._config, _beat))

    @activity.defn(name=RUNBOOK_SHELL_ACTIVITY)
    async def shell_step(self, req: StepRequest) -> StepOutcome:
        step = req.step
        assert isinstance(step, ShellStep)
        return await self._claimed(req, step.idempotent, lambda: run_shell(step, req, self._config, _beat))

    @activity.defn(name=RUNBOOK_WAIT_ACTIVITY)
    async def wait_step(self, req: StepRequest) -> StepOutcome:
        step = req.step
        assert isinstance(step, WaitStep)
        started_at, polls = time.time(), 0
        previous = activity.info().heartbeat_details
        if previous and isinstance(previous[0], dict) and "started_at" in previous[0]:
            # A retry of this attempt (its worker died): keep the original deadline.
            started_at = float(previous[0]["started_at"])
            polls = int(previous[0].get("polls", 0))
            log.info("resuming %s, started %.1f s ago", req.key, time.time() - started_at)
        latest: dict[str, Any] = {"started_at": started_at, "polls": polls}

        def beat(details: dict[str, Any]) -> None:
            latest.update(details)
            activity.heartbeat(dict(latest))  # the SDK throttles what reaches the server

        async with heartbeating(lambda: dict(latest)):
            return await wait_until_healthy(step, req, self._config, beat, started_at, polls)

    async def _claimed(self, req: StepRequest, repeatable: bool, act: Callable[[], Any]) -> StepOutcome:
        known = await asyncio.to_thread(self._claim, req, repeatable)
        if known is not None:
            log.warning("step attempt %s already handled: %s", req.key, known.summary)
            return known
        async with heartbeating():
            outcome: StepOutcome = await act()
        await asyncio.to_thread(self._finish, req.key, outcome)
        log.info("step attempt %s: %s", req.key, outcome.summary)
        return outcome

    def _claim(self, req: StepRequest, repeatable: bool) -> StepOutcome | None:
        """Claim the attempt key; return the outcome instead when it was handled before."""
        now = self._clock()
        with Session(self._engine) as session, session.begin():
            row = session.get(RunbookStepClaim, req.key)
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(
                            RunbookStepClaim(
                                key=req.key,
                                incident_number=req.incident_number,
                                run=req.run,
                                step_index=req.step_index,
                                attempt=req.attempt,
                                status="running",
                                outcome=None,
                                restarts=0,
                                claimed_at=now,
                            )
                        )
                    return None
                except IntegrityError:
                    row = session.get(RunbookStepClaim, req.key)
                    assert row is not None
            if row.status in ("finished", "unconfirmed") and row.outcome is not None:
                return StepOutcome.model_validate(row.outcome)
            # An earlier run of this very attempt stopped midway: it may have acted.
            if repeatable:
                row.restarts += 1
                return None
            outcome = StepOutcome(
                ok=False,
                retryable=False,
                in_doubt=True,
                summary="an earlier attempt of this step was interrupted and may have acted; "
                "it is not repeated automatically: check the target by hand",
            )
            row.status = "unconfirmed"
            row.outcome = outcome.model_dump(mode="json")
            row.finished_at = now
            return outcome

    def _finish(self, key: str, outcome: StepOutcome) -> None:
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(RunbookStepClaim)
                .where(RunbookStepClaim.key == key)
                .values(status="finished", outcome=outcome.model_dump(mode="json"), finished_at=self._clock())
            )

    # --- read model ----------------------------------------------------------------------

    @activity.defn(name=PERSIST_RUNBOOK_RUN_ACTIVITY)
    def persist_run(self, inp: PersistRunInput) -> None:
        s = inp.state
        values = {
            "incident_number": s.incident_number,
            "run": s.run,
            "workflow_id": runbook_run_workflow_id(s.incident_number, s.run),
            "runbook_id": s.runbook_id,
            "title": s.title,
            "status": s.status.value,
            "started_by": s.started_by,
            "reason": s.reason,
            "params": dict(s.params),
            "started_at": s.started_at,
            "finished_at": s.finished_at,
            "current_step": s.current_step,
            "aborted_by": s.aborted_by,
            "result": s.result,
            "version": s.version,
        }
        key = (RunbookRunRow.incident_number == s.incident_number, RunbookRunRow.run == s.run)
        with Session(self._engine) as session, session.begin():
            written = session.execute(
                update(RunbookRunRow).where(*key, RunbookRunRow.version < s.version).values(**values)
            ).rowcount  # type: ignore[attr-defined]
            if not written:
                if session.get(RunbookRunRow, (s.incident_number, s.run)) is not None:
                    return  # a newer (or this) version is stored already
                try:
                    with session.begin_nested():
                        session.execute(insert(RunbookRunRow).values(**values))
                except IntegrityError:
                    return  # a concurrent write of the same run won; it is at least as new
            session.execute(
                delete(RunbookStepRow).where(
                    RunbookStepRow.incident_number == s.incident_number, RunbookStepRow.run == s.run
                )
            )
            session.execute(
                insert(RunbookStepRow),
                [
                    {
                        "incident_number": s.incident_number,
                        "run": s.run,
                        "step_index": st.index,
                        "name": st.name,
                        "kind": st.kind,
                        "destructive": st.destructive,
                        "status": st.status.value,
                        "attempts": st.attempts,
                        "started_at": st.started_at,
                        "finished_at": st.finished_at,
                        "duration_seconds": st.duration_seconds,
                        "output": st.output,
                        "result": st.result,
                        "actor": st.actor,
                        "idempotency_key": st.key,
                    }
                    for st in s.steps
                ],
            )

    def all(self) -> list[Callable[..., object]]:
        return [self.http_step, self.shell_step, self.wait_step, self.persist_run]


def _beat() -> None:
    """Executors call this on progress; ``heartbeating`` already sends the heartbeats."""
