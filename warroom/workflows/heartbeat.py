"""One durable workflow per heartbeat monitor: a missed call raises an alert.

Each call from the job is a ``ping`` signal (signal-with-start, so the first
call starts the monitor). The workflow waits on a Temporal timer for the next
call; when the deadline passes without one it raises an alert through the same
intake as every other source (activity ``raise_alert``), once per miss. The next
call resolves that alert, which lands in the incident's timeline. A worker
restart loses nothing: the timer is Temporal's.

Deterministic: time comes from ``workflow.now()``; no I/O here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from warroom.models.detection import HeartbeatInput, IngestOutcome, Ping, RaiseAlertInput, heartbeat_alert
    from warroom.models.ids import RAISE_ALERT_ACTIVITY

RAISE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
MAX_PINGS_PER_RUN = 500
"""Continue as new after this many calls, so the history stays small for a monitor that runs for years."""


@workflow.defn
class HeartbeatWorkflow:
    def __init__(self) -> None:
        self._pings: list[Ping] = []
        self._seen = 0

    @workflow.signal
    def ping(self, ping: Ping) -> None:
        self._pings.append(ping)

    @workflow.query
    def status(self) -> HeartbeatInput:
        return self._monitor

    @workflow.run
    async def run(self, inp: HeartbeatInput) -> None:
        self._monitor = inp
        last: datetime | None = inp.last_ping
        alerting = inp.alerting_since
        if last is None and not self._pings:
            last = workflow.now()
        while True:
            while self._pings:
                ping = self._pings.pop(0)
                self._seen += 1
                self._monitor = ping.monitor.model_copy(update={"last_ping": None, "alerting_since": None})
                last = max(last, ping.at) if last is not None else ping.at
                if alerting is not None:
                    await self._raise("resolved", alerting, last)
                    alerting = None
            if self._seen >= MAX_PINGS_PER_RUN or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._monitor.model_copy(
                    update={"last_ping": last, "alerting_since": alerting}))
            assert last is not None
            due = last + timedelta(seconds=self._monitor.deadline_seconds)
            wait = (due - workflow.now()).total_seconds()
            if alerting is None and wait <= 0:
                alerting = due
                await self._raise("firing", due, last)
                continue
            try:
                await workflow.wait_condition(lambda: bool(self._pings),
                                              timeout=wait if alerting is None else None)
            except TimeoutError:
                pass

    async def _raise(self, status: str, missed_at: datetime, last: datetime | None) -> IngestOutcome:
        alert = heartbeat_alert(self._monitor, status, missed_at, last)
        return await workflow.execute_activity(
            RAISE_ALERT_ACTIVITY,
            RaiseAlertInput(alert=alert, group_key=alert.dedup_key or self._monitor.name),
            result_type=IngestOutcome,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RAISE_RETRY,
        )
