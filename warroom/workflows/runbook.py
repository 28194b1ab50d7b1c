"""One durable workflow per runbook run, started by the incident's workflow.

The run executes its steps in order. Automated steps are activities; a manual
step waits for a person to confirm it as done, an approval step for a second
operator (not the one who started the run). A step that fails is retried by
its own retry policy when the failure may pass; any other failure stops the
run. An operator may abort at any moment: the running step is cancelled, the
rest are skipped.

Every change is reported twice: to the incident (a signal that becomes a
timeline line) and to the read model (an activity), both in the background, in
order. A completed step is in the workflow's history, so a worker that dies
mid-run is replaced by another that carries on with the next step.

Deterministic: no I/O, clock or settings here; time is ``workflow.now()``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from warroom.models.durations import format_duration
    from warroom.models.ids import (
        PERSIST_RUNBOOK_RUN_ACTIVITY,
        RUNBOOK_EVENT_SIGNAL,
        RUNBOOK_HTTP_ACTIVITY,
        RUNBOOK_SHELL_ACTIVITY,
        RUNBOOK_WAIT_ACTIVITY,
    )
    from warroom.models.runbook import (
        TIMELINE_OUTPUT_LIMIT,
        AbortRunInput,
        ApprovalInput,
        ApprovalStep,
        ManualStep,
        PersistRunInput,
        RunbookEvent,
        RunbookRunStart,
        RunbookRunState,
        RunCommandResult,
        RunStatus,
        StepDecisionInput,
        StepOutcome,
        StepRequest,
        StepState,
        StepStatus,
        retry_delay,
        step_key,
        trim,
    )

ACTIVITY_FOR_KIND = {
    "http": RUNBOOK_HTTP_ACTIVITY,
    "shell": RUNBOOK_SHELL_ACTIVITY,
    "wait_until_healthy": RUNBOOK_WAIT_ACTIVITY,
}
STEP_GRACE = timedelta(seconds=15)
"""Beyond the step's own timeout (which the activity enforces and reports), how
long Temporal waits before it declares the attempt lost."""
HEARTBEAT_TIMEOUT = timedelta(seconds=5)
"""Activities heartbeat every second; this long without one means the worker died."""
INFRA_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=6,
)
"""Retries of the *same* attempt after a lost worker; the step's own retry policy
is applied by this workflow, with a new attempt key each time."""
PERSIST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


def _reject(message: str) -> None:
    raise ApplicationError(message, type="CommandRejected", non_retryable=True)


ABORT_REPORTED_PATCH = "abort-answers-once-reported"
"""Runs started before it answered an abort before the incident had heard of it."""

@workflow.defn
class RunbookRunWorkflow:
    @workflow.init
    def __init__(self, inp: RunbookRunStart) -> None:
        self._inp = inp
        self._s = RunbookRunState(
            incident_number=inp.incident_number,
            run=inp.run,
            runbook_id=inp.runbook.id,
            title=inp.runbook.title,
            params=dict(inp.params),
            started_by=inp.started_by,
            reason=inp.reason,
            started_at=workflow.now(),
            steps=[
                StepState(index=i + 1, name=step.name, kind=step.kind, destructive=step.destructive)
                for i, step in enumerate(inp.runbook.steps)
            ],
        )
        self._abort: AbortRunInput | None = None
        self._decisions: dict[int, StepDecisionInput | ApprovalInput] = {}
        self._events: list[RunbookEvent] = []
        self._sent = 0
        self._persisted = -1

    @workflow.run
    async def run(self, inp: RunbookRunStart) -> RunbookRunState:
        s = self._s
        reporter = asyncio.ensure_future(self._reporter())
        flusher = asyncio.ensure_future(self._flusher())
        self._touch()  # the incident logged the start; the read model learns of the run now
        for step, st in zip(inp.runbook.steps, s.steps, strict=True):
            if self._abort is not None:
                break
            await self._run_step(step, st)
            if st.status != StepStatus.SUCCEEDED:
                break
        self._finish()
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished()
            and self._sent == len(self._events)
            and self._persisted == self._s.version
        )
        reporter.cancel()
        flusher.cancel()
        return s

    # --- steps -----------------------------------------------------------------------

    async def _run_step(self, step: object, st: StepState) -> None:
        s = self._s
        s.current_step = st.index
        st.started_at = workflow.now()
        st.status = StepStatus.RUNNING
        s.status = RunStatus.RUNNING
        if isinstance(step, (ManualStep, ApprovalStep)):
            await self._wait_for_person(step, st)
        else:
            self._emit(f"step {self._label(st)} started")
            await self._automated(step, st)
        st.finished_at = workflow.now()
        assert st.started_at is not None
        took = st.finished_at - st.started_at
        st.duration_seconds = round(took.total_seconds(), 3)
        excerpt = trim(st.output, TIMELINE_OUTPUT_LIMIT).strip() if st.output else ""
        text = f"step {self._label(st)} {st.status.value} after {_took(took)}: {st.result}"
        if excerpt:
            text += f" | output: {excerpt}"
        self._emit(text, actor=st.actor)

    async def _automated(self, step: object, st: StepState) -> None:
        s = self._s
        retry = step.retry  # type: ignore[attr-defined]
        timeout: timedelta = step.timeout  # type: ignore[attr-defined]
        attempt = 0
        while True:
            attempt += 1
            st.attempts = attempt
            st.key = step_key(s.incident_number, s.run, st.index, attempt)
            st.status = StepStatus.RUNNING
            self._touch()
            req = StepRequest(
                key=st.key,
                incident_number=s.incident_number,
                run=s.run,
                step_index=st.index,
                attempt=attempt,
                step=step,  # type: ignore[arg-type]
                params=dict(s.params),
            )
            handle = workflow.start_activity(
                ACTIVITY_FOR_KIND[st.kind],
                req,
                result_type=StepOutcome,
                start_to_close_timeout=timeout + STEP_GRACE,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=INFRA_RETRY,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
            await workflow.wait_condition(lambda h=handle: h.done() or self._abort is not None)
            if not handle.done():
                handle.cancel()
                try:
                    await handle
                except (ActivityError, asyncio.CancelledError):
                    pass
                self._aborted(st)
                return
            try:
                outcome = await handle
            except ActivityError as err:
                cause = getattr(err.cause, "message", None) or str(err)
                outcome = StepOutcome(ok=False, summary=f"the step could not be carried out: {cause}")
            st.output = outcome.output
            if outcome.ok:
                st.status = StepStatus.SUCCEEDED
                st.result = outcome.summary + (f" (attempt {attempt})" if attempt > 1 else "")
                return
            if outcome.retryable and attempt < retry.max_attempts:
                delay = retry_delay(retry, attempt)
                st.status = StepStatus.RETRYING
                st.result = f"attempt {attempt} failed: {outcome.summary}"
                self._emit(
                    f"step {self._label(st)} attempt {attempt} of {retry.max_attempts} failed: "
                    f"{outcome.summary}; retrying in {_took(delay)}"
                )
                if delay > timedelta(0):
                    try:
                        await workflow.wait_condition(lambda: self._abort is not None, timeout=delay)
                    except asyncio.TimeoutError:
                        pass
                if self._abort is not None:
                    self._aborted(st)
                    return
                continue
            st.status = StepStatus.FAILED
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            st.result = outcome.summary + tries
            return

    async def _wait_for_person(self, step: ManualStep | ApprovalStep, st: StepState) -> None:
        s = self._s
        st.status = StepStatus.WAITING
        s.status = RunStatus.WAITING
        if isinstance(step, ApprovalStep):
            self._emit(
                f"step {self._label(st)} waits for approval by an operator other than {s.started_by}: "
                f"{step.instruction.strip()}"
            )
        else:
            self._emit(f"step {self._label(st)} waits for a person to confirm: {step.instruction.strip()}")
        try:
            await workflow.wait_condition(
                lambda: st.index in self._decisions or self._abort is not None, timeout=step.timeout
            )
        except asyncio.TimeoutError:
            s.status = RunStatus.RUNNING
            st.status = StepStatus.FAILED
            who = "approved" if isinstance(step, ApprovalStep) else "confirmed"
            st.result = f"nobody {who} it within {_took(step.timeout)}"
            return
        s.status = RunStatus.RUNNING
        if st.index not in self._decisions:
            self._aborted(st)
            return
        decision = self._decisions[st.index]
        st.actor = decision.actor
        note = f": {decision.note.strip()}" if decision.note.strip() else ""
        if isinstance(decision, ApprovalInput):
            if decision.approve:
                st.status = StepStatus.SUCCEEDED
                st.result = f"approved by {decision.actor}{note}"
            else:
                st.status = StepStatus.FAILED
                st.result = f"refused by {decision.actor}{note}"
        else:
            st.status = StepStatus.SUCCEEDED
            st.result = f"confirmed done by {decision.actor}{note}"

    def _aborted(self, st: StepState) -> None:
        assert self._abort is not None
        st.status = StepStatus.ABORTED
        st.result = f"stopped: {self._abort.actor} aborted the run"

    def _finish(self) -> None:
        s = self._s
        s.finished_at = workflow.now()
        for st in s.steps:
            if st.status == StepStatus.PENDING:
                st.status = StepStatus.SKIPPED
        last = next((st for st in reversed(s.steps) if st.status != StepStatus.SKIPPED), None)
        if all(st.status == StepStatus.SUCCEEDED for st in s.steps):
            # An abort that arrived after the last step finished changes nothing.
            s.status = RunStatus.SUCCEEDED
            s.result = f"all {len(s.steps)} steps succeeded"
        elif self._abort is not None:
            s.status = RunStatus.ABORTED
            s.aborted_by = self._abort.actor
            why = f": {self._abort.reason.strip()}" if self._abort.reason.strip() else ""
            s.result = f"aborted by {self._abort.actor}{why}"
        else:
            s.status = RunStatus.FAILED
            s.result = f"step {self._label(last)} {last.status.value}: {last.result}" if last else "failed"
        skipped = sum(1 for st in s.steps if st.status == StepStatus.SKIPPED)
        tail = f"; {skipped} step(s) not run" if skipped and s.status != RunStatus.SUCCEEDED else ""
        took = _took(s.finished_at - s.started_at)
        self._emit(f"{s.status.value} after {took}: {s.result}{tail}", actor=s.aborted_by)

    def _label(self, st: StepState) -> str:
        return f"{st.index}/{len(self._s.steps)} '{st.name}'"

    # --- queries and commands ----------------------------------------------------------

    @workflow.query
    def view(self) -> RunbookRunState:
        return self._s

    def _result(self, message: str) -> RunCommandResult:
        s = self._s
        return RunCommandResult(incident_number=s.incident_number, run=s.run, status=s.status, message=message)

    def _require_active(self) -> None:
        s = self._s
        if not s.status.active:
            _reject(f"run #{s.run} of '{s.title}' has already {s.status.value}")
        if self._abort is not None:
            _reject(f"run #{s.run} is being aborted by {self._abort.actor}")

    def _require_operator(self, actor: str) -> None:
        if self._inp.operators and actor not in self._inp.operators:
            _reject(f"'{actor}' is not a responder of this incident")

    def _require_waiting(self, step: int, kind: type) -> StepState:
        s = self._s
        if not 1 <= step <= len(s.steps):
            _reject(f"run #{s.run} has no step {step} (it has {len(s.steps)})")
        st = s.steps[step - 1]
        definition = self._inp.runbook.steps[step - 1]
        if not isinstance(definition, kind):
            what = "an approval" if kind is ApprovalStep else "a manual"
            _reject(f"step {self._label(st)} is a {st.kind} step, not {what} step")
        if st.status != StepStatus.WAITING:
            _reject(f"step {self._label(st)} is not waiting for anyone (it is {st.status.value})")
        return st

    @workflow.update
    def confirm_step(self, cmd: StepDecisionInput) -> RunCommandResult:
        self._decisions[cmd.step] = cmd
        self._touch()
        return self._result(f"step {cmd.step} of run #{self._s.run} confirmed by {cmd.actor}")

    @confirm_step.validator
    def _validate_confirm(self, cmd: StepDecisionInput) -> None:
        self._require_active()
        self._require_operator(cmd.actor)
        self._require_waiting(cmd.step, ManualStep)

    @workflow.update
    def approve_step(self, cmd: ApprovalInput) -> RunCommandResult:
        self._decisions[cmd.step] = cmd
        self._touch()
        verb = "approved" if cmd.approve else "refused"
        return self._result(f"step {cmd.step} of run #{self._s.run} {verb} by {cmd.actor}")

    @approve_step.validator
    def _validate_approve(self, cmd: ApprovalInput) -> None:
        s = self._s
        self._require_active()
        self._require_operator(cmd.actor)
        self._require_waiting(cmd.step, ApprovalStep)
        if cmd.actor == s.started_by:
            _reject(f"a second operator must approve: {cmd.actor} started this run")
        if self._inp.runbook.destructive and not cmd.can_run_destructive:
            _reject(f"{cmd.actor} may not approve '{s.title}': it has destructive steps")

    @workflow.update
    async def abort(self, cmd: AbortRunInput) -> RunCommandResult:
        self._abort = cmd
        self._touch()
        await workflow.wait_condition(lambda: not self._s.status.active)
        if workflow.patched(ABORT_REPORTED_PATCH):
            # Answer once the incident has heard of it, so the operator's next step (running the
            # runbook again, resolving) is not refused as "still running" in between.
            await workflow.wait_condition(lambda: self._sent == len(self._events))
        s = self._s
        if s.status != RunStatus.ABORTED:
            return self._result(f"run #{s.run} of '{s.title}' had already {s.status.value}")
        return self._result(f"run #{s.run} of '{s.title}' aborted by {cmd.actor}")

    @abort.validator
    def _validate_abort(self, cmd: AbortRunInput) -> None:
        self._require_active()
        self._require_operator(cmd.actor)

    # --- reporting ---------------------------------------------------------------------

    def _touch(self) -> None:
        self._s.version += 1

    def _emit(self, text: str, actor: str | None = None) -> None:
        s = self._s
        self._events.append(
            RunbookEvent(run=s.run, text=f"Runbook run #{s.run} ({s.title}): {text}", actor=actor,
                         status=s.status, at=workflow.now())
        )
        self._touch()

    async def _reporter(self) -> None:
        """Tell the incident, one event at a time, in order."""
        parent = self._inp.parent_workflow_id
        while True:
            await workflow.wait_condition(lambda: self._sent < len(self._events))
            event = self._events[self._sent]
            if parent is not None:
                try:
                    await workflow.get_external_workflow_handle(parent).signal(RUNBOOK_EVENT_SIGNAL, event)
                except FailureError as err:
                    # The incident's workflow is gone (closed or terminated): the
                    # run's own read model still has every step.
                    workflow.logger.warning("cannot report to %s: %s", parent, err.message)
                    parent = None
            self._sent += 1

    async def _flusher(self) -> None:
        """Write the read model: one activity at a time, newest state.

        A finished run is written only once the incident has been told: whoever
        sees "succeeded" in the read model can resolve the incident at once,
        which the incident refuses while it still counts the run as active."""
        while True:
            await workflow.wait_condition(
                lambda: self._s.version != self._persisted
                and (self._s.status.active or self._sent == len(self._events))
            )
            version = self._s.version
            snapshot = self._s.model_copy(deep=True)
            await workflow.execute_activity(
                PERSIST_RUNBOOK_RUN_ACTIVITY,
                PersistRunInput(state=snapshot),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PERSIST_RETRY,
            )
            self._persisted = version


def _took(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    return format_duration(delta)
