"""The action items of one incident's postmortem, tracked until each is done.

Started by the incident's workflow when its postmortem is accepted (it outlives the
incident). For every open item: the owner is reminded before the due date (the
policy's ``action_item_reminders_before``); once it is overdue the engineering lead
is told, exactly once. ``complete`` marks an item done. The tracker may live for
months, so it continues as new before its history grows large.

Deterministic: time from ``workflow.now()``; sends and read-model writes are activities.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from warroom.models import action_items as rules
    from warroom.models import paging
    from warroom.models.action_items import (
        ActionItemsInput,
        ActionItemsPersist,
        ActionItemsState,
        CompleteItemInput,
        TrackedItem,
    )
    from warroom.models.ids import PERSIST_ACTION_ITEMS_ACTIVITY, SEND_NOTIFICATION_ACTIVITY
    from warroom.models.incident import NotificationKind, NotificationRequest, NotificationResult
    from warroom.models.policy import Person

NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                           maximum_attempts=3, non_retryable_error_types=["PermanentDeliveryError"])
PERSIST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
MAX_REMEMBERED = 100


def _reject(message: str) -> None:
    raise ApplicationError(message, type="CommandRejected", non_retryable=True)


@workflow.defn
class ActionItemsWorkflow:
    @workflow.init
    def __init__(self, inp: ActionItemsInput) -> None:
        self._inp = inp
        self._policy = inp.policy
        self._s: ActionItemsState = inp.carried or ActionItemsState(
            number=inp.number, title=inp.title, severity=inp.severity, items=rules.tracked(inp.items)
        )
        self._dirty = False
        self._tasks: list[asyncio.Task[None]] = []
        self._persisted = -1
        self._write_lock = asyncio.Lock()

    @workflow.run
    async def run(self, inp: ActionItemsInput) -> ActionItemsState:
        self._s.version += 1  # a new run writes its state again (writes are idempotent)
        while True:
            self._dirty = False
            self._process(workflow.now())
            await self._persist()
            if rules.all_done(self._s.items):
                break
            if self._should_continue_as_new(inp):
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() and all(t.done() for t in self._tasks)
                )
                workflow.continue_as_new(
                    ActionItemsInput(number=inp.number, title=inp.title, severity=inp.severity, policy=self._policy,
                                     contacts=inp.contacts, carried=self._s,
                                     force_continue_after=inp.force_continue_after)
                )
            if self._dirty:
                continue  # a command arrived while the state was being written
            wake = rules.next_wakeup(self._s.items, self._policy)
            if wake is None:
                await workflow.wait_condition(lambda: self._dirty)
                continue
            timeout = (wake - workflow.now()).total_seconds()
            if timeout <= 0:
                continue
            try:
                await workflow.wait_condition(lambda: self._dirty, timeout=timeout)
            except asyncio.TimeoutError:
                pass
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and all(t.done() for t in self._tasks))
        await self._persist()
        return self._s

    def _should_continue_as_new(self, inp: ActionItemsInput) -> bool:
        info = workflow.info()
        length = info.get_current_history_length()
        limit = inp.force_continue_after or self._policy.action_item_history_limit
        return info.is_continue_as_new_suggested() or length >= limit

    # --- what falls due ---------------------------------------------------------------

    def _process(self, now: datetime) -> None:
        n = self._s.number
        for it in self._s.items:
            if rules.reminder_due(it, self._policy, now):
                it.reminders_sent = rules.reminders_passed(it, self._policy, now)
                subject, text = rules.reminder_message(n, it, now)
                self._notify([it.owner], NotificationKind.REMINDER, f"action-{it.index}-reminder-{it.reminders_sent}",
                             subject, text)
                self._s.version += 1
            if rules.escalation_due(it, now):
                it.overdue_notified = True
                it.reminders_sent = len(rules.reminder_times(it, self._policy))
                lead = self._policy.engineering_lead
                subject, text = rules.overdue_message(n, it, now)
                self._notify([lead] if lead else [it.owner], NotificationKind.ESCALATION,
                             f"action-{it.index}-overdue", subject, text)
                self._s.version += 1

    # --- commands and reads --------------------------------------------------------------

    @workflow.update
    async def complete(self, cmd: CompleteItemInput) -> str:
        """Mark an item done; answers once the read model says so too."""
        uid = workflow.current_update_info().id if workflow.current_update_info() else None
        if uid and uid in self._s.command_results:
            return self._s.command_results[uid]
        it = self._item(cmd.index)
        assert it is not None
        it.done_at = workflow.now()
        it.done_by = cmd.by
        late = it.done_at > it.due
        answer = f"action item {cmd.index} of #{self._s.number} is done{' (late)' if late else ''}"
        if uid:
            self._s.command_results[uid] = answer
            while len(self._s.command_results) > MAX_REMEMBERED:
                self._s.command_results.pop(next(iter(self._s.command_results)))
        self._s.version += 1
        self._dirty = True
        await self._persist()
        return answer

    @complete.validator
    def _validate_complete(self, cmd: CompleteItemInput) -> None:
        info = workflow.current_update_info()
        if info and info.id in self._s.command_results:
            return
        it = self._item(cmd.index)
        if it is None:
            _reject(f"incident #{self._s.number} has no action item {cmd.index} (it has {len(self._s.items)})")
        elif it.done_at is not None:
            _reject(f"action item {cmd.index} of #{self._s.number} was already done by {it.done_by}")

    @workflow.query
    def view(self) -> ActionItemsState:
        return self._s

    def _item(self, index: int) -> TrackedItem | None:
        return next((it for it in self._s.items if it.index == index), None)

    # --- side effects --------------------------------------------------------------------

    async def _persist(self) -> None:
        async with self._write_lock:  # the main loop and a command may both want to write
            if self._persisted >= self._s.version:
                return
            version = self._s.version
            await workflow.execute_activity(
                PERSIST_ACTION_ITEMS_ACTIVITY,
                ActionItemsPersist(state=self._s.model_copy(deep=True)),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PERSIST_RETRY,
            )
            self._persisted = version

    def _person(self, person_id: str) -> Person | None:
        return self._policy.people.get(person_id) or self._inp.contacts.get(person_id)

    def _notify(self, people: list[str], kind: NotificationKind, slot: str, subject: str, text: str) -> None:
        for person_id in dict.fromkeys(people):
            person = self._person(person_id)
            if person is None:
                workflow.logger.warning("cannot notify '%s': not in the policy", person_id)
                continue
            channel = paging.notice_method(person).value
            req = NotificationRequest(
                key=f"incident-{self._s.number}/{slot}/{person_id}/{channel}",
                incident_number=self._s.number, person_id=person_id, person=person, channel=channel,
                kind=kind, subject=subject, text=text, page=False,
            )
            self._tasks.append(asyncio.ensure_future(self._send(req)))
            self._tasks = [t for t in self._tasks if not t.done()]

    async def _send(self, req: NotificationRequest) -> None:
        try:
            await workflow.execute_activity(
                SEND_NOTIFICATION_ACTIVITY, req, result_type=NotificationResult,
                start_to_close_timeout=timedelta(seconds=30), retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning("notification %s failed: %s", req.key, err)
