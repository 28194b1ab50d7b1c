"""One run of a built-in uptime check, started by its Temporal schedule.

The schedule (one per check, overlap policy SKIP) starts this workflow every
``every``; a run probes the target, records the result against the check's
state in the read model, and raises or resolves the alert through the same
intake as every other alert source when the state says so. Schedules live in
Temporal, so checks keep running whichever worker is up.

Deterministic: no I/O here; the activities probe and record.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from warroom.models.checks import CheckRunInput, CheckRunResult, Observation, RecordCheckInput
    from warroom.models.detection import IngestOutcome, RaiseAlertInput
    from warroom.models.ids import PROBE_ACTIVITY, RAISE_ALERT_ACTIVITY, RECORD_CHECK_ACTIVITY

ONCE = RetryPolicy(maximum_attempts=1)
"""A probe is not retried: a failure is an observation, and the next run comes soon."""
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                           maximum_attempts=5)


@workflow.defn
class UptimeCheckWorkflow:
    @workflow.run
    async def run(self, inp: CheckRunInput) -> CheckRunResult:
        spec = inp.spec
        try:
            seen = await workflow.execute_activity(
                PROBE_ACTIVITY, spec, result_type=Observation,
                start_to_close_timeout=spec.timeout + timedelta(seconds=5), retry_policy=ONCE,
            )
        except ActivityError as err:
            seen = Observation(at=workflow.now(), error=f"the probe did not finish: {err.cause or err}"[:300])
        result = await workflow.execute_activity(
            RECORD_CHECK_ACTIVITY, RecordCheckInput(spec=spec, observation=seen, run_id=workflow.info().run_id),
            result_type=CheckRunResult, start_to_close_timeout=timedelta(seconds=30), retry_policy=RECORD_RETRY,
        )
        if result.alert is not None:
            await workflow.execute_activity(
                RAISE_ALERT_ACTIVITY, RaiseAlertInput(alert=result.alert, group_key=result.alert.dedup_key or spec.name),
                result_type=IngestOutcome, start_to_close_timeout=timedelta(seconds=60), retry_policy=RECORD_RETRY,
            )
        return result
