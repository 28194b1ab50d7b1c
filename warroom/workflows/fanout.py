"""Tell every status-page subscriber about one public event, exactly once each.

One workflow per event (its id derives from the event key, so an event is
never fanned out twice). Subscribers are read a page at a time, in id order,
cut into batches, and ``concurrency`` batches are delivered at a time, each by
one activity sending ``send_concurrency`` messages at once. Every subscriber
has their own delivery row, claimed before the provider is called, so when a
batch is retried (some sends failed transiently) the ones already sent are
skipped and only the others go out: nobody gets a message twice. Retries back
off for as long as ``give_up_after_seconds`` allows, so a provider outage
delays messages but loses none. Batching keeps the history small (one
activity per 50 subscribers); large audiences still continue as new with a
cursor before the history grows too long.

Deterministic: no I/O, clock, randomness or settings here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from warroom.models.ids import (
        DELIVER_TO_SUBSCRIBERS_ACTIVITY,
        FANOUT_WORKFLOW_NAME,
        LIST_SUBSCRIBERS_ACTIVITY,
        RECORD_DELIVERY_OUTCOME_ACTIVITY,
    )
    from warroom.models.subscribers import (
        DeliveryBatchInput,
        DeliveryBatchResult,
        DeliveryOutcome,
        FanoutInput,
        FanoutResult,
        SubscriberPage,
        SubscriberPageInput,
    )

READ_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


@workflow.defn(name=FANOUT_WORKFLOW_NAME)
class SubscriberFanoutWorkflow:
    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._cursor = 0
        self._dispatched = 0
        self._exhausted = False
        self._stop = False
        self._lock = asyncio.Lock()
        self._tally = FanoutResult()

    @workflow.run
    async def run(self, inp: FanoutInput) -> FanoutResult:
        self._inp = inp
        self._cursor = self._dispatched = inp.after_id
        self._tally = FanoutResult(sent=inp.sent, skipped=inp.skipped, failed=inp.failed)
        workers = max(1, min(inp.concurrency, 200))
        await asyncio.gather(*(self._worker() for _ in range(workers)))
        if self._stop and not self._exhausted:
            workflow.continue_as_new(
                inp.model_copy(
                    update={
                        "after_id": self._dispatched,
                        "sent": self._tally.sent,
                        "skipped": self._tally.skipped,
                        "failed": self._tally.failed,
                    }
                )
            )
        return self._tally

    async def _worker(self) -> None:
        while True:
            batch = await self._next()
            if not batch:
                return
            await self._deliver(batch)

    async def _next(self) -> list[int]:
        """The next batch of subscribers, reading another page when needed."""
        async with self._lock:
            if not self._stop and self._history_is_long():
                # Stop handing out work; batches in flight finish, then continue as new
                # from the last subscriber handed out.
                self._stop = True
            if self._stop:
                return []
            while not self._pending and not self._exhausted:
                page: SubscriberPage = await workflow.execute_activity(
                    LIST_SUBSCRIBERS_ACTIVITY,
                    SubscriberPageInput(
                        event=self._inp.event,
                        after_id=self._cursor,
                        limit=self._inp.page_size,
                        subscriber_ids=self._inp.subscriber_ids,
                    ),
                    result_type=SubscriberPage,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=READ_RETRY,
                )
                self._pending.extend(page.ids)
                if page.next_after is None:
                    self._exhausted = True
                else:
                    self._cursor = page.next_after
            size = max(1, self._inp.batch_size)
            batch = [self._pending.popleft() for _ in range(min(size, len(self._pending)))]
            if batch:
                self._dispatched = batch[-1]
            return batch

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= self._inp.history_limit

    async def _deliver(self, batch: list[int]) -> None:
        inp = self._inp
        try:
            result: DeliveryBatchResult = await workflow.execute_activity(
                DELIVER_TO_SUBSCRIBERS_ACTIVITY,
                DeliveryBatchInput(event=inp.event, subscriber_ids=batch, send_concurrency=inp.send_concurrency),
                result_type=DeliveryBatchResult,
                start_to_close_timeout=timedelta(seconds=300),
                heartbeat_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=timedelta(seconds=inp.give_up_after_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=inp.retry_initial_interval_seconds),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=inp.retry_max_interval_seconds),
                    maximum_attempts=0,
                ),
            )
        except ActivityError as err:
            # Out of time: whatever is still unsent in this batch is recorded as expired.
            cause = err.cause
            detail = getattr(cause, "message", None) or str(cause or err)
            result = await workflow.execute_activity(
                RECORD_DELIVERY_OUTCOME_ACTIVITY,
                DeliveryOutcome(event_key=inp.event.key, subscriber_ids=batch, status="expired", detail=detail),
                result_type=DeliveryBatchResult,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=READ_RETRY,
            )
        self._tally.sent += result.sent
        self._tally.skipped += result.skipped
        self._tally.failed += result.failed
