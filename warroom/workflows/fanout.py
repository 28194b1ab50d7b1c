"""Tell every status-page subscriber about one public event, exactly once each.

One workflow per event (its id derives from the event key, so an event is
never fanned out twice). Subscribers are read a page at a time, in id order,
and ``concurrency`` workers deliver to them, one activity per subscriber.
The activity claims a unique delivery row before it talks to the provider,
so a retry never sends twice; transient provider failures are retried with
backoff for as long as ``give_up_after_seconds`` allows, so an outage of the
provider delays messages but loses none. Large audiences continue as new with
a cursor before the history grows too long.

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
        DELIVER_TO_SUBSCRIBER_ACTIVITY,
        LIST_SUBSCRIBERS_ACTIVITY,
        RECORD_DELIVERY_OUTCOME_ACTIVITY,
    )
    from warroom.models.subscribers import (
        DeliveryInput,
        DeliveryOutcome,
        DeliveryResult,
        FanoutInput,
        FanoutResult,
        SubscriberPage,
        SubscriberPageInput,
        delivery_key,
    )

READ_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


@workflow.defn
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
            subscriber_id = await self._next()
            if subscriber_id is None:
                return
            await self._deliver(subscriber_id)

    async def _next(self) -> int | None:
        """The next subscriber to deliver to, reading another page when needed."""
        async with self._lock:
            if not self._stop and self._history_is_long():
                # Stop handing out work; in-flight deliveries finish, then continue as new
                # from the last subscriber handed out.
                self._stop = True
            if self._stop:
                return None
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
            if not self._pending:
                return None
            subscriber_id = self._pending.popleft()
            self._dispatched = subscriber_id
            return subscriber_id

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= self._inp.history_limit

    async def _deliver(self, subscriber_id: int) -> None:
        inp = self._inp
        try:
            result: DeliveryResult = await workflow.execute_activity(
                DELIVER_TO_SUBSCRIBER_ACTIVITY,
                DeliveryInput(event=inp.event, subscriber_id=subscriber_id),
                result_type=DeliveryResult,
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=timedelta(seconds=inp.give_up_after_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=inp.retry_max_interval_seconds),
                    maximum_attempts=0,
                    non_retryable_error_types=["PermanentDeliveryError"],
                ),
            )
        except ActivityError as err:
            cause = err.cause
            detail = getattr(cause, "message", None) or str(cause or err)
            status = "failed" if getattr(cause, "type", None) == "PermanentDeliveryError" else "expired"
            self._tally.failed += 1
            await workflow.execute_activity(
                RECORD_DELIVERY_OUTCOME_ACTIVITY,
                DeliveryOutcome(key=delivery_key(inp.event.key, subscriber_id), status=status, detail=detail),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=READ_RETRY,
            )
            return
        if result.status in ("sent", "duplicate"):
            self._tally.sent += 1
        elif result.status in ("failed", "unconfirmed"):
            self._tally.failed += 1
        else:
            self._tally.skipped += 1
